//! One read of a source for several queries: the INSERTs of a Flink statement set
//! (`EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END`) that read the same
//! source, as Flink plans a statement set into one job whose source is scanned once.
//!
//! Each INSERT stays a query of its own (its operators, sink, checkpoints and status), but
//! its connectors come from a [`SharedReadFactory`], whose source for the shared relation
//! is a [`BranchSource`]: a view of one real source read by a task of the set's
//! [`SharedRead`], which hands every micro-batch to each branch (a slow branch slows the
//! read, as a slow operator backpressures a Flink job).
//!
//! - **Start.** The real source opens when every branch has asked for its source, at the
//!   earliest position any branch needs: per partition the lowest of the branches'
//!   resume positions, where every branch has one (else the consumer group's offsets,
//!   which the set commits as the lowest of what every branch has made durable). A branch
//!   drops the records before its own resume position, so a branch whose sink committed
//!   further than another's before a crash neither repeats nor loses a row.
//! - **Commit.** A branch's [`Source::commit`] records how far it is durable; the real
//!   source commits, per partition, the lowest position over the live branches.
//! - **End.** A bounded source's end reaches every branch; a branch that stops (TERMINATE,
//!   a failure) leaves the set and the others read on; the read stops with the last branch.
//! - **Side outputs.** Only the first branch writes the source's dead letters, so each
//!   malformed record is dead-lettered once.
//!
//! A branch that asks for its source again after the read has started (a retried
//! start) is refused with a clear error: the read cannot go back for one branch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int32Type, Int64Type};
use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, LookupTable, PartitionOffset, QueryContext, Sink, Source, SourceBatch, TopicInfo};
use crate::error::{EngineError, Result};
use crate::options::DeadLetterTarget;
use crate::record::RawColumn;

/// What the read hands a branch: a micro-batch, the end of a bounded source (`None`), or
/// the source's failure (why, and whether a retry can help), which fails every branch.
type Delivery = std::result::Result<Option<SourceBatch>, Failure>;

/// A source's error as every branch gets it: its system, its message, whether a retry can
/// help (an [`EngineError`] is not `Clone`).
#[derive(Debug, Clone)]
struct Failure {
    system: &'static str,
    message: String,
    transient: bool,
}

impl Failure {
    fn of(e: &EngineError) -> Self {
        match e {
            EngineError::External { system, transient, source } => Failure { system, message: source.to_string(), transient: *transient },
            other => Failure { system: "source", message: other.to_string(), transient: other.is_transient() },
        }
    }

    fn error(self) -> EngineError {
        EngineError::External { system: self.system, transient: self.transient, source: self.message.into() }
    }
}

/// Micro-batches buffered for each branch.
const BRANCH_CAPACITY: usize = 4;

/// The read of one source shared by `branches` queries (see the module docs).
pub struct SharedRead {
    inner: Arc<dyn ConnectorFactory>,
    /// The shared relation's name.
    relation: String,
    /// The consumer group of the real source.
    group_id: String,
    state: Mutex<State>,
    /// The outcome of each attempt at opening the real source, by attempt: the source's
    /// shape, or why it failed (and whether trying again can help).
    opened: watch::Sender<(u64, Option<OpenOutcome>)>,
}

/// How opening the real source went: its shape, or why not (and whether a retry can help).
type OpenOutcome = std::result::Result<Opened, Failure>;

/// What every branch learns when the real source has opened.
#[derive(Clone)]
struct Opened {
    partitions: Vec<i32>,
    bounded: bool,
    restored_watermark: Option<i64>,
}

impl State {
    /// Claims the start of the read, once: when every branch has asked, or will never ask
    /// (and at least one has). Returns whether the caller is to start it.
    fn claim_start(&mut self) -> bool {
        let ready = self.asked.iter().zip(&self.gone).all(|(a, g)| a.is_some() || *g) && self.asked.iter().any(Option::is_some);
        if ready && !self.started {
            self.started = true;
            return true;
        }
        false
    }
}

#[derive(Default)]
struct State {
    /// Per branch: what it asked for, until the read starts.
    asked: Vec<Option<Ask>>,
    /// Per branch: it will never ask (its query failed to start or was stopped first).
    gone: Vec<bool>,
    /// The shared relation, as the first branch to ask gave it.
    relation: Option<Relation>,
    started: bool,
    /// The attempt at opening the real source that the branches asking now wait for
    /// (a failed attempt lets every branch ask again).
    attempt: u64,
    /// The branches still reading.
    live: Vec<usize>,
    /// Per live branch: how far its rows are durable, per (topic, partition).
    durable: HashMap<usize, HashMap<(String, i32), i64>>,
    /// Each branch's lowest watermark committed with its positions.
    watermarks: HashMap<usize, Option<i64>>,
    /// The positions last committed by the real source.
    committed: HashMap<(String, i32), i64>,
    /// Commits for the read task to pass to the real source.
    pending_commit: Option<(Vec<PartitionOffset>, Option<i64>)>,
}

/// A branch's request for the shared source.
struct Ask {
    ctx: QueryContext,
    batches: mpsc::Sender<Delivery>,
}

impl SharedRead {
    /// A read of `relation` for `branches` queries, opening its real source through
    /// `inner` under consumer group `group_id`.
    pub fn new(inner: Arc<dyn ConnectorFactory>, relation: &str, group_id: String, branches: usize) -> Arc<Self> {
        let (opened, _) = watch::channel((0, None));
        let state = State { asked: (0..branches).map(|_| None).collect(), gone: vec![false; branches], ..Default::default() };
        Arc::new(SharedRead { inner, relation: relation.to_string(), group_id, state: Mutex::new(state), opened })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Branch `index`'s view of the source; waits until every branch has asked and the
    /// real source is open.
    ///
    /// Errors: the read has already started (a branch restarting alone), or the real
    /// source could not be opened (the same error for every branch).
    async fn branch(self: &Arc<Self>, index: usize, relation: &Relation, ctx: &QueryContext) -> Result<Box<dyn Source>> {
        let (tx, rx) = mpsc::channel(BRANCH_CAPACITY);
        let (all_asked, attempt) = {
            let mut state = self.state();
            if state.started {
                return Err(EngineError::statement(format!(
                    "the statement set's read of \"{}\" has started without query {}: stop the statement set's queries and submit it again",
                    self.relation, ctx.query_id
                )));
            }
            let Some(slot) = state.asked.get_mut(index) else {
                return Err(EngineError::Internal(format!("statement set branch {index} out of range")));
            };
            *slot = Some(Ask { ctx: ctx.clone(), batches: tx });
            state.relation.get_or_insert_with(|| relation.clone());
            (state.claim_start(), state.attempt)
        };
        if all_asked {
            let me = self.clone();
            tokio::spawn(async move { me.read().await });
        }
        let mut opened = self.opened.subscribe();
        let result = opened.wait_for(|(a, r)| *a == attempt && r.is_some()).await.map_err(|_| EngineError::ChannelClosed)?.1.clone();
        let opened = match result {
            Some(Ok(o)) => o,
            Some(Err(failure)) => return Err(failure.error()),
            None => return Err(EngineError::ChannelClosed),
        };
        // The first records this branch takes: its own resume position per partition.
        let from: HashMap<i32, i64> = ctx.resume_from.iter().map(|p| (p.partition, p.next_offset)).collect();
        Ok(Box::new(BranchSource { shared: self.clone(), index, batches: rx, from, opened }))
    }

    /// The read task: opens the real source where every branch can start, then hands
    /// each micro-batch to every live branch until the source ends or no branch is left.
    async fn read(self: Arc<Self>) {
        let (ctx, mut outlets, attempt, relation) = {
            let mut state = self.state();
            let Some(relation) = state.relation.clone() else { return };
            let asks: Vec<(usize, Ask)> = state.asked.iter_mut().enumerate().filter_map(|(i, a)| a.take().map(|a| (i, a))).collect();
            state.live = asks.iter().map(|(i, _)| *i).collect();
            let ctx = self.start_context(&asks.iter().map(|(_, a)| &a.ctx).collect::<Vec<_>>());
            (ctx, asks.into_iter().map(|(i, a)| (i, a.batches)).collect::<Vec<_>>(), state.attempt, relation)
        };
        let mut source = match self.inner.source(&relation, &ctx).await {
            Ok(s) => s,
            Err(e) => {
                // Every branch fails this start (and retries it when trying again helps):
                // the next attempt begins when all have asked again.
                {
                    let mut state = self.state();
                    state.started = false;
                    state.attempt += 1;
                }
                self.opened.send_replace((attempt, Some(Err(Failure::of(&e)))));
                return;
            }
        };
        self.opened.send_replace((
            attempt,
            Some(Ok(Opened {
                partitions: source.partitions(),
                bounded: source.is_bounded(),
                restored_watermark: source.restored_watermark(),
            })),
        ));
        loop {
            let pending = self.state().pending_commit.take();
            if let Some((positions, watermark)) = pending {
                if let Err(e) = source.commit(&positions, watermark).await {
                    tracing::warn!(relation = %self.relation, error = %e, "shared read: commit failed");
                }
            }
            let batch: Delivery = source.next_batch().await.map_err(|e| {
                tracing::error!(relation = %self.relation, error = %e, "shared read: the source failed");
                Failure::of(&e)
            });
            let ended = !matches!(batch, Ok(Some(_)));
            let mut live = Vec::with_capacity(outlets.len());
            for (i, tx) in outlets {
                if tx.send(batch.clone()).await.is_ok() {
                    live.push((i, tx));
                } else {
                    // The branch stopped: it leaves the set.
                    let mut state = self.state();
                    state.live.retain(|b| *b != i);
                    state.durable.remove(&i);
                    state.watermarks.remove(&i);
                }
            }
            outlets = live;
            if ended || outlets.is_empty() {
                break;
            }
        }
        let pending = self.state().pending_commit.take();
        if let Some((positions, watermark)) = pending {
            let _ = source.commit(&positions, watermark).await;
        }
        if let Err(e) = source.close().await {
            tracing::warn!(relation = %self.relation, error = %e, "shared read: close failed");
        }
    }

    /// The real source's context: the first branch's, under the set's consumer group,
    /// as many splits as the most parallel branch, from the lowest resume position of
    /// every partition that all branches resume from.
    fn start_context(&self, asks: &[&QueryContext]) -> QueryContext {
        let mut ctx = asks.first().map(|c| (*c).clone()).unwrap_or_else(|| QueryContext::new("", ""));
        ctx.group_id = self.group_id.clone();
        ctx.parallelism = asks.iter().map(|a| a.parallelism).max().unwrap_or(1);
        ctx.resume_exact = asks.iter().any(|a| a.resume_exact);
        let mut lowest: HashMap<(String, i32), (i64, usize)> = HashMap::new();
        for a in asks {
            for p in &a.resume_from {
                let e = lowest.entry((p.topic.clone(), p.partition)).or_insert((p.next_offset, 0));
                e.0 = e.0.min(p.next_offset);
                e.1 += 1;
            }
        }
        ctx.resume_from = lowest
            .into_iter()
            .filter(|(_, (_, n))| *n == asks.len())
            .map(|((topic, partition), (next_offset, _))| PartitionOffset { topic, partition, next_offset })
            .collect();
        ctx
    }

    /// Branch `index` made every row before `positions` durable: the set commits, per
    /// partition, the lowest position over its live branches.
    fn commit(&self, index: usize, positions: &[PartitionOffset], watermark: Option<i64>) {
        let mut state = self.state();
        let mine = state.durable.entry(index).or_default();
        for p in positions {
            let e = mine.entry((p.topic.clone(), p.partition)).or_insert(p.next_offset);
            *e = (*e).max(p.next_offset);
        }
        state.watermarks.insert(index, watermark);
        // Not before every live branch has said how far it is.
        if !state.live.iter().all(|b| state.durable.contains_key(b)) {
            return;
        }
        let mut lowest: HashMap<(String, i32), i64> = HashMap::new();
        let mut seen: HashMap<(String, i32), usize> = HashMap::new();
        for positions in state.live.iter().filter_map(|b| state.durable.get(b)) {
            for (k, v) in positions {
                let e = lowest.entry(k.clone()).or_insert(*v);
                *e = (*e).min(*v);
                *seen.entry(k.clone()).or_default() += 1;
            }
        }
        let branches = state.live.len();
        let advanced: Vec<PartitionOffset> = lowest
            .into_iter()
            .filter(|(k, _)| seen.get(k) == Some(&branches))
            .filter(|(k, v)| state.committed.get(k).is_none_or(|c| v > c))
            .map(|((topic, partition), next_offset)| PartitionOffset { topic, partition, next_offset })
            .collect();
        if advanced.is_empty() {
            return;
        }
        for p in &advanced {
            state.committed.insert((p.topic.clone(), p.partition), p.next_offset);
        }
        let watermark = state.live.iter().try_fold(i64::MAX, |low, b| state.watermarks.get(b).copied().flatten().map(|w| low.min(w)));
        let mut all: Vec<PartitionOffset> = match state.pending_commit.take() {
            Some((earlier, _)) => {
                earlier.into_iter().filter(|e| !advanced.iter().any(|a| a.topic == e.topic && a.partition == e.partition)).collect()
            }
            None => Vec::new(),
        };
        all.extend(advanced);
        state.pending_commit = Some((all, watermark));
    }
}

/// One branch's view of the shared source (see the module docs).
pub struct BranchSource {
    shared: Arc<SharedRead>,
    index: usize,
    batches: mpsc::Receiver<Delivery>,
    /// Per partition: this branch's first offset (records before it are dropped).
    from: HashMap<i32, i64>,
    opened: Opened,
}

#[async_trait]
impl Source for BranchSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let batch = match self.batches.recv().await {
            Some(Ok(Some(batch))) => batch,
            Some(Ok(None)) => return Ok(None),
            Some(Err(failure)) => return Err(failure.error()),
            // The read stopped without saying why: not an end of the input.
            None => return Err(EngineError::Internal(format!("the statement set's read of \"{}\" stopped", self.shared.relation))),
        };
        if self.from.is_empty() || batch.records.num_rows() == 0 {
            return Ok(Some(batch));
        }
        let partitions = batch.records.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
        let offsets = batch.records.column(RawColumn::Offset as usize).as_primitive::<Int64Type>();
        let keep: BooleanArray = partitions
            .iter()
            .zip(offsets.iter())
            .map(|(p, o)| {
                Some(match (p.and_then(|p| self.from.get(&p)), o) {
                    (Some(from), Some(o)) => o >= *from,
                    _ => true,
                })
            })
            .collect();
        if keep.true_count() == batch.records.num_rows() {
            // Past this branch's resume position everywhere: nothing to drop any more.
            self.from.clear();
            return Ok(Some(batch));
        }
        Ok(Some(SourceBatch { records: filter_record_batch(&batch.records, &keep)?, positions: batch.positions }))
    }

    async fn commit(&mut self, positions: &[PartitionOffset], watermark: Option<i64>) -> Result<()> {
        self.shared.commit(self.index, positions, watermark);
        Ok(())
    }

    fn restored_watermark(&self) -> Option<i64> {
        self.opened.restored_watermark
    }

    fn partitions(&self) -> Vec<i32> {
        self.opened.partitions.clone()
    }

    fn is_bounded(&self) -> bool {
        self.opened.bounded
    }
}

/// The connectors of one branch of a statement set: the shared relation's source is
/// the branch's [`BranchSource`]; everything else is `inner`'s.
pub struct SharedReadFactory {
    inner: Arc<dyn ConnectorFactory>,
    shared: Arc<SharedRead>,
    index: usize,
}

impl SharedReadFactory {
    /// Branch `index` of `shared`.
    pub fn new(inner: Arc<dyn ConnectorFactory>, shared: Arc<SharedRead>, index: usize) -> Self {
        SharedReadFactory { inner, shared, index }
    }
}

#[async_trait]
impl ConnectorFactory for SharedReadFactory {
    async fn prepare(&self, relation: &Relation) -> Result<()> {
        self.inner.prepare(relation).await
    }

    async fn source(&self, relation: &Relation, query: &QueryContext) -> Result<Box<dyn Source>> {
        if relation.name == self.shared.relation {
            self.shared.branch(self.index, relation, query).await
        } else {
            self.inner.source(relation, query).await
        }
    }

    async fn sink(&self, relation: &Relation, query: &QueryContext) -> Result<Box<dyn Sink>> {
        self.inner.sink(relation, query).await
    }

    async fn raw_sink(&self, source: &Relation, topic: &str, query: &QueryContext) -> Result<Box<dyn Sink>> {
        self.inner.raw_sink(source, topic, query).await
    }

    async fn dead_letter_sink(&self, source: &Relation, target: &DeadLetterTarget, query: &QueryContext) -> Result<Box<dyn Sink>> {
        if source.name == self.shared.relation && self.index > 0 {
            // The first branch writes the shared source's dead letters.
            return Ok(Box::new(DiscardSink));
        }
        self.inner.dead_letter_sink(source, target, query).await
    }

    async fn lookup_table(&self, relation: &Relation, key: &[String], query: &QueryContext) -> Result<Box<dyn LookupTable>> {
        self.inner.lookup_table(relation, key, query).await
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        self.inner.read_file(path).await
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.inner.list_topics().await
    }

    async fn delete_topic(&self, relation: &Relation) -> Result<()> {
        self.inner.delete_topic(relation).await
    }
}

impl Drop for SharedReadFactory {
    /// A branch whose query ends before it asked for its source (it failed to start, or
    /// was stopped while starting) will never ask: the others stop waiting for it.
    fn drop(&mut self) {
        let ready = {
            let mut state = self.shared.state();
            if state.started || state.asked.get(self.index).is_none_or(Option::is_some) {
                return;
            }
            if let Some(g) = state.gone.get_mut(self.index) {
                *g = true;
            }
            state.claim_start()
        };
        if let (true, Ok(runtime)) = (ready, tokio::runtime::Handle::try_current()) {
            runtime.spawn(self.shared.clone().read());
        }
    }
}

/// A sink that keeps nothing: the dead letters another branch of the set writes.
struct DiscardSink;

#[async_trait]
impl Sink for DiscardSink {
    async fn write(&mut self, _batch: arrow::record_batch::RecordBatch) -> Result<()> {
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The factory each of `plans` starts with, by query id: for the queries of one statement
/// set that read the same source (two or more, each reading only that source: no join
/// or UNION ALL of streams), a [`SharedReadFactory`] over one [`SharedRead`] of it,
/// under consumer group `<group_prefix><first query id>-set`; none for the others
/// (they use `factory` itself).
pub fn shared_factories(
    plans: &[&Arc<crate::sql::planner::QueryPlan>],
    factory: &Arc<dyn ConnectorFactory>,
    group_prefix: &str,
) -> HashMap<String, Arc<dyn ConnectorFactory>> {
    // (statement set, source) -> its queries, in statement order.
    type Group<'a> = ((u64, String), Vec<&'a Arc<crate::sql::planner::QueryPlan>>);
    let mut groups: Vec<Group> = Vec::new();
    for plan in plans {
        let Some(set) = plan.statement_set else { continue };
        if !plan.union.is_empty() || plan.interval_join.is_some() || plan.temporal_join.is_some() {
            continue;
        }
        let key = (set, plan.source.name.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(plan),
            None => groups.push((key, vec![plan])),
        }
    }
    let mut out = HashMap::new();
    for ((_, source), members) in groups.into_iter().filter(|(_, m)| m.len() > 1) {
        let group_id = format!("{group_prefix}{}-set", members[0].id);
        let shared = SharedRead::new(factory.clone(), &source, group_id, members.len());
        for (i, plan) in members.iter().enumerate() {
            let branch: Arc<dyn ConnectorFactory> = Arc::new(SharedReadFactory::new(factory.clone(), shared.clone(), i));
            out.insert(plan.id.clone(), branch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use tokio::sync::Notify;

    use super::*;

    /// (partition, next offset) pairs.
    type Positions = Vec<(i32, i64)>;

    /// One batch (partition 0, offsets 0..4), then the end once the test opens the gate;
    /// records what it is asked to commit.
    struct FakeSource {
        batch: Option<SourceBatch>,
        gate: Arc<Notify>,
        commits: Arc<StdMutex<Vec<Positions>>>,
        /// Fail (a broker that refuses) instead of ending, once the gate opens.
        fail: bool,
    }

    #[async_trait]
    impl Source for FakeSource {
        async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
            if let Some(b) = self.batch.take() {
                return Ok(Some(b));
            }
            self.gate.notified().await;
            if self.fail {
                return Err(EngineError::External { system: "kafka", transient: false, source: "topic authorization failed".into() });
            }
            Ok(None)
        }

        async fn commit(&mut self, positions: &[PartitionOffset], _watermark: Option<i64>) -> Result<()> {
            let mut got: Positions = positions.iter().map(|p| (p.partition, p.next_offset)).collect();
            got.sort_unstable();
            self.commits.lock().unwrap_or_else(|p| p.into_inner()).push(got);
            Ok(())
        }
    }

    struct FakeFactory {
        source: StdMutex<Option<FakeSource>>,
        /// Each opening: the consumer group and the resume positions.
        opened_with: StdMutex<Vec<(String, Positions)>>,
    }

    #[async_trait]
    impl ConnectorFactory for FakeFactory {
        async fn prepare(&self, _relation: &Relation) -> Result<()> {
            Ok(())
        }

        async fn source(&self, _relation: &Relation, query: &QueryContext) -> Result<Box<dyn Source>> {
            let from = query.resume_from.iter().map(|p| (p.partition, p.next_offset)).collect();
            self.opened_with.lock().unwrap_or_else(|p| p.into_inner()).push((query.group_id.clone(), from));
            let source = self.source.lock().unwrap_or_else(|p| p.into_inner()).take();
            source.map(|s| Box::new(s) as Box<dyn Source>).ok_or_else(|| EngineError::Internal("opened twice".into()))
        }

        async fn sink(&self, _relation: &Relation, _query: &QueryContext) -> Result<Box<dyn Sink>> {
            Ok(Box::new(DiscardSink))
        }

        async fn raw_sink(&self, _source: &Relation, _topic: &str, _query: &QueryContext) -> Result<Box<dyn Sink>> {
            Ok(Box::new(DiscardSink))
        }
    }

    fn context(query: &str, resume_from: Vec<PartitionOffset>) -> QueryContext {
        QueryContext {
            query_id: query.into(),
            group_id: format!("app-{query}"),
            metrics: Default::default(),
            parallelism: 1,
            transient: false,
            resume_from,
            resume_exact: false,
            state_dir: None,
        }
    }

    fn at(next_offset: i64) -> Vec<PartitionOffset> {
        vec![PartitionOffset { topic: "t".into(), partition: 0, next_offset }]
    }

    /// The relation `s` over the Kafka topic `t`.
    fn kafka_relation() -> Result<Relation> {
        let planned = crate::engine::Engine::new(None, "t")
            .plan(&[crate::engine::Script {
                name: "s".into(),
                sql: "CREATE TABLE s (v STRING) WITH ('connector'='kafka', 'topic'='t', 'format'='json');".into(),
            }])
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        match planned.statements.first() {
            Some(crate::sql::planner::PlannedStatement::CreateRelation(r)) => Ok(r.as_ref().clone()),
            _ => Err(EngineError::Internal("no relation".into())),
        }
    }

    /// A factory whose one source gives `rows` records (partition 0, offsets `0..rows`),
    /// then ends (or fails, with `fail`) once the returned gate opens; with what it is
    /// asked to commit.
    #[allow(clippy::type_complexity)]
    fn fake(rows: usize, fail: bool) -> Result<(Arc<FakeFactory>, Arc<Notify>, Arc<StdMutex<Vec<Positions>>>)> {
        let values: Vec<&[u8]> = vec![b"{}"; rows];
        let batch = SourceBatch { records: crate::record::raw_batch(&values, "t", 0, 0)?, positions: at(rows as i64) };
        let gate = Arc::new(Notify::new());
        let commits = Arc::new(StdMutex::new(Vec::new()));
        let source = FakeSource { batch: Some(batch), gate: gate.clone(), commits: commits.clone(), fail };
        let factory = Arc::new(FakeFactory { source: StdMutex::new(Some(source)), opened_with: StdMutex::new(Vec::new()) });
        Ok((factory, gate, commits))
    }

    fn offsets(batch: &SourceBatch) -> Vec<i64> {
        batch.records.column(RawColumn::Offset as usize).as_primitive::<Int64Type>().values().to_vec()
    }

    #[tokio::test]
    async fn one_read_from_the_lowest_position_each_branch_from_its_own_and_commits_the_lowest() -> Result<()> {
        let relation = &kafka_relation()?;
        let (fake, gate, commits) = fake(4, false)?;
        let inner: Arc<dyn ConnectorFactory> = fake.clone();
        let shared = SharedRead::new(inner.clone(), "s", "app-q1-set".into(), 2);
        let (first, second) = (SharedReadFactory::new(inner.clone(), shared.clone(), 0), SharedReadFactory::new(inner, shared, 1));
        // The first branch's sink had written up to offset 2 before a restart; the second's, 1.
        let (c1, c2) = (context("q1", at(2)), context("q2", at(1)));
        let (a, b) = tokio::join!(first.source(relation, &c1), second.source(relation, &c2));
        let (mut a, mut b) = (a?, b?);
        assert_eq!(fake.opened_with.lock().unwrap_or_else(|p| p.into_inner()).clone(), vec![("app-q1-set".to_string(), vec![(0, 1)])]);
        // Each branch from its own position.
        assert_eq!(a.next_batch().await?.map(|b| offsets(&b)), Some(vec![2, 3]));
        assert_eq!(b.next_batch().await?.map(|b| offsets(&b)), Some(vec![1, 2, 3]));
        // The set commits the lowest durable position.
        a.commit(&at(4), None).await?;
        b.commit(&at(3), None).await?;
        gate.notify_one();
        assert!(a.next_batch().await?.is_none());
        assert!(b.next_batch().await?.is_none());
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while commits.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .map_err(|_| EngineError::Internal("no commit".into()))?;
        assert_eq!(commits.lock().unwrap_or_else(|p| p.into_inner()).clone(), vec![vec![(0, 3)]]);
        Ok(())
    }

    #[tokio::test]
    async fn a_branch_that_never_asks_does_not_hold_the_others() -> Result<()> {
        let relation = &kafka_relation()?;
        let (fake, _gate, _) = fake(2, false)?;
        let inner: Arc<dyn ConnectorFactory> = fake;
        let shared = SharedRead::new(inner.clone(), "s", "app-q1-set".into(), 2);
        let first = SharedReadFactory::new(inner.clone(), shared.clone(), 0);
        let relation = relation.clone();
        let asking = tokio::spawn(async move {
            let c = context("q1", Vec::new());
            let mut source = first.source(&relation, &c).await?;
            source.next_batch().await.map(|b| b.map(|b| offsets(&b)))
        });
        // The second query fails to start: its factory goes without asking.
        drop(SharedReadFactory::new(inner, shared, 1));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), asking)
            .await
            .map_err(|_| EngineError::Internal("the first branch still waits".into()))?
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        assert_eq!(got, Some(vec![0, 1]));
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_source_fails_every_branch() -> Result<()> {
        let relation = &kafka_relation()?;
        let (fake, gate, _) = fake(1, true)?;
        let inner: Arc<dyn ConnectorFactory> = fake;
        let shared = SharedRead::new(inner.clone(), "s", "app-q1-set".into(), 2);
        let (first, second) = (SharedReadFactory::new(inner.clone(), shared.clone(), 0), SharedReadFactory::new(inner, shared, 1));
        let (c1, c2) = (context("q1", Vec::new()), context("q2", Vec::new()));
        let (a, b) = tokio::join!(first.source(relation, &c1), second.source(relation, &c2));
        let (mut a, mut b) = (a?, b?);
        assert!(a.next_batch().await?.is_some());
        assert!(b.next_batch().await?.is_some());
        gate.notify_one();
        for branch in [&mut a, &mut b] {
            let e = branch.next_batch().await.err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some("kafka: topic authorization failed"));
        }
        Ok(())
    }
}
