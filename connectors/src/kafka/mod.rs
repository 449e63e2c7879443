//! Kafka through rdkafka (librdkafka), exactly as with Apache Kafka: a consumer-group
//! source, an idempotent producer sink, and topic creation through the admin API.

mod admin;
mod sink;
mod source;
mod tail;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

pub use admin::{delete_topic, ensure_topic, list_topics};
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use tail::{read_tail, Suppression, HEADER_CHECKPOINT, HEADER_QUERY, MAX_TAIL_RECORDS};

/// Client settings shared by every Kafka client Eddy makes.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// librdkafka properties set where Eddy runs (`--kafka-property`), applied after the
    /// defaults; a statement's allowed `properties.*` are applied after these by the
    /// source and the sink.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A librdkafka config with the bootstrap servers and the extra properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set("client.id", "eddy");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}
