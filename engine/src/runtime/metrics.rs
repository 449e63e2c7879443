//! Per-query counters, shared by the pipeline's tasks and read by the fronts.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one persistent query. All are totals since the query started.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    rows_in: AtomicU64,
    bytes_in: AtomicU64,
    rows_out: AtomicU64,
    malformed: AtomicU64,
    committed_batches: AtomicU64,
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
}

impl QueryMetrics {
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

    /// Counts one committed micro-batch.
    pub fn add_committed(&self) {
        self.committed_batches.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            committed_batches: self.committed_batches.load(Ordering::Relaxed),
        }
    }
}
