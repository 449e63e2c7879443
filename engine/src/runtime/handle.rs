//! A started query as its owner sees it: status, counters, a way to stop it
//! (docs/DESIGN.md, control plane: query lifecycle).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::QueryMetrics;
use crate::sql::planner::QueryPlan;

/// Where a query stands. `STARTING → RUNNING ⇄ RETRYING → STOPPED | FAILED`; a query
/// whose connectors cannot be reached yet goes `STARTING → RETRYING` until they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    /// Opening its source and sinks (connecting, reading committed progress and
    /// checkpoints); no row read yet.
    Starting,
    /// Reading, processing and writing.
    Running,
    /// Waiting on a transient error (the text): a sink retrying a dropped PostgreSQL
    /// connection while the source is paused (backpressure), or a source or sink that
    /// could not be opened yet (an unreachable broker or database), tried again with
    /// backoff.
    Retrying(String),
    /// Stopped on request, everything flushed and committed.
    Stopped,
    /// Stopped by an error (the text).
    Failed(String),
}

impl std::fmt::Display for QueryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryStatus::Starting => f.write_str("STARTING"),
            QueryStatus::Running => f.write_str("RUNNING"),
            QueryStatus::Retrying(e) => write!(f, "RETRYING: {e}"),
            QueryStatus::Stopped => f.write_str("STOPPED"),
            QueryStatus::Failed(e) => write!(f, "FAILED: {e}"),
        }
    }
}

/// A started query: its plan, counters and status; stop it with [`QueryHandle::stop`].
pub struct QueryHandle {
    /// The plan it runs.
    pub plan: Arc<QueryPlan>,
    /// Its counters.
    pub metrics: Arc<QueryMetrics>,
    /// When it was started (ms since the epoch).
    pub started_at_ms: i64,
    pub(super) status: Arc<watch::Sender<QueryStatus>>,
    pub(super) stop: QueryStopper,
    pub(super) task: Option<JoinHandle<()>>,
}

/// Stops a query from elsewhere (a REST response stream that the client dropped, a
/// shell's Ctrl-C); cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryStopper(pub(super) Arc<watch::Sender<bool>>);

impl QueryStopper {
    /// A stopper of a task that is not a query's pipeline (a pull query), and what it
    /// watches.
    pub(crate) fn detached() -> (QueryStopper, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (QueryStopper(Arc::new(tx)), rx)
    }

    /// Asks the query to stop; returns at once.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl QueryHandle {
    /// The current status.
    pub fn status(&self) -> QueryStatus {
        let status = self.status.borrow().clone();
        match (status, self.metrics.retrying()) {
            (QueryStatus::Running, Some(e)) => QueryStatus::Retrying(e),
            (status, _) => status,
        }
    }

    /// Follows the status as the query's task sets it (`STARTING`, `RUNNING`, a retry
    /// while opening, the end); a sink's retries while running are not in it (see
    /// [`QueryHandle::status`]).
    pub fn status_updates(&self) -> watch::Receiver<QueryStatus> {
        self.status.subscribe()
    }

    /// Whether the query has not ended (starting and retrying included).
    pub fn is_running(&self) -> bool {
        matches!(self.status(), QueryStatus::Starting | QueryStatus::Running | QueryStatus::Retrying(_))
    }

    /// Asks the query to stop: the source stops reading, the sink flushes, the last
    /// offsets are committed. Returns at once; [`QueryHandle::wait`] waits for it.
    pub fn request_stop(&self) {
        self.stop.stop();
    }

    /// A handle that stops this query.
    pub fn stopper(&self) -> QueryStopper {
        self.stop.clone()
    }

    /// Whether a stop was asked for (the query may still be flushing).
    pub fn stop_requested(&self) -> bool {
        *self.stop.0.borrow()
    }

    /// Whether every task of the query has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the query has ended and returns its final status. Cancelling the
    /// wait (a timeout around it) leaves the query as it was, still to be waited for.
    pub async fn wait(&mut self) -> QueryStatus {
        if let Some(task) = self.task.as_mut() {
            let joined = task.await;
            self.task = None;
            if let Err(e) = joined {
                self.status.send_replace(QueryStatus::Failed(format!("query task ended abnormally: {e}")));
            }
        }
        self.status()
    }

    /// Stops the query and waits for it.
    pub async fn stop(&mut self) -> QueryStatus {
        self.request_stop();
        self.wait().await
    }
}

/// Waits until a query has left `STARTING`: `Ok` once it runs (or ended without
/// error), the reason when it failed or is retrying to open its connectors. A push
/// query's client is answered with that reason rather than left waiting.
pub async fn started(updates: &mut watch::Receiver<QueryStatus>) -> std::result::Result<(), String> {
    let status = match updates.wait_for(|s| *s != QueryStatus::Starting).await {
        Ok(s) => s.clone(),
        // The query's task is gone: it ended before saying so.
        Err(_) => return Err("the query ended while starting".into()),
    };
    match status {
        QueryStatus::Failed(e) | QueryStatus::Retrying(e) => Err(e),
        _ => Ok(()),
    }
}
