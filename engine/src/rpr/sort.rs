//! The watermark-sort stage of MATCH_RECOGNIZE (docs/DESIGN.md; RisingWave's and Flink's
//! split): rows are buffered until the watermark passes them, then released in event-time
//! order, ties broken by source partition and offset, grouped by partition key with each
//! key's rows in order. Because the matcher only sees rows in this order, out-of-order
//! delivery can neither create nor hide a match.

use std::collections::BTreeMap;

use crate::operator::Timestamp;

/// Where a row sorts: event time (ms), then source partition, then offset, then arrival
/// (for rows without a source position).
pub type SortKey = (Timestamp, i32, i64, u64);

/// Rows waiting for the watermark, with their partition keys.
#[derive(Debug)]
pub struct SortBuffer<K, T> {
    rows: BTreeMap<SortKey, (K, T)>,
    arrivals: u64,
}

impl<K, T> Default for SortBuffer<K, T> {
    fn default() -> Self {
        SortBuffer { rows: BTreeMap::new(), arrivals: 0 }
    }
}

impl<K: PartialEq, T> SortBuffer<K, T> {
    /// Buffers `item` of partition key `key` at event time `ts` (ms), read from
    /// `(partition, offset)`.
    pub fn push(&mut self, key: K, ts: Timestamp, partition: i32, offset: i64, item: T) {
        self.arrivals += 1;
        self.rows.insert((ts, partition, offset, self.arrivals), (key, item));
    }

    /// Releases every row at or below `watermark`, in sort order, as runs of one key: each
    /// key's rows keep their order; a key may appear in several runs when its rows
    /// interleave with another key's in time.
    pub fn release(&mut self, watermark: Timestamp) -> Vec<(K, Vec<T>)> {
        let rest = match watermark.checked_add(1) {
            Some(bound) => self.rows.split_off(&(bound, i32::MIN, i64::MIN, 0)),
            None => BTreeMap::new(),
        };
        let ready = std::mem::replace(&mut self.rows, rest);
        let mut out: Vec<(K, Vec<T>)> = Vec::new();
        for (_, (key, item)) in ready {
            match out.last_mut() {
                Some((k, items)) if *k == key => items.push(item),
                _ => out.push((key, vec![item])),
            }
        }
        out
    }

    /// The waiting rows in sort order, with their keys (for checkpoints).
    pub fn items(&self) -> impl Iterator<Item = &(K, T)> {
        self.rows.values()
    }
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
        assert_eq!(buffer.release(Timestamp::MAX), vec![("acct-1", vec!["login DE"])]);
        assert_eq!(buffer.items().count(), 0);
    }
}
