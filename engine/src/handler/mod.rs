//! Statement execution (docs/DESIGN.md, control plane): [`Engine::execute`] runs the
//! statements of one request in order, whichever front sent it, one handler per
//! statement kind (`show.rs`, `describe.rs`, `explain.rs`, `terminate.rs`, `drop.rs`,
//! `set.rs`, `run_script.rs`, `push_query.rs`, `pull_query.rs`, `create.rs`, `model.rs`), in the manner of
//! RisingWave's one-file-per-statement handlers. `replay.rs` rebuilds the engine from
//! the command log.

mod create;
mod describe;
mod drop;
mod explain;
pub(crate) mod insert_values;
mod model;
pub(crate) use model::{compile_model, model_path};
pub(crate) mod preflight;
mod pull_query;
pub(crate) use pull_query::Materialized;
mod push_query;
mod replay;
mod run_script;
mod set;
mod show;
mod terminate;

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{EngineError, Result, SqlError};
use crate::options::{ConnectorOptions, StartupMode};
use crate::result::{Executed, QueryInfo, QueryKind, StatementResult};
use crate::runtime::{parallelism, QueryHandle};
use crate::session::Session;
use crate::sql::ast::{ParsedStatement, Statement};
use crate::sql::parser::parse_sql;
use crate::sql::planner::QueryPlan;

/// A statement of a request failed. The statements before it were applied and stay
/// applied (their results are in `applied`); the ones after it were not run.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StatementError {
    /// The failing statement's text (the whole request when it did not parse).
    pub statement: String,
    /// What went wrong; a [`EngineError::Sql`] carries line and column within the request.
    pub error: EngineError,
    /// What the statements before it did.
    pub applied: Vec<Executed>,
}

impl Engine {
    /// Runs `sql` (statements separated by `;`) in `session`: every statement is parsed
    /// first (a syntax error runs nothing), then each is run in order.
    ///
    /// Catalog changes (CREATE, CREATE ... AS SELECT, INSERT INTO, DROP, TERMINATE) are
    /// appended to the command log, when the engine has one, and fsynced before this
    /// returns.
    ///
    /// Errors: the first statement that fails, with the results of those before it.
    pub async fn execute(&mut self, sql: &str, session: &mut Session) -> std::result::Result<Vec<Executed>, StatementError> {
        self.reap_push_queries();
        let parsed =
            parse_sql(sql).map_err(|e| StatementError { statement: sql.trim().to_string(), error: e.into(), applied: Vec::new() })?;
        let mut results = Vec::new();
        let mut rest = parsed.as_slice();
        while let Some(statement) = rest.first() {
            // A statement set runs as one: its INSERTs start together, sharing reads.
            let n = match statement.statement_set {
                Some(set) => rest.iter().take_while(|p| p.statement_set == Some(set)).count(),
                None => 1,
            };
            let (now, later) = rest.split_at(n);
            rest = later;
            let outcome = match statement.statement_set {
                Some(_) => self.execute_statement_set(now, session).await,
                None => self.execute_statement(statement, session).await,
            };
            match outcome {
                Ok(r) => {
                    results.push(Executed { statement: now.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(";\n"), results: r })
                }
                Err(error) => return Err(StatementError { statement: statement.text.clone(), error, applied: results }),
            }
        }
        Ok(results)
    }

    /// Runs one parsed statement.
    pub(crate) async fn execute_statement(&mut self, p: &ParsedStatement, session: &mut Session) -> Result<Vec<StatementResult>> {
        match &p.statement {
            Statement::CreateSource(_)
            | Statement::CreateAs(_)
            | Statement::InsertInto(_)
            | Statement::InsertValues(_)
            | Statement::CreateView(_)
            | Statement::DropView { .. } => self.execute_create(p, session).await,
            Statement::Query(query, clauses) if clauses.emit.is_none() => Ok(vec![self.execute_pull_query(query, p).await?]),
            Statement::Query(query, clauses) => Ok(vec![self.execute_push_query(query, clauses, p, session).await?]),
            Statement::Show { what, extended } => Ok(vec![self.execute_show(*what, *extended, session).await?]),
            Statement::Describe { name, extended } => Ok(vec![self.execute_describe(name, *extended)?]),
            Statement::Explain(target) => Ok(vec![self.execute_explain(target, p, session)?]),
            Statement::Terminate(id) => Ok(vec![self.execute_terminate(id.as_ref(), &p.text).await?]),
            Statement::Drop { kind, name, if_exists, delete_topic } => {
                Ok(vec![self.execute_drop(*kind, name, *if_exists, *delete_topic, &p.text, session).await?])
            }
            Statement::Set { property, value } => Ok(vec![set::execute_set(session, property, value, p)?]),
            Statement::Unset { property } => Ok(vec![set::execute_unset(session, property, p)?]),
            Statement::RunScript { path } => self.execute_run_script(path, session).await,
            Statement::CreateModel(create) => Ok(vec![self.execute_create_model(create, session).await?]),
            Statement::DropModel { name, if_exists } => Ok(vec![self.execute_drop_model(name, *if_exists, &p.text, session)?]),
            Statement::DescribeModel(name) => Ok(vec![self.execute_describe_model(name)?]),
        }
    }

    /// Records a catalog change in the command log (when there is one), fsynced.
    pub(crate) fn log_command(&mut self, statement: &str, query_id: Option<&str>, session: &Session) -> Result<()> {
        self.log_command_in_set(statement, query_id, session, None)
    }

    /// [`Engine::log_command`] for a statement of the statement set tagged `set`.
    pub(crate) fn log_command_in_set(
        &mut self,
        statement: &str,
        query_id: Option<&str>,
        session: &Session,
        set: Option<&str>,
    ) -> Result<()> {
        if let Some(log) = self.command_log.as_mut() {
            log.append_command(statement, query_id, session.properties.clone(), chrono::Utc::now().timestamp_millis(), set)?;
        }
        Ok(())
    }

    /// Forgets push queries that have ended or are ending (their client left or their
    /// LIMIT was met; a stopping query's tasks finish on their own), and terminated
    /// queries that have finished stopping.
    pub(crate) fn reap_push_queries(&mut self) {
        self.stopping.retain(|q| !q.is_finished());
        let ended: Vec<String> = self
            .queries
            .iter()
            .filter(|q| self.push_ids.contains(&q.plan.id) && (q.is_finished() || q.stop_requested()))
            .map(|q| q.plan.id.clone())
            .collect();
        if ended.is_empty() {
            return;
        }
        self.queries.retain(|q| !ended.contains(&q.plan.id));
        for id in ended {
            self.push_ids.remove(&id);
        }
    }

    /// The running query with id `id` (ids compare case-insensitively, as in ksqlDB).
    pub(crate) fn find_query(&self, id: &str) -> Option<usize> {
        self.queries.iter().position(|q| q.plan.id.eq_ignore_ascii_case(id))
    }

    /// An "unknown query" error for `id`, with the closest id as a hint.
    pub(crate) fn unknown_query(&self, id: &crate::sql::ast::Name) -> SqlError {
        let hint = match crate::error::closest(&id.value, self.queries.iter().map(|q| q.plan.id.as_str())) {
            Some(c) => format!("did you mean {c}?"),
            None => "SHOW QUERIES lists the running queries".to_string(),
        };
        SqlError::new(format!("unknown query \"{}\"", id.value)).at(id.position).hint(hint)
    }

    /// The `SHOW QUERIES` entry of a query.
    pub(crate) fn query_info(&self, q: &QueryHandle) -> QueryInfo {
        let push = self.push_ids.contains(&q.plan.id);
        let sink_target = (!push).then(|| crate::result::RelationInfo::of(&q.plan.sink).target);
        QueryInfo {
            id: q.plan.id.clone(),
            kind: if push { QueryKind::Push } else { QueryKind::Persistent },
            status: q.status(),
            statement: q.plan.sql.clone(),
            source: q.plan.source.name.clone(),
            sink: (!push).then(|| q.plan.sink.name.clone()),
            sink_target,
            parallelism: parallelism(&q.plan),
            started_at_ms: q.started_at_ms,
            metrics: q.metrics.snapshot(),
        }
    }

    /// Every query's `SHOW QUERIES` entry: persistent queries first, then push queries,
    /// each in start order.
    pub fn query_infos(&self) -> Vec<QueryInfo> {
        let mut out: Vec<QueryInfo> = self.queries.iter().map(|q| self.query_info(q)).collect();
        out.sort_by_key(|q| q.kind == QueryKind::Push);
        out
    }
}

/// `plan` with the session's properties: `auto.offset.reset` (see [`with_startup`]),
/// `execution.checkpointing.interval` and `table.optimizer.agg-phase-strategy`.
pub(crate) fn with_session(plan: Arc<QueryPlan>, session: &crate::session::Session) -> Arc<QueryPlan> {
    let plan = with_startup(plan, session.startup());
    let interval = session.checkpoint_interval_ms().or(plan.checkpoint_interval_ms);
    let one_phase = session.one_phase_aggregation();
    if interval == plan.checkpoint_interval_ms && one_phase == plan.one_phase_aggregation {
        return plan;
    }
    let mut plan = plan.as_ref().clone();
    plan.checkpoint_interval_ms = interval;
    plan.one_phase_aggregation = one_phase;
    Arc::new(plan)
}

/// `plan` reading its Kafka source from `startup` when its consumer group has no
/// committed offsets (the session's `auto.offset.reset`).
pub(crate) fn with_startup(plan: Arc<QueryPlan>, startup: Option<StartupMode>) -> Arc<QueryPlan> {
    let Some(startup) = startup else { return plan };
    let ConnectorOptions::Kafka(k) = &plan.source.connector else { return plan };
    if k.startup == startup {
        return plan;
    }
    let mut source = plan.source.as_ref().clone();
    if let ConnectorOptions::Kafka(k) = &mut source.connector {
        k.startup = startup;
    }
    let mut plan = plan.as_ref().clone();
    plan.source = Arc::new(source);
    Arc::new(plan)
}
