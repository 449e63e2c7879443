//! Windows end to end through the real broker and PostgreSQL: the revenue pipeline of
//! SCENARIOS.md §2, out-of-order input, late rows, idle partitions, partition counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eddy_e2e::*;

/// Event time of the first generated transaction (2026-01-01T00:00:00Z), seconds.
const START_TS: i64 = 1_767_225_600;

/// `(window_start_ms, total, count)` per 3-second window.
type Windows = BTreeMap<i64, (f64, i64)>;

/// Runs `eddy gen transactions` into a new topic of `partitions`.
fn gen_transactions(topic: &str, count: u64, seed: u64, partitions: i32, disorder_ms: i64) {
    let status = Command::new(eddy_bin())
        .args(["gen", "transactions", "--topic", topic, "--count", &count.to_string(), "--seed", &seed.to_string()])
        .args(["--start-ts", &START_TS.to_string(), "--step-ms", "10"])
        .args(["--partitions", &partitions.to_string(), "--disorder-ms", &disorder_ms.to_string()])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .status()
        .unwrap_or_else(|e| panic!("eddy gen: {e}"));
    assert!(status.success(), "eddy gen failed: {status}");
}

/// Milliseconds of `2026-01-01T00:00:01.230Z`.
fn parse_ms(iso: &str) -> i64 {
    let t = iso.trim_end_matches('Z');
    let (date, time) = t.split_once('T').unwrap_or_else(|| panic!("bad time {iso}"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap_or(0)).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap_or(0)).collect();
    // Days from civil (Howard Hinnant).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap_or(0);
    ((days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2]) * 1000) + ms
}

/// The windows the records of `topic` imply: every user's amount is known from the
/// leading digit of its id (SCENARIOS.md §2), checked here too.
async fn expected_windows(topic: &str, count: usize) -> Windows {
    let records = consume(topic, count, Duration::from_secs(120)).await;
    assert_eq!(records.len(), count, "read back every generated record");
    let mut windows = Windows::new();
    for (_, value) in records {
        let v: serde_json::Value = serde_json::from_str(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
        let user = v["user_id"].as_str().unwrap_or_default();
        let digit = user.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(99) as i64;
        let amount = v["amount"].as_i64().unwrap_or(-1);
        assert_eq!(amount, if digit == 0 { 100 } else { 10 * digit }, "{value}");
        let ms = parse_ms(v["paid_at"].as_str().unwrap_or_default());
        let w = windows.entry(ms - ms.rem_euclid(3000)).or_insert((0.0, 0));
        w.0 += amount as f64;
        w.1 += 1;
    }
    windows
}

/// Rows of a revenue table: `(window_start_ms, window_end_ms, total, count, average)`.
async fn table_rows(db: &TestDb, table: &str) -> Vec<(i64, i64, f64, i64, f64)> {
    let client = db.client().await;
    let sql = format!(
        "SELECT (extract(epoch FROM window_start) * 1000)::bigint, (extract(epoch FROM window_end) * 1000)::bigint, \
         total_amount, transaction_count, average_amount FROM {table} ORDER BY window_start"
    );
    match client.query(&sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect(),
        Err(_) => Vec::new(),
    }
}

/// Checks each row against the expected windows: same windows, totals, counts, averages.
fn assert_windows(rows: &[(i64, i64, f64, i64, f64)], want: &Windows) {
    let got: Vec<(i64, i64, f64, i64)> = rows.iter().map(|r| (r.0, r.1, r.2, r.3)).collect();
    let expected: Vec<(i64, i64, f64, i64)> = want.iter().map(|(s, (t, n))| (*s, s + 3000, *t, *n)).collect();
    assert_eq!(got, expected);
    for r in rows {
        assert!((r.4 - r.2 / r.3 as f64).abs() < 1e-9, "average of {r:?}");
    }
}

/// A far-future transaction: its window stays open, every earlier one closes.
async fn produce_sentinel(topic: &str) {
    produce(topic, &[(Some("1c7d3a5f-user"), r#"{"user_id": "1c7d3a5f-user", "amount": 10, "paid_at": "2027-01-01T00:00:00Z"}"#)]).await;
}

/// SCENARIOS.md §2 end to end: 6,000 transactions out of order by up to 4 s (inside the
/// 5 s watermark delay) on 4 partitions; every window in PostgreSQL and on Kafka equals
/// what the input implies, and the window counts add up to the events produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_pipeline_windows_match_the_input() {
    let topic = unique("transactions");
    let out_topic = unique("revenue");
    let late_topic = unique("transactions-late");
    let app = unique("revenue");
    let db = TestDb::create().await;
    gen_transactions(&topic, 6000, 11, 4, 4000);
    let want = expected_windows(&topic, 6000).await;
    assert_eq!(want.values().map(|w| w.1).sum::<i64>(), 6000);

    let dir = scratch_dir("eddy-e2e-revenue");
    let env = [
        ("EDDY_TRANSACTIONS_TOPIC", topic.as_str()),
        ("EDDY_TRANSACTIONS_LATE_TOPIC", late_topic.as_str()),
        ("EDDY_REVENUE_TOPIC", out_topic.as_str()),
        ("EDDY_POSTGRES_URL", db.url.as_str()),
        ("EDDY_APPLICATION_ID", app.as_str()),
    ];
    let eddy = Eddy::run(&dir, &[Path::new("queries/revenue")], &env);
    produce_sentinel(&topic).await;
    // The sentinel's partition advances; the other three go idle after 10 s.
    wait_until("every window in PostgreSQL", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM transactions_aggregate").await == want.len() as i64
    })
    .await;
    let rows = table_rows(&db, "transactions_aggregate").await;
    assert_windows(&rows, &want);
    assert_eq!(rows.iter().map(|r| r.3).sum::<i64>(), 6000);

    let records = consume(&out_topic, want.len(), Duration::from_secs(60)).await;
    assert_eq!(records.len(), want.len(), "one Kafka record per window");
    let mut kafka: Vec<(String, f64, i64)> = records
        .iter()
        .map(|(key, value)| {
            let v: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{e}: {value}"));
            assert_eq!(key.as_deref(), v["window_start"].as_str(), "keyed by window_start");
            (
                v["window_start"].as_str().unwrap_or_default().to_string(),
                v["total_amount"].as_f64().unwrap_or(-1.0),
                v["transaction_count"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    kafka.sort_by(|a, b| a.0.cmp(&b.0));
    let totals: Vec<(f64, i64)> = kafka.iter().map(|k| (k.1, k.2)).collect();
    let want_totals: Vec<(f64, i64)> = want.values().copied().collect();
    assert_eq!(totals, want_totals);
    assert_eq!(eddy.counter("late_rows"), 0);
    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}

/// A revenue query over `topic` (event time `paid_at`, 5 s watermark delay, source
/// options `options` such as `, 'scan.watermark.idle-timeout'='1 s'`) into the
/// PostgreSQL table `rev_<name>`, upserted on window_start.
fn revenue_sql(name: &str, topic: &str, options: &str) -> String {
    format!(
        "CREATE TABLE tx_{name} (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), \
         WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'='kafka', 'topic'='{topic}', 'format'='json'{options});\n\
         CREATE TABLE rev_{name} (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total_amount DOUBLE, transaction_count BIGINT, \
         average_amount DOUBLE, PRIMARY KEY (window_start) NOT ENFORCED) WITH ('connector'='postgres');\n\
         INSERT INTO rev_{name} SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount) \
         FROM TABLE(TUMBLE(TABLE tx_{name}, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;\n"
    )
}

/// The SQL of the out-of-order test: one query per topic, each into its own table.
fn two_topic_sql(in_order: &str, shuffled: &str, late_topic: &str) -> String {
    revenue_sql("ordered", in_order, ", 'scan.watermark.idle-timeout'='1 s'")
        + &revenue_sql("shuffled", shuffled, &format!(", 'scan.watermark.idle-timeout'='1 s', 'late-rows.topic'='{late_topic}'"))
}

/// The same events in order (1 partition) and shuffled within the watermark delay (4
/// partitions) give the same windows; rows beyond the delay are counted as late and
/// copied, bytes unchanged, to the late-rows topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_input_gives_the_in_order_windows_and_late_rows_are_kept() {
    let ordered = unique("tx-ordered");
    let shuffled = unique("tx-shuffled");
    let late_topic = unique("tx-late");
    let db = TestDb::create().await;
    gen_transactions(&ordered, 3000, 5, 1, 0);
    gen_transactions(&shuffled, 3000, 5, 4, 4500);
    let want = expected_windows(&ordered, 3000).await;
    assert_eq!(expected_windows(&shuffled, 3000).await, want, "the same events");

    let dir = scratch_dir("eddy-e2e-disorder");
    let sql = dir.join("q.sql");
    std::fs::write(&sql, two_topic_sql(&ordered, &shuffled, &late_topic)).unwrap_or_else(|e| panic!("{e}"));
    let app = unique("disorder");
    let eddy = Eddy::run(&dir, &[sql.as_path()], &[("EDDY_POSTGRES_URL", db.url.as_str()), ("EDDY_APPLICATION_ID", app.as_str())]);
    produce_sentinel(&ordered).await;
    produce_sentinel(&shuffled).await;
    wait_until("every window of both", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM rev_ordered").await == want.len() as i64
            && db.scalar("SELECT count(*) FROM rev_shuffled").await == want.len() as i64
    })
    .await;
    assert_windows(&table_rows(&db, "rev_ordered").await, &want);
    assert_windows(&table_rows(&db, "rev_shuffled").await, &want);

    // Three rows of a window closed long ago.
    let late = [
        r#"{"user_id": "2d8e4b6a-user", "amount": 20, "paid_at": "2026-01-01T00:00:00.500Z"}"#,
        r#"{"user_id": "3e9f5c7b-user", "amount": 30, "paid_at": "2026-01-01T00:00:01Z"}"#,
        r#"{"user_id": "4fa06d8c-user",  "amount": 40, "paid_at": "2026-01-01T00:00:02Z"}"#,
    ];
    let records: Vec<(Option<&str>, &str)> = late.iter().map(|v| (Some("late"), *v)).collect();
    produce(&shuffled, &records).await;
    let copied = consume(&late_topic, 3, Duration::from_secs(60)).await;
    let mut values: Vec<&str> = copied.iter().map(|(_, v)| v.as_str()).collect();
    values.sort();
    let mut expected = late.to_vec();
    expected.sort();
    assert_eq!(values, expected, "late rows keep their bytes");
    assert!(copied.iter().all(|(k, _)| k.as_deref() == Some("late")), "and their keys");
    wait_until("late_rows = 3", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&eddy.status_file).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["queries"][1]["late_rows"].as_u64() == Some(3) && v["queries"][0]["late_rows"].as_u64() == Some(0)
    })
    .await;
    // The late rows changed nothing.
    assert_windows(&table_rows(&db, "rev_shuffled").await, &want);
    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}

/// All rows in one partition of four: the three empty partitions stop holding the
/// watermark back after the 1 s idle timeout, and exactly the windows the watermark
/// passed are emitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_partitions_do_not_hold_windows_back() {
    let topic = unique("tx-idle");
    let db = TestDb::create().await;
    let status = Command::new(eddy_bin())
        .args(["topics", "create", &topic, "--partitions", "4"])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    // 300 rows 100 ms apart, all keyed alike (one partition): event times 0 .. 29.9 s.
    let values: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"user_id": "5ab17e9d-user", "amount": 50, "paid_at": "2026-01-01T00:00:{:02}.{}00Z"}}"#, i / 10, i % 10))
        .collect();
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (Some("one-key"), v.as_str())).collect();
    produce(&topic, &records).await;

    let dir = scratch_dir("eddy-e2e-idle");
    let sql = dir.join("q.sql");
    std::fs::write(&sql, revenue_sql("idle", &topic, ", 'scan.watermark.idle-timeout'='1 s'")).unwrap_or_else(|e| panic!("{e}"));
    let app = unique("idle");
    let eddy = Eddy::run(&dir, &[sql.as_path()], &[("EDDY_POSTGRES_URL", db.url.as_str()), ("EDDY_APPLICATION_ID", app.as_str())]);
    // Watermark = 29.9 s - 5 s = 24.9 s: windows [0,3) .. [21,24) close, [24,27) does not.
    wait_until("8 windows", Duration::from_secs(60), || async { db.scalar("SELECT count(*) FROM rev_idle").await == 8 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut want = Windows::new();
    for i in 0..8 {
        want.insert(1_767_225_600_000 + i * 3000, (1500.0, 30));
    }
    assert_windows(&table_rows(&db, "rev_idle").await, &want);
    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}

/// SIGKILL while windows are open, then a restart: every window in PostgreSQL still
/// equals what the input implies. Offsets are committed only for rows whose windows were
/// emitted, with the watermark reached; the restarted query re-reads the rest and starts
/// from that watermark, so no window is lost, counted twice, or overwritten by a partial copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_survive_sigkill_and_restart() {
    let topic = unique("tx-kill");
    let app = unique("kill");
    let db = TestDb::create().await;
    gen_transactions(&topic, 20_000, 17, 4, 4000);
    let want = expected_windows(&topic, 20_000).await;

    let dir = scratch_dir("eddy-e2e-kill");
    let sql = dir.join("q.sql");
    std::fs::write(&sql, revenue_sql("kill", &topic, ", 'scan.batch.max-rows'='500'")).unwrap_or_else(|e| panic!("{e}"));
    let env = [("EDDY_POSTGRES_URL", db.url.as_str()), ("EDDY_APPLICATION_ID", app.as_str())];
    let eddy = Eddy::run(&dir, &[sql.as_path()], &env);
    wait_until("some windows written", Duration::from_secs(120), || async { db.scalar("SELECT count(*) FROM rev_kill").await >= 10 }).await;
    eddy.kill();
    let before = db.scalar("SELECT count(*) FROM rev_kill").await;
    assert!(before < want.len() as i64, "killed before the end ({before} of {} windows)", want.len());

    let eddy = Eddy::run(&dir, &[sql.as_path()], &env);
    produce_sentinel(&topic).await;
    // The sentinel's partition runs ahead; the other three go idle after 10 s.
    wait_until("every window after the restart", Duration::from_secs(120), || async {
        db.scalar("SELECT count(*) FROM rev_kill").await == want.len() as i64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_windows(&table_rows(&db, "rev_kill").await, &want);
    let status = eddy.terminate();
    assert!(status.success(), "eddy run exited with {status}");
    db.drop_db().await;
}
