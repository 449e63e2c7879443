//! The Kafka path where the broker is not the limit (`--mock-kafka`, no services).
//!
//! The local broker (Tansu) takes about 50,000 records/s, so the `--services` figures
//! measure it, not Eddy. Here the broker is rdkafka's `MockCluster`: librdkafka's own
//! in-process broker, which speaks the Kafka protocol on a loopback port and keeps the
//! topics in memory. Eddy talks to it exactly as to Apache Kafka (the same source and
//! sink, the same rdkafka client).
//!
//! 1. The server-log file (`events` rows, 10,000 accounts) is produced to a topic of
//!    `--mock-partitions` partitions (4 by default), keyed by account_id, then one row
//!    per partition a day later in event time (an `other` event, which no pattern
//!    variable takes), so the watermark passes every real row.
//! 2. A bare rdkafka `StreamConsumer` (the consumer Eddy's source uses, assigned every
//!    partition as Eddy's source is) reads the topic:
//!    the rate no Kafka consumer on this machine can beat.
//! 3. The fraud alerts query (queries/fraud 01 and 03: Kafka -> MATCH_RECOGNIZE ->
//!    Kafka JSON) reads the same topic; it is timed from its first record read to its
//!    last record read (the rate to compare with the bare consumer's) and to its last
//!    alert written (that plus the end of the input: the last micro-batch's linger, the
//!    watermark passing the last rows, the sink's delivery). The number of alerts must
//!    equal `eddy run`'s over the same file, so the figure is of a run that lost nothing.
//! 4. The alert latency at `rate` events/s with the wall clock as event time (see
//!    `alert_latency` in main.rs), on the same mock broker.
//!
//! The mock is not a broker built for speed, and two of its shortcuts set the pace unless
//! the clients work around them, as they do here:
//!
//! - it answers a fetch with one producer batch per partition, where a broker sends up
//!   to `max.partition.fetch.bytes` (1 MB): so the topic is produced in batches of up to
//!   1 MB;
//! - it answers a fetch that found no data only after the fetch's whole `MaxWait`, even
//!   when records arrive meanwhile: so every consumer here waits at most 10 ms
//!   ([`MOCK_FETCH_WAIT_MS`]; Eddy's own transient queries do too).
//!
//! Without both, a bare consumer read 0.22–0.40M records/s in most runs and 1.46M in a
//! few. It also keeps at most 5 MB per partition and finds a fetch's offset by walking
//! its log from the start. Compare Eddy with the bare consumer of the same run, not with
//! other brokers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eddy_connectors::Connectors;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::{
    alert_latency, alerts_plan, generate_logs, logs_table_for_q3, produce_with, report, run_measured, running, FRAUD_ALERTS_TO_BLACKHOLE,
};

const TOPIC: &str = "server-logs";
const ALERTS: &str = "alerts";
/// Records of the filled topic per partition at most: librdkafka's mock broker keeps at
/// most 5 MB per partition (older records are dropped), about 62,500 of these 66-byte
/// records.
const PER_PARTITION: u64 = 62_500;
/// `fetch.wait.max.ms` of every consumer of the mock broker. The mock answers a fetch
/// that found no data only after its whole wait (500 ms by default), even when records
/// arrive meanwhile, where a broker answers as soon as they do (librdkafka's
/// `rd_kafka_mock_handle_Fetch`: "this isn't strictly correct"); a consumer that caught
/// up with one partition would stall on it.
const MOCK_FETCH_WAIT_MS: &str = "10";

/// Runs the mock-broker benchmarks over the first `events` rows of a generated server-log
/// file under `dir`, then the alert latency at `rate` events/s.
///
/// Errors: the mock cluster cannot start, a file cannot be generated or produced, the
/// query fails or stalls (no progress for 60 s), or it writes a different number of
/// alerts than `eddy run` over the file.
pub async fn mock_kafka(dir: &Path, events: u64, partitions: i32, rate: u64) -> anyhow::Result<()> {
    anyhow::ensure!(partitions > 0, "the topic needs a partition");
    let fit = PER_PARTITION * partitions as u64;
    anyhow::ensure!(events <= fit, "the mock broker keeps 5 MB per partition: at most {fit} events fit in {partitions} partitions");
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let file = dir.join(format!("server-logs-{events}.csv"));
    generate_logs(&file, events, 9_999)?;
    let expected = run_measured(&(logs_table_for_q3(&file) + FRAUD_ALERTS_TO_BLACKHOLE), &dir)?.rows_out;

    let mock = MockCluster::new(1)?;
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic(TOPIC, partitions, 1)?;
    mock.create_topic(ALERTS, partitions, 1)?;
    println!("Kafka path on rdkafka's MockCluster ({bootstrap}), {events} server-log events, {partitions} partitions");

    let text = std::fs::read_to_string(&file)?;
    // Keyed by account_id, as a fraud topic is: each account's rows stay in one partition
    // in the file's order, so the matches are the file run's exactly.
    let records: Vec<(String, String)> =
        text.lines().map(|l| (l.split(',').nth(1).unwrap_or_default().to_string(), l.to_string())).collect();
    let last_ts: i64 = records.iter().filter_map(|(_, l)| l.rsplit(',').next()?.parse().ok()).max().unwrap_or(0);
    drop(text);
    let start = Instant::now();
    // The mock answers a fetch with one producer batch per partition (librdkafka's
    // "FIXME: Multiple messageSets"), where a broker sends up to
    // `max.partition.fetch.bytes` (1 MB): batches of up to 1 MB make its fetches as large.
    let batches = [("linger.ms", "200"), ("batch.num.messages", "1000000"), ("batch.size", "1000000")];
    produce_with(&bootstrap, TOPIC, &records, &batches).await?;
    report("  produced to the mock broker", records.len(), start.elapsed());
    drop(records);
    end_of_input(&bootstrap, partitions, last_ts + 86_400).await?;
    let n = events as usize + partitions as usize;

    // A bare consumer of the same topic.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("bench-bare-{:08x}", rand::random::<u32>()))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", MOCK_FETCH_WAIT_MS)
        // As Eddy's source sets it: librdkafka's 1 s default stalls a consumer whose
        // local queue filled up (see `FETCH_QUEUE_BACKOFF_MS`).
        .set("fetch.queue.backoff.ms", eddy_connectors::kafka::FETCH_QUEUE_BACKOFF_MS)
        .create()?;
    // Assigned, not subscribed: Eddy's source assigns its partitions too.
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut seen = 0;
    let mut first = None;
    while seen < n {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("bare consumer stalled after {seen} records"))??;
        first.get_or_insert_with(Instant::now);
        seen += 1;
    }
    let bare = report("bare rdkafka consumer", n, first.map(|s| s.elapsed()).unwrap_or_default());
    drop(consumer);

    // Kafka -> fraud alerts -> Kafka.
    let factory = Connectors {
        bootstrap_servers: bootstrap.clone(),
        postgres_url: None,
        kafka_properties: [("fetch.wait.max.ms".to_string(), MOCK_FETCH_WAIT_MS.to_string())].into_iter().collect(),
        sandbox: None,
        connect_timeout: eddy_connectors::DEFAULT_CONNECT_TIMEOUT,
    };
    let start = Instant::now();
    let mut handle = running(eddy_engine::runtime::start_query(
        alerts_plan(TOPIC, ALERTS)?,
        Arc::new(factory.clone()),
        // A fresh application id: nothing restored from an earlier run's state.
        &format!("bench-alerts-{:08x}", rand::random::<u32>()),
        &eddy_engine::runtime::Checkpointing::default(),
    ))
    .await?;
    let mut first = None;
    let mut all_read = None;
    let mut progress = (0, Instant::now());
    loop {
        let m = handle.metrics.snapshot();
        if first.is_none() && m.rows_in > 0 {
            first = Some(Instant::now());
        }
        if all_read.is_none() && m.rows_in >= n as u64 {
            all_read = Some(Instant::now());
        }
        if m.rows_out >= expected && m.rows_in >= n as u64 {
            break;
        }
        if m.rows_in + m.rows_out != progress.0 {
            progress = (m.rows_in + m.rows_out, Instant::now());
        }
        anyhow::ensure!(
            progress.1.elapsed() < Duration::from_secs(60),
            "the alerts query stalled at {} rows read, {} of {expected} alerts",
            m.rows_in,
            m.rows_out
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let end = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written = handle.metrics.snapshot().rows_out;
    handle.stop().await;
    anyhow::ensure!(written == expected, "the Kafka path wrote {written} alerts, the file run {expected}");
    let first = first.unwrap_or(start);
    println!("  query startup until the first record: {:.3} s", (first - start).as_secs_f64());
    println!("  the source waited {} ms for the pipeline to take its micro-batches (backpressure)", handle.metrics.source_stalled_ms());
    // Read rate: the consumer's pace through the pipeline, comparable with the bare
    // consumer's. To the last alert: that plus the end of the input's wait (the last
    // micro-batch's linger, the watermark passing the last rows, the sink's delivery).
    let read = report("Kafka -> fraud alerts -> Kafka, all records read", n, all_read.unwrap_or(end) - first);
    let eddy = report("Kafka -> fraud alerts -> Kafka, to the last alert", n, end - first);
    println!(
        "  {written} alerts, as `eddy run` over the file ({expected}); {:.2}x the bare consumer's rate read, {:.2}x to the last alert",
        read / bare,
        eddy / bare
    );

    // The mock broker takes no CreateTopics request: the latency run's topics are made here.
    let suffix = format!("mock-{:08x}", rand::random::<u32>());
    mock.create_topic(&format!("bench-latency-logs-{suffix}"), 4, 1)?;
    mock.create_topic(&format!("bench-latency-alerts-{suffix}"), 4, 1)?;
    alert_latency(&bootstrap, rate, &factory, &suffix).await
}

/// One `other` event per partition at `ts` (epoch seconds): each partition's watermark
/// passes every real row, as later traffic would move it on a live topic.
async fn end_of_input(bootstrap: &str, partitions: i32, ts: i64) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    for p in 0..partitions {
        let id = format!("00000000-0000-4000-8000-{p:012}");
        let line = format!("{id},99999,other,O,{ts}");
        producer.send(FutureRecord::to(TOPIC).partition(p).key(&id).payload(&line), Duration::from_secs(10)).await.map_err(|(e, _)| e)?;
    }
    Ok(())
}
