//! The watermark-sort stage of MATCH_RECOGNIZE (docs/DESIGN.md; RisingWave's and Flink's
//! split): rows are buffered until the watermark passes them, then released in event-time
//! order, ties broken by source partition and offset, grouped by partition key with each
//! key's rows in order. Because the matcher only sees rows in this order, out-of-order
//! delivery can neither create nor hide a match.

use std::collections::VecDeque;

use crate::operator::Timestamp;

/// Where a row sorts: event time (ms), then source partition, then offset, then arrival
/// (for rows without a source position).
pub type SortKey = (Timestamp, i32, i64, u64);

/// Most sorted runs kept apart; beyond, they are merged into one.
const MAX_RUNS: usize = 8;

/// A buffered row.
#[derive(Debug)]
struct Entry<K, T> {
    order: SortKey,
    row: (K, T),
}

/// Rows waiting for the watermark, with their partition keys.
///
/// Rows are appended as they come and sorted at the next release, into sorted runs: input
/// already in order (a file, one Kafka partition) stays one run, so a row costs a copy
/// rather than a search tree's insertion; out-of-order input makes a run per release, and
/// runs are merged as the watermark passes them.
#[derive(Debug)]
pub struct SortBuffer<K, T> {
    /// Rows pushed since the last release, in arrival order.
    pending: Vec<Entry<K, T>>,
    /// Sorted runs of the rows before `pending`.
    runs: Vec<VecDeque<Entry<K, T>>>,
    arrivals: u64,
}

impl<K, T> Default for SortBuffer<K, T> {
    fn default() -> Self {
        SortBuffer { pending: Vec::new(), runs: Vec::new(), arrivals: 0 }
    }
}

impl<K: PartialEq, T> SortBuffer<K, T> {
    /// Buffers `item` of partition key `key` at event time `ts` (ms), read from
    /// `(partition, offset)`.
    pub fn push(&mut self, key: K, ts: Timestamp, partition: i32, offset: i64, item: T) {
        self.arrivals += 1;
        self.pending.push(Entry { order: (ts, partition, offset, self.arrivals), row: (key, item) });
    }

    /// Releases every row at or below `watermark`, in sort order, as runs of one key: each
    /// key's rows keep their order; a key may appear in several runs when its rows
    /// interleave with another key's in time.
    pub fn release(&mut self, watermark: Timestamp) -> Vec<(K, Vec<T>)> {
        self.settle();
        let mut ready: Vec<Vec<Entry<K, T>>> = Vec::with_capacity(self.runs.len());
        for run in &mut self.runs {
            let n = run.partition_point(|e| e.order.0 <= watermark);
            if n > 0 {
                ready.push(run.drain(..n).collect());
            }
        }
        self.runs.retain(|r| !r.is_empty());
        let mut out: Vec<(K, Vec<T>)> = Vec::new();
        for Entry { row: (key, item), .. } in merge(ready) {
            match out.last_mut() {
                Some((k, items)) if *k == key => items.push(item),
                _ => out.push((key, vec![item])),
            }
        }
        out
    }

    /// The waiting rows in sort order, with their keys (for checkpoints).
    pub fn items(&mut self) -> impl Iterator<Item = &(K, T)> {
        self.settle();
        if self.runs.len() > 1 {
            let runs = std::mem::take(&mut self.runs).into_iter().map(Vec::from).collect();
            self.runs.push(merge(runs).into());
        }
        self.runs.iter().flatten().map(|e| &e.row)
    }

    /// Sorts the rows pushed since the last call into a run.
    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        if !pending.is_sorted_by_key(|e| e.order) {
            pending.sort_unstable_by_key(|e| e.order);
        }
        match self.runs.last_mut() {
            // In-order input continues the last run.
            Some(last) if last.back().is_some_and(|b| pending.first().is_some_and(|f| b.order <= f.order)) => last.extend(pending),
            _ => self.runs.push(pending.into()),
        }
        if self.runs.len() > MAX_RUNS {
            let runs = std::mem::take(&mut self.runs).into_iter().map(Vec::from).collect();
            self.runs.push(merge(runs).into());
        }
    }
}

/// Sorted runs merged into one sorted run.
fn merge<K, T>(mut runs: Vec<Vec<Entry<K, T>>>) -> Vec<Entry<K, T>> {
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    let total = runs.iter().map(Vec::len).sum();
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<Entry<K, T>>>> = runs.into_iter().map(|r| r.into_iter().peekable()).collect();
    let mut out = Vec::with_capacity(total);
    loop {
        // Few runs (at most MAX_RUNS + 1): a scan for the smallest head.
        let mut best: Option<(usize, SortKey)> = None;
        for (i, h) in heads.iter_mut().enumerate() {
            if let Some(e) = h.peek() {
                if best.is_none_or(|(_, o)| e.order < o) {
                    best = Some((i, e.order));
                }
            }
        }
        let Some(e) = best.and_then(|(i, _)| heads.get_mut(i)).and_then(Iterator::next) else { break };
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_event_time_order_with_ties_by_partition_and_offset() {
        let mut buffer = SortBuffer::default();
        buffer.push("acct-1", 3000, 0, 7, "login DE");
        buffer.push("acct-1", 1000, 1, 2, "login RU");
        buffer.push("acct-2", 2000, 0, 5, "click");
        buffer.push("acct-1", 2000, 1, 1, "click");
        buffer.push("acct-1", 2000, 0, 9, "log-out");
        assert!(buffer.release(999).is_empty());
        assert_eq!(
            buffer.release(2000),
            // 1000 | (2000, p0, o5) | (2000, p0, o9), (2000, p1, o1)
            vec![("acct-1", vec!["login RU"]), ("acct-2", vec!["click"]), ("acct-1", vec!["log-out", "click"])]
        );
        assert_eq!(buffer.items().count(), 1);
        buffer.push("acct-2", 2500, 0, 3, "click");
        buffer.push("acct-2", 4000, 0, 4, "click");
        assert_eq!(buffer.items().map(|(_, item)| *item).collect::<Vec<_>>(), ["click", "login DE", "click"]);
        assert_eq!(
            buffer.release(Timestamp::MAX),
            vec![("acct-2", vec!["click"]), ("acct-1", vec!["login DE"]), ("acct-2", vec!["click"])]
        );
        assert_eq!(buffer.items().count(), 0);
    }

    #[test]
    fn random_disorder_is_released_as_a_sorted_map_would() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..200 {
            let mut buffer = SortBuffer::default();
            let mut reference = std::collections::BTreeMap::new();
            let (mut watermark, mut offset) = (0i64, 0i64);
            let disorder = [0, 3, 50][case % 3];
            for _ in 0..rng.random_range(1..40) {
                for _ in 0..rng.random_range(0..30) {
                    let ts = watermark + 1 + rng.random_range(0..=disorder) + offset / 10;
                    let partition = rng.random_range(0..2);
                    offset += 1;
                    buffer.push(partition, ts, partition, offset, offset);
                    reference.insert((ts, partition, offset), offset);
                }
                if rng.random_bool(0.2) {
                    let want: Vec<i64> = reference.values().copied().collect();
                    assert_eq!(buffer.items().map(|(_, o)| *o).collect::<Vec<_>>(), want);
                }
                watermark += rng.random_range(0..20);
                let rest = reference.split_off(&(watermark + 1, i32::MIN, i64::MIN));
                let want: Vec<i64> = std::mem::replace(&mut reference, rest).into_values().collect();
                let got: Vec<i64> = buffer.release(watermark).into_iter().flat_map(|(_, items)| items).collect();
                assert_eq!(got, want, "case {case}");
            }
        }
    }
}
