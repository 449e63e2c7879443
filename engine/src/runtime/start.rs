//! Starting a query without blocking its caller (docs/DESIGN.md, control plane: query
//! lifecycle). [`start_query`] returns a [`QueryHandle`] at once, in `STARTING`; the
//! query's own task opens its connectors (every network and file round trip happens
//! there, never under the engine's lock), retrying transient failures with backoff
//! while the status says `RETRYING` and why, then runs the pipeline. A stop request is
//! obeyed at every step.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::checkpoint::Checkpointing;
use super::handle::{QueryHandle, QueryStatus, QueryStopper};
use super::pipeline;
use crate::connector::{ConnectorFactory, Sink};
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::sql::planner::QueryPlan;

/// First wait before opening a query's connectors again after a transient failure.
pub const START_RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest wait between two attempts (the wait doubles up to it).
pub const START_RETRY_MAX: Duration = Duration::from_secs(30);

/// Starts a persistent query reading under consumer group `<application_id>-<id>`,
/// checkpointing as `checkpointing` says. Returns at once; see [`start_query_with`].
pub fn start_query(
    plan: Arc<QueryPlan>,
    factory: Arc<dyn ConnectorFactory>,
    application_id: &str,
    checkpointing: &Checkpointing,
) -> QueryHandle {
    start_query_with(plan, factory, format!("{application_id}-"), None, Some(checkpointing.clone()))
}

/// Starts a query reading under consumer group `<group_prefix><id>`, whose rows go to
/// `sink` when given instead of the plan's sink relation (a transient push query's
/// client, which keeps no checkpoint). A query over a Kafka source with `checkpointing`
/// resumes from the newer of its latest local checkpoint and its sink's committed
/// progress.
///
/// Returns at once, with the query `STARTING`. Its task opens the source and sinks; a
/// transient failure (a broker or database that cannot be reached, a topic not there
/// yet) sets `RETRYING: <reason>` and is tried again after 0.5 s, 1 s, 2 s, ... up to
/// 30 s; a permanent one (a refused table, a damaged checkpoint) sets `FAILED`. Once
/// open the query is `RUNNING` until it stops or fails.
pub fn start_query_with(
    plan: Arc<QueryPlan>,
    factory: Arc<dyn ConnectorFactory>,
    group_prefix: String,
    sink: Option<Box<dyn Sink>>,
    checkpointing: Option<Checkpointing>,
) -> QueryHandle {
    let metrics = Arc::new(QueryMetrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let status = Arc::new(watch::Sender::new(QueryStatus::Starting));
    let attempt = Attempt { plan: plan.clone(), factory, group_prefix, sink, checkpointing, metrics: metrics.clone() };
    let stop_tx = Arc::new(stop_tx);
    let task = tokio::spawn(run(attempt, stop_rx, stop_tx.clone(), status.clone()));
    let started_at_ms = chrono::Utc::now().timestamp_millis();
    QueryHandle { plan, metrics, started_at_ms, status, stop: QueryStopper(stop_tx), task: Some(task) }
}

/// Everything one attempt at opening the query needs.
struct Attempt {
    plan: Arc<QueryPlan>,
    factory: Arc<dyn ConnectorFactory>,
    group_prefix: String,
    sink: Option<Box<dyn Sink>>,
    checkpointing: Option<Checkpointing>,
    metrics: Arc<QueryMetrics>,
}

/// The query's task: open (with retries), run, and record how it ended.
async fn run(
    mut attempt: Attempt,
    mut stop: watch::Receiver<bool>,
    stop_tx: Arc<watch::Sender<bool>>,
    status: Arc<watch::Sender<QueryStatus>>,
) {
    let id = attempt.plan.id.clone();
    let mut wait = START_RETRY_MIN;
    let tasks = loop {
        let opening = pipeline::open(
            &attempt.plan,
            attempt.factory.as_ref(),
            &attempt.group_prefix,
            &mut attempt.sink,
            attempt.checkpointing.as_ref(),
            &attempt.metrics,
            stop.clone(),
        );
        let opened = tokio::select! {
            opened = opening => opened,
            _ = stop.wait_for(|s| *s) => {
                status.send_replace(QueryStatus::Stopped);
                return;
            }
        };
        match opened {
            Ok(tasks) => break tasks,
            Err(e) if e.is_transient() => {
                tracing::warn!(query = %id, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot start the query yet; retrying");
                status.send_replace(QueryStatus::Retrying(format!("cannot start: {e}")));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => {
                        status.send_replace(QueryStatus::Stopped);
                        return;
                    }
                }
                wait = (wait * 2).min(START_RETRY_MAX);
            }
            Err(e) => {
                tracing::error!(query = %id, error = %e, "query failed to start");
                status.send_replace(QueryStatus::Failed(e.to_string()));
                return;
            }
        }
    };
    drop(attempt);
    status.send_replace(QueryStatus::Running);
    let final_status = match join(tasks, &stop_tx, &status, &id).await {
        None => QueryStatus::Stopped,
        Some(e) => QueryStatus::Failed(e.to_string()),
    };
    status.send_replace(final_status);
}

/// How long the other stages of a failed query may take to end before they are aborted.
const FAILED_STAGES_GRACE: Duration = Duration::from_secs(10);

/// Waits for every stage. The first error that is not a closed channel (the echo of
/// another stage's end) is the query's: it shows as `FAILED` at once, in SHOW QUERIES
/// and /metrics (not when the last stage has ended: a source waiting for records
/// would keep a failed query looking RUNNING), the source is asked to stop, and the
/// stages still running after [`FAILED_STAGES_GRACE`] are aborted.
async fn join(
    tasks: Vec<JoinHandle<Result<()>>>,
    stop_tx: &watch::Sender<bool>,
    status: &watch::Sender<QueryStatus>,
    id: &str,
) -> Option<EngineError> {
    use futures::StreamExt;
    let aborts: Vec<tokio::task::AbortHandle> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let mut pending: futures::stream::FuturesUnordered<JoinHandle<Result<()>>> = tasks.into_iter().collect();
    let mut error: Option<EngineError> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, pending.next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(query = %id, "stages of the failed query did not end in time; aborting them");
                    for a in &aborts {
                        a.abort();
                    }
                    break;
                }
            },
            None => pending.next().await,
        };
        let Some(joined) = next else { break };
        let result = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(EngineError::Internal(format!("a pipeline task ended abnormally: {e}"))),
        };
        if let Err(e) = result {
            if error.is_none() && !matches!(e, EngineError::ChannelClosed) {
                tracing::error!(query = %id, error = %e, "query failed");
                status.send_replace(QueryStatus::Failed(e.to_string()));
                let _ = stop_tx.send(true);
                deadline = Some(tokio::time::Instant::now() + FAILED_STAGES_GRACE);
                error = Some(e);
            }
        }
    }
    error
}
