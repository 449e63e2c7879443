//! Exactly-once results in PostgreSQL: `eddy server` SIGKILLed at random moments while
//! records flow into a table WITHOUT a primary key (plain COPY, so a repeated row would
//! show) and into tumbling-window totals (so a window counted twice would show). The
//! sink commits each checkpoint's rows with its progress row in `eddy_progress`, and a
//! restarted query resumes from that progress.

use std::collections::BTreeMap;
use std::time::Duration;

use eddy_e2e::*;
use rand::Rng;

/// Records `from..to`: id, account (7 of them), amount = i, event time 10 ms apart.
fn records(from: usize, to: usize) -> Vec<(Option<i32>, Option<String>, String)> {
    (from..to)
        .map(|i| (None, None, format!(r#"{{"id":"e{i}","account_id":"a{}","amount":{i},"ts_ms":{}}}"#, i % 7, BASE_MS + i as i64 * 10)))
        .collect()
}

const BASE_MS: i64 = 1_700_000_000_000;
const TOTAL: usize = 20_000;

async fn produce_range(topic: &str, from: usize, to: usize) {
    let owned = records(from, to);
    let list: Vec<(Option<i32>, Option<&str>, &str)> = owned.iter().map(|(p, k, v)| (*p, k.as_deref(), v.as_str())).collect();
    produce_to(topic, &list).await;
}

/// (account, window start ms) -> (sum, count) of 10-second windows over `0..TOTAL`.
fn expected_windows() -> BTreeMap<(String, i64), (f64, i64)> {
    let mut windows = BTreeMap::new();
    for i in 0..TOTAL {
        let ts = BASE_MS + i as i64 * 10;
        let e = windows.entry((format!("a{}", i % 7), ts - ts.rem_euclid(10_000))).or_insert((0.0, 0));
        e.0 += i as f64;
        e.1 += 1;
    }
    windows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_at_random_moments_postgres_gets_every_row_and_window_exactly_once() {
    let topic = unique("exactly-once-in");
    let db = TestDb::create().await;
    let state = scratch_dir("eddy-exactly-once").join("state");
    let app = unique("exactly-once");
    let env = [("EDDY_APPLICATION_ID", app.as_str())];
    let mut server = Server::start(&state, &env);
    let (status, answer) = server.ksql(&format!(
        "CREATE STREAM payments (id VARCHAR, account_id VARCHAR, amount DOUBLE, ts_ms BIGINT,
             ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
           WITH (kafka_topic='{topic}', value_format='json', partitions=4);
         CREATE TABLE payments_pg (id VARCHAR, account_id VARCHAR, amount DOUBLE)
           WITH ('connector'='postgres', 'url'='{url}', 'table-name'='payments');
         CREATE TABLE totals_pg (account_id VARCHAR, window_start TIMESTAMP(3), total DOUBLE, n BIGINT)
           WITH ('connector'='postgres', 'url'='{url}', 'table-name'='totals');
         INSERT INTO payments_pg SELECT id, account_id, amount FROM payments;
         INSERT INTO totals_pg SELECT account_id, window_start, SUM(amount), COUNT(*)
           FROM TABLE(TUMBLE(TABLE payments, DESCRIPTOR(ts), INTERVAL '10' SECONDS))
           GROUP BY account_id, window_start, window_end;",
        url = db.url
    ));
    assert_eq!(status, 200, "{answer}");

    // The records go in 40 chunks; the server is killed at a random moment after 8 of
    // them (and restarted at once), 5 times in all.
    let chunk = TOTAL / 40;
    let mut kill_after: Vec<usize> = (0..5).map(|k| 4 + k * 8 + rand::rng().random_range(0..4)).collect();
    kill_after.sort_unstable();
    for c in 0..40 {
        produce_range(&topic, c * chunk, (c + 1) * chunk).await;
        if kill_after.first() == Some(&c) {
            kill_after.remove(0);
            tokio::time::sleep(Duration::from_millis(rand::rng().random_range(0..400))).await;
            server.kill();
            server = Server::start(&state, &env);
        }
    }
    // One record per partition far ahead in event time closes every window of the data.
    let closing: Vec<String> =
        (0..4).map(|p| format!(r#"{{"id":"close{p}","account_id":"z","amount":0,"ts_ms":{}}}"#, BASE_MS + 10_000_000)).collect();
    let list: Vec<(Option<i32>, Option<&str>, &str)> =
        closing.iter().enumerate().map(|(p, v)| (Some(p as i32), None, v.as_str())).collect();
    produce_to(&topic, &list).await;

    let expected = expected_windows();
    wait_until("every row and every window in PostgreSQL", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM payments").await >= (TOTAL + 4) as i64
            && db.scalar("SELECT count(*) FROM totals WHERE account_id <> 'z'").await >= expected.len() as i64
    })
    .await;
    // A moment for anything repeated to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.scalar("SELECT count(*) FROM payments").await, (TOTAL + 4) as i64, "rows repeated");
    assert_eq!(db.scalar("SELECT count(DISTINCT id) FROM payments").await, (TOTAL + 4) as i64);

    let client = db.client().await;
    let rows = client
        .query("SELECT account_id, (extract(epoch FROM window_start) * 1000)::bigint, total, n FROM totals WHERE account_id <> 'z' ORDER BY 1, 2", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<((String, i64), (f64, i64))> = rows.iter().map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3)))).collect();
    let want: Vec<((String, i64), (f64, i64))> = expected.into_iter().collect();
    assert_eq!(got.len(), want.len(), "windows written more than once or missing");
    assert_eq!(got, want);

    // Both queries keep one progress row each.
    assert_eq!(db.scalar("SELECT count(*) FROM eddy_progress").await, 2);
    assert!(server.terminate().success());
    db.drop_db().await;
}
