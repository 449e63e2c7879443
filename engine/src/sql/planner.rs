//! Plans parsed statements: DDL becomes catalog entries, `INSERT INTO ... SELECT` and
//! `CREATE STREAM ... AS SELECT` become [`QueryPlan`]s.
//!
//! Expressions are planned by DataFusion's SQL planner (`SqlToRel` over
//! [`CatalogContext`]) and turned into `PhysicalExpr`s that evaluate whole Arrow
//! `RecordBatch`es. A [`QueryPlan`] is one source, an optional filter, at most one
//! stateful part (an [`AggregatePlan`]: window aggregate and HAVING; or a
//! [`MatchRecognizePlan`]), the projection and one sink; the runtime turns it into
//! `decode -> [watermark] -> [filter] -> [window aggregate | match_recognize] -> project`
//! (docs/DESIGN.md, data flow). Windows are planned in [`super::window`],
//! MATCH_RECOGNIZE in [`super::match_recognize`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{DFSchema, ExprSchema, TableReference};
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use sqlparser::ast::Query;

use super::ast::{CreateAs, CreateSource, Emit, InsertInto, ObjectKind, ParsedStatement, Statement, StreamClauses, WithOption};
use super::context::CatalogContext;
use super::event_time::plan_event_time;
use super::match_recognize::MatchRecognizePlan;
use super::names::check_query;
use super::types::{arrow_type, is_supported, sql_name};
use super::window::{normalize, WindowSpec, WINDOW_END, WINDOW_START};
use crate::catalog::{Catalog, ComputedColumn, Relation};
use crate::error::{lowercase_first, Position, SqlError};
use crate::options::{parse_connector, ConnectorOptions};

/// An expression ready to evaluate, with the name of the column it produces and its
/// DataFusion rendering (for EXPLAIN).
#[derive(Debug, Clone)]
pub struct PlannedExpr {
    /// Output column name.
    pub name: String,
    /// The logical expression as DataFusion prints it.
    pub display: String,
    /// The physical expression, evaluated on a whole batch of the source's schema.
    pub expr: Arc<dyn PhysicalExpr>,
}

/// One aggregate function of an aggregation, lowered by DataFusion.
#[derive(Debug, Clone)]
pub struct PlannedAggregate {
    /// Output column name (DataFusion's, e.g. `sum(transactions.amount)`).
    pub name: String,
    /// The aggregate as DataFusion prints it.
    pub display: String,
    /// The physical aggregate: creates `GroupsAccumulator`s / `Accumulator`s.
    pub function: Arc<AggregateFunctionExpr>,
    /// `FILTER (WHERE ...)`, over the input schema.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// A keyed (and usually windowed) aggregation.
///
/// Output rows have [`AggregatePlan::output_schema`]: the group keys in GROUP BY order,
/// then `window_start` and `window_end` (`TIMESTAMP(3)`) when windowed, then one column
/// per aggregate. HAVING and the SELECT list are evaluated over that schema.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// The window; `None` for a non-windowed GROUP BY (a continuously updated table).
    pub window: Option<WindowSpec>,
    /// When rows are emitted.
    pub emit: Emit,
    /// Group keys (without the window columns), over the input schema.
    pub keys: Vec<PlannedExpr>,
    /// Aggregate functions, in output order.
    pub aggregates: Vec<PlannedAggregate>,
    /// Schema of the rows the aggregation emits.
    pub output_schema: SchemaRef,
}

impl fmt::Display for AggregatePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.window {
            Some(w) => {
                write!(f, "window aggregate: {}, grace {}", w.kind, super::ast::duration(w.grace_ms))?;
                if w.allowed_lateness_ms > 0 {
                    write!(f, ", allowed lateness {}", super::ast::duration(w.allowed_lateness_ms))?;
                }
            }
            None => write!(f, "aggregate: no window (table)")?,
        }
        write!(f, ", emit {}", self.emit)?;
        let keys: Vec<&str> = self.keys.iter().map(|k| k.display.as_str()).collect();
        write!(f, "\n    keys: [{}]", keys.join(", "))?;
        let aggs: Vec<String> = self.aggregates.iter().map(|a| a.display.clone()).collect();
        write!(f, "\n    aggregates: [{}]", aggs.join(", "))
    }
}

/// A persistent query: read `source`, keep rows where `filter` is true, optionally
/// aggregate them (then keep groups where `having` is true), compute `projection`,
/// write `sink`.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Stable id (`insert_<sink>` or `csas_<name>`): it names the Kafka consumer group,
    /// so a restarted `eddy run` resumes from the committed offsets.
    pub id: String,
    /// The statement's text.
    pub sql: String,
    /// The relation read.
    pub source: Arc<Relation>,
    /// The models the query scores with (`ML_PREDICT`), which cannot be dropped or
    /// replaced while it runs.
    pub models: Vec<String>,
    /// The WHERE predicate (Boolean), over the source's schema, or over the rows of
    /// `match_recognize` when there is one.
    pub filter: Option<PlannedExpr>,
    /// `FROM source MATCH_RECOGNIZE (...)`: row pattern recognition between the source
    /// and the filter.
    pub match_recognize: Option<MatchRecognizePlan>,
    /// A lookup join of each source row with a PostgreSQL table, before the filter: the
    /// filter and the projection then read the joined rows (the source's columns, then
    /// the table's).
    pub lookup_join: Option<super::lookup_join::LookupJoinPlan>,
    /// An interval join with a second stream, before the filter: the filter and the
    /// projection then read the joined rows (the left stream's columns, then the right's).
    pub interval_join: Option<super::interval_join::IntervalJoinPlan>,
    /// `UNION ALL`: the other branches, each a stream filtered and projected to the
    /// output's columns like the first (this plan's source, filter and projection).
    pub union: Vec<UnionBranch>,
    /// An event-time temporal join with a versioned table, before the filter.
    pub temporal_join: Option<super::temporal_join::TemporalJoinPlan>,
    /// The aggregation, if the query has GROUP BY or aggregate functions.
    pub aggregate: Option<AggregatePlan>,
    /// HAVING, over the aggregation's output schema.
    pub having: Option<PlannedExpr>,
    /// One expression per output column, over the source's schema (or the aggregation's
    /// output); already cast to the sink's column types.
    pub projection: Vec<PlannedExpr>,
    /// The schema of the rows handed to the sink (equals the sink's schema).
    pub output_schema: SchemaRef,
    /// The relation written.
    pub sink: Arc<Relation>,
    /// `'execution.checkpointing.interval'` of the session that created the query (ms);
    /// `None`: the engine's default.
    pub checkpoint_interval_ms: Option<u64>,
    /// The session's `table.optimizer.agg-phase-strategy` is `ONE_PHASE`: an aggregation
    /// on several workers is not pre-aggregated before its key exchange.
    pub one_phase_aggregation: bool,
    /// The Flink statement set the query's INSERT belongs to
    /// ([`super::ast::ParsedStatement::statement_set`]): the queries of one set that read
    /// the same source share one read of it ([`crate::runtime::shared_read`]).
    pub statement_set: Option<u64>,
}

impl fmt::Display for QueryPlan {
    /// The operator pipeline, one operator per line (EXPLAIN, golden tests, logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "query {}", self.id)?;
        writeln!(f, "  source: {} ({})", self.source.name, self.source.connector)?;
        let cols: Vec<String> = self.source.schema.fields().iter().map(|c| format!("{} {}", c.name(), sql_name(c.data_type()))).collect();
        let format = match self.source.connector.format() {
            Some(format) => format.to_string(),
            None => self.source.connector.name().to_string(),
        };
        writeln!(f, "  decode: {format} [{}]", cols.join(", "))?;
        for c in &self.source.computed {
            writeln!(f, "  computed: {} := {}", c.name, c.display)?;
        }
        if self.aggregate.is_some() || self.match_recognize.is_some() {
            writeln!(f, "  watermark: {}", self.source.event_time)?;
        }
        if let Some(m) = &self.match_recognize {
            writeln!(f, "  {m}")?;
        }
        if let Some(j) = &self.lookup_join {
            writeln!(f, "  {j}")?;
        }
        if let Some(j) = &self.interval_join {
            writeln!(f, "  {j}")?;
        }
        if let Some(j) = &self.temporal_join {
            writeln!(f, "  {j}")?;
        }
        for b in &self.union {
            let exprs: Vec<String> = b.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
            write!(f, "  union all: {} ({})", b.source.name, b.source.connector)?;
            if let Some(filter) = &b.filter {
                write!(f, " filter {}", filter.display)?;
            }
            writeln!(f, " project {}", exprs.join(", "))?;
        }
        if let Some(filter) = &self.filter {
            writeln!(f, "  filter: {}", filter.display)?;
        }
        if let Some(aggregate) = &self.aggregate {
            writeln!(f, "  {aggregate}")?;
        }
        if let Some(having) = &self.having {
            writeln!(f, "  having: {}", having.display)?;
        }
        let exprs: Vec<String> = self.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
        writeln!(f, "  project: {}", exprs.join(", "))?;
        write!(f, "  sink: {} ({}", self.sink.name, self.sink.connector)?;
        if let ConnectorOptions::Postgres(_) = self.sink.connector {
            if self.sink.primary_key.is_empty() {
                write!(f, ", copy")?;
            } else {
                write!(f, ", upsert on {}", self.sink.primary_key.join(", "))?;
            }
        }
        if let (ConnectorOptions::Kafka(_), false) = (&self.sink.connector, self.sink.key.is_empty()) {
            write!(f, ", key {}", self.sink.key.join(", "))?;
        }
        write!(f, ")")
    }
}

impl QueryPlan {
    /// What the query's operator state depends on: the plan as EXPLAIN prints it
    /// without the parts that keep no state (the query id, the source's connector
    /// options, computed columns, lookup joins, the filter, the projection, the sink).
    /// A checkpoint keeps it; restoring the checkpoint into a plan with another one is
    /// refused (a changed window, key, aggregate, pattern or input schema would read
    /// the state wrongly).
    pub fn state_fingerprint(&self) -> String {
        let skipped = ["query ", "  source:", "  computed:", "  lookup join:", "  table join:", "  filter:", "  project:", "  sink:"];
        let text = self.to_string();
        let kept: Vec<&str> = text.lines().filter(|l| !skipped.iter().any(|p| l.starts_with(p))).collect();
        kept.join("\n") + "\n"
    }
}

/// A branch of `UNION ALL` after the first: a stream, its WHERE and its SELECT list
/// (over the stream's columns, cast to the output's types).
#[derive(Debug, Clone)]
pub struct UnionBranch {
    /// The stream read.
    pub source: Arc<Relation>,
    /// WHERE.
    pub filter: Option<PlannedExpr>,
    /// One expression per output column.
    pub projection: Vec<PlannedExpr>,
}

/// What a statement does once planned.
#[derive(Debug, Clone)]
pub enum PlannedStatement {
    /// Register a stream or table (and create its topic if it names partitions and is missing).
    CreateRelation(Arc<Relation>),
    /// Start a persistent query.
    StartQuery(Arc<QueryPlan>),
    /// Nothing to do (`IF NOT EXISTS` on an existing name); the text says why.
    Noop(String),
    /// Register a model (`CREATE MODEL`), already loaded and checked.
    CreateModel(Arc<crate::catalog::Model>),
    /// Forget a model (`DROP MODEL`).
    DropModel(String),
    /// Register a view (`CREATE VIEW`), its query checked.
    CreateView(Arc<super::views::View>),
    /// Forget a view (`DROP VIEW`).
    DropView(String),
    /// Write rows to a relation (`INSERT INTO ... VALUES`): `batch` has its schema.
    InsertRows {
        /// The stream or table written.
        relation: Arc<Relation>,
        /// The rows, in the relation's columns.
        batch: arrow::record_batch::RecordBatch,
    },
}

impl fmt::Display for PlannedStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlannedStatement::CreateRelation(r) => {
                let cols: Vec<String> = r
                    .schema
                    .fields()
                    .iter()
                    .map(|c| {
                        let mut s = format!("{} {}", c.name(), sql_name(c.data_type()));
                        if r.key.len() == 1 && r.key[0] == *c.name() {
                            s.push_str(" KEY");
                        }
                        if let Some(computed) = r.computed.iter().find(|k| k.name == *c.name()) {
                            s = format!("{} AS {}", c.name(), computed.display);
                        }
                        s
                    })
                    .collect();
                write!(f, "create {} {} [{}] ({})", r.kind.to_string().to_lowercase(), r.name, cols.join(", "), r.connector)?;
                if !r.primary_key.is_empty() {
                    write!(f, " primary key ({})", r.primary_key.join(", "))?;
                }
                if let Some(w) = &r.watermark {
                    write!(f, " watermark {w}")?;
                }
                if r.connector.is_source() {
                    write!(f, " [{}]", r.event_time)?;
                }
                Ok(())
            }
            PlannedStatement::StartQuery(q) => write!(f, "{q}"),
            PlannedStatement::Noop(why) => write!(f, "noop: {why}"),
            PlannedStatement::CreateModel(m) => write!(f, "create model {} ({} {})", m.name, m.provider, m.kind),
            PlannedStatement::DropModel(name) => write!(f, "drop model {name}"),
            PlannedStatement::CreateView(v) => {
                write!(f, "create view {}", v.name)?;
                if !v.columns.is_empty() {
                    let names: Vec<String> = v.columns.iter().map(|c| c.to_string()).collect();
                    write!(f, " ({})", names.join(", "))?;
                }
                write!(f, " as {}", v.query)
            }
            PlannedStatement::DropView(name) => write!(f, "drop view {name}"),
            PlannedStatement::InsertRows { relation, batch } => write!(f, "insert {} row(s) into {}", batch.num_rows(), relation.name),
        }
    }
}

/// Plans statements against a catalog, applying DDL to it as it goes so later
/// statements see earlier ones.
pub struct Planner<'a> {
    pub(super) catalog: &'a mut Catalog,
    pub(super) state: &'a SessionState,
    pub(super) query_ids: &'a mut BTreeSet<String>,
    /// Flink's `table.exec.state.ttl` in the session (ms): a join of two streams without
    /// a time bound keeps each row this long instead of being refused.
    pub(super) state_ttl_ms: Option<u64>,
}

/// Runs `plan`, turning a panic inside it into an error on `parsed` (the statement's
/// position, the panic's message).
fn guarded<T>(parsed: &ParsedStatement, plan: impl FnOnce() -> Result<T, SqlError>) -> Result<T, SqlError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(plan)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            tracing::error!(statement = %parsed.text, panic = %message, "planning panicked");
            Err(SqlError::new(format!("internal error while planning this statement: {message}"))
                .at(Some(parsed.position))
                .hint("this is a bug in Eddy or a library it uses; the statement was not applied and nothing else is affected"))
        }
    }
}

impl<'a> Planner<'a> {
    /// A planner over `catalog` (changed by DDL) that allocates ids not in `query_ids`.
    pub fn new(catalog: &'a mut Catalog, state: &'a SessionState, query_ids: &'a mut BTreeSet<String>) -> Self {
        Planner { catalog, state, query_ids, state_ttl_ms: None }
    }

    /// With the session's `table.exec.state.ttl` ([`crate::session::Session::state_ttl_ms`]).
    pub fn with_state_ttl(mut self, ttl_ms: Option<u64>) -> Self {
        self.state_ttl_ms = ttl_ms;
        self
    }

    /// Plans one statement. DDL updates the catalog; queries get a fresh id.
    ///
    /// Errors: the statement's own, located; a panic inside a library while planning
    /// (DataFusion has had index panics on odd GROUP BYs) is caught and becomes an
    /// internal error on this statement, never the end of the process or connection.
    pub fn plan(&mut self, parsed: &ParsedStatement) -> Result<Vec<PlannedStatement>, SqlError> {
        let planned = guarded(parsed, || self.plan_unguarded(parsed))?;
        let Some(set) = parsed.statement_set else { return Ok(planned) };
        Ok(planned
            .into_iter()
            .map(|s| match s {
                PlannedStatement::StartQuery(plan) => {
                    let mut plan = Arc::unwrap_or_clone(plan);
                    plan.statement_set = Some(set);
                    PlannedStatement::StartQuery(Arc::new(plan))
                }
                other => other,
            })
            .collect())
    }

    fn plan_unguarded(&mut self, parsed: &ParsedStatement) -> Result<Vec<PlannedStatement>, SqlError> {
        match &parsed.statement {
            Statement::CreateSource(create) => self.plan_create(create, &parsed.text),
            Statement::CreateAs(create) => self.plan_create_as(create, &parsed.text),
            Statement::InsertInto(insert) => self.plan_insert(insert, &parsed.text),
            Statement::InsertValues(values) => Ok(vec![super::insert_values::plan(values, self.catalog)?]),
            Statement::CreateModel(create) => self.plan_create_model(create),
            Statement::DropModel { name, if_exists } => {
                if self.catalog.remove_model(&name.value).is_none() {
                    if *if_exists {
                        return Ok(vec![PlannedStatement::Noop(format!("model {} does not exist", name.value))]);
                    }
                    return Err(SqlError::new(format!("unknown model \"{}\"", name.value)).at(name.position));
                }
                Ok(vec![PlannedStatement::DropModel(name.value.clone())])
            }
            Statement::CreateView(create) => self.plan_create_view(create, &parsed.text),
            Statement::DropView { name, if_exists } => {
                if self.catalog.remove_view(&name.value).is_none() {
                    if *if_exists {
                        return Ok(vec![PlannedStatement::Noop(format!("view {} does not exist", name.value))]);
                    }
                    return Err(SqlError::new(format!("unknown view \"{}\"", name.value)).at(name.position));
                }
                Ok(vec![PlannedStatement::DropView(name.value.clone())])
            }
            Statement::Query(..) => Err(SqlError::new("a SELECT on its own is a transient push query, which `eddy run` does not run")
                .at(Some(parsed.position))
                .hint("write INSERT INTO sink SELECT ..., or CREATE STREAM name AS SELECT ...; run push queries in `eddy shell`")),
            other => {
                let word = parsed.text.split_whitespace().next().unwrap_or_default().to_uppercase();
                Err(SqlError::new(format!("{word} manages a running engine and is not planned: {other}"))
                    .at(Some(parsed.position))
                    .hint("run it in `eddy shell` or send it to `eddy server`"))
            }
        }
    }

    /// `CREATE VIEW`: the query is merged and planned as a push query would be (so a
    /// view that cannot be read fails here), then the view is stored as written.
    fn plan_create_view(&mut self, create: &super::ast::CreateView, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        let name = &create.name;
        if self.catalog.get(&name.value).is_some() {
            return Err(SqlError::new(format!("a stream or table named \"{}\" already exists", name.value))
                .at(name.position)
                .hint("choose another name for the view"));
        }
        if self.catalog.view(&name.value).is_some() && !create.or_replace {
            if create.if_not_exists {
                return Ok(vec![PlannedStatement::Noop(format!("view \"{}\" already exists", name.value))]);
            }
            return Err(SqlError::new(format!("view \"{}\" already exists", name.value))
                .at(name.position)
                .hint("use CREATE OR REPLACE VIEW, or IF NOT EXISTS"));
        }
        let view = Arc::new(super::views::View {
            name: name.value.clone(),
            query: create.query.as_ref().clone(),
            columns: create.columns.clone(),
            sql: sql.to_string(),
        });
        // Reading the view checks it: `SELECT * FROM view` with the view in place.
        let mut check = self.catalog.clone();
        check.insert_view(view.clone());
        let probe = super::views::expand(&view_probe(&name.value)?, &check)?;
        let planner = Planner { catalog: &mut check, state: self.state, query_ids: &mut *self.query_ids, state_ttl_ms: self.state_ttl_ms };
        planner.plan_select(&probe, &StreamClauses::default(), None)?;
        self.catalog.insert_view(view.clone());
        Ok(vec![PlannedStatement::CreateView(view)])
    }

    /// `CREATE MODEL` in a script (`eddy run`): the file is read here, from the local
    /// file system (a server reads it through its sandbox instead).
    fn plan_create_model(&mut self, create: &super::ast::CreateModel) -> Result<Vec<PlannedStatement>, SqlError> {
        let name = &create.name.value;
        if self.catalog.model(name).is_some() {
            if create.if_not_exists {
                return Ok(vec![PlannedStatement::Noop(format!("model {name} already exists"))]);
            }
            if !create.or_replace {
                return Err(SqlError::new(format!("model \"{name}\" already exists"))
                    .at(create.name.position)
                    .hint("use CREATE OR REPLACE MODEL, or IF NOT EXISTS"));
            }
        }
        let as_sql = |e: crate::error::EngineError| match e {
            crate::error::EngineError::Sql(s) => s,
            other => SqlError::new(other.to_string()).at(create.name.position),
        };
        let path = crate::handler::model_path(create).map_err(as_sql)?;
        let bytes = std::fs::read(&path).map_err(|e| {
            SqlError::new(format!("cannot read model file {path}: {e}")).at(create
                .options
                .iter()
                .find(|o| o.key == "path")
                .and_then(|o| o.value_position))
        })?;
        let model = Arc::new(crate::handler::compile_model(create, &bytes).map_err(as_sql)?);
        self.catalog.insert_model(model.clone());
        Ok(vec![PlannedStatement::CreateModel(model)])
    }

    /// Plans a transient push query (`SELECT ... EMIT CHANGES [LIMIT n]`, ksqlDB): the
    /// same pipeline as a persistent query, with a sink that hands rows to the client.
    /// Returns the plan (its sink a placeholder named after the query) and the LIMIT.
    ///
    /// Errors: no `EMIT CHANGES` (that is a pull query, [`Self::plan_pull`]), a LIMIT that is not a
    /// non-negative integer, and every error of a persistent query's SELECT.
    pub fn plan_push(
        &mut self,
        query: &Query,
        clauses: &StreamClauses,
        parsed: &ParsedStatement,
    ) -> Result<(QueryPlan, Option<usize>), SqlError> {
        guarded(parsed, || self.plan_push_unguarded(query, clauses, parsed))
    }

    fn plan_push_unguarded(
        &mut self,
        query: &Query,
        clauses: &StreamClauses,
        parsed: &ParsedStatement,
    ) -> Result<(QueryPlan, Option<usize>), SqlError> {
        if clauses.emit.is_none() {
            return Err(SqlError::new("a SELECT on a stream must end with EMIT CHANGES")
                .at(Some(parsed.position))
                .hint("add EMIT CHANGES to stream its results as they arrive (a push query); a pull query reads a TABLE"));
        }
        let mut query = super::views::expand(query, self.catalog)?;
        let limit = take_limit(&mut query, parsed)?;
        super::names::ksql_column_aliases(&mut query);
        super::functions::use_ksql_functions(&mut query);
        if let Ok(source) = check_query_source(&query, self.catalog) {
            super::comparisons::check_comparisons(&query, &source.schema)?;
        }
        let mut select = self.plan_select(&query, clauses, None)?;
        settle_session_emit(&mut select, None, clauses)?;
        let schema = select.output_schema()?;
        let id = self.next_id(&format!("transient_{}", select.source.name));
        let sink = Arc::new(Relation {
            name: id.clone(),
            kind: ObjectKind::Stream,
            schema: schema.clone(),
            key: Vec::new(),
            primary_key: Vec::new(),
            connector: ConnectorOptions::Blackhole,
            watermark: None,
            computed: Vec::new(),
            event_time: Default::default(),
            parallelism: None,
            sql: parsed.text.clone(),
            ksql_names: select.source.ksql_names,
            ltz_columns: Vec::new(),
        });
        Ok((select.into_query(id, &parsed.text, schema, sink), limit))
    }

    fn check_new_name(&self, kind: ObjectKind, name: &super::ast::Name, or_replace: bool, if_not_exists: bool) -> Result<bool, SqlError> {
        if self.catalog.view(&name.value).is_some() {
            return Err(SqlError::new(format!("a view named \"{}\" already exists", name.value))
                .at(name.position)
                .hint(format!("choose another name, or DROP VIEW {} first", name.value)));
        }
        if self.catalog.get(&name.value).is_some() && !or_replace {
            if if_not_exists {
                return Ok(false);
            }
            return Err(SqlError::new(format!("{} \"{}\" already exists", kind.to_string().to_lowercase(), name.value))
                .at(name.position)
                .hint("use CREATE OR REPLACE, or IF NOT EXISTS"));
        }
        Ok(true)
    }

    fn plan_create(&mut self, c: &CreateSource, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        if !self.check_new_name(c.kind, &c.name, c.or_replace, c.if_not_exists)? {
            return Ok(vec![PlannedStatement::Noop(format!("\"{}\" already exists", c.name))]);
        }
        let mut fields = Vec::with_capacity(c.columns.len());
        let mut key_columns: Vec<String> = Vec::new();
        let mut primary_key: Vec<String> = Vec::new();
        for col in &c.columns {
            if c.columns.iter().filter(|o| o.name.value == col.name.value).count() > 1 {
                return Err(SqlError::new(format!("column \"{}\" is declared twice", col.name)).at(col.name.position));
            }
            if col.computed.is_some() {
                continue;
            }
            let Some(declared) = &col.data_type else { continue };
            let data_type = arrow_type(declared, &col.name.value, col.type_position)?;
            if col.key {
                key_columns.push(col.name.value.clone());
            }
            if col.primary_key {
                primary_key.push(col.name.value.clone());
            }
            fields.push(Field::new(&col.name.value, data_type, !(col.not_null || col.primary_key)));
        }
        // Computed columns, planned over the physical columns, then every column in
        // declared order.
        let physical = Arc::new(Schema::new(fields.clone()));
        let mut computed = Vec::new();
        let mut all_fields = Vec::with_capacity(c.columns.len());
        for col in &c.columns {
            match &col.computed {
                None => {
                    if let Some(f) = fields.iter().find(|f| f.name() == &col.name.value) {
                        all_fields.push(f.clone());
                    }
                }
                Some(expr) => {
                    let (column, field) = self.computed_column(&col.name, expr, &physical)?;
                    computed.push(column);
                    all_fields.push(field);
                }
            }
        }
        let fields = all_fields;
        for pk in &c.primary_key {
            if !fields.iter().any(|f| f.name() == &pk.value) {
                return Err(unknown_column(&pk.value, pk.position, &fields));
            }
            if !primary_key.contains(&pk.value) {
                primary_key.push(pk.value.clone());
            }
        }
        let watermark = match &c.watermark {
            Some(w) => {
                if !fields.iter().any(|f| f.name() == &w.column.value) {
                    return Err(unknown_column(&w.column.value, w.column.position, &fields));
                }
                Some(format!("FOR {} AS {}", w.column, w.expr))
            }
            None => None,
        };
        let mut connector = parse_connector(&c.name.value, &c.options)?;
        check_format_types(&connector, &fields)?;
        let flink_key = key_fields(&c.options, &fields, key_columns.first().map(String::as_str))?;
        let mut key: Vec<String> = match flink_key {
            Some(k) => vec![k],
            None => key_columns.clone(),
        };
        if let ConnectorOptions::Kafka(k) = &mut connector {
            // ksqlDB: KEY columns (and a table's PRIMARY KEY) are the record key, not in
            // the value. Flink's 'key.fields' columns stay in the value.
            if !c.options.iter().any(|o| o.key == "key.fields") {
                if key.is_empty() && c.options.iter().any(|o| o.key == "kafka_topic") {
                    key = primary_key.clone();
                }
                if !key.is_empty() {
                    k.record_key = true;
                    // Located at the key column that does not fit (the second, for KAFKA).
                    let at = key
                        .get(1)
                        .or(key.first())
                        .and_then(|n| c.columns.iter().find(|col| &col.name.value == n))
                        .and_then(|col| col.name.position);
                    check_key_format(k.key_format, &key, &fields).map_err(|e| e.at(at))?;
                }
            }
        }
        if let ConnectorOptions::Postgres(_) = connector {
            if primary_key.is_empty() {
                primary_key.extend(key.iter().cloned());
            }
        }
        check_wrap_single_value(&connector, &fields, &key, &c.options)?;
        let event_time = plan_event_time(c.watermark.as_ref(), &c.options, &fields)?;
        let parallelism = match c.options.iter().find(|o| o.key == "parallelism") {
            None => None,
            Some(o) => Some(o.value.parse::<usize>().ok().filter(|p| (1..=256).contains(p)).ok_or_else(|| {
                SqlError::new(format!("option 'parallelism' must be a number from 1 to 256, found '{}'", o.value)).at(o.value_position)
            })?),
        };
        let relation = Arc::new(Relation {
            name: c.name.value.clone(),
            kind: c.kind,
            schema: Arc::new(Schema::new(fields)),
            key,
            primary_key,
            connector,
            watermark,
            computed,
            event_time,
            parallelism,
            sql: sql.to_string(),
            // ksqlDB's form: its topic option, and no Flink key option beside it.
            ksql_names: c.options.iter().any(|o| o.key == "kafka_topic") && !c.options.iter().any(|o| o.key == "key.fields"),
            ltz_columns: c
                .columns
                .iter()
                .filter(|col| matches!(col.data_type, Some(super::column_type::ColumnType::TimestampLtz(_))))
                .map(|col| col.name.value.clone())
                .collect(),
        });
        self.catalog.insert(relation.clone());
        Ok(vec![PlannedStatement::CreateRelation(relation)])
    }

    /// Plans a Flink computed column over the physical columns.
    fn computed_column(
        &self,
        name: &super::ast::Name,
        expr: &sqlparser::ast::Expr,
        physical: &SchemaRef,
    ) -> Result<(ComputedColumn, Field), SqlError> {
        let df_schema = DFSchema::try_from(physical.as_ref().clone()).map_err(df_error)?;
        let catalog = Catalog::default();
        let ctx = CatalogContext::new(&catalog, self.state);
        let logical = SqlToRel::new(&ctx).sql_to_expr(expr.clone(), &df_schema, &mut PlannerContext::new()).map_err(|e| {
            let err = df_error(e);
            if err.position.is_none() {
                err.at(super::event_time::expr_position(expr))
            } else {
                err
            }
        })?;
        let planned = self.physical(&name.value, logical, &df_schema)?;
        let data_type = planned.expr.return_field(physical).map_err(df_error)?.data_type().clone();
        let want = storable_type(&data_type).ok_or_else(|| {
            SqlError::new(format!("computed column \"{}\" has type {data_type}, which cannot be stored", name.value))
                .at(name.position)
                .hint("CAST it to INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR or TIMESTAMP(3)")
        })?;
        let planned = if want == data_type {
            planned
        } else {
            let cast = datafusion::physical_expr::expressions::cast(planned.expr.clone(), physical, want.clone()).map_err(df_error)?;
            PlannedExpr { expr: cast, ..planned }
        };
        let column = ComputedColumn { name: name.value.clone(), display: planned.display.clone(), expr: planned.expr };
        Ok((column, Field::new(&name.value, want, true)))
    }

    fn plan_insert(&mut self, insert: &InsertInto, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        let sink = self.catalog.get(&insert.target.value).cloned().ok_or_else(|| {
            let hint = crate::error::closest(&insert.target.value, self.catalog.names())
                .map(|c| format!("did you mean \"{c}\"?"))
                .unwrap_or_else(|| "create it first with CREATE TABLE ... WITH ('connector'=...)".to_string());
            SqlError::new(format!("unknown stream or table \"{}\"", insert.target.value)).at(insert.target.position).hint(hint)
        })?;
        // Computed columns are not written (Flink): the query gives the physical ones,
        // and a reader of the sink computes the rest.
        let sink = if sink.computed.is_empty() {
            sink
        } else {
            let mut physical = sink.as_ref().clone();
            physical.schema = physical.physical_schema();
            physical.computed.clear();
            Arc::new(physical)
        };
        let query = super::views::expand(&insert.query, self.catalog)?;
        let mut select = self.plan_select(&query, &insert.clauses, Some(&sink))?;
        settle_session_emit(&mut select, Some(&sink), &insert.clauses)?;
        if select.source.name == sink.name {
            return Err(SqlError::new(format!("\"{}\" cannot be both read and written by one query", sink.name)).at(insert.target.position));
        }
        if let Some(aggregate) = &select.aggregate {
            check_upsert_sink(aggregate, &sink, &select.key_outputs, insert.target.position)?;
        }
        let id = self.next_id(&format!("insert_{}", sink.name));
        let plan = select.into_query(id, sql, sink.schema.clone(), sink);
        Ok(vec![PlannedStatement::StartQuery(Arc::new(plan))])
    }

    fn plan_create_as(&mut self, c: &CreateAs, sql: &str) -> Result<Vec<PlannedStatement>, SqlError> {
        if !self.check_new_name(c.kind, &c.name, c.or_replace, c.if_not_exists)? {
            return Ok(vec![PlannedStatement::Noop(format!("\"{}\" already exists", c.name))]);
        }
        // ksqlDB's column names and windowed key (CREATE ... AS SELECT is ksqlDB's form).
        let expanded = super::views::expand(&c.query, self.catalog)?;
        let mut query = super::window::with_window_columns(&expanded, &c.clauses).unwrap_or(expanded);
        super::names::ksql_column_aliases(&mut query);
        super::functions::use_ksql_functions(&mut query);
        if let Ok(source) = check_query_source(&query, self.catalog) {
            super::comparisons::check_comparisons(&query, &source.schema)?;
        }
        let mut select = self.plan_select(&query, &c.clauses, None)?;
        let schema = select.output_schema()?;
        let source = &select.source;
        // The new stream inherits the source's topic settings unless WITH says otherwise
        // (ksqlDB: the sink topic is named after the stream, in the source's format).
        let mut options: Vec<WithOption> = c.options.clone();
        let has = |k: &[&str], o: &[WithOption]| o.iter().any(|x| k.contains(&x.key.as_str()));
        // ksqlDB's form unless WITH names a Flink connector: names are upper-cased as
        // ksqlDB spells them, the default topic's too (`CREATE STREAM out AS ...` writes `OUT`).
        let ksql_names = !has(&["connector", "key.fields"], &options);
        if !has(&["connector", "kafka_topic", "topic"], &options) {
            options.push(synthetic("kafka_topic", &crate::catalog::ksql_name(&c.name.value)));
        }
        let kafka_sink =
            !has(&["connector"], &options) || options.iter().any(|o| o.key == "connector" && o.value.eq_ignore_ascii_case("kafka"));
        if kafka_sink {
            if !has(&["value_format", "format"], &options) {
                let format = match source.connector.format() {
                    Some(crate::options::Format::Delimited { .. }) => "delimited",
                    _ => "json",
                };
                options.push(synthetic("value_format", format));
            }
            if let ConnectorOptions::Kafka(k) = &source.connector {
                // ksqlDB: the new stream's key format is its source's unless WITH says.
                if !has(&["key_format"], &options) && k.record_key {
                    options.push(synthetic("key_format", &k.key_format.to_string()));
                }
                if !has(&["properties.bootstrap.servers"], &options) {
                    if let Some(b) = &k.bootstrap_servers {
                        options.push(synthetic("properties.bootstrap.servers", b));
                    }
                }
            }
        }
        let mut connector = parse_connector(&c.name.value, &options)?;
        let fields_of_query: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        check_format_types(&connector, &fields_of_query)?;
        let flink_key = key_fields(&c.options, &fields_of_query, None)?;
        let source_record_key = matches!(&source.connector, ConnectorOptions::Kafka(k) if k.record_key);
        let key: Vec<String> = match &flink_key {
            Some(k) => vec![k.clone()],
            None if select.aggregate.is_some() => select.key_outputs.clone(),
            None => source.key.iter().filter(|k| schema.field_with_name(k).is_ok()).cloned().collect(),
        };
        if let ConnectorOptions::Kafka(k) = &mut connector {
            // ksqlDB writes the group key (with a windowed aggregation, the windowed key),
            // or the source's key columns it still has, as the record key, not in the value.
            let grouped = select.aggregate.is_some();
            if flink_key.is_none() && source_record_key && !grouped && select.match_recognize.is_none() {
                check_projected_keys(&query, &source.key, &key, &fields_of_query, &c.name.value).map_err(|e| e.at(c.name.position))?;
            }
            if flink_key.is_none() && !key.is_empty() && (grouped || source_record_key) {
                k.record_key = true;
                k.windowed_key = select.window_start_output.clone();
                k.session_key = matches!(
                    select.aggregate.as_ref().and_then(|a| a.window.as_ref()).map(|w| w.kind),
                    Some(super::ast::WindowKind::Session { .. })
                );
                k.window_size_ms = match select.aggregate.as_ref().and_then(|a| a.window.as_ref()).map(|w| w.kind) {
                    Some(super::ast::WindowKind::Tumbling { size } | super::ast::WindowKind::Hopping { size, .. }) => Some(size),
                    _ => None,
                };
                let plain: Vec<String> = key.iter().filter(|n| Some(*n) != select.window_start_output.as_ref()).cloned().collect();
                check_key_format(k.key_format, &plain, &fields_of_query).map_err(|e| e.at(c.name.position))?;
            }
        }
        check_wrap_single_value(&connector, &fields_of_query, &key, &options)?;
        let relation = Arc::new(Relation {
            name: c.name.value.clone(),
            kind: c.kind,
            schema: schema.clone(),
            primary_key: if matches!(connector, ConnectorOptions::Postgres(_)) { key.clone() } else { Vec::new() },
            key,
            connector,
            watermark: None,
            computed: Vec::new(),
            event_time: Default::default(),
            parallelism: None,
            sql: sql.to_string(),
            ksql_names,
            ltz_columns: Vec::new(),
        });
        settle_session_emit(&mut select, Some(&relation), &c.clauses)?;
        if let Some(aggregate) = &select.aggregate {
            check_upsert_sink(aggregate, &relation, &select.key_outputs, c.name.position)?;
        }
        self.catalog.insert(relation.clone());
        let id = self.next_id(&format!("csas_{}", relation.name));
        let plan = select.into_query(id, sql, schema, relation.clone());
        Ok(vec![PlannedStatement::CreateRelation(relation), PlannedStatement::StartQuery(Arc::new(plan))])
    }

    fn next_id(&mut self, base: &str) -> String {
        let base: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        let mut id = base.clone();
        let mut n = 2;
        while self.query_ids.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        self.query_ids.insert(id.clone());
        id
    }

    /// Plans `SELECT ... FROM source [WHERE ...] [GROUP BY ... [HAVING ...]]` (any window
    /// syntax), casting the output to `target`'s columns when given (by position, as SQL
    /// INSERT does).
    pub(super) fn plan_select(&self, query: &Query, clauses: &StreamClauses, target: Option<&Relation>) -> Result<SelectPlan, SqlError> {
        if matches!(query.body.as_ref(), sqlparser::ast::SetExpr::SetOperation { .. }) {
            return self.plan_union(query, clauses, target);
        }
        // ML_PREDICT: the table read, the model's outputs computed from its columns.
        let predicted = super::ml_predict::rewrite(query, self.catalog)?;
        let (query, models) = match &predicted {
            Some((q, model)) => (q, vec![model.clone()]),
            None => (query, Vec::new()),
        };
        // MATCH_RECOGNIZE: the outer query reads the operator's output under its alias.
        let recognized = super::match_recognize::plan(query, clauses, self.catalog, self.state)?;
        let mut base = self.catalog.clone();
        let query = match &recognized {
            Some(r) => {
                base.insert(r.output.clone());
                &r.query
            }
            None => query,
        };
        // A lookup join: the stream read, a PostgreSQL table looked up per row.
        let joined = match &recognized {
            Some(_) => None,
            None => super::lookup_join::joined_relations(query, &base, clauses.join_within.as_ref())?,
        };
        if let (Some((_, at)), None) = (&clauses.join_within, &joined) {
            return Err(SqlError::new("WITHIN belongs to a join of two streams")
                .at(*at)
                .hint("write FROM a JOIN b WITHIN 1 HOUR ON a.id = b.id, or drop WITHIN"));
        }
        let temporal = match (&clauses.system_time, &joined) {
            (Some((parts, _)), Some(j)) => super::temporal_join::event_time_column(parts, j),
            _ => None,
        };
        let time_column = match (&clauses.system_time, &joined) {
            (Some(_), Some(_)) if temporal.is_some() => None,
            (Some((parts, position)), Some(j)) => Some(super::lookup_join::check_time_column(parts, *position, j)?),
            (Some((_, position)), None) => {
                return Err(SqlError::new("FOR SYSTEM_TIME AS OF belongs to the table of a lookup join")
                    .at(*position)
                    .hint("write FROM stream AS s JOIN table FOR SYSTEM_TIME AS OF s.proc_time AS t ON s.key = t.key"))
            }
            (None, _) => None,
        };
        let normalized = normalize(query, clauses, &base)?;
        let query = &normalized.query;
        if let (Some(j), true) = (&joined, normalized.window.is_some() || normalized.emit == Emit::Final) {
            return Err(SqlError::new(format!("a window over the lookup join with \"{}\" is not supported yet", j.table.name))
                .hint("write the joined rows to a stream (CREATE STREAM ... AS SELECT ... JOIN ...), and aggregate that"));
        }
        // Plan against the source plus the window columns when windowed.
        let mut planning = base.clone();
        let declared_source = check_query_source(query, &base)?;
        // Aggregating a TABLE: over its changelog, the aggregates weighted by `__weight`.
        let weighted;
        let grouped = matches!(query.body.as_ref(), sqlparser::ast::SetExpr::Select(s)
            if matches!(&s.group_by, sqlparser::ast::GroupByExpr::Expressions(e, _) if !e.is_empty()));
        let query = if recognized.is_none() && grouped && declared_source.is_changelog() {
            if normalized.window.is_some() {
                return Err(SqlError::new("Windowing not supported for table aggregations.")
                    .hint(format!("aggregate a stream over the topic of \"{}\" to window it", declared_source.name)));
            }
            let functions = self.state.aggregate_functions();
            weighted = super::retraction::weighted_aggregates(query, &|name| functions.contains_key(name))?;
            let mut relation = declared_source.as_ref().clone();
            let mut fields: Vec<Field> = relation.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(super::retraction::WEIGHT, DataType::Int64, false));
            relation.schema = Arc::new(Schema::new(fields));
            planning.insert(Arc::new(relation));
            &weighted
        } else {
            query
        };
        if normalized.window.is_some() {
            let mut relation = declared_source.as_ref().clone();
            let mut fields: Vec<Field> = relation.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            for name in [WINDOW_START, WINDOW_END] {
                if fields.iter().any(|f| f.name() == name) {
                    return Err(SqlError::new(format!("\"{}\" has a column named {name}, which a window adds", relation.name))
                        .hint("rename the column"));
                }
                fields.push(Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, None), false));
            }
            relation.schema = Arc::new(Schema::new(fields));
            planning.insert(Arc::new(relation));
        }
        let select = match (&joined, query.body.as_ref()) {
            (Some(_), sqlparser::ast::SetExpr::Select(select)) => select.as_ref(),
            _ => check_query(query, &planning)?.0,
        };
        let source = match &recognized {
            Some(r) => r.source.clone(),
            None => declared_source,
        };
        if !source.connector.is_source() {
            return Err(SqlError::new(format!("\"{}\" is a {} table: it can be written, not read", source.name, source.connector.name()))
                .hint("read from a Kafka stream or a file"));
        }
        // A windowed table's record keys end with the window bounds: read as a plain key
        // they would give wrong key values, so it is refused until windowed keys are read.
        if matches!(&source.connector, ConnectorOptions::Kafka(k) if k.windowed_key.is_some()) {
            return Err(SqlError::new(format!("\"{}\" is a windowed table: reading it as a source is not supported", source.name))
                .hint("its record keys carry the window bounds; read the stream it aggregates instead"));
        }
        let unsupported = |what: &str, hint: &str| {
            Err(SqlError::new(format!("{what} is not supported in a persistent query yet")).hint(hint.to_string()))
        };
        if select.distinct.is_some() {
            return unsupported("SELECT DISTINCT", "use GROUP BY");
        }
        if query.order_by.is_some() || query.limit_clause.is_some() {
            return unsupported("ORDER BY / LIMIT", "a stream has no end to sort or limit; remove it");
        }
        let ctx = CatalogContext::new(&planning, self.state);
        let plan =
            SqlToRel::new(&ctx).sql_statement_to_plan(sqlparser::ast::Statement::Query(Box::new(query.clone()))).map_err(df_error)?;
        let plan = TypeCoercion::new().analyze(plan, self.state.config_options()).map_err(df_error)?;
        let LogicalPlan::Projection(projection) = plan else {
            return Err(SqlError::new(format!("unsupported query plan: {}", plan.display())));
        };
        let mut node = projection.input.as_ref();
        let mut having = None;
        let mut aggregate_node = None;
        let mut predicate = None;
        let mut join_node = None;
        loop {
            match node {
                LogicalPlan::Filter(f) if aggregate_node.is_none() && matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) => {
                    having = Some(f.predicate.clone());
                    node = f.input.as_ref();
                }
                LogicalPlan::Aggregate(a) if aggregate_node.is_none() => {
                    aggregate_node = Some(a);
                    node = a.input.as_ref();
                }
                LogicalPlan::Filter(f) => {
                    predicate = Some((f.predicate.clone(), f.input.schema().clone()));
                    node = f.input.as_ref();
                }
                LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
                LogicalPlan::TableScan(_) => break,
                LogicalPlan::Join(j) if joined.is_some() && join_node.is_none() => {
                    join_node = Some(j);
                    break;
                }
                other => {
                    return Err(SqlError::new(format!("{} is not supported in a persistent query yet", other.display()))
                        .hint("a persistent query is SELECT ... FROM one stream [WHERE ...] [GROUP BY ...]"))
                }
            }
        }
        let filter = match predicate {
            Some((expr, schema)) => {
                reject_window_columns(&expr, "WHERE")?;
                Some(self.physical("where", expr, &schema)?)
            }
            None => None,
        };
        let mut interval_join = None;
        let mut temporal_join = None;
        let lookup_join = match (join_node, joined) {
            (Some(j), Some(joined)) if temporal.is_some() => {
                if aggregate_node.is_some() {
                    return Err(SqlError::new(format!(
                        "GROUP BY over the temporal join with \"{}\" is not supported yet",
                        joined.table.name
                    ))
                    .hint("write the joined rows to a stream (CREATE STREAM ... AS SELECT ... JOIN ...), and aggregate that"));
                }
                let time = temporal.clone().unwrap_or_default();
                let lookup = self.plan_lookup_join(j, joined, None)?;
                let table_keys = lookup
                    .table_keys
                    .iter()
                    .map(|k| {
                        let column = j
                            .right
                            .schema()
                            .columns()
                            .into_iter()
                            .find(|c| &c.name == k)
                            .ok_or_else(|| SqlError::new(format!("no column {k}")))?;
                        self.physical(k, Expr::Column(column), j.right.schema())
                    })
                    .collect::<Result<Vec<_>, SqlError>>()?;
                temporal_join = Some(super::temporal_join::TemporalJoinPlan {
                    table: lookup.table,
                    left_outer: lookup.kind == super::lookup_join::LookupJoinKind::Left,
                    stream_keys: lookup.stream_keys,
                    table_keys,
                    condition: lookup.condition,
                    time_column: time,
                });
                None
            }
            (Some(j), Some(joined)) if joined.streams.is_some() => {
                if aggregate_node.is_some() {
                    return Err(SqlError::new(format!("GROUP BY over the join with \"{}\" is not supported yet", joined.table.name))
                        .hint("write the joined rows to a stream (CREATE STREAM ... AS SELECT ... JOIN ...), and aggregate that"));
                }
                interval_join = Some(self.plan_interval_join(j, joined)?);
                None
            }
            (Some(j), Some(joined)) => {
                if aggregate_node.is_some() {
                    return Err(SqlError::new(format!(
                        "GROUP BY over the lookup join with \"{}\" is not supported yet",
                        joined.table.name
                    ))
                    .hint("write the joined rows to a stream (CREATE STREAM ... AS SELECT ... JOIN ...), and aggregate that"));
                }
                Some(self.plan_lookup_join(j, joined, time_column)?)
            }
            _ => None,
        };
        if aggregate_node.is_some() && recognized.is_some() {
            return Err(SqlError::new("GROUP BY over the rows of MATCH_RECOGNIZE is not supported")
                .hint("aggregate inside the match with MEASURES (COUNT(A.*), SUM(B.amount), ...), or write the matches to a stream and aggregate that"));
        }
        if aggregate_node.is_none() && normalized.window.is_some() {
            return Err(SqlError::new("a window needs an aggregation")
                .hint("add GROUP BY window_start, window_end (and keys) with aggregates such as COUNT(*)"));
        }
        let (aggregate, projection_input, key_columns) = match aggregate_node {
            Some(a) => {
                let (aggregate, canonical, key_columns) = self.plan_aggregate(a, &normalized)?;
                (Some(aggregate), canonical, key_columns)
            }
            None => (None, projection.input.schema().as_ref().clone(), Vec::new()),
        };
        let having = match having {
            Some(expr) => Some(self.physical("having", expr, &projection_input)?),
            None => None,
        };
        let out_fields = projection.schema.fields();
        if let Some(target) = target {
            let want = target.schema.fields().len();
            if projection.expr.len() != want {
                let names: Vec<&str> = target.schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(SqlError::new(format!(
                    "\"{}\" has {want} columns but the query returns {}",
                    target.name,
                    projection.expr.len()
                ))
                .hint(format!("select exactly these, in order: {}", names.join(", "))));
            }
        }
        let mut exprs = Vec::with_capacity(projection.expr.len());
        let mut key_outputs = Vec::new();
        let mut window_start_output = None;
        for (i, expr) in projection.expr.iter().enumerate() {
            let expr = expr.clone().unalias();
            let have = out_fields[i].data_type().clone();
            let (name, want) = match target {
                Some(t) => {
                    let f = t.schema.field(i);
                    (f.name().clone(), f.data_type().clone())
                }
                None => {
                    let name = out_fields[i].name().clone();
                    let want = storable_type(&have).ok_or_else(|| {
                        SqlError::new(format!("column \"{name}\" has type {have}, which sinks cannot store"))
                            .hint("CAST it to INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR or TIMESTAMP(3)")
                    })?;
                    (name, want)
                }
            };
            if let Expr::Column(c) = &expr {
                if key_columns.iter().any(|k| k == &c.name) {
                    key_outputs.push(name.clone());
                    if aggregate.as_ref().is_some_and(|a| a.window.is_some()) && c.name == WINDOW_START {
                        window_start_output = Some(name.clone());
                    }
                }
            }
            let expr = if have == want {
                expr
            } else if implicit_cast(&have, &want) {
                Expr::Cast(Cast::new(Box::new(expr), want.clone()))
            } else {
                return Err(SqlError::new(format!("column \"{name}\" is {} but the query gives {}", sql_name(&want), sql_name(&have)))
                    .hint(format!("CAST the expression to {}", sql_name(&want))));
            };
            if aggregate.is_none() {
                reject_window_columns(&expr, "SELECT")?;
            }
            exprs.push(self.physical(&name, expr, &projection_input)?);
        }
        let projection_input = Arc::new(projection_input.as_arrow().clone());
        let match_recognize = recognized.map(|r| r.plan);
        if target.is_none() {
            let mut seen = BTreeSet::new();
            if let Some(dup) = exprs.iter().find(|e| !seen.insert(e.name.as_str())) {
                return Err(SqlError::new(format!("the query returns two columns named \"{}\"", dup.name))
                    .hint(format!("rename one of them: ... AS other_{}", dup.name)));
            }
        }
        Ok(SelectPlan {
            models,
            source,
            filter,
            match_recognize,
            lookup_join,
            interval_join,
            union: Vec::new(),
            temporal_join,
            aggregate,
            having,
            projection: exprs,
            projection_input,
            key_outputs,
            window_start_output,
        })
    }

    /// Lowers DataFusion's `Aggregate` node: group keys and aggregate functions become
    /// physical expressions over the input; the window columns become the window
    /// operator's. Returns the plan, its output schema for HAVING and SELECT (keys, window
    /// columns, aggregates), and the names of the output's key columns (group keys and
    /// `window_start`).
    fn plan_aggregate(
        &self,
        a: &datafusion::logical_expr::Aggregate,
        normalized: &super::window::Normalized,
    ) -> Result<(AggregatePlan, DFSchema, Vec<String>), SqlError> {
        let input_schema = a.input.schema();
        let physical_input: SchemaRef = Arc::new(input_schema.as_arrow().clone());
        let windowed = normalized.window.is_some();
        let group_exprs = a.group_expr.clone();
        let mut keys = Vec::new();
        let mut key_positions = Vec::new();
        let mut window_positions = [None, None];
        for (i, e) in group_exprs.iter().enumerate() {
            match e {
                Expr::Column(c) if windowed && c.name == WINDOW_START => window_positions[0] = Some(i),
                Expr::Column(c) if windowed && c.name == WINDOW_END => window_positions[1] = Some(i),
                Expr::GroupingSet(_) => {
                    return Err(SqlError::new("GROUPING SETS, CUBE and ROLLUP are not supported").hint("group by plain columns"))
                }
                other => {
                    reject_window_columns(other, "GROUP BY")?;
                    let name = a.schema.field(i).name().clone();
                    keys.push(self.physical(&name, other.clone(), input_schema)?);
                    key_positions.push(i);
                }
            }
        }
        let [Some(start_pos), Some(end_pos)] = window_positions else {
            if windowed {
                return Err(SqlError::new("a windowed aggregation groups by window_start and window_end")
                    .hint("add GROUP BY window_start, window_end (Flink) to the keys"));
            }
            return self.finish_aggregate(a, normalized, keys, key_positions, None, &physical_input);
        };
        self.finish_aggregate(a, normalized, keys, key_positions, Some((start_pos, end_pos)), &physical_input)
    }

    fn finish_aggregate(
        &self,
        a: &datafusion::logical_expr::Aggregate,
        normalized: &super::window::Normalized,
        keys: Vec<PlannedExpr>,
        key_positions: Vec<usize>,
        window_positions: Option<(usize, usize)>,
        physical_input: &SchemaRef,
    ) -> Result<(AggregatePlan, DFSchema, Vec<String>), SqlError> {
        let input_schema = a.input.schema();
        let props = self.state.execution_props();
        let planning_ctx = PhysicalPlanningContext::default();
        let mut aggregates = Vec::with_capacity(a.aggr_expr.len());
        for e in &a.aggr_expr {
            reject_window_columns(e, "an aggregate")?;
            let name = e.schema_name().to_string();
            let lowered = LoweredAggregateBuilder::new(e, input_schema, physical_input, props, &planning_ctx)
                .with_name(name.clone())
                .build()
                .map_err(df_error)?;
            aggregates.push(PlannedAggregate { name, display: e.to_string(), function: lowered.aggregate, filter: lowered.filter });
        }
        // Canonical order: keys, window_start, window_end, aggregates.
        let n_groups = a.group_expr.len();
        let mut order: Vec<usize> = key_positions.clone();
        if let Some((s, e)) = window_positions {
            order.push(s);
            order.push(e);
        }
        order.extend(n_groups..a.schema.fields().len());
        let qualified: Vec<(Option<TableReference>, Arc<Field>)> = order
            .iter()
            .map(|&i| {
                let (q, f) = a.schema.qualified_field(i);
                (q.cloned(), f.clone())
            })
            .collect();
        let canonical = DFSchema::new_with_metadata(qualified, Default::default()).map_err(df_error)?;
        let fields: Vec<Field> = canonical
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                // Window bounds are never NULL; everything else may be.
                let is_window = window_positions.is_some() && (i == keys.len() || i == keys.len() + 1);
                f.as_ref().clone().with_nullable(!is_window)
            })
            .collect();
        let mut key_columns: Vec<String> = key_positions.iter().map(|&i| a.schema.field(i).name().clone()).collect();
        if window_positions.is_some() {
            key_columns.push(WINDOW_START.to_string());
        }
        let plan = AggregatePlan {
            window: normalized.window.clone(),
            emit: normalized.emit,
            keys,
            aggregates,
            output_schema: Arc::new(Schema::new(fields)),
        };
        Ok((plan, canonical, key_columns))
    }

    /// Lowers DataFusion's join of a stream with a PostgreSQL table: the lookup keys
    /// over the stream (cast to the table columns' types), the rest of the ON clause
    /// over the joined row.
    fn plan_lookup_join(
        &self,
        join: &datafusion::logical_expr::Join,
        joined: super::lookup_join::JoinedRelations,
        time_column: Option<String>,
    ) -> Result<super::lookup_join::LookupJoinPlan, SqlError> {
        use super::lookup_join::{LookupJoinKind, LookupJoinPlan};
        let (keys, rest) = super::lookup_join::lower(join, &joined.table.name)?;
        let mut stream_keys = Vec::with_capacity(keys.len());
        let mut table_keys = Vec::with_capacity(keys.len());
        for (expr, column) in keys {
            let expr = join_key(join, expr, &column, &joined.table.name)?;
            stream_keys.push(self.physical(&column.name, expr, join.left.schema())?);
            table_keys.push(column.name.clone());
        }
        // A Kafka table is kept by its primary key: the join must name exactly that key.
        if joined.table.is_changelog() {
            let mut named = table_keys.clone();
            named.sort();
            named.dedup();
            let mut key = joined.table.key.clone();
            key.sort();
            if named.len() != table_keys.len() || named != key {
                let key: Vec<String> = joined.table.key.iter().map(|k| joined.table.display_name(k)).collect();
                return Err(SqlError::new(format!(
                    "a join with the table \"{}\" must be on its primary key ({}), not on {}",
                    joined.table.display_name(&joined.table.name),
                    key.join(", "),
                    table_keys.iter().map(|k| joined.table.display_name(k)).collect::<Vec<_>>().join(", ")
                ))
                .hint("join on the table's key, or re-key the table with a CREATE TABLE ... AS SELECT ... GROUP BY"));
            }
        }
        let condition = match rest {
            Some(rest) => Some(self.physical("on", rest, join.schema.as_ref())?),
            None => None,
        };
        let kind = match join.join_type {
            datafusion::logical_expr::JoinType::Left => LookupJoinKind::Left,
            _ => joined.kind,
        };
        Ok(LookupJoinPlan { table: joined.table, kind, stream_keys, table_keys, condition, time_column })
    }

    /// `SELECT ... FROM a [WHERE ...] UNION ALL SELECT ... FROM b [WHERE ...] ...`: each
    /// branch planned as a SELECT of its own, the first as the plan, the others as its
    /// [`UnionBranch`]es.
    ///
    /// Errors: UNION without ALL, INTERSECT or EXCEPT; a branch that aggregates, joins or
    /// uses MATCH_RECOGNIZE, reads a table or a stream another branch reads; branches
    /// whose columns differ in number or type.
    fn plan_union(&self, query: &Query, clauses: &StreamClauses, target: Option<&Relation>) -> Result<SelectPlan, SqlError> {
        use sqlparser::ast::{SetExpr, SetOperator, SetQuantifier};
        fn branches<'q>(body: &'q SetExpr, out: &mut Vec<&'q SetExpr>) -> Result<(), SqlError> {
            match body {
                SetExpr::SetOperation { op: SetOperator::Union, set_quantifier: SetQuantifier::All, left, right } => {
                    branches(left, out)?;
                    branches(right, out)
                }
                SetExpr::SetOperation { op, set_quantifier, .. } => {
                    Err(SqlError::new(format!("{op} {set_quantifier} is not supported").replace("  ", " ").trim().to_string())
                        .hint("UNION ALL is: a stream has no end, so UNION's duplicate removal, INTERSECT and EXCEPT would keep every row"))
                }
                SetExpr::Query(q) => branches(&q.body, out),
                other => {
                    out.push(other);
                    Ok(())
                }
            }
        }
        let mut bodies = Vec::new();
        branches(&query.body, &mut bodies)?;
        let mut plans = Vec::with_capacity(bodies.len());
        for body in bodies {
            let mut q = query.clone();
            *q.body = body.clone();
            q.order_by = None;
            q.limit_clause = None;
            let plan = self.plan_select(&q, clauses, target)?;
            if plan.aggregate.is_some() || plan.match_recognize.is_some() || plan.lookup_join.is_some() || plan.interval_join.is_some() {
                return Err(SqlError::new("a branch of UNION ALL reads, filters and projects one stream")
                    .hint("aggregate, join or match in a query of its own (CREATE STREAM ... AS SELECT), and union its stream"));
            }
            if !matches!(plan.source.connector, ConnectorOptions::Kafka(_)) || plan.source.is_changelog() {
                return Err(SqlError::new(format!("UNION ALL reads Kafka streams: \"{}\" is not one", plan.source.name)));
            }
            if plans.iter().any(|p: &SelectPlan| p.source.name == plan.source.name) {
                return Err(SqlError::new(format!("\"{}\" is read by two branches of UNION ALL", plan.source.name))
                    .hint("read it once: combine the two branches' WHERE clauses with OR"));
            }
            plans.push(plan);
        }
        let first = plans.remove(0);
        let schema = first.output_schema()?;
        let mut union = Vec::with_capacity(plans.len());
        for (i, plan) in plans.into_iter().enumerate() {
            let theirs = plan.output_schema()?;
            let same = theirs.fields().len() == schema.fields().len()
                && theirs.fields().iter().zip(schema.fields()).all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                let cols = |s: &arrow::datatypes::Schema| {
                    s.fields().iter().map(|f| format!("{} {}", f.name(), sql_name(f.data_type()))).collect::<Vec<_>>().join(", ")
                };
                return Err(SqlError::new(format!(
                    "the branches of UNION ALL return different columns: ({}) and ({})",
                    cols(&schema),
                    cols(&theirs)
                ))
                .hint(format!("make branch {} return the first branch's columns, CASTing where the types differ", i + 2)));
            }
            union.push(UnionBranch { source: plan.source, filter: plan.filter, projection: plan.projection });
        }
        Ok(SelectPlan { union, ..first })
    }

    /// Lowers a join of two streams into an interval join: the equalities of the ON
    /// clause become keys (the left's cast to the right's types), the bound comes from
    /// WITHIN or the ON clause ([`super::interval_join::bound`]), the rest is checked on
    /// each pair.
    fn plan_interval_join(
        &self,
        join: &datafusion::logical_expr::Join,
        joined: super::lookup_join::JoinedRelations,
    ) -> Result<super::interval_join::IntervalJoinPlan, SqlError> {
        let Some((kind, within)) = joined.streams else {
            return Err(SqlError::new("not a join of two streams"));
        };
        let (keys, rest) = super::lookup_join::lower(join, &joined.table.name)?;
        let (before_ms, after_ms, grace_ms) = super::interval_join::bound(
            within,
            rest.as_ref(),
            &joined.stream,
            &joined.table,
            (join.left.schema().as_ref(), join.right.schema().as_ref()),
            self.state_ttl_ms,
        )?;
        let state_ttl_ms = (before_ms == super::interval_join::UNBOUNDED).then_some(self.state_ttl_ms).flatten();
        if let (Some(_), false) = (state_ttl_ms, kind == crate::operators::IntervalJoinKind::Inner) {
            return Err(SqlError::new(format!(
                "a {kind} join of two streams without a time bound (\"{}\" with \"{}\") updates the rows it wrote, which an append-only sink cannot take",
                joined.stream.name, joined.table.name
            ))
            .hint("add a time bound (an interval join emits its padded rows once), or join with INNER JOIN"));
        }
        let mut left_keys = Vec::with_capacity(keys.len());
        let mut right_keys = Vec::with_capacity(keys.len());
        for (expr, column) in keys {
            let expr = join_key(join, expr, &column, &joined.table.name)?;
            left_keys.push(self.physical(&column.name, expr, join.left.schema())?);
            right_keys.push(self.physical(&column.name, Expr::Column(column.clone()), join.right.schema())?);
        }
        let condition = match rest {
            Some(rest) => Some(self.physical("on", rest, join.schema.as_ref())?),
            None => None,
        };
        Ok(super::interval_join::IntervalJoinPlan {
            right: joined.table,
            kind,
            left_keys,
            right_keys,
            condition,
            before_ms,
            after_ms,
            grace_ms,
            state_ttl_ms: state_ttl_ms.map(|t| t as i64),
        })
    }

    fn physical(&self, name: &str, expr: Expr, schema: &DFSchema) -> Result<PlannedExpr, SqlError> {
        let display = expr.to_string();
        let expr = simplified(expr, schema)?;
        let expr = self.state.create_physical_expr(expr, schema).map_err(df_error)?;
        Ok(PlannedExpr { name: name.to_string(), display, expr })
    }
}

/// A join key's left side `expr`, cast to the type of the right side's `column` (of
/// `table`).
///
/// Errors: the types cannot be cast, with the CAST to write.
fn join_key(join: &datafusion::logical_expr::Join, expr: Expr, column: &datafusion::common::Column, table: &str) -> Result<Expr, SqlError> {
    let want = join.right.schema().field_from_column(column).map_err(df_error)?.data_type().clone();
    let have = expr.to_field(join.left.schema()).map_err(df_error)?.1.data_type().clone();
    if have == want {
        Ok(expr)
    } else if arrow::compute::can_cast_types(&have, &want) {
        Ok(Expr::Cast(Cast::new(Box::new(expr), want)))
    } else {
        Err(SqlError::new(format!("{expr} is {} but {table}.{} is {}", sql_name(&have), column.name, sql_name(&want)))
            .hint(format!("CAST the stream's side to {}", sql_name(&want))))
    }
}

/// Flink's `'key.fields'`: the column written as the Kafka record key (one column).
fn key_fields(options: &[WithOption], fields: &[Field], declared: Option<&str>) -> Result<Option<String>, SqlError> {
    let Some(o) = options.iter().find(|o| o.key == "key.fields") else { return Ok(None) };
    let name = o.value.trim().to_lowercase();
    if name.contains(';') || name.contains(',') {
        return Err(SqlError::new(format!("'key.fields' names one column, found '{}'", o.value))
            .at(o.value_position)
            .hint("Eddy keys records by one column"));
    }
    if !fields.iter().any(|f| f.name() == &name) {
        return Err(unknown_column(&name, o.value_position, fields));
    }
    if let Some(k) = declared {
        if k != name {
            return Err(SqlError::new(format!("'key.fields' names \"{name}\" but \"{k}\" is declared KEY"))
                .at(o.value_position)
                .hint("declare the key once"));
        }
    }
    Ok(Some(name))
}

/// `expr` with the functions DataFusion only runs after its optimizer rewrote them
/// (`COALESCE`, `NVL`, `NVL2`, `IFNULL` become CASE): simplified as the optimizer would.
/// Other expressions are left as planned (the simplifier would fold stable functions
/// such as `NOW()` into the planning time, which a query that runs for days must not).
///
/// Errors: the simplifier fails.
pub(super) fn simplified(expr: Expr, schema: &DFSchema) -> Result<Expr, SqlError> {
    use datafusion::common::tree_node::TreeNode;
    let needs = expr
        .exists(|e| {
            Ok(matches!(e, Expr::ScalarFunction(f) if matches!(f.name().to_lowercase().as_str(), "coalesce" | "nvl" | "nvl2" | "ifnull")))
        })
        .unwrap_or(false);
    if !needs {
        return Ok(expr);
    }
    let context = datafusion::logical_expr::simplify::SimplifyContext::builder().with_schema(Arc::new(schema.clone())).build();
    datafusion::optimizer::simplify_expressions::ExprSimplifier::new(context).simplify(expr).map_err(df_error)
}

/// `SELECT * FROM "name"`, parsed.
fn view_probe(name: &str) -> Result<Query, SqlError> {
    let sql = format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""));
    sqlparser::parser::Parser::new(&sqlparser::dialect::GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .map_err(|e| SqlError::new(format!("cannot read the view \"{name}\": {e}")))
}

/// Takes `LIMIT n` off `query` (a push or pull query's row limit).
///
/// Errors: a LIMIT that is not a non-negative integer, or an OFFSET or LIMIT BY.
pub(super) fn take_limit(query: &mut Query, parsed: &ParsedStatement) -> Result<Option<usize>, SqlError> {
    let limit = match query.limit_clause.take() {
        None => None,
        Some(sqlparser::ast::LimitClause::LimitOffset { limit: Some(expr), offset: None, limit_by }) if limit_by.is_empty() => {
            match &expr {
                sqlparser::ast::Expr::Value(v) => match &v.value {
                    sqlparser::ast::Value::Number(n, _) => Some(n.parse::<usize>().map_err(|_| {
                        SqlError::new(format!("LIMIT must be a non-negative integer, found {n}")).at(Position::from_location(v.span.start))
                    })?),
                    other => {
                        return Err(SqlError::new(format!("LIMIT must be a non-negative integer, found {other}"))
                            .at(Position::from_location(v.span.start)))
                    }
                },
                other => {
                    return Err(SqlError::new(format!("LIMIT must be a non-negative integer, found {other}")).at(Some(parsed.position)))
                }
            }
        }
        Some(other) => {
            return Err(SqlError::new(format!("unsupported limit clause: {other}"))
                .at(Some(parsed.position))
                .hint("a query takes LIMIT n only"))
        }
    };
    Ok(limit)
}

/// A planned SELECT.
pub(super) struct SelectPlan {
    pub(super) source: Arc<Relation>,
    pub(super) models: Vec<String>,
    pub(super) filter: Option<PlannedExpr>,
    pub(super) match_recognize: Option<MatchRecognizePlan>,
    pub(super) aggregate: Option<AggregatePlan>,
    pub(super) having: Option<PlannedExpr>,
    pub(super) projection: Vec<PlannedExpr>,
    /// The schema `projection` evaluates over.
    pub(super) projection_input: SchemaRef,
    /// Output columns that carry the group keys and `window_start` (the upsert key).
    pub(super) key_outputs: Vec<String>,
    /// A lookup join between the source and the filter.
    pub(super) lookup_join: Option<super::lookup_join::LookupJoinPlan>,
    /// An interval join with a second stream between the source and the filter.
    pub(super) interval_join: Option<super::interval_join::IntervalJoinPlan>,
    /// The other branches of UNION ALL.
    pub(super) union: Vec<UnionBranch>,
    /// An event-time temporal join between the source and the filter.
    pub(super) temporal_join: Option<super::temporal_join::TemporalJoinPlan>,
    /// The output column that carries `window_start`, if selected.
    pub(super) window_start_output: Option<String>,
}

impl SelectPlan {
    /// The schema of the rows the SELECT list produces (every column nullable), for a
    /// sink created from the query (`CREATE ... AS SELECT`, a push query's client).
    pub(super) fn output_schema(&self) -> Result<SchemaRef, SqlError> {
        let fields: Vec<Field> = self
            .projection
            .iter()
            .map(|p| p.expr.return_field(&self.projection_input).map(|f| Field::new(&p.name, f.data_type().clone(), true)))
            .collect::<Result<_, _>>()
            .map_err(df_error)?;
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The persistent query `id` running this SELECT into `sink` (rows of `output_schema`).
    fn into_query(self, id: String, sql: &str, output_schema: SchemaRef, sink: Arc<Relation>) -> QueryPlan {
        QueryPlan {
            id,
            sql: sql.to_string(),
            source: self.source,
            models: self.models,
            filter: self.filter,
            match_recognize: self.match_recognize,
            lookup_join: self.lookup_join,
            interval_join: self.interval_join,
            union: self.union,
            temporal_join: self.temporal_join,
            aggregate: self.aggregate,
            having: self.having,
            projection: self.projection,
            output_schema,
            sink,
            checkpoint_interval_ms: None,
            one_phase_aggregation: false,
            statement_set: None,
        }
    }
}

/// The relation a query reads, for building the planning catalog (names are checked
/// again, fully, by [`check_query`]).
pub(super) fn check_query_source(query: &Query, catalog: &Catalog) -> Result<Arc<Relation>, SqlError> {
    use sqlparser::ast::{SetExpr, TableFactor};
    if let SetExpr::Select(select) = query.body.as_ref() {
        if let Some(TableFactor::Table { name, .. }) = select.from.first().map(|f| &f.relation) {
            let name = super::parser::object_name(name)?;
            if let Some(r) = catalog.get(&name.value) {
                return Ok(r.clone());
            }
        }
    }
    check_query(query, catalog).map(|(_, r)| r)
}

/// Window columns exist only on the aggregation's output; anywhere else they are an error.
fn reject_window_columns(expr: &Expr, clause: &str) -> Result<(), SqlError> {
    if let Some(c) = expr.column_refs().into_iter().find(|c| c.name == WINDOW_START || c.name == WINDOW_END) {
        return Err(SqlError::new(format!("{} cannot be used in {clause}", c.name))
            .hint("window_start and window_end are results of the window: use them in the SELECT list or HAVING"));
    }
    Ok(())
}

/// Session windows with EMIT CHANGES retract the sessions a merge replaces with
/// tombstones (ksqlDB), which only a keyed Kafka topic can hold. Elsewhere (`sink`
/// `None`: a push query) an implied EMIT CHANGES (ksqlDB syntax's default) is EMIT
/// FINAL, and a written one is refused.
///
/// Errors: `EMIT CHANGES` written for sessions whose sink cannot take tombstones.
fn settle_session_emit(select: &mut SelectPlan, sink: Option<&Relation>, clauses: &StreamClauses) -> Result<(), SqlError> {
    let Some(aggregate) = select.aggregate.as_mut() else { return Ok(()) };
    let session = matches!(aggregate.window.as_ref().map(|w| w.kind), Some(super::ast::WindowKind::Session { .. }));
    if !session || aggregate.emit != Emit::Changes {
        return Ok(());
    }
    let keyed_kafka = sink.is_some_and(|s| matches!(&s.connector, ConnectorOptions::Kafka(k) if k.record_key));
    if keyed_kafka {
        return Ok(());
    }
    match clauses.emit {
        None => {
            aggregate.emit = Emit::Final;
            Ok(())
        }
        Some((_, position)) => Err(SqlError::new("EMIT CHANGES of session windows needs a keyed Kafka table to write to")
            .at(position)
            .hint("a session that a merge replaces is deleted with a tombstone: write to a ksqlDB table (kafka_topic), or use EMIT FINAL")),
    }
}

/// An EMIT CHANGES aggregation updates rows: its sink needs a key to upsert on
/// (Flink refuses update changes into an append-only sink the same way).
fn check_upsert_sink(
    aggregate: &AggregatePlan,
    sink: &Relation,
    key_outputs: &[String],
    position: Option<Position>,
) -> Result<(), SqlError> {
    let updates = aggregate.emit == Emit::Changes || aggregate.window.as_ref().is_some_and(|w| w.allowed_lateness_ms > 0);
    if !updates {
        return Ok(());
    }
    let sink_key: &[String] = match &sink.connector {
        ConnectorOptions::Postgres(_) => &sink.primary_key,
        ConnectorOptions::Kafka(_) => &sink.key,
        _ => return Ok(()),
    };
    let required = aggregate.keys.len() + usize::from(aggregate.window.is_some());
    if key_outputs.len() < required {
        let keys: Vec<&str> = aggregate.keys.iter().map(|k| k.display.as_str()).collect();
        return Err(SqlError::new("EMIT CHANGES updates one row per group, but the query does not select every group key")
            .at(position)
            .hint(format!(
                "select the group keys{} as columns of the result: [{}]",
                if aggregate.window.is_some() { " and window_start" } else { "" },
                keys.join(", ")
            )));
    }
    let keyed = !sink_key.is_empty() && key_outputs.iter().all(|k| sink_key.contains(k)) && sink_key.len() == key_outputs.len();
    if keyed {
        return Ok(());
    }
    let wanted = key_outputs.join(", ");
    let how = match &sink.connector {
        ConnectorOptions::Postgres(_) => format!("declare PRIMARY KEY ({wanted}) NOT ENFORCED on {}", sink.name),
        _ => format!("declare the key of {} ('key.fields' or a KEY column): {wanted}", sink.name),
    };
    Err(SqlError::new(format!("EMIT CHANGES updates rows by group, but the key of \"{}\" is not the group key", sink.name))
        .at(position)
        .hint(format!("{how}, or use EMIT FINAL")))
}

/// ksqlDB's rules for a projection of a keyed stream (its messages): every key column is
/// selected, once, and at least one value column is.
fn check_projected_keys(query: &Query, source_key: &[String], key: &[String], fields: &[Field], name: &str) -> Result<(), SqlError> {
    let sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() else { return Ok(()) };
    let mut outputs: Vec<(String, String)> = Vec::new();
    for item in &select.projection {
        let (expr, alias) = match item {
            sqlparser::ast::SelectItem::UnnamedExpr(e) => (e, None),
            sqlparser::ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(super::parser::normalize_ident(alias))),
            // `*` selects every column, each once.
            _ => return Ok(()),
        };
        let column = match expr {
            sqlparser::ast::Expr::Identifier(i) => Some(super::parser::normalize_ident(i)),
            sqlparser::ast::Expr::CompoundIdentifier(parts) => parts.last().map(super::parser::normalize_ident),
            _ => None,
        };
        if let Some(column) = column.filter(|c| source_key.contains(c)) {
            let output = alias.unwrap_or_else(|| column.clone());
            outputs.push((column, output));
        }
    }
    for k in source_key {
        let aliases: Vec<&str> = outputs.iter().filter(|(c, _)| c == k).map(|(_, o)| o.as_str()).collect();
        if aliases.len() > 1 {
            return Err(SqlError::new(format!(
                "The projection contains a key column (`{k}`) more than once, aliased as: {}.",
                aliases.join(" and ")
            ))
            .hint("select each key column once; copy it into the value with another name by an expression, e.g. CONCAT(id, '')"));
        }
        if aliases.is_empty() {
            return Err(SqlError::new(format!(
                "Key missing from projection (ie, SELECT). The query used to build `{name}` must include the key column {k} in its projection."
            ))
            .hint(format!("add {k} to the SELECT list")));
        }
    }
    if fields.iter().all(|f| key.contains(f.name())) {
        return Err(SqlError::new("The projection contains no value columns.").hint("select at least one column that is not a key column"));
    }
    Ok(())
}

/// The key columns fit the key format: `KAFKA` holds one column of a type Kafka's
/// serializers write (ksqlDB's rule and messages); `NONE` holds none.
fn check_key_format(format: crate::options::KeyFormat, key: &[String], fields: &[Field]) -> Result<(), SqlError> {
    let key_fields: Vec<&Field> = key.iter().filter_map(|k| fields.iter().find(|f| f.name() == k)).collect();
    match format {
        crate::options::KeyFormat::Kafka => crate::format::check_kafka_key(&key_fields)
            .map_err(|e| SqlError::new(e).hint("use key_format='JSON' (or 'DELIMITED') for several key columns or other types")),
        crate::options::KeyFormat::None => Err(SqlError::new("Key format NONE does not support key columns")
            .hint("remove the KEY columns, or set key_format='KAFKA' or 'JSON'")),
        _ => Ok(()),
    }
}

/// ksqlDB's `WRAP_SINGLE_VALUE = false` needs exactly one value column: the columns
/// that are not in the record key (nor the window bounds of a windowed key).
///
/// Errors: ksqlDB's message, at the option.
fn check_wrap_single_value(connector: &ConnectorOptions, fields: &[Field], key: &[String], options: &[WithOption]) -> Result<(), SqlError> {
    let ConnectorOptions::Kafka(k) = connector else { return Ok(()) };
    if k.wrap_single_value {
        return Ok(());
    }
    let windowed = k.windowed_key.is_some();
    let values = fields
        .iter()
        .filter(|f| !(k.record_key && key.contains(f.name())))
        .filter(|f| !(windowed && matches!(f.name().as_str(), "windowstart" | "windowend" | "window_start" | "window_end")))
        .count();
    if values == 1 {
        return Ok(());
    }
    Err(SqlError::new("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas")
        .at(options.iter().find(|o| o.key == "wrap_single_value").and_then(|o| o.key_position))
        .hint(format!("the value has {values} columns; remove WRAP_SINGLE_VALUE or select one value column")))
}

/// DELIMITED holds flat values only (ksqlDB: "The 'DELIMITED' format does not support
/// type 'ARRAY'"; Flink's csv format refuses nested types the same way); PostgreSQL
/// tables take nested values as `jsonb`.
fn check_format_types(connector: &ConnectorOptions, fields: &[Field]) -> Result<(), SqlError> {
    if let Some(crate::options::Format::Delimited { .. }) = connector.format() {
        if let Some(f) = fields.iter().find(|f| super::types::nested(f.data_type())) {
            let kind = sql_name(f.data_type()).split('<').next().unwrap_or_default().to_string();
            return Err(SqlError::new(format!("the 'DELIMITED' format does not support type '{kind}' (column \"{}\")", f.name()))
                .hint("use value_format='JSON' (Flink: 'format'='json') for ARRAY, MAP and ROW columns"));
        }
    }
    Ok(())
}

fn synthetic(key: &str, value: &str) -> WithOption {
    WithOption { key: key.to_string(), key_position: None, value: value.to_string(), value_position: None }
}

/// The type a sink stores for a query output type, or `None` if none fits.
fn storable_type(data_type: &DataType) -> Option<DataType> {
    if is_supported(data_type) {
        return Some(data_type.clone());
    }
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Decimal128(..) | DataType::Decimal256(..) => DataType::Float64,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Null => DataType::Utf8,
        _ => return None,
    })
}

/// Whether INSERT may convert `from` to `to` without an explicit CAST: numeric widening
/// (and any exact numeric to DECIMAL),
/// anything to VARCHAR, and timestamps of another unit or zone. Anything that can fail on
/// a value (VARCHAR to INT, BIGINT to INT) needs a CAST, as in Flink SQL.
fn implicit_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (Null, _) => true,
        (_, Utf8) => arrow::compute::can_cast_types(from, to),
        (Int8 | Int16 | Int32 | UInt8 | UInt16, Int32) => true,
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32, Int64) => true,
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32 | Float64 | Decimal128(..), Float64) => true,
        (Int8 | UInt8, Int16) => true,
        (Int8 | Int16 | UInt8 | Float16, Float32) => true,
        // Flink: every exact numeric type casts implicitly to DECIMAL (a value that does
        // not fit fails the row, as Flink's cast does at run time).
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Decimal128(..), Decimal128(..)) => true,
        (Timestamp(..) | Date32 | Date64, Timestamp(..)) => true,
        _ => false,
    }
}

fn unknown_column(name: &str, position: Option<Position>, fields: &[Field]) -> SqlError {
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let hint = crate::error::closest(name, names.iter().copied())
        .map(|c| format!("did you mean \"{c}\"?"))
        .unwrap_or_else(|| format!("declared columns: {}", names.join(", ")));
    SqlError::new(format!("unknown column \"{name}\"")).at(position).hint(hint)
}

/// Converts a DataFusion planning error, keeping its diagnostic position when it has one.
pub fn df_error(e: DataFusionError) -> SqlError {
    if let Some(d) = e.diagnostic() {
        let position = d.span.map(|s| Position { line: s.start.line, column: s.start.column }).filter(|p| p.line > 0);
        let hint = d.helps.first().map(|h| h.message.clone());
        return SqlError::new(lowercase_first(&d.message)).at(position).maybe_hint(hint);
    }
    let text = e.strip_backtrace();
    let text = ["Error during planning: ", "This feature is not implemented: ", "Schema error: "]
        .iter()
        .fold(text, |t, prefix| t.strip_prefix(prefix).map(str::to_string).unwrap_or(t));
    SqlError::new(lowercase_first(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parser::parse_sql;

    /// A library that panics while planning fails the statement, located, with the
    /// panic's message; the caller goes on.
    #[test]
    fn a_panic_while_planning_is_an_error_on_the_statement() -> Result<(), SqlError> {
        let parsed = parse_sql("SHOW STREAMS;")?;
        let result: Result<(), SqlError> = guarded(&parsed[0], || panic!("index out of bounds: the len is 4 but the index is 4"));
        let Err(e) = result else { panic!("the panic was not caught") };
        assert_eq!(e.message, "internal error while planning this statement: index out of bounds: the len is 4 but the index is 4");
        assert_eq!(e.position.map(|p| (p.line, p.column)), Some((1, 1)));
        Ok(())
    }

    /// DELIMITED holds flat values only, as in ksqlDB and Flink's csv format.
    #[test]
    fn delimited_refuses_nested_types() {
        let mut catalog = Catalog::default();
        let state = crate::sql::context::new_session_state();
        let mut ids = BTreeSet::new();
        let sql = "CREATE STREAM s (id INT, tags ARRAY<INT>) WITH (kafka_topic='t', value_format='delimited', partitions=1);";
        let parsed = parse_sql(sql).unwrap_or_default();
        let err = Planner::new(&mut catalog, &state, &mut ids).plan(&parsed[0]).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("the 'DELIMITED' format does not support type 'ARRAY' (column \"tags\"); use value_format='JSON' (Flink: 'format'='json') for ARRAY, MAP and ROW columns")
        );
    }
}
