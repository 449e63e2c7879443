//! Runs one persistent query as three tokio tasks joined by bounded channels:
//!
//! ```text
//! source task --Message--> operator task (decode -> filter -> project) --Message--> sink task
//!      ^                                                                            |
//!      +------------------------- acknowledged barrier ids -------------------------+
//! ```
//!
//! After each micro-batch the source sends a `Barrier(id)` and remembers its partition
//! positions under `id`. The sink makes every row before the barrier durable (`flush`)
//! and acknowledges `id`; only then does the source commit those offsets. Killing the
//! process at any moment therefore loses no row: uncommitted records are read again
//! (at-least-once; upserts on a primary key make the result exactly the input).
//! The channels hold at most [`CHANNEL_CAPACITY`] messages, so a slow sink slows the
//! source and memory stays bounded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{ConnectorFactory, PartitionOffset, QueryContext, QueryMetrics, Sink, Source};
use crate::error::{EngineError, Result};
use crate::operator::{Collector, Message, Operator};
use crate::operators::{Decode, Filter, Projection, RawColumn};
use crate::options::ConnectorOptions;
use crate::sql::planner::QueryPlan;

/// Messages buffered between two stages (each is at most one micro-batch).
pub const CHANNEL_CAPACITY: usize = 4;

/// Where a query stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    /// Reading, processing and writing.
    Running,
    /// Stopped on request, everything flushed and committed.
    Stopped,
    /// Stopped by an error (the text).
    Failed(String),
}

impl std::fmt::Display for QueryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryStatus::Running => f.write_str("RUNNING"),
            QueryStatus::Stopped => f.write_str("STOPPED"),
            QueryStatus::Failed(e) => write!(f, "FAILED: {e}"),
        }
    }
}

/// A running query: its plan, counters and status; stop it with [`QueryHandle::stop`].
pub struct QueryHandle {
    /// The plan it runs.
    pub plan: Arc<QueryPlan>,
    /// Its counters.
    pub metrics: Arc<QueryMetrics>,
    status: Arc<Mutex<QueryStatus>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl QueryHandle {
    /// The current status.
    pub fn status(&self) -> QueryStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Asks the query to stop: the source stops reading, the sink flushes, the last
    /// offsets are committed. Returns at once; [`QueryHandle::wait`] waits for it.
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the query has ended and returns its final status.
    pub async fn wait(&mut self) -> QueryStatus {
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                self.set_status(QueryStatus::Failed(format!("query task ended abnormally: {e}")));
            }
        }
        self.status()
    }

    /// Stops the query and waits for it.
    pub async fn stop(&mut self) -> QueryStatus {
        self.request_stop();
        self.wait().await
    }

    fn set_status(&self, status: QueryStatus) {
        match self.status.lock() {
            Ok(mut s) => *s = status,
            Err(p) => *p.into_inner() = status,
        }
    }
}

/// Creates the query's source and sink through `factory` and starts its tasks.
///
/// Errors: the source or sink cannot be created (broker or database unreachable, table
/// not creatable); once started, errors end the query and show in its status.
pub async fn start_query(plan: Arc<QueryPlan>, factory: &dyn ConnectorFactory, application_id: &str) -> Result<QueryHandle> {
    let metrics = Arc::new(QueryMetrics::default());
    let ctx = QueryContext {
        query_id: plan.id.clone(),
        group_id: format!("{application_id}-{}", plan.id),
        metrics: metrics.clone(),
    };
    let source = factory.source(&plan.source, &ctx).await?;
    let sink = factory.sink(&plan.sink, &ctx).await?;
    let operators = build_operators(&plan, &metrics)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (to_ops, ops_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_sink, sink_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let status = Arc::new(Mutex::new(QueryStatus::Running));

    let query_id = plan.id.clone();
    let task_status = status.clone();
    let task_metrics = metrics.clone();
    let task = tokio::spawn(async move {
        let (a, b, c) = tokio::join!(
            run_source(source, to_ops, ack_rx, stop_rx, task_metrics.clone()),
            run_operators(operators, ops_rx, to_sink),
            run_sink(sink, sink_rx, ack_tx, task_metrics),
        );
        let error = [a, b, c].into_iter().filter_map(|r| r.err()).find(|e| !matches!(e, EngineError::ChannelClosed));
        let final_status = match error {
            None => QueryStatus::Stopped,
            Some(e) => {
                tracing::error!(query = %query_id, error = %e, "query failed");
                QueryStatus::Failed(e.to_string())
            }
        };
        match task_status.lock() {
            Ok(mut s) => *s = final_status,
            Err(p) => *p.into_inner() = final_status,
        }
    });
    Ok(QueryHandle { plan, metrics, status, stop: stop_tx, task: Some(task) })
}

fn build_operators(plan: &QueryPlan, metrics: &Arc<QueryMetrics>) -> Result<Vec<Box<dyn Operator>>> {
    let ConnectorOptions::Kafka(kafka) = &plan.source.connector else {
        return Err(EngineError::Other(format!("\"{}\" cannot be read", plan.source.name)));
    };
    let mut ops: Vec<Box<dyn Operator>> = vec![Box::new(Decode::new(
        kafka.format,
        plan.source.schema.clone(),
        metrics.clone(),
        kafka.error_policy,
        plan.id.clone(),
    ))];
    if let Some(filter) = &plan.filter {
        ops.push(Box::new(Filter::new(filter.expr.clone())));
    }
    // Rows are built with every column nullable: a NULL where the sink wants a value is
    // the sink's to report, not a reason to fail the whole batch here.
    let fields: Vec<_> = plan.output_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    ops.push(Box::new(Projection::new(plan.projection.iter().map(|p| p.expr.clone()).collect(), schema)));
    Ok(ops)
}

fn value_bytes(batch: &RecordBatch) -> u64 {
    let values = batch.column(RawColumn::Value as usize).as_binary::<i32>();
    (values.value_offsets().last().copied().unwrap_or(0) - values.value_offsets().first().copied().unwrap_or(0)) as u64
}

async fn run_source(
    mut source: Box<dyn Source>,
    out: mpsc::Sender<Message>,
    mut acks: mpsc::UnboundedReceiver<u64>,
    stop: watch::Receiver<bool>,
    metrics: Arc<QueryMetrics>,
) -> Result<()> {
    let mut pending: VecDeque<(u64, Vec<PartitionOffset>)> = VecDeque::new();
    let mut next_id = 1u64;
    loop {
        while let Ok(id) = acks.try_recv() {
            commit_through(source.as_mut(), &mut pending, id, &metrics).await?;
        }
        if *stop.borrow() {
            break;
        }
        let Some(batch) = source.next_batch().await? else { break };
        let rows = batch.records.num_rows();
        if rows == 0 {
            continue;
        }
        metrics.add_in(rows as u64, value_bytes(&batch.records));
        pending.push_back((next_id, batch.positions));
        forward(&out, Message::Batch(batch.records)).await?;
        forward(&out, Message::Barrier(next_id)).await?;
        next_id += 1;
    }
    forward(&out, Message::End).await?;
    drop(out);
    while !pending.is_empty() {
        match acks.recv().await {
            Some(id) => commit_through(source.as_mut(), &mut pending, id, &metrics).await?,
            None => break,
        }
    }
    source.close().await
}

/// Commits the merged positions of every pending batch up to and including `id`.
async fn commit_through(
    source: &mut dyn Source,
    pending: &mut VecDeque<(u64, Vec<PartitionOffset>)>,
    id: u64,
    metrics: &QueryMetrics,
) -> Result<()> {
    let mut merged: BTreeMap<(String, i32), i64> = BTreeMap::new();
    while pending.front().is_some_and(|(pid, _)| *pid <= id) {
        if let Some((_, positions)) = pending.pop_front() {
            for p in positions {
                let e = merged.entry((p.topic, p.partition)).or_insert(p.next_offset);
                *e = (*e).max(p.next_offset);
            }
            metrics.add_committed();
        }
    }
    if merged.is_empty() {
        return Ok(());
    }
    let positions: Vec<PartitionOffset> =
        merged.into_iter().map(|((topic, partition), next_offset)| PartitionOffset { topic, partition, next_offset }).collect();
    source.commit(&positions).await
}

/// Sends downstream; a closed channel means the next stage has ended (its own error is
/// the one reported).
async fn forward(out: &mpsc::Sender<Message>, message: Message) -> Result<()> {
    out.send(message).await.map_err(|_| EngineError::ChannelClosed)
}

/// Feeds `batches` through `ops` in order and returns what comes out of the last one.
fn push_through(ops: &mut [Box<dyn Operator>], mut batches: Vec<RecordBatch>, collector: &mut Collector) -> Result<Vec<RecordBatch>> {
    for op in ops.iter_mut() {
        if batches.is_empty() {
            break;
        }
        for b in std::mem::take(&mut batches) {
            op.on_batch(b, collector)?;
        }
        batches = collector.take();
    }
    Ok(batches)
}

async fn run_operators(mut ops: Vec<Box<dyn Operator>>, mut input: mpsc::Receiver<Message>, out: mpsc::Sender<Message>) -> Result<()> {
    let mut collector = Collector::default();
    while let Some(message) = input.recv().await {
        match message {
            Message::Batch(batch) => {
                for b in push_through(&mut ops, vec![batch], &mut collector)? {
                    forward(&out, Message::Batch(b)).await?;
                }
            }
            Message::Watermark(w) => {
                // What an operator emits on a watermark (closed windows, released rows)
                // flows through the operators after it, then the watermark follows.
                for i in 0..ops.len() {
                    ops[i].on_watermark(w, &mut collector)?;
                    let emitted = collector.take();
                    for b in push_through(&mut ops[i + 1..], emitted, &mut collector)? {
                        forward(&out, Message::Batch(b)).await?;
                    }
                }
                forward(&out, Message::Watermark(w)).await?;
            }
            Message::Barrier(id) => forward(&out, Message::Barrier(id)).await?,
            Message::End => {
                forward(&out, Message::End).await?;
                break;
            }
        }
    }
    Ok(())
}

async fn run_sink(
    mut sink: Box<dyn Sink>,
    mut input: mpsc::Receiver<Message>,
    acks: mpsc::UnboundedSender<u64>,
    metrics: Arc<QueryMetrics>,
) -> Result<()> {
    while let Some(message) = input.recv().await {
        match message {
            Message::Batch(batch) => {
                let rows = batch.num_rows() as u64;
                sink.write(batch).await?;
                metrics.add_out(rows);
            }
            Message::Barrier(id) => {
                sink.flush().await?;
                let _ = acks.send(id);
            }
            Message::Watermark(_) => {}
            Message::End => {
                sink.flush().await?;
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::operator::Timestamp;

    /// Emits one row holding the watermark when it sees one.
    struct EmitOnWatermark;

    impl Operator for EmitOnWatermark {
        fn name(&self) -> &'static str {
            "emit-on-watermark"
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
            out.emit(batch);
            Ok(())
        }
        fn on_watermark(&mut self, w: Timestamp, out: &mut Collector) -> Result<()> {
            let schema = Arc::new(Schema::new(vec![Field::new("w", DataType::Int64, false)]));
            out.emit(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![w]))])?);
            Ok(())
        }
    }

    /// Doubles every batch it sees.
    struct Twice;

    impl Operator for Twice {
        fn name(&self) -> &'static str {
            "twice"
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
            out.emit(batch.clone());
            out.emit(batch);
            Ok(())
        }
    }

    #[tokio::test]
    async fn rows_emitted_on_a_watermark_flow_downstream_before_it() -> Result<()> {
        let (tx, rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let ops: Vec<Box<dyn Operator>> = vec![Box::new(EmitOnWatermark), Box::new(Twice)];
        tx.send(Message::Watermark(42)).await.map_err(|_| EngineError::ChannelClosed)?;
        tx.send(Message::End).await.map_err(|_| EngineError::ChannelClosed)?;
        run_operators(ops, rx, out_tx).await?;
        let mut seen = Vec::new();
        while let Some(m) = out_rx.recv().await {
            seen.push(match m {
                Message::Batch(b) => format!("batch {}", b.num_rows()),
                Message::Watermark(w) => format!("watermark {w}"),
                Message::Barrier(id) => format!("barrier {id}"),
                Message::End => "end".to_string(),
            });
        }
        assert_eq!(seen, ["batch 1", "batch 1", "watermark 42", "end"]);
        Ok(())
    }
}
