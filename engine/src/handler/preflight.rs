//! The network round trips a request needs before it is applied, done without the
//! engine's lock (docs/DESIGN.md, control plane): creating the topics of `CREATE
//! STREAM ... WITH (partitions=n)` and deleting those of `DROP ... DELETE TOPIC`, as
//! ksqlDB's `TopicCreateInjector` and `TopicDeleteInjector` do in the request's thread
//! before the statement is enqueued, listing the cluster's topics for `SHOW TOPICS`, and
//! writing the rows of `INSERT ... VALUES`.
//!
//! A front that serves several clients (`eddy server`) calls [`Engine::preflight`]
//! under the lock (planning only, no I/O), releases it, runs [`Preflight::run`], then
//! takes the lock again for [`Engine::execute_prepared`]: a silent broker delays that
//! request alone. A step that failed is reported at its statement, after the
//! statements before it were applied, exactly as without a preflight.

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, TopicInfo};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::handler::StatementError;
use crate::options::ConnectorOptions;
use crate::result::Executed;
use crate::session::Session;
use crate::sql::ast::{ShowKind, Statement};
use crate::sql::parser::parse_sql;
use crate::sql::planner::{PlannedStatement, Planner};

/// One round trip to do before the request is applied.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// [`ConnectorFactory::prepare`] (the sandbox check, then the topic's creation).
    Prepare(Relation),
    /// [`ConnectorFactory::delete_topic`].
    DeleteTopic(Relation),
    /// [`ConnectorFactory::list_topics`] (`SHOW TOPICS`).
    ListTopics,
    /// `INSERT ... VALUES`: write the rows.
    InsertRows(Relation, arrow::record_batch::RecordBatch),
}

impl Step {
    /// Identifies the step across the two plannings (the preflight's and the
    /// execution's): the same relation with the same connector options.
    fn key(&self) -> String {
        match self {
            Step::Prepare(r) => format!("prepare {} {:?}", r.name, r.connector),
            Step::DeleteTopic(r) => format!("delete {} {:?}", r.name, r.connector),
            Step::ListTopics => "list topics".to_string(),
            Step::InsertRows(r, batch) => format!("insert {} {batch:?}", r.name),
        }
    }
}

/// The round trips of one request, found by [`Engine::preflight`].
pub struct Preflight {
    factory: Option<Arc<dyn ConnectorFactory>>,
    steps: Vec<Step>,
}

/// How each step of a [`Preflight`] went, for [`Engine::execute_prepared`].
#[derive(Debug, Default)]
pub struct Prepared {
    outcomes: Vec<(String, Option<EngineError>)>,
    /// The topics the cluster has, when the request has `SHOW TOPICS` or `DESCRIBE`.
    topics: Option<Vec<TopicInfo>>,
}

impl Preflight {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() || self.factory.is_none()
    }

    /// Runs the steps in order, each bounded by `timeout`; the first that fails ends
    /// the run (the statements after it will not be applied). Takes no lock.
    pub async fn run(self, timeout: Duration) -> Prepared {
        let mut prepared = Prepared::default();
        let Some(factory) = self.factory else { return prepared };
        for step in self.steps {
            let work = async {
                match &step {
                    Step::Prepare(r) => factory.prepare(r).await,
                    Step::DeleteTopic(r) => factory.delete_topic(r).await,
                    Step::ListTopics => factory.list_topics().await.map(|topics| prepared.topics = Some(topics)),
                    Step::InsertRows(r, batch) => super::insert_values::write_rows(&factory, r, batch.clone()).await,
                }
            };
            let outcome = match tokio::time::timeout(timeout, work).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => {
                    Some(EngineError::external("kafka", true, format!("the cluster did not answer within {} ms", timeout.as_millis())))
                }
            };
            let failed = outcome.is_some();
            prepared.outcomes.push((step.key(), outcome));
            if failed {
                break;
            }
        }
        prepared
    }
}

impl Engine {
    /// Finds the round trips `sql` needs before it is applied, by planning it against
    /// a copy of the catalog; nothing is applied and no I/O is done. Planning stops at
    /// the first statement that does not plan (execution reports it).
    pub fn preflight(&self, sql: &str) -> Preflight {
        let mut preflight = Preflight { factory: self.factory.clone(), steps: Vec::new() };
        let Ok(parsed) = parse_sql(sql) else { return preflight };
        let mut catalog = self.catalog.clone();
        let mut query_ids = self.query_ids.clone();
        // Queries of this request: (id, source, sink).
        let mut planned: Vec<(String, String, String)> = Vec::new();
        for p in &parsed {
            match &p.statement {
                Statement::CreateSource(_) | Statement::CreateAs(_) | Statement::InsertInto(_) | Statement::InsertValues(_) => {
                    let Ok(statements) = Planner::new(&mut catalog, &self.state, &mut query_ids).plan(p) else { break };
                    for s in statements {
                        match s {
                            PlannedStatement::CreateRelation(r) => preflight.steps.push(Step::Prepare(r.as_ref().clone())),
                            PlannedStatement::StartQuery(q) => planned.push((q.id.clone(), q.source.name.clone(), q.sink.name.clone())),
                            PlannedStatement::Noop(_)
                            | PlannedStatement::CreateModel(_)
                            | PlannedStatement::DropModel(_)
                            | PlannedStatement::CreateView(_)
                            | PlannedStatement::DropView(_) => {}
                            PlannedStatement::InsertRows { relation, batch } => {
                                preflight.steps.push(Step::InsertRows(relation.as_ref().clone(), batch))
                            }
                        }
                    }
                }
                Statement::Drop { kind, name, if_exists, delete_topic } => {
                    match self.droppable(&catalog, &planned, *kind, name, *if_exists, *delete_topic) {
                        Ok(Some(relation)) => {
                            catalog.remove(&relation.name);
                            // A topic that push queries or ending queries use is
                            // deleted by the DROP itself, after they have ended.
                            if *delete_topic && !self.ending_queries_use(&relation.name) {
                                preflight.steps.push(Step::DeleteTopic(relation));
                            }
                        }
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                Statement::Show { what: ShowKind::Topics, .. } => preflight.steps.push(Step::ListTopics),
                // DESCRIBE reports the topic's real partitions and replicas.
                Statement::Describe { name, .. }
                    if matches!(catalog.get(&name.value).map(|r| &r.connector), Some(ConnectorOptions::Kafka(_)))
                        && !preflight.steps.iter().any(|s| matches!(s, Step::ListTopics)) =>
                {
                    preflight.steps.push(Step::ListTopics)
                }
                // TERMINATE frees relations for a later DROP; stop looking ahead there.
                Statement::Terminate(_) => break,
                _ => {}
            }
        }
        preflight
    }

    /// [`Engine::execute`], using the outcome of the request's [`Preflight`]: a step it
    /// did is not done again, a step that failed fails its statement.
    pub async fn execute_prepared(
        &mut self,
        sql: &str,
        session: &mut Session,
        prepared: Prepared,
    ) -> std::result::Result<Vec<Executed>, StatementError> {
        self.prepared = prepared;
        let result = self.execute(sql, session).await;
        self.prepared = Prepared::default();
        result
    }

    /// The preflight's outcome of `step`, taken (`None`: the preflight did not do it).
    pub(crate) fn take_prepared(&mut self, step: &Step) -> Option<Option<EngineError>> {
        let key = step.key();
        let i = self.prepared.outcomes.iter().position(|(k, _)| *k == key)?;
        Some(self.prepared.outcomes.remove(i).1)
    }

    /// The topics the preflight listed (for `SHOW TOPICS` and `DESCRIBE`).
    pub(crate) fn prepared_topics(&self) -> Option<&[TopicInfo]> {
        self.prepared.topics.as_deref()
    }
}
