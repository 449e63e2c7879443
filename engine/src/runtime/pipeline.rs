//! Runs one persistent query as tokio tasks joined by bounded channels
//! (docs/DESIGN.md, pipeline shapes). At parallelism 1:
//!
//! ```text
//! source --> operators (decode .. [watermark] .. [filter] .. [stateful op] .. project) --> sink
//!    ^                                                                                  |
//!    +------------------------- committed progress (positions) -------------------------+
//! ```
//!
//! At parallelism n (a keyed stateful query), the operators split at the key exchange
//! ([`super::exchange`]):
//!
//! ```text
//! source --by partition--> n x front (decode .. watermark .. filter [local aggregate])
//!        --by key--> n x back (window aggregate [having] | match_recognize [filter] .. project) --> sink
//! ```
//!
//! `front_operators` and `back_operators` build the two halves. An aggregation that can
//! be pre-aggregated ([`local_aggregation`]) ends the front with a
//! [`crate::operators::LocalAggregate`], and partial states cross the exchange by their
//! key columns instead of rows (Flink's local-global aggregation). A two-input join (interval,
//! event-time temporal) has the same shape: the front runs each input's chain on its
//! share of both inputs' partitions ([`crate::operators::JoinFront`]), and the exchange
//! routes each side's rows by that side's key, so equal keys meet on one join worker:
//!
//! ```text
//! source (both topics) --by partition--> n x join front --by key--> n x (join [filter] .. project) --> sink
//! ```
//!
//! A query with a lookup
//! join (stateless, so one worker) has the join as a stage of its own between them,
//! since reading the table is asynchronous ([`super::lookup`]):
//!
//! ```text
//! source --> decode .. watermark --> lookup join --> filter .. project --> sink
//! ```
//!
//! The source records the positions of every micro-batch in the [`ProgressLedger`] under
//! the id of the next barrier, and sends a `Barrier(id)`: after every micro-batch for a
//! stateless query, once per checkpoint interval for a stateful one. Barriers are
//! aligned where workers merge; a stateful operator task snapshots its operators when a
//! barrier has passed them (see `super::snapshot`). When the barrier reaches the sink,
//! the sink commits every row before it together with the cumulative positions
//! ([`Sink::commit`]; PostgreSQL: in one transaction with a row of `eddy_progress`), the
//! checkpoint is written (with the operator states, before the commit; positions only,
//! after it), and the progress goes back to the source, which commits the offsets to
//! the consumer group. Killing the process at any moment therefore loses no row; a
//! restarted query restores the checkpoint the sink committed (or the newest one) and
//! a Kafka sink suppresses what it wrote after it, so none is repeated either.
//! The channels hold at most [`CHANNEL_CAPACITY`] messages, so a slow sink slows the
//! source and memory stays bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::checkpoint::{newest, CheckpointStore, Checkpointing, DEFAULT_CHECKPOINT_INTERVAL_MS};
use super::exchange::{Downstream, Inputs, Outlet};
use super::progress::{first_id_base, ProgressLedger};
use super::snapshot::{self, SnapshotBoard, StateEntry};
use crate::connector::{ConnectorFactory, Progress, QueryContext, Sink, Source};
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Message, Operator, Timestamp, PROCESSING_TIME_INTERVAL_MS};
use crate::operators::{
    Changelog, Decode, Filter, HavingDeletes, IntervalJoin, JoinFront, JoinSide, LocalAggregate, LookupJoin, MatchRecognize, MetaColumns,
    Projection, UnionAll, UnionBranchChain, UnionInput, Watermarks, WindowAggregate, META_ROWTIME,
};
use crate::options::{ConnectorOptions, ErrorPolicy};
use crate::record::RawColumn;
use crate::sql::planner::QueryPlan;

/// Messages buffered between two stages (each is at most one micro-batch).
pub const CHANNEL_CAPACITY: usize = 4;

/// Workers of a query's stateful stages: the source's `'parallelism'`, else one per
/// core, for an aggregation, MATCH_RECOGNIZE or a two-input join (interval, temporal);
/// 1 for a stateless query (a lookup join included).
pub fn parallelism(plan: &QueryPlan) -> usize {
    let stateful =
        plan.aggregate.is_some() || plan.match_recognize.is_some() || plan.interval_join.is_some() || plan.temporal_join.is_some();
    if stateful {
        plan.source.parallelism.unwrap_or_else(default_parallelism).max(1)
    } else {
        1
    }
}

/// Workers for keyed operators when a source does not say (`'parallelism'`): one per core.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Opens the query's connectors through `factory` and starts its tasks; returns them
/// (each ends with its stage's result). Called by [`super::start`], which retries
/// this while it fails with a transient error.
///
/// With one worker: `source -> operators -> sink`. An aggregation with `n > 1` workers
/// (the source's `'parallelism'`, else one per core) runs
/// `source -> n x [decode .. filter] -> (by key) -> n x [window aggregate .. project] -> sink`:
/// each source partition is decoded by one worker, each group key aggregated by one
/// worker (one aggregation worker when there are no group keys), barriers aligned and
/// watermarks combined (minimum) where streams merge.
/// Every stage is its own tokio task, so stages run on all cores.
///
/// `given` is the sink to use instead of the plan's sink relation (a transient push
/// query's client, which keeps no checkpoint); it is left in place when opening fails,
/// for the next attempt.
///
/// Errors: the source or sink cannot be opened (broker or database unreachable, table
/// not creatable), a checkpoint cannot be read, or the operators cannot be built.
pub(super) async fn open(
    plan: &Arc<QueryPlan>,
    factory: &dyn ConnectorFactory,
    group_prefix: &str,
    given: &mut Option<Box<dyn Sink>>,
    checkpointing: Option<&Checkpointing>,
    metrics: &Arc<QueryMetrics>,
    stop_rx: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<Result<()>>>> {
    let plan = plan.clone();
    let metrics = metrics.clone();
    let stateful =
        plan.aggregate.is_some() || plan.match_recognize.is_some() || plan.interval_join.is_some() || plan.temporal_join.is_some();
    let keyed = plan.aggregate.as_ref().is_some_and(|a| !a.keys.is_empty())
        || plan.match_recognize.as_ref().is_some_and(|m| !m.partition_by.is_empty())
        || plan.interval_join.as_ref().is_some_and(|j| !j.left_keys.is_empty())
        || plan.temporal_join.as_ref().is_some_and(|j| !j.stream_keys.is_empty());
    // Decoding runs on n workers for any stateful query; the state needs keys to split on.
    let workers = parallelism(&plan);
    let backs = if keyed { workers } else { 1 };
    let transient = given.is_some();
    let ctx = QueryContext {
        query_id: plan.id.clone(),
        group_id: format!("{group_prefix}{}", plan.id),
        metrics: metrics.clone(),
        parallelism: workers,
        transient,
        resume_from: Vec::new(),
        resume_exact: false,
        // The checkpoint store's directory: the same sanitized name.
        state_dir: checkpointing
            .filter(|_| !transient)
            .map(|c| CheckpointStore::new(&c.dir, &format!("{group_prefix}{}", plan.id)).dir().to_path_buf()),
    };
    let mut sink = match given.take() {
        Some(sink) => sink,
        None => factory.sink(&plan.sink, &ctx).await?,
    };
    let lookup_table = match &plan.lookup_join {
        Some(j) => match open_lookup_table(factory, &j.table, &j.table_keys, &ctx).await {
            Ok(t) => Some(t),
            Err(e) => {
                if transient {
                    *given = Some(sink);
                }
                return Err(e);
            }
        },
        None => None,
    };
    let opened = open_source(&plan, factory, ctx, &mut sink, checkpointing, stateful).await;
    let Opened { source, restore, checkpoints, snapshots, late_sink, dead_letter_sink, resume_watermark } = match opened {
        Ok(o) => o,
        Err(e) => {
            if transient {
                *given = Some(sink);
            }
            return Err(e);
        }
    };
    let ledger = Arc::new(ProgressLedger::new(restore.progress.as_ref(), first_id_base(now_ms())));
    let (restore_watermark, restored_watermark) = resume_watermark;
    let resume = SourceResume {
        ledger: ledger.clone(),
        sink_watermark: restored_watermark,
        restore_watermark,
        barrier_every: checkpoints.as_ref().filter(|_| snapshots).map(|c| c.interval),
    };
    let states = restore.states.unwrap_or_default();
    let board = snapshots.then(|| Arc::new(SnapshotBoard::default()));
    let partitions = source.partitions();

    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (sink_tx, sink_rx) = mpsc::channel(CHANNEL_CAPACITY * backs);
    let mut tasks: Vec<JoinHandle<Result<()>>> = Vec::new();

    // Each task's place in the operator chain, for its snapshots and their restore.
    let task = |first_op: usize, worker: usize, workers: usize| TaskState { board: board.clone(), first_op, worker, workers };
    if let (Some(j), Some(table)) = (&plan.lookup_join, lookup_table) {
        // source -> decode .. watermark -> lookup join -> filter .. project -> sink (stateless).
        let (front, input_schema) = front_operators(&plan, &metrics, &partitions)?;
        let join = LookupJoin::new(j, &input_schema, plan.source.schema.fields().len())?;
        let back = back_operators(&plan, &metrics, &join.output_schema(), false)?;
        let (front_tx, front_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (join_tx, join_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (back_tx, back_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let first_back = front.len();
        tasks.push(tokio::spawn(run_source(source, Downstream::One(Outlet::new(front_tx, 0)), ack_rx, stop_rx, metrics.clone(), resume)));
        tasks.push(tokio::spawn(run_operators(front, Inputs::new(front_rx, 1), Downstream::One(Outlet::new(join_tx, 0)), task(0, 0, 1))));
        tasks.push(tokio::spawn(super::lookup::run_lookup(join, table, Inputs::new(join_rx, 1), Downstream::One(Outlet::new(back_tx, 0)))));
        tasks.push(tokio::spawn(run_operators(
            back,
            Inputs::new(back_rx, 1),
            Downstream::One(Outlet::new(sink_tx.clone(), 0)),
            task(first_back, 0, 1),
        )));
    } else if !plan.union.is_empty() {
        // source (every branch's topic) -> union (each branch decoded, filtered and
        // projected by its own chain) -> sink, one task.
        let union = union_operator(&plan, &metrics, &partitions)?;
        let ops: Vec<Box<dyn Operator>> = vec![Box::new(union)];
        let (ops_tx, ops_rx) = mpsc::channel(CHANNEL_CAPACITY);
        tasks.push(tokio::spawn(run_source(source, Downstream::One(Outlet::new(ops_tx, 0)), ack_rx, stop_rx, metrics.clone(), resume)));
        tasks.push(tokio::spawn(run_operators(
            ops,
            Inputs::new(ops_rx, 1),
            Downstream::One(Outlet::new(sink_tx.clone(), 0)),
            task(0, 0, 1),
        )));
    } else if workers == 1 && (plan.temporal_join.is_some() || plan.interval_join.is_some()) {
        // source (both topics) -> join front (each input decoded by its own chain) ->
        // join -> filter .. project -> sink, one task.
        let parts = join_operators(&plan, &metrics, &partitions)?;
        let mut ops: Vec<Box<dyn Operator>> = vec![Box::new(parts.front), parts.join];
        ops.extend(back_operators(&plan, &metrics, &parts.schema, false)?);
        let me = task(0, 0, 1);
        me.restore(&mut ops, &states)?;
        let (ops_tx, ops_rx) = mpsc::channel(CHANNEL_CAPACITY);
        tasks.push(tokio::spawn(run_source(source, Downstream::One(Outlet::new(ops_tx, 0)), ack_rx, stop_rx, metrics.clone(), resume)));
        tasks.push(tokio::spawn(run_operators(ops, Inputs::new(ops_rx, 1), Downstream::One(Outlet::new(sink_tx.clone(), 0)), me)));
    } else if plan.temporal_join.is_some() || plan.interval_join.is_some() {
        // source --by partition--> n x join front --by key--> n x [join .. project] -> sink.
        let mut back_txs = Vec::with_capacity(backs);
        for i in 0..backs {
            // Join worker i: the keys that hash to i, fed by every front worker.
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY * workers);
            back_txs.push(tx);
            let parts = join_operators(&plan, &metrics, &[])?;
            let mut ops: Vec<Box<dyn Operator>> = vec![parts.join];
            ops.extend(back_operators(&plan, &metrics, &parts.schema, false)?);
            let me = task(1, i, backs);
            me.restore(&mut ops, &states)?;
            tasks.push(tokio::spawn(run_operators(ops, Inputs::new(rx, workers), Downstream::One(Outlet::new(sink_tx.clone(), i)), me)));
        }
        let mut front_txs = Vec::with_capacity(workers);
        for i in 0..workers {
            // Front worker i: each input's partitions q with q mod n = i.
            let mine: Vec<i32> = partitions.iter().copied().filter(|p| p.div_euclid(2).rem_euclid(workers as i32) as usize == i).collect();
            let parts = join_operators(&plan, &metrics, &mine)?;
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            front_txs.push(Outlet::new(tx, 0));
            let outlets: Vec<Outlet> = back_txs.iter().map(|t| Outlet::new(t.clone(), i)).collect();
            let ops: Vec<Box<dyn Operator>> = vec![Box::new(parts.front)];
            tasks.push(tokio::spawn(run_operators(
                ops,
                Inputs::new(rx, 1),
                Downstream::ByJoinKey { outlets, keys: parts.keys },
                task(0, i, workers),
            )));
        }
        drop(back_txs);
        tasks.push(tokio::spawn(run_source(
            source,
            Downstream::ByPartition { outlets: front_txs, sources: 2 },
            ack_rx,
            stop_rx,
            metrics.clone(),
            resume,
        )));
    } else if workers == 1 {
        let (front, input_schema) = front_operators(&plan, &metrics, &partitions)?;
        let mut ops = front;
        ops.extend(back_operators(&plan, &metrics, &input_schema, false)?);
        let me = task(0, 0, 1);
        me.restore(&mut ops, &states)?;
        let (ops_tx, ops_rx) = mpsc::channel(CHANNEL_CAPACITY);
        tasks.push(tokio::spawn(run_source(source, Downstream::One(Outlet::new(ops_tx, 0)), ack_rx, stop_rx, metrics.clone(), resume)));
        tasks.push(tokio::spawn(run_operators(ops, Inputs::new(ops_rx, 1), Downstream::One(Outlet::new(sink_tx.clone(), 0)), me)));
    } else {
        let keys: Vec<Arc<dyn PhysicalExpr>> = plan
            .aggregate
            .iter()
            .flat_map(|a| a.keys.iter())
            .chain(plan.match_recognize.iter().flat_map(|m| m.partition_by.iter()))
            .map(|k| k.expr.clone())
            .collect();
        let mut back_txs = Vec::with_capacity(backs);
        let mut back_rxs = Vec::with_capacity(backs);
        for _ in 0..backs {
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY * workers);
            back_txs.push(tx);
            back_rxs.push(rx);
        }
        // An aggregation is pre-aggregated per batch on the front workers (Flink's
        // local-global aggregation): partial states cross the exchange, routed by their
        // key columns.
        let local = local_aggregation(&plan);
        let partial_keys = match (&plan.aggregate, local) {
            (Some(a), true) => Some(LocalAggregate::partial_keys(a.keys.len())),
            _ => None,
        };
        let mut front_txs = Vec::with_capacity(workers);
        for (i, rx) in back_rxs.into_iter().enumerate() {
            // Back worker i: window aggregate .. project, fed by every front worker.
            let (front, input_schema) = front_operators(&plan, &metrics, &[])?;
            let mut ops = back_operators(&plan, &metrics, &input_schema, local)?;
            let me = task(front.len(), i, backs);
            me.restore(&mut ops, &states)?;
            tasks.push(tokio::spawn(run_operators(ops, Inputs::new(rx, workers), Downstream::One(Outlet::new(sink_tx.clone(), i)), me)));
        }
        for i in 0..workers {
            // Front worker i: the partitions p with p mod n = i.
            let mine: Vec<i32> = partitions.iter().copied().filter(|p| p.rem_euclid(workers as i32) as usize == i).collect();
            let (mut ops, schema) = front_operators(&plan, &metrics, &mine)?;
            let me = task(0, i, workers);
            me.restore(&mut ops, &states)?;
            if let (Some(a), true) = (&plan.aggregate, local) {
                // Stateless, after the restore: it takes no place in the checkpoint's
                // chain of operators, so a query keeps its checkpoints across parallelisms.
                ops.push(Box::new(LocalAggregate::new(a, &schema)?));
            }
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            front_txs.push(Outlet::new(tx, 0));
            let outlets: Vec<Outlet> = back_txs.iter().map(|t| Outlet::new(t.clone(), i)).collect();
            tasks.push(tokio::spawn(run_operators(
                ops,
                Inputs::new(rx, 1),
                Downstream::ByKey { outlets, keys: keys.clone(), partial_keys: partial_keys.clone() },
                me,
            )));
        }
        drop(back_txs);
        tasks.push(tokio::spawn(run_source(
            source,
            Downstream::ByPartition { outlets: front_txs, sources: 1 },
            ack_rx,
            stop_rx,
            metrics.clone(),
            resume,
        )));
    }
    drop(sink_tx);
    let side = SideSinks { late: late_sink, dead_letters: dead_letter_sink };
    let sink_task = SinkTask { ledger, checkpoints, board, commit_on_watermark: !snapshots };
    tasks.push(tokio::spawn(run_sink(sink, side, Inputs::new(sink_rx, backs), ack_tx, metrics.clone(), sink_task)));

    Ok(tasks)
}

/// The table of a lookup join: a Kafka TABLE materialized from its topic
/// ([`super::table_state`]), or the connector's reader by key (PostgreSQL).
///
/// Errors: the table cannot be opened.
async fn open_lookup_table(
    factory: &dyn ConnectorFactory,
    table: &crate::catalog::Relation,
    key: &[String],
    ctx: &QueryContext,
) -> Result<Box<dyn crate::connector::LookupTable>> {
    if table.is_changelog() {
        Ok(Box::new(super::table_state::MaterializedTable::open(factory, table, ctx).await?))
    } else {
        factory.lookup_table(table, key, ctx).await
    }
}

/// What [`open`] opened besides the sink.
struct Opened {
    source: Box<dyn Source>,
    restore: Restore,
    checkpoints: Option<SinkCheckpoints>,
    /// A stateful query with checkpoints snapshots its operators at every barrier.
    snapshots: bool,
    late_sink: Option<Box<dyn Sink>>,
    dead_letter_sink: Option<Box<dyn Sink>>,
    /// Whether the source restores the stored watermark, and the one the sink committed.
    resume_watermark: (bool, Option<i64>),
}

/// Reads where the query resumes (the sink's committed progress, the newest usable
/// checkpoint), hands it to the sink, then opens the source and the side sinks.
async fn open_source(
    plan: &QueryPlan,
    factory: &dyn ConnectorFactory,
    mut ctx: QueryContext,
    sink: &mut Box<dyn Sink>,
    checkpointing: Option<&Checkpointing>,
    stateful: bool,
) -> Result<Opened> {
    // The sink first: the progress it committed with its rows is where the source
    // resumes, where it is ahead of the consumer group's offsets.
    // Checkpoints are kept for queries over Kafka; a file is read whole on every run.
    let store = match checkpointing {
        Some(c) if !ctx.transient && matches!(plan.source.connector, ConnectorOptions::Kafka(_)) => {
            Some(CheckpointStore::new(&c.dir, &ctx.group_id).with_plan(plan.state_fingerprint()))
        }
        _ => None,
    };
    let interval = Duration::from_millis(
        plan.checkpoint_interval_ms.or(checkpointing.map(|c| c.interval_ms)).unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_MS),
    );
    // A stateful query with checkpoints snapshots its operators at every barrier; its
    // source sends one barrier per checkpoint interval. So does a query writing to a
    // webhook, stateful or not: its idempotency keys follow the checkpoint its rows come
    // after, so a restart must resume exactly there.
    let exact_replay = matches!(plan.sink.connector, ConnectorOptions::Webhook(_));
    let snapshots = (stateful || exact_replay) && store.is_some();
    let committed = sink.restored_progress().await?;
    let restore = match &store {
        Some(store) => choose_restore(store, committed, snapshots, &plan.id)?,
        None => Restore { progress: committed, states: None },
    };
    if let Some(r) = &restore.progress {
        ctx.resume_from = r.positions.clone();
        // Restored state belongs to exactly these positions.
        ctx.resume_exact = restore.states.is_some();
    }
    sink.resume(restore.progress.as_ref()).await?;
    let checkpoints = store.map(|store| SinkCheckpoints { store, interval, last: Instant::now(), every_barrier: snapshots });
    // Without restored state, a window aggregate resumes at the stored watermark: rows
    // of windows already written are late and not counted into a second, partial copy.
    // MATCH_RECOGNIZE does not: a row it held in a partial match lies behind that
    // watermark, and would be dropped as late on the replay (the match lost). It
    // replays from the resume position with the watermark rebuilt from the rows; a
    // match completed again is suppressed by a Kafka sink (`Sink::resume`) or upserted
    // by a keyed table. With restored state, the operators restore their own watermarks.
    let restore_watermark =
        plan.match_recognize.is_none() && plan.interval_join.is_none() && plan.temporal_join.is_none() && restore.states.is_none();
    let restored_watermark = restore.progress.as_ref().and_then(|r| r.watermark).filter(|_| restore_watermark);
    // An interval join's right stream, or UNION ALL's other branches, read by the same
    // source; their consumers report no lag (their partition numbers would collide in
    // the query's counters).
    // A versioned table is read from the start of its topic, whatever it says.
    let versioned = plan.temporal_join.as_ref().map(|j| {
        let mut table = j.table.as_ref().clone();
        if let ConnectorOptions::Kafka(k) = &mut table.connector {
            k.startup = crate::options::StartupMode::Earliest;
        }
        table
    });
    let others: Vec<&crate::catalog::Relation> = plan
        .interval_join
        .iter()
        .map(|j| j.right.as_ref())
        .chain(plan.union.iter().map(|b| b.source.as_ref()))
        .chain(versioned.iter())
        .collect();
    let source = if others.is_empty() {
        factory.source(&plan.source, &ctx).await?
    } else {
        let mut sub = ctx.clone();
        sub.metrics = Arc::new(QueryMetrics::default());
        // A topic read by two inputs (a stream joined with itself) is read once.
        let mut sources: Vec<(String, Box<dyn Source>)> = Vec::with_capacity(others.len() + 1);
        let mut read: Vec<(Option<String>, String)> = Vec::with_capacity(others.len() + 1);
        let mut inputs = Vec::with_capacity(others.len() + 1);
        for relation in std::iter::once(plan.source.as_ref()).chain(others) {
            // The same topic on the same cluster.
            let cluster = match &relation.connector {
                ConnectorOptions::Kafka(k) => k.bootstrap_servers.clone(),
                _ => None,
            };
            let key = (cluster, topic_of(relation));
            match read.iter().position(|r| *r == key) {
                Some(r) => inputs.push(r),
                None => {
                    inputs.push(sources.len());
                    sources.push((key.1.clone(), factory.source(relation, &sub).await?));
                    read.push(key);
                }
            }
        }
        Box::new(super::union_source::UnionSource::new(sources, inputs)) as Box<dyn Source>
    };
    let late_sink = match (stateful, &plan.source.event_time.late_rows_topic) {
        (true, Some(topic)) => Some(factory.raw_sink(&plan.source, topic, &ctx).await?),
        _ => None,
    };
    // Dead letters of a transient push query are not written: the persistent queries
    // reading the same source write them once.
    let dead_letter_sink = match plan.source.connector.dead_letter() {
        Some(target) if !ctx.transient && plan.source.connector.error_policy() == ErrorPolicy::DeadLetter => {
            Some(factory.dead_letter_sink(&plan.source, target, &ctx).await?)
        }
        _ => None,
    };
    Ok(Opened {
        source,
        restore,
        checkpoints,
        snapshots,
        late_sink,
        dead_letter_sink,
        resume_watermark: (restore_watermark, restored_watermark),
    })
}

/// The operators before the key exchange (docs/DESIGN.md, data flow):
/// decode -> [computed columns] -> [watermark] -> [filter], and the schema they emit.
/// `partitions` are the source partitions this worker reads (for its watermark).
fn front_operators(plan: &QueryPlan, metrics: &Arc<QueryMetrics>, partitions: &[i32]) -> Result<(Vec<Box<dyn Operator>>, SchemaRef)> {
    let source = &plan.source;
    let Some(format) = source.connector.format() else {
        return Err(EngineError::statement(format!("\"{}\" cannot be read", source.name)));
    };
    let policy = source.connector.error_policy();
    // Event time is read for the stateful operators and for a Kafka sink, which writes it
    // as the record timestamp (so a row whose event time does not parse is malformed
    // there too, as in ksqlDB).
    let stateful = plan.aggregate.is_some() || plan.match_recognize.is_some();
    let timed = stateful || matches!(plan.sink.connector, ConnectorOptions::Kafka(_));
    // An aggregation of a TABLE reads its changelog: updates and deletes take back rows.
    let changelog = plan.aggregate.is_some() && source.is_changelog();
    let meta = match timed {
        false => MetaColumns::None,
        true if source.event_time.late_rows_topic.is_some() || changelog => MetaColumns::Record,
        true => MetaColumns::Position,
    };
    let mut decode = decode_operator(source, format, metrics, meta, changelog, &plan.id)?;
    if let Some(read) = crate::sql::columns_read::columns_read(plan) {
        decode = decode.reading_only(&read);
    }
    let mut ops: Vec<Box<dyn Operator>> = vec![Box::new(decode)];
    let mut schema: SchemaRef = meta.extend(&source.physical_schema());
    if let Some(computed) = computed_columns(source, meta)? {
        schema = computed.output_schema();
        ops.push(Box::new(computed));
    }
    if changelog {
        let op = Changelog::new(&schema, source.schema.fields().len(), &source.key)?;
        schema = op.output_schema();
        ops.push(Box::new(op));
    }
    if timed {
        let watermarks = Watermarks::new(&source.event_time, &schema, partitions, now_ms(), metrics.clone(), policy, plan.id.clone())?;
        schema = watermarks.output_schema();
        ops.push(Box::new(watermarks));
    }
    let joined = plan.lookup_join.is_some() || plan.interval_join.is_some() || plan.temporal_join.is_some();
    if let (Some(filter), None, false) = (&plan.filter, &plan.match_recognize, joined) {
        ops.push(Box::new(Filter::new(filter.expr.clone())));
    }
    Ok((ops, schema))
}

/// The projection that evaluates `source`'s computed columns after decoding: every
/// declared column in order (computed ones evaluated), then the `meta` columns; `None`
/// when it has none.
///
/// Errors: a declared column is missing from the physical schema.
fn computed_columns(source: &crate::catalog::Relation, meta: MetaColumns) -> Result<Option<Projection>> {
    if source.computed.is_empty() {
        return Ok(None);
    }
    let physical = source.physical_schema();
    let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    for field in source.schema.fields() {
        match source.computed.iter().find(|c| &c.name == field.name()) {
            Some(c) => exprs.push(c.expr.clone()),
            None => exprs.push(Arc::new(Column::new(field.name(), physical.index_of(field.name())?))),
        }
    }
    for (j, f) in meta.fields().iter().enumerate() {
        exprs.push(Arc::new(Column::new(f.name(), physical.fields().len() + j)));
    }
    let mut fields: Vec<Field> = source.schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.extend(meta.fields());
    Ok(Some(Projection::new(exprs, Arc::new(Schema::new(fields)))))
}

/// The topic a relation's records carry (its name where it has none).
fn topic_of(relation: &crate::catalog::Relation) -> String {
    match &relation.connector {
        ConnectorOptions::Kafka(k) => k.topic.clone(),
        _ => relation.name.clone(),
    }
}

/// UNION ALL of `plan`: each branch's chain (decode, computed columns, [watermark when
/// the rows go to Kafka, for their timestamps], [filter], its projection), over its
/// partitions of the union source (`partitions`, renumbered).
///
/// Errors: a stream cannot be decoded, or a column is missing.
fn union_operator(plan: &QueryPlan, metrics: &Arc<QueryMetrics>, partitions: &[i32]) -> Result<UnionAll> {
    let timed = matches!(plan.sink.connector, ConnectorOptions::Kafka(_));
    let mut fields: Vec<Field> = plan.output_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    if timed {
        fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), true));
    }
    let output = Arc::new(Schema::new(fields));
    let n = plan.union.len() + 1;
    let first = (plan.source.as_ref(), plan.filter.as_ref(), plan.projection.as_slice());
    let rest = plan.union.iter().map(|b| (b.source.as_ref(), b.filter.as_ref(), b.projection.as_slice()));
    let mut branches = Vec::with_capacity(n);
    for (i, (relation, filter, projection)) in std::iter::once(first).chain(rest).enumerate() {
        let Some(format) = relation.connector.format() else {
            return Err(EngineError::statement(format!("\"{}\" cannot be read", relation.name)));
        };
        let meta = if timed { MetaColumns::Position } else { MetaColumns::None };
        let mut chain: Vec<Box<dyn Operator>> = vec![Box::new(decode_operator(relation, format, metrics, meta, false, &plan.id)?)];
        let mut schema: SchemaRef = meta.extend(&relation.physical_schema());
        if let Some(computed) = computed_columns(relation, meta)? {
            schema = computed.output_schema();
            chain.push(Box::new(computed));
        }
        if timed {
            let mine: Vec<i32> = partitions.iter().copied().filter(|p| p.rem_euclid(n as i32) as usize == i).collect();
            let policy = relation.connector.error_policy();
            let watermarks = Watermarks::new(&relation.event_time, &schema, &mine, now_ms(), metrics.clone(), policy, plan.id.clone())?;
            schema = watermarks.output_schema();
            chain.push(Box::new(watermarks));
        }
        if let Some(f) = filter {
            chain.push(Box::new(Filter::new(f.expr.clone())));
        }
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = projection.iter().map(|p| p.expr.clone()).collect();
        if timed {
            exprs.push(Arc::new(Column::new(META_ROWTIME, schema.index_of(META_ROWTIME)?)));
        }
        chain.push(Box::new(Projection::new(exprs, output.clone())));
        branches.push(UnionBranchChain { input: UnionInput { index: i, of: n }, chain });
    }
    Ok(UnionAll::new(branches, output))
}

/// A join input's chain: decode (`changelog`: tombstones as rows whose `__value` is
/// NULL), computed columns, watermark over its partitions of a two-topic source (input
/// `i` of 2; `partitions` renumbered).
///
/// Errors: the relation cannot be decoded, or a column is missing.
fn join_input(
    plan: &QueryPlan,
    relation: &crate::catalog::Relation,
    i: usize,
    keys: &[crate::sql::planner::PlannedExpr],
    changelog: bool,
    metrics: &Arc<QueryMetrics>,
    partitions: &[i32],
) -> Result<JoinSide> {
    let Some(format) = relation.connector.format() else {
        return Err(EngineError::statement(format!("\"{}\" cannot be read", relation.name)));
    };
    let meta = if changelog { MetaColumns::Record } else { MetaColumns::Position };
    let mut chain: Vec<Box<dyn Operator>> = vec![Box::new(decode_operator(relation, format, metrics, meta, changelog, &plan.id)?)];
    let mut schema: SchemaRef = meta.extend(&relation.physical_schema());
    if let Some(computed) = computed_columns(relation, meta)? {
        schema = computed.output_schema();
        chain.push(Box::new(computed));
    }
    let mine: Vec<i32> = partitions.iter().copied().filter(|p| p.rem_euclid(2) as usize == i).collect();
    let policy = relation.connector.error_policy();
    let mut watermarks = Watermarks::new(&relation.event_time, &schema, &mine, now_ms(), metrics.clone(), policy, plan.id.clone())?;
    if changelog {
        watermarks = watermarks.with_tombstone_time(&schema)?;
    }
    schema = watermarks.output_schema();
    chain.push(Box::new(watermarks));
    Ok(JoinSide {
        input: UnionInput { index: i, of: 2 },
        chain,
        schema,
        columns: relation.schema.fields().len(),
        keys: keys.iter().map(|k| k.expr.clone()).collect(),
    })
}

/// A two-input join's operators for one worker: the front (each input's chain over
/// `partitions`, the union source's renumbered partitions this worker reads), the join,
/// its output schema, and each side's key expressions for the exchange.
struct JoinParts {
    front: JoinFront,
    join: Box<dyn Operator>,
    schema: SchemaRef,
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
}

/// The interval or event-time temporal join of `plan` (see [`JoinParts`]): the temporal
/// join's stream is side 0 and its versioned table (its changelog) side 1, the table
/// read first in each micro-batch; the interval join's left stream side 0.
///
/// Errors: an input cannot be decoded, or the join cannot be built.
fn join_operators(plan: &QueryPlan, metrics: &Arc<QueryMetrics>, partitions: &[i32]) -> Result<JoinParts> {
    match (&plan.temporal_join, &plan.interval_join) {
        (Some(j), _) => {
            let (front, join, keys) = temporal_join_operator(plan, j, metrics, partitions)?;
            let schema = join.output_schema();
            Ok(JoinParts { front, join: Box::new(join), schema, keys })
        }
        (None, Some(j)) => {
            let (front, join, keys) = interval_join_operator(plan, j, metrics, partitions)?;
            let schema = join.output_schema();
            Ok(JoinParts { front, join: Box::new(join), schema, keys })
        }
        (None, None) => Err(EngineError::Internal("a join without its plan".into())),
    }
}

/// The event-time temporal join of `plan` for one worker: its front, the join, and each
/// side's key expressions (see [`JoinParts`]).
///
/// Errors: an input cannot be decoded, or the join cannot be built.
#[allow(clippy::type_complexity)]
fn temporal_join_operator(
    plan: &QueryPlan,
    j: &crate::sql::temporal_join::TemporalJoinPlan,
    metrics: &Arc<QueryMetrics>,
    partitions: &[i32],
) -> Result<(JoinFront, crate::operators::TemporalJoin, [Vec<Arc<dyn PhysicalExpr>>; 2])> {
    let mut stream = join_input(plan, &plan.source, 0, &j.stream_keys, false, metrics, partitions)?;
    let mut table = join_input(plan, &j.table, 1, &j.table_keys, true, metrics, partitions)?;
    let front = JoinFront::take_chains([&mut stream, &mut table], [1, 0]);
    let keys = [stream.keys.clone(), table.keys.clone()];
    let join =
        crate::operators::TemporalJoin::new(stream, table, j.left_outer, j.condition.as_ref().map(|c| c.expr.clone()), metrics.clone())?;
    Ok((front, join, keys))
}

/// The interval join of `plan` for one worker: its front, the join, and each side's key
/// expressions (see [`JoinParts`]).
///
/// Errors: a stream cannot be decoded, or the join cannot be built.
#[allow(clippy::type_complexity)]
fn interval_join_operator(
    plan: &QueryPlan,
    j: &crate::sql::interval_join::IntervalJoinPlan,
    metrics: &Arc<QueryMetrics>,
    partitions: &[i32],
) -> Result<(JoinFront, IntervalJoin, [Vec<Arc<dyn PhysicalExpr>>; 2])> {
    let mut left = join_input(plan, &plan.source, 0, &j.left_keys, false, metrics, partitions)?;
    let mut right = join_input(plan, &j.right, 1, &j.right_keys, false, metrics, partitions)?;
    let front = JoinFront::take_chains([&mut left, &mut right], [0, 1]);
    let keys = [left.keys.clone(), right.keys.clone()];
    let join = IntervalJoin::new(
        left,
        right,
        j.kind,
        j.before_ms,
        j.after_ms,
        j.grace_ms,
        j.condition.as_ref().map(|c| c.expr.clone()),
        metrics.clone(),
    )?
    .with_state_ttl(j.state_ttl_ms);
    Ok((front, join, keys))
}

/// The Decode operator of `source` (in `format`): its record key, an unwrapped single
/// value, and, for a `changelog` (a TABLE's topic), tombstones decoded as rows of NULLs
/// whose `__value` (with `meta` = Record) tells them apart.
///
/// Errors: the record key columns cannot be decoded in the key format.
pub(super) fn decode_operator(
    source: &crate::catalog::Relation,
    format: crate::options::Format,
    metrics: &Arc<QueryMetrics>,
    meta: MetaColumns,
    changelog: bool,
    query_id: &str,
) -> Result<Decode> {
    let physical = source.physical_schema();
    let policy = source.connector.error_policy();
    let mut decode = Decode::new(format, physical.clone(), metrics.clone(), policy, query_id.to_string()).with_meta(meta);
    if let crate::options::ConnectorOptions::Kafka(k) = &source.connector {
        if k.record_key && !source.key.is_empty() {
            decode = decode.with_record_key(format, k.key_format, &source.key)?;
        }
        let keys: &[String] = if k.record_key { &source.key } else { &[] };
        let unwrapped = !k.wrap_single_value && matches!(format, crate::options::Format::Json);
        if unwrapped {
            if let Some(value) = physical.fields().iter().find(|f| !keys.contains(f.name())) {
                decode = decode.with_unwrapped_value(value.name());
            }
        }
        if changelog {
            // A tombstone decodes as a row of NULLs; the changelog deletes its key.
            let placeholder = match format {
                crate::options::Format::Json if unwrapped => b"null".to_vec(),
                crate::options::Format::Json => b"{}".to_vec(),
                crate::options::Format::Delimited { delimiter, .. } => {
                    let values = physical.fields().iter().filter(|f| !keys.contains(f.name())).count();
                    vec![delimiter; values.saturating_sub(1)]
                }
            };
            decode = decode.with_tombstones(placeholder);
        }
    }
    Ok(decode)
}

/// Whether an aggregation running on several workers is pre-aggregated before its key
/// exchange ([`LocalAggregate::applies`]), unless the session's
/// `table.optimizer.agg-phase-strategy` is `ONE_PHASE`.
pub fn local_aggregation(plan: &QueryPlan) -> bool {
    if plan.one_phase_aggregation {
        return false;
    }
    let late_rows_to_topic = plan.source.event_time.late_rows_topic.is_some();
    plan.aggregate.as_ref().is_some_and(|a| LocalAggregate::applies(a, late_rows_to_topic))
}

/// The operators after the key exchange (or after a lookup join): [filter] (after a
/// lookup join), [match_recognize -> [filter]] or [window aggregate -> [having]], then
/// project; over `input` (the front's output schema). `partials`: the aggregation merges
/// a [`LocalAggregate`]'s partial states as well as rows.
fn back_operators(plan: &QueryPlan, metrics: &Arc<QueryMetrics>, input: &SchemaRef, partials: bool) -> Result<Vec<Box<dyn Operator>>> {
    let mut ops: Vec<Box<dyn Operator>> = Vec::new();
    if let (Some(filter), true) = (&plan.filter, plan.lookup_join.is_some() || plan.interval_join.is_some() || plan.temporal_join.is_some())
    {
        // WHERE reads the joined rows.
        ops.push(Box::new(Filter::new(filter.expr.clone())));
    }
    if let Some(m) = &plan.match_recognize {
        let mut matcher = MatchRecognize::new(m, input, metrics.clone())?;
        if matches!(plan.source.connector, ConnectorOptions::Filesystem(_)) {
            // A file's partitions are splits of one sequence of lines.
            matcher = matcher.with_one_offset_sequence();
        }
        ops.push(Box::new(matcher));
        if let Some(filter) = &plan.filter {
            ops.push(Box::new(Filter::new(filter.expr.clone())));
        }
    }
    // A changing table written to a keyed Kafka topic: HAVING marks the groups that fail
    // it, and the sink writes their tombstones (ksqlDB); elsewhere it filters.
    let kafka_sink = matches!(plan.sink.connector, ConnectorOptions::Kafka(_));
    let mut marks_deletes = false;
    if let Some(aggregate) = &plan.aggregate {
        let mut op = WindowAggregate::new(aggregate, input, metrics.clone())?;
        if partials {
            op = op.merging_partials();
        }
        ops.push(Box::new(op));
        // Sessions with EMIT CHANGES mark the sessions merges replaced (the planner lets
        // them write to keyed Kafka topics only).
        marks_deletes = aggregate.emit == crate::sql::ast::Emit::Changes
            && matches!(aggregate.window.as_ref().map(|w| w.kind), Some(crate::sql::ast::WindowKind::Session { .. }));
        if let Some(having) = &plan.having {
            let keyed_kafka = matches!(&plan.sink.connector, ConnectorOptions::Kafka(k) if k.record_key);
            if keyed_kafka && aggregate.emit == crate::sql::ast::Emit::Changes {
                marks_deletes = true;
                ops.push(Box::new(HavingDeletes::new(having.expr.clone())));
            } else {
                ops.push(Box::new(Filter::new(having.expr.clone())));
            }
        }
    }
    // Rows are built with every column nullable: a NULL where the sink wants a value is
    // the sink's to report, not a reason to fail the whole batch here.
    let mut fields: Vec<_> = plan.output_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let mut exprs: Vec<Arc<dyn PhysicalExpr>> = plan.projection.iter().map(|p| p.expr.clone()).collect();
    // The marks of HAVING's deletes pass to the sink, which writes tombstones for them.
    if marks_deletes {
        let at = plan.aggregate.as_ref().map(|a| a.output_schema.fields().len() + 1).unwrap_or_default();
        exprs.push(Arc::new(Column::new(crate::operators::having_deletes::DELETE, at)));
        fields.push(Field::new(crate::operators::having_deletes::DELETE, DataType::Boolean, false));
    }
    // A Kafka sink writes each row's time as the record timestamp (ksqlDB's ROWTIME): the
    // row's own `__rowtime` through a projection, the largest aggregated one after an
    // aggregation, the last row's after MATCH_RECOGNIZE (both operators append it).
    if kafka_sink {
        let rowtime = match (&plan.aggregate, &plan.match_recognize) {
            (Some(a), _) => a.output_schema.fields().len(),
            (None, Some(m)) => m.output_schema.fields().len(),
            (None, None) => input.index_of(META_ROWTIME)?,
        };
        exprs.push(Arc::new(Column::new(META_ROWTIME, rowtime)));
        fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), true));
    }
    ops.push(Box::new(Projection::new(exprs, Arc::new(Schema::new(fields)))));
    Ok(ops)
}

fn value_bytes(batch: &RecordBatch) -> u64 {
    let values = batch.column(RawColumn::Value as usize).as_binary::<i32>();
    (values.value_offsets().last().copied().unwrap_or(0) - values.value_offsets().first().copied().unwrap_or(0)) as u64
}

async fn run_source(
    mut source: Box<dyn Source>,
    out: Downstream,
    mut acks: mpsc::UnboundedReceiver<Progress>,
    stop: watch::Receiver<bool>,
    metrics: Arc<QueryMetrics>,
    resume: SourceResume,
) -> Result<()> {
    let SourceResume { ledger, sink_watermark, restore_watermark, barrier_every } = resume;
    let mut next_id = ledger.first_barrier_id();
    // The newer of the watermark stored with the group's offsets and the one the sink
    // committed with its progress (watermarks only grow).
    let stored = source.restored_watermark().filter(|_| restore_watermark);
    let restored = match (stored, sink_watermark) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    if let Some(w) = restored {
        tracing::info!(watermark = w, "resuming from the watermark stored with the committed progress");
        out.send(Message::Watermark(w)).await?;
    }
    // Rows sent since the last barrier, and when that barrier went.
    let mut unbarriered = false;
    let mut last_barrier = Instant::now();
    loop {
        while let Ok(progress) = acks.try_recv() {
            source.commit(&progress.positions, progress.watermark).await?;
        }
        if *stop.borrow() {
            break;
        }
        let Some(batch) = source.next_batch().await? else {
            if source.is_bounded() {
                // A bounded source (a file) is complete: the final watermark closes
                // every window before the end (Flink's MAX_WATERMARK).
                out.send(Message::Watermark(Timestamp::MAX)).await?;
            }
            break;
        };
        let rows = batch.records.num_rows();
        if rows > 0 {
            metrics.add_in(rows as u64, value_bytes(&batch.records));
            ledger.record(next_id, batch.positions);
            // Time blocked here is backpressure: it pauses the idle timers of the
            // partitions (see `Watermarks`).
            let sending = Instant::now();
            out.send(Message::Batch(batch.records)).await?;
            metrics.add_source_stalled(sending.elapsed().as_millis() as i64);
            unbarriered = true;
        }
        // A barrier after every micro-batch, or, where operators snapshot their state at
        // each barrier, once per checkpoint interval, also when no row came: rows that
        // windows closed by idleness emitted are committed only at a barrier.
        if barrier_every.map_or(unbarriered, |every| last_barrier.elapsed() >= every) {
            out.send(Message::Barrier(next_id)).await?;
            next_id += 1;
            unbarriered = false;
            last_barrier = Instant::now();
        }
    }
    if (unbarriered || barrier_every.is_some()) && !source.is_bounded() {
        // The last checkpoint: a restart resumes exactly here.
        out.send(Message::Barrier(next_id)).await?;
    }
    out.send(Message::End).await?;
    drop(out);
    // The sink acknowledges what it commits until it ends (then the channel closes).
    let mut last = None;
    while let Some(progress) = acks.recv().await {
        last = Some(progress);
    }
    if let Some(progress) = last {
        source.commit(&progress.positions, progress.watermark).await?;
    }
    source.close().await
}

/// What the source task resumes from and records progress in.
struct SourceResume {
    /// Positions of the micro-batches under their barrier ids.
    ledger: Arc<ProgressLedger>,
    /// The watermark committed with the progress resumed from (ms).
    sink_watermark: Option<i64>,
    /// Whether to start from a stored watermark at all (not for MATCH_RECOGNIZE, nor
    /// when operator state was restored).
    restore_watermark: bool,
    /// `None`: a barrier after every micro-batch; else at most one per this interval.
    barrier_every: Option<Duration>,
}

/// What a query starts from: the progress to resume at, and the operator states of the
/// checkpoint it belongs to, when there is one.
struct Restore {
    progress: Option<Progress>,
    states: Option<Vec<StateEntry>>,
}

/// Which checkpoint a query restores (docs/DESIGN.md fault tolerance).
///
/// A stateful query (`snapshots`) restores operator state with exactly the positions it
/// was taken at. With a sink that commits its progress with its rows (PostgreSQL), the
/// sink decides: the checkpoint with the id it committed last, because the rows of a
/// later checkpoint may have been lost with its transaction. Otherwise the newest
/// checkpoint. When that checkpoint is missing or holds no state (written by an
/// earlier version), the query resumes at the newest positions without state, as a
/// stateless one does: from the newer of the local checkpoint and the sink's progress.
fn choose_restore(store: &CheckpointStore, committed: Option<Progress>, snapshots: bool, query: &str) -> Result<Restore> {
    let local = store.latest()?;
    if snapshots {
        let wanted = committed.as_ref().or(local.as_ref()).map(|p| p.checkpoint_id);
        let checkpoint = match wanted {
            Some(id) => store.load(id)?,
            None => None,
        };
        match checkpoint {
            Some(c) if c.with_state => {
                if let (Some(taken), Some(now)) = (c.plan.as_deref(), store.plan()) {
                    if taken != now {
                        return Err(changed_plan(query, c.progress.checkpoint_id, taken, now, store.dir()));
                    }
                }
                tracing::info!(
                    query,
                    checkpoint = c.progress.checkpoint_id,
                    operators = c.states.len(),
                    "restoring the operator state of checkpoint"
                );
                return Ok(Restore { progress: Some(c.progress), states: Some(c.states) });
            }
            _ if wanted.is_some() => tracing::warn!(
                query,
                checkpoint = wanted,
                dir = %store.dir().display(),
                "no local checkpoint with operator state for the committed progress; resuming from the committed positions without state"
            ),
            _ => {}
        }
    }
    let from = if committed.as_ref().is_some_and(|c| c.checkpoint_id >= local.as_ref().map_or(0, |l| l.checkpoint_id)) {
        "the sink's committed progress"
    } else {
        "the local checkpoint"
    };
    let progress = newest(local, committed);
    if let Some(p) = &progress {
        tracing::info!(query, checkpoint = p.checkpoint_id, "resuming from {from}");
    }
    Ok(Restore { progress, states: None })
}

/// The error of a checkpoint whose state was taken of another plan: the first line that
/// differs, and the ways out.
fn changed_plan(query: &str, checkpoint: u64, taken: &str, now: &str, dir: &std::path::Path) -> EngineError {
    let (was, is) = taken
        .lines()
        .zip(now.lines().chain(std::iter::repeat("")))
        .find(|(a, b)| a != b)
        .unwrap_or_else(|| ("", now.lines().nth(taken.lines().count()).unwrap_or("")));
    EngineError::State(format!(
        "query {query} changed since its checkpoint {checkpoint} was taken, so its operator state cannot be restored: the checkpoint has `{}` where the query now has `{}`; run the statement the checkpoint was taken with, or delete {} to start the query without state (it resumes from the consumer group's committed offsets)",
        was.trim(),
        is.trim(),
        dir.display()
    ))
}

/// An operator task's place in the query: where it leaves its snapshots, and which
/// operators and worker it runs, to find its state in a checkpoint.
struct TaskState {
    /// Where snapshots go; `None` when the query keeps no operator state.
    board: Option<Arc<SnapshotBoard>>,
    /// The chain position of the task's first operator.
    first_op: usize,
    /// This worker, `0..workers`.
    worker: usize,
    /// Workers of the stage.
    workers: usize,
}

impl TaskState {
    /// Restores `ops` from a checkpoint's `states`.
    ///
    /// Errors: a state does not belong to the operator at its place (the query changed),
    /// or the operator cannot read it.
    fn restore(&self, ops: &mut [Box<dyn Operator>], states: &[StateEntry]) -> Result<()> {
        for (j, op) in ops.iter_mut().enumerate() {
            let index = self.first_op + j;
            if let Some(e) = states.iter().find(|e| e.op == index && e.name != op.name()) {
                return Err(EngineError::State(format!(
                    "the checkpoint holds the state of a {} operator where this query has a {}: it was taken of another query; delete the checkpoint directory to start without state",
                    e.name,
                    op.name()
                )));
            }
            let (mine, shard) = snapshot::states_for(states, index, self.worker, self.workers);
            if !mine.is_empty() {
                op.restore(mine, shard).map_err(|e| e.in_operator(op.name()))?;
            }
        }
        Ok(())
    }

    /// Snapshots `ops` at barrier `id` onto the board.
    ///
    /// Errors: an operator's state cannot be taken.
    fn snapshot(&self, id: u64, ops: &mut [Box<dyn Operator>]) -> Result<()> {
        let Some(board) = &self.board else { return Ok(()) };
        for (j, op) in ops.iter_mut().enumerate() {
            let state = op.snapshot().map_err(|e| e.in_operator(op.name()))?;
            if !state.batches.is_empty() {
                board.deposit(
                    id,
                    StateEntry { op: self.first_op + j, name: op.name().to_string(), worker: self.worker, workers: self.workers, state },
                );
            }
        }
        Ok(())
    }
}

/// A query's local checkpoints, written by the sink task.
struct SinkCheckpoints {
    store: CheckpointStore,
    interval: Duration,
    last: Instant,
    /// Write one at every barrier, with the operators' states (a stateful query), or
    /// at most once per `interval` (positions only).
    every_barrier: bool,
}

/// What the sink task needs besides its sinks.
struct SinkTask {
    /// Positions of the micro-batches under their barrier ids.
    ledger: Arc<ProgressLedger>,
    /// The local checkpoints, if the query keeps them.
    checkpoints: Option<SinkCheckpoints>,
    /// Operator states left at barriers, if the query snapshots them.
    board: Option<Arc<SnapshotBoard>>,
    /// Commit when a watermark released rows, not only at barriers: for queries whose
    /// operator state is not checkpointed (with it, the sink's rows must be exactly
    /// those before a barrier, to match the state restored with it).
    commit_on_watermark: bool,
}

/// Feeds `messages` through `ops` in order and returns what comes out of the last one.
/// `End` and late rows pass every operator untouched.
fn push_through(ops: &mut [Box<dyn Operator>], mut messages: Vec<Message>, collector: &mut Collector) -> Result<Vec<Message>> {
    for op in ops.iter_mut() {
        if messages.is_empty() {
            break;
        }
        for m in std::mem::take(&mut messages) {
            match m {
                Message::Batch(b) => op.on_batch(b, collector).map_err(|e| e.in_operator(op.name()))?,
                Message::Watermark(w) => op.on_watermark(w, collector).map_err(|e| e.in_operator(op.name()))?,
                Message::Barrier(id) => op.on_barrier(id, collector).map_err(|e| e.in_operator(op.name()))?,
                passthrough @ (Message::LateRows(_) | Message::DeadLetters(_) | Message::Idle | Message::End) => {
                    messages.extend(collector.take());
                    messages.push(passthrough);
                    continue;
                }
            }
            messages.extend(collector.take());
        }
    }
    Ok(messages)
}

/// Sends every message; returns true once `End` went through.
async fn send_all(out: &Downstream, messages: Vec<Message>) -> Result<bool> {
    let mut ended = false;
    for m in messages {
        ended |= matches!(m, Message::End);
        out.send(m).await?;
    }
    Ok(ended)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn run_operators(mut ops: Vec<Box<dyn Operator>>, mut input: Inputs, out: Downstream, task: TaskState) -> Result<()> {
    let mut collector = Collector::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(PROCESSING_TIME_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = input.recv() => {
                let Some(message) = message else { break };
                let barrier = match message {
                    Message::Barrier(id) => Some(id),
                    _ => None,
                };
                let emitted = push_through(&mut ops, vec![message], &mut collector)?;
                if let Some(id) = barrier {
                    // Every operator has seen exactly the rows before the barrier (no
                    // operator holds a barrier back): snapshot before it goes on, so the
                    // sink finds the states when it gets there.
                    task.snapshot(id, &mut ops)?;
                }
                if send_all(&out, emitted).await? {
                    break;
                }
            }
            _ = tick.tick() => {
                // What an operator emits on processing time (e.g. a watermark once a
                // partition is idle) flows through the operators after it.
                let now = now_ms();
                for i in 0..ops.len() {
                    ops[i].on_processing_time(now, &mut collector).map_err(|e| e.in_operator(ops[i].name()))?;
                    let emitted = collector.take();
                    if !emitted.is_empty() {
                        send_all(&out, push_through(&mut ops[i + 1..], emitted, &mut collector)?).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The sinks of a query's side outputs: late rows and dead letters.
struct SideSinks {
    late: Option<Box<dyn Sink>>,
    dead_letters: Option<Box<dyn Sink>>,
}

impl SideSinks {
    /// Makes what the side outputs got durable: before the main sink commits, so no
    /// offset is committed whose late row or dead letter is only in memory.
    async fn flush(&mut self) -> Result<()> {
        for sink in [self.late.as_mut(), self.dead_letters.as_mut()].into_iter().flatten() {
            sink.flush().await?;
        }
        Ok(())
    }
}

async fn run_sink(
    mut sink: Box<dyn Sink>,
    mut side: SideSinks,
    mut input: Inputs,
    acks: mpsc::UnboundedSender<Progress>,
    metrics: Arc<QueryMetrics>,
    task: SinkTask,
) -> Result<()> {
    let SinkTask { ledger, mut checkpoints, board, commit_on_watermark } = task;
    // Rows written since the last commit.
    let mut dirty = false;
    // The last watermark seen: committed with the progress of the next commit.
    let mut watermark: Option<i64> = None;
    while let Some(message) = input.recv().await {
        match message {
            Message::Batch(batch) => {
                let rows = batch.num_rows() as u64;
                sink.write(batch).await?;
                metrics.add_out(rows);
                dirty = true;
            }
            Message::LateRows(batch) => {
                if let Some(late) = side.late.as_mut() {
                    late.write(batch).await?;
                }
            }
            Message::DeadLetters(batch) => {
                if let Some(dead_letters) = side.dead_letters.as_mut() {
                    dead_letters.write(batch).await?;
                }
            }
            Message::Barrier(id) => {
                side.flush().await?;
                let progress = ledger.complete_through(id, watermark, &metrics);
                let states = board.as_ref().map(|b| b.take(id));
                match checkpoints.as_mut() {
                    Some(c) if c.every_barrier => {
                        // The operators' state at this barrier assumes the rows before it
                        // are in the sink: a sink that cannot roll them back (Kafka) makes
                        // them durable first; one that commits them with its progress
                        // (PostgreSQL) commits after the checkpoint is on disk, and a
                        // restart restores the checkpoint the sink committed (a crash in
                        // between leaves the previous one, which is kept).
                        sink.pre_commit().await?;
                        let states = states.unwrap_or_default();
                        tokio::task::block_in_place(|| c.store.write(&progress, &states))?;
                        metrics.set_checkpoint(progress.checkpoint_id);
                        sink.commit(&progress).await?;
                    }
                    Some(c) => {
                        // Positions only: written after the sink committed, so it never
                        // points past rows the sink does not have.
                        sink.commit(&progress).await?;
                        if c.last.elapsed() >= c.interval {
                            tokio::task::block_in_place(|| c.store.write(&progress, &[]))?;
                            c.last = Instant::now();
                            metrics.set_checkpoint(progress.checkpoint_id);
                        }
                    }
                    None => sink.commit(&progress).await?,
                }
                dirty = false;
                let _ = acks.send(progress);
            }
            // Without checkpointed operator state, windows closed by a watermark are
            // written out at once: committed with the progress of the last barrier and
            // the new watermark, so a restart re-reads the rows of the windows still
            // open and drops those of the windows written (late).
            Message::Watermark(w) => {
                watermark = Some(w);
                if dirty && commit_on_watermark {
                    sink.commit(&ledger.current(watermark)).await?;
                    dirty = false;
                }
            }
            Message::Idle => {}
            Message::End => {
                side.flush().await?;
                if commit_on_watermark {
                    let progress = ledger.current(watermark);
                    sink.commit(&progress).await?;
                    if let Some(c) = checkpoints.as_mut() {
                        tokio::task::block_in_place(|| c.store.write(&progress, &[]))?;
                    }
                }
                // With checkpointed state, the source's last barrier committed everything
                // that belongs to a checkpoint; rows after it are computed again after a
                // restart from the state of that checkpoint, so they are not written.
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
            out.watermark(w);
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
        tx.send((0, Message::Watermark(42))).await.map_err(|_| EngineError::ChannelClosed)?;
        tx.send((0, Message::End)).await.map_err(|_| EngineError::ChannelClosed)?;
        run_operators(
            ops,
            Inputs::new(rx, 1),
            Downstream::One(Outlet::new(out_tx, 0)),
            TaskState { board: None, first_op: 0, worker: 0, workers: 1 },
        )
        .await?;
        let mut seen = Vec::new();
        while let Some((_, m)) = out_rx.recv().await {
            seen.push(match m {
                Message::Batch(b) => format!("batch {}", b.num_rows()),
                Message::Watermark(w) => format!("watermark {w}"),
                Message::Barrier(id) => format!("barrier {id}"),
                Message::LateRows(b) => format!("late {}", b.num_rows()),
                Message::DeadLetters(b) => format!("dead letters {}", b.num_rows()),
                Message::Idle => "idle".to_string(),
                Message::End => "end".to_string(),
            });
        }
        assert_eq!(seen, ["batch 1", "batch 1", "watermark 42", "end"]);
        Ok(())
    }

    #[test]
    fn a_checkpoint_of_another_plan_is_refused_naming_the_change() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("eddy-changed-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let taken = "  decode: json [k VARCHAR]\n  window aggregate: tumbling(size=1min), grace 0s, emit FINAL\n";
        let now = "  decode: json [k VARCHAR]\n  window aggregate: tumbling(size=2min), grace 0s, emit FINAL\n";
        let old = CheckpointStore::new(&dir, "app-q").with_plan(taken.to_string());
        let progress = Progress { checkpoint_id: 7, positions: Vec::new(), watermark: None };
        let state = StateEntry {
            op: 3,
            name: "window-aggregate".into(),
            worker: 0,
            workers: 1,
            state: crate::operator::OperatorState { batches: Vec::new() },
        };
        old.write(&progress, &[state])?;
        // The same plan restores; another is refused with the line that changed.
        let same = CheckpointStore::new(&dir, "app-q").with_plan(taken.to_string());
        assert!(choose_restore(&same, None, true, "q")?.states.is_some());
        let changed = CheckpointStore::new(&dir, "app-q").with_plan(now.to_string());
        let err = match choose_restore(&changed, None, true, "q") {
            Err(e) => e.to_string(),
            Ok(_) => String::from("restored"),
        };
        assert_eq!(
            err,
            format!(
                "query q changed since its checkpoint 7 was taken, so its operator state cannot be restored: the checkpoint has `window aggregate: tumbling(size=1min), grace 0s, emit FINAL` where the query now has `window aggregate: tumbling(size=2min), grace 0s, emit FINAL`; run the statement the checkpoint was taken with, or delete {} to start the query without state (it resumes from the consumer group's committed offsets)",
                changed.dir().display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// The first query `sql` plans (no connectors).
    fn first_query(sql: &str) -> Result<Arc<QueryPlan>> {
        let engine = crate::engine::Engine::new(None, "differential");
        let planned = engine
            .plan(&[crate::engine::Script { name: "j".into(), sql: sql.into() }])
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        planned
            .statements
            .iter()
            .find_map(|s| match s {
                crate::sql::planner::PlannedStatement::StartQuery(q) => Some(q.clone()),
                _ => None,
            })
            .ok_or_else(|| EngineError::Internal("no query".into()))
    }

    /// An interval join's front and join, driven as one task drives them; with a shard,
    /// the join gets only the rows whose key the exchange routes to that worker.
    struct FrontAndJoin(JoinFront, IntervalJoin, [Vec<Arc<dyn PhysicalExpr>>; 2], Option<crate::operator::Shard>);

    impl FrontAndJoin {
        fn of(plan: &QueryPlan, join: &crate::sql::interval_join::IntervalJoinPlan, metrics: &Arc<QueryMetrics>) -> Result<Self> {
            Self::worker(plan, join, metrics, None)
        }

        fn worker(
            plan: &QueryPlan,
            join: &crate::sql::interval_join::IntervalJoinPlan,
            metrics: &Arc<QueryMetrics>,
            shard: Option<crate::operator::Shard>,
        ) -> Result<Self> {
            let (front, join, keys) = interval_join_operator(plan, join, metrics, &[0, 1])?;
            Ok(FrontAndJoin(front, join, keys, shard))
        }

        /// The rows of `b` that the exchange routes to this worker.
        fn mine(&self, b: RecordBatch) -> Result<RecordBatch> {
            let Some(shard) = self.3 else { return Ok(b) };
            let side = crate::operators::join_front::side_of(&b).ok_or_else(|| EngineError::Internal("untagged".into()))?;
            let keys = self.2[side].iter().map(|k| k.evaluate(&b)?.into_array(b.num_rows())).collect::<std::result::Result<Vec<_>, _>>()?;
            let route = crate::partitioning::route_by_key(&keys, b.num_rows(), shard.count)?;
            let keep: arrow::array::BooleanArray = route.iter().map(|&w| Some(w == shard.index)).collect();
            Ok(arrow::compute::filter_record_batch(&b, &keep)?)
        }

        /// The front's messages through the join.
        fn feed(&mut self, mut front: Collector, out: &mut Collector) -> Result<()> {
            for m in front.take() {
                match m {
                    Message::Batch(b) => {
                        let b = self.mine(b)?;
                        self.1.on_batch(b, out)?
                    }
                    Message::Watermark(w) => self.1.on_watermark(w, out)?,
                    _ => {}
                }
            }
            Ok(())
        }

        fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
            let mut front = Collector::default();
            self.0.on_batch(batch, &mut front)?;
            self.feed(front, out)
        }

        fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
            let mut front = Collector::default();
            self.0.on_watermark(watermark, &mut front)?;
            self.feed(front, out)
        }

        fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector) -> Result<()> {
            self.1.on_processing_time(now, out)
        }

        fn kept_rows(&self) -> usize {
            self.1.kept_rows()
        }
    }

    /// The interval join against DataFusion's batch join of the same rows: random keys,
    /// times and values on both streams, interleaved in random micro-batches (each
    /// stream in time order, so no row is late), a FULL join with a bound of 5 s before
    /// and 10 s after and a condition beyond the key; after the final watermark the
    /// streaming output equals the batch one, row for row.
    #[tokio::test]
    async fn interval_join_equals_the_batch_join() -> Result<()> {
        use datafusion::prelude::SessionContext;
        use rand::{Rng, SeedableRng};
        let plan = first_query(
            "CREATE STREAM l (K VARCHAR, V INT, TS BIGINT) WITH (kafka_topic='l', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM r (K VARCHAR, W INT, TS BIGINT) WITH (kafka_topic='r', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM j AS SELECT l.K AS LK, l.V, l.TS AS LT, r.K AS RK, r.W, r.TS AS RT FROM l FULL JOIN r
              WITHIN (5 SECONDS, 10 SECONDS) GRACE PERIOD 0 SECONDS ON l.K = r.K AND l.V <= r.W;",
        )?;
        let Some(join) = &plan.interval_join else { return Err(EngineError::Internal("no interval join".into())) };
        for seed in 0..5u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut side = |n: usize, value: &str| -> Vec<(String, i32, i64)> {
                let mut t = 1_700_000_000_000i64;
                (0..n)
                    .map(|_| {
                        t += rng.random_range(0..4_000);
                        let k = ["a", "b", "c", "d"][rng.random_range(0..4)].to_string();
                        let _ = value;
                        (k, rng.random_range(0..10), t)
                    })
                    .collect()
            };
            let left = side(150, "V");
            let right = side(150, "W");
            let json = |rows: &[(String, i32, i64)], value: &str| -> Vec<Vec<u8>> {
                rows.iter().map(|(k, v, t)| format!(r#"{{"K":"{k}","{value}":{v},"TS":{t}}}"#).into_bytes()).collect()
            };
            let (lj, rj) = (json(&left, "V"), json(&right, "W"));
            let metrics = Arc::new(QueryMetrics::default());
            let mut op = FrontAndJoin::of(&plan, join, &metrics)?;
            let mut out = Collector::default();
            let (mut li, mut ri) = (0usize, 0usize);
            let mut chunk = rand::rngs::StdRng::seed_from_u64(seed + 100);
            while li < lj.len() || ri < rj.len() {
                let take_left = ri >= rj.len() || (li < lj.len() && chunk.random_bool(0.5));
                let (values, topic, partition, at) = if take_left { (&lj, "l", 0, &mut li) } else { (&rj, "r", 1, &mut ri) };
                let n = chunk.random_range(1..8).min(values.len() - *at);
                let slice: Vec<&[u8]> = values[*at..*at + n].iter().map(|v| v.as_slice()).collect();
                let batch = crate::record::raw_batch(&slice, topic, partition, *at as i64)?;
                *at += n;
                op.on_batch(batch, &mut out)?;
            }
            op.on_watermark(Timestamp::MAX, &mut out)?;
            let render = |b: &RecordBatch, columns: usize| -> Vec<String> {
                (0..b.num_rows())
                    .map(|i| {
                        (0..columns)
                            .map(|c| arrow::util::display::array_value_to_string(b.column(c), i).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join("|")
                    })
                    .collect()
            };
            let mut streamed: Vec<String> = out.take_batches().iter().flat_map(|b| render(b, 6)).collect();
            streamed.sort();

            let ctx = SessionContext::new();
            let table = |rows: &[(String, i32, i64)], value: &str| -> Result<RecordBatch> {
                let schema = Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Utf8, true),
                    Field::new(value, DataType::Int32, true),
                    Field::new("ts", DataType::Int64, true),
                ]));
                Ok(RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
                        Arc::new(arrow::array::Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
                        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                    ],
                )?)
            };
            ctx.register_batch("l", table(&left, "v")?)?;
            ctx.register_batch("r", table(&right, "w")?)?;
            let batches = ctx
                .sql("SELECT l.k, l.v, l.ts, r.k, r.w, r.ts FROM l FULL JOIN r ON l.k = r.k AND r.ts >= l.ts - 5000 AND r.ts <= l.ts + 10000 AND l.v <= r.w")
                .await?
                .collect()
                .await?;
            let mut batch: Vec<String> = batches.iter().flat_map(|b| render(b, 6)).collect();
            batch.sort();
            // Pairs, and padded rows of both sides, are all there to compare.
            let padded_left = streamed.iter().filter(|r| r.ends_with("|||")).count();
            let padded_right = streamed.iter().filter(|r| r.starts_with("|||")).count();
            assert!(streamed.len() > padded_left + padded_right && padded_left > 0 && padded_right > 0, "seed {seed}: {streamed:?}");
            assert_eq!(streamed.len(), batch.len(), "seed {seed}");
            assert_eq!(streamed, batch, "seed {seed}");
            assert_eq!(op.kept_rows(), 0, "seed {seed}: every row expired at the final watermark");
            assert_eq!(metrics.snapshot().state_bytes, 0, "seed {seed}: the state bytes counted in and out balance");
        }
        Ok(())
    }

    /// A join's state checkpointed by one worker and restored on two: each kept row goes
    /// to the worker its key routes to (none twice, none lost), and the two workers then
    /// give exactly the rows the one would have given.
    #[tokio::test]
    async fn interval_join_state_restored_at_another_parallelism_is_split_by_key() -> Result<()> {
        use crate::operator::Shard;
        let plan = first_query(
            "CREATE STREAM l (K VARCHAR, V INT, TS BIGINT) WITH (kafka_topic='l', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM r (K VARCHAR, W INT, TS BIGINT) WITH (kafka_topic='r', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM j AS SELECT l.K AS LK, l.V, l.TS AS LT, r.K AS RK, r.W, r.TS AS RT FROM l FULL JOIN r
              WITHIN (5 SECONDS, 10 SECONDS) GRACE PERIOD 0 SECONDS ON l.K = r.K;",
        )?;
        let Some(join) = &plan.interval_join else { return Err(EngineError::Internal("no interval join".into())) };
        let keys = ["a", "b", "c", "d", "e", "f"];
        // Row i of each side: one of six keys, one second apart, the right side half a second
        // later; every tenth row's key only one side has (its rows end padded).
        let batch = |side: usize, from: usize, to: usize| -> Result<RecordBatch> {
            let (topic, value) = if side == 0 { ("l", "V") } else { ("r", "W") };
            let values: Vec<Vec<u8>> = (from..to)
                .map(|i| {
                    let t = 1_700_000_000_000i64 + i as i64 * 1_000 + side as i64 * 500;
                    let key = match (i % 10, side) {
                        (3, 0) => "only-left",
                        (8, 1) => "only-right",
                        _ => keys[(i * 7 + side) % keys.len()],
                    };
                    format!(r#"{{"K":"{key}","{value}":{i},"TS":{t}}}"#).into_bytes()
                })
                .collect();
            let slice: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
            crate::record::raw_batch(&slice, topic, side as i32, from as i64)
        };
        let render = |batches: Vec<RecordBatch>| -> Vec<String> {
            let mut rows: Vec<String> = batches
                .iter()
                .flat_map(|b| {
                    (0..b.num_rows())
                        .map(|i| {
                            (0..6)
                                .map(|c| arrow::util::display::array_value_to_string(b.column(c), i).unwrap_or_default())
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            rows.sort();
            rows
        };
        let metrics = Arc::new(QueryMetrics::default());
        let mut one = FrontAndJoin::of(&plan, join, &metrics)?;
        let mut out = Collector::default();
        for (from, to) in [(0, 20), (20, 40)] {
            one.on_batch(batch(0, from, to)?, &mut out)?;
            one.on_batch(batch(1, from, to)?, &mut out)?;
        }
        let state = one.1.snapshot()?;
        let kept = one.kept_rows();
        assert!(kept > 10, "rows are kept at the checkpoint: {kept}");
        out.take();
        let rest = |op: &mut FrontAndJoin, out: &mut Collector| -> Result<()> {
            op.on_batch(batch(0, 40, 60)?, out)?;
            op.on_batch(batch(1, 40, 60)?, out)?;
            op.on_watermark(Timestamp::MAX, out)
        };
        rest(&mut one, &mut out)?;
        let expected = render(out.take_batches());
        assert!(expected.iter().any(|r| r.ends_with("|||")) && expected.iter().any(|r| r.starts_with("|||")), "padded rows: {expected:?}");

        let mut restored = Vec::new();
        let mut split = 0;
        let mut got = Vec::new();
        for index in 0..2 {
            let shard = Shard { index, count: 2 };
            let mut worker = FrontAndJoin::worker(&plan, join, &Arc::new(QueryMetrics::default()), Some(shard))?;
            worker.1.restore(vec![state.clone()], Some(shard))?;
            restored.push(worker.kept_rows());
            split += worker.kept_rows();
            let mut out = Collector::default();
            rest(&mut worker, &mut out)?;
            got.extend(out.take_batches());
        }
        assert_eq!(split, kept, "every kept row restored once: {restored:?}");
        assert!(restored.iter().all(|&n| n > 0), "both workers hold keys: {restored:?}");
        assert_eq!(render(got), expected);
        Ok(())
    }

    /// Flink's event-time temporal join against DataFusion's batch answer on the same
    /// random rows: each order gets the rate of the latest version of its currency at or
    /// before its time, none when that version is a delete (a tombstone, timed by its
    /// Kafka record) or there is none. Each input arrives in time order, the two
    /// interleaved at random, so the streaming join must wait for the lower watermark.
    #[tokio::test]
    async fn temporal_join_equals_the_batch_answer() -> Result<()> {
        use datafusion::prelude::SessionContext;
        use rand::{Rng, SeedableRng};
        let plan = first_query(
            "CREATE TABLE rates (CURRENCY VARCHAR PRIMARY KEY, RATE DOUBLE, TS BIGINT) WITH (kafka_topic='rates', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM orders (ID VARCHAR, CURRENCY VARCHAR, AMOUNT DOUBLE, TS BIGINT) WITH (kafka_topic='orders', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM priced AS SELECT o.ID AS ID, r.RATE AS RATE FROM orders o
              LEFT JOIN rates FOR SYSTEM_TIME AS OF o.TS AS r ON o.CURRENCY = r.CURRENCY;",
        )?;
        const T0: i64 = 1_700_000_000_000;
        let currencies = ["USD", "EUR", "JPY", "CHF"];
        for seed in 0..5u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            // (currency, rate or None for a delete, time), strictly increasing times.
            let versions: Vec<(&str, Option<i64>, i64)> = (0..60)
                .map(|i| {
                    let rate = (!rng.random_bool(0.15)).then(|| rng.random_range(1..100));
                    (currencies[rng.random_range(0..3)], rate, T0 + i * 700 + rng.random_range(0..500))
                })
                .collect();
            let orders: Vec<(String, &str, i64)> =
                (0..80).map(|j| (format!("o{j}"), currencies[rng.random_range(0..4)], T0 + j * 500 + rng.random_range(0..400))).collect();
            let parts = join_operators(&plan, &Arc::new(QueryMetrics::default()), &[0, 1])?;
            let (mut front, mut join) = (parts.front, parts.join);
            let mut out = Collector::default();
            let through =
                |front: &mut JoinFront, join: &mut Box<dyn Operator>, batch: Option<RecordBatch>, out: &mut Collector| -> Result<()> {
                    let mut c = Collector::default();
                    match batch {
                        Some(b) => front.on_batch(b, &mut c)?,
                        None => front.on_watermark(Timestamp::MAX, &mut c)?,
                    }
                    for m in c.take() {
                        match m {
                            Message::Batch(b) => join.on_batch(b, out)?,
                            Message::Watermark(w) => join.on_watermark(w, out)?,
                            _ => {}
                        }
                    }
                    Ok(())
                };
            let (mut vi, mut oi) = (0usize, 0usize);
            while vi < versions.len() || oi < orders.len() {
                let n = rng.random_range(1..6);
                if oi >= orders.len() || (vi < versions.len() && rng.random_bool(0.5)) {
                    // Rates: partition 1 of the two-topic source, keyed by currency.
                    let chunk = &versions[vi..(vi + n).min(versions.len())];
                    let values: Vec<Option<String>> =
                        chunk.iter().map(|(_, r, t)| r.map(|r| format!(r#"{{"RATE":{r},"TS":{t}}}"#))).collect();
                    let columns: Vec<arrow::array::ArrayRef> = vec![
                        Arc::new(arrow::array::BinaryArray::from_iter(chunk.iter().map(|(c, _, _)| Some(c.as_bytes())))),
                        Arc::new(arrow::array::BinaryArray::from_iter(values.iter().map(|v| v.as_deref().map(str::as_bytes)))),
                        Arc::new(arrow::array::StringArray::from_iter_values(chunk.iter().map(|_| "rates"))),
                        Arc::new(arrow::array::Int32Array::from(vec![1; chunk.len()])),
                        Arc::new(Int64Array::from_iter_values(vi as i64..(vi + chunk.len()) as i64)),
                        Arc::new(arrow::array::TimestampMillisecondArray::from_iter_values(chunk.iter().map(|(_, _, t)| *t))),
                    ];
                    vi += chunk.len();
                    through(&mut front, &mut join, Some(RecordBatch::try_new(crate::record::raw_schema(), columns)?), &mut out)?;
                } else {
                    let chunk = &orders[oi..(oi + n).min(orders.len())];
                    let values: Vec<Vec<u8>> = chunk
                        .iter()
                        .map(|(id, c, t)| format!(r#"{{"ID":"{id}","CURRENCY":"{c}","AMOUNT":1.0,"TS":{t}}}"#).into_bytes())
                        .collect();
                    let slice: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
                    through(&mut front, &mut join, Some(crate::record::raw_batch(&slice, "orders", 0, oi as i64)?), &mut out)?;
                    oi += chunk.len();
                }
            }
            through(&mut front, &mut join, None, &mut out)?;
            let render = |b: &RecordBatch, columns: [usize; 2]| -> Vec<String> {
                (0..b.num_rows())
                    .map(|i| {
                        columns
                            .iter()
                            .map(|&c| arrow::util::display::array_value_to_string(b.column(c), i).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join("|")
                    })
                    .collect()
            };
            // The join's rows: the stream's columns (ID first), then the table's (RATE second).
            let mut streamed: Vec<String> = out.take_batches().iter().flat_map(|b| render(b, [0, 5])).collect();
            streamed.sort();

            let ctx = SessionContext::new();
            let v = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("currency", DataType::Utf8, false),
                    Field::new("rate", DataType::Float64, true),
                    Field::new("deleted", DataType::Boolean, false),
                    Field::new("ts", DataType::Int64, false),
                ])),
                vec![
                    Arc::new(arrow::array::StringArray::from_iter_values(versions.iter().map(|v| v.0))),
                    Arc::new(arrow::array::Float64Array::from_iter(versions.iter().map(|v| v.1.map(|r| r as f64)))),
                    Arc::new(arrow::array::BooleanArray::from_iter(versions.iter().map(|v| Some(v.1.is_none())))),
                    Arc::new(Int64Array::from_iter_values(versions.iter().map(|v| v.2))),
                ],
            )?;
            let o = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("id", DataType::Utf8, false),
                    Field::new("currency", DataType::Utf8, false),
                    Field::new("ts", DataType::Int64, false),
                ])),
                vec![
                    Arc::new(arrow::array::StringArray::from_iter_values(orders.iter().map(|o| o.0.as_str()))),
                    Arc::new(arrow::array::StringArray::from_iter_values(orders.iter().map(|o| o.1))),
                    Arc::new(Int64Array::from_iter_values(orders.iter().map(|o| o.2))),
                ],
            )?;
            ctx.register_batch("versions", v)?;
            ctx.register_batch("orders", o)?;
            let batches = ctx
                .sql(
                    "WITH ranked AS (SELECT o.id, v.rate, v.deleted, ROW_NUMBER() OVER (PARTITION BY o.id ORDER BY v.ts DESC) AS rn
                       FROM orders o JOIN versions v ON o.currency = v.currency AND v.ts <= o.ts)
                     SELECT o.id, CASE WHEN r.deleted THEN NULL ELSE r.rate END AS rate
                     FROM orders o LEFT JOIN ranked r ON r.id = o.id AND r.rn = 1",
                )
                .await?
                .collect()
                .await?;
            let mut batch: Vec<String> = batches.iter().flat_map(|b| render(b, [0, 1])).collect();
            batch.sort();
            assert_eq!(streamed.len(), orders.len(), "seed {seed}: every order once (LEFT)");
            assert!(streamed.iter().any(|r| r.ends_with('|')) && streamed.iter().any(|r| !r.ends_with('|')), "seed {seed}: {streamed:?}");
            assert_eq!(streamed, batch, "seed {seed}");
        }
        Ok(())
    }

    /// A table version that arrives after a newer one of its key, while the stream holds
    /// the watermark back, is dropped once the watermark reaches the newer one: only the
    /// versions a stream row can still ask for stay.
    #[tokio::test]
    async fn temporal_join_drops_a_version_that_arrived_after_a_newer_one() -> Result<()> {
        let plan = first_query(
            "CREATE TABLE rates (CURRENCY VARCHAR PRIMARY KEY, RATE DOUBLE, TS BIGINT) WITH (kafka_topic='rates', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM orders (ID VARCHAR, CURRENCY VARCHAR, TS BIGINT) WITH (kafka_topic='orders', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM priced AS SELECT o.ID AS ID, r.RATE AS RATE FROM orders o
              JOIN rates FOR SYSTEM_TIME AS OF o.TS AS r ON o.CURRENCY = r.CURRENCY;",
        )?;
        let Some(j) = &plan.temporal_join else { return Err(EngineError::Internal("no temporal join".into())) };
        let (mut front, mut join, _) = temporal_join_operator(&plan, j, &Arc::new(QueryMetrics::default()), &[0, 1])?;
        let mut out = Collector::default();
        let rate = |t: i64, offset: i64| -> Result<RecordBatch> {
            let value = format!(r#"{{"RATE":1.5,"TS":{t}}}"#);
            let columns: Vec<arrow::array::ArrayRef> = vec![
                Arc::new(arrow::array::BinaryArray::from_iter_values([b"USD".as_slice()])),
                Arc::new(arrow::array::BinaryArray::from_iter_values([value.as_bytes()])),
                Arc::new(arrow::array::StringArray::from_iter_values(["rates"])),
                Arc::new(arrow::array::Int32Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![offset])),
                Arc::new(arrow::array::TimestampMillisecondArray::from(vec![t])),
            ];
            Ok(RecordBatch::try_new(crate::record::raw_schema(), columns)?)
        };
        let order = |t: i64, offset: i64| -> Result<RecordBatch> {
            let value = format!(r#"{{"ID":"o{offset}","CURRENCY":"USD","TS":{t}}}"#);
            crate::record::raw_batch(&[value.as_bytes()], "orders", 0, offset)
        };
        // Rates at 10 s, then (late) at 5 s; the orders hold the watermark at 7 s, then 20 s.
        for batch in [rate(10_000, 0)?, rate(5_000, 1)?, order(7_000, 0)?, order(20_000, 1)?] {
            let mut c = Collector::default();
            front.on_batch(batch, &mut c)?;
            for m in c.take() {
                match m {
                    Message::Batch(b) => join.on_batch(b, &mut out)?,
                    Message::Watermark(w) => join.on_watermark(w, &mut out)?,
                    _ => {}
                }
            }
        }
        // The order at 7 s got the 5 s rate; the watermark (10 s) reached the 10 s rate,
        // so the 5 s one can no longer be asked for.
        assert_eq!(out.take_batches().iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        assert_eq!(join.kept(), (1, 1), "the order at 20 s waits; one version is kept");
        Ok(())
    }

    /// Flink's regular join (no time bound, `table.exec.state.ttl`) against DataFusion's
    /// batch INNER join of the same random rows, however far apart their times; then the
    /// TTL in processing time empties the state.
    #[tokio::test]
    async fn regular_join_equals_the_batch_join_and_its_ttl_empties_the_state() -> Result<()> {
        use datafusion::prelude::SessionContext;
        use rand::{Rng, SeedableRng};
        let plan = first_query(
            "SET 'table.exec.state.ttl' = '1 h';
            CREATE STREAM l (K VARCHAR, V INT, TS BIGINT) WITH (kafka_topic='l', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM r (K VARCHAR, W INT, TS BIGINT) WITH (kafka_topic='r', value_format='json', partitions=1, timestamp='TS');
            CREATE STREAM j AS SELECT l.K AS LK, l.V, r.W FROM l JOIN r ON l.K = r.K AND l.V <= r.W;",
        )?;
        let Some(join) = &plan.interval_join else { return Err(EngineError::Internal("no join".into())) };
        assert_eq!(join.state_ttl_ms, Some(3_600_000));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Times anywhere in a day, in no order: a regular join ignores them.
        let mut rows = |n: usize| -> Vec<(String, i32, i64)> {
            (0..n)
                .map(|_| {
                    let k = ["a", "b", "c", "d", "e"][rng.random_range(0..5)].to_string();
                    (k, rng.random_range(0..10), 1_700_000_000_000 + rng.random_range(0..86_400_000))
                })
                .collect()
        };
        let (left, right) = (rows(120), rows(120));
        let metrics = Arc::new(QueryMetrics::default());
        let mut op = FrontAndJoin::of(&plan, join, &metrics)?;
        let mut out = Collector::default();
        for (i, chunk) in left.chunks(7).zip(right.chunks(5)).enumerate() {
            for (rows, value, topic, partition) in [(chunk.0, "V", "l", 0), (chunk.1, "W", "r", 1)] {
                let values: Vec<Vec<u8>> =
                    rows.iter().map(|(k, v, t)| format!(r#"{{"K":"{k}","{value}":{v},"TS":{t}}}"#).into_bytes()).collect();
                let slice: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
                op.on_batch(crate::record::raw_batch(&slice, topic, partition, i as i64 * 10)?, &mut out)?;
            }
        }
        let render = |b: &RecordBatch| -> Vec<String> {
            (0..b.num_rows())
                .map(|i| {
                    (0..3)
                        .map(|c| arrow::util::display::array_value_to_string(b.column(c), i).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        };
        // The join's output columns: l's K, V, TS, then r's K, W, TS; compare K, V, W.
        let mut streamed: Vec<String> = out
            .take_batches()
            .iter()
            .flat_map(|b| {
                let picked = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![b.schema().field(0).clone(), b.schema().field(1).clone(), b.schema().field(4).clone()])),
                    vec![b.column(0).clone(), b.column(1).clone(), b.column(4).clone()],
                );
                picked.map(|p| render(&p)).unwrap_or_default()
            })
            .collect();
        streamed.sort();
        let ctx = SessionContext::new();
        let table = |rows: &[(String, i32, i64)], value: &str| -> Result<RecordBatch> {
            let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new(value, DataType::Int32, true)]));
            Ok(RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
                    Arc::new(arrow::array::Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
                ],
            )?)
        };
        let used = left.len().min(7 * 18);
        ctx.register_batch("l", table(&left[..used], "v")?)?;
        ctx.register_batch("r", table(&right[..right.len().min(5 * 18)], "w")?)?;
        let batches = ctx.sql("SELECT l.k, l.v, r.w FROM l JOIN r ON l.k = r.k AND l.v <= r.w").await?.collect().await?;
        let mut batch: Vec<String> = batches.iter().flat_map(render).collect();
        batch.sort();
        assert!(!batch.is_empty());
        assert_eq!(streamed, batch);
        assert!(op.kept_rows() > 0);
        // An hour of processing time later, every row has outlived the TTL.
        op.on_processing_time(now_ms() + 3_600_001, &mut out)?;
        assert_eq!(op.kept_rows(), 0, "the TTL emptied the state");
        assert_eq!(metrics.snapshot().state_bytes, 0);
        Ok(())
    }
}
