//! PostgreSQL outages: the sink's backend terminated every second for 20 s, then the
//! PostgreSQL server stopped for 15 s and started again, while records keep coming. The
//! query retries (status RETRYING with the last error), never fails, and the table ends
//! with every row exactly once. An error a retry cannot fix (the table dropped) fails
//! that query only, with PostgreSQL's message; the server and its other queries go on.
//!
//! One test per file: stopping PostgreSQL would disturb other tests of the same binary.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use eddy_e2e::*;

/// `pg_ctlcluster <version> main <action>` for the local cluster (as root in CI).
fn pg_cluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .unwrap_or_else(|| panic!("no cluster under /etc/postgresql: this test stops and starts the local PostgreSQL"));
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()
        .unwrap_or_else(|e| panic!("pg_ctlcluster {action}: {e}"));
    assert!(status.success(), "pg_ctlcluster {version} main {action} failed: {status}");
}

/// The `state` and `error` of every query in `SHOW QUERIES`.
fn states(server: &Server) -> Vec<(String, String, String)> {
    let (_, v) = server.ksql("SHOW QUERIES;");
    v[0]["queries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|q| {
            (
                q["id"].as_str().unwrap_or_default().to_string(),
                q["state"].as_str().unwrap_or_default().to_string(),
                q["error"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outages_are_retried_and_lose_or_repeat_nothing() {
    let topic = unique("pg-outage-in");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-pg-outage").join("state");
    let app = unique("pg-outage");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", app.as_str())]);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM payments (id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=2);
         CREATE TABLE payments_pg (id VARCHAR, amount DOUBLE) WITH ('connector'='postgres', 'url'='{url}', 'table-name'='payments');
         CREATE TABLE doomed_pg (id VARCHAR, amount DOUBLE) WITH ('connector'='postgres', 'url'='{url}', 'table-name'='doomed');
         INSERT INTO payments_pg SELECT id, amount FROM payments;
         INSERT INTO doomed_pg SELECT id, amount FROM payments;",
        url = db.url
    ));
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = states(&server).into_iter().map(|q| q.0).collect();
    assert_eq!(ids.len(), 2);

    // Records all along: 50 every 100 ms for the whole test.
    let producer_topic = topic.clone();
    let producer = tokio::spawn(async move {
        let mut next = 0usize;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(45) {
            let values: Vec<String> = (next..next + 50).map(|i| format!(r#"{{"id":"e{i}","amount":{i}}}"#)).collect();
            let list: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
            produce(&producer_topic, &list).await;
            next += 50;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        next
    });

    // An error retrying cannot fix: the doomed query fails, the other one goes on.
    wait_until("rows in both tables", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM doomed").await > 0 }).await;
    db.client().await.batch_execute("DROP TABLE doomed").await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let doomed = loop {
        let q = states(&server).into_iter().find(|q| q.0 == ids[1]).unwrap_or_else(|| panic!("query {} is gone", ids[1]));
        if q.1 == "ERROR" || Instant::now() > deadline {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(doomed.1, "ERROR", "{doomed:?}");
    assert!(
        doomed
            .2
            .contains("PostgreSQL refused the rows for table doomed: ERROR: relation \"doomed\" does not exist; retrying cannot fix this"),
        "{}",
        doomed.2
    );

    let mut seen = BTreeSet::new();
    // The sink's connection terminated every second for 20 s.
    for _ in 0..20 {
        let admin = db.client().await;
        admin
            .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'eddy'", &[&db.name])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..5 {
            seen.extend(states(&server).into_iter().filter(|q| q.0 == ids[0]).map(|q| q.1));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The server stopped for 15 s.
    pg_cluster("stop");
    let stopped = Instant::now();
    let mut retrying_error = String::new();
    while stopped.elapsed() < Duration::from_secs(15) {
        for q in states(&server).into_iter().filter(|q| q.0 == ids[0]) {
            if q.1 == "RETRYING" {
                retrying_error = q.2.clone();
            }
            seen.insert(q.1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pg_cluster("start");

    let produced = producer.await.unwrap_or_else(|e| panic!("{e}"));
    wait_until("every row in PostgreSQL", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM payments").await >= produced as i64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    seen.extend(states(&server).into_iter().filter(|q| q.0 == ids[0]).map(|q| q.1));
    assert_eq!(db.scalar("SELECT count(*) FROM payments").await, produced as i64, "rows repeated");
    assert_eq!(db.scalar("SELECT count(DISTINCT id) FROM payments").await, produced as i64);
    assert!(seen.contains("RETRYING"), "{seen:?}");
    assert!(!seen.contains("ERROR"), "{seen:?}");
    assert!(retrying_error.starts_with("PostgreSQL table payments: "), "{retrying_error}");
    assert!(retrying_error.contains("(attempt "), "{retrying_error}");
    assert_eq!(states(&server).into_iter().find(|q| q.0 == ids[0]).map(|q| q.1).as_deref(), Some("RUNNING"));
    // The server reports the failed query when it stops (exit 1, as `eddy run` does).
    let log = server.log.clone();
    assert_eq!(server.terminate().code(), Some(1));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains(&format!("query {} failed: ", ids[1])), "{log_text}");
    db.drop_db().await;
}
