//! Per-query counters, shared by the pipeline's tasks and read by the fronts.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Counters of one persistent query. All are totals since the query started.
#[derive(Debug)]
pub struct QueryMetrics {
    rows_in: AtomicU64,
    bytes_in: AtomicU64,
    rows_out: AtomicU64,
    malformed: AtomicU64,
    committed_batches: AtomicU64,
    late_rows: AtomicU64,
    open_windows: AtomicU64,
    partial_matches: AtomicU64,
    match_keys: AtomicU64,
    held_rows: AtomicU64,
    state_bytes: AtomicU64,
    watermark: AtomicI64,
    consumer_lag: AtomicI64,
    last_commit_ms: AtomicI64,
    checkpoints: AtomicU64,
    last_checkpoint_ms: AtomicI64,
    retrying: Mutex<Option<String>>,
    source_stalled_ms: AtomicI64,
    unread: Mutex<std::collections::HashMap<i32, i64>>,
    /// The source measures unread records (set when it opens, before its first
    /// measurement arrives).
    measures_unread: std::sync::atomic::AtomicBool,
}

/// A copy of [`QueryMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Records read from the source (rows), malformed ones included.
    pub rows_in: u64,
    /// Bytes of record values read.
    pub bytes_in: u64,
    /// Rows written to the sink.
    pub rows_out: u64,
    /// Records that did not decode (rows).
    pub malformed: u64,
    /// Micro-batches made durable by the sink and committed to the source.
    pub committed_batches: u64,
    /// Rows that arrived after their window closed (beyond the grace period).
    pub late_rows: u64,
    /// Windows (window x key) held in state now.
    pub open_windows: u64,
    /// MATCH_RECOGNIZE partial matches (NFA threads) held in state now.
    pub partial_matches: u64,
    /// MATCH_RECOGNIZE partition keys holding rows now.
    pub match_keys: u64,
    /// Rows MATCH_RECOGNIZE holds for its partition keys now (not counting the rows
    /// waiting in its sort buffer for the watermark).
    pub held_rows: u64,
    /// Approximate bytes of operator state now (accumulators and keys; rows held for
    /// MATCH_RECOGNIZE).
    pub state_bytes: u64,
    /// The current event-time watermark (ms since the epoch), `None` before the first.
    pub watermark: Option<i64>,
    /// Records in the source topic not read yet (sum over partitions of the high
    /// watermark minus the consumer position), `None` until the source has measured it
    /// (Kafka sources measure it about every 2 seconds).
    pub consumer_lag: Option<i64>,
    /// When the last micro-batch was committed (ms since the epoch), `None` before the
    /// first: the age of the newest checkpoint a restart resumes from.
    pub last_commit_ms: Option<i64>,
    /// Checkpoints written to the state directory by this run.
    pub checkpoints: u64,
    /// When the last checkpoint was written (ms since the epoch), `None` before the first.
    pub last_checkpoint_ms: Option<i64>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        QueryMetrics {
            rows_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            committed_batches: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            open_windows: AtomicU64::new(0),
            partial_matches: AtomicU64::new(0),
            match_keys: AtomicU64::new(0),
            held_rows: AtomicU64::new(0),
            state_bytes: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            consumer_lag: AtomicI64::new(-1),
            last_commit_ms: AtomicI64::new(-1),
            checkpoints: AtomicU64::new(0),
            last_checkpoint_ms: AtomicI64::new(-1),
            retrying: Mutex::new(None),
            source_stalled_ms: AtomicI64::new(0),
            unread: Mutex::new(std::collections::HashMap::new()),
            measures_unread: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl QueryMetrics {
    /// Marks the query as retrying after `error` (a sink lost its connection), or as
    /// healthy again with `None`. While set, the query's status is `RETRYING`.
    pub fn set_retrying(&self, error: Option<String>) {
        *self.retrying.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// The error the query is retrying after, if it is.
    pub fn retrying(&self) -> Option<String> {
        self.retrying.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds records read.
    pub fn add_in(&self, rows: u64, bytes: u64) {
        self.rows_in.fetch_add(rows, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds rows written.
    pub fn add_out(&self, rows: u64) {
        self.rows_out.fetch_add(rows, Ordering::Relaxed);
    }

    /// Adds malformed records.
    pub fn add_malformed(&self, rows: u64) {
        self.malformed.fetch_add(rows, Ordering::Relaxed);
    }

    /// Adds late rows.
    pub fn add_late(&self, rows: u64) {
        self.late_rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// Adds to the state gauges (one worker's change; may be negative).
    pub fn adjust_state(&self, open_windows: i64, state_bytes: i64) {
        add_signed(&self.open_windows, open_windows);
        add_signed(&self.state_bytes, state_bytes);
    }

    /// Adds to the MATCH_RECOGNIZE gauges (one worker's change; may be negative).
    pub fn adjust_matches(&self, change: MatchStateChange) {
        add_signed(&self.partial_matches, change.partial_matches);
        add_signed(&self.match_keys, change.keys);
        add_signed(&self.held_rows, change.held_rows);
        add_signed(&self.state_bytes, change.state_bytes);
    }

    /// Adds time (ms) the source spent waiting to hand records downstream
    /// (backpressure).
    pub fn add_source_stalled(&self, ms: i64) {
        self.source_stalled_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Total time (ms) the source has spent waiting to hand records downstream. A
    /// partition is idle only for time the source was free to read it (see
    /// `Watermarks`): a worker starved because the source is stuck sending to another
    /// worker is not idle.
    pub fn source_stalled_ms(&self) -> i64 {
        self.source_stalled_ms.load(Ordering::Relaxed)
    }

    /// Records how many records of source partition `partition` are in the topic but
    /// not read yet (the high watermark minus the consumer's position), as the Kafka
    /// source measures it about every 2 s.
    pub fn set_unread(&self, partition: i32, records: i64) {
        self.unread.lock().unwrap_or_else(|p| p.into_inner()).insert(partition, records);
    }

    /// The records of `partition` not read yet at the last measurement; `None` when the
    /// source does not measure it (files) or has not yet.
    pub fn unread(&self, partition: i32) -> Option<i64> {
        self.unread.lock().unwrap_or_else(|p| p.into_inner()).get(&partition).copied()
    }

    /// Says that the source measures unread records (the Kafka source, when it opens):
    /// until its first measurement, every partition counts as having records waiting,
    /// so none can turn idle before the source knows (a 1 s idle timeout is shorter
    /// than the 2 s between measurements).
    pub fn expect_unread(&self) {
        self.measures_unread.store(true, Ordering::Relaxed);
    }

    /// Whether the source measures unread records at all (Kafka does, files do not).
    pub fn measures_unread(&self) -> bool {
        self.measures_unread.load(Ordering::Relaxed) || !self.unread.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Records the watermark (ms).
    pub fn set_watermark(&self, watermark: i64) {
        self.watermark.fetch_max(watermark, Ordering::Relaxed);
    }

    /// Records the consumer lag (records).
    pub fn set_consumer_lag(&self, lag: i64) {
        self.consumer_lag.store(lag.max(0), Ordering::Relaxed);
    }

    /// Records that checkpoint `id` was written to the state directory.
    pub fn set_checkpoint(&self, id: u64) {
        tracing::debug!(checkpoint = id, "checkpoint written");
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.last_checkpoint_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Counts one committed micro-batch.
    pub fn add_committed(&self) {
        self.committed_batches.fetch_add(1, Ordering::Relaxed);
        self.last_commit_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            committed_batches: self.committed_batches.load(Ordering::Relaxed),
            late_rows: self.late_rows.load(Ordering::Relaxed),
            open_windows: self.open_windows.load(Ordering::Relaxed),
            partial_matches: self.partial_matches.load(Ordering::Relaxed),
            match_keys: self.match_keys.load(Ordering::Relaxed),
            held_rows: self.held_rows.load(Ordering::Relaxed),
            state_bytes: self.state_bytes.load(Ordering::Relaxed),
            watermark: Some(self.watermark.load(Ordering::Relaxed)).filter(|w| *w != i64::MIN),
            consumer_lag: Some(self.consumer_lag.load(Ordering::Relaxed)).filter(|l| *l >= 0),
            last_commit_ms: Some(self.last_commit_ms.load(Ordering::Relaxed)).filter(|l| *l >= 0),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            last_checkpoint_ms: Some(self.last_checkpoint_ms.load(Ordering::Relaxed)).filter(|l| *l >= 0),
        }
    }
}

/// One MATCH_RECOGNIZE worker's change of its state gauges (each may be negative).
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchStateChange {
    /// Partial matches (NFA threads).
    pub partial_matches: i64,
    /// Partition keys holding rows.
    pub keys: i64,
    /// Rows held for the partition keys.
    pub held_rows: i64,
    /// Approximate bytes.
    pub state_bytes: i64,
}

fn add_signed(counter: &AtomicU64, delta: i64) {
    if delta >= 0 {
        counter.fetch_add(delta as u64, Ordering::Relaxed);
    } else {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(delta.unsigned_abs())));
    }
}
