//! The durable catalog: `eddy server` killed with SIGKILL comes back with its streams
//! and queries, resumes from the committed offsets (no PostgreSQL row lost or doubled),
//! and a torn last log entry is cut back with a warning; `eddy run --state-dir` applies
//! each file once.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use eddy_e2e::*;

fn records(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!(r#"{{"id":"e{i}","account_id":"a{}","amount":{i}}}"#, i % 7)).collect()
}

async fn produce_range(topic: &str, from: usize, to: usize) {
    let values = records(from, to);
    let list: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    produce(topic, &list).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_with_its_catalog_and_queries() {
    let topic = unique("catalog-in");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-catalog").join("state");
    let app = unique("catalog");
    let env = [("EDDY_APPLICATION_ID", app.as_str())];
    let server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM payments (id VARCHAR, account_id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=2);
         CREATE TABLE payments_pg (id VARCHAR PRIMARY KEY, account_id VARCHAR, amount DOUBLE) WITH ('connector'='postgres', 'url'='{}', 'table-name'='payments');
         INSERT INTO payments_pg SELECT id, account_id, amount FROM payments;
         CREATE STREAM {topic_big} AS SELECT id, amount FROM payments WHERE amount >= 100;",
        db.url,
        topic_big = topic.replace('-', "_") + "_big"
    ));
    assert_eq!(status, 200, "{answer}");
    produce_range(&topic, 0, 300).await;
    wait_until("300 rows in PostgreSQL", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM payments").await == 300 })
        .await;
    let before: Vec<String> = server.queries().into_iter().map(|q| q.0).collect();
    assert_eq!(before.len(), 2);
    server.kill();

    produce_range(&topic, 300, 500).await;
    let server = Server::start(&state, &env);
    // The queries open their connectors in the background (STARTING), then run.
    let after: Vec<String> = server.queries().into_iter().map(|q| q.0).collect();
    assert_eq!(after, before);
    wait_until("every query RUNNING", Duration::from_secs(30), || async { server.queries().iter().all(|q| q.2 == "RUNNING") }).await;
    wait_until("500 rows in PostgreSQL", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM payments").await == 500 })
        .await;
    assert_eq!(db.scalar("SELECT count(DISTINCT id) FROM payments").await, 500);
    let (_, streams) = server.ksql("SHOW STREAMS;");
    assert_eq!(streams[0]["streams"].as_array().map(Vec::len), Some(2), "{streams}");

    // A torn last entry (a crash mid-append): cut back, reported with its number.
    let (_, answer) = server.ksql(&format!("TERMINATE {};", before[1]));
    assert_eq!(answer[0]["commandSequenceNumber"], 5, "{answer}");
    server.kill();
    let log = state.join("commands.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap_or_else(|e| panic!("{e}"));
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let server = Server::start(&state, &env);
    let ids: Vec<String> = server.queries().into_iter().map(|q| q.0).collect();
    assert_eq!(ids, [before[0].clone()], "the terminated query stays terminated");
    let log_text = server.log_text();
    assert!(
        log_text.contains(&format!("warning: command log {}: entry 6 (byte ", log.display()))
            && log_text
                .contains("is damaged: the entry is cut short (1 of 200 bytes); starting from the 5 commands before it (9 bytes dropped)"),
        "{log_text}"
    );
    assert!(server.terminate().success());
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddy_run_with_a_state_dir_applies_each_file_once() {
    let topic = unique("applied-in");
    let db = TestDb::create().await;
    let dir = scratch_dir("eddy-applied");
    let state = dir.join("state");
    let files = dir.join("sql");
    std::fs::create_dir_all(&files).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(files.join("01_source.sql"), format!("CREATE STREAM payments (id VARCHAR, account_id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=1);\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    // No primary key: a query started twice, or re-reading rows, would show as duplicates.
    std::fs::write(
        files.join("02_sink.sql"),
        "CREATE TABLE payments_pg (id VARCHAR, amount DOUBLE) WITH ('connector'='postgres', 'url'='${EDDY_POSTGRES_URL}', 'table-name'='payments');\nINSERT INTO payments_pg SELECT id, amount FROM payments;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let app = unique("applied");
    let run = || {
        let out = Command::new(eddy_bin())
            .arg("run")
            .arg("--state-dir")
            .arg(&state)
            .arg(&files)
            .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
            .env("EDDY_POSTGRES_URL", &db.url)
            .env("EDDY_APPLICATION_ID", &app)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        out
    };
    let created = Command::new(eddy_bin()).args(["topics", "create", &topic]).env("EDDY_BOOTSTRAP_SERVERS", bootstrap()).status();
    assert!(created.is_ok_and(|s| s.success()));
    produce_range(&topic, 0, 50).await;
    let first = run();
    wait_until("50 rows", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM payments").await == 50 }).await;
    let _ = Command::new("kill").arg("-TERM").arg(first.id().to_string()).status();
    let first = first.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));

    produce_range(&topic, 50, 80).await;
    let second = run();
    wait_until("80 rows", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM payments").await == 80 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = Command::new("kill").arg("-TERM").arg(second.id().to_string()).status();
    let second = second.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("01_source.sql: applied ")
            && stderr.contains("02_sink.sql: applied ")
            && stderr.contains(", unchanged; not applied again"),
        "{stderr}"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM payments").await, 80, "no row twice");

    // A changed applied file is refused before anything runs.
    std::fs::write(
        files.join("02_sink.sql"),
        "CREATE TABLE payments_pg (id VARCHAR) WITH ('connector'='postgres', 'url'='${EDDY_POSTGRES_URL}', 'table-name'='payments');\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let third = run().wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert_eq!(third.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {} changed since it was applied (checksum ", files.join("02_sink.sql").display())),
        "{stderr}"
    );
    db.drop_db().await;
}
