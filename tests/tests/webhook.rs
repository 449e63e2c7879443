//! The webhook sink end to end: `eddy run` sends a file's rows to a real HTTP receiver
//! (axum, in this test) that fails the first requests with 500, refuses one row with 400
//! and accepts the rest. Every accepted row arrives once, in order, with the statement's
//! header; a retried request carries the same `Idempotency-Key`; the refused row is in
//! the PostgreSQL dead-letter table with the receiver's answer. Without a dead letter
//! target, a refusal fails the query with the answer. A receiver that is down is retried
//! (RETRYING) until it is up; a SIGKILL while rows are sent replays them under the same
//! idempotency keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use eddy_e2e::*;

/// One request the receiver saw: the status it answered, the idempotency key, the
/// `X-Env` header and the body.
type Seen = (u16, String, String, String);

/// A receiver on a free port answering 500 to its first `failures` requests, 400 to
/// bodies containing `"bad"`, 200 otherwise.
async fn receiver(failures: usize) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    receiver_on(0, failures).await
}

/// [`receiver`] on `port` (0: a free one).
async fn receiver_on(port: u16, failures: usize) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    receiver_with(port, move |n, body| {
        let status = if n < failures {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if body.contains("\"bad\"") {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        (Duration::ZERO, status)
    })
    .await
}

/// A receiver on `port` (0: a free one) that records every request and answers the
/// n-th (from 0) with `answer(n, body)`: after a delay, a status (400 says "no bad rows").
async fn receiver_with(
    port: u16,
    answer: impl Fn(usize, &str) -> (Duration, StatusCode) + Clone + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                let body = String::from_utf8_lossy(&body).to_string();
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let (delay, status) = {
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    let (delay, status) = answer(log.len(), &body);
                    log.push((status.as_u16(), header("idempotency-key"), header("x-env"), body));
                    (delay, status)
                };
                tokio::time::sleep(delay).await;
                (status, if status == StatusCode::BAD_REQUEST { "no bad rows" } else { "" })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn statements(dir: &std::path::Path, port: u16, dead_letters: &str) -> std::path::PathBuf {
    let data = dir.join("events.json");
    std::fs::write(
        &data,
        "{\"id\": 1, \"kind\": \"a\"}\n{\"id\": 2, \"kind\": \"b\"}\n{\"id\": 3, \"kind\": \"bad\"}\n{\"id\": 4, \"kind\": \"c\"}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let sql = dir.join("01-hook.sql");
    std::fs::write(
        &sql,
        format!(
            "CREATE STREAM events (id INT, kind VARCHAR) WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n\
             CREATE TABLE hook (id INT, kind VARCHAR) WITH ('connector'='webhook', 'url'='http://127.0.0.1:{port}/hook', \
             'headers.X-Env'='test'{dead_letters});\n\
             INSERT INTO hook SELECT id, kind FROM events;\n",
            data.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    sql
}

async fn wait_exit(eddy: &mut Eddy) {
    wait_until("eddy run to finish", Duration::from_secs(120), || {
        let running = eddy.is_running();
        async move { !running }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_reach_the_receiver_once_with_stable_keys_and_refusals_are_dead_lettered() {
    let (port, seen) = receiver(2).await;
    let db = TestDb::create().await;
    let dir = scratch_dir("eddy-webhook");
    let sql = statements(&dir, port, &format!(", 'dead-letter.table'='refused', 'dead-letter.url'='{}'", db.url));
    let mut eddy = Eddy::run(&dir, &[&sql], &[]);
    wait_exit(&mut eddy).await;
    let log = eddy.log_text();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, vec![500, 500, 200, 200, 400, 200], "{seen:?}\n{log}");
    // The two failed attempts were the first row's, under its key.
    assert_eq!(seen[0].1, seen[2].1, "{seen:?}");
    assert_eq!(seen[1].1, seen[2].1, "{seen:?}");
    let accepted: Vec<&str> = seen.iter().filter(|s| s.0 == 200).map(|s| s.3.as_str()).collect();
    assert_eq!(accepted, vec![r#"{"id":1,"kind":"a"}"#, r#"{"id":2,"kind":"b"}"#, r#"{"id":4,"kind":"c"}"#]);
    let mut keys: Vec<&str> = seen.iter().filter(|s| s.0 != 500).map(|s| s.1.as_str()).collect();
    assert!(keys.iter().all(|k| k.len() == 32), "{keys:?}");
    keys.dedup();
    assert_eq!(keys.len(), 4, "one key per row: {seen:?}");
    assert!(seen.iter().all(|s| s.2 == "test"), "{seen:?}");
    let client = db.client().await;
    let rows = client.query("SELECT convert_from(value, 'UTF8'), error FROM refused", &[]).await.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let refused: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(refused, vec![(r#"{"id":3,"kind":"bad"}"#.to_string(), "HTTP 400 Bad Request: no bad rows".to_string())]);
    drop(client);
    db.drop_db().await;
}

/// Requests in flight at once (`'sink.requests.max-inflight'`): every row arrives once,
/// in any order, under its own key; the refused one is dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_together_deliver_every_row_once() {
    let (port, seen) = receiver(0).await;
    let dir = scratch_dir("eddy-webhook-inflight");
    let dead = unique("webhook-inflight-refused");
    let sql = statements(&dir, port, &format!(", 'sink.requests.max-inflight'='4', 'dead-letter.topic'='{dead}'"));
    let mut eddy = Eddy::run(&dir, &[&sql], &[]);
    wait_exit(&mut eddy).await;
    let log = eddy.log_text();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut bodies: Vec<(u16, &str)> = seen.iter().map(|s| (s.0, s.3.as_str())).collect();
    bodies.sort_by_key(|b| b.1);
    assert_eq!(
        bodies,
        vec![
            (200, r#"{"id":1,"kind":"a"}"#),
            (200, r#"{"id":2,"kind":"b"}"#),
            (400, r#"{"id":3,"kind":"bad"}"#),
            (200, r#"{"id":4,"kind":"c"}"#)
        ],
        "{log}"
    );
    let mut keys: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "{seen:?}");
    let refused = consume(&dead, 1, Duration::from_secs(30)).await;
    assert_eq!(refused.len(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_without_dead_letters_fails_the_query_with_the_answer() {
    let (port, seen) = receiver(0).await;
    let dir = scratch_dir("eddy-webhook-fail");
    let sql = statements(&dir, port, "");
    let mut eddy = Eddy::run(&dir, &[&sql], &[]);
    wait_exit(&mut eddy).await;
    let log = eddy.log_text();
    assert!(log.contains("the webhook http://127.0.0.1:") && log.contains("refused 1 row(s): HTTP 400 Bad Request: no bad rows"), "{log}");
    let statuses: Vec<u16> = seen.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.0).collect();
    assert_eq!(statuses, vec![200, 200, 400], "{log}");
}

/// The receiver down: the query shows RETRYING with the connection error, and once the
/// receiver is up every row arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_is_retried_until_it_is_up() {
    let port = free_port();
    let dir = scratch_dir("eddy-webhook-down");
    let sql = statements(&dir, port, &format!(", 'dead-letter.topic'='{}'", unique("webhook-down-refused")));
    let mut eddy = Eddy::run(&dir, &[&sql], &[]);
    wait_until("the query to show RETRYING", Duration::from_secs(60), || {
        let status = eddy.status_queries().first().map(|q| q["status"].to_string()).unwrap_or_default();
        async move { status.contains("RETRYING") && status.contains("Connection refused") }
    })
    .await;
    assert!(eddy.is_running());
    let (_, seen) = receiver_on(port, 0).await;
    wait_exit(&mut eddy).await;
    let statuses: Vec<u16> = seen.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.0).collect();
    assert_eq!(statuses, vec![200, 200, 400, 200], "{}", eddy.log_text());
}

/// SIGKILL while a checkpoint's rows are being sent: the restarted query resumes from
/// the checkpoint before and sends those rows again, each with the key it had, so a
/// receiver that deduplicates on the key accepts every row once.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_sigkill_carries_the_same_keys() {
    const ROWS: usize = 300;
    // A slow receiver: a checkpoint's rows take seconds to send.
    let (port, seen) = receiver_with(0, |_, _| (Duration::from_millis(20), StatusCode::OK)).await;

    let topic = unique("webhook-kill");
    let values: Vec<String> = (0..ROWS).map(|i| format!("{{\"id\": {i}}}")).collect();
    let dir = scratch_dir("eddy-webhook-kill");
    let sql = dir.join("01-hook.sql");
    std::fs::write(
        &sql,
        format!(
            "CREATE STREAM ev (id INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1, 'scan.startup.mode'='earliest-offset');\n\
             CREATE TABLE hook (id INT) WITH ('connector'='webhook', 'url'='http://127.0.0.1:{port}/hook');\n\
             INSERT INTO hook SELECT id FROM ev;\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let state = dir.join("state").display().to_string();
    let app_id = unique("webhook-kill");
    let env = [("EDDY_APPLICATION_ID", app_id.as_str()), ("EDDY_CHECKPOINT_INTERVAL", "1s")];
    let args = [std::path::Path::new("--state-dir"), std::path::Path::new(&state), sql.as_path()];
    let count = || seen.lock().unwrap_or_else(|p| p.into_inner()).len();

    // Eddy creates the topic; the rows are produced once it has. A first wave of 100 is
    // sent and covered by a checkpoint; the second wave is killed while being sent, so
    // the restart resumes from that checkpoint (not from the start) and its keys must
    // follow it as the first run's did.
    let first = Eddy::run(&dir, &args, &env);
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    produce(&topic, &records[..100]).await;
    wait_until("the receiver to get the first 100 rows", Duration::from_secs(120), || {
        let n = count();
        async move { n >= 100 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    produce(&topic, &records[100..]).await;
    wait_until("the receiver to get 60 rows of the second wave", Duration::from_secs(120), || {
        let n = count();
        async move { n >= 160 }
    })
    .await;
    first.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pairs = |all: &[Seen]| -> Vec<(String, String)> { all.iter().map(|s| (s.1.clone(), s.3.clone())).collect() };
    let before = pairs(&seen.lock().unwrap_or_else(|p| p.into_inner()));
    assert!(before.len() < ROWS, "the kill came after every row was sent: {}", before.len());

    let second = Eddy::run(&dir, &args, &env);
    wait_until("every row at the receiver", Duration::from_secs(120), || {
        let distinct: std::collections::BTreeSet<String> =
            seen.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.1.clone()).collect();
        async move { distinct.len() >= ROWS }
    })
    .await;
    let log = second.log_text();
    second.terminate();
    let all = pairs(&seen.lock().unwrap_or_else(|p| p.into_inner()));
    let after = &all[before.len()..];
    // Each row sent before the kill and not covered by a checkpoint is sent again with
    // its key; rows the checkpoint covered are not sent again.
    let mut by_key: std::collections::BTreeMap<&str, &str> = Default::default();
    for (key, body) in &all {
        if let Some(other) = by_key.insert(key.as_str(), body.as_str()) {
            assert_eq!(other, body, "one key, two rows");
        }
    }
    let bodies: std::collections::BTreeSet<&str> = by_key.values().copied().collect();
    assert_eq!(bodies.len(), ROWS, "{log}");
    assert_eq!(by_key.len(), ROWS, "one key per row");
    let resent = before.iter().filter(|b| after.contains(b)).count();
    assert!(resent > 0, "the restart sent nothing again: the kill came after a checkpoint covered every row sent\n{log}");
    assert!(
        !after.iter().any(|(_, body)| body == "{\"id\":0}"),
        "the restart sent the first wave again: it did not resume from the checkpoint\n{log}"
    );
    assert_eq!(before.len() + after.len() - resent, ROWS, "each row arrives once, or again under the same key");
}

/// A receiver slower than `'sink.request-timeout'`: the request is abandoned and sent
/// again under the same key, until one is answered in time.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_receiver_is_retried_under_the_same_key() {
    // The first answer comes later than the sink waits.
    let (port, seen) = receiver_with(0, |n, _| (if n == 0 { Duration::from_secs(3) } else { Duration::ZERO }, StatusCode::OK)).await;
    let dir = scratch_dir("eddy-webhook-slow");
    let data = dir.join("events.json");
    std::fs::write(&data, "{\"id\": 1, \"kind\": \"a\"}\n{\"id\": 2, \"kind\": \"b\"}\n").unwrap_or_else(|e| panic!("{e}"));
    let sql = dir.join("01-hook.sql");
    std::fs::write(
        &sql,
        format!(
            "CREATE STREAM events (id INT, kind VARCHAR) WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n\
             CREATE TABLE hook (id INT, kind VARCHAR) WITH ('connector'='webhook', 'url'='http://127.0.0.1:{port}/hook', \
             'sink.request-timeout'='500 ms');\n\
             INSERT INTO hook SELECT id, kind FROM events;\n",
            data.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut eddy = Eddy::run(&dir, &[&sql], &[]);
    wait_exit(&mut eddy).await;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let bodies: Vec<&str> = seen.iter().map(|s| s.3.as_str()).collect();
    assert_eq!(bodies, vec![r#"{"id":1,"kind":"a"}"#, r#"{"id":1,"kind":"a"}"#, r#"{"id":2,"kind":"b"}"#], "{}", eddy.log_text());
    assert_eq!(seen[0].1, seen[1].1, "the retry carries the first attempt's key");
    assert!(eddy.log_text().contains("no answer within 500 ms"), "{}", eddy.log_text());
}
