//! The progress ledger between a query's source and its sink: which source positions
//! each checkpoint barrier covers.
//!
//! The source records the positions of every micro-batch under the id of the barrier it
//! sends after it ([`ProgressLedger::record`]). When the barrier reaches the sink (a
//! stateful operator holds it until the rows before it have left its state), the sink
//! folds every entry up to that id into the cumulative positions
//! ([`ProgressLedger::complete_through`]) and commits them with its rows; the source
//! then commits the same positions to the consumer group.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::connector::{PartitionOffset, Progress};
use crate::metrics::QueryMetrics;

/// Most micro-batches whose positions wait for their barrier at once. Beyond it the two
/// oldest entries are folded into one under the later id: memory stays bounded however
/// many micro-batches a checkpoint interval holds, and the later barrier commits both.
const MAX_PENDING: usize = 4096;

/// Positions recorded by the source, completed by the sink (shared by both tasks).
#[derive(Debug)]
pub struct ProgressLedger {
    inner: Mutex<Inner>,
    base: u64,
}

/// The lowest barrier id of a run started at `now_ms` (ms since the epoch): `now_ms`
/// shifted left by 20 bits (about 1.8e18 today, below `i64::MAX`, so it fits a
/// PostgreSQL `bigint`), leaving a million barriers per millisecond of start time.
pub fn first_id_base(now_ms: i64) -> u64 {
    u64::try_from(now_ms).unwrap_or(0) << 20
}

#[derive(Debug)]
struct Inner {
    /// Barrier id -> positions of the micro-batch before it, oldest first.
    pending: VecDeque<(u64, Vec<PartitionOffset>)>,
    /// (topic, partition) -> next offset, over every completed barrier.
    done: BTreeMap<(String, i32), i64>,
    /// The last completed barrier id.
    checkpoint_id: u64,
}

impl ProgressLedger {
    /// A ledger resuming from `resume` (the progress the sink committed last, if any):
    /// its positions are kept for partitions that send nothing new, and barrier ids
    /// continue after its checkpoint id, from `base` at least. The pipeline passes the
    /// start time (ms) shifted left by 20 bits, so the ids of every run are above those
    /// of all earlier runs even when it resumes from an older checkpoint: a Kafka sink
    /// relies on that to find what it wrote after a checkpoint ([`first_id_base`]).
    pub fn new(resume: Option<&Progress>, base: u64) -> Self {
        let mut done = BTreeMap::new();
        for p in resume.map(|r| r.positions.as_slice()).unwrap_or_default() {
            done.insert((p.topic.clone(), p.partition), p.next_offset);
        }
        let checkpoint_id = resume.map_or(0, |r| r.checkpoint_id);
        ProgressLedger { inner: Mutex::new(Inner { pending: VecDeque::new(), done, checkpoint_id }), base }
    }

    /// The id of the first barrier the source sends.
    pub fn first_barrier_id(&self) -> u64 {
        (self.lock().checkpoint_id + 1).max(self.base)
    }

    /// Records that the micro-batch before barrier `id` ends at `positions`.
    pub fn record(&self, id: u64, positions: Vec<PartitionOffset>) {
        let mut inner = self.lock();
        if inner.pending.len() >= MAX_PENDING {
            if let (Some((_, older)), Some((_, newer))) = (inner.pending.pop_front(), inner.pending.front_mut()) {
                let mut merged = older;
                merged.extend(std::mem::take(newer));
                *newer = merged;
            }
        }
        inner.pending.push_back((id, positions));
    }

    /// Completes every barrier up to and including `id` and returns the cumulative
    /// progress, with `watermark` (ms), to commit with the sink's rows. Counts the
    /// completed micro-batches in `metrics`.
    pub fn complete_through(&self, id: u64, watermark: Option<i64>, metrics: &QueryMetrics) -> Progress {
        let mut inner = self.lock();
        while inner.pending.front().is_some_and(|(pid, _)| *pid <= id) {
            if let Some((_, positions)) = inner.pending.pop_front() {
                for p in positions {
                    let e = inner.done.entry((p.topic, p.partition)).or_insert(p.next_offset);
                    *e = (*e).max(p.next_offset);
                }
                metrics.add_committed();
            }
        }
        inner.checkpoint_id = inner.checkpoint_id.max(id);
        inner.progress(watermark)
    }

    /// The progress of the last completed barrier, with `watermark` (ms).
    pub fn current(&self, watermark: Option<i64>) -> Progress {
        self.lock().progress(watermark)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn progress(&self, watermark: Option<i64>) -> Progress {
        Progress {
            checkpoint_id: self.checkpoint_id,
            positions: self
                .done
                .iter()
                .map(|((topic, partition), next_offset)| PartitionOffset {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset: *next_offset,
                })
                .collect(),
            watermark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, next_offset: i64) -> PartitionOffset {
        PartitionOffset { topic: "t".into(), partition, next_offset }
    }

    #[test]
    fn completes_in_order_and_keeps_resumed_partitions() {
        let resume = Progress { checkpoint_id: 7, positions: vec![at(0, 10), at(1, 20)], watermark: Some(5) };
        let ledger = ProgressLedger::new(Some(&resume), 0);
        assert_eq!(ledger.first_barrier_id(), 8);
        assert_eq!(ProgressLedger::new(Some(&resume), first_id_base(1_700_000_000_000)).first_barrier_id(), 1_782_579_200_000_000_000);
        assert!(first_id_base(4_000_000_000_000) < i64::MAX as u64, "ids fit a bigint until the year 2096");
        ledger.record(8, vec![at(0, 15)]);
        ledger.record(9, vec![at(0, 18)]);
        let metrics = QueryMetrics::default();
        let p = ledger.complete_through(8, Some(6), &metrics);
        assert_eq!(p, Progress { checkpoint_id: 8, positions: vec![at(0, 15), at(1, 20)], watermark: Some(6) });
        let p = ledger.complete_through(9, None, &metrics);
        assert_eq!(p.positions, vec![at(0, 18), at(1, 20)]);
        assert_eq!(metrics.snapshot().committed_batches, 2);
        assert_eq!(ledger.current(Some(9)).checkpoint_id, 9);
    }
}
