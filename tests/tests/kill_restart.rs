//! The shipped pipelines killed 10 times: `eddy run --state-dir` over queries/fraud and
//! queries/revenue, SIGKILLed at random moments while 100,000 server-log events and
//! 20,000 transactions flow, restarted each time. Against an uninterrupted run over the
//! same events: `server_log` holds exactly the 100,000 events, the revenue table has the
//! same windows and totals, and the `alerts` topic holds exactly the same alerts, none
//! lost and none repeated (the Kafka sink reads back what it wrote after the checkpoint
//! it resumes from and suppresses it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use eddy_e2e::*;
use rand::Rng;

const EVENTS: u64 = 100_000;
const TRANSACTIONS: u64 = 20_000;
/// Event time of the first event (epoch seconds), as the other end-to-end tests use.
const START_TS: &str = "1601736282";

/// One pipeline's names: topics, tables, application id, state directory.
struct Names {
    env: Vec<(String, String)>,
    state: std::path::PathBuf,
    dir: std::path::PathBuf,
    server_logs: String,
    transactions: String,
    alerts: String,
    server_log_table: String,
    revenue_table: String,
}

fn names(tag: &str, db: &TestDb) -> Names {
    let dir = scratch_dir(&format!("eddy-kill-{tag}"));
    let server_logs = unique(&format!("kill-{tag}-logs"));
    let transactions = unique(&format!("kill-{tag}-tx"));
    let alerts = unique(&format!("kill-{tag}-alerts"));
    let server_log_table = format!("server_log_{tag}");
    let revenue_table = format!("revenue_{tag}");
    let env = vec![
        ("EDDY_APPLICATION_ID".to_string(), unique(&format!("kill-{tag}"))),
        ("EDDY_POSTGRES_URL".to_string(), db.url.clone()),
        ("EDDY_SERVER_LOGS_TOPIC".to_string(), server_logs.clone()),
        ("EDDY_SERVER_LOG_TABLE".to_string(), server_log_table.clone()),
        ("EDDY_ALERTS_TOPIC".to_string(), alerts.clone()),
        ("EDDY_TRANSACTIONS_TOPIC".to_string(), transactions.clone()),
        ("EDDY_TRANSACTIONS_LATE_TOPIC".to_string(), unique(&format!("kill-{tag}-late"))),
        ("EDDY_REVENUE_TOPIC".to_string(), unique(&format!("kill-{tag}-revenue"))),
        ("EDDY_REVENUE_TABLE".to_string(), revenue_table.clone()),
        ("EDDY_CHECKPOINT_INTERVAL".to_string(), "1s".to_string()),
    ];
    Names { env, state: dir.join("state"), dir, server_logs, transactions, alerts, server_log_table, revenue_table }
}

fn start(n: &Names) -> Eddy {
    let env: Vec<(&str, &str)> = n.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let state = n.state.display().to_string();
    let args = [Path::new("--state-dir"), Path::new(&state), Path::new("queries/fraud"), Path::new("queries/revenue")];
    Eddy::run(&n.dir, &args, &env)
}

/// `eddy gen <kind>` of `count` events with `seed` into `topic` at `rate` events per
/// second, in the background.
fn generate(kind: &str, topic: &str, count: u64, seed: u64, rate: u32) -> std::process::Child {
    Command::new(eddy_bin())
        .args([
            "gen",
            kind,
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
            "--start-ts",
            START_TS,
            "--rate",
            &rate.to_string(),
        ])
        .env("EDDY_BOOTSTRAP_SERVERS", bootstrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("eddy gen: {e}"))
}

fn wait_child(mut child: std::process::Child) {
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "eddy gen failed: {status}");
}

/// The revenue windows: window start (ms) -> (total, count, average).
async fn revenue(db: &TestDb, table: &str) -> BTreeMap<i64, (f64, i64, f64)> {
    let client = db.client().await;
    let rows = client
        .query(
            &format!(
                "SELECT (extract(epoch FROM window_start) * 1000)::bigint, total_amount, transaction_count, average_amount FROM {table}"
            ),
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3)))).collect()
}

/// Waits until the run has written every event, its four queries run, and neither
/// their outputs nor the rows they read change for 12 s.
async fn settle(db: &TestDb, n: &Names, eddy: &Eddy) -> (Vec<String>, BTreeMap<i64, (f64, i64, f64)>) {
    wait_until("four queries running", Duration::from_secs(300), || async {
        let queries = eddy.status_queries();
        queries.len() == 4 && queries.iter().all(|q| q["status"] == "RUNNING")
    })
    .await;
    wait_until(&format!("{EVENTS} rows in {}", n.server_log_table), Duration::from_secs(300), || async {
        db.scalar(&format!("SELECT count(*) FROM {}", n.server_log_table)).await >= EVENTS as i64
    })
    .await;
    // Windows and alerts trail the events by the watermark delay and the idle timeout.
    let mut last = (0usize, 0usize, 0u64);
    let mut stable_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let alerts = consume(&n.alerts, usize::MAX, Duration::from_secs(3)).await.len();
        let windows = revenue(db, &n.revenue_table).await.len();
        let read: u64 = eddy.status_queries().iter().filter_map(|q| q["rows_in"].as_u64()).sum();
        if (alerts, windows, read) != last {
            last = (alerts, windows, read);
            stable_since = Instant::now();
        } else if stable_since.elapsed() > Duration::from_secs(12) {
            break;
        }
        assert!(Instant::now() < deadline, "outputs of {} kept changing", n.alerts);
    }
    // Read until the settled count (a fresh reader may need more than 3 s to get them all).
    let mut alerts: Vec<String> = consume(&n.alerts, last.0, Duration::from_secs(30)).await.into_iter().map(|(_, v)| v).collect();
    alerts.sort();
    (alerts, revenue(db, &n.revenue_table).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ten_times_the_pipelines_give_the_results_of_an_uninterrupted_run() {
    // A broker of its own: the records of this test would slow the shared one down.
    let _broker = OwnBroker::start("kill-restart");
    let db = TestDb::create().await;
    let seed: u64 = rand::rng().random_range(0..1_000_000);

    // The uninterrupted run.
    let a = names("a", &db);
    let eddy = start(&a);
    let gens = [
        generate("server-logs", &a.server_logs, EVENTS, seed, 10_000),
        generate("transactions", &a.transactions, TRANSACTIONS, seed, 10_000),
    ];
    gens.into_iter().for_each(wait_child);
    let (alerts_a, revenue_a) = settle(&db, &a, &eddy).await;
    assert!(eddy.terminate().success());
    assert!(alerts_a.len() > 100, "too few alerts to compare: {}", alerts_a.len());
    assert!(revenue_a.len() > 20, "too few windows to compare: {}", revenue_a.len());

    // The same events, killed 10 times at random moments while they flow (slower, so
    // that they still flow at the last kill).
    let b = names("b", &db);
    let mut eddy = start(&b);
    let gens =
        [generate("server-logs", &b.server_logs, EVENTS, seed, 2_500), generate("transactions", &b.transactions, TRANSACTIONS, seed, 500)];
    let mut rows = 0;
    for kill in 0..10 {
        // A random moment after the restarted run has written something again.
        let before = rows;
        wait_until("progress after a restart", Duration::from_secs(120), || async {
            db.scalar(&format!("SELECT count(*) FROM {}", b.server_log_table)).await > before || before >= EVENTS as i64
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(200..2_500))).await;
        rows = db.scalar(&format!("SELECT count(*) FROM {}", b.server_log_table)).await;
        eprintln!("kill {}: {rows} rows in {} so far", kill + 1, b.server_log_table);
        eddy.kill();
        eddy = start(&b);
    }
    gens.into_iter().for_each(wait_child);
    let (alerts_b, revenue_b) = settle(&db, &b, &eddy).await;
    let log = eddy.log_text();
    assert!(eddy.terminate().success(), "{log}");

    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {}", b.server_log_table)).await, EVENTS as i64);
    assert_eq!(db.scalar(&format!("SELECT count(DISTINCT event_id) FROM {}", b.server_log_table)).await, EVENTS as i64);
    assert_eq!(revenue_b, revenue_a, "revenue windows differ from the uninterrupted run");
    // Every query's last watermark is kept in its own directory under --state-dir, none
    // in the working directory (the repository root here).
    let app = &b.env[0].1;
    let watermark = b.state.join("checkpoints").join(format!("{app}-insert_alerts")).join("watermark");
    assert!(watermark.is_file(), "no watermark file at {}", watermark.display());
    assert!(
        !repo_root().join(".eddy/watermarks").join(format!("{app}-insert_alerts")).exists(),
        "a watermark file in the working directory"
    );
    let (missing, extra) = diff(&alerts_a, &alerts_b);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} of {} alerts lost, e.g. {:?}\n{} alerts repeated or new, e.g. {:?}",
        missing.len(),
        alerts_a.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)]
    );
    db.drop_db().await;
}

/// Alerts of `a` not in `b`, and of `b` not in `a` (as multisets; both sorted).
fn diff(a: &[String], b: &[String]) -> (Vec<String>, Vec<String>) {
    fn count(v: &[String]) -> BTreeMap<&String, i64> {
        let mut m = BTreeMap::new();
        for s in v {
            *m.entry(s).or_default() += 1;
        }
        m
    }
    let (ca, cb) = (count(a), count(b));
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (s, n) in &ca {
        for _ in 0..(n - cb.get(s).copied().unwrap_or(0)).max(0) {
            missing.push((*s).clone());
        }
    }
    for (s, n) in &cb {
        for _ in 0..(n - ca.get(s).copied().unwrap_or(0)).max(0) {
            extra.push((*s).clone());
        }
    }
    (missing, extra)
}
