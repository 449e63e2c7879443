//! No repeated records without broker transactions (Materialize's approach): every
//! record a query writes to Kafka carries its progress marker, the headers
//! [`HEADER_QUERY`] (the query's consumer group) and [`HEADER_CHECKPOINT`] (the
//! checkpoint the record belongs to: the last completed one + 1). A restarted query
//! resumes from checkpoint R; before it writes, the sink reads back the tail of its
//! topic, collects the records of this query marked after R — written, but not covered
//! by a checkpoint — and suppresses each of them once when the replay produces it
//! again ([`Suppression`]). Records are matched by their key and value bytes.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaConfig;
use crate::error::{ConnectorError, Result};

/// Header naming the query (its consumer group) that wrote a record.
pub const HEADER_QUERY: &str = "eddy.query";
/// Header with the checkpoint id a record belongs to (decimal).
pub const HEADER_CHECKPOINT: &str = "eddy.checkpoint";

/// Records read back per partition at most (the newest first), so a restart never
/// reads a huge topic whole.
pub const MAX_TAIL_RECORDS: i64 = 1_000_000;

/// Records already in the topic that the replay will produce again: each is dropped
/// once when it comes.
#[derive(Debug, Default)]
pub struct Suppression {
    pending: HashMap<u64, u32>,
    left: usize,
    suppressed: u64,
}

impl Suppression {
    /// Whether nothing is left to suppress.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Records still expected.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Records suppressed so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    fn add(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        *self.pending.entry(fingerprint(key, value)).or_insert(0) += 1;
        self.left += 1;
    }

    /// Whether the record with `key` and `value` (`None`: a tombstone) was written
    /// already; if so it is counted as suppressed and will not be suppressed a second time.
    pub fn take(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
        if self.left == 0 {
            return false;
        }
        let fp = fingerprint(key, value);
        match self.pending.get_mut(&fp) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    self.pending.remove(&fp);
                }
                self.left -= 1;
                self.suppressed += 1;
                true
            }
            _ => false,
        }
    }
}

fn fingerprint(key: Option<&[u8]>, value: Option<&[u8]>) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    // A tombstone (no value) is not an empty value.
    value.hash(&mut h);
    h.finish()
}

/// Reads the tail of every partition of `topic` back to the first record of `query`
/// marked at or before checkpoint `after` (or the start of the partition, or
/// [`MAX_TAIL_RECORDS`]) and returns the records of `query` marked after it.
///
/// Errors: the broker cannot be reached within 30 s, or the topic's metadata cannot be read.
pub fn read_tail(config: &KafkaConfig, topic: &str, query: &str, after: u64) -> Result<Suppression> {
    let mut client = config.client_config();
    client
        .set("group.id", format!("{query}-tail-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = client.create()?;
    let timeout = config.request_timeout();
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> =
        metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut suppression = Suppression::default();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let mut end = high;
        let mut window = 1_000i64;
        // Newest first, in growing windows, until a record of this query at or before
        // `after` is found.
        while end > low && high - end < MAX_TAIL_RECORDS {
            let start = (end - window).max(low);
            let (found_older, records) = read_range(&consumer, topic, partition, start, end, query, after)?;
            for (key, value) in &records {
                suppression.add(key.as_deref(), value.as_deref());
            }
            if found_older {
                break;
            }
            end = start;
            window = (window * 2).min(MAX_TAIL_RECORDS);
        }
    }
    Ok(suppression)
}

/// The records of `query` marked after `after` in `[start, end)` of one partition, and
/// whether one marked at or before it was seen.
#[allow(clippy::type_complexity)]
fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    start: i64,
    end: i64,
    query: &str,
    after: u64,
) -> Result<(bool, Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>)> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&list)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut found_older = false;
    let mut records = Vec::new();
    let mut next = start;
    while next < end {
        if Instant::now() > deadline {
            return Err(ConnectorError::Config(format!("reading back {topic}/{partition} from offset {start} took over 60 s")));
        }
        let Some(result) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = match result {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => break,
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "reading back the sink topic; retrying");
                continue;
            }
        };
        next = message.offset() + 1;
        if message.offset() >= end {
            break;
        }
        let mut mine = false;
        let mut checkpoint = None;
        if let Some(headers) = message.headers() {
            for h in headers.iter() {
                match (h.key, h.value) {
                    (HEADER_QUERY, Some(v)) => mine = v == query.as_bytes(),
                    (HEADER_CHECKPOINT, Some(v)) => checkpoint = std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok()),
                    _ => {}
                }
            }
        }
        match (mine, checkpoint) {
            (true, Some(c)) if c > after => records.push((message.key().map(<[u8]>::to_vec), message.payload().map(<[u8]>::to_vec))),
            (true, Some(_)) => found_older = true,
            _ => {}
        }
    }
    Ok((found_older, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_is_suppressed_once() {
        let mut s = Suppression::default();
        s.add(Some(b"k"), Some(b"v"));
        s.add(Some(b"k"), Some(b"v"));
        s.add(None, Some(b"w"));
        s.add(Some(b"t"), None);
        assert_eq!(s.len(), 4);
        assert!(s.take(Some(b"k"), Some(b"v")));
        assert!(!s.take(Some(b"k"), Some(b"other")));
        assert!(s.take(Some(b"k"), Some(b"v")));
        assert!(!s.take(Some(b"k"), Some(b"v")), "only twice");
        assert!(!s.take(Some(b"w"), Some(b"w")), "the key differs");
        assert!(s.take(None, Some(b"w")));
        assert!(!s.take(Some(b"t"), Some(b"")), "a tombstone is not an empty value");
        assert!(s.take(Some(b"t"), None));
        assert!(s.is_empty());
        assert_eq!(s.suppressed(), 4);
    }
}
