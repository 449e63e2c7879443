//! Topic creation through the Kafka admin API (the broker used in tests does not
//! auto-create topics, and ksqlDB creates a stream's topic when it names `PARTITIONS`).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaConfig;
use crate::error::{ConnectorError, Result};

/// Creates `topic` with `partitions` partitions and `replicas` replicas unless it exists.
/// Returns whether it was created.
///
/// Errors: the broker is unreachable, or refuses the topic for another reason than that
/// it already exists.
pub async fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32, replicas: i32) -> Result<bool> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics([&new_topic], &options).await?;
    match results.into_iter().next() {
        Some(Ok(_)) => {
            tracing::info!(topic, partitions, "created topic");
            Ok(true)
        }
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(false),
        Some(Err((name, code))) => Err(ConnectorError::Config(format!("cannot create topic {name}: {code}"))),
    }
}
