//! Kafka source: reads every partition of a topic in micro-batches of raw records,
//! resuming from the offsets committed under the query's consumer group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::connector::{PartitionOffset, QueryContext, Source, SourceBatch};
use eddy_engine::options::{KafkaOptions, StartupMode};
use eddy_engine::record::raw_schema;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaConfig;
use crate::error::{kafka_transience, ConnectorError, Result, Transience};

/// Reads one topic with a `StreamConsumer`. Offsets are committed under the query's
/// group only through [`Source::commit`], never automatically.
pub struct KafkaSource {
    /// The last positions handed to `commit`, committed synchronously by `close`.
    /// Declared first so it is dropped before the consumer.
    last_commit: Option<TopicPartitionList>,
    consumer: StreamConsumer<LagContext>,
    topic: String,
    max_rows: usize,
    linger: Duration,
    partition_ids: Vec<i32>,
    restored_watermark: Option<i64>,
    watermark_file: Option<std::path::PathBuf>,
}

/// Reports librdkafka's consumer lag (from its statistics, every
/// [`STATISTICS_INTERVAL_MS`]) to the query's metrics: no request of its own to the
/// broker, nothing on the path of the records.
pub struct LagContext {
    metrics: Option<std::sync::Arc<eddy_engine::metrics::QueryMetrics>>,
}

/// How often librdkafka reports statistics, and so the consumer lag (ms).
pub const STATISTICS_INTERVAL_MS: u64 = 2_000;

/// librdkafka's `fetch.queue.backoff.ms` for a source's consumer (ms; a stream's
/// `properties.fetch.queue.backoff.ms` overrides it): how long a partition whose local
/// queue is full waits before the next fetch. librdkafka's default, 1 s, stalled a source
/// reading a backlog for most of each second once it had drained its queue (the Kafka
/// path on the MockCluster read 0.2M records/s with it, 0.6M with 1 ms).
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";

impl rdkafka::client::ClientContext for LagContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(metrics) = &self.metrics else { return };
        let mut lag = 0i64;
        let mut known = false;
        for topic in statistics.topics.values() {
            for (id, partition) in &topic.partitions {
                if *id >= 0 && partition.consumer_lag >= 0 {
                    lag += partition.consumer_lag;
                    known = true;
                }
                // Position-based: what is in the partition and not fetched yet. A
                // partition with records waiting is never idle (see `Watermarks`).
                if *id >= 0 && partition.hi_offset >= 0 {
                    let position = if partition.app_offset >= 0 { partition.app_offset } else { partition.next_offset };
                    if position >= 0 {
                        metrics.set_unread(*id, (partition.hi_offset - position).max(0));
                    }
                }
            }
        }
        if known {
            metrics.set_consumer_lag(lag);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for LagContext {}

/// Prefix of the commit metadata that carries the watermark (ms): `eddy-watermark=<ms>`.
const WATERMARK_METADATA: &str = "eddy-watermark=";

/// Where the watermark of a group's last commit is also kept, for brokers that do not
/// store commit metadata (Tansu does not): `watermark` in the query's own directory
/// under the state directory ([`QueryContext::state_dir`]), one number (ms). Written
/// before the offsets are committed, so it is never older than they are.
fn watermark_file(query: &QueryContext) -> Option<std::path::PathBuf> {
    query.state_dir.as_ref().map(|d| d.join("watermark"))
}

/// Writes `watermark` to `path` atomically (temporary file, fsync, rename).
fn write_watermark(path: &std::path::Path, watermark: i64) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(watermark.to_string().as_bytes())?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)
}

impl KafkaSource {
    /// Assigns every partition of the topic of `options` to a consumer of group
    /// `group_id`, each starting at the group's committed offset (or at the startup
    /// mode's end when none is committed).
    ///
    /// Partitions are assigned explicitly, as Flink's `KafkaSource` does, instead of
    /// through group membership: a restarted query never waits for the broker to expire
    /// the member of a killed process. Offsets are still committed under `group_id`, so
    /// the group's lag is visible to Kafka tools.
    ///
    /// A `transient` source (a push query's, whose group is new and never commits)
    /// skips the committed-offset lookup and fetches with a 10 ms wait unless
    /// `properties.fetch.wait.max.ms` says otherwise.
    ///
    /// A partition in `resume_from` (the progress a sink committed with its rows)
    /// starts there when that is ahead of the group's committed offset: the offsets
    /// are committed after the sink's transaction, so a crash between the two leaves
    /// the sink ahead. With `resume_exact` (the query restored operator state taken at
    /// `resume_from`), those positions are used even where the group is ahead.
    ///
    /// Errors: the client cannot be created, or the topic does not appear within the
    /// request timeout ([`KafkaConfig::request_timeout`]).
    /// The consumer lag goes to `metrics` when given.
    pub async fn open(config: &KafkaConfig, options: &KafkaOptions, query: &QueryContext) -> Result<Self> {
        let QueryContext { group_id, transient, resume_from, resume_exact, .. } = query;
        let (group_id, transient, resume_exact) = (group_id.as_str(), *transient, *resume_exact);
        let metrics = Some(query.metrics.clone());
        // Unread records are measured from librdkafka's statistics (see `LagContext`).
        query.metrics.expect_unread();
        let mut client = config.client_config();
        client
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // librdkafka stops fetching a partition whose local queue holds more than
            // `queued.min.messages` (100,000) and waits this long before it looks again
            // (1 s by default): a source that reads a backlog drains 100,000 records in
            // well under that and then waits for the rest of the second.
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .set(
                "auto.offset.reset",
                match options.startup {
                    StartupMode::Earliest => "earliest",
                    StartupMode::Latest => "latest",
                },
            );
        if transient {
            client.set("fetch.wait.max.ms", "10");
        }
        if metrics.is_some() {
            client.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        }
        for (k, v) in &options.properties {
            client.set(k, v);
        }
        let consumer: StreamConsumer<LagContext> = client.create_with_context(LagContext { metrics })?;
        let partitions = Self::partitions(&consumer, &options.topic, config.request_timeout()).await?;
        let mut wanted = TopicPartitionList::new();
        for p in &partitions {
            wanted.add_partition(&options.topic, *p);
        }
        let committed =
            if transient { wanted } else { tokio::task::block_in_place(|| consumer.committed_offsets(wanted, config.request_timeout()))? };
        let default_start = match options.startup {
            StartupMode::Earliest => Offset::Beginning,
            StartupMode::Latest => Offset::End,
        };
        let mut assignment = TopicPartitionList::new();
        let mut starts = Vec::with_capacity(partitions.len());
        let mut restored_watermark: Option<i64> = None;
        for element in committed.elements() {
            // Eddy writes this group's metadata itself (UTF-8 `eddy-watermark=<ms>`); the
            // lowest one among partitions is the safe one to resume from.
            if let Some(w) = element.metadata().strip_prefix(WATERMARK_METADATA).and_then(|w| w.parse::<i64>().ok()) {
                restored_watermark = Some(restored_watermark.map_or(w, |r| r.min(w)));
            }
            let committed = match element.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            };
            let resumed =
                resume_from.iter().find(|p| p.topic == element.topic() && p.partition == element.partition()).map(|p| p.next_offset);
            // Restored operator state belongs to exactly the positions it was taken at.
            let start = match if resume_exact { resumed.or(committed) } else { committed.max(resumed) } {
                Some(o) => Offset::Offset(o),
                None => default_start,
            };
            starts.push(format!("{}:{:?}", element.partition(), start));
            assignment.add_partition_offset(element.topic(), element.partition(), start)?;
        }
        // Drop the list returned by librdkafka before anything else (see tools/README.md).
        drop(committed);
        let watermark_file = watermark_file(query);
        // Only with committed offsets: a watermark without them belongs to an older run.
        if starts.iter().any(|s| s.contains("Offset(")) {
            if let Some(w) =
                watermark_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()).and_then(|t| t.trim().parse::<i64>().ok())
            {
                restored_watermark = Some(restored_watermark.map_or(w, |r| r.min(w)));
            }
        } else {
            if let Some(f) = &watermark_file {
                let _ = std::fs::remove_file(f);
            }
        }
        consumer.assign(&assignment)?;
        tracing::info!(topic = %options.topic, group = group_id, starts = %starts.join(" "), "assigned partitions");
        Ok(KafkaSource {
            consumer,
            topic: options.topic.clone(),
            max_rows: options.batch_max_rows,
            linger: Duration::from_millis(options.batch_linger_ms),
            last_commit: None,
            partition_ids: partitions,
            restored_watermark,
            watermark_file,
        })
    }

    /// The partition ids of `topic`, waiting up to `timeout` for the topic to exist.
    async fn partitions(consumer: &StreamConsumer<LagContext>, topic: &str, timeout: Duration) -> Result<Vec<i32>> {
        let deadline = Instant::now() + timeout;
        let mut warned = false;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(100), Duration::from_secs(10));
            let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), wait));
            match metadata {
                Ok(m) => {
                    let found: Vec<i32> = m
                        .topics()
                        .iter()
                        .filter(|t| t.name() == topic && t.error().is_none())
                        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                        .collect();
                    if !found.is_empty() {
                        return Ok(found);
                    }
                    if Instant::now() > deadline {
                        return Err(ConnectorError::Config(format!(
                            "topic {topic} does not exist: create it, or declare partitions in WITH so Eddy creates it"
                        )));
                    }
                }
                // The cluster did not answer in time: an error to retry (the query
                // shows RETRYING), not a missing topic.
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(e) => tracing::warn!(topic, error = %e, "cannot fetch topic metadata; retrying"),
            }
            if !warned {
                tracing::warn!(topic, timeout_ms = timeout.as_millis() as u64, "topic does not exist yet; waiting for it");
                warned = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn next_batch(&mut self) -> eddy_engine::Result<Option<SourceBatch>> {
        let mut batch = RawBatchBuilder::default();
        let deadline = tokio::time::Instant::now() + self.linger;
        // One deadline for the whole micro-batch, not a timer per record. `recv` is
        // cancellation safe and the rows live in `batch`, outside the future, so the
        // deadline firing mid-batch loses nothing.
        let fill = async {
            while batch.rows < self.max_rows {
                match self.consumer.recv().await {
                    Ok(m) => batch.append(&m),
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e) if kafka_transience(&e) == Transience::Transient => {
                        tracing::warn!(topic = %self.topic, error = %e, "kafka consumer error; retrying");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline, fill).await {
            Err(_) | Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ConnectorError::from(e).into()),
        }
        Ok(Some(batch.finish(&self.topic)?))
    }

    async fn commit(&mut self, positions: &[PartitionOffset], watermark: Option<i64>) -> eddy_engine::Result<()> {
        if let (Some(w), Some(path)) = (watermark, self.watermark_file.clone()) {
            tokio::task::block_in_place(|| write_watermark(&path, w))
                .map_err(|source| ConnectorError::File { path: path.display().to_string(), source })?;
        }
        // Nothing read yet (a query stopped before its first record): nothing to commit;
        // librdkafka answers an empty commit with NoOffset, which would fail the query.
        if positions.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for p in positions {
            list.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next_offset)).map_err(ConnectorError::from)?;
            if let (Some(w), Some(mut element)) = (watermark, list.find_partition(&p.topic, p.partition)) {
                element.set_metadata(format!("{WATERMARK_METADATA}{w}"));
            }
        }
        // Asynchronous, so polling never waits for the broker; librdkafka keeps commits
        // in order. A commit lost in a crash only means re-reading rows already written.
        nothing_to_commit_is_ok(self.consumer.commit(&list, CommitMode::Async))?;
        self.last_commit = Some(list);
        Ok(())
    }

    fn partitions(&self) -> Vec<i32> {
        self.partition_ids.clone()
    }

    async fn end_offsets(&mut self) -> Option<Vec<PartitionOffset>> {
        let consumer = &self.consumer;
        let mut ends = Vec::with_capacity(self.partition_ids.len());
        for &p in &self.partition_ids {
            let (low, high) = tokio::task::block_in_place(|| consumer.fetch_watermarks(&self.topic, p, Duration::from_secs(10))).ok()?;
            if high > low {
                ends.push(PartitionOffset { topic: self.topic.clone(), partition: p, next_offset: high });
            }
        }
        Some(ends)
    }

    fn restored_watermark(&self) -> Option<i64> {
        self.restored_watermark
    }

    async fn close(&mut self) -> eddy_engine::Result<()> {
        if let Some(list) = self.last_commit.take() {
            let consumer = &self.consumer;
            nothing_to_commit_is_ok(tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync)))?;
        }
        Ok(())
    }
}

/// A commit's result, where librdkafka's `NoOffset` ("no offset stored": nothing in the
/// list it could commit, e.g. a query stopped before its first record) is not an error.
fn nothing_to_commit_is_ok(result: std::result::Result<(), KafkaError>) -> Result<()> {
    match result {
        Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::NoOffset) => {
            tracing::debug!(error = %e, "nothing to commit");
            Ok(())
        }
        other => other.map_err(ConnectorError::from),
    }
}

/// Column builders of one micro-batch of raw records ([`raw_schema`]).
#[derive(Default)]
struct RawBatchBuilder {
    keys: BinaryBuilder,
    values: BinaryBuilder,
    topics: StringBuilder,
    partitions: Int32Builder,
    offsets: Int64Builder,
    timestamps: TimestampMillisecondBuilder,
    positions: BTreeMap<i32, i64>,
    rows: usize,
}

impl RawBatchBuilder {
    fn append<M: Message>(&mut self, message: &M) {
        self.keys.append_option(message.key());
        self.values.append_option(message.payload());
        self.topics.append_value(message.topic());
        self.partitions.append_value(message.partition());
        self.offsets.append_value(message.offset());
        self.timestamps.append_option(message.timestamp().to_millis());
        self.positions.insert(message.partition(), message.offset() + 1);
        self.rows += 1;
    }

    fn finish(mut self, topic: &str) -> Result<SourceBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            Arc::new(self.topics.finish()),
            Arc::new(self.partitions.finish()),
            Arc::new(self.offsets.finish()),
            Arc::new(self.timestamps.finish()),
        ];
        let records = RecordBatch::try_new(raw_schema(), columns)?;
        let positions = self
            .positions
            .into_iter()
            .map(|(partition, next_offset)| PartitionOffset { topic: topic.to_string(), partition, next_offset })
            .collect();
        Ok(SourceBatch { records, positions })
    }
}
