//! Decode: raw Kafka records to typed rows.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::{EngineError, Result};
use crate::format::{decoder, ValueDecoder};
use crate::operator::{Collector, Operator};
use crate::options::Format;
use crate::runtime::QueryMetrics;

/// Columns of a raw record batch, as sources produce them (see [`raw_schema`]).
#[derive(Debug, Clone, Copy)]
pub enum RawColumn {
    /// `key`: Binary, nullable.
    Key = 0,
    /// `value`: Binary, nullable.
    Value = 1,
    /// `topic`: Utf8.
    Topic = 2,
    /// `partition`: Int32.
    Partition = 3,
    /// `offset`: Int64.
    Offset = 4,
    /// `timestamp`: Timestamp(ms), the record's Kafka timestamp, nullable.
    Timestamp = 5,
}

/// The schema of raw record batches:
/// `key Binary?, value Binary?, topic Utf8, partition Int32, offset Int64, timestamp Timestamp(ms)?`.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// What to do with a record that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Count it, log it once with topic/partition/offset, and go on (the default).
    Skip,
    /// Stop the query with an error naming the record.
    Fail,
}

/// Decodes the `value` column of raw record batches into rows of the stream's schema.
/// Malformed records are counted in [`QueryMetrics::malformed`] and handled by the
/// [`ErrorPolicy`]; the good records of the same batch always go on.
pub struct Decode {
    decoder: Box<dyn ValueDecoder>,
    metrics: Arc<QueryMetrics>,
    policy: ErrorPolicy,
    query_id: String,
}

impl Decode {
    /// A decoder of `format` into `schema`.
    pub fn new(format: Format, schema: SchemaRef, metrics: Arc<QueryMetrics>, policy: ErrorPolicy, query_id: String) -> Self {
        Decode { decoder: decoder(format, schema), metrics, policy, query_id }
    }
}

impl Operator for Decode {
    fn name(&self) -> &'static str {
        "decode"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let values = batch.column(RawColumn::Value as usize).as_binary::<i32>();
        let slices: Vec<Option<&[u8]>> = values.iter().collect();
        let decoded = self.decoder.decode(&slices)?;
        if !decoded.malformed.is_empty() {
            let topics = batch.column(RawColumn::Topic as usize).as_string::<i32>();
            let partitions = batch.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
            let offsets = batch.column(RawColumn::Offset as usize).as_primitive::<Int64Type>();
            for m in &decoded.malformed {
                let location = format!("{}/{}@{}", topics.value(m.index), partitions.value(m.index), offsets.value(m.index));
                if self.policy == ErrorPolicy::Fail {
                    return Err(EngineError::Malformed { location, reason: m.reason.clone() });
                }
                tracing::warn!(query = %self.query_id, record = %location, reason = %m.reason, "skipped malformed record");
            }
            self.metrics.add_malformed(decoded.malformed.len() as u64);
        }
        out.emit(decoded.batch);
        Ok(())
    }
}
