//! `eddy-bench`: the throughput figures of `make bench` (never asserted by tests).
//!
//! CPU (one core, no I/O): decoding 1M DELIMITED server-log lines into Arrow, and
//! decode + filter + projection with the fraud pipeline's CASE.
//!
//! Windows (`--windows`, files, all cores): `eddy run` over generated files into a
//! blackhole sink, timed from start to exit, with the process's peak RSS:
//! Q1 = server logs, 1-minute tumbling windows per event_type with COUNT(*) and
//! COUNT(DISTINCT account_id); Q2 = transactions JSON, 3-second tumbling windows with
//! SUM, COUNT, AVG, globally and per user_id with 10 and with 100,000 users; Q3 = the
//! fraud alerts' MATCH_RECOGNIZE over the server logs (10,000 accounts).
//!
//! With `--services`
//! (broker and PostgreSQL up): the PostgreSQL sink alone, Kafka -> PostgreSQL end to end
//! through the fraud query, and a bare rdkafka consumer reading the same topic.
//! Control plane (`--control-plane`, broker needed): `SHOW QUERIES` latency with 20
//! persistent queries running, and a push query's first row (from the statement to the
//! row in hand, with `auto.offset.reset=earliest` over a filled topic).
//! Checkpoints (`--checkpoints`, broker needed): the throughput of Q1 and Q3 read from
//! Kafka without and with a checkpoint every second, and the recovery of a query with
//! 100,000 open windows (see `checkpoints.rs`).
//! Webhook (`--webhook`, no services): the webhook sink's rows per second to a local
//! receiver with batches of 1 and 500 rows (see `webhook.rs`).
//! Joins (`--joins`, broker and PostgreSQL needed): a stream–table join against a
//! 100,000-row Kafka table, a PostgreSQL lookup join with a 95% cache hit rate, and an
//! interval join, over the 10M-row transactions file (see `joins.rs`).
//! Scaling (`--scaling`, no services): Q2 per user with 10, 100,000 and 10M users and Q3
//! with 10,000 and 1M accounts, with the state per open group (see `scaling.rs`).
//! Mock Kafka (`--mock-kafka`, no services): Kafka -> fraud alerts -> Kafka on rdkafka's
//! MockCluster beside a bare consumer, and the alert latency at 100,000 events/s (see
//! `mock_kafka.rs`).
//! Build with `--release` for meaningful numbers (`make bench` does).

mod checkpoints;
mod joins;
mod mock_kafka;
mod scaling;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use clap::Parser;
use eddy_connectors::kafka::{ensure_topic, KafkaConfig};
use eddy_connectors::Connectors;
use eddy_engine::connector::{ConnectorFactory, QueryContext};
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::operator::{Collector, Operator};
use eddy_engine::operators::{Decode, Filter, Projection};
use eddy_engine::options::ErrorPolicy;
use eddy_engine::options::Format;
use eddy_engine::sql::planner::{PlannedStatement, QueryPlan};
use eddy_engine::{Engine, Script};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;

#[derive(Parser)]
#[command(about = "Eddy throughput benchmarks")]
struct Args {
    /// Events for the CPU benchmarks.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events for the Kafka and PostgreSQL benchmarks.
    #[arg(long, default_value_t = 100_000)]
    io_events: usize,
    /// Also run the benchmarks that need the broker and PostgreSQL.
    #[arg(long)]
    services: bool,
    /// Kafka bootstrap servers.
    #[arg(long, env = "EDDY_BOOTSTRAP_SERVERS", default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    /// PostgreSQL server URL (a database is created and dropped on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Run the window benchmarks over files.
    #[arg(long)]
    windows: bool,
    /// Rows per window benchmark file.
    #[arg(long, default_value_t = 10_000_000)]
    window_events: u64,
    /// Where the generated files are kept (reused when present).
    #[arg(long, default_value = "target/bench")]
    data_dir: std::path::PathBuf,
    /// Skip the CPU micro-benchmarks.
    #[arg(long)]
    no_cpu: bool,
    /// Run only the alert-latency benchmark of the services (broker needed).
    #[arg(long)]
    alert_latency: bool,
    /// Run the control-plane benchmark (broker needed).
    #[arg(long)]
    control_plane: bool,
    /// Run the checkpoint benchmarks (broker needed).
    #[arg(long)]
    checkpoints: bool,
    /// Events for the checkpoint benchmarks.
    #[arg(long, default_value_t = 1_000_000)]
    checkpoint_events: usize,
    /// Run the webhook sink benchmark.
    #[arg(long)]
    webhook: bool,
    /// Run the join benchmarks (broker and PostgreSQL needed; see `joins.rs`).
    #[arg(long)]
    joins: bool,
    /// Rows for the webhook benchmark.
    #[arg(long, default_value_t = 20_000)]
    webhook_rows: usize,
    /// Events per second produced by the alert-latency benchmark.
    #[arg(long, default_value_t = 2_000)]
    alert_rate: u64,
    /// Run the Kafka path on rdkafka's MockCluster (no services; see `mock_kafka.rs`).
    #[arg(long)]
    mock_kafka: bool,
    /// Events for the MockCluster benchmark (at most 62,500 per partition: see `mock_kafka.rs`).
    #[arg(long, default_value_t = 250_000)]
    mock_events: u64,
    /// Partitions of the MockCluster benchmark's topic (see `mock_kafka.rs`).
    #[arg(long, default_value_t = 4)]
    mock_partitions: i32,
    /// Events per second of the MockCluster alert-latency run.
    #[arg(long, default_value_t = 100_000)]
    mock_rate: u64,
    /// Run the cost-as-work-grows benchmark (no services; see `scaling.rs`).
    #[arg(long)]
    scaling: bool,
}

const BATCH: usize = 8192;
const TYPES: [&str; 8] = ["click", "purchase", "login", "log-out", "delete-account", "create-account", "update-settings", "other"];
const COUNTRIES: [&str; 15] = ["USA", "IN", "UK", "CA", "AU", "DE", "ES", "FR", "NL", "SG", "RU", "JP", "BR", "CN", "O"];

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{:08x}-7aee-409a-85cc-{:012x},{},{},{},{}",
                i,
                i * 7919,
                (i * 31) % 9999,
                TYPES[i % TYPES.len()],
                COUNTRIES[(i / 3) % COUNTRIES.len()],
                1_601_736_282 + i / 100
            )
        })
        .collect()
}

fn raw_batch(values: &[String]) -> anyhow::Result<RecordBatch> {
    let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    Ok(eddy_engine::record::raw_batch(&values, "bench", 0, 0)?)
}

const FRAUD_SQL: &str = include_str!("../../../../queries/fraud/02_server_log.sql");
const SOURCE_SQL: &str = include_str!("../../../../queries/fraud/01_server_logs.sql");

fn fraud_plan(topic: &str, table: &str, filter: bool) -> anyhow::Result<Arc<QueryPlan>> {
    let vars = |name: &str| match name {
        "EDDY_SERVER_LOGS_TOPIC" => Some(topic.to_string()),
        "EDDY_SERVER_LOG_TABLE" => Some(table.to_string()),
        "EDDY_POSTGRES_URL" => Some(String::new()),
        _ => None,
    };
    let source = eddy_engine::substitute(SOURCE_SQL, vars)?;
    let mut sink = eddy_engine::substitute(FRAUD_SQL, vars)?;
    if filter {
        sink = sink.replace("FROM server_logs;", "FROM server_logs WHERE event_type <> 'other';");
    }
    let engine = Engine::new(None, "bench");
    let plan = engine
        .plan(&[Script { name: "01".into(), sql: source }, Script { name: "02".into(), sql: sink }])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    plan.statements
        .into_iter()
        .find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q),
            _ => None,
        })
        .context("no query in the fraud pipeline")
}

fn report(what: &str, events: usize, elapsed: Duration) -> f64 {
    let rate = events as f64 / elapsed.as_secs_f64();
    println!("{what:<52} {events:>9} events in {:>7.3} s = {:>12.0} events/s", elapsed.as_secs_f64(), rate);
    rate
}

fn cpu(args: &Args) -> anyhow::Result<()> {
    let values = lines(args.events);
    let raws: Vec<RecordBatch> = values.chunks(BATCH).map(raw_batch).collect::<anyhow::Result<_>>()?;
    let plan = fraud_plan("bench", "bench", true)?;
    let metrics = Arc::new(QueryMetrics::default());

    let mut decode =
        Decode::new(Format::delimited(b','), plan.source.physical_schema(), metrics.clone(), ErrorPolicy::Skip, "bench".into());
    let mut out = Collector::default();
    let start = Instant::now();
    let mut decoded = Vec::with_capacity(raws.len());
    for raw in &raws {
        decode.on_batch(raw.clone(), &mut out)?;
        decoded.extend(out.take_batches());
    }
    report("decode DELIMITED -> Arrow (1 core)", args.events, start.elapsed());

    let mut filter = Filter::new(plan.filter.as_ref().context("filter")?.expr.clone());
    let mut project = Projection::new(plan.projection.iter().map(|p| p.expr.clone()).collect(), plan.output_schema.clone());
    let start = Instant::now();
    let mut rows = 0;
    for raw in &raws {
        decode.on_batch(raw.clone(), &mut out)?;
        for b in out.take_batches() {
            filter.on_batch(b, &mut out)?;
        }
        for b in out.take_batches() {
            project.on_batch(b, &mut out)?;
        }
        rows += out.take_batches().iter().map(RecordBatch::num_rows).sum::<usize>();
    }
    report("decode + filter + project with CASE (1 core)", args.events, start.elapsed());
    println!("  ({rows} rows passed the filter; malformed {})", metrics.snapshot().malformed);
    statements();
    Ok(())
}

/// Splitting and planning against request size: 1 to 10,000 statements (SHOW STREAMS,
/// and CREATE STREAM, which plans against the catalog) must take time linear in the
/// size (the issue 15 attack: 8,000 statements took 22 s when splitting was quadratic).
fn statements() {
    println!("statements per request: split / plan (time per statement should stay flat)");
    for n in [1usize, 10, 100, 1_000, 10_000] {
        let show = "SHOW STREAMS;\n".repeat(n);
        let start = Instant::now();
        let split = eddy_engine::split_statements(&show).map(|s| s.len()).unwrap_or(0);
        let split_time = start.elapsed();
        let creates: String =
            (0..n).map(|i| format!("CREATE STREAM s{i} (a INT, b VARCHAR) WITH (kafka_topic='t{i}', value_format='json');\n")).collect();
        let engine = Engine::new(None, "bench");
        let start = Instant::now();
        let planned = engine.plan(&[Script { name: "bench".into(), sql: creates }]).map(|p| p.statements.len()).unwrap_or(0);
        let plan_time = start.elapsed();
        println!(
            "  {n:>6} statements ({} KiB): split {:>9.3} ms ({:>6.2} us each), plan {:>9.3} ms ({:>6.2} us each){}",
            show.len() / 1024,
            split_time.as_secs_f64() * 1e3,
            split_time.as_secs_f64() * 1e6 / n as f64,
            plan_time.as_secs_f64() * 1e3,
            plan_time.as_secs_f64() * 1e6 / n as f64,
            if split == n && planned == n { "" } else { "  (FAILED)" }
        );
    }
}

async fn pg_admin(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(&format!("{url}/postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn services(args: &Args) -> anyhow::Result<()> {
    let suffix = format!("{:08x}", rand::random::<u32>());
    let db = format!("eddy_bench_{suffix}");
    let topic = format!("bench-server-logs-{suffix}");
    let admin = pg_admin(&args.postgres).await?;
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let db_url = format!("{}/{db}", args.postgres);
    let factory = Connectors {
        bootstrap_servers: args.bootstrap_servers.clone(),
        postgres_url: Some(db_url.clone()),
        kafka_properties: Default::default(),
        sandbox: None,
        connect_timeout: eddy_connectors::DEFAULT_CONNECT_TIMEOUT,
    };
    let n = args.io_events;
    let values = lines(n);

    // PostgreSQL sink alone (upsert on the primary key, as the fraud pipeline writes).
    let plan = fraud_plan(&topic, "sink_only", false)?;
    let ctx = QueryContext {
        query_id: "bench".into(),
        group_id: "bench".into(),
        metrics: Arc::new(QueryMetrics::default()),
        parallelism: 1,
        transient: false,
        resume_from: Vec::new(),
        resume_exact: false,
        state_dir: None,
    };
    let mut sink = factory.sink(&plan.sink, &ctx).await?;
    let metrics = Arc::new(QueryMetrics::default());
    let mut decode = Decode::new(Format::delimited(b','), plan.source.physical_schema(), metrics, ErrorPolicy::Skip, "bench".into());
    let mut project = Projection::new(plan.projection.iter().map(|p| p.expr.clone()).collect(), plan.output_schema.clone());
    let mut out = Collector::default();
    let mut batches = Vec::new();
    for chunk in values.chunks(BATCH) {
        decode.on_batch(raw_batch(chunk)?, &mut out)?;
        for b in out.take_batches() {
            project.on_batch(b, &mut out)?;
        }
        batches.extend(out.take_batches());
    }
    let start = Instant::now();
    for b in batches {
        sink.write(b).await?;
        sink.flush().await?;
    }
    report("PostgreSQL sink, upsert, 8192-row transactions", n, start.elapsed());

    // Produce the events once.
    let records: Vec<(String, String)> = values.iter().map(|v| (v[..36].to_string(), v.clone())).collect();
    produce(&args.bootstrap_servers, &topic, &records).await?;

    // Bare consumer on the same topic.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("group.id", format!("bench-bare-{suffix}"))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut seen = 0;
    let mut start = None;
    while seen < n {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.context("bare consumer stalled")??;
        start.get_or_insert_with(Instant::now);
        seen += 1;
    }
    let bare = report("bare rdkafka consumer (same broker, same topic)", n, start.map(|s| s.elapsed()).unwrap_or_default());
    drop(consumer);

    // Kafka -> PostgreSQL through the fraud query.
    let plan = fraud_plan(&topic, "server_log", false)?;
    let start = Instant::now();
    let mut handle = running(eddy_engine::runtime::start_query(
        plan,
        Arc::new(factory.clone()),
        &format!("bench-{suffix}"),
        &eddy_engine::runtime::Checkpointing::default(),
    ))
    .await?;
    // Like the bare consumer, time from the first record read to the last row committed;
    // query startup (metadata, committed offsets, table DDL) is reported on its own.
    let mut first = None;
    while handle.metrics.snapshot().committed_batches == 0 || (handle.metrics.snapshot().rows_out as usize) < n {
        if first.is_none() && handle.metrics.snapshot().rows_in > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        anyhow::ensure!(start.elapsed() < Duration::from_secs(300), "Kafka -> PostgreSQL did not finish");
    }
    let end = Instant::now();
    handle.stop().await;
    let first = first.unwrap_or(start);
    println!("  query startup until the first record: {:.3} s", (first - start).as_secs_f64());
    let eddy = report("Kafka -> PostgreSQL, fraud query (rows committed)", n, end - first);
    println!("  Kafka -> PostgreSQL is {:.0}% of the bare consumer's rate", 100.0 * eddy / bare);

    admin.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).await?;
    alert_latency(&args.bootstrap_servers, args.alert_rate, &factory, &suffix).await
}

/// Writes `records` (key, value) to `topic` (created with 4 partitions if missing) as fast
/// as the producer takes them, and waits until the broker has every one.
async fn produce(bootstrap: &str, topic: &str, records: &[(String, String)]) -> anyhow::Result<()> {
    produce_with(bootstrap, topic, records, &[]).await
}

/// [`produce`] with producer settings `extra` besides the defaults.
async fn produce_with(bootstrap: &str, topic: &str, records: &[(String, String)], extra: &[(&str, &str)]) -> anyhow::Result<()> {
    let config = KafkaConfig { bootstrap_servers: bootstrap.to_string(), properties: Default::default() };
    ensure_topic(&config, topic, 4, 1).await?;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap).set("linger.ms", "20").set("queue.buffering.max.messages", "500000");
    for (k, v) in extra {
        client.set(*k, *v);
    }
    let producer: FutureProducer = client.create()?;
    let mut deliveries = Vec::with_capacity(records.len());
    for (k, v) in records {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(k.as_str()).payload(v.as_str())) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
    for d in deliveries {
        d.await?.map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    producer.flush(Timeout::After(Duration::from_secs(30)))?;
    Ok(())
}

const ALERTS_SQL: &str = include_str!("../../../../queries/fraud/03_alerts.sql");

/// The alerts query of queries/fraud (01 and 03) over `topic`, writing `alerts`.
fn alerts_plan(topic: &str, alerts: &str) -> anyhow::Result<Arc<QueryPlan>> {
    let vars = |name: &str| match name {
        "EDDY_SERVER_LOGS_TOPIC" => Some(topic.to_string()),
        "EDDY_ALERTS_TOPIC" => Some(alerts.to_string()),
        _ => None,
    };
    let scripts = [
        Script { name: "01".into(), sql: eddy_engine::substitute(SOURCE_SQL, vars)? },
        Script { name: "03".into(), sql: eddy_engine::substitute(ALERTS_SQL, vars)? },
    ];
    let plan = Engine::new(None, "bench").plan(&scripts).map_err(|e| anyhow::anyhow!("{e}"))?;
    plan.statements
        .into_iter()
        .find_map(|s| match s {
            PlannedStatement::StartQuery(q) => Some(q),
            _ => None,
        })
        .context("no query in the alerts pipeline")
}

/// Alert latency on the Kafka path: server-log events with the wall clock as event time
/// are produced at a steady rate over 4 partitions (10,000 accounts) while the alerts
/// query runs; each alert is timed from the moment its second login was produced to the
/// moment it is read from the alerts topic. An alert cannot leave before the watermark
/// (5 s behind the newest event) passes its second login, so the figure to compare is
/// the latency minus those 5 s.
/// `handle` once its query has opened its connectors (it starts in the background).
///
/// Errors: the query failed, or could not open them at the first attempt.
async fn running(handle: eddy_engine::runtime::QueryHandle) -> anyhow::Result<eddy_engine::runtime::QueryHandle> {
    match eddy_engine::runtime::started(&mut handle.status_updates()).await {
        Ok(()) => Ok(handle),
        Err(reason) => {
            handle.request_stop();
            anyhow::bail!("query {} did not start: {reason}", handle.plan.id)
        }
    }
}

async fn alert_latency(bootstrap: &str, rate: u64, factory: &Connectors, suffix: &str) -> anyhow::Result<()> {
    let rate = rate.max(1);
    const SECONDS: u64 = 30;
    const DELAY: Duration = Duration::from_secs(5);
    let topic = format!("bench-latency-logs-{suffix}");
    let alerts = format!("bench-latency-alerts-{suffix}");
    let config = KafkaConfig { bootstrap_servers: bootstrap.to_string(), properties: Default::default() };
    ensure_topic(&config, &topic, 4, 1).await?;
    ensure_topic(&config, &alerts, 4, 1).await?;
    let mut handle = running(eddy_engine::runtime::start_query(
        alerts_plan(&topic, &alerts)?,
        Arc::new(factory.clone()),
        &format!("bench-latency-{suffix}"),
        &eddy_engine::runtime::Checkpointing::default(),
    ))
    .await?;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-latency-{suffix}"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[alerts.as_str()])?;
    // (event_id, read at, read at as epoch ms, alert_time as epoch ms)
    let received = Arc::new(std::sync::Mutex::new(Vec::<(String, Instant, i64, i64)>::new()));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Ok(m) = consumer.recv().await {
                let at = Instant::now();
                let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
                let value: serde_json::Value =
                    serde_json::from_slice(rdkafka::Message::payload(&m).unwrap_or_default()).unwrap_or_default();
                // ksqlDB's JSON writes a TIMESTAMP as epoch milliseconds (KLIP-43); a
                // Flink-style sink as text.
                let alert_time = value["alert_time"]
                    .as_i64()
                    .or_else(|| {
                        value["alert_time"]
                            .as_str()
                            .and_then(|t| chrono::NaiveDateTime::parse_from_str(&t.replace('T', " "), "%Y-%m-%d %H:%M:%S%.f").ok())
                            .map(|t| t.and_utc().timestamp_millis())
                    })
                    .unwrap_or(0);
                if let (Some(id), Ok(mut r)) = (value["event_id"].as_str(), received.lock()) {
                    r.push((id.to_string(), at, wall, alert_time));
                }
            }
        })
    };

    // A bare consumer of the input topic on the same broker: how long an event takes
    // from the producer to any consumer, the floor under the alert latency.
    let bare: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-latency-bare-{suffix}"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    bare.subscribe(&[topic.as_str()])?;
    let bare_seen = Arc::new(std::sync::Mutex::new(Vec::<(String, Instant)>::new()));
    let bare_reader = {
        let seen = bare_seen.clone();
        tokio::spawn(async move {
            while let Ok(m) = bare.recv().await {
                let at = Instant::now();
                if let (Some(k), Ok(mut s)) = (rdkafka::Message::key(&m), seen.lock()) {
                    s.push((String::from_utf8_lossy(k).into_owned(), at));
                }
            }
        })
    };

    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create()?;
    let mut sent: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
    let start = Instant::now();
    // Events keep coming for the watermark delay and 2 s more after the measured ones,
    // as live traffic would, so the last measured logins are passed by the watermark.
    let total = rate * (SECONDS + DELAY.as_secs() + 2);
    let mut deliveries = Vec::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let id = format!("{:08x}-0000-4000-8000-{i:012x}", rand::random::<u32>());
        let line = format!(
            "{id},{},{},{},{now}",
            rand::random_range(0..10_000),
            TYPES[rand::random_range(0..TYPES.len())],
            COUNTRIES[rand::random_range(0..COUNTRIES.len())]
        );
        if i < rate * SECONDS {
            sent.insert(id.clone(), Instant::now());
        }
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&id).payload(&line)) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for d in deliveries {
        d.await?.map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    handle.stop().await;
    reader.abort();
    bare_reader.abort();
    let mut bare: Vec<f64> = bare_seen
        .lock()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.duration_since(*s).as_secs_f64()))
        .collect();
    bare.sort_by(f64::total_cmp);
    let received = received.lock().map_err(|_| anyhow::anyhow!("reader panicked"))?.clone();
    let mut latencies: Vec<f64> =
        received.iter().filter_map(|(id, at, _, _)| sent.get(id).map(|s| at.duration_since(*s).as_secs_f64())).collect();
    // Event times are whole seconds: the watermark can pass a login of second S only at
    // S + 5 s. The time from that moment to the alert's arrival is the engine's own.
    let mut engine: Vec<f64> =
        received.iter().filter(|r| sent.contains_key(&r.0)).map(|r| (r.2 - r.3 - DELAY.as_millis() as i64) as f64 / 1000.0).collect();
    engine.sort_by(f64::total_cmp);
    anyhow::ensure!(!latencies.is_empty(), "no alert was read back");
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "alert latency, Kafka -> alerts query -> Kafka, {rate} events/s for {SECONDS} s: {} alerts, p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!("  p99 beyond the 5 s watermark delay: {:.0} ms", (pct(0.99) - DELAY.as_secs_f64()) * 1000.0);
    if !bare.is_empty() {
        let bpct = |p: f64| bare[((bare.len() - 1) as f64 * p).round() as usize];
        println!(
            "  a bare consumer of the input topic, same broker: p50 {:.0} ms, p99 {:.0} ms from produce to read",
            bpct(0.5) * 1000.0,
            bpct(0.99) * 1000.0
        );
    }
    let epct = |p: f64| engine[((engine.len().max(1) - 1) as f64 * p).round() as usize];
    println!(
        "  from the moment the watermark could pass the second login (its second + 5 s) to the alert read: p50 {:.0} ms, p99 {:.0} ms",
        epct(0.5) * 1000.0,
        epct(0.99) * 1000.0
    );
    Ok(())
}

/// The `eddy` binary next to this one.
fn eddy_bin() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("eddy");
    anyhow::ensure!(bin.exists(), "{} is missing: build the workspace binaries", bin.display());
    Ok(bin)
}

/// Generates `file` with `eddy gen ... --output` unless it exists.
fn generate(file: &std::path::Path, kind: &str, count: u64, users: u32) -> anyhow::Result<()> {
    generate_with(file, kind, count, &["--users", &users.to_string()])
}

/// Generates the server-log file `file` with `accounts` distinct accounts unless it exists.
fn generate_logs(file: &std::path::Path, count: u64, accounts: u32) -> anyhow::Result<()> {
    generate_with(file, "server-logs", count, &["--accounts", &accounts.to_string()])
}

/// `eddy gen <kind>` into `file` (seed 1, from 2026-01-01 00:00 UTC, 1 ms apart) with
/// `extra` arguments, unless `file` exists.
fn generate_with(file: &std::path::Path, kind: &str, count: u64, extra: &[&str]) -> anyhow::Result<()> {
    if file.exists() {
        return Ok(());
    }
    let status = std::process::Command::new(eddy_bin()?)
        .args(["gen", kind, "--count", &count.to_string(), "--seed", "1", "--start-ts", "1767225600", "--step-ms", "1"])
        .args(extra)
        .arg("--output")
        .arg(file)
        .status()?;
    anyhow::ensure!(status.success(), "eddy gen {kind} failed");
    Ok(())
}

/// Runs `eddy run` on `sql` (a file pipeline) and returns the wall time and the peak
/// resident set size (bytes) of the process.
fn run_pipeline(sql: &str, dir: &std::path::Path) -> anyhow::Result<(Duration, u64)> {
    let run = run_measured(sql, dir)?;
    Ok((run.elapsed, run.peak_rss))
}

/// What one `eddy run` of a file pipeline measured.
#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    /// From the process's start to its exit.
    elapsed: Duration,
    /// Peak resident set size (bytes, the kernel's VmHWM).
    peak_rss: u64,
    /// The largest `state_bytes` of the query seen in its status file (written every second).
    peak_state_bytes: u64,
    /// `open_windows` (window groups), `partial_matches`, `match_keys` and `held_rows`
    /// at that moment.
    open_windows_at_peak: u64,
    partial_matches_at_peak: u64,
    match_keys_at_peak: u64,
    held_rows_at_peak: u64,
    /// Rows the sink wrote, from the last status file (written at exit).
    rows_out: u64,
}

/// Runs `eddy run --status-file` on `sql` and samples its RSS (every 20 ms) and its
/// status file: see [`Measured`].
fn run_measured(sql: &str, dir: &std::path::Path) -> anyhow::Result<Measured> {
    let file = dir.join("bench.sql");
    let status_file = dir.join("bench-status.json");
    let _ = std::fs::remove_file(&status_file);
    std::fs::write(&file, sql)?;
    let start = Instant::now();
    let mut child = std::process::Command::new(eddy_bin()?)
        .arg("run")
        .arg(&file)
        .arg("--status-file")
        .arg(&status_file)
        .env("EDDY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut measured = Measured::default();
    let mut tick = 0u64;
    let read_status = |m: &mut Measured| {
        let Some(q) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["queries"].get(0).cloned())
        else {
            return;
        };
        let field = |name: &str| q[name].as_u64().unwrap_or(0);
        if field("state_bytes") > m.peak_state_bytes {
            m.peak_state_bytes = field("state_bytes");
            m.open_windows_at_peak = field("open_windows");
            m.partial_matches_at_peak = field("partial_matches");
            m.match_keys_at_peak = field("match_keys");
            m.held_rows_at_peak = field("held_rows");
        }
        m.rows_out = field("rows_out");
    };
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kb) =
                text.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok())
            {
                measured.peak_rss = measured.peak_rss.max(kb * 1024);
            }
        }
        if let Some(status) = child.try_wait()? {
            measured.elapsed = start.elapsed();
            anyhow::ensure!(status.success(), "eddy run failed: {status}");
            read_status(&mut measured);
            break;
        }
        tick += 1;
        if tick.is_multiple_of(10) {
            read_status(&mut measured);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(measured)
}

fn windows(args: &Args) -> anyhow::Result<()> {
    let n = args.window_events;
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let logs = dir.join(format!("server-logs-{n}.csv"));
    let tx = dir.join(format!("transactions-{n}.json"));
    let tx_many = dir.join(format!("transactions-{n}-100000-users.json"));
    generate(&logs, "server-logs", n, 10)?;
    generate(&tx, "transactions", n, 10)?;
    generate(&tx_many, "transactions", n, 100_000)?;
    let logs_table = format!(
        "CREATE TABLE logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT, \
         ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
         WITH ('connector'='filesystem', 'path'='{}', 'format'='csv');\n",
        logs.display()
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "Q1 server logs, 1 min tumbling per event_type, COUNT + COUNT DISTINCT",
            logs_table
                + "CREATE TABLE out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT, accounts BIGINT) WITH ('connector'='blackhole');\n\
                   INSERT INTO out SELECT window_start, event_type, COUNT(*), COUNT(DISTINCT account_id) \
                   FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type;\n",
        ),
        (
            "Q2 transactions JSON, 3 s tumbling, SUM/COUNT/AVG, global",
            tx_table(&tx)
                + "CREATE TABLE out (window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) WITH ('connector'='blackhole');\n\
                   INSERT INTO out SELECT window_start, SUM(amount), COUNT(*), AVG(amount) \
                   FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;\n",
        ),
        ("Q2 per user_id, 10 users", per_user(&tx_table(&tx))),
        ("Q2 per user_id, 100,000 users", per_user(&tx_table(&tx_many))),
        (
            "Q3 server logs, the fraud MATCH_RECOGNIZE (A N*? B WITHIN 5 min), 10,000 accounts",
            logs_table_for_q3(&logs) + FRAUD_ALERTS_TO_BLACKHOLE,
        ),
    ];
    for (what, sql) in cases {
        let (elapsed, peak) = run_pipeline(&sql, &dir)?;
        report(what, n as usize, elapsed);
        println!("  peak RSS {:.0} MB", peak as f64 / 1_048_576.0);
    }
    Ok(())
}

/// Q2's source: the transactions file at `path` (JSON lines), 5 s watermark.
fn tx_table(path: &std::path::Path) -> String {
    format!(
        "CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), \
         WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'='filesystem', 'path'='{}', 'format'='json');\n",
        path.display()
    )
}

/// Q3's source: the server-log file (10,000 accounts, 8 event types, 15 countries,
/// event_ts advancing 1 s per 1,000 rows), with the 5 s watermark of queries/fraud.
fn logs_table_for_q3(path: &std::path::Path) -> String {
    format!(
        "CREATE TABLE server_logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT, \
         ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
         WITH ('connector'='filesystem', 'path'='{}', 'format'='csv');\n",
        path.display()
    )
}

/// The alert query of queries/fraud/03_alerts.sql, into a blackhole.
const FRAUD_ALERTS_TO_BLACKHOLE: &str =
    "CREATE TABLE alerts (event_id VARCHAR, account_id INT, prev_country VARCHAR, current_country VARCHAR, alert_time TIMESTAMP(3)) \
     WITH ('connector'='blackhole');\n\
     INSERT INTO alerts SELECT event_id, account_id, prev_country, current_country, alert_time FROM server_logs \
     MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY ts \
       MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country, B.ts AS alert_time \
       ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW \
       PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE \
       DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out', \
              B AS B.event_type = 'login' AND B.location_country <> A.location_country);\n";

fn per_user(table: &str) -> String {
    table.to_string()
        + "CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) WITH ('connector'='blackhole');\n\
           INSERT INTO out SELECT user_id, window_start, SUM(amount), COUNT(*), AVG(amount) \
           FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end, user_id;\n"
}

/// The allocator `eddy` runs with, so in-process figures match its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The engine's warnings (a stalled source, a retry) next to the figures.
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::WARN).init();
    if !args.no_cpu {
        cpu(&args)?;
    }
    if args.windows {
        windows(&args)?;
    }
    if args.webhook {
        webhook::webhook(&args.data_dir, args.webhook_rows).await?;
    }
    if args.joins {
        joins::joins(&args.data_dir, args.window_events, &args.bootstrap_servers, &args.postgres).await?;
    }
    if args.scaling {
        scaling::scaling(&args.data_dir, args.window_events)?;
    }
    if args.mock_kafka {
        mock_kafka::mock_kafka(&args.data_dir, args.mock_events, args.mock_partitions, args.mock_rate).await?;
    }
    if args.checkpoints {
        std::fs::create_dir_all(&args.data_dir)?;
        checkpoints::checkpoints(&args.bootstrap_servers, &args.data_dir, args.checkpoint_events).await?;
    }
    if args.services || args.control_plane {
        control_plane(&args).await?;
    }
    if args.services {
        services(&args).await?;
    } else if args.alert_latency {
        let factory = Connectors {
            bootstrap_servers: args.bootstrap_servers.clone(),
            postgres_url: None,
            kafka_properties: Default::default(),
            sandbox: None,
            connect_timeout: eddy_connectors::DEFAULT_CONNECT_TIMEOUT,
        };
        alert_latency(&args.bootstrap_servers, args.alert_rate, &factory, &format!("{:08x}", rand::random::<u32>())).await?;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `SHOW QUERIES` with 20 queries, and the first row of a push query.
async fn control_plane(args: &Args) -> anyhow::Result<()> {
    let suffix = format!("{:08x}", rand::random::<u32>());
    let topic = format!("bench-control-{suffix}");
    let factory = Arc::new(Connectors {
        bootstrap_servers: args.bootstrap_servers.clone(),
        postgres_url: None,
        kafka_properties: Default::default(),
        sandbox: None,
        connect_timeout: eddy_connectors::DEFAULT_CONNECT_TIMEOUT,
    });
    let mut engine = Engine::new(Some(factory), format!("bench-{suffix}"));
    let mut session = eddy_engine::Session::default();
    let run = |e: eddy_engine::StatementError| anyhow::anyhow!("{e}");
    engine
        .execute(&format!("CREATE STREAM events (account_id VARCHAR, amount DOUBLE) WITH (kafka_topic='{topic}', value_format='json', partitions=1); CREATE TABLE sink (account_id VARCHAR, amount DOUBLE) WITH ('connector'='blackhole');"), &mut session)
        .await
        .map_err(run)?;
    for i in 0..20 {
        engine
            .execute(&format!("INSERT INTO sink SELECT account_id, amount FROM events WHERE amount > {i};"), &mut session)
            .await
            .map_err(run)?;
    }
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &args.bootstrap_servers).create()?;
    for i in 0..1000 {
        let value = format!("{{\"account_id\":\"a{}\",\"amount\":{i}}}", i % 10);
        producer.send(FutureRecord::<(), String>::to(&topic).payload(&value), Timeout::Never).await.map_err(|(e, _)| e)?;
    }
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let start = Instant::now();
        let r = engine.execute("SHOW QUERIES;", &mut session).await.map_err(run)?;
        times.push(start.elapsed());
        std::hint::black_box(r);
    }
    times.sort();
    println!(
        "SHOW QUERIES with 20 queries (1000 runs)             p50 {:>8.3} ms, p99 {:>8.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    session.set("auto.offset.reset", "earliest")?;
    let mut first = Vec::new();
    let mut answered = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let mut executed =
            engine.execute("SELECT account_id, amount FROM events EMIT CHANGES LIMIT 1;", &mut session).await.map_err(run)?;
        answered.push(start.elapsed());
        let Some(eddy_engine::StatementResult::PushQuery(mut push)) = executed.pop().and_then(|mut e| e.results.pop()) else {
            anyhow::bail!("no push query")
        };
        let batch = push.rows.recv().await.context("no row")?;
        first.push(start.elapsed());
        std::hint::black_box(batch);
        push.stopper.stop();
    }
    first.sort();
    answered.sort();
    println!(
        "push query, statement to query started (10 runs)      p50 {:>8.3} ms, max {:>8.3} ms",
        percentile(&answered, 0.5).as_secs_f64() * 1e3,
        answered[answered.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "push query, statement to first row (10 runs)          p50 {:>8.3} ms, max {:>8.3} ms",
        percentile(&first, 0.5).as_secs_f64() * 1e3,
        first[first.len() - 1].as_secs_f64() * 1e3
    );
    engine.stop_all().await;
    Ok(())
}
