//! Kafka sink: an idempotent producer; record key from the relation's KEY column, value
//! DELIMITED or JSON.

use std::collections::VecDeque;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::format::{encode_keys, ValueEncoder};
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
    key_index: Option<usize>,
    in_flight: VecDeque<DeliveryFuture>,
}

impl KafkaSink {
    /// A producer for `relation`'s topic.
    ///
    /// Errors: the client cannot be created.
    pub fn new(config: &KafkaConfig, options: &KafkaOptions, relation: &Relation) -> Result<Self> {
        let mut client = config.client_config();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "120000");
        for (k, v) in &options.properties {
            client.set(k, v);
        }
        let producer: FutureProducer = client.create()?;
        let key_index = match &relation.key {
            Some(k) => Some(relation.schema.index_of(k)?),
            None => None,
        };
        Ok(KafkaSink {
            producer,
            topic: options.topic.clone(),
            encoder: ValueEncoder::new(options.format),
            key_index,
            in_flight: VecDeque::new(),
        })
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
        let values = self.encoder.encode(&batch)?;
        let keys = match self.key_index {
            Some(i) => encode_keys(batch.column(i))?,
            None => vec![None; values.len()],
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
