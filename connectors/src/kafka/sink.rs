//! Kafka sink: an idempotent producer; record key from the relation's key columns
//! (one column as its text; several, e.g. a windowed aggregate's group key and
//! `window_start`, as one record in the value format), value DELIMITED or JSON.
//! The raw mode writes records as they were read (the late-rows side output); the dead
//! letter mode too, with the error and the record's origin in headers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::connector::{Progress, Sink};
use eddy_engine::format::{encode_keys, TimestampStyle, ValueEncoder};
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::options::DeliveryGuarantee;
use eddy_engine::options::KafkaOptions;
use eddy_engine::record::RawColumn;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::tail::{read_tail, Suppression, HEADER_CHECKPOINT, HEADER_QUERY};
use super::KafkaConfig;
use crate::error::{kafka_transience, Result, Transience};
use crate::retry::Backoff;

/// Writes rows to one topic. `write` enqueues; `flush` waits until the broker has
/// acknowledged every record (acks=all), so a barrier after it is safe to commit.
///
/// **Outages.** Each record is kept until the broker acknowledges it. When delivery
/// fails for a reason a retry can fix (broker down or restarted, an idempotent producer
/// the restarted broker no longer knows: anything but the [`Transience::Permanent`] errors), the
/// sink lets the old producer settle what it still holds, creates a new producer and
/// sends the records that were not acknowledged again, in order, with exponential
/// backoff (100 ms up to 30 s) until they are; the query shows `RETRYING` meanwhile.
///
/// **No repeats after a restart.** A query's rows carry the progress headers of
/// [`super::tail`]; on resume the sink reads back what it wrote after the checkpoint the
/// query resumes from and drops those records when the replay produces them again.
///
/// **Transactions** (`'sink.delivery-guarantee'='exactly-once'`, Flink's option): the
/// producer is transactional (`transactional.id` = `'sink.transactional-id-prefix'`, by
/// default the query's consumer group, the same on every run), each checkpoint's
/// records form one transaction, committed when the checkpoint commits
/// ([`Sink::commit`]), and a new transaction begins. `read_committed` consumers see a
/// checkpoint's records all at once or not at all; a crashed run's open transaction is
/// aborted when the restarted query initialises its producer (the zombie is fenced),
/// and the replay produces those records again. The read-back of the tail is
/// `read_committed` too, so only committed records are suppressed. A delivery error
/// inside a transaction cannot be repaired by sending again (the transaction is
/// aborted): the query stops, and restarting it resumes from its last checkpoint.
pub struct KafkaSink {
    producer: FutureProducer,
    client: rdkafka::ClientConfig,
    topic: String,
    encoder: ValueEncoder,
    mode: Mode,
    /// Sent records not acknowledged yet, oldest first, each with its bytes.
    in_flight: VecDeque<(DeliveryFuture, Record)>,
    metrics: Option<Arc<QueryMetrics>>,
    config: KafkaConfig,
    /// The writing query's consumer group: its records get the progress headers.
    query: Option<String>,
    /// The checkpoint the records written now belong to (last completed + 1).
    label: u64,
    suppression: Suppression,
    /// Exactly-once: a transaction is open.
    transactional: bool,
    /// Names written as ksqlDB spells them (JSON keys with several columns).
    ksql_names: bool,
    /// How dates and times are written: the sink's dialect ([`TimestampStyle::of_sink`]).
    timestamps: TimestampStyle,
    /// The sink's TIMESTAMP_LTZ columns (Flink writes them with a `Z`).
    ltz: Vec<String>,
    /// JSON values are the one value column's bare value (`WRAP_SINGLE_VALUE = false`).
    unwrap_single_value: bool,
}

/// How long librdkafka may take for a transaction call (init, commit, abort).
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A record as sent: key, value, headers.
#[derive(Clone)]
struct Record {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Option<OwnedHeaders>,
    /// The record timestamp (ms since the epoch); `None`: the producer's clock.
    timestamp: Option<i64>,
    /// A tombstone: the record has no value (`value` is ignored), deleting its key.
    tombstone: bool,
}

/// How much of a dead letter's value is kept when the whole record is larger than the
/// broker accepts (bytes); the `eddy.value_truncated` header then gives the full length.
pub const DEAD_LETTER_TRUNCATED_BYTES: usize = 64 * 1024;

/// What the rows written to a [`KafkaSink`] are.
#[derive(PartialEq, Eq)]
enum Mode {
    /// The relation's rows, keyed by these columns (written as text, and also in the value).
    Rows(Vec<usize>),
    /// ksqlDB's rows: the key columns are the record key in the key format, the value
    /// holds the other columns (a windowed key ends with the window start).
    KeyedRows(RecordKey),
    /// Raw records (`key`, `value` columns of [`eddy_engine::record::raw_schema`]).
    Raw,
    /// Dead letters ([`eddy_engine::record::dead_letter_schema`]): key and value as
    /// read; `eddy.error`, `eddy.topic`, `eddy.partition`, `eddy.offset`,
    /// `eddy.timestamp` (ms, when the record has one) and `eddy.failed_at` (ms) as headers.
    DeadLetters,
}

/// Where a ksqlDB relation's key and value columns are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordKey {
    format: eddy_engine::options::KeyFormat,
    key: Vec<usize>,
    value: Vec<usize>,
    /// The window columns appended to the key bytes: the start; for a session, the end
    /// and then the start.
    window_key: Vec<usize>,
}

impl KafkaSink {
    /// A producer for `relation`'s topic, writing for the query with consumer group
    /// `query` (its records get the progress headers); `metrics` (the query's) show
    /// `RETRYING` during an outage.
    ///
    /// Errors: the client cannot be created.
    pub fn new(
        config: &KafkaConfig,
        options: &KafkaOptions,
        relation: &Relation,
        query: Option<String>,
        metrics: Option<Arc<QueryMetrics>>,
    ) -> Result<Self> {
        let key_indices = relation.key.iter().map(|k| relation.schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        let mode = if options.record_key {
            // A windowed key: the window start is appended to the key bytes; neither window
            // bound is in the value (ksqlDB's windowed tables).
            let window_start = options.windowed_key.as_ref().and_then(|n| relation.schema.index_of(n).ok());
            let window_end =
                ["windowend", "window_end"].iter().find_map(|n| relation.schema.index_of(n).ok()).filter(|_| window_start.is_some());
            let window: Vec<usize> = window_start.into_iter().chain(window_end).collect();
            let window_key: Vec<usize> = match (window_start, window_end) {
                (Some(start), Some(end)) if options.session_key => vec![end, start],
                (Some(start), _) => vec![start],
                _ => Vec::new(),
            };
            Mode::KeyedRows(RecordKey {
                format: options.key_format,
                key: key_indices.iter().copied().filter(|i| !window.contains(i)).collect(),
                value: (0..relation.schema.fields().len()).filter(|i| !key_indices.contains(i) && !window.contains(i)).collect(),
                window_key,
            })
        } else {
            Mode::Rows(key_indices)
        };
        let mut sink = Self::with_mode(config, options, &options.topic, mode, metrics)?;
        sink.ksql_names = relation.ksql_names;
        sink.timestamps = TimestampStyle::of_sink(relation.ksql_names, options.timestamp_iso);
        sink.ltz = relation.ltz_columns.clone();
        sink.encoder = ValueEncoder::new(options.format)
            .ignoring_null_fields(options.ignore_null_fields)
            .with_ksql_names(relation.ksql_names)
            .with_timestamps(sink.timestamps, relation.ltz_columns.clone());
        if options.delivery == DeliveryGuarantee::ExactlyOnce {
            let id = options.transactional_id_prefix.clone().or_else(|| query.clone()).unwrap_or_else(|| format!("eddy-{}", options.topic));
            sink.begin_transactions(&id)?;
        }
        sink.query = query;
        Ok(sink)
    }

    /// Makes the producer transactional with `transactional_id`: initialises it (which
    /// aborts a transaction an earlier run left open) and begins the first transaction.
    ///
    /// Errors: the broker has no transactions, or the calls time out.
    fn begin_transactions(&mut self, transactional_id: &str) -> Result<()> {
        self.client.set("transactional.id", transactional_id).set("transaction.timeout.ms", "900000");
        let producer: FutureProducer = self.client.create()?;
        tokio::task::block_in_place(|| producer.init_transactions(TRANSACTION_CALL_TIMEOUT))?;
        producer.begin_transaction()?;
        tracing::info!(topic = %self.topic, transactional_id, "Kafka sink: transactions begun (exactly-once)");
        self.producer = producer;
        self.transactional = true;
        Ok(())
    }

    /// A producer writing dead letters to `topic` (see `Mode::DeadLetters`).
    ///
    /// Errors: the client cannot be created.
    pub fn dead_letters(config: &KafkaConfig, options: &KafkaOptions, topic: &str, metrics: Option<Arc<QueryMetrics>>) -> Result<Self> {
        Self::with_mode(config, options, topic, Mode::DeadLetters, metrics)
    }

    /// A producer writing raw records (key and value bytes as read) to `topic`.
    ///
    /// Errors: the client cannot be created.
    pub fn raw(config: &KafkaConfig, options: &KafkaOptions, topic: &str, metrics: Option<Arc<QueryMetrics>>) -> Result<Self> {
        Self::with_mode(config, options, topic, Mode::Raw, metrics)
    }

    fn with_mode(
        config: &KafkaConfig,
        options: &KafkaOptions,
        topic: &str,
        mode: Mode,
        metrics: Option<Arc<QueryMetrics>>,
    ) -> Result<Self> {
        let mut client = config.client_config();
        client.set("enable.idempotence", "true").set("acks", "all").set("linger.ms", "5").set("message.timeout.ms", "120000");
        for (k, v) in &options.properties {
            client.set(k, v);
        }
        Ok(KafkaSink {
            producer: client.create()?,
            client,
            topic: topic.to_string(),
            encoder: ValueEncoder::new(options.format).ignoring_null_fields(options.ignore_null_fields),
            mode,
            in_flight: VecDeque::new(),
            metrics,
            config: config.clone(),
            query: None,
            label: 1,
            suppression: Suppression::default(),
            transactional: false,
            ksql_names: false,
            timestamps: TimestampStyle::Iso,
            ltz: Vec::new(),
            unwrap_single_value: !options.wrap_single_value && matches!(options.format, eddy_engine::options::Format::Json),
        })
    }

    /// `record` addressed to this sink's topic, its value replaced by `value` if given.
    fn future_record<'a>(topic: &'a str, record: &'a Record, value: Option<&'a [u8]>) -> FutureRecord<'a, [u8], [u8]> {
        let mut r = FutureRecord::<[u8], [u8]>::to(topic);
        if !record.tombstone {
            r = r.payload(value.unwrap_or(record.value.as_slice()));
        }
        if let Some(k) = &record.key {
            r = r.key(k.as_slice());
        }
        if let Some(h) = &record.headers {
            r = r.headers(h.clone());
        }
        if let Some(t) = record.timestamp {
            r = r.timestamp(t);
        }
        r
    }

    /// Enqueues `record`, waiting for room when the producer's queue is full.
    async fn send(&mut self, record: Record) -> Result<()> {
        loop {
            match self.producer.send_result(Self::future_record(&self.topic, &record, None)) {
                Ok(future) => {
                    self.in_flight.push_back((future, record));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.wait_oldest().await?;
                    }
                }
                Err((e, _)) if is_too_large(&e) && self.mode == Mode::DeadLetters => return self.send_truncated(record).await,
                Err((e, _)) if kafka_transience(&e) == Transience::Permanent => return Err(e.into()),
                // Newer than everything in flight: sent again after them.
                Err((e, _)) => return self.recover(Vec::new(), vec![record], e).await,
            }
        }
    }

    /// Sends a dead letter too large for the broker again, its value cut to
    /// [`DEAD_LETTER_TRUNCATED_BYTES`] and its full length in `eddy.value_truncated`,
    /// and waits for it: the record's origin and error always reach the topic.
    async fn send_truncated(&mut self, mut record: Record) -> Result<()> {
        let full = record.value.len().to_string();
        record.headers = Some(record.headers.take().unwrap_or_default().insert(Header { key: "eddy.value_truncated", value: Some(&full) }));
        let cut = &record.value[..record.value.len().min(DEAD_LETTER_TRUNCATED_BYTES)];
        let r = Self::future_record(&self.topic, &record, Some(cut));
        tracing::warn!(topic = %self.topic, bytes = record.value.len(), "dead letter too large for the broker: its value is cut to {DEAD_LETTER_TRUNCATED_BYTES} bytes");
        match self.producer.send(r, Duration::from_secs(120)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.into()),
        }
    }

    /// Waits for the oldest record in flight.
    async fn wait_oldest(&mut self) -> Result<()> {
        let Some((future, record)) = self.in_flight.pop_front() else { return Ok(()) };
        match future.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) if is_too_large(&e) && self.mode == Mode::DeadLetters => self.send_truncated(record).await,
            Ok(Err((e, _))) if kafka_transience(&e) == Transience::Permanent => Err(e.into()),
            Ok(Err((e, _))) => self.recover(vec![record], Vec::new(), e).await,
            Err(_) => self.recover(vec![record], Vec::new(), KafkaError::Canceled).await,
        }
    }

    /// Delivery failed with `error`, which a retry can fix, for `older` (records before
    /// those in flight) or `newer` (after them): settles what the old producer still
    /// holds, then sends everything unacknowledged again, in order, with a new producer
    /// until the broker takes it (see the type's docs).
    async fn recover(&mut self, older: Vec<Record>, newer: Vec<Record>, error: KafkaError) -> Result<()> {
        if self.transactional {
            return Err(crate::error::ConnectorError::Config(format!(
                "Kafka topic {}: {error}; the open transaction cannot be repaired by sending again, so the query stops \
                 (restarting it resumes from its last checkpoint, and the transaction is aborted)",
                self.topic
            )));
        }
        let mut failed = older;
        let rest: Vec<(DeliveryFuture, Record)> = self.in_flight.drain(..).collect();
        for (future, record) in rest {
            match future.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) if kafka_transience(&e) == Transience::Permanent => return Err(e.into()),
                _ => failed.push(record),
            }
        }
        failed.extend(newer);
        let mut backoff = Backoff::default();
        let mut last_error = error;
        while !failed.is_empty() {
            let delay = backoff.next_delay();
            let message = format!(
                "Kafka topic {}: {last_error} ({} records to send again, attempt {}, next in {} ms)",
                self.topic,
                failed.len(),
                backoff.attempts(),
                delay.as_millis()
            );
            tracing::warn!("{message}");
            if let Some(m) = &self.metrics {
                m.set_retrying(Some(message));
            }
            tokio::time::sleep(delay).await;
            self.producer = self.client.create()?;
            let mut sent = Vec::with_capacity(failed.len());
            for record in failed.drain(..) {
                let result = self.producer.send(Self::future_record(&self.topic, &record, None), Duration::from_secs(120)).await;
                sent.push((result, record));
            }
            for (result, record) in sent {
                match result {
                    Ok(_) => {}
                    Err((e, _)) if kafka_transience(&e) == Transience::Permanent => return Err(e.into()),
                    Err((e, _)) => {
                        last_error = e;
                        failed.push(record);
                    }
                }
            }
        }
        tracing::info!(topic = %self.topic, attempts = backoff.attempts(), "Kafka writes resumed");
        if let Some(m) = &self.metrics {
            m.set_retrying(None);
        }
        Ok(())
    }

    async fn flush_in_flight(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        let (batch, rowtimes) = split_last(batch, eddy_engine::operators::META_ROWTIME);
        let rowtimes = rowtimes.and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>().cloned());
        let (batch, deletes) = split_last(batch, eddy_engine::operators::having_deletes::DELETE);
        let deletes = deletes.and_then(|c| c.as_boolean_opt().cloned());
        // Raw records (late rows) keep the timestamp they were read with.
        let rowtimes = rowtimes.or_else(|| match self.mode {
            Mode::Raw => batch.column(RawColumn::Timestamp as usize).as_primitive_opt::<TimestampMillisecondType>().cloned(),
            _ => None,
        });
        let mut headers: Vec<Option<OwnedHeaders>> = Vec::new();
        let (keys, values) = match &self.mode {
            Mode::Raw | Mode::DeadLetters => {
                let bytes = |i: usize| -> Vec<Option<Vec<u8>>> {
                    batch.column(i).as_binary::<i32>().iter().map(|v| v.map(<[u8]>::to_vec)).collect()
                };
                let values: Vec<Vec<u8>> = bytes(RawColumn::Value as usize).into_iter().map(Option::unwrap_or_default).collect();
                if self.mode == Mode::DeadLetters {
                    headers = dead_letter_headers(&batch);
                }
                (bytes(RawColumn::Key as usize), values)
            }
            Mode::KeyedRows(k) => {
                let mut values = self.encoder.encode(&batch.project(&k.value)?)?;
                if self.unwrap_single_value {
                    values = values.into_iter().map(eddy_engine::format::unwrap_single_value).collect();
                }
                let values = if values.is_empty() && batch.num_rows() > 0 { vec![b"{}".to_vec(); batch.num_rows()] } else { values };
                let window: Vec<ArrayRef> = k.window_key.iter().map(|&i| batch.column(i).clone()).collect();
                let mut key_batch = batch.project(&k.key)?;
                if self.ksql_names {
                    key_batch = eddy_engine::format::with_ksql_names(&key_batch)?;
                }
                let keys = eddy_engine::format::encode_record_keys(k.format, &key_batch, &window, self.timestamps)?;
                (keys, values)
            }
            Mode::Rows(indices) => {
                let mut values = self.encoder.encode(&batch)?;
                if self.unwrap_single_value {
                    values = values.into_iter().map(eddy_engine::format::unwrap_single_value).collect();
                }
                let keys = match indices.as_slice() {
                    [] => vec![None; values.len()],
                    [i] => {
                        let zone = self.ltz.iter().any(|n| n == batch.schema().field(*i).name());
                        encode_keys(batch.column(*i), self.timestamps, zone)?
                    }
                    several => self.encoder.encode(&batch.project(several)?)?.into_iter().map(Some).collect(),
                };
                (keys, values)
            }
        };
        // The progress headers are the same for the whole batch: built once.
        let label = self.label.to_string();
        let progress = self.query.as_ref().map(|query| {
            OwnedHeaders::new()
                .insert(Header { key: HEADER_QUERY, value: Some(query.as_str()) })
                .insert(Header { key: HEADER_CHECKPOINT, value: Some(label.as_str()) })
        });
        for (i, (key, value)) in keys.into_iter().zip(values).enumerate() {
            let tombstone = deletes.as_ref().is_some_and(|d| d.value(i));
            if self.suppression.take(key.as_deref(), (!tombstone).then_some(value.as_slice())) {
                if self.suppression.is_empty() {
                    tracing::info!(topic = %self.topic, suppressed = self.suppression.suppressed(), "every record written before the restart was met again");
                }
                continue;
            }
            let headers = progress.clone().or_else(|| headers.get_mut(i).and_then(Option::take));
            // Kafka takes no timestamp before the epoch: those rows get the producer's clock.
            let timestamp = rowtimes.as_ref().filter(|t| t.is_valid(i)).map(|t| t.value(i)).filter(|&t| t >= 0);
            self.send(Record { key, value, headers, timestamp, tombstone }).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        self.flush_in_flight().await?;
        Ok(())
    }

    async fn commit(&mut self, progress: &Progress) -> eddy_engine::Result<()> {
        self.flush_in_flight().await?;
        if self.transactional {
            let producer = &self.producer;
            tokio::task::block_in_place(|| producer.commit_transaction(TRANSACTION_CALL_TIMEOUT))
                .map_err(crate::error::ConnectorError::from)?;
            self.producer.begin_transaction().map_err(crate::error::ConnectorError::from)?;
        }
        self.label = self.label.max(progress.checkpoint_id + 1);
        Ok(())
    }

    async fn resume(&mut self, from: Option<&Progress>) -> eddy_engine::Result<()> {
        let Some(query) = self.query.clone() else { return Ok(()) };
        // Without a checkpoint (a first start, or a query that never completed one)
        // everything this query wrote counts as after it.
        let after = from.map_or(0, |f| f.checkpoint_id);
        self.label = after + 1;
        let (config, topic) = (self.config.clone(), self.topic.clone());
        let started = std::time::Instant::now();
        self.suppression = tokio::task::block_in_place(|| read_tail(&config, &topic, &query, after))?;
        tracing::info!(
            topic = %self.topic,
            after_checkpoint = after,
            records = self.suppression.len(),
            ms = started.elapsed().as_millis() as u64,
            "read back what was written after the checkpoint; those records will not be written again"
        );
        Ok(())
    }
}

/// Splits off the last column of `batch` when it is named `name`: the engine appends
/// `__delete` (Boolean: HAVING's and merged sessions' tombstones) and then `__rowtime`
/// (Timestamp(ms): the record timestamps, ksqlDB's ROWTIME) to rows bound for a Kafka
/// sink. Batches without it come back whole.
fn split_last(batch: RecordBatch, name: &str) -> (RecordBatch, Option<ArrayRef>) {
    let n = batch.num_columns();
    if n == 0 || batch.schema().field(n - 1).name() != name {
        return (batch, None);
    }
    let mut batch = batch;
    let column = batch.remove_column(n - 1);
    (batch, Some(column))
}

/// The headers of each dead letter in `batch` ([`eddy_engine::record::dead_letter_schema`]).
fn dead_letter_headers(batch: &RecordBatch) -> Vec<Option<OwnedHeaders>> {
    use arrow::array::Array;
    use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
    let topics = batch.column(RawColumn::Topic as usize).as_string::<i32>();
    let partitions = batch.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
    let offsets = batch.column(RawColumn::Offset as usize).as_primitive::<Int64Type>();
    let timestamps = batch.column(RawColumn::Timestamp as usize).as_primitive::<TimestampMillisecondType>();
    let (Some(errors), Some(failed)) = (
        batch.column_by_name("error").and_then(|c| c.as_string_opt::<i32>()),
        batch.column_by_name("failed_at").and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>()),
    ) else {
        return vec![None; batch.num_rows()];
    };
    (0..batch.num_rows())
        .map(|i| {
            let partition = partitions.value(i).to_string();
            let offset = offsets.value(i).to_string();
            let failed_at = failed.value(i).to_string();
            let mut h = OwnedHeaders::new()
                .insert(Header { key: "eddy.error", value: Some(errors.value(i)) })
                .insert(Header { key: "eddy.topic", value: Some(topics.value(i)) })
                .insert(Header { key: "eddy.partition", value: Some(&partition) })
                .insert(Header { key: "eddy.offset", value: Some(&offset) });
            if timestamps.is_valid(i) {
                let ts = timestamps.value(i).to_string();
                h = h.insert(Header { key: "eddy.timestamp", value: Some(&ts) });
            }
            Some(h.insert(Header { key: "eddy.failed_at", value: Some(&failed_at) }))
        })
        .collect()
}

/// Whether the client or the broker refused a record as too large.
fn is_too_large(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize))
}
