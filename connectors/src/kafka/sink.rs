//! Kafka sink: an idempotent producer; record key from the relation's key columns
//! (one column as its text; several, e.g. a windowed aggregate's group key and
//! `window_start`, as one record in the value format), value DELIMITED or JSON.
//! The raw mode writes records as they were read (the late-rows side output); the dead
//! letter mode too, with the error and the record's origin in headers.

use std::collections::VecDeque;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::format::{encode_keys, ValueEncoder};
use eddy_engine::operators::RawColumn;
use eddy_engine::options::KafkaOptions;
use eddy_engine::runtime::Sink;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::KafkaConfig;
use crate::error::{ConnectorError, Result};

/// Writes rows to one topic. `write` enqueues; `flush` waits until the broker has
/// acknowledged every record (acks=all), so a barrier after it is safe to commit.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    encoder: ValueEncoder,
    mode: Mode,
    /// Sent records not acknowledged yet; a dead letter keeps its bytes, to be sent
    /// again cut short if the broker finds it too large.
    in_flight: VecDeque<(DeliveryFuture, Option<Box<Letter>>)>,
}

/// A dead letter as sent: key, value, headers.
type Letter = (Option<Vec<u8>>, Vec<u8>, OwnedHeaders);

/// How much of a dead letter's value is kept when the whole record is larger than the
/// broker accepts (bytes); the `eddy.value_truncated` header then gives the full length.
pub const DEAD_LETTER_TRUNCATED_BYTES: usize = 64 * 1024;

/// What the rows written to a [`KafkaSink`] are.
enum Mode {
    /// The relation's rows, keyed by these columns.
    Rows(Vec<usize>),
    /// Raw records (`key`, `value` columns of [`eddy_engine::operators::raw_schema`]).
    Raw,
    /// Dead letters ([`eddy_engine::operators::dead_letter_schema`]): key and value as
    /// read; `eddy.error`, `eddy.topic`, `eddy.partition`, `eddy.offset`,
    /// `eddy.timestamp` (ms, when the record has one) and `eddy.failed_at` (ms) as headers.
    DeadLetters,
}

impl KafkaSink {
    /// A producer for `relation`'s topic.
    ///
    /// Errors: the client cannot be created.
    pub fn new(config: &KafkaConfig, options: &KafkaOptions, relation: &Relation) -> Result<Self> {
        let producer = Self::producer(config, options)?;
        let key_indices = relation.key.iter().map(|k| relation.schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(KafkaSink {
            producer,
            topic: options.topic.clone(),
            encoder: ValueEncoder::new(options.format),
            mode: Mode::Rows(key_indices),
            in_flight: VecDeque::new(),
        })
    }

    /// A producer writing dead letters to `topic` (see `Mode::DeadLetters`).
    ///
    /// Errors: the client cannot be created.
    pub fn dead_letters(config: &KafkaConfig, options: &KafkaOptions, topic: &str) -> Result<Self> {
        let mut sink = Self::raw(config, options, topic)?;
        sink.mode = Mode::DeadLetters;
        Ok(sink)
    }

    /// A producer writing raw records (key and value bytes as read) to `topic`.
    ///
    /// Errors: the client cannot be created.
    pub fn raw(config: &KafkaConfig, options: &KafkaOptions, topic: &str) -> Result<Self> {
        Ok(KafkaSink {
            producer: Self::producer(config, options)?,
            topic: topic.to_string(),
            encoder: ValueEncoder::new(options.format),
            mode: Mode::Raw,
            in_flight: VecDeque::new(),
        })
    }

    fn producer(config: &KafkaConfig, options: &KafkaOptions) -> Result<FutureProducer> {
        let mut client = config.client_config();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000");
        for (k, v) in &options.properties {
            client.set(k, v);
        }
        Ok(client.create()?)
    }

    /// Sends a dead letter too large for the broker again, its value cut to
    /// [`DEAD_LETTER_TRUNCATED_BYTES`] and its full length in `eddy.value_truncated`,
    /// and waits for it: the record's origin and error always reach the topic.
    async fn send_truncated(&mut self, (key, value, headers): Letter) -> Result<()> {
        let full = value.len().to_string();
        let headers = headers.insert(Header { key: "eddy.value_truncated", value: Some(&full) });
        let cut = &value[..value.len().min(DEAD_LETTER_TRUNCATED_BYTES)];
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(cut).headers(headers);
        if let Some(k) = &key {
            record = record.key(k.as_slice());
        }
        tracing::warn!(topic = %self.topic, bytes = value.len(), "dead letter too large for the broker: its value is cut to {DEAD_LETTER_TRUNCATED_BYTES} bytes");
        match self.producer.send(record, Duration::from_secs(120)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.into()),
        }
    }

    async fn wait_oldest(&mut self) -> Result<()> {
        if let Some((future, letter)) = self.in_flight.pop_front() {
            match future.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) if is_too_large(&e) && letter.is_some() => {
                    if let Some(letter) = letter {
                        self.send_truncated(*letter).await?;
                    }
                }
                Ok(Err((e, _))) => return Err(e.into()),
                Err(_) => return Err(ConnectorError::Config("the Kafka producer was closed".into())),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        let mut headers: Vec<Option<OwnedHeaders>> = Vec::new();
        let (keys, values) = match &self.mode {
            Mode::Raw | Mode::DeadLetters => {
                let bytes = |i: usize| -> Vec<Option<Vec<u8>>> { batch.column(i).as_binary::<i32>().iter().map(|v| v.map(<[u8]>::to_vec)).collect() };
                let values: Vec<Vec<u8>> = bytes(RawColumn::Value as usize).into_iter().map(Option::unwrap_or_default).collect();
                if matches!(self.mode, Mode::DeadLetters) {
                    headers = dead_letter_headers(&batch);
                }
                (bytes(RawColumn::Key as usize), values)
            }
            Mode::Rows(indices) => {
                let values = self.encoder.encode(&batch)?;
                let keys = match indices.as_slice() {
                    [] => vec![None; values.len()],
                    [i] => encode_keys(batch.column(*i))?,
                    several => self.encoder.encode(&batch.project(several)?)?.into_iter().map(Some).collect(),
                };
                (keys, values)
            }
        };
        for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
            loop {
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(value.as_slice());
                if let Some(k) = key {
                    record = record.key(k.as_slice());
                }
                let letter = match headers.get(i) {
                    Some(Some(h)) => {
                        record = record.headers(h.clone());
                        Some(Box::new((key.clone(), value.clone(), h.clone())))
                    }
                    _ => None,
                };
                match self.producer.send_result(record) {
                    Ok(future) => {
                        self.in_flight.push_back((future, letter));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        if self.in_flight.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            self.wait_oldest().await?;
                        }
                    }
                    Err((e, _)) if is_too_large(&e) && letter.is_some() => {
                        if let Some(letter) = letter {
                            self.send_truncated(*letter).await?;
                        }
                        break;
                    }
                    Err((e, _)) => return Err(ConnectorError::from(e).into()),
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        self.flush_in_flight().await?;
        Ok(())
    }
}

impl KafkaSink {
    async fn flush_in_flight(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }
}

/// The headers of each dead letter in `batch` ([`eddy_engine::operators::dead_letter_schema`]).
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
