//! `SELECT ... EMIT CHANGES [LIMIT n]`: a transient push query (ksqlDB).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlparser::ast::Query;

use crate::engine::Engine;
use crate::error::Result;
use crate::options::{ConnectorOptions, StartupMode};
use crate::result::{PushQuery, StatementResult};
use crate::runtime::{start_query_with, PushSink};
use crate::session::Session;
use crate::sql::ast::{ParsedStatement, StreamClauses};
use crate::sql::planner::{Planner, QueryPlan};

use super::with_startup;

/// Longest wait for a push query's micro-batch to fill (ms): a person is watching.
pub const PUSH_LINGER_MS: u64 = 10;

/// `plan` with its Kafka source's linger cut to [`PUSH_LINGER_MS`].
fn with_short_linger(plan: Arc<QueryPlan>) -> Arc<QueryPlan> {
    let mut plan = plan.as_ref().clone();
    let mut source = plan.source.as_ref().clone();
    if let ConnectorOptions::Kafka(k) = &mut source.connector {
        k.batch_linger_ms = k.batch_linger_ms.min(PUSH_LINGER_MS);
    }
    plan.source = Arc::new(source);
    Arc::new(plan)
}

/// Numbers the push queries of this process, for unique consumer groups.
static PUSH_QUERIES: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// Starts the query with a [`PushSink`]: it reads under a consumer group of its own
    /// (`<application id>-transient-<pid>-<n>-<id>`), from `auto.offset.reset` (default
    /// `latest`, as in ksqlDB: a push query shows what happens from now on).
    pub(crate) async fn execute_push_query(
        &mut self,
        query: &Query,
        clauses: &StreamClauses,
        p: &ParsedStatement,
        session: &Session,
    ) -> Result<StatementResult> {
        let mut catalog = self.catalog.clone();
        let (plan, limit) = Planner::new(&mut catalog, &self.state, &mut self.query_ids)
            .with_state_ttl(session.state_ttl_ms())
            .plan_push(query, clauses, p)?;
        let id = plan.id.clone();
        let plan = with_startup(Arc::new(plan), Some(session.startup().unwrap_or(StartupMode::Latest)));
        let plan = with_short_linger(plan);
        // Column names as the source's dialect spells them (ksqlDB: upper-cased).
        let schema = plan.sink.display_schema(&plan.output_schema);
        let (sink, rows) = PushSink::new(limit);
        let n = PUSH_QUERIES.fetch_add(1, Ordering::Relaxed);
        let group_prefix = format!("{}-transient-{}-{n}-", self.application_id, std::process::id());
        let factory = match self.factory() {
            Ok(f) => f,
            Err(e) => {
                self.query_ids.remove(&id);
                return Err(e);
            }
        };
        let handle = start_query_with(plan, factory, group_prefix, Some(Box::new(sink)), None);
        let status = handle.status_updates();
        let stopper = handle.stopper();
        self.push_ids.insert(id.clone());
        self.queries.push(handle);
        Ok(StatementResult::PushQuery(PushQuery { id, schema, limit, rows, stopper, status }))
    }
}
