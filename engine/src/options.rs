//! `WITH (...)` options: which connector and format a stream or table uses, validated.
//!
//! Both dialects are accepted. ksqlDB: `kafka_topic`, `value_format`, `partitions`,
//! `replicas`, `value_delimiter`, `auto.offset.reset`. Flink: `'connector'='kafka'|'postgres'|'jdbc'|'print'|'blackhole'`,
//! `'topic'`, `'format'`, `'properties.bootstrap.servers'` (and any other `properties.*`,
//! passed to the Kafka client), `'scan.startup.mode'`, `'url'`, `'table-name'`,
//! `'username'`, `'password'`; `'connector'='filesystem'` with `'path'` and `'format'`.
//! Event time (read by the planner, [`crate::sql::event_time`]): ksqlDB `timestamp`,
//! `timestamp_format`; Flink `'scan.watermark.idle-timeout'`. Eddy's own:
//! `'scan.batch.max-rows'` (default 8192), `'scan.batch.linger-ms'` (default 100),
//! `'late-rows.topic'`, `'allowed-lateness'`, `'parallelism'`. An unknown option is an
//! error that names the closest known one.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{closest, SqlError};
use crate::sql::ast::WithOption;

/// How record values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// DELIMITED / CSV: one record per value, fields in column order, no header.
    Delimited {
        /// Field delimiter byte, `,` by default.
        delimiter: u8,
        /// Quote byte (`'csv.quote-character'`), `"` by default.
        quote: u8,
        /// Escape byte inside quotes (`'csv.escape-character'`); none by default.
        escape: Option<u8>,
        /// Lines starting with this byte are skipped (`'csv.allow-comments'` = `#`).
        comment: Option<u8>,
    },
    /// JSON: one object per value, fields by column name.
    Json,
}

/// How the key columns of a ksqlDB stream or table are encoded in the Kafka record key
/// (ksqlDB's `KEY_FORMAT`, default `KAFKA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// Kafka's own serializers, as ksqlDB and Kafka Streams use them: one column; a
    /// STRING is its UTF-8 bytes, an INT 4 bytes and a BIGINT or DOUBLE 8 bytes, big-endian.
    Kafka,
    /// JSON: one column as a bare JSON value (ksqlDB does not wrap a single key), several
    /// as an object.
    Json,
    /// DELIMITED: the columns in order, separated by the delimiter.
    Delimited {
        /// Field delimiter byte.
        delimiter: u8,
    },
    /// `NONE`: no key columns; the record key is not read.
    None,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFormat::Kafka => "KAFKA",
            KeyFormat::Json => "JSON",
            KeyFormat::Delimited { .. } => "DELIMITED",
            KeyFormat::None => "NONE",
        })
    }
}

impl Format {
    /// DELIMITED with `delimiter` and the defaults: `"` quotes, no escape, no comments.
    pub fn delimited(delimiter: u8) -> Format {
        Format::Delimited { delimiter, quote: b'"', escape: None, comment: None }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Delimited { delimiter, quote, escape, comment } => {
                let mut settings = Vec::new();
                if *delimiter != b',' {
                    settings.push(format!("delimiter='{}'", *delimiter as char));
                }
                if *quote != b'"' {
                    settings.push(format!("quote='{}'", *quote as char));
                }
                if let Some(e) = escape {
                    settings.push(format!("escape='{}'", *e as char));
                }
                if let Some(c) = comment {
                    settings.push(format!("comment='{}'", *c as char));
                }
                if settings.is_empty() {
                    f.write_str("delimited")
                } else {
                    write!(f, "delimited({})", settings.join(", "))
                }
            }
            Format::Json => f.write_str("json"),
        }
    }
}

/// What a source does with a record that does not decode (`'value.error.policy'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Count it, log it once with topic/partition/offset, and go on (the default).
    Skip,
    /// Stop the query with an error naming the record's topic, partition and offset.
    Fail,
    /// Count it and write it, with the error, to the source's [`DeadLetterTarget`]
    /// (`'dead-letter.topic'` or `'dead-letter.table'`), then go on.
    DeadLetter,
}

/// Where `'value.error.policy'='dead_letter'` writes the records that do not decode:
/// their raw key and value bytes, topic, partition, offset and timestamp, the error
/// text and the time it failed (see `eddy_engine::record::dead_letter_schema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterTarget {
    /// `'dead-letter.topic'`: a Kafka topic on the source's cluster (the default
    /// cluster for a file source); the record's key and value as read, the rest in
    /// headers (`eddy.error`, `eddy.topic`, `eddy.partition`, `eddy.offset`,
    /// `eddy.timestamp`, `eddy.failed_at`), as Kafka Connect's dead letter queue does.
    Topic(String),
    /// `'dead-letter.table'`: a PostgreSQL table (created if missing) at
    /// `'dead-letter.url'`, else the engine's default URL.
    Table {
        /// The table.
        table: String,
        /// Its database URL; `None` means the engine's default.
        url: Option<String>,
    },
}

/// Where a Kafka source starts when its consumer group has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// The earliest offset of each partition (ksqlDB `auto.offset.reset=earliest`, Flink `earliest-offset`); the default.
    Earliest,
    /// The end of each partition (`latest`, `latest-offset`).
    Latest,
}

/// How a Kafka sink delivers (Flink's `'sink.delivery-guarantee'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryGuarantee {
    /// Every record at least once; Eddy's sink also suppresses the records a restarted
    /// query produces again (`at-least-once`, the default; `none` is read as this).
    #[default]
    AtLeastOnce,
    /// Kafka transactions: the records of a checkpoint become visible to
    /// `read_committed` consumers together when the checkpoint commits, and a crashed
    /// run's open transaction is aborted (`exactly-once`).
    ExactlyOnce,
}

/// Options of the `kafka` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOptions {
    /// The topic.
    pub topic: String,
    /// `properties.bootstrap.servers`; `None` means the engine's default.
    pub bootstrap_servers: Option<String>,
    /// Value format.
    pub format: Format,
    /// Partitions for a topic Eddy creates; `None` means the topic must exist (or 1 for a sink).
    pub partitions: Option<i32>,
    /// Replication factor for a topic Eddy creates.
    pub replicas: Option<i32>,
    /// Where to start without committed offsets.
    pub startup: StartupMode,
    /// Other `properties.*` options, passed to librdkafka without the prefix.
    pub properties: BTreeMap<String, String>,
    /// Most rows in one micro-batch (rows).
    pub batch_max_rows: usize,
    /// Longest wait to fill a micro-batch (ms).
    pub batch_linger_ms: u64,
    /// What to do with records that do not decode.
    pub error_policy: ErrorPolicy,
    /// Where they go under [`ErrorPolicy::DeadLetter`].
    pub dead_letter: Option<DeadLetterTarget>,
    /// `'sink.delivery-guarantee'` when the relation is written to.
    pub delivery: DeliveryGuarantee,
    /// `'sink.transactional-id-prefix'`: the prefix of the transactional ids of an
    /// exactly-once sink (default: the writing query's consumer group).
    pub transactional_id_prefix: Option<String>,
    /// `key_format` (ksqlDB's `KEY_FORMAT`; default `KAFKA`).
    pub key_format: KeyFormat,
    /// The relation's key columns are the Kafka record key, read from it and written to it
    /// in `key_format`, and not in the value: ksqlDB's `KEY` and `PRIMARY KEY` columns.
    /// `false` for Flink's `'key.fields'`, whose columns are in the value (Flink's default
    /// `'value.fields-include' = 'ALL'`) and whose key is written as text.
    pub record_key: bool,
    /// The column holding the window start, for ksqlDB's windowed tables: the record key
    /// is the other key columns then 8 bytes of window start in ms, big-endian (Kafka
    /// Streams' windowed key), and neither window bound is in the value.
    pub windowed_key: Option<String>,
    /// With `windowed_key`: the windows are sessions, whose key is Kafka Streams'
    /// session-windowed key: the key bytes, then the window end and the window start,
    /// 8 bytes of ms each, big-endian.
    pub session_key: bool,
    /// With `windowed_key` of a tumbling or hopping window: the window length (ms), so
    /// that a reader of the table computes the window end the key leaves out.
    pub window_size_ms: Option<i64>,
    /// Flink's `'json.encode.ignore-null-fields'`: a JSON value leaves NULL fields out
    /// (default `false`: they are written as `null`, as Flink and ksqlDB write them).
    pub ignore_null_fields: bool,
    /// Flink's `'json.timestamp-format.standard' = 'ISO-8601'`: a sink writes timestamps
    /// with a `T` (`2020-12-30T12:13:14.123`); default `SQL`, with a space. ksqlDB's
    /// relations write numbers either way ([`crate::format::TimestampStyle`]).
    pub timestamp_iso: bool,
    /// ksqlDB's `WRAP_SINGLE_VALUE`: `false` means the one value column is the whole
    /// JSON value (`5`, not `{"N": 5}`), read and written so. Default (`true`): wrapped.
    pub wrap_single_value: bool,
}

/// Options of the `postgres` connector (`jdbc` is an alias).
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresOptions {
    /// Connection URL, `postgres://...` (a `jdbc:postgresql://` URL is converted); `None`
    /// means the engine's default.
    pub url: Option<String>,
    /// The table in PostgreSQL; defaults to the Eddy table's name.
    pub table: String,
    /// `username`, overriding the URL's.
    pub username: Option<String>,
    /// `password`, overriding the URL's.
    pub password: Option<String>,
    /// How a lookup join caches the rows it read (Flink's `'lookup.cache'` options).
    pub lookup_cache: LookupCache,
}

/// The cache of a lookup join (Flink's JDBC `'lookup.cache'='PARTIAL'` with
/// `'lookup.partial-cache.*'`, or the older `'lookup.cache.max-rows'` and
/// `'lookup.cache.ttl'`). Rows found and keys not found are both cached (Flink's
/// `'lookup.partial-cache.cache-missing-key'`, default true).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LookupCache {
    /// Every micro-batch asks the database for its keys (`'lookup.cache'='NONE'`, the default).
    #[default]
    None,
    /// Keys and their rows are kept in memory.
    Partial {
        /// Keys kept at most; the oldest-written is evicted first.
        max_rows: usize,
        /// A key is read again this long (ms) after it was written to the cache.
        expire_after_write_ms: Option<u64>,
        /// A key is read again when it was not used for this long (ms).
        expire_after_access_ms: Option<u64>,
        /// Whether keys the table does not have are cached too.
        cache_missing_key: bool,
    },
}

/// The connector of a stream or table, with its validated options.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorOptions {
    /// Kafka topic (source or sink).
    Kafka(KafkaOptions),
    /// PostgreSQL table (sink).
    Postgres(PostgresOptions),
    /// Rows printed to standard output (sink).
    Print,
    /// Rows discarded (sink; for benchmarks).
    Blackhole,
    /// A local file of CSV or JSON lines (Flink's `filesystem` connector): a bounded
    /// source, or a sink.
    Filesystem(FileOptions),
    /// An HTTP endpoint that receives rows as JSON (sink).
    Webhook(WebhookOptions),
}

/// Options of the `webhook` connector, a sink that sends rows as JSON to an HTTP
/// endpoint, at least once (see `eddy_connectors::webhook`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookOptions {
    /// `'url'`: an `http://` URL (host checked against the server's `--allow-host`).
    pub url: String,
    /// `'method'`: POST (default), PUT or PATCH.
    pub method: String,
    /// `'headers'` (a JSON object of names to values) and `'headers.<Name>'` options:
    /// sent with every request, in this order.
    pub headers: Vec<(String, String)>,
    /// `'sink.batch.max-rows'`: rows per request, at least 1 (default 1: one request
    /// per row, its body a JSON object; more: a JSON array of objects).
    pub batch_max_rows: usize,
    /// `'sink.request-timeout'`: how long one request may take before it is retried
    /// (ms; default 10 s).
    pub request_timeout_ms: u64,
    /// `'sink.requests.max-inflight'` (Flink's async sinks): requests sent at once, at
    /// least 1 (default 1: one after the other, so rows arrive in order).
    pub max_inflight: usize,
    /// `'dead-letter.topic'` / `'dead-letter.table'`: where the rows of a request the
    /// receiver refuses (4xx other than 408 and 429) go; without one, such a refusal
    /// fails the query.
    pub dead_letter: Option<DeadLetterTarget>,
}

/// Options of the `filesystem` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOptions {
    /// `'path'`: the file read or written.
    pub path: String,
    /// Record format, one record per line.
    pub format: Format,
    /// What to do with lines that do not decode (source).
    pub error_policy: ErrorPolicy,
    /// Where they go under [`ErrorPolicy::DeadLetter`].
    pub dead_letter: Option<DeadLetterTarget>,
    /// Most rows in one micro-batch (rows).
    pub batch_max_rows: usize,
    /// `'sink.truncate'`: whether a sink empties an existing file when its query starts.
    /// `None`: the front decides (`eddy run` and the shell truncate, as they always did;
    /// `eddy server` appends and never truncates a file it was not told to).
    pub truncate: Option<bool>,
    /// Flink's `'json.encode.ignore-null-fields'` (see [`KafkaOptions::ignore_null_fields`]).
    pub ignore_null_fields: bool,
    /// Flink's `'json.timestamp-format.standard'` (see [`KafkaOptions::timestamp_iso`]).
    pub timestamp_iso: bool,
}

impl ConnectorOptions {
    /// The connector's name as users write it.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectorOptions::Kafka(_) => "kafka",
            ConnectorOptions::Postgres(_) => "postgres",
            ConnectorOptions::Print => "print",
            ConnectorOptions::Blackhole => "blackhole",
            ConnectorOptions::Filesystem(_) => "filesystem",
            ConnectorOptions::Webhook(_) => "webhook",
        }
    }

    /// Whether this connector can be read from.
    pub fn is_source(&self) -> bool {
        matches!(self, ConnectorOptions::Kafka(_) | ConnectorOptions::Filesystem(_))
    }

    /// The value format of a Kafka topic or a file.
    pub fn format(&self) -> Option<Format> {
        match self {
            ConnectorOptions::Kafka(k) => Some(k.format),
            ConnectorOptions::Filesystem(f) => Some(f.format),
            _ => None,
        }
    }

    /// What a source does with records that do not decode.
    pub fn error_policy(&self) -> ErrorPolicy {
        match self {
            ConnectorOptions::Kafka(k) => k.error_policy,
            ConnectorOptions::Filesystem(f) => f.error_policy,
            _ => ErrorPolicy::Skip,
        }
    }

    /// Where a source writes records that do not decode, under [`ErrorPolicy::DeadLetter`].
    pub fn dead_letter(&self) -> Option<&DeadLetterTarget> {
        match self {
            ConnectorOptions::Kafka(k) => k.dead_letter.as_ref(),
            ConnectorOptions::Filesystem(f) => f.dead_letter.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorOptions::Kafka(k) => {
                write!(f, "kafka topic={} format={}", k.topic, k.format)?;
                if let Some(p) = k.partitions {
                    write!(f, " partitions={p}")?;
                }
                match &k.dead_letter {
                    _ if k.error_policy == ErrorPolicy::Fail => write!(f, " value.error.policy=fail")?,
                    Some(DeadLetterTarget::Topic(t)) => write!(f, " dead-letter.topic={t}")?,
                    Some(DeadLetterTarget::Table { table, .. }) => write!(f, " dead-letter.table={table}")?,
                    None => {}
                }
                Ok(())
            }
            ConnectorOptions::Postgres(p) => write!(f, "postgres table={}", p.table),
            ConnectorOptions::Print => f.write_str("print"),
            ConnectorOptions::Blackhole => f.write_str("blackhole"),
            ConnectorOptions::Filesystem(o) => write!(f, "filesystem path={} format={}", o.path, o.format),
            ConnectorOptions::Webhook(w) => write!(f, "webhook {} {}", w.method, w.url),
        }
    }
}

const CONNECTORS: [&str; 7] = ["kafka", "postgres", "jdbc", "print", "blackhole", "filesystem", "webhook"];

/// The options of the `webhook` connector; `'headers.<Name>'` options are also taken.
const WEBHOOK_KEYS: &[&str] = &[
    "connector",
    "url",
    "method",
    "headers",
    "format",
    "sink.batch.max-rows",
    "sink.request-timeout",
    "sink.requests.max-inflight",
    "dead-letter.topic",
    "dead-letter.table",
    "dead-letter.url",
];

/// Options every source takes: error policy, micro-batch size, event time and
/// watermarks, late rows, parallelism (the last five are read by the planner,
/// [`crate::sql::event_time`]).
const SOURCE_KEYS: &[&str] = &[
    "value.error.policy",
    "format.ignore-parse-errors",
    "csv.ignore-parse-errors",
    "json.ignore-parse-errors",
    "json.timestamp-format.standard",
    "csv.quote-character",
    "csv.escape-character",
    "csv.allow-comments",
    "csv.null-literal",
    "csv.disable-quote-character",
    "csv.array-element-delimiter",
    "json.fail-on-missing-field",
    "json.map-null-key.mode",
    "json.map-null-key.literal",
    "json.encode.decimal-as-plain-number",
    "json.encode.ignore-null-fields",
    "dead-letter.topic",
    "dead-letter.table",
    "dead-letter.url",
    "scan.batch.max-rows",
    "timestamp",
    "timestamp_format",
    "scan.watermark.idle-timeout",
    "late-rows.topic",
    "allowed-lateness",
    "parallelism",
];

const FILE_ONLY_KEYS: &[&str] = &["connector", "path", "format", "value_format", "csv.field-delimiter", "value_delimiter", "sink.truncate"];

const KAFKA_ONLY_KEYS: &[&str] = &[
    "connector",
    "topic",
    "kafka_topic",
    "format",
    "value_format",
    "key_format",
    "value_delimiter",
    "csv.field-delimiter",
    "partitions",
    "replicas",
    "scan.startup.mode",
    "auto.offset.reset",
    "scan.batch.linger-ms",
    "key.fields",
    "wrap_single_value",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
];

/// Every option of the `kafka` connector.
fn kafka_keys() -> Vec<&'static str> {
    KAFKA_ONLY_KEYS.iter().chain(SOURCE_KEYS).copied().collect()
}

/// Every option of the `filesystem` connector.
fn file_keys() -> Vec<&'static str> {
    FILE_ONLY_KEYS.iter().chain(SOURCE_KEYS).copied().collect()
}

const POSTGRES_KEYS: &[&str] = &[
    "connector",
    "url",
    "table-name",
    "username",
    "password",
    "driver",
    "lookup.cache",
    "lookup.partial-cache.max-rows",
    "lookup.partial-cache.expire-after-write",
    "lookup.partial-cache.expire-after-access",
    "lookup.partial-cache.cache-missing-key",
    "lookup.cache.max-rows",
    "lookup.cache.ttl",
    "lookup.cache.caching-missing-key",
    "lookup.max-retries",
];

fn unknown_option(o: &WithOption, connector: &str, known: &[&str]) -> SqlError {
    let hint = match closest(&o.key, known.iter().copied()) {
        Some(c) => format!("did you mean '{c}'?"),
        None => format!("the {connector} connector takes: {}", known.join(", ")),
    };
    SqlError::new(format!("unknown WITH option '{}' for the {connector} connector", o.key)).at(o.key_position).hint(hint)
}

fn find<'a>(options: &'a [WithOption], keys: &[&str]) -> Option<&'a WithOption> {
    options.iter().find(|o| keys.contains(&o.key.as_str()))
}

fn parse_int<T: std::str::FromStr>(o: &WithOption, what: &str) -> Result<T, SqlError> {
    o.value.parse::<T>().map_err(|_| SqlError::new(format!("option '{}' must be {what}, found '{}'", o.key, o.value)).at(o.value_position))
}

/// Parses a format name (`delimited`, `csv`, `json`; any case).
fn parse_format(o: &WithOption, options: &[WithOption], delimiter: u8) -> Result<Format, SqlError> {
    match o.value.to_lowercase().as_str() {
        "delimited" | "csv" => {
            let one_char = |key: &str| -> Result<Option<u8>, SqlError> {
                match find(options, &[key]) {
                    None => Ok(None),
                    Some(o) if o.value.len() == 1 => Ok(Some(o.value.as_bytes()[0])),
                    Some(o) => Err(SqlError::new(format!("'{key}' must be one character, found '{}'", o.value)).at(o.value_position)),
                }
            };
            let comment = match find(options, &["csv.allow-comments"]) {
                None => None,
                Some(o) => match o.value.to_lowercase().as_str() {
                    "true" => Some(b'#'),
                    "false" => None,
                    _ => {
                        return Err(SqlError::new(format!("'csv.allow-comments' must be 'true' or 'false', not '{}'", o.value))
                            .at(o.value_position))
                    }
                },
            };
            if let Some(o) = find(options, &["csv.null-literal"]).filter(|o| !o.value.is_empty()) {
                return Err(SqlError::new(format!("'csv.null-literal' = '{}' is not supported", o.value))
                    .at(o.value_position)
                    .hint("an empty field is NULL; remove the option"));
            }
            if let Some(o) = find(options, &["csv.disable-quote-character"]).filter(|o| o.value.eq_ignore_ascii_case("true")) {
                return Err(SqlError::new("'csv.disable-quote-character' is not supported")
                    .at(o.value_position)
                    .hint("fields are quoted with '\"' or 'csv.quote-character'"));
            }
            Ok(Format::Delimited {
                delimiter,
                quote: one_char("csv.quote-character")?.unwrap_or(b'"'),
                escape: one_char("csv.escape-character")?,
                comment,
            })
        }
        "json" => Ok(Format::Json),
        other => Err(SqlError::new(format!("unknown format '{other}'")).at(o.value_position).hint("use 'DELIMITED' (or 'csv') or 'JSON'")),
    }
}

/// Validates the WITH options of `name` and picks its connector.
///
/// Errors: a missing or unknown connector, an unknown option (with the closest known
/// one), a missing topic, a bad number or format, each with the option's position.
pub fn parse_connector(name: &str, options: &[WithOption]) -> Result<ConnectorOptions, SqlError> {
    let connector = match find(options, &["connector"]) {
        Some(o) => {
            let value = o.value.to_lowercase();
            if !CONNECTORS.contains(&value.as_str()) {
                let hint = match closest(&value, CONNECTORS) {
                    Some(c) => format!("did you mean '{c}'?"),
                    None => format!("connectors: {}", CONNECTORS.join(", ")),
                };
                return Err(SqlError::new(format!("unknown connector '{}'", o.value)).at(o.value_position).hint(hint));
            }
            value
        }
        // Without 'connector', any Kafka option (or a near-miss such as kafka_topik)
        // means Kafka, so a typo is reported as an unknown option with a suggestion.
        None if options.iter().any(|o| kafka_keys().contains(&o.key.as_str()) || closest(&o.key, kafka_keys()).is_some()) => {
            "kafka".to_string()
        }
        None => {
            return Err(SqlError::new(format!("\"{name}\" has no connector"))
                .hint("add WITH (kafka_topic='...', value_format='DELIMITED') or WITH ('connector'='kafka'|'postgres', ...)"))
        }
    };
    match connector.as_str() {
        "kafka" => kafka_options(name, options).map(ConnectorOptions::Kafka),
        "postgres" | "jdbc" => postgres_options(name, options).map(ConnectorOptions::Postgres),
        "filesystem" => file_options(name, options).map(ConnectorOptions::Filesystem),
        "webhook" => webhook_options(name, options).map(ConnectorOptions::Webhook),
        other => {
            if let Some(o) = options.iter().find(|o| o.key != "connector") {
                return Err(unknown_option(o, other, &["connector"]));
            }
            Ok(if other == "print" { ConnectorOptions::Print } else { ConnectorOptions::Blackhole })
        }
    }
}

/// The librdkafka properties a statement may set through `'properties.<name>'`: tuning,
/// timeouts and credentials, none of which can load code, run a command or read a local
/// file. Everything else (`plugin.library.paths`, `sasl.kerberos.kinit.cmd`,
/// `ssl.*.location`, `ssl.engine.location`, OAUTHBEARER token commands, ...) is the
/// operator's, set with `--kafka-property` where Eddy runs (as Kafka Connect's
/// client-override policy and CVE-2023-25194's fix restrict connector overrides).
pub const STATEMENT_KAFKA_PROPERTIES: &[&str] = &[
    "acks",
    "allow.auto.create.topics",
    "api.version.request",
    "auto.commit.interval.ms",
    "batch.num.messages",
    "batch.size",
    "check.crcs",
    "client.id",
    "client.rack",
    "compression.codec",
    "compression.level",
    "compression.type",
    "connections.max.idle.ms",
    "delivery.timeout.ms",
    "enable.idempotence",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "heartbeat.interval.ms",
    "isolation.level",
    "linger.ms",
    "max.in.flight",
    "max.in.flight.requests.per.connection",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "message.max.bytes",
    "message.timeout.ms",
    "metadata.max.age.ms",
    "partition.assignment.strategy",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "receive.message.max.bytes",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.password",
    "sasl.username",
    "security.protocol",
    "session.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "socket.timeout.ms",
    "ssl.endpoint.identification.algorithm",
    "sticky.partitioning.linger.ms",
    "topic.metadata.refresh.interval.ms",
    "transaction.timeout.ms",
];

fn kafka_options(name: &str, options: &[WithOption]) -> Result<KafkaOptions, SqlError> {
    let mut properties = BTreeMap::new();
    let mut bootstrap_servers = None;
    for o in options {
        if let Some(prop) = o.key.strip_prefix("properties.") {
            if prop == "bootstrap.servers" {
                bootstrap_servers = Some(o.value.clone());
            } else if STATEMENT_KAFKA_PROPERTIES.contains(&prop) {
                properties.insert(prop.to_string(), o.value.clone());
            } else {
                return Err(SqlError::new(format!(
                    "the Kafka client property '{prop}' cannot be set by a statement: only tuning, timeout and credential properties can, none that could load code, run a command or read a file where Eddy runs"
                ))
                .at(o.key_position)
                .hint(format!("set it where Eddy runs instead: --kafka-property {prop}=<value> (or EDDY_KAFKA_PROPERTIES)")));
            }
        } else if !kafka_keys().contains(&o.key.as_str()) {
            return Err(unknown_option(o, "kafka", &kafka_keys()));
        }
    }
    let topic = find(options, &["kafka_topic", "topic"])
        .map(|o| o.value.clone())
        .ok_or_else(|| SqlError::new(format!("\"{name}\" needs a topic")).hint("add kafka_topic='...' (or 'topic'='...')"))?;
    if topic.is_empty() {
        return Err(SqlError::new("the topic name is empty").at(find(options, &["kafka_topic", "topic"]).and_then(|o| o.value_position)));
    }
    check_timestamp_standard(options)?;
    check_json_options(options)?;
    let delimiter = parse_delimiter(options)?;
    let format = match find(options, &["value_format", "format"]) {
        Some(o) => parse_format(o, options, delimiter)?,
        None => {
            return Err(SqlError::new(format!("\"{name}\" needs a value format"))
                .hint("add value_format='DELIMITED' or value_format='JSON' (Flink: 'format'='csv'|'json')"))
        }
    };
    let startup = match find(options, &["scan.startup.mode", "auto.offset.reset"]) {
        None => StartupMode::Earliest,
        Some(o) => match o.value.to_lowercase().as_str() {
            "earliest" | "earliest-offset" | "group-offsets" => StartupMode::Earliest,
            "latest" | "latest-offset" => StartupMode::Latest,
            other => {
                return Err(SqlError::new(format!("unknown startup mode '{other}'"))
                    .at(o.value_position)
                    .hint("use 'earliest-offset' or 'latest-offset' (ksqlDB: 'earliest' or 'latest')"))
            }
        },
    };
    let partitions = find(options, &["partitions"]).map(|o| parse_int::<i32>(o, "a positive number")).transpose()?;
    if let (Some(p), Some(o)) = (partitions, find(options, &["partitions"])) {
        if p < 1 {
            return Err(SqlError::new(format!("partitions must be at least 1, found {p}")).at(o.value_position));
        }
    }
    let replicas = find(options, &["replicas"]).map(|o| parse_int::<i32>(o, "a positive number")).transpose()?;
    let batch_max_rows = parse_max_rows(options)?;
    let batch_linger_ms = match find(options, &["scan.batch.linger-ms"]) {
        Some(o) => parse_int::<u64>(o, "a number of milliseconds")?,
        None => 100,
    };
    let (error_policy, dead_letter) = parse_error_policy(options)?;
    let delivery = match find(options, &["sink.delivery-guarantee"]) {
        None => DeliveryGuarantee::AtLeastOnce,
        Some(o) => match o.value.to_lowercase().as_str() {
            "none" | "at-least-once" | "at_least_once" => DeliveryGuarantee::AtLeastOnce,
            "exactly-once" | "exactly_once" => DeliveryGuarantee::ExactlyOnce,
            other => {
                return Err(SqlError::new(format!("unknown delivery guarantee '{other}'"))
                    .at(o.value_position)
                    .hint("use 'at-least-once' (the default) or 'exactly-once' (Kafka transactions)"))
            }
        },
    };
    let transactional_id_prefix = find(options, &["sink.transactional-id-prefix"]).map(|o| o.value.clone());
    let key_format = match find(options, &["key_format"]) {
        None => KeyFormat::Kafka,
        Some(o) => match o.value.to_uppercase().as_str() {
            "KAFKA" => KeyFormat::Kafka,
            "JSON" => KeyFormat::Json,
            "DELIMITED" => KeyFormat::Delimited { delimiter },
            "NONE" => KeyFormat::None,
            other => {
                return Err(SqlError::new(format!("Unknown format: {other}"))
                    .at(o.value_position)
                    .hint("key_format is one of KAFKA (the default), JSON, DELIMITED or NONE"))
            }
        },
    };
    Ok(KafkaOptions {
        topic,
        bootstrap_servers,
        format,
        partitions,
        replicas,
        startup,
        properties,
        batch_max_rows,
        batch_linger_ms,
        error_policy,
        dead_letter,
        delivery,
        transactional_id_prefix,
        key_format,
        record_key: false,
        windowed_key: None,
        session_key: false,
        window_size_ms: None,
        ignore_null_fields: parse_ignore_null_fields(options)?,
        timestamp_iso: timestamp_iso(options),
        wrap_single_value: match find(options, &["wrap_single_value"]) {
            None => true,
            Some(o) => match o.value.to_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(SqlError::new(format!("WRAP_SINGLE_VALUE must be true or false, not '{}'", o.value)).at(o.value_position)),
            },
        },
    })
}

/// `'json.encode.ignore-null-fields'` (Flink): `true` or `false` (the default).
fn parse_ignore_null_fields(options: &[WithOption]) -> Result<bool, SqlError> {
    match find(options, &["json.encode.ignore-null-fields"]) {
        None => Ok(false),
        Some(o) => match o.value.to_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(SqlError::new(format!("'json.encode.ignore-null-fields' must be 'true' or 'false', not '{}'", o.value))
                .at(o.value_position)),
        },
    }
}

/// `'scan.batch.max-rows'`: rows per micro-batch, at least 1 (default 8192).
fn parse_max_rows(options: &[WithOption]) -> Result<usize, SqlError> {
    match find(options, &["scan.batch.max-rows"]) {
        Some(o) => Ok(parse_int::<usize>(o, "a number of rows")?.max(1)),
        None => Ok(8192),
    }
}

fn parse_delimiter(options: &[WithOption]) -> Result<u8, SqlError> {
    Ok(match find(options, &["value_delimiter", "csv.field-delimiter"]) {
        None => b',',
        Some(o) => match o.value.as_str() {
            "TAB" | "\\t" => b'\t',
            "SPACE" => b' ',
            v if v.len() == 1 => v.as_bytes()[0],
            _ => {
                return Err(SqlError::new(format!("delimiter must be one character, found '{}'", o.value))
                    .at(o.value_position)
                    .hint("write ',' or '|', or TAB or SPACE"))
            }
        },
    })
}

/// Flink's per-format spellings of `'format.ignore-parse-errors'` (its csv and json
/// formats' options), which mean the same.
const IGNORE_PARSE_ERRORS: &[&str] = &["format.ignore-parse-errors", "csv.ignore-parse-errors", "json.ignore-parse-errors"];

/// `'value.error.policy'` (skip | fail | dead_letter), or Flink's
/// `'format.ignore-parse-errors'` / `'csv.ignore-parse-errors'` /
/// `'json.ignore-parse-errors'` (true = skip, false = fail); with dead_letter, the
/// target: `'dead-letter.topic'` or `'dead-letter.table'` (+ `'dead-letter.url'`).
fn parse_error_policy(options: &[WithOption]) -> Result<(ErrorPolicy, Option<DeadLetterTarget>), SqlError> {
    let keys: Vec<&str> = std::iter::once("value.error.policy").chain(IGNORE_PARSE_ERRORS.iter().copied()).collect();
    let policy_option = find(options, &keys);
    let policy = if let Some(o) = find(options, IGNORE_PARSE_ERRORS) {
        match o.value.to_lowercase().as_str() {
            "true" => ErrorPolicy::Skip,
            "false" => ErrorPolicy::Fail,
            other => return Err(SqlError::new(format!("option '{}' must be true or false, found '{other}'", o.key)).at(o.value_position)),
        }
    } else {
        match find(options, &["value.error.policy"]) {
            None => ErrorPolicy::Skip,
            Some(o) => match o.value.to_lowercase().as_str() {
                "skip" => ErrorPolicy::Skip,
                "fail" => ErrorPolicy::Fail,
                "dead_letter" | "dead-letter" => ErrorPolicy::DeadLetter,
                other => {
                    return Err(SqlError::new(format!("unknown error policy '{other}'"))
                        .at(o.value_position)
                        .hint("use 'skip' (count, log and go on), 'fail' (stop the query) or 'dead_letter'"))
                }
            },
        }
    };
    let topic = find(options, &["dead-letter.topic"]);
    let table = find(options, &["dead-letter.table"]);
    let url = find(options, &["dead-letter.url"]);
    if policy != ErrorPolicy::DeadLetter {
        if let Some(o) = topic.or(table).or(url) {
            return Err(SqlError::new(format!("option '{}' needs 'value.error.policy'='dead_letter'", o.key))
                .at(o.key_position)
                .hint("add 'value.error.policy'='dead_letter', or remove the option"));
        }
        return Ok((policy, None));
    }
    let target = match (topic, table) {
        (Some(t), None) if !t.value.is_empty() => DeadLetterTarget::Topic(t.value.clone()),
        (None, Some(t)) if !t.value.is_empty() => DeadLetterTarget::Table { table: t.value.clone(), url: url.map(|u| u.value.clone()) },
        (Some(_), Some(t)) => {
            return Err(SqlError::new("a source has one dead letter target: 'dead-letter.topic' or 'dead-letter.table', not both")
                .at(t.key_position)
                .hint("remove one of them"))
        }
        _ => {
            return Err(SqlError::new("'value.error.policy'='dead_letter' needs a place for the records")
                .at(policy_option.and_then(|o| o.value_position))
                .hint("add 'dead-letter.topic'='<topic>' (Kafka) or 'dead-letter.table'='<table>' (PostgreSQL)"))
        }
    };
    if let (DeadLetterTarget::Topic(_), Some(u)) = (&target, url) {
        return Err(SqlError::new("'dead-letter.url' is for 'dead-letter.table'").at(u.key_position).hint("remove 'dead-letter.url'"));
    }
    Ok((policy, Some(target)))
}

fn webhook_options(name: &str, options: &[WithOption]) -> Result<WebhookOptions, SqlError> {
    if let Some(o) = options.iter().find(|o| !WEBHOOK_KEYS.contains(&o.key.as_str()) && !o.key.starts_with("headers.")) {
        return Err(unknown_option(o, "webhook", WEBHOOK_KEYS));
    }
    let url_option = find(options, &["url"])
        .filter(|o| !o.value.is_empty())
        .ok_or_else(|| SqlError::new(format!("\"{name}\" needs a url")).hint("add 'url'='http://receiver:8080/alerts'"))?;
    let url = url_option.value.trim().to_string();
    let Some(rest) = url.strip_prefix("http://") else {
        let hint = if url.starts_with("https://") {
            "Eddy sends webhooks over plain HTTP; put a TLS-terminating proxy next to it and name that"
        } else {
            "write an http:// URL"
        };
        return Err(SqlError::new(format!("webhook url '{url}' is not an http:// URL")).at(url_option.value_position).hint(hint));
    };
    if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) || rest.contains(['@', ' ']) {
        return Err(SqlError::new(format!("webhook url '{url}' has no host, or has credentials or spaces in it"))
            .at(url_option.value_position)
            .hint("write 'http://host[:port]/path'; send credentials as a header ('headers.Authorization')"));
    }
    let method = match find(options, &["method"]) {
        None => "POST".to_string(),
        Some(o) => match o.value.to_uppercase().as_str() {
            m @ ("POST" | "PUT" | "PATCH") => m.to_string(),
            other => {
                return Err(SqlError::new(format!("unsupported webhook method '{other}'"))
                    .at(o.value_position)
                    .hint("use POST, PUT or PATCH"))
            }
        },
    };
    if let Some(o) = find(options, &["format"]) {
        if !o.value.eq_ignore_ascii_case("json") {
            return Err(SqlError::new(format!("a webhook sends JSON, not '{}'", o.value))
                .at(o.value_position)
                .hint("write 'format'='json' or leave it out"));
        }
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(o) = find(options, &["headers"]) {
        let parsed: serde_json::Value = serde_json::from_str(&o.value).map_err(|e| {
            SqlError::new(format!("option 'headers' must be a JSON object of header names to values: {e}"))
                .at(o.value_position)
                .hint("write 'headers'='{\"Authorization\": \"Bearer ...\"}', or one 'headers.<Name>'='value' per header")
        })?;
        let Some(map) = parsed.as_object() else {
            return Err(SqlError::new("option 'headers' must be a JSON object of header names to values").at(o.value_position));
        };
        for (k, v) in map {
            let Some(v) = v.as_str() else {
                return Err(SqlError::new(format!("header '{k}' must have a string value")).at(o.value_position));
            };
            headers.push((k.clone(), v.to_string()));
        }
    }
    for o in options.iter().filter(|o| o.key.starts_with("headers.")) {
        headers.push((o.key["headers.".len()..].to_string(), o.value.clone()));
    }
    for (k, v) in &headers {
        let valid_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(SqlError::new(format!("invalid webhook header '{k}'"))
                .hint("a header name is a token (letters, digits, '-'); a value has no line breaks"));
        }
        if ["host", "content-length", "transfer-encoding", "connection", "idempotency-key"].contains(&k.to_ascii_lowercase().as_str()) {
            return Err(SqlError::new(format!("header '{k}' is set by Eddy")).hint("remove it"));
        }
    }
    let batch_max_rows = match find(options, &["sink.batch.max-rows"]) {
        Some(o) => parse_int::<usize>(o, "a number of rows")?.clamp(1, 100_000),
        None => 1,
    };
    let request_timeout_ms = match find(options, &["sink.request-timeout"]) {
        Some(o) => crate::sql::event_time::parse_duration_option(o)?.clamp(1, 3_600_000) as u64,
        None => 10_000,
    };
    let topic = find(options, &["dead-letter.topic"]);
    let table = find(options, &["dead-letter.table"]);
    let dead_letter = match (topic, table) {
        (Some(t), None) => Some(DeadLetterTarget::Topic(t.value.clone())),
        (None, Some(t)) => {
            Some(DeadLetterTarget::Table { table: t.value.clone(), url: find(options, &["dead-letter.url"]).map(|u| u.value.clone()) })
        }
        (Some(_), Some(t)) => {
            return Err(SqlError::new("a webhook has one dead letter target: 'dead-letter.topic' or 'dead-letter.table', not both")
                .at(t.key_position)
                .hint("remove one of them"))
        }
        (None, None) => None,
    };
    let max_inflight = match find(options, &["sink.requests.max-inflight"]) {
        Some(o) => parse_int::<usize>(o, "a number of requests")?.clamp(1, 1000),
        None => 1,
    };
    Ok(WebhookOptions { url, method, headers, batch_max_rows, request_timeout_ms, max_inflight, dead_letter })
}

fn file_options(name: &str, options: &[WithOption]) -> Result<FileOptions, SqlError> {
    if let Some(o) = options.iter().find(|o| !file_keys().contains(&o.key.as_str())) {
        return Err(unknown_option(o, "filesystem", &file_keys()));
    }
    let path_option = find(options, &["path"])
        .filter(|o| !o.value.is_empty())
        .ok_or_else(|| SqlError::new(format!("\"{name}\" needs a path")).hint("add 'path'='/data/transactions.json'"))?;
    let path = local_path(path_option)?;
    check_timestamp_standard(options)?;
    check_json_options(options)?;
    let delimiter = parse_delimiter(options)?;
    let format = match find(options, &["format", "value_format"]) {
        Some(o) => parse_format(o, options, delimiter)?,
        None => return Err(SqlError::new(format!("\"{name}\" needs a format")).hint("add 'format'='csv' or 'format'='json'")),
    };
    let (error_policy, dead_letter) = parse_error_policy(options)?;
    let truncate = match find(options, &["sink.truncate"]) {
        None => None,
        Some(o) => match o.value.to_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => return Err(SqlError::new(format!("'sink.truncate' must be 'true' or 'false', not '{}'", o.value)).at(o.value_position)),
        },
    };
    let ignore_null_fields = parse_ignore_null_fields(options)?;
    Ok(FileOptions {
        path,
        format,
        error_policy,
        dead_letter,
        batch_max_rows: parse_max_rows(options)?,
        truncate,
        ignore_null_fields,
        timestamp_iso: timestamp_iso(options),
    })
}

/// A filesystem `'path'` as a local path: Flink writes URIs (`file:///data/x.csv`,
/// `file://localhost/data/`); a plain path is taken as it is. A directory means every
/// file in it (see the file source).
///
/// Errors: another scheme (`hdfs://`, `s3://`): Eddy reads local files only.
fn local_path(o: &WithOption) -> Result<String, SqlError> {
    let value = o.value.as_str();
    let Some((scheme, rest)) = value.split_once("://") else { return Ok(value.to_string()) };
    if !scheme.eq_ignore_ascii_case("file") {
        return Err(SqlError::new(format!("unsupported file system '{scheme}' in '{value}': Eddy reads and writes local files"))
            .at(o.value_position)
            .hint("write a local path, e.g. 'file:///data/transactions.csv' or '/data/transactions.csv'"));
    }
    // `file:///p` (empty authority) or `file://localhost/p`; any other host is remote.
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(i) if rest[..i].eq_ignore_ascii_case("localhost") => &rest[i..],
        _ => {
            return Err(SqlError::new(format!("'{value}' names a remote host: Eddy reads and writes local files"))
                .at(o.value_position)
                .hint("write file:///path (three slashes) for a local file"))
        }
    };
    Ok(path.to_string())
}

/// Flink's json options Eddy takes with Flink's meaning: `'json.fail-on-missing-field'`
/// `false` (Flink's default: a missing field is NULL) and the encoding options, which
/// describe what Eddy writes anyway (plain decimals; maps never have NULL keys here).
fn check_json_options(options: &[WithOption]) -> Result<(), SqlError> {
    if let Some(o) = find(options, &["json.fail-on-missing-field"]) {
        match o.value.to_lowercase().as_str() {
            "false" => {}
            "true" => return Err(SqlError::new("'json.fail-on-missing-field' = 'true' is not supported").at(o.value_position).hint(
                "a missing field is NULL (Flink's default); declare the column NOT NULL in a sink, or filter with WHERE col IS NOT NULL",
            )),
            _ => {
                return Err(SqlError::new(format!("'json.fail-on-missing-field' must be 'true' or 'false', not '{}'", o.value))
                    .at(o.value_position))
            }
        }
    }
    Ok(())
}

/// Flink's `'json.timestamp-format.standard'`: `SQL` (`2020-12-30 12:13:14.123`, the
/// default) or `ISO-8601` (`2020-12-30T12:13:14.123`). Eddy's JSON decoder reads both
/// forms whichever is set; a sink writes the one chosen ([`timestamp_iso`]).
///
/// Errors: another value (Flink's own message names the two).
fn check_timestamp_standard(options: &[WithOption]) -> Result<(), SqlError> {
    match find(options, &["json.timestamp-format.standard"]) {
        Some(o) if !(o.value.eq_ignore_ascii_case("SQL") || o.value.eq_ignore_ascii_case("ISO-8601")) => {
            Err(SqlError::new(format!("unsupported value '{}' for 'json.timestamp-format.standard'", o.value))
                .at(o.value_position)
                .hint("supported values are 'SQL' and 'ISO-8601'"))
        }
        _ => Ok(()),
    }
}

/// Whether `'json.timestamp-format.standard'` is `ISO-8601`.
fn timestamp_iso(options: &[WithOption]) -> bool {
    find(options, &["json.timestamp-format.standard"]).is_some_and(|o| o.value.eq_ignore_ascii_case("ISO-8601"))
}

fn postgres_options(name: &str, options: &[WithOption]) -> Result<PostgresOptions, SqlError> {
    if let Some(o) = options.iter().find(|o| !POSTGRES_KEYS.contains(&o.key.as_str())) {
        return Err(unknown_option(o, "postgres", POSTGRES_KEYS));
    }
    let url = match find(options, &["url"]) {
        None => None,
        Some(o) if o.value.is_empty() => None,
        Some(o) => {
            let url = o.value.strip_prefix("jdbc:").unwrap_or(&o.value).to_string();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(SqlError::new(format!("not a PostgreSQL URL: '{}'", o.value))
                    .at(o.value_position)
                    .hint("write 'postgres://user@host:5432/db' or 'jdbc:postgresql://host:5432/db'"));
            }
            Some(url)
        }
    };
    let table = find(options, &["table-name"]).map(|o| o.value.clone()).unwrap_or_else(|| name.to_string());
    if let Some(o) = find(options, &["driver"]).filter(|o| o.value != "org.postgresql.Driver") {
        return Err(SqlError::new(format!("unsupported JDBC driver '{}'", o.value))
            .at(o.value_position)
            .hint("Eddy speaks PostgreSQL's protocol itself: remove 'driver' or write 'org.postgresql.Driver'"));
    }
    if let Some(o) = find(options, &["lookup.max-retries"]) {
        parse_int::<u32>(o, "a number of retries")?;
    }
    Ok(PostgresOptions {
        url,
        table,
        username: find(options, &["username"]).map(|o| o.value.clone()),
        password: find(options, &["password"]).map(|o| o.value.clone()),
        lookup_cache: lookup_cache(options)?,
    })
}

/// Flink's JDBC lookup cache options: `'lookup.cache'` = `'NONE'` | `'PARTIAL'` with
/// `'lookup.partial-cache.max-rows'` (required), `'...expire-after-write'`,
/// `'...expire-after-access'` and `'...cache-missing-key'`; or the options before
/// Flink 1.16, `'lookup.cache.max-rows'` with `'lookup.cache.ttl'`.
fn lookup_cache(options: &[WithOption]) -> Result<LookupCache, SqlError> {
    let duration = |key: &str| -> Result<Option<u64>, SqlError> {
        find(options, &[key]).map(|o| crate::session::parse_duration_ms(&o.value).map_err(|e| e.at(o.value_position))).transpose()
    };
    let boolean = |keys: &[&str]| -> Result<bool, SqlError> {
        match find(options, keys) {
            None => Ok(true),
            Some(o) if o.value.eq_ignore_ascii_case("true") => Ok(true),
            Some(o) if o.value.eq_ignore_ascii_case("false") => Ok(false),
            Some(o) => Err(SqlError::new(format!("'{}' is 'true' or 'false', not '{}'", o.key, o.value)).at(o.value_position)),
        }
    };
    let partial = |max_rows: &WithOption, write: Option<u64>, access: Option<u64>, missing: bool| -> Result<LookupCache, SqlError> {
        let max_rows = parse_int::<usize>(max_rows, "a number of rows")?;
        if max_rows == 0 {
            return Ok(LookupCache::None);
        }
        Ok(LookupCache::Partial { max_rows, expire_after_write_ms: write, expire_after_access_ms: access, cache_missing_key: missing })
    };
    match find(options, &["lookup.cache"]) {
        Some(o) if o.value.eq_ignore_ascii_case("NONE") => Ok(LookupCache::None),
        Some(o) if o.value.eq_ignore_ascii_case("PARTIAL") => {
            let Some(max_rows) = find(options, &["lookup.partial-cache.max-rows"]) else {
                return Err(SqlError::new("'lookup.cache'='PARTIAL' needs 'lookup.partial-cache.max-rows'")
                    .at(o.key_position)
                    .hint("add e.g. 'lookup.partial-cache.max-rows'='10000'"));
            };
            partial(
                max_rows,
                duration("lookup.partial-cache.expire-after-write")?,
                duration("lookup.partial-cache.expire-after-access")?,
                boolean(&["lookup.partial-cache.cache-missing-key"])?,
            )
        }
        Some(o) => Err(SqlError::new(format!("unsupported 'lookup.cache' '{}'", o.value))
            .at(o.value_position)
            .hint("write 'NONE' or 'PARTIAL' (a FULL cache, which reloads the whole table, is not supported)")),
        None => match find(options, &["lookup.cache.max-rows"]) {
            Some(max_rows) => partial(max_rows, duration("lookup.cache.ttl")?, None, boolean(&["lookup.cache.caching-missing-key"])?),
            None => Ok(LookupCache::None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(key: &str, value: &str) -> WithOption {
        WithOption { key: key.into(), key_position: None, value: value.into(), value_position: None }
    }

    fn webhook(options: &[(&str, &str)]) -> Result<WebhookOptions, String> {
        let mut all = vec![option("connector", "webhook")];
        all.extend(options.iter().map(|(k, v)| option(k, v)));
        match parse_connector("hook", &all) {
            Ok(ConnectorOptions::Webhook(w)) => Ok(w),
            Ok(other) => Err(format!("not a webhook: {other}")),
            Err(e) => Err(e.message),
        }
    }

    #[test]
    fn webhook_options_and_their_refusals() {
        let w = webhook(&[
            ("url", "http://receiver:8080/alerts"),
            ("method", "put"),
            ("headers", r#"{"Authorization": "Bearer t"}"#),
            ("headers.X-Env", "prod"),
            ("sink.batch.max-rows", "500"),
            ("sink.request-timeout", "2 s"),
            ("sink.requests.max-inflight", "8"),
            ("dead-letter.topic", "refused"),
        ]);
        assert_eq!(
            w,
            Ok(WebhookOptions {
                url: "http://receiver:8080/alerts".into(),
                method: "PUT".into(),
                headers: vec![("Authorization".into(), "Bearer t".into()), ("X-Env".into(), "prod".into())],
                batch_max_rows: 500,
                request_timeout_ms: 2000,
                max_inflight: 8,
                dead_letter: Some(DeadLetterTarget::Topic("refused".into())),
            })
        );
        let d = webhook(&[("url", "http://h/x")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.method.as_str(), d.batch_max_rows, d.request_timeout_ms, d.dead_letter), ("POST", 1, 10_000, None));
        assert_eq!(webhook(&[]).err().as_deref(), Some("\"hook\" needs a url"));
        assert_eq!(webhook(&[("url", "https://h/x")]).err().as_deref(), Some("webhook url 'https://h/x' is not an http:// URL"));
        assert_eq!(
            webhook(&[("url", "http://user:pw@h/x")]).err().as_deref(),
            Some("webhook url 'http://user:pw@h/x' has no host, or has credentials or spaces in it")
        );
        assert_eq!(webhook(&[("url", "http://h/x"), ("method", "GET")]).err().as_deref(), Some("unsupported webhook method 'GET'"));
        assert_eq!(webhook(&[("url", "http://h/x"), ("headers.X-A", "a\r\nB: c")]).err().as_deref(), Some("invalid webhook header 'X-A'"));
        assert_eq!(webhook(&[("url", "http://h/x"), ("headers.Host", "evil")]).err().as_deref(), Some("header 'Host' is set by Eddy"));
        assert_eq!(webhook(&[("url", "http://h/x"), ("format", "csv")]).err().as_deref(), Some("a webhook sends JSON, not 'csv'"));
        assert_eq!(
            webhook(&[("url", "http://h/x"), ("urll", "y")]).err().as_deref(),
            Some("unknown WITH option 'urll' for the webhook connector")
        );
    }

    /// Flink's filesystem paths are URIs; local ones become paths, others are refused.
    #[test]
    fn file_uris_become_local_paths() -> Result<(), SqlError> {
        assert_eq!(local_path(&option("path", "file:///data/x.csv"))?, "/data/x.csv");
        assert_eq!(local_path(&option("path", "file://localhost/data/in/"))?, "/data/in/");
        assert_eq!(local_path(&option("path", "/data/x.csv"))?, "/data/x.csv");
        assert_eq!(local_path(&option("path", "relative/x.csv"))?, "relative/x.csv");
        let e = local_path(&option("path", "hdfs://namenode/x")).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("unsupported file system 'hdfs' in 'hdfs://namenode/x': Eddy reads and writes local files"));
        let e = local_path(&option("path", "file://otherhost/x")).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("'file://otherhost/x' names a remote host: Eddy reads and writes local files"));
        Ok(())
    }

    /// Flink's per-format options: ignore-parse-errors means skip, the timestamp
    /// standard takes SQL or ISO-8601.
    #[test]
    fn flink_format_options() -> Result<(), SqlError> {
        let base = [option("connector", "filesystem"), option("path", "/x.json"), option("format", "json")];
        let with = |extra: WithOption| base.iter().cloned().chain(std::iter::once(extra)).collect::<Vec<_>>();
        let ConnectorOptions::Filesystem(f) = parse_connector("t", &with(option("json.ignore-parse-errors", "false")))? else {
            panic!("not a filesystem relation")
        };
        assert_eq!(f.error_policy, ErrorPolicy::Fail);
        parse_connector("t", &with(option("json.timestamp-format.standard", "ISO-8601")))?;
        let e = parse_connector("t", &with(option("json.timestamp-format.standard", "RFC"))).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("unsupported value 'RFC' for 'json.timestamp-format.standard'"));
        Ok(())
    }
}
