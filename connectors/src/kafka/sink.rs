//! Kafka sink: an idempotent producer; record key from the relation's key columns
//! (one column as its text; several, e.g. a windowed aggregate's group key and
//! `window_start`, as one record in the value format), value DELIMITED or JSON.
//! The raw mode writes records as they were read (the late-rows side output).

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
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::KafkaConfig;
use crate::error::{ConnectorError, Result};

/// Writes rows to one topic. `write` enqueues; `flush` waits until the broker has
/// acknowledged every record (acks=all), so a barrier after it is safe to commit.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    encoder: ValueEncoder,
    /// `None`: raw records (`key`, `value` columns of [`eddy_engine::operators::raw_schema`]).
    key_indices: Option<Vec<usize>>,
    in_flight: VecDeque<DeliveryFuture>,
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
            key_indices: Some(key_indices),
            in_flight: VecDeque::new(),
        })
    }

    /// A producer writing raw records (key and value bytes as read) to `topic`.
    ///
    /// Errors: the client cannot be created.
    pub fn raw(config: &KafkaConfig, options: &KafkaOptions, topic: &str) -> Result<Self> {
        Ok(KafkaSink {
            producer: Self::producer(config, options)?,
            topic: topic.to_string(),
            encoder: ValueEncoder::new(options.format),
            key_indices: None,
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

    async fn wait_oldest(&mut self) -> Result<()> {
        if let Some(future) = self.in_flight.pop_front() {
            match future.await {
                Ok(Ok(_)) => {}
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
        let (keys, values) = match &self.key_indices {
            None => {
                let bytes = |i: usize| -> Vec<Option<Vec<u8>>> { batch.column(i).as_binary::<i32>().iter().map(|v| v.map(<[u8]>::to_vec)).collect() };
                let values: Vec<Vec<u8>> = bytes(RawColumn::Value as usize).into_iter().map(Option::unwrap_or_default).collect();
                (bytes(RawColumn::Key as usize), values)
            }
            Some(indices) => {
                let values = self.encoder.encode(&batch)?;
                let keys = match indices.as_slice() {
                    [] => vec![None; values.len()],
                    [i] => encode_keys(batch.column(*i))?,
                    several => self.encoder.encode(&batch.project(several)?)?.into_iter().map(Some).collect(),
                };
                (keys, values)
            }
        };
        for (key, value) in keys.iter().zip(&values) {
            loop {
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(value.as_slice());
                if let Some(k) = key {
                    record = record.key(k.as_slice());
                }
                match self.producer.send_result(record) {
                    Ok(future) => {
                        self.in_flight.push_back(future);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        if self.in_flight.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            self.wait_oldest().await?;
                        }
                    }
                    Err((e, _)) => return Err(ConnectorError::from(e).into()),
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> eddy_engine::Result<()> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }
}
