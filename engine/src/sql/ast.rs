//! Eddy's statement AST: what [`super::parser::StreamParser`] returns.
//!
//! Standard SQL (queries, INSERT) stays in sqlparser's AST; Eddy adds the streaming DDL
//! that sqlparser cannot parse (`CREATE STREAM`, `WITH (kafka_topic=...)`, `WATERMARK FOR`).

use std::fmt;

use sqlparser::ast::{Expr, Query};

pub use super::column_type::ColumnType;

use crate::error::Position;

/// A name as written, normalized the way DataFusion does: unquoted names are lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The normalized name.
    pub value: String,
    /// Where it starts in the SQL text.
    pub position: Option<Position>,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// `STREAM` (append-only, ksqlDB) or `TABLE` (Flink's word for any source or sink; a
/// PostgreSQL sink is a TABLE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CREATE STREAM`.
    Stream,
    /// `CREATE TABLE`.
    Table,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Stream => "STREAM",
            ObjectKind::Table => "TABLE",
        })
    }
}

/// One column of a `CREATE STREAM|TABLE` column list.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// Column name.
    pub name: Name,
    /// Declared type; `None` for a computed column.
    pub data_type: Option<ColumnType>,
    /// Where the type starts.
    pub type_position: Option<Position>,
    /// ksqlDB `KEY`: the Kafka record key.
    pub key: bool,
    /// `PRIMARY KEY` on the column (Flink adds `NOT ENFORCED`).
    pub primary_key: bool,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Flink computed column `name AS expr` (e.g. `ts AS TO_TIMESTAMP_LTZ(event_ts, 0)`):
    /// not read from the record but computed from the other columns; its
    /// `data_type` is `None`.
    pub computed: Option<Expr>,
}

/// `WATERMARK FOR column AS expr` (Flink).
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkSpec {
    /// The event-time column.
    pub column: Name,
    /// The watermark expression, e.g. `ts - INTERVAL '5' SECOND`.
    pub expr: Expr,
}

/// One `key = value` of a `WITH (...)` clause. Keys are lowercased (`KAFKA_TOPIC` and
/// `kafka_topic` are the same option); values keep their case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithOption {
    /// Lowercased key, e.g. `kafka_topic`, `properties.bootstrap.servers`.
    pub key: String,
    /// Where the key starts.
    pub key_position: Option<Position>,
    /// The value as text (string literals unquoted, numbers and words as written).
    pub value: String,
    /// Where the value starts.
    pub value_position: Option<Position>,
}

/// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (options)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    /// STREAM or TABLE.
    pub kind: ObjectKind,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The new object's name.
    pub name: Name,
    /// The declared columns, in order.
    pub columns: Vec<ColumnSpec>,
    /// Table-level `PRIMARY KEY (a, b)`.
    pub primary_key: Vec<Name>,
    /// `WATERMARK FOR ...`.
    pub watermark: Option<WatermarkSpec>,
    /// The WITH options.
    pub options: Vec<WithOption>,
}

/// `CREATE STREAM|TABLE name [WITH (options)] AS SELECT ...` (ksqlDB CSAS/CTAS).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateAs {
    /// STREAM or TABLE.
    pub kind: ObjectKind,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The new object's name.
    pub name: Name,
    /// The WITH options of the new object (its sink).
    pub options: Vec<WithOption>,
    /// The query that fills it.
    pub query: Box<Query>,
    /// Its streaming clauses (WINDOW, EMIT).
    pub clauses: StreamClauses,
}

/// `INSERT INTO sink SELECT ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertInto {
    /// The sink.
    pub target: Name,
    /// The query.
    pub query: Box<Query>,
    /// Its streaming clauses (WINDOW, EMIT).
    pub clauses: StreamClauses,
}

/// `INSERT INTO name [(columns)] VALUES (...), ...` (ksqlDB): rows written to the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertValues {
    /// The stream or table.
    pub target: Name,
    /// The columns given, in order; empty means every column in declared order.
    pub columns: Vec<Name>,
    /// The rows: one literal per column.
    pub rows: Vec<Vec<Expr>>,
}

/// A statement Eddy understands.
// Statements are planned once each; the size of the DDL variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE STREAM|TABLE ... (columns) WITH (...)`.
    CreateSource(CreateSource),
    /// `CREATE STREAM|TABLE ... AS SELECT`.
    CreateAs(CreateAs),
    /// `INSERT INTO ... SELECT`.
    InsertInto(InsertInto),
    /// `INSERT INTO ... VALUES`.
    InsertValues(InsertValues),
    /// A bare query (a transient push query) and its streaming clauses.
    Query(Box<Query>, StreamClauses),
    /// `SHOW|LIST STREAMS|TABLES|QUERIES|TOPICS [EXTENDED]` (ksqlDB).
    Show {
        /// What to list.
        what: ShowKind,
        /// `EXTENDED`: more detail per entry.
        extended: bool,
    },
    /// `DESCRIBE [EXTENDED] name` (ksqlDB).
    Describe {
        /// The stream or table.
        name: Name,
        /// `EXTENDED`: WITH options, queries and counters too.
        extended: bool,
    },
    /// `EXPLAIN <statement>` or `EXPLAIN <query id>` (ksqlDB).
    Explain(ExplainTarget),
    /// `TERMINATE <query id>`, or `TERMINATE ALL` (`None`).
    Terminate(Option<Name>),
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]` (ksqlDB).
    Drop {
        /// STREAM or TABLE.
        kind: ObjectKind,
        /// The stream or table.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `DELETE TOPIC`: also delete its Kafka topic.
        delete_topic: bool,
    },
    /// `SET 'property'='value'`: a session property (ksqlDB), e.g. `auto.offset.reset`.
    Set {
        /// The property name, lowercased.
        property: String,
        /// Its value, as written.
        value: String,
    },
    /// `UNSET 'property'`.
    Unset {
        /// The property name, lowercased.
        property: String,
    },
    /// `RUN SCRIPT 'path.sql'` (ksqlDB): the statements of a file, in order.
    RunScript {
        /// The file's path.
        path: String,
    },
    /// `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name INPUT (...) OUTPUT (...) WITH (...)`
    /// (Flink 2.1).
    CreateModel(CreateModel),
    /// `DROP MODEL [IF EXISTS] name`.
    DropModel {
        /// The model.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `DESCRIBE MODEL name`.
    DescribeModel(Name),
    /// `CREATE [OR REPLACE] [TEMPORARY] VIEW [IF NOT EXISTS] name [(columns)] AS query` (Flink).
    CreateView(CreateView),
    /// `DROP [TEMPORARY] VIEW [IF EXISTS] name` (Flink).
    DropView {
        /// The view.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
    },
}

/// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] name [(columns)] AS query` (Flink): a named
/// query that later queries read as if it were a stream ([`crate::sql::views`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The view's name.
    pub name: Name,
    /// The declared column names, if any.
    pub columns: Vec<sqlparser::ast::Ident>,
    /// The query.
    pub query: Box<Query>,
}

/// `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name INPUT (col type, ...) OUTPUT (col
/// type, ...) [COMMENT '...'] WITH ('provider' = 'pmml', 'path' = '...')` (Flink 2.1's
/// syntax).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateModel {
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The model's name.
    pub name: Name,
    /// The INPUT columns, in order.
    pub inputs: Vec<ColumnSpec>,
    /// The OUTPUT columns, in order.
    pub outputs: Vec<ColumnSpec>,
    /// The WITH options.
    pub options: Vec<WithOption>,
}

/// What `SHOW` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    /// `SHOW STREAMS`.
    Streams,
    /// `SHOW TABLES`.
    Tables,
    /// `SHOW QUERIES`.
    Queries,
    /// `SHOW TOPICS`.
    Topics,
    /// `SHOW PROPERTIES`: the session's properties.
    Properties,
    /// `SHOW MODELS` (Flink).
    Models,
    /// `SHOW VIEWS` (Flink).
    Views,
}

impl fmt::Display for ShowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShowKind::Streams => "STREAMS",
            ShowKind::Tables => "TABLES",
            ShowKind::Queries => "QUERIES",
            ShowKind::Topics => "TOPICS",
            ShowKind::Properties => "PROPERTIES",
            ShowKind::Models => "MODELS",
            ShowKind::Views => "VIEWS",
        })
    }
}

/// What `EXPLAIN` explains.
#[derive(Debug, Clone, PartialEq)]
pub enum ExplainTarget {
    /// A statement, planned but not run; its text follows `EXPLAIN`.
    Statement(Box<Statement>),
    /// A running query, by id.
    Query(Name),
    /// `EXPLAIN (FORMAT DOT) ...`: the target's operator graph as Graphviz DOT.
    Dot(Box<ExplainTarget>),
}

/// A statement with its text and where it starts in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    /// The statement.
    pub statement: Statement,
    /// The statement's own text (without the trailing `;`).
    pub text: String,
    /// Where it starts in the input.
    pub position: Position,
    /// The Flink statement set (`EXECUTE STATEMENT SET BEGIN ... END`) it belongs to: an
    /// id unique in this process, the same for every statement of one set.
    pub statement_set: Option<u64>,
}

fn write_options(f: &mut fmt::Formatter<'_>, options: &[WithOption]) -> fmt::Result {
    let parts: Vec<String> = options.iter().map(|o| format!("{}='{}'", o.key, o.value)).collect();
    write!(f, " with=[{}]", parts.join(", "))
}

impl fmt::Display for Statement {
    /// A compact, stable rendering used by the golden parser tests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateSource(c) => {
                write!(f, "CREATE ")?;
                if c.or_replace {
                    write!(f, "OR REPLACE ")?;
                }
                write!(f, "{}", c.kind)?;
                if c.if_not_exists {
                    write!(f, " IF NOT EXISTS")?;
                }
                write!(f, " {} cols=[", c.name)?;
                for (i, col) in c.columns.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    match &col.computed {
                        Some(expr) => write!(f, "{} AS {expr}", col.name)?,
                        None => match &col.data_type {
                            Some(t) => write!(f, "{} {t}", col.name)?,
                            None => write!(f, "{}", col.name)?,
                        },
                    }
                    if col.key {
                        write!(f, " KEY")?;
                    }
                    if col.primary_key {
                        write!(f, " PRIMARY KEY")?;
                    }
                    if col.not_null {
                        write!(f, " NOT NULL")?;
                    }
                }
                write!(f, "]")?;
                if !c.primary_key.is_empty() {
                    let pk: Vec<&str> = c.primary_key.iter().map(|n| n.value.as_str()).collect();
                    write!(f, " primary_key=[{}]", pk.join(", "))?;
                }
                if let Some(w) = &c.watermark {
                    write!(f, " watermark=[{} AS {}]", w.column, w.expr)?;
                }
                write_options(f, &c.options)
            }
            Statement::CreateAs(c) => {
                write!(f, "CREATE {} {} AS", c.kind, c.name)?;
                write_options(f, &c.options)?;
                write!(f, " query=[{}]{}", c.query, c.clauses)
            }
            Statement::InsertInto(i) => write!(f, "INSERT INTO {} query=[{}]{}", i.target, i.query, i.clauses),
            Statement::InsertValues(v) => write!(f, "INSERT INTO {} VALUES rows={}", v.target, v.rows.len()),
            Statement::Query(q, clauses) => write!(f, "QUERY [{q}]{clauses}"),
            Statement::Show { what, extended } => write!(f, "SHOW {what}{}", if *extended { " EXTENDED" } else { "" }),
            Statement::Describe { name, extended } => write!(f, "DESCRIBE{} {name}", if *extended { " EXTENDED" } else { "" }),
            Statement::Explain(ExplainTarget::Statement(s)) => write!(f, "EXPLAIN [{s}]"),
            Statement::Explain(ExplainTarget::Query(id)) => write!(f, "EXPLAIN QUERY {id}"),
            Statement::Explain(ExplainTarget::Dot(t)) => write!(f, "EXPLAIN (FORMAT DOT) {}", Statement::Explain(t.as_ref().clone())),
            Statement::Terminate(Some(id)) => write!(f, "TERMINATE {id}"),
            Statement::Terminate(None) => write!(f, "TERMINATE ALL"),
            Statement::Drop { kind, name, if_exists, delete_topic } => write!(
                f,
                "DROP {kind}{} {name}{}",
                if *if_exists { " IF EXISTS" } else { "" },
                if *delete_topic { " DELETE TOPIC" } else { "" }
            ),
            Statement::Set { property, value } => write!(f, "SET '{property}'='{value}'"),
            Statement::Unset { property } => write!(f, "UNSET '{property}'"),
            Statement::RunScript { path } => write!(f, "RUN SCRIPT '{path}'"),
            Statement::CreateModel(c) => {
                let cols = |cs: &[ColumnSpec]| -> String {
                    cs.iter()
                        .map(|c| format!("{} {}", c.name, c.data_type.as_ref().map(|t| t.to_string()).unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "CREATE {}MODEL {}{} input=[{}] output=[{}]",
                    if c.or_replace { "OR REPLACE " } else { "" },
                    if c.if_not_exists { "IF NOT EXISTS " } else { "" },
                    c.name,
                    cols(&c.inputs),
                    cols(&c.outputs)
                )?;
                write_options(f, &c.options)
            }
            Statement::DropModel { name, if_exists } => write!(f, "DROP MODEL {}{name}", if *if_exists { "IF EXISTS " } else { "" }),
            Statement::DescribeModel(name) => write!(f, "DESCRIBE MODEL {name}"),
            Statement::CreateView(v) => {
                write!(f, "CREATE ")?;
                if v.or_replace {
                    write!(f, "OR REPLACE ")?;
                }
                write!(f, "VIEW")?;
                if v.if_not_exists {
                    write!(f, " IF NOT EXISTS")?;
                }
                write!(f, " {}", v.name)?;
                if !v.columns.is_empty() {
                    let names: Vec<String> = v.columns.iter().map(|c| c.to_string()).collect();
                    write!(f, " ({})", names.join(", "))?;
                }
                write!(f, " AS {}", v.query)
            }
            Statement::DropView { name, if_exists } => write!(f, "DROP VIEW{} {name}", if *if_exists { " IF EXISTS" } else { "" }),
        }
    }
}

/// A window as the ksqlDB `WINDOW` clause or a Flink window function declares it.
/// All durations are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size` ms: `WINDOW TUMBLING (SIZE 3 SECONDS)`,
    /// `TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '3' SECONDS)`.
    Tumbling {
        /// Window length (ms).
        size: i64,
    },
    /// Overlapping windows of `size` ms starting every `advance` ms:
    /// `WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS)`, `HOP(..., slide, size)`.
    Hopping {
        /// Window length (ms).
        size: i64,
        /// Distance between window starts (ms).
        advance: i64,
    },
    /// Per-key windows that close after `gap` ms without a row: `WINDOW SESSION (5 MINUTES)`,
    /// `SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTES)`.
    Session {
        /// Inactivity gap (ms).
        gap: i64,
    },
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowKind::Tumbling { size } => write!(f, "tumbling(size={})", duration(*size)),
            WindowKind::Hopping { size, advance } => write!(f, "hopping(size={}, advance={})", duration(*size), duration(*advance)),
            WindowKind::Session { gap } => write!(f, "session(gap={})", duration(*gap)),
        }
    }
}

/// Renders milliseconds the way people write them: `3s`, `1min`, `10h`, `250ms`.
pub fn duration(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s"), (1, "ms")];
    for (unit, name) in UNITS {
        if ms != 0 && ms % unit == 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    "0s".to_string()
}

/// The ksqlDB `WINDOW TUMBLING|HOPPING|SESSION (...)` clause of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsqlWindow {
    /// The window.
    pub kind: WindowKind,
    /// `GRACE PERIOD n unit` (ms), if given.
    pub grace: Option<i64>,
    /// Where `WINDOW` starts.
    pub position: Option<Position>,
}

/// When a windowed aggregation emits (ksqlDB `EMIT CHANGES` / `EMIT FINAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// An updated row per micro-batch that changed it (ksqlDB's default).
    Changes,
    /// One row per window and key when the window closes (Flink's default).
    Final,
}

impl fmt::Display for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Emit::Changes => "CHANGES",
            Emit::Final => "FINAL",
        })
    }
}

/// Streaming clauses that sqlparser cannot parse, cut out of a query's tokens by the
/// parser and kept beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamClauses {
    /// ksqlDB `WINDOW ...`.
    pub window: Option<KsqlWindow>,
    /// `EMIT CHANGES` / `EMIT FINAL`, with where it was written.
    pub emit: Option<(Emit, Option<Position>)>,
    /// Flink `SESSION(TABLE t PARTITION BY a, b, ...)`: the partition columns.
    pub session_partition_by: Vec<Name>,
    /// Flink's `WITHIN INTERVAL '5' MINUTE` after a MATCH_RECOGNIZE `PATTERN (...)`: the
    /// longest time (ms) from a match's first row to its last, with where it was written.
    pub within: Option<(i64, Option<Position>)>,
    /// Flink's `FOR SYSTEM_TIME AS OF o.proc_time` after a joined table: the time
    /// column's name parts (`["o", "proc_time"]`, normalized), with where it was written.
    pub system_time: Option<(Vec<String>, Option<Position>)>,
    /// ksqlDB's `JOIN b WITHIN 1 HOUR [GRACE PERIOD 10 MINUTES]` (or `WITHIN (1 HOUR, 2
    /// HOURS)`, before and after): the time bound of a join of two streams, with where
    /// it was written.
    pub join_within: Option<(JoinWithin, Option<Position>)>,
}

/// The time bound of ksqlDB's stream–stream join (ms): a row of the right stream joins
/// a row of the left whose time is at most `before` earlier and `after` later; `grace`
/// is how long after that a late row is still joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWithin {
    /// How far the right row may be before the left one (ms).
    pub before_ms: i64,
    /// How far the right row may be after the left one (ms).
    pub after_ms: i64,
    /// `GRACE PERIOD` (ms), if given.
    pub grace_ms: Option<i64>,
}

impl fmt::Display for JoinWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.before_ms == self.after_ms {
            write!(f, "WITHIN {}", duration(self.before_ms))?;
        } else {
            write!(f, "WITHIN ({}, {})", duration(self.before_ms), duration(self.after_ms))?;
        }
        if let Some(g) = self.grace_ms {
            write!(f, " GRACE PERIOD {}", duration(g))?;
        }
        Ok(())
    }
}

impl fmt::Display for StreamClauses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = &self.window {
            write!(f, " window=[{}", w.kind)?;
            if let Some(g) = w.grace {
                write!(f, ", grace={}", duration(g))?;
            }
            write!(f, "]")?;
        }
        if let Some((e, _)) = &self.emit {
            write!(f, " emit={e}")?;
        }
        if let Some((ms, _)) = self.within {
            write!(f, " within={}", duration(ms))?;
        }
        if let Some((column, _)) = &self.system_time {
            write!(f, " system_time_as_of={}", column.join("."))?;
        }
        if let Some((w, _)) = &self.join_within {
            write!(f, " join={w}")?;
        }
        if !self.session_partition_by.is_empty() {
            let names: Vec<&str> = self.session_partition_by.iter().map(|n| n.value.as_str()).collect();
            write!(f, " session_partition_by=[{}]", names.join(", "))?;
        }
        Ok(())
    }
}
