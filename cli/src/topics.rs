//! `eddy topics`: list, create, delete and read topics through the Kafka protocol.

use std::time::Duration;

use anyhow::Context;
use eddy_connectors::kafka::{ensure_topic, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
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
    /// Print records from the beginning of a topic as `key<TAB>value` lines.
    Tail {
        /// Topic name.
        name: String,
        /// Stop after this many records.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Stop when no record arrives for this many seconds.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
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
            let mut topics: Vec<(String, usize)> = metadata.topics().iter().map(|t| (t.name().to_string(), t.partitions().len())).collect();
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
        Action::Tail { name, count, idle_secs } => {
            let consumer: StreamConsumer = config
                .client_config()
                .set("group.id", format!("eddy-tail-{}", std::process::id()))
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false")
                .create()?;
            consumer.subscribe(&[name.as_str()])?;
            let mut seen = 0;
            while seen < count {
                match tokio::time::timeout(Duration::from_secs(idle_secs), consumer.recv()).await {
                    Err(_) => break,
                    Ok(Err(e)) => anyhow::bail!("cannot read {name}: {e}"),
                    Ok(Ok(m)) => {
                        let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                        let value = m.payload().map(String::from_utf8_lossy).unwrap_or_default();
                        println!("{key}\t{value}");
                        seen += 1;
                    }
                }
            }
        }
    }
    Ok(())
}
