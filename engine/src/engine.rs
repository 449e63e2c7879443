//! The one API every front uses (docs/DESIGN.md, control plane): plan SQL, apply it, run the
//! persistent queries it starts.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::execution::session_state::SessionState;

use crate::catalog::Catalog;
use crate::command_log::CommandLog;
use crate::connector::ConnectorFactory;
use crate::error::{EngineError, Result, SqlError};
pub use crate::result::StatementResult;
use crate::runtime::{start_query, Checkpointing, QueryHandle, QueryStatus};
use crate::sql::context::new_session_state;
use crate::sql::parser::parse_sql;
use crate::sql::planner::{PlannedStatement, Planner, QueryPlan};

/// A named piece of SQL text: a `.sql` file or one request.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where it came from (a file path, `<input>`), for error messages.
    pub name: String,
    /// The SQL text, variables already substituted.
    pub sql: String,
}

/// A SQL error located in a script: `queries/fraud/02_server_log.sql:3:8: unknown column ...`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{error}", location(.script, .error))]
pub struct ScriptError {
    /// The script's name.
    pub script: String,
    /// The error, positioned within the script.
    pub error: SqlError,
}

fn location(script: &str, error: &SqlError) -> String {
    match error.position {
        Some(p) => format!("{script}:{}:{}: ", p.line, p.column),
        None => format!("{script}: "),
    }
}

/// Statements planned against a copy of the catalog, not applied yet.
#[derive(Debug, Clone)]
pub struct Plan {
    catalog: Catalog,
    query_ids: BTreeSet<String>,
    /// The planned statements, in order.
    pub statements: Vec<PlannedStatement>,
}

impl Plan {
    pub(crate) fn new(catalog: Catalog, query_ids: BTreeSet<String>, statements: Vec<PlannedStatement>) -> Plan {
        Plan { catalog, query_ids, statements }
    }
}

/// The engine: catalog, DataFusion session, connector factory and running queries.
pub struct Engine {
    pub(crate) catalog: Catalog,
    pub(crate) state: SessionState,
    pub(crate) query_ids: BTreeSet<String>,
    pub(crate) factory: Option<Arc<dyn ConnectorFactory>>,
    pub(crate) application_id: String,
    pub(crate) queries: Vec<QueryHandle>,
    /// Ids of the running queries that are transient push queries.
    pub(crate) push_ids: BTreeSet<String>,
    /// Terminated queries still flushing and committing (TERMINATE does not wait for
    /// them under the lock); forgotten once they have ended.
    pub(crate) stopping: Vec<QueryHandle>,
    /// Where catalog changes are recorded (the durable catalog); `None` keeps them in memory.
    pub(crate) command_log: Option<CommandLog>,
    /// Where and how often persistent queries checkpoint.
    pub(crate) checkpointing: Checkpointing,
    /// What the running request's preflight did (see `handler::preflight`).
    pub(crate) prepared: crate::handler::preflight::Prepared,
    /// The settings Eddy runs with, as `SHOW PROPERTIES` lists them (ksqlDB's server
    /// properties): name to value.
    pub(crate) server_properties: std::collections::BTreeMap<String, String>,
    /// Tables materialized for pull queries, by name: the relation read, and its state
    /// once its topic is read (see `handler::pull_query`).
    pub(crate) materialized: std::collections::HashMap<String, crate::handler::Materialized>,
}

impl Engine {
    /// An engine whose queries use `factory` for sources and sinks. Without a factory
    /// the engine only plans (golden tests, `--check`). `application_id` prefixes the
    /// Kafka consumer groups (`<application_id>-<query id>`), as ksqlDB's service id does.
    pub fn new(factory: Option<Arc<dyn ConnectorFactory>>, application_id: impl Into<String>) -> Self {
        Engine {
            catalog: Catalog::default(),
            state: new_session_state(),
            query_ids: BTreeSet::new(),
            factory,
            application_id: application_id.into(),
            queries: Vec::new(),
            push_ids: BTreeSet::new(),
            stopping: Vec::new(),
            command_log: None,
            checkpointing: Checkpointing::default(),
            prepared: Default::default(),
            server_properties: Default::default(),
            materialized: Default::default(),
        }
    }

    /// Sets where and how often queries started from now on checkpoint (default
    /// [`Checkpointing::default`]: `.eddy/checkpoints`, every 10 s).
    pub fn set_checkpointing(&mut self, checkpointing: Checkpointing) {
        self.checkpointing = checkpointing;
    }

    /// Sets what `SHOW PROPERTIES` lists as the server's properties (the front's
    /// settings: service id, bootstrap servers, checkpoint interval, ...), under the
    /// names ksqlDB or Flink use for them.
    pub fn set_server_properties(&mut self, properties: std::collections::BTreeMap<String, String>) {
        self.server_properties = properties;
    }

    /// The consumer-group prefix of the queries (`<application_id>-`).
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The connector factory.
    ///
    /// Errors: this engine only plans (it has no connectors).
    pub(crate) fn factory(&self) -> Result<Arc<dyn ConnectorFactory>> {
        self.factory.clone().ok_or_else(|| EngineError::Configuration("this engine has no connectors and cannot run queries".into()))
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What rows inserted into `name` need (ksqlDB's `/inserts-stream`): the relation,
    /// and the factory to open its sink with, outside the engine's lock. An unquoted
    /// name is matched as the catalog stores it (lower case).
    ///
    /// Errors: no such stream or table; it is not a Kafka topic; it has computed columns;
    /// this engine has no connectors.
    pub fn insert_target(&self, name: &str) -> Result<(Arc<crate::catalog::Relation>, Arc<dyn ConnectorFactory>)> {
        let relation = self
            .catalog
            .get(name)
            .or_else(|| self.catalog.get(&name.to_lowercase()))
            .ok_or_else(|| EngineError::statement(format!("unknown stream or table \"{name}\"")))?
            .clone();
        if !matches!(relation.connector, crate::options::ConnectorOptions::Kafka(_)) {
            return Err(EngineError::statement(format!("cannot insert into \"{}\": it is not a Kafka stream or table", relation.name)));
        }
        if !relation.computed.is_empty() {
            return Err(EngineError::statement(format!("cannot insert into \"{}\": it has computed columns", relation.name)));
        }
        Ok((relation, self.factory()?))
    }

    /// Running and ended queries.
    pub fn queries(&self) -> &[QueryHandle] {
        &self.queries
    }

    /// Parses and plans every statement of every script, in order, against a copy of the
    /// catalog. Nothing is applied; the first error stops planning.
    pub fn plan(&self, scripts: &[Script]) -> Result<Plan, ScriptError> {
        let mut catalog = self.catalog.clone();
        let mut query_ids = self.query_ids.clone();
        let mut statements = Vec::new();
        // `SET` lines (as in a Flink SQL script) apply to the statements after them.
        let mut session = crate::session::Session::default();
        for script in scripts {
            let err = |error: SqlError| ScriptError { script: script.name.clone(), error };
            let parsed = parse_sql(&script.sql).map_err(err)?;
            for statement in &parsed {
                if set_in_script(&mut session, statement).map_err(err)? {
                    continue;
                }
                let planned = Planner::new(&mut catalog, &self.state, &mut query_ids)
                    .with_state_ttl(session.state_ttl_ms())
                    .plan(statement)
                    .map_err(err)?;
                statements.extend(planned.into_iter().map(|s| match s {
                    PlannedStatement::StartQuery(q) => PlannedStatement::StartQuery(crate::handler::with_session(q, &session)),
                    other => other,
                }));
            }
        }
        Ok(Plan { catalog, query_ids, statements })
    }

    /// Parses and plans every statement of every script, like [`Engine::plan`], but goes
    /// on after an error (ksql-migrations' `validate`): a statement that fails leaves the
    /// catalog as it was, and a script that does not parse is skipped after its parse
    /// error. Returns every error, in order, and the number of statements that planned.
    pub fn validate(&self, scripts: &[Script]) -> (Vec<ScriptError>, usize) {
        let mut catalog = self.catalog.clone();
        let mut query_ids = self.query_ids.clone();
        let mut errors = Vec::new();
        let mut planned = 0;
        let mut session = crate::session::Session::default();
        for script in scripts {
            let err = |error: SqlError| ScriptError { script: script.name.clone(), error };
            let parsed = match parse_sql(&script.sql) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(err(e));
                    continue;
                }
            };
            for statement in &parsed {
                match set_in_script(&mut session, statement) {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        errors.push(err(e));
                        continue;
                    }
                }
                let before = (catalog.clone(), query_ids.clone());
                let mut planner = Planner::new(&mut catalog, &self.state, &mut query_ids).with_state_ttl(session.state_ttl_ms());
                match planner.plan(statement) {
                    Ok(_) => planned += 1,
                    Err(e) => {
                        (catalog, query_ids) = before;
                        errors.push(err(e));
                    }
                }
            }
        }
        (errors, planned)
    }

    /// Applies a plan: registers its streams and tables (creating topics that declare
    /// partitions), then starts its queries. A query is returned `STARTING`: it opens
    /// its source and sinks in its own task (see [`crate::runtime::start_query`]).
    ///
    /// Errors: a relation's connector refused it (a host or file not allowed, topic
    /// creation failed); statements before the failing one stay applied.
    pub async fn apply(&mut self, plan: Plan) -> Result<Vec<StatementResult>> {
        self.catalog = plan.catalog;
        self.query_ids = plan.query_ids;
        let mut results = Vec::with_capacity(plan.statements.len());
        // The queries of a statement set that read one source share one read of it.
        let queries: Vec<&Arc<QueryPlan>> =
            plan.statements.iter().filter_map(|s| if let PlannedStatement::StartQuery(q) = s { Some(q) } else { None }).collect();
        let shared = match &self.factory {
            Some(factory) => crate::runtime::shared_read::shared_factories(&queries, factory, &format!("{}-", self.application_id)),
            None => Default::default(),
        };
        for statement in plan.statements {
            match statement {
                PlannedStatement::CreateRelation(relation) => {
                    let step = crate::handler::preflight::Step::Prepare(relation.as_ref().clone());
                    match self.take_prepared(&step) {
                        Some(Some(e)) => return Err(e),
                        Some(None) => {}
                        None => {
                            if let Some(factory) = &self.factory {
                                factory.prepare(&relation).await?;
                            }
                        }
                    }
                    results.push(StatementResult::Created { kind: relation.kind, name: relation.name.clone() });
                }
                PlannedStatement::StartQuery(plan) => {
                    let Some(factory) = &self.factory else {
                        return Err(EngineError::Configuration("this engine has no connectors and cannot run queries".into()));
                    };
                    tracing::info!(query = %plan.id, "starting query\n{plan}");
                    // Returns at once: the query opens its connectors in its own task.
                    let factory = shared.get(&plan.id).unwrap_or(factory);
                    let handle = start_query(plan.clone(), factory.clone(), &self.application_id, &self.checkpointing);
                    let warning = plan.match_recognize.as_ref().and_then(|m| m.warning.clone());
                    if let Some(w) = &warning {
                        tracing::warn!(query = %plan.id, "{w}");
                    }
                    results.push(StatementResult::QueryStarted { id: plan.id.clone(), warning });
                    self.queries.push(handle);
                }
                PlannedStatement::Noop(why) => results.push(StatementResult::Noop(why)),
                PlannedStatement::CreateModel(model) => results.push(StatementResult::ModelCreated { name: model.name.clone() }),
                PlannedStatement::DropModel(name) => results.push(StatementResult::ModelDropped { name }),
                PlannedStatement::CreateView(view) => results.push(StatementResult::ViewCreated { name: view.name.clone() }),
                PlannedStatement::DropView(name) => results.push(StatementResult::ViewDropped { name }),
                PlannedStatement::InsertRows { relation, batch } => {
                    let rows = batch.num_rows();
                    let step = crate::handler::preflight::Step::InsertRows(relation.as_ref().clone(), batch.clone());
                    match self.take_prepared(&step) {
                        Some(Some(e)) => return Err(e),
                        Some(None) => {}
                        None => crate::handler::insert_values::write_rows(&self.factory()?, &relation, batch).await?,
                    }
                    results.push(StatementResult::Inserted { relation: relation.name.clone(), rows });
                }
            }
        }
        Ok(results)
    }

    /// Stops every query (flushing sinks and committing offsets) and returns the final
    /// status of each, by id.
    pub async fn stop_all(&mut self) -> Vec<(String, QueryStatus)> {
        for q in &self.queries {
            q.request_stop();
        }
        let mut out = Vec::with_capacity(self.queries.len());
        for q in self.queries.iter_mut() {
            let status = q.wait().await;
            out.push((q.plan.id.clone(), status));
        }
        // Terminated earlier and still finishing: their status is not reported again.
        for mut q in std::mem::take(&mut self.stopping) {
            q.wait().await;
        }
        out
    }
}

/// Applies a script's `SET 'property' = 'value'` or `UNSET 'property'` to `session`;
/// returns whether `statement` was one (a Flink SQL script's `SET` lines configure the
/// statements after them).
///
/// Errors: an unknown property or a value it does not allow.
fn set_in_script(
    session: &mut crate::session::Session,
    statement: &crate::sql::ast::ParsedStatement,
) -> std::result::Result<bool, SqlError> {
    match &statement.statement {
        crate::sql::ast::Statement::Set { property, value } => {
            if let Some(warning) = session.set(property, value).map_err(|e| e.at(Some(statement.position)))? {
                tracing::warn!("{warning}");
            }
            Ok(true)
        }
        crate::sql::ast::Statement::Unset { property } => {
            session.unset(property);
            Ok(true)
        }
        _ => Ok(false),
    }
}
