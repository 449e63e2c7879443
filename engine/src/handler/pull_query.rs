//! `SELECT ... FROM table [WHERE ...] [LIMIT n]` without `EMIT CHANGES`: a pull query
//! (ksqlDB). It reads the table's current rows from its materialized state and ends; no
//! pipeline is started.
//!
//! The engine materializes a table the first time a pull query reads it
//! ([`MaterializedTable`]: its topic read from the beginning, upsert by key, a tombstone
//! deletes) and keeps it up to date from then on, so later pull queries read the state
//! at once. The first one waits for the table to catch up with its topic, in a task of
//! its own: the engine's lock is not held meanwhile, so other clients are not blocked.
//! The answer has the shape of a push query's ([`PushQuery`]) whose rows end once read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, RecordBatchOptions};
use arrow::compute::filter_record_batch;
use sqlparser::ast::Query;
use tokio::sync::{mpsc, watch, OnceCell};

use crate::connector::{ConnectorFactory, QueryContext};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::result::{PushQuery, StatementResult};
use crate::runtime::table_state::MaterializedTable;
use crate::runtime::{QueryStatus, QueryStopper};
use crate::sql::ast::ParsedStatement;
use crate::sql::planner::Planner;
use crate::sql::pull_query::PullPlan;

/// Rows per chunk of a table scan.
const SCAN_CHUNK_ROWS: usize = 1024;

/// Numbers the pull queries of this process, for their ids.
static PULL_QUERIES: AtomicU64 = AtomicU64::new(0);

/// A table materialized for pull queries: the relation it was read as (a replaced
/// table is read again), and its state once opened.
#[derive(Clone)]
pub(crate) struct Materialized {
    relation: Arc<crate::catalog::Relation>,
    table: Arc<OnceCell<Arc<MaterializedTable>>>,
}

impl Engine {
    /// Plans the pull query, then reads the table in a task of its own: the result's
    /// status turns `Running` once the rows are read (they then wait on `rows`), or
    /// `Failed` with the reason (the table's topic cannot be read).
    ///
    /// Errors: every planning error of [`Planner::plan_pull`]; no connectors.
    pub(crate) async fn execute_pull_query(&mut self, query: &Query, p: &ParsedStatement) -> Result<StatementResult> {
        let mut catalog = self.catalog.clone();
        let plan = Planner::new(&mut catalog, &self.state, &mut self.query_ids).plan_pull(query, p)?;
        let factory = self.factory()?;
        let name = plan.table.name.clone();
        let entry = match self.materialized.get(&name) {
            Some(m) if Arc::ptr_eq(&m.relation, &plan.table) => m.clone(),
            _ => {
                let m = Materialized { relation: plan.table.clone(), table: Arc::new(OnceCell::new()) };
                self.materialized.insert(name.clone(), m.clone());
                m
            }
        };
        let n = PULL_QUERIES.fetch_add(1, Ordering::Relaxed);
        let id = format!("pull_{name}_{n}");
        let schema = plan.table.display_schema(&plan.output_schema);
        let context = QueryContext {
            query_id: id.clone(),
            group_id: format!("{}-pull", self.application_id),
            metrics: Arc::new(QueryMetrics::default()),
            parallelism: 1,
            transient: true,
            resume_from: Vec::new(),
            resume_exact: false,
            state_dir: None,
        };
        let (tx, rows) = mpsc::channel(16);
        let (status_tx, status) = watch::channel(QueryStatus::Starting);
        let (stopper, stop) = QueryStopper::detached();
        let limit = plan.limit;
        tokio::spawn(answer(plan, entry, factory, context, tx, status_tx, stop));
        Ok(StatementResult::PushQuery(PushQuery { id, schema, limit, rows, stopper, status }))
    }

    /// Forgets the materialization of `name` (dropped or replaced): its reader stops
    /// once no pull query reads it.
    pub(crate) fn forget_materialized(&mut self, name: &str) {
        self.materialized.remove(name);
    }
}

/// Opens (or finds) the table's state, reads the answer, then sends it.
async fn answer(
    plan: PullPlan,
    entry: Materialized,
    factory: Arc<dyn ConnectorFactory>,
    context: QueryContext,
    tx: mpsc::Sender<RecordBatch>,
    status: watch::Sender<QueryStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let opened = tokio::select! {
        t = entry.table.get_or_try_init(|| async { MaterializedTable::open(factory.as_ref(), &entry.relation, &context).await.map(Arc::new) }) => t.cloned(),
        _ = stop.wait_for(|s| *s) => return,
    };
    let read = match opened {
        Ok(table) => {
            tokio::task::spawn_blocking(move || read(&plan, &table)).await.unwrap_or_else(|e| Err(EngineError::Internal(e.to_string())))
        }
        Err(e) => Err(e),
    };
    let batches = match read {
        Ok(b) => b,
        Err(e) => {
            let _ = status.send(QueryStatus::Failed(e.to_string()));
            return;
        }
    };
    let _ = status.send(QueryStatus::Running);
    for batch in batches {
        if *stop.borrow() || tx.send(batch).await.is_err() {
            return;
        }
    }
    let _ = status.send(QueryStatus::Stopped);
}

/// The answer's rows: the pinned keys' rows, or a scan in key order, filtered, limited
/// and projected.
fn read(plan: &PullPlan, table: &MaterializedTable) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut left = plan.limit.unwrap_or(usize::MAX);
    let mut each = |batch: RecordBatch| -> Result<bool> {
        if left == 0 {
            return Ok(false);
        }
        let batch = match &plan.filter {
            Some(f) => {
                let mask = f.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
                filter_record_batch(&batch, mask.as_boolean())?
            }
            None => batch,
        };
        let rows = batch.num_rows().min(left);
        if rows == 0 {
            return Ok(true);
        }
        let batch = batch.slice(0, rows);
        left -= rows;
        let columns = plan
            .projection
            .iter()
            .map(|p| p.expr.evaluate(&batch).and_then(|v| v.into_array(rows)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        out.push(RecordBatch::try_new_with_options(plan.output_schema.clone(), columns, &options)?);
        Ok(left > 0)
    };
    match &plan.keys {
        Some(keys) => {
            each(table.get(keys)?)?;
        }
        None => table.scan(SCAN_CHUNK_ROWS, &mut each)?,
    }
    Ok(out)
}
