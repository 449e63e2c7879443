//! Raw records: the Arrow shape in which every [`crate::connector::Source`] hands its
//! records to the engine before decoding, and the shape of dead letters that sinks write.
//! Sources build them; the decode operator reads them; dead-letter sinks write them.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::Result;

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

/// The schema of dead letters (`'value.error.policy'='dead_letter'`): the raw record
/// ([`raw_schema`]: key and value bytes as read, topic, partition, offset, Kafka
/// timestamp) followed by `error Utf8` (why it did not decode) and
/// `failed_at Timestamp(ms)` (when, wall clock).
pub fn dead_letter_schema() -> SchemaRef {
    let mut fields: Vec<Field> = raw_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("error", DataType::Utf8, false));
    fields.push(Field::new("failed_at", DataType::Timestamp(TimeUnit::Millisecond, None), false));
    Arc::new(Schema::new(fields))
}

/// A raw record batch ([`raw_schema`]) of keyless `values` from one topic partition,
/// at offsets `first_offset..`, without timestamps: for tests, benchmarks and sources
/// that are not Kafka.
///
/// Errors: only if Arrow rejects the columns (it does not for these types).
pub fn raw_batch(values: &[&[u8]], topic: &str, partition: i32, first_offset: i64) -> Result<RecordBatch> {
    let n = values.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::from_iter(std::iter::repeat_n(None::<&[u8]>, n))),
        Arc::new(BinaryArray::from_iter_values(values.iter().copied())),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(topic, n))),
        Arc::new(Int32Array::from(vec![partition; n])),
        Arc::new(Int64Array::from_iter_values(first_offset..first_offset + n as i64)),
        Arc::new(TimestampMillisecondArray::from(vec![None; n])),
    ];
    Ok(RecordBatch::try_new(raw_schema(), columns)?)
}
