//! Topic creation through the Kafka admin API (the broker used in tests does not
//! auto-create topics, and ksqlDB creates a stream's topic when it names `PARTITIONS`).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaConfig;
use crate::error::{ConnectorError, Result};

/// Creates `topic` with `partitions` partitions and `replicas` replicas unless it exists.
/// Returns whether it was created. The cluster's metadata is asked first, so writing to
/// a topic that exists needs no permission to create topics (managed clusters often
/// grant none), and works with brokers that do not take CreateTopics requests.
///
/// Errors: the broker is unreachable, or refuses the topic for another reason than that
/// it already exists.
pub async fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32, replicas: i32) -> Result<bool> {
    if topic_exists(config, topic).await? {
        return Ok(false);
    }
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
    let timeout = config.request_timeout();
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
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

/// Whether the cluster's metadata lists `topic` with partitions (a metadata request never
/// creates it: librdkafka's consumers do not ask for auto-creation).
///
/// Errors: the metadata cannot be read (the broker is unreachable within the request
/// timeout).
async fn topic_exists(config: &KafkaConfig, topic: &str) -> Result<bool> {
    let consumer: rdkafka::consumer::BaseConsumer = config.client_config().create()?;
    let (topic, timeout) = (topic.to_string(), config.request_timeout());
    let metadata = tokio::task::spawn_blocking(move || {
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(&topic), timeout)
            .map(|m| m.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await
    .map_err(|e| ConnectorError::Config(format!("cannot read the topic's metadata: {e}")))?;
    Ok(metadata?)
}

/// The topics of the cluster, sorted by name, with partition and replica counts.
///
/// Errors: the broker is unreachable within the request timeout.
pub async fn list_topics(config: &KafkaConfig) -> Result<Vec<eddy_engine::connector::TopicInfo>> {
    let consumer: rdkafka::consumer::BaseConsumer = config.client_config().create()?;
    let metadata = tokio::task::block_in_place(|| rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, config.request_timeout()))?;
    let mut topics: Vec<eddy_engine::connector::TopicInfo> = metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__"))
        .map(|t| eddy_engine::connector::TopicInfo {
            name: t.name().to_string(),
            partitions: t.partitions().len(),
            replicas: t.partitions().first().map(|p| p.replicas().len()).unwrap_or(0),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

/// Deletes `topic`; a topic that does not exist is not an error.
///
/// Errors: the broker is unreachable or refuses.
pub async fn delete_topic(config: &KafkaConfig, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let options = AdminOptions::new().operation_timeout(Some(config.request_timeout()));
    for result in admin.delete_topics(&[topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => return Err(ConnectorError::Config(format!("cannot delete topic {name}: {code}"))),
        }
    }
    tracing::info!(topic, "deleted topic");
    Ok(())
}

/// The cluster's id (Kafka's `cluster.id`, as ksqlDB's `/info` reports it), asked of
/// the broker with the request timeout.
///
/// Errors: the broker is unreachable, or did not say (a broker without cluster ids).
pub async fn cluster_id(config: &KafkaConfig) -> Result<String> {
    let consumer: rdkafka::consumer::BaseConsumer = config.client_config().create()?;
    let timeout = config.request_timeout();
    let id = tokio::task::spawn_blocking(move || rdkafka::consumer::Consumer::client(&consumer).fetch_cluster_id(timeout))
        .await
        .map_err(|e| ConnectorError::Config(format!("cannot ask the cluster for its id: {e}")))?;
    id.ok_or_else(|| ConnectorError::Config("the Kafka cluster did not say its id".into()))
}
