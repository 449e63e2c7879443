//! The connector factory the `eddy` binary hands to the engine.

use async_trait::async_trait;
use eddy_engine::catalog::Relation;
use eddy_engine::connector::{ConnectorFactory, LookupTable, QueryContext, Sink, Source};
use eddy_engine::options::{ConnectorOptions, DeadLetterTarget, ErrorPolicy, Format, KafkaOptions, StartupMode};

use crate::error::{ConnectorError, Result};
use crate::file::{FileSink, FileSource};
use crate::kafka::{delete_topic, ensure_topic, list_topics, KafkaConfig, KafkaSink, KafkaSource};
use crate::postgres::{PostgresLookup, PostgresSink};
use crate::print::{BlackholeSink, PrintSink};
use crate::sandbox::Sandbox;
use crate::webhook::WebhookSink;

/// Defaults for relations whose WITH options leave them out.
#[derive(Debug, Clone)]
pub struct Connectors {
    /// Kafka `bootstrap.servers` when a stream does not set `properties.bootstrap.servers`
    /// (from `--bootstrap-servers` / `EDDY_BOOTSTRAP_SERVERS`).
    pub bootstrap_servers: String,
    /// PostgreSQL URL when a table does not set `url` (from `--postgres-url` / `EDDY_POSTGRES_URL`).
    pub postgres_url: Option<String>,
    /// librdkafka properties for every Kafka client, set where Eddy runs
    /// (`--kafka-property`); a statement's allowed `properties.*` apply after them.
    pub kafka_properties: std::collections::BTreeMap<String, String>,
    /// What statements may reach, for an engine serving untrusted clients (`eddy
    /// server`); `None`: anything (`eddy run`, the shell).
    pub sandbox: Option<Sandbox>,
    /// How long opening a connection may take (`--connect-timeout`): PostgreSQL's
    /// `connect_timeout` unless a URL sets its own, and librdkafka's
    /// `socket.connection.setup.timeout.ms` unless `--kafka-property` sets it.
    pub connect_timeout: std::time::Duration,
}

/// The largest file a statement may read ([`ConnectorFactory::read_file`]: a model's
/// PMML document): 256 MiB.
pub const MAX_READ_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// How long reading such a file may take: 30 s.
pub const READ_FILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// [`Connectors::connect_timeout`] when Eddy is not told otherwise: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Connectors {
    /// Checks the hosts and files a relation's statement named against the sandbox:
    /// at CREATE (for a clear error) and again whenever a query opens it.
    ///
    /// Errors: a host or a file is not allowed.
    fn check(&self, relation: &Relation) -> Result<()> {
        let Some(sandbox) = &self.sandbox else { return Ok(()) };
        match &relation.connector {
            ConnectorOptions::Kafka(k) => k.bootstrap_servers.as_deref().map_or(Ok(()), |b| sandbox.check_bootstrap(b))?,
            ConnectorOptions::Postgres(p) => p.url.as_deref().map_or(Ok(()), |u| sandbox.check_postgres(u))?,
            ConnectorOptions::Filesystem(f) => sandbox.check_path(&f.path)?,
            ConnectorOptions::Webhook(w) => sandbox.check_url(&w.url, "the webhook receiver")?,
            ConnectorOptions::Print | ConnectorOptions::Blackhole => {}
        }
        if let Some(DeadLetterTarget::Table { url: Some(url), .. }) = relation.connector.dead_letter() {
            sandbox.check_postgres(url)?;
        }
        Ok(())
    }

    fn kafka<'a>(&self, relation: &'a Relation) -> Option<(KafkaConfig, &'a eddy_engine::options::KafkaOptions)> {
        match &relation.connector {
            ConnectorOptions::Kafka(k) => Some((self.kafka_config(k.bootstrap_servers.as_deref()), k)),
            _ => None,
        }
    }

    /// The client settings for `bootstrap` (else the default cluster): Eddy's own Kafka
    /// properties, with the connect timeout unless they set one.
    fn kafka_config(&self, bootstrap: Option<&str>) -> KafkaConfig {
        let mut properties = self.kafka_properties.clone();
        properties.entry("socket.connection.setup.timeout.ms".into()).or_insert_with(|| self.connect_timeout.as_millis().to_string());
        KafkaConfig { bootstrap_servers: bootstrap.unwrap_or(&self.bootstrap_servers).to_string(), properties }
    }
}

#[async_trait]
impl ConnectorFactory for Connectors {
    async fn list_topics(&self) -> eddy_engine::Result<Vec<eddy_engine::connector::TopicInfo>> {
        Ok(list_topics(&self.kafka_config(None)).await?)
    }

    async fn delete_topic(&self, relation: &Relation) -> eddy_engine::Result<()> {
        self.check(relation)?;
        let (config, k) =
            self.kafka(relation).ok_or_else(|| ConnectorError::Config(format!("\"{}\" has no Kafka topic", relation.name)))?;
        Ok(delete_topic(&config, &k.topic).await?)
    }

    async fn prepare(&self, relation: &Relation) -> eddy_engine::Result<()> {
        self.check(relation)?;
        if let Some((config, k)) = self.kafka(relation) {
            if let Some(partitions) = k.partitions {
                ensure_topic(&config, &k.topic, partitions, k.replicas.unwrap_or(1)).await?;
            }
        }
        Ok(())
    }

    async fn source(&self, relation: &Relation, query: &QueryContext) -> eddy_engine::Result<Box<dyn Source>> {
        self.check(relation)?;
        if let ConnectorOptions::Filesystem(f) = &relation.connector {
            return Ok(Box::new(match &self.sandbox {
                Some(sandbox) => FileSource::open_path(&sandbox.source_path(&f.path)?, f, query.parallelism, true).await?,
                None => FileSource::open(f, query.parallelism).await?,
            }));
        }
        match self.kafka(relation) {
            Some((config, k)) => Ok(Box::new(KafkaSource::open(&config, k, query).await?)),
            None => Err(ConnectorError::Config(format!("\"{}\" ({}) cannot be read", relation.name, relation.connector.name())).into()),
        }
    }

    async fn raw_sink(&self, source: &Relation, topic: &str, query: &QueryContext) -> eddy_engine::Result<Box<dyn Sink>> {
        self.check(source)?;
        let (config, k) = match self.kafka(source) {
            Some(found) => found,
            None => {
                return Err(ConnectorError::Config(format!(
                    "'late-rows.topic' needs a Kafka cluster: \"{}\" is a {} source",
                    source.name,
                    source.connector.name()
                ))
                .into())
            }
        };
        ensure_topic(&config, topic, 1, k.replicas.unwrap_or(1)).await?;
        Ok(Box::new(KafkaSink::raw(&config, k, topic, Some(query.metrics.clone()))?))
    }

    /// Reads a file a statement names (a model); under a sandbox only inside
    /// `--allow-path`, resolved as a source's file is.
    async fn read_file(&self, path: &str) -> eddy_engine::Result<Vec<u8>> {
        let resolved = match &self.sandbox {
            Some(sandbox) => sandbox.source_path(path)?,
            None => std::path::PathBuf::from(path),
        };
        // Only a regular file of bounded size, read within a bounded time: a statement
        // naming a FIFO, a device or a huge file must not hold the engine (or its memory).
        let io = |source: std::io::Error| ConnectorError::File { path: path.to_string(), source };
        let meta = tokio::fs::metadata(&resolved).await.map_err(io)?;
        if !meta.is_file() {
            return Err(ConnectorError::Config(format!("{path} is not a regular file")).into());
        }
        if meta.len() > MAX_READ_FILE_BYTES {
            return Err(ConnectorError::Config(format!(
                "{path} has {} bytes, more than the {MAX_READ_FILE_BYTES} a statement may read",
                meta.len()
            ))
            .into());
        }
        let read = async {
            use tokio::io::AsyncReadExt;
            let file = tokio::fs::File::open(&resolved).await.map_err(io)?;
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            file.take(MAX_READ_FILE_BYTES + 1).read_to_end(&mut bytes).await.map_err(io)?;
            if bytes.len() as u64 > MAX_READ_FILE_BYTES {
                return Err(ConnectorError::Config(format!("{path} grew past the {MAX_READ_FILE_BYTES} bytes a statement may read")));
            }
            Ok(bytes)
        };
        match tokio::time::timeout(READ_FILE_TIMEOUT, read).await {
            Ok(bytes) => Ok(bytes?),
            Err(_) => Err(ConnectorError::TimedOut { system: "file", what: format!("reading {path}"), after: READ_FILE_TIMEOUT }.into()),
        }
    }

    async fn dead_letter_sink(
        &self,
        source: &Relation,
        target: &DeadLetterTarget,
        query: &QueryContext,
    ) -> eddy_engine::Result<Box<dyn Sink>> {
        self.check(source)?;
        match target {
            DeadLetterTarget::Topic(topic) => {
                let (config, options) = match self.kafka(source) {
                    Some((config, k)) => (config, k.clone()),
                    // A file source's dead letters go to the default cluster.
                    None => (self.kafka_config(None), dead_letter_kafka_options(topic)),
                };
                ensure_topic(&config, topic, 1, options.replicas.unwrap_or(1)).await?;
                Ok(Box::new(KafkaSink::dead_letters(&config, &options, topic, Some(query.metrics.clone()))?))
            }
            DeadLetterTarget::Table { table, url } => {
                let url = url.clone().or_else(|| self.postgres_url.clone()).ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "no PostgreSQL URL for the dead letters of \"{}\": set 'dead-letter.url', --postgres-url or EDDY_POSTGRES_URL",
                        source.name
                    ))
                })?;
                Ok(Box::new(PostgresSink::dead_letters(&url, table, query, self.connect_timeout).await?))
            }
        }
    }

    async fn lookup_table(&self, relation: &Relation, key: &[String], query: &QueryContext) -> eddy_engine::Result<Box<dyn LookupTable>> {
        self.check(relation)?;
        let ConnectorOptions::Postgres(p) = &relation.connector else {
            return Err(ConnectorError::Config(format!("\"{}\" is not a PostgreSQL table: it cannot be looked up", relation.name)).into());
        };
        let url = p.url.clone().or_else(|| self.postgres_url.clone()).ok_or_else(|| {
            ConnectorError::Config(format!(
                "no PostgreSQL URL for \"{}\": set 'url' in WITH, --postgres-url or EDDY_POSTGRES_URL",
                relation.name
            ))
        })?;
        Ok(Box::new(PostgresLookup::new(&url, p, relation, key, query, self.connect_timeout)?))
    }

    async fn sink(&self, relation: &Relation, query: &QueryContext) -> eddy_engine::Result<Box<dyn Sink>> {
        self.check(relation)?;
        match &relation.connector {
            ConnectorOptions::Kafka(_) => {
                let (config, k) = self.kafka(relation).ok_or_else(|| ConnectorError::Config("not a Kafka relation".into()))?;
                ensure_topic(&config, &k.topic, k.partitions.unwrap_or(1), k.replicas.unwrap_or(1)).await?;
                Ok(Box::new(KafkaSink::new(&config, k, relation, Some(query.group_id.clone()), Some(query.metrics.clone()))?))
            }
            ConnectorOptions::Postgres(p) => {
                let url = p.url.clone().or_else(|| self.postgres_url.clone()).ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "no PostgreSQL URL for \"{}\": set 'url' in WITH, --postgres-url or EDDY_POSTGRES_URL",
                        relation.name
                    ))
                })?;
                Ok(Box::new(PostgresSink::connect(&url, p, relation, query, self.connect_timeout).await?))
            }
            ConnectorOptions::Webhook(w) => {
                let dead_letters = match &w.dead_letter {
                    Some(target) => Some(self.dead_letter_sink(relation, target, query).await?),
                    None => None,
                };
                Ok(Box::new(WebhookSink::new(w, &query.query_id, query.metrics.clone(), dead_letters)?))
            }
            ConnectorOptions::Print => Ok(Box::new(PrintSink)),
            ConnectorOptions::Blackhole => Ok(Box::new(BlackholeSink)),
            // Sandboxed, a sink appends unless its statement asks to truncate.
            ConnectorOptions::Filesystem(f) => Ok(Box::new(
                match &self.sandbox {
                    Some(sandbox) => FileSink::create_path(&sandbox.sink_path(&f.path)?, f, f.truncate.unwrap_or(false)).await?,
                    None => FileSink::create(f).await?,
                }
                .with_ltz_columns(relation.ltz_columns.clone()),
            )),
        }
    }
}

/// Producer options for dead letters of a source that is not Kafka (a file).
fn dead_letter_kafka_options(topic: &str) -> KafkaOptions {
    KafkaOptions {
        topic: topic.to_string(),
        bootstrap_servers: None,
        format: Format::Json,
        partitions: None,
        replicas: None,
        startup: StartupMode::Earliest,
        properties: Default::default(),
        batch_max_rows: 1,
        batch_linger_ms: 0,
        error_policy: ErrorPolicy::Skip,
        dead_letter: None,
        delivery: Default::default(),
        transactional_id_prefix: None,
        key_format: eddy_engine::options::KeyFormat::Kafka,
        record_key: false,
        windowed_key: None,
        session_key: false,
        window_size_ms: None,
        ignore_null_fields: false,
        timestamp_iso: false,
        wrap_single_value: true,
    }
}
