//! Kafka through rdkafka (librdkafka), exactly as with Apache Kafka: a consumer-group
//! source, an idempotent producer sink, and topic creation through the admin API.

mod admin;
mod sink;
mod source;
mod tail;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

pub use admin::{cluster_id, delete_topic, ensure_topic, list_topics};
pub use sink::KafkaSink;
pub use source::{KafkaSource, FETCH_QUEUE_BACKOFF_MS};
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

/// How long a request to the cluster (topic creation, metadata, committed offsets) may
/// take when `socket.timeout.ms` is not set (ms).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

impl KafkaConfig {
    /// How long one request to the cluster may take before it fails (and, when a query
    /// is starting, is retried): librdkafka's own `socket.timeout.ms` when Eddy was
    /// given it (`--kafka-property`), else [`DEFAULT_REQUEST_TIMEOUT_MS`].
    pub fn request_timeout(&self) -> Duration {
        let ms = self.properties.get("socket.timeout.ms").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        Duration::from_millis(ms)
    }

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
