//! End-to-end tests: the `eddy` binary, the real broker, the real PostgreSQL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eddy_e2e::*;

const MALFORMED: [&str; 5] = ["hello,world", "one,two", "", "a,b,c,d,e,f,g", "x,notanint,login,RU,1601736282"];
const FULL_NAMES: &str = "'United States of America','India','United Kingdom','Canada','Australia','Germany','Spain','France','Netherlands','Singapore','Russia','Japan','Brazil','China','Other'";

/// The environment of `eddy run queries/fraud` for one test: its own input and alerts
/// topics (`<topic>-alerts`), database and consumer groups.
fn fraud_env<'a>(topic: &'a str, alerts: &'a str, db: &'a TestDb, app: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("EDDY_SERVER_LOGS_TOPIC", topic),
        ("EDDY_ALERTS_TOPIC", alerts),
        ("EDDY_POSTGRES_URL", db.url.as_str()),
        ("EDDY_APPLICATION_ID", app),
    ]
}

/// SCENARIOS.md §1: every event stored with its full country name and UTC time; five
/// malformed values are counted and skipped; records after them are still consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_pipeline_stores_every_event_and_skips_malformed_records() {
    let topic = unique("server-logs");
    let app = unique("fraud");
    let db = TestDb::create().await;
    gen_server_logs(&topic, 10_000, 42);
    let malformed: Vec<(Option<&str>, &str)> = MALFORMED.iter().map(|v| (None, *v)).collect();
    produce(&topic, &malformed).await;

    let dir = scratch_dir("eddy-e2e-fraud");
    let eddy = Eddy::run(&dir, &[Path::new("queries/fraud")], &fraud_env(&topic, &format!("{topic}-alerts"), &db, &app));
    wait_until("10,000 rows and 5 malformed", Duration::from_secs(180), || async {
        db.scalar("SELECT count(*) FROM server_log").await == 10_000 && eddy.counter("malformed") == 5
    })
    .await;

    // Records produced after the malformed ones still arrive.
    let later = [
        (Some("395805b6-7aee-409a-85cc-d2ffb7eb7ef2"), "395805b6-7aee-409a-85cc-d2ffb7eb7ef2,9726,login,RU,1601736282"),
        (Some("395805b6-7aee-409a-85cc-111111111111"), "395805b6-7aee-409a-85cc-111111111111,9727,log-out,USA,1601736283"),
        (Some("395805b6-7aee-409a-85cc-222222222222"), "395805b6-7aee-409a-85cc-222222222222,9728,click,O,0"),
    ];
    produce(&topic, &later).await;
    wait_until("10,003 rows", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM server_log").await == 10_003 }).await;

    let client = db.client().await;
    let rows = client
        .query(
            "SELECT event_id, account_id, event_type, location_country, to_char(event_time, 'YYYY-MM-DD HH24:MI:SS.MS') \
             FROM server_log WHERE event_id LIKE '395805b6-7aee-409a-85cc-%' ORDER BY event_id",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(String, i32, String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    assert_eq!(
        got,
        vec![
            (
                "395805b6-7aee-409a-85cc-111111111111".into(),
                9727,
                "log-out".into(),
                "United States of America".into(),
                "2020-10-03 14:44:43.000".into()
            ),
            ("395805b6-7aee-409a-85cc-222222222222".into(), 9728, "click".into(), "Other".into(), "1970-01-01 00:00:00.000".into()),
            ("395805b6-7aee-409a-85cc-d2ffb7eb7ef2".into(), 9726, "login".into(), "Russia".into(), "2020-10-03 14:44:42.000".into()),
        ]
    );
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM server_log WHERE location_country NOT IN ({FULL_NAMES})")).await, 0);
    assert_eq!(db.scalar("SELECT count(DISTINCT event_id) FROM server_log").await, 10_003);
    // Generated events start at 1601736282 s and advance 10 ms each: the last of 10,000 is 99.99 s later.
    assert_eq!(
        db.scalar("SELECT count(*) FROM server_log WHERE event_time BETWEEN '2020-10-03 14:44:42' AND '2020-10-03 14:46:21.99' AND event_id NOT LIKE '395805b6-7aee-409a-85cc-%'").await,
        10_000
    );
    // Both queries of queries/fraud read the topic; each counts and logs each malformed
    // record once. Wait for what is asserted (every query's counter and log lines), not
    // for the first query's counter: the other query may still be behind.
    let queries = ["insert_server_log", "insert_alerts"];
    let logged = |log: &str, query: &str| log.matches(&format!("skipped malformed record query={query} ")).count();
    wait_until("each query to count and log the 5 malformed records", Duration::from_secs(60), || async {
        let log = eddy.log_text();
        queries.iter().all(|q| eddy.query_counter(q, "malformed") >= 5 && logged(&log, q) >= 5)
    })
    .await;
    let log = eddy.log_text();
    for query in queries {
        assert_eq!(eddy.query_counter(query, "malformed"), 5, "{query} counts each malformed record once");
        assert_eq!(logged(&log, query), 5, "{query} logs each malformed record once:\n{log}");
    }
    assert!(log.contains(&format!("record={topic}/")), "the log names topic/partition@offset:\n{log}");
    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}

/// `CREATE STREAM logins AS SELECT ... WHERE event_type = 'login'` writes exactly the
/// logins, keyed by event_id (a value column of each line, also written as the record key
/// with `'key.fields'`), to its topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_kafka_stream_writes_exactly_the_filtered_records() {
    let input = unique("logs-in");
    let output = unique("logins-out");
    let dir = scratch_dir("eddy-e2e-k2k");
    let sql = dir.join("01_logins.sql");
    std::fs::write(
        &sql,
        "CREATE STREAM server_logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)\n\
         WITH (kafka_topic='${IN_TOPIC}', value_format='DELIMITED', partitions=2);\n\
         CREATE STREAM logins WITH (kafka_topic='${OUT_TOPIC}', partitions=1, 'key.fields'='event_id') AS\n\
         SELECT event_id, account_id, UPPER(location_country) AS country, event_ts FROM server_logs WHERE event_type = 'login';\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let app = unique("k2k");
    let eddy = Eddy::run(&dir, &[sql.as_path()], &[("IN_TOPIC", &input), ("OUT_TOPIC", &output), ("EDDY_APPLICATION_ID", &app)]);
    wait_until("the query to start", Duration::from_secs(60), || async { eddy.status_file.exists() }).await;
    produce(
        &input,
        &[
            (Some("a"), "a,1,login,ru,100"),
            (Some("b"), "b,2,click,in,101"),
            (Some("c"), "c,3,login,\"u,k\",102"),
            (Some("d"), "d,4,log-out,uk,103"),
            (None, "hello,world"),
            (Some("e"), "e,5,login,in,104"),
        ],
    )
    .await;
    let mut got = consume(&output, 3, Duration::from_secs(60)).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some("a".to_string()), "a,1,RU,100".to_string()),
            (Some("c".to_string()), "c,3,\"U,K\",102".to_string()),
            (Some("e".to_string()), "e,5,IN,104".to_string()),
        ]
    );
    wait_until("the malformed count", Duration::from_secs(10), || async { eddy.counter("malformed") == 1 }).await;
    assert_eq!(eddy.counter("rows_out"), 3);
    assert!(eddy.terminate().success());
}

/// SIGKILL in the middle of 50,000 events, then a restart: every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_lose_and_duplicate_nothing() {
    let topic = unique("server-logs-crash");
    let app = unique("crash");
    let db = TestDb::create().await;
    let dir = scratch_dir("eddy-e2e-crash");
    // Produce while Eddy runs, so the kill lands mid-stream.
    let mut producer = Command::new(eddy_bin())
        .args(["gen", "server-logs", "--topic", &topic, "--count", "50000", "--seed", "9", "--rate", "8000"])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .spawn()
        .unwrap_or_else(|e| panic!("eddy gen: {e}"));
    // The records themselves, from the broker's offsets: joining a consumer group on a
    // loaded broker can take longer than the check allows.
    wait_until("the generator's first records", Duration::from_secs(60), || async {
        let t = topic.clone();
        tokio::task::spawn_blocking(move || records_in(&t)).await.unwrap_or(0) > 0
    })
    .await;
    let alerts = format!("{topic}-alerts");
    let env = fraud_env(&topic, &alerts, &db, &app);
    let first = Eddy::run(&dir, &[Path::new("queries/fraud")], &env);
    wait_until("some rows before the crash", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM server_log").await >= 5_000
    })
    .await;
    first.kill();
    let at_kill = db.scalar("SELECT count(*) FROM server_log").await;
    assert!(at_kill < 50_000, "the kill should land mid-stream, but {at_kill} rows were already in");

    let second = Eddy::run(&dir, &[Path::new("queries/fraud")], &env);
    let produced = tokio::task::spawn_blocking(move || producer.wait()).await.ok().and_then(Result::ok);
    assert!(produced.is_some_and(|s| s.success()), "eddy gen failed");
    wait_until("50,000 rows after the restart", Duration::from_secs(240), || async {
        db.scalar("SELECT count(*) FROM server_log").await == 50_000
    })
    .await;
    assert_eq!(db.scalar("SELECT count(DISTINCT event_id) FROM server_log").await, 50_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.scalar("SELECT count(*) FROM server_log").await, 50_000);
    assert!(second.terminate().success());
    db.drop_db().await;
}

/// A SQL error stops `eddy run` before anything starts, naming file, line and column.
#[test]
fn sql_error_names_file_line_and_column() {
    let dir = scratch_dir("eddy-e2e-bad-sql");
    std::fs::write(
        dir.join("01_stream.sql"),
        "CREATE STREAM server_logs (event_id VARCHAR, account_id INT, event_ts BIGINT)\nWITH (kafka_topic='never-created', value_format='DELIMITED');\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("02_sink.sql"),
        "CREATE TABLE out_t (event_id VARCHAR, account_id INT) WITH ('connector'='print');\nINSERT INTO out_t\nSELECT event_id,\n       acount_id\nFROM server_logs;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(eddy_bin())
        .arg("run")
        .arg(&dir)
        .env("EDDY_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .output()
        .unwrap_or_else(|e| panic!("eddy run: {e}"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = dir.join("02_sink.sql").display().to_string();
    let expected = format!(
        "error: {file}:4:8: unknown column \"acount_id\"\n  |\n4 |        acount_id\n  |        ^\nhint: did you mean \"account_id\"?\n"
    );
    assert_eq!(stderr, expected);
}
