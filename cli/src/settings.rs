//! Connection settings shared by every subcommand: flags, or environment variables, so
//! that `.sql` files never hard-code hosts or passwords.

use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

/// Global connection flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Kafka bootstrap servers for streams that do not set 'properties.bootstrap.servers'.
    #[arg(long, global = true, env = "EDDY_BOOTSTRAP_SERVERS", default_value = "127.0.0.1:9092")]
    pub bootstrap_servers: String,
    /// PostgreSQL URL for tables that do not set 'url'.
    #[arg(long, global = true, env = "EDDY_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// How often persistent queries write a checkpoint (Flink's
    /// 'execution.checkpointing.interval'; a session's SET overrides it per query).
    #[arg(long, global = true, env = "EDDY_CHECKPOINT_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub checkpoint_interval: u64,
    /// How long opening a connection to PostgreSQL or a Kafka broker may take before it
    /// counts as failed (a query that is starting then shows RETRYING and tries again).
    /// A PostgreSQL URL's own `connect_timeout` and a `--kafka-property
    /// socket.connection.setup.timeout.ms=...` take precedence.
    #[arg(long, global = true, env = "EDDY_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_interval)]
    pub connect_timeout: u64,
    /// A librdkafka property for every Kafka client, `KEY=VALUE` (repeatable; the
    /// environment variable takes a comma-separated list). Statements may set only
    /// tuning, timeout and credential properties; anything that loads code, runs a
    /// command or reads a file (TLS files, Kerberos, plugins) is set here.
    #[arg(long = "kafka-property", global = true, env = "EDDY_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

/// `key=value` to a pair.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, found {text:?}")),
    }
}

/// `10s`, `500ms`, `1 min` to milliseconds.
fn parse_interval(text: &str) -> Result<u64, String> {
    eddy_engine::parse_duration_ms(text).map_err(|e| e.to_string())
}

impl Settings {
    /// The value of `${name}` in `.sql` files: the environment, where the two connection
    /// settings default to the flags above.
    pub fn variable(&self, name: &str) -> Option<String> {
        match name {
            "EDDY_BOOTSTRAP_SERVERS" => Some(self.bootstrap_servers.clone()),
            "EDDY_POSTGRES_URL" => Some(self.postgres_url.clone()),
            _ => std::env::var(name).ok(),
        }
    }

    /// Where and how often queries checkpoint: `<state dir>/checkpoints`, or
    /// `.eddy/checkpoints` without a state directory.
    pub fn checkpointing(&self, state_dir: Option<&std::path::Path>) -> eddy_engine::Checkpointing {
        let dir = state_dir.map_or_else(|| std::path::PathBuf::from(".eddy"), std::path::Path::to_path_buf).join("checkpoints");
        eddy_engine::Checkpointing { dir, interval_ms: self.checkpoint_interval }
    }

    /// The connector factory for these settings, within `sandbox` (`eddy server`) or
    /// without one.
    pub fn connectors(&self, sandbox: Option<eddy_connectors::sandbox::Sandbox>) -> eddy_connectors::Connectors {
        eddy_connectors::Connectors {
            bootstrap_servers: self.bootstrap_servers.clone(),
            postgres_url: Some(self.postgres_url.clone()),
            kafka_properties: self.kafka_properties.iter().cloned().collect(),
            sandbox,
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout),
        }
    }

    /// What `SHOW PROPERTIES` lists as the server's properties, under ksqlDB's and
    /// Flink's names: the service id, the Kafka cluster, the checkpoint interval and
    /// the connect timeout. The PostgreSQL URL is left out (it
    /// may hold a password).
    pub fn server_properties(&self, application_id: &str) -> std::collections::BTreeMap<String, String> {
        [
            ("ksql.service.id", application_id.to_string()),
            ("ksql.streams.bootstrap.servers", self.bootstrap_servers.clone()),
            ("execution.checkpointing.interval", format!("{} ms", self.checkpoint_interval)),
            ("eddy.connect.timeout", format!("{} ms", self.connect_timeout)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The hosts Eddy was started with: every bootstrap server and the PostgreSQL
    /// server, which statements may always name.
    pub fn own_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.bootstrap_servers.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if let Ok(config) = self.postgres_url.parse::<tokio_postgres::Config>() {
            let port = config.get_ports().first().copied().unwrap_or(5432);
            for h in config.get_hosts() {
                if let tokio_postgres::config::Host::Tcp(name) = h {
                    hosts.push(format!("{name}:{port}"));
                }
            }
        }
        hosts
    }

    /// A producer for generated or literal records.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "200000")
            .set("message.timeout.ms", "60000")
            .create()
            .with_context(|| format!("cannot create a Kafka producer for {}", self.bootstrap_servers))
    }
}

/// How long producers wait for the broker at the end.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
