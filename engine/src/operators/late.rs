//! The late-rows side output shared by the event-time operators (window aggregate,
//! MATCH_RECOGNIZE): rows behind the watermark are counted in `late_rows` and, when the
//! source names `'late-rows.topic'`, sent on as raw records ([`super::raw_schema`]) with
//! their original key and value bytes. Never dropped silently.

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::Schema;

use super::decode::{META_KEY, META_OFFSET, META_PARTITION, META_TIMESTAMP, META_TOPIC, META_VALUE};
use crate::error::Result;
use crate::metrics::QueryMetrics;
use crate::operator::Collector;

/// Where the original record's columns are in an operator's input.
#[derive(Debug, Clone)]
struct RecordColumns {
    key: usize,
    value: usize,
    topic: usize,
    partition: usize,
    offset: usize,
    timestamp: usize,
}

/// Counts late rows and, when the input carries the record meta columns, emits them.
#[derive(Debug, Clone)]
pub struct LateRows {
    columns: Option<RecordColumns>,
    metrics: Arc<QueryMetrics>,
}

impl LateRows {
    /// Late rows of batches with schema `input` (the record meta columns are optional:
    /// without them late rows are only counted).
    pub fn new(input: &Schema, metrics: Arc<QueryMetrics>) -> Self {
        let columns = (|| {
            Some(RecordColumns {
                key: input.index_of(META_KEY).ok()?,
                value: input.index_of(META_VALUE).ok()?,
                topic: input.index_of(META_TOPIC).ok()?,
                partition: input.index_of(META_PARTITION).ok()?,
                offset: input.index_of(META_OFFSET).ok()?,
                timestamp: input.index_of(META_TIMESTAMP).ok()?,
            })
        })();
        LateRows { columns, metrics }
    }

    /// Counts rows `late` of `batch` and sends them to the side output.
    ///
    /// Errors: only Arrow errors from taking the rows.
    pub fn send(&self, batch: &RecordBatch, late: &[u32], out: &mut Collector) -> Result<()> {
        if late.is_empty() {
            return Ok(());
        }
        self.metrics.add_late(late.len() as u64);
        let Some(c) = &self.columns else { return Ok(()) };
        let idx = UInt32Array::from(late.to_vec());
        let take = |i: usize| arrow::compute::take(batch.column(i), &idx, None);
        let columns = vec![take(c.key)?, take(c.value)?, take(c.topic)?, take(c.partition)?, take(c.offset)?, take(c.timestamp)?];
        out.late_rows(RecordBatch::try_new(crate::record::raw_schema(), columns)?);
        Ok(())
    }
}
