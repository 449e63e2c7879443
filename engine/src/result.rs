//! What executing a statement returns ([`StatementResult`]), in structured form: the
//! fronts render it (the shell as tables, the REST server as ksqlDB's JSON entities).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::catalog::Relation;
use crate::connector::TopicInfo;
use crate::metrics::MetricsSnapshot;
use crate::runtime::{QueryStatus, QueryStopper};
use crate::sql::ast::ObjectKind;

/// What applying one statement did.
#[derive(Debug)]
pub enum StatementResult {
    /// A stream or table was created.
    Created {
        /// STREAM or TABLE.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// A persistent query was started.
    QueryStarted {
        /// Its id.
        id: String,
        /// Something the user should know about the running query, e.g. that a
        /// MATCH_RECOGNIZE without WITHIN can hold state without bound (Flink warns too).
        warning: Option<String>,
    },
    /// Nothing changed; the text says why.
    Noop(String),
    /// `DROP STREAM|TABLE`.
    Dropped {
        /// STREAM or TABLE.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// The Kafka topic deleted with it (`DELETE TOPIC`).
        topic_deleted: Option<String>,
    },
    /// `TERMINATE`: the queries stopped, in order.
    Terminated(Vec<String>),
    /// `CREATE MODEL`.
    ModelCreated {
        /// Its name.
        name: String,
    },
    /// `DROP MODEL`.
    ModelDropped {
        /// Its name.
        name: String,
    },
    /// `SHOW MODELS`, by name.
    Models(Vec<ModelInfo>),
    /// `DESCRIBE MODEL`.
    ModelDescription(Box<ModelInfo>),
    /// `SHOW STREAMS` / `SHOW TABLES`.
    Relations {
        /// STREAM or TABLE.
        kind: ObjectKind,
        /// One entry per relation, by name.
        relations: Vec<RelationInfo>,
    },
    /// `SHOW QUERIES`: persistent queries, then push queries, each by id.
    Queries(Vec<QueryInfo>),
    /// `SHOW TOPICS`.
    Topics(Vec<TopicInfo>),
    /// `SHOW PROPERTIES`: the server's properties and the session's (which override
    /// them), each by name.
    Properties {
        /// What Eddy runs with ([`crate::Engine::set_server_properties`]).
        server: BTreeMap<String, String>,
        /// What this session set.
        session: BTreeMap<String, String>,
    },
    /// `DESCRIBE [EXTENDED] name`.
    Description(Box<Description>),
    /// `EXPLAIN`: the operator pipeline, one operator per line.
    Explain {
        /// The query explained, when it is running (`EXPLAIN <query id>`).
        query_id: Option<String>,
        /// The plan text.
        plan: String,
        /// The query's own statement text, its output columns, and the relations it reads
        /// and writes (ksqlDB's `queryDescription`); empty for a plain CREATE.
        query: Option<ExplainedQuery>,
    },
    /// `INSERT INTO ... VALUES` wrote `rows` rows to `relation`.
    Inserted {
        /// The stream or table written.
        relation: String,
        /// Rows written.
        rows: usize,
    },
    /// `SET 'property'='value'`.
    PropertySet {
        /// The property.
        property: String,
        /// Its new value.
        value: String,
        /// Why it has no effect, for a property ksqlDB knows and Eddy does not use.
        warning: Option<String>,
    },
    /// `UNSET 'property'`.
    PropertyUnset {
        /// The property.
        property: String,
    },
    /// `CREATE VIEW`: the view was stored.
    ViewCreated {
        /// The view.
        name: String,
    },
    /// `DROP VIEW`: the view was forgotten.
    ViewDropped {
        /// The view.
        name: String,
    },
    /// `SHOW VIEWS`: each view's name and the statement that created it, by name.
    Views(Vec<(String, String)>),
    /// A transient push query started: its rows arrive on `push.rows`.
    PushQuery(PushQuery),
}

/// One statement of a request and what it did (a `CREATE ... AS SELECT` gives two
/// results: the relation created and the query started; `RUN SCRIPT` one per statement
/// of the file).
#[derive(Debug)]
pub struct Executed {
    /// The statement's text.
    pub statement: String,
    /// Its results, in order.
    pub results: Vec<StatementResult>,
}

/// A running transient push query (`SELECT ... EMIT CHANGES [LIMIT n]`).
///
/// Rows arrive as Arrow batches of `schema` on `rows`, which ends after LIMIT rows or
/// when the query stops. Dropping `rows` stops the query; so does `stopper.stop()`.
pub struct PushQuery {
    /// The query's id (`transient_<source>`).
    pub id: String,
    /// The schema of its rows.
    pub schema: SchemaRef,
    /// `LIMIT n`, if given (rows).
    pub limit: Option<usize>,
    /// The rows, batch by batch.
    pub rows: mpsc::Receiver<RecordBatch>,
    /// Stops the query.
    pub stopper: QueryStopper,
    /// The query's status as its task sets it: it opens its source in the background,
    /// and [`crate::runtime::started`] waits for the outcome (answer the client with
    /// the reason when it cannot open, rather than with a silent stream).
    pub status: tokio::sync::watch::Receiver<crate::runtime::QueryStatus>,
}

impl PushQuery {
    /// Waits until the query has opened its source (`Ok`), or failed or began retrying
    /// to (the reason; the query is then stopped).
    pub async fn started(&mut self) -> std::result::Result<(), String> {
        let outcome = crate::runtime::started(&mut self.status).await;
        if outcome.is_err() {
            self.stopper.stop();
        }
        outcome
    }
}

impl fmt::Debug for PushQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushQuery").field("id", &self.id).field("schema", &self.schema).field("limit", &self.limit).finish()
    }
}

/// A stream or table as `SHOW STREAMS|TABLES` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    /// Name, as the relation's dialect spells it ([`Relation::display_name`]).
    pub name: String,
    /// STREAM or TABLE.
    pub kind: ObjectKind,
    /// `kafka`, `postgres`, `filesystem`, `print`, `blackhole`.
    pub connector: String,
    /// The Kafka topic, PostgreSQL table or file path.
    pub target: String,
    /// The value format (`JSON`, `DELIMITED`), for Kafka and files.
    pub format: Option<String>,
    /// Whether its rows are windows (it is written by a windowed aggregation).
    pub windowed: bool,
}

impl RelationInfo {
    /// The listing entry of `relation`.
    pub fn of(relation: &Relation) -> RelationInfo {
        use crate::options::ConnectorOptions;
        let target = match &relation.connector {
            ConnectorOptions::Kafka(k) => k.topic.clone(),
            ConnectorOptions::Postgres(p) => p.table.clone(),
            ConnectorOptions::Filesystem(f) => f.path.clone(),
            ConnectorOptions::Webhook(w) => w.url.clone(),
            ConnectorOptions::Print | ConnectorOptions::Blackhole => String::new(),
        };
        let format = relation.connector.format().map(|f| f.to_string().split_whitespace().next().unwrap_or_default().to_uppercase());
        let windowed = relation.schema.field_with_name(crate::sql::window::WINDOW_START).is_ok();
        RelationInfo {
            name: relation.display_name(&relation.name),
            kind: relation.kind,
            connector: relation.connector.name().to_string(),
            target,
            format,
            windowed,
        }
    }
}

/// Persistent (`CREATE ... AS SELECT`, `INSERT INTO`) or transient push query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Runs until terminated; recorded in the command log.
    Persistent,
    /// Runs while its client listens.
    Push,
}

impl fmt::Display for QueryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryKind::Persistent => "PERSISTENT",
            QueryKind::Push => "PUSH",
        })
    }
}

/// A query as `SHOW QUERIES` and `DESCRIBE EXTENDED` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    /// Its id.
    pub id: String,
    /// Persistent or push.
    pub kind: QueryKind,
    /// RUNNING, STOPPED or FAILED with the error.
    pub status: QueryStatus,
    /// The statement that started it.
    pub statement: String,
    /// The relation it reads.
    pub source: String,
    /// The relation it writes (`None` for a push query).
    pub sink: Option<String>,
    /// The sink's Kafka topic or PostgreSQL table.
    pub sink_target: Option<String>,
    /// Workers of its stateful stages.
    pub parallelism: usize,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// Its counters now.
    pub metrics: MetricsSnapshot,
}

/// `DESCRIBE [EXTENDED] name`.
#[derive(Debug, Clone)]
pub struct Description {
    /// The relation.
    pub relation: Arc<Relation>,
    /// The listing entry (connector, target, format).
    pub info: RelationInfo,
    /// `EXTENDED` was asked for.
    pub extended: bool,
    /// The WITH options as written (keys lowercased), in order.
    pub options: Vec<(String, String)>,
    /// Queries that read it.
    pub read_by: Vec<QueryInfo>,
    /// Queries that write it.
    pub written_by: Vec<QueryInfo>,
    /// Its Kafka topic as the cluster reports it (partitions, replicas), when the
    /// request's preflight listed the topics and the topic exists; otherwise the
    /// declared `PARTITIONS`/`REPLICAS` stand in.
    pub topic: Option<crate::connector::TopicInfo>,
}

impl fmt::Display for StatementResult {
    /// One line per result (`eddy run` prints these; the shell renders tables).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementResult::Created { kind: ObjectKind::Stream, name } => write!(f, "Stream {name} created"),
            StatementResult::Created { kind: ObjectKind::Table, name } => write!(f, "Table {name} created"),
            StatementResult::QueryStarted { id, warning: None } => write!(f, "Created query with ID {id}"),
            StatementResult::QueryStarted { id, warning: Some(w) } => write!(f, "Created query with ID {id}\nwarning: {w}"),
            StatementResult::Noop(why) => f.write_str(why),
            StatementResult::Dropped { kind, name, topic_deleted } => {
                let kind = if *kind == ObjectKind::Stream { "Stream" } else { "Table" };
                write!(f, "{kind} {name} dropped")?;
                if let Some(t) = topic_deleted {
                    write!(f, "; topic {t} deleted")?;
                }
                Ok(())
            }
            StatementResult::ModelCreated { name } => write!(f, "Model {name} created"),
            StatementResult::ModelDropped { name } => write!(f, "Model {name} dropped"),
            StatementResult::Models(m) => write!(f, "{} models", m.len()),
            StatementResult::ModelDescription(m) => write!(f, "Model {} ({} {})", m.name, m.provider, m.kind),
            StatementResult::Terminated(ids) if ids.is_empty() => f.write_str("No queries to terminate"),
            StatementResult::Terminated(ids) => write!(f, "Terminated {}", ids.join(", ")),
            StatementResult::Relations { kind, relations } => {
                write!(f, "{} {}", relations.len(), if *kind == ObjectKind::Stream { "streams" } else { "tables" })
            }
            StatementResult::Queries(q) => write!(f, "{} queries", q.len()),
            StatementResult::Topics(t) => write!(f, "{} topics", t.len()),
            StatementResult::Properties { server, session } => write!(f, "{} properties", server.len() + session.len()),
            StatementResult::Description(d) => write!(f, "{} {}", d.relation.kind, d.relation.name),
            StatementResult::Explain { plan, .. } => f.write_str(plan),
            StatementResult::Inserted { relation, rows } => write!(f, "Inserted {rows} row(s) into {relation}"),
            StatementResult::PropertySet { property, value, .. } => write!(f, "Property '{property}' set to '{value}'"),
            StatementResult::PropertyUnset { property } => write!(f, "Property '{property}' unset"),
            StatementResult::PushQuery(p) => write!(f, "Push query {} started", p.id),
            StatementResult::ViewCreated { name } => write!(f, "View {name} created"),
            StatementResult::Views(v) => write!(f, "{} views", v.len()),
            StatementResult::ViewDropped { name } => write!(f, "View {name} dropped"),
        }
    }
}

/// A model, as `SHOW MODELS` and `DESCRIBE MODEL` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// `pmml`.
    pub provider: String,
    /// The file, as the statement wrote it.
    pub path: String,
    /// `classification` or `regression`.
    pub kind: String,
    /// INPUT columns: name and SQL type.
    pub inputs: Vec<(String, String)>,
    /// OUTPUT columns: name and SQL type.
    pub outputs: Vec<(String, String)>,
    /// SHA-256 of the file as loaded.
    pub checksum: String,
}

/// What ksqlDB's `queryDescription` says of an explained query.
#[derive(Debug, Clone)]
pub struct ExplainedQuery {
    /// The statement that started (or would start) the query.
    pub statement: String,
    /// The output columns (Arrow schema of the rows written).
    pub schema: arrow::datatypes::SchemaRef,
    /// The relation read.
    pub sources: Vec<String>,
    /// The relation written (none for a push query).
    pub sinks: Vec<String>,
}
