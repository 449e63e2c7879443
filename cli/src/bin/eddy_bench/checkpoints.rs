//! The cost of checkpoints (`--checkpoints`, broker needed): Q1 (1-minute tumbling
//! windows per event type, COUNT + COUNT DISTINCT) and Q3 (the fraud MATCH_RECOGNIZE)
//! read the same server-log topic (4 partitions) into a blackhole, once without
//! checkpoints and once with a checkpoint every second (operator state snapshotted at
//! aligned barriers and written as Arrow IPC files, fsynced), timed from the first
//! record read to the query stopped after the last record. Then recovery: a query
//! holding 100,000 open windows (one per account) is stopped (its last checkpoint
//! written) and started again, timed until it runs with every window restored.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eddy_connectors::Connectors;
use eddy_engine::runtime::{start_query_with, Checkpointing, QueryHandle};
use eddy_engine::sql::planner::{PlannedStatement, QueryPlan};
use eddy_engine::{Engine, Script};

/// The server-log source over `topic` (queries/fraud's event time and watermark).
fn source(topic: &str) -> String {
    format!(
        "CREATE STREAM server_logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT, \
         ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
         WITH (kafka_topic='{topic}', value_format='delimited', 'scan.startup.mode'='earliest-offset');\n"
    )
}

const Q1: &str =
    "CREATE TABLE out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT, accounts BIGINT) WITH ('connector'='blackhole');\n\
    INSERT INTO out SELECT window_start, event_type, COUNT(*), COUNT(DISTINCT account_id) \
    FROM TABLE(TUMBLE(TABLE server_logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type;\n";

/// One window per account, open for a day: 100,000 accounts are 100,000 open windows.
const OPEN_KEYS: &str =
    "CREATE TABLE out (account_id INT, window_start TIMESTAMP(3), n BIGINT, countries BIGINT) WITH ('connector'='blackhole');\n\
    INSERT INTO out SELECT account_id, window_start, COUNT(*), COUNT(DISTINCT location_country) \
    FROM TABLE(TUMBLE(TABLE server_logs, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY window_start, window_end, account_id;\n";

fn plan(sql: &str) -> anyhow::Result<Arc<QueryPlan>> {
    let plan = Engine::new(None, "bench").plan(&[Script { name: "q".into(), sql: sql.into() }]).map_err(|e| anyhow::anyhow!("{e}"))?;
    plan.statements
        .into_iter()
        .find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q),
            _ => None,
        })
        .context("no query")
}

/// `n` server-log lines of `accounts` accounts, 1,000 events per second of event time.
fn events(n: usize, accounts: usize) -> Vec<(String, String)> {
    const TYPES: [&str; 8] = ["click", "purchase", "login", "log-out", "delete-account", "create-account", "update-settings", "other"];
    const COUNTRIES: [&str; 15] = ["USA", "IN", "UK", "CA", "AU", "DE", "ES", "FR", "NL", "SG", "RU", "JP", "BR", "CN", "O"];
    (0..n)
        .map(|i| {
            let key = format!("{:08x}-7aee-409a-85cc-{:012x}", i, i * 7919);
            let account = (i * 7_919) % accounts;
            let line = format!(
                "{key},{account},{},{},{}",
                TYPES[(i * 13 + i / 7) % 8],
                COUNTRIES[(i / 3 + i * 5) % 15],
                1_601_736_282 + i / 1_000
            );
            (key, line)
        })
        .collect()
}

async fn start(
    plan: Arc<QueryPlan>,
    factory: &Connectors,
    group: &str,
    checkpoints: Option<&Checkpointing>,
) -> anyhow::Result<QueryHandle> {
    super::running(start_query_with(plan, Arc::new(factory.clone()), format!("{group}-"), None, checkpoints.cloned())).await
}

/// Reads every one of `n` records; returns the time from the first record to the query
/// stopped (its last checkpoint written), and the checkpoints written.
async fn run(
    plan: Arc<QueryPlan>,
    factory: &Connectors,
    group: &str,
    n: usize,
    checkpoints: Option<&Checkpointing>,
) -> anyhow::Result<(Duration, u64)> {
    let mut handle = start(plan, factory, group, checkpoints).await?;
    let begun = Instant::now();
    let mut first = None;
    loop {
        let m = handle.metrics.snapshot();
        if first.is_none() && m.rows_in > 0 {
            first = Some(Instant::now());
        }
        if m.rows_in as usize >= n {
            break;
        }
        anyhow::ensure!(handle.is_running(), "the query stopped: {}", handle.status());
        anyhow::ensure!(begun.elapsed() < Duration::from_secs(600), "the query did not read {n} records");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let status = handle.stop().await;
    anyhow::ensure!(!status.to_string().starts_with("FAILED"), "{status}");
    Ok((first.map(|f| f.elapsed()).unwrap_or_default(), handle.metrics.snapshot().checkpoints))
}

/// Runs the checkpoint benchmarks with `n` events (see the module docs).
pub async fn checkpoints(bootstrap: &str, dir: &Path, n: usize) -> anyhow::Result<()> {
    let suffix = format!("{:08x}", rand::random::<u32>());
    let topic = format!("bench-checkpoints-{suffix}");
    super::produce(bootstrap, &topic, &events(n, 10_000)).await?;
    let factory = Connectors {
        bootstrap_servers: bootstrap.to_string(),
        postgres_url: None,
        kafka_properties: Default::default(),
        sandbox: None,
        connect_timeout: eddy_connectors::DEFAULT_CONNECT_TIMEOUT,
    };
    let every_second = Checkpointing { dir: dir.join(format!("checkpoints-{suffix}")), interval_ms: 1_000 };
    for (name, query) in
        [("Q1 tumbling per event_type, COUNT + COUNT DISTINCT", Q1), ("Q3 fraud MATCH_RECOGNIZE", super::FRAUD_ALERTS_TO_BLACKHOLE)]
    {
        let sql = source(&topic) + query;
        let mut rates = Vec::new();
        for (i, (label, checkpoints)) in [("no checkpoints", None), ("checkpoint every 1 s", Some(&every_second))].into_iter().enumerate() {
            let (elapsed, written) = run(plan(&sql)?, &factory, &format!("bench-chk-{suffix}-{}-{i}", &name[..2]), n, checkpoints).await?;
            rates.push(super::report(&format!("{} from Kafka, {label}", &name[..2]), n, elapsed));
            if checkpoints.is_some() {
                println!("  ({written} checkpoints written)");
            }
        }
        println!("  {name}: checkpointing every 1 s costs {:.1}% of the throughput", 100.0 * (1.0 - rates[1] / rates[0]));
    }

    // Recovery of 100,000 open windows.
    let topic = format!("bench-open-keys-{suffix}");
    let keys = 100_000;
    super::produce(bootstrap, &topic, &events(keys, keys)).await?;
    let sql = source(&topic) + OPEN_KEYS;
    let group = format!("bench-recovery-{suffix}");
    let query = plan(&sql)?;
    run(query.clone(), &factory, &group, keys, Some(&every_second)).await?;
    // Reading the checkpoint back (what the restart does first), on its own.
    let store = eddy_engine::runtime::CheckpointStore::new(&every_second.dir, &format!("{group}-{}", query.id));
    let read = Instant::now();
    let latest = store.latest()?.context("no checkpoint written")?;
    let checkpoint = store.load(latest.checkpoint_id)?.context("the checkpoint cannot be read")?;
    let bytes: usize = checkpoint.states.iter().flat_map(|s| s.state.batches.iter()).map(|b| b.get_array_memory_size()).sum();
    println!(
        "  reading the checkpoint ({} state batches, {:.1} MB in Arrow): {:.3} s",
        checkpoint.states.iter().map(|s| s.state.batches.len()).sum::<usize>(),
        bytes as f64 / 1e6,
        read.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut handle = start(plan(&sql)?, &factory, &group, Some(&every_second)).await?;
    let restored = started.elapsed();
    let open = handle.metrics.snapshot().open_windows;
    println!("recovery of a query with {open} open windows (one per key)   {:>7.3} s from start to running", restored.as_secs_f64());
    anyhow::ensure!(open as usize == keys, "expected {keys} restored windows, found {open}");
    handle.stop().await;
    // The same query started without a checkpoint: what the restore adds is the rest.
    let started = Instant::now();
    let mut fresh = start(plan(&sql)?, &factory, &format!("{group}-fresh"), Some(&every_second)).await?;
    println!("  the same query started without a checkpoint:             {:>7.3} s", started.elapsed().as_secs_f64());
    fresh.stop().await;
    let _ = std::fs::remove_dir_all(&every_second.dir);
    Ok(())
}
