//! `eddy topics`: list, create and delete topics through the Kafka admin API.

use std::time::Duration;

use anyhow::Context;
use eddy_connectors::kafka::{ensure_topic, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::settings::Settings;

/// Arguments of `eddy topics`.
#[derive(clap::Args, Debug)]
pub struct TopicsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Topics with their partition counts.
    List,
    /// Create topics that do not exist yet.
    Create {
        /// Topic names.
        names: Vec<String>,
        /// Partitions of each new topic.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
    },
    /// Delete topics (missing ones are ignored).
    Delete {
        /// Topic names.
        names: Vec<String>,
    },
}

/// Runs the topic action.
pub async fn topics(settings: &Settings, args: TopicsArgs) -> anyhow::Result<()> {
    let config = KafkaConfig { bootstrap_servers: settings.bootstrap_servers.clone(), properties: Default::default() };
    match args.action {
        Action::List => {
            let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &settings.bootstrap_servers).create()?;
            let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(10)))
                .context("fetching topic metadata")?;
            let mut topics: Vec<(String, usize)> =
                metadata.topics().iter().map(|t| (t.name().to_string(), t.partitions().len())).collect();
            topics.sort();
            for (name, partitions) in topics {
                println!("{name}\t{partitions}");
            }
        }
        Action::Create { names, partitions } => {
            for name in names {
                let created = ensure_topic(&config, &name, partitions, 1).await?;
                eprintln!("{name}: {}", if created { "created" } else { "exists" });
            }
        }
        Action::Delete { names } => {
            let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            for result in admin.delete_topics(&refs, &options).await.context("deleting topics")? {
                match result {
                    Ok(name) => eprintln!("{name}: deleted"),
                    Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => eprintln!("{name}: does not exist"),
                    Err((name, code)) => anyhow::bail!("cannot delete topic {name}: {code}"),
                }
            }
        }
    }
    Ok(())
}
