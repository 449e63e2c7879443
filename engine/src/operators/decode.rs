//! Decode: raw Kafka records to typed rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::{EngineError, Result};
use crate::format::{decoder, KeyDecoder, ValueDecoder};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Operator};
use crate::options::{ErrorPolicy, Format, KeyFormat};
use crate::record::{dead_letter_schema, RawColumn};

/// Record metadata a query may need after decoding, appended to the decoded columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaColumns {
    /// Only the decoded columns.
    None,
    /// `__partition Int32, __offset Int64, __timestamp Timestamp(ms)?`: for event time
    /// and watermarks.
    Position,
    /// Position plus `__key Binary?, __value Binary?, __topic Utf8`: the original record,
    /// for the late-rows side output.
    Record,
}

/// Name of the partition column appended by [`MetaColumns::Position`].
pub const META_PARTITION: &str = "__partition";
/// Name of the offset column appended by [`MetaColumns::Position`].
pub const META_OFFSET: &str = "__offset";
/// Name of the Kafka timestamp column appended by [`MetaColumns::Position`].
pub const META_TIMESTAMP: &str = "__timestamp";
/// Name of the record key column appended by [`MetaColumns::Record`].
pub const META_KEY: &str = "__key";
/// Name of the record value column appended by [`MetaColumns::Record`].
pub const META_VALUE: &str = "__value";
/// Name of the topic column appended by [`MetaColumns::Record`].
pub const META_TOPIC: &str = "__topic";

impl MetaColumns {
    /// The fields appended, in order.
    pub fn fields(self) -> Vec<Field> {
        let mut fields = Vec::new();
        if self != MetaColumns::None {
            fields.push(Field::new(META_PARTITION, DataType::Int32, false));
            fields.push(Field::new(META_OFFSET, DataType::Int64, false));
            fields.push(Field::new(META_TIMESTAMP, DataType::Timestamp(TimeUnit::Millisecond, None), true));
        }
        if self == MetaColumns::Record {
            fields.push(Field::new(META_KEY, DataType::Binary, true));
            fields.push(Field::new(META_VALUE, DataType::Binary, true));
            fields.push(Field::new(META_TOPIC, DataType::Utf8, false));
        }
        fields
    }

    /// `schema` with the meta fields appended.
    pub fn extend(self, schema: &Schema) -> SchemaRef {
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(self.fields());
        Arc::new(Schema::new(fields))
    }
}

/// Decodes the `value` column of raw record batches into rows of the stream's schema.
/// Malformed records are counted in the query's `malformed` counter and handled by the
/// [`ErrorPolicy`]; the good records of the same batch always go on.
pub struct Decode {
    decoder: Box<dyn ValueDecoder>,
    /// ksqlDB's key columns, read from the record key.
    key: Option<RecordKey>,
    /// The decoded columns (without meta columns).
    columns: SchemaRef,
    metrics: Arc<QueryMetrics>,
    policy: ErrorPolicy,
    query_id: String,
    meta: MetaColumns,
    output: SchemaRef,
    /// `{"<column>":`: the prefix that wraps an unwrapped single value.
    unwrapped: Option<Vec<u8>>,
    /// A TABLE's changelog: a record without a value (a tombstone) is decoded as this
    /// value, all NULLs, instead of being malformed; the changelog operator reads the
    /// raw value (`__value`) to tell it is a delete.
    tombstone: Option<Vec<u8>>,
}

impl Decode {
    /// A decoder of `format` into `schema`.
    pub fn new(format: Format, schema: SchemaRef, metrics: Arc<QueryMetrics>, policy: ErrorPolicy, query_id: String) -> Self {
        Decode {
            output: schema.clone(),
            columns: schema.clone(),
            decoder: decoder(format, schema),
            key: None,
            metrics,
            policy,
            query_id,
            meta: MetaColumns::None,
            unwrapped: None,
            tombstone: None,
        }
    }

    /// Reads records without a value (tombstones of a TABLE's changelog) as rows of
    /// NULLs, decoding `placeholder` for them (`{}` for JSON, delimiters for DELIMITED).
    pub fn with_tombstones(mut self, placeholder: Vec<u8>) -> Self {
        self.tombstone = Some(placeholder);
        self
    }

    /// Reads each JSON value as the bare value of the one value column named `column`
    /// (ksqlDB's `WRAP_SINGLE_VALUE = false`): `5` is read as `{"column": 5}`.
    pub fn with_unwrapped_value(mut self, column: &str) -> Self {
        let name = serde_json::to_string(column).unwrap_or_else(|_| format!("\"{column}\""));
        self.unwrapped = Some(format!("{{{name}:").into_bytes());
        self
    }

    /// Reads the columns `names` from the record key in `key_format` (ksqlDB's `KEY`
    /// columns) and only the other columns from the value, in `format`.
    ///
    /// Errors: a name is not a column.
    pub fn with_record_key(mut self, format: Format, key_format: KeyFormat, names: &[String]) -> Result<Self> {
        let key_schema = crate::format::key_schema(&self.columns, names)?;
        let value_fields: Vec<Field> =
            self.columns.fields().iter().filter(|f| !names.contains(f.name())).map(|f| f.as_ref().clone()).collect();
        let value_schema = Arc::new(Schema::new(value_fields));
        let positions = self.columns.fields().iter().map(|f| names.iter().position(|n| n == f.name())).collect();
        self.decoder = decoder(format, value_schema);
        let fields_not_null = key_schema.fields().iter().map(|f| !f.is_nullable()).collect();
        self.key = Some(RecordKey { decoder: KeyDecoder::new(key_format, key_schema), positions, fields_not_null });
        Ok(self)
    }

    /// Builds only the value columns where `read` (one per column of the schema) is
    /// true, and NULLs for the rest, which the query never reads
    /// ([`crate::sql::columns_read`]). The output schema does not change.
    pub fn reading_only(mut self, read: &[bool]) -> Self {
        self.decoder.read_only(read);
        self
    }

    /// Appends record metadata to every output row ([`MetaColumns::extend`] of the schema).
    pub fn with_meta(mut self, meta: MetaColumns) -> Self {
        self.output = meta.extend(&self.output);
        self.meta = meta;
        self
    }
}

/// Key columns read from the record key.
struct RecordKey {
    decoder: KeyDecoder,
    /// For each decoded column, its index among the key columns, or `None` for a value column.
    positions: Vec<Option<usize>>,
    /// Whether each key column is declared NOT NULL (a PRIMARY KEY).
    fields_not_null: Vec<bool>,
}

impl Decode {
    /// Decodes the values (and keys) of a raw batch into rows of the decoded columns.
    fn decode(&mut self, batch: &RecordBatch) -> Result<crate::format::Decoded> {
        let values = batch.column(RawColumn::Value as usize).as_binary::<i32>();
        let wrapped: Vec<Option<Vec<u8>>>;
        let values: Vec<Option<&[u8]>> = match &self.tombstone {
            None => values.iter().collect(),
            Some(placeholder) => values.iter().map(|v| v.or(Some(placeholder.as_slice()))).collect(),
        };
        let slices: Vec<Option<&[u8]>> = match &self.unwrapped {
            None => values,
            Some(prefix) => {
                wrapped = values
                    .into_iter()
                    .map(|v| {
                        v.map(|v| {
                            let mut w = Vec::with_capacity(prefix.len() + v.len() + 1);
                            w.extend_from_slice(prefix);
                            w.extend_from_slice(v);
                            w.push(b'}');
                            w
                        })
                    })
                    .collect();
                wrapped.iter().map(Option::as_deref).collect()
            }
        };
        let decoded = self.decoder.decode(&slices)?;
        let Some(key) = self.key.as_mut() else { return Ok(decoded) };
        let (key_columns, key_malformed) = key.decoder.decode(batch.column(RawColumn::Key as usize).as_binary::<i32>())?;
        let mut malformed = decoded.malformed;
        let mut value_bad: std::collections::HashSet<usize> = malformed.iter().map(|m| m.index).collect();
        for m in key_malformed {
            if value_bad.insert(m.index) {
                malformed.push(m);
            }
        }
        // A PRIMARY KEY column cannot be null: a record without a key is malformed.
        for (k, column) in key_columns.iter().enumerate() {
            if key.fields_not_null[k] {
                for i in (0..column.len()).filter(|i| column.is_null(*i)) {
                    if value_bad.insert(i) {
                        malformed.push(crate::format::Malformed { index: i, reason: "key: the record has no key".into() });
                    }
                }
            }
        }
        malformed.sort_by_key(|m| m.index);
        // Rows whose value decoded and whose key did too.
        let bad: std::collections::HashSet<usize> = malformed.iter().map(|m| m.index).collect();
        let kept: Vec<(usize, usize)> =
            decoded.rows.iter().enumerate().filter(|(_, input)| !bad.contains(*input)).map(|(r, i)| (r, *i)).collect();
        let value_rows = arrow::array::UInt32Array::from_iter_values(kept.iter().map(|(r, _)| *r as u32));
        let input_rows = arrow::array::UInt32Array::from_iter_values(kept.iter().map(|(_, i)| *i as u32));
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.columns.fields().len());
        let mut value_column = 0;
        for position in &key.positions {
            match position {
                Some(k) => columns.push(arrow::compute::take(&key_columns[*k], &input_rows, None)?),
                None => {
                    columns.push(arrow::compute::take(decoded.batch.column(value_column), &value_rows, None)?);
                    value_column += 1;
                }
            }
        }
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(kept.len()));
        let batch = RecordBatch::try_new_with_options(self.columns.clone(), columns, &options)?;
        Ok(crate::format::Decoded { batch, rows: kept.iter().map(|(_, i)| *i).collect(), malformed })
    }
}

impl Operator for Decode {
    fn name(&self) -> &'static str {
        "decode"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let decoded = self.decode(&batch)?;
        if !decoded.malformed.is_empty() {
            let topics = batch.column(RawColumn::Topic as usize).as_string::<i32>();
            let partitions = batch.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
            let offsets = batch.column(RawColumn::Offset as usize).as_primitive::<Int64Type>();
            for m in &decoded.malformed {
                let location = format!("{}/{}@{}", topics.value(m.index), partitions.value(m.index), offsets.value(m.index));
                match self.policy {
                    ErrorPolicy::Fail => return Err(EngineError::Malformed { location, reason: m.reason.clone() }),
                    ErrorPolicy::Skip => {
                        tracing::warn!(query = %self.query_id, record = %location, reason = %m.reason, "skipped malformed record")
                    }
                    ErrorPolicy::DeadLetter => {
                        tracing::debug!(query = %self.query_id, record = %location, reason = %m.reason, "malformed record to the dead letters")
                    }
                }
            }
            self.metrics.add_malformed(decoded.malformed.len() as u64);
            if self.policy == ErrorPolicy::DeadLetter {
                out.dead_letters(dead_letters(&batch, &decoded.malformed)?);
            }
        }
        if self.meta == MetaColumns::None {
            out.emit(decoded.batch);
            return Ok(());
        }
        // Every record decoded: the rows are the raw batch's, in order, and its columns
        // are taken as they are.
        let indices = (decoded.rows.len() < batch.num_rows())
            .then(|| arrow::array::UInt32Array::from_iter_values(decoded.rows.iter().map(|&i| i as u32)));
        let mut columns: Vec<ArrayRef> = decoded.batch.columns().to_vec();
        let mut raw = vec![RawColumn::Partition, RawColumn::Offset, RawColumn::Timestamp];
        if self.meta == MetaColumns::Record {
            raw.extend([RawColumn::Key, RawColumn::Value, RawColumn::Topic]);
        }
        for c in raw {
            columns.push(match &indices {
                Some(indices) => arrow::compute::take(batch.column(c as usize), indices, None)?,
                None => batch.column(c as usize).clone(),
            });
        }
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(decoded.rows.len()));
        out.emit(RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?);
        Ok(())
    }
}

/// The dead letters of the `malformed` records of the raw `batch` ([`dead_letter_schema`]).
fn dead_letters(batch: &RecordBatch, malformed: &[crate::format::Malformed]) -> Result<RecordBatch> {
    let indices = arrow::array::UInt32Array::from_iter_values(malformed.iter().map(|m| m.index as u32));
    let mut columns = Vec::with_capacity(batch.num_columns() + 2);
    for column in batch.columns() {
        columns.push(arrow::compute::take(column, &indices, None)?);
    }
    columns.push(Arc::new(StringArray::from_iter_values(malformed.iter().map(|m| m.reason.as_str()))) as ArrayRef);
    let now = chrono::Utc::now().timestamp_millis();
    columns.push(Arc::new(TimestampMillisecondArray::from(vec![now; malformed.len()])) as ArrayRef);
    Ok(RecordBatch::try_new(dead_letter_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn raw(values: &[&str]) -> RecordBatch {
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        crate::record::raw_batch(&values, "logs", 2, 40).unwrap_or_else(|e| panic!("{e}"))
    }

    fn decode(policy: ErrorPolicy) -> (Decode, Arc<QueryMetrics>) {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("n", DataType::Int32, true)]));
        let metrics = Arc::new(QueryMetrics::default());
        (Decode::new(Format::delimited(b','), schema, metrics.clone(), policy, "q".into()), metrics)
    }

    #[test]
    fn skip_counts_and_keeps_the_good_rows() -> Result<()> {
        let (mut op, metrics) = decode(ErrorPolicy::Skip);
        let mut out = Collector::default();
        op.on_batch(raw(&["x,1", "hello", "y,2"]), &mut out)?;
        let rows: usize = out.take_batches().iter().map(RecordBatch::num_rows).sum();
        assert_eq!((rows, metrics.snapshot().malformed), (2, 1));
        Ok(())
    }

    #[test]
    fn dead_letter_keeps_the_raw_record_and_the_error() -> Result<()> {
        let (mut op, metrics) = decode(ErrorPolicy::DeadLetter);
        let mut out = Collector::default();
        op.on_batch(raw(&["x,1", "hello", "y,2", "z,notanint"]), &mut out)?;
        let messages = out.take();
        let letters: Vec<RecordBatch> =
            messages.iter().filter_map(|m| if let crate::operator::Message::DeadLetters(b) = m { Some(b.clone()) } else { None }).collect();
        let rows: usize = messages.iter().map(|m| if let crate::operator::Message::Batch(b) = m { b.num_rows() } else { 0 }).sum();
        assert_eq!((rows, metrics.snapshot().malformed, letters.len()), (2, 2, 1));
        let b = &letters[0];
        assert_eq!(b.schema(), dead_letter_schema());
        assert_eq!(b.column(1).as_binary::<i32>().iter().collect::<Vec<_>>(), [Some(&b"hello"[..]), Some(&b"z,notanint"[..])]);
        assert_eq!(b.column(4).as_primitive::<Int64Type>().values().to_vec(), [41, 43]);
        assert_eq!(
            b.column(6).as_string::<i32>().value(1),
            "error while parsing value 'notanint' as type 'Int32' for column 1. Row data: '[z,notanint]'"
        );
        Ok(())
    }

    #[test]
    fn fail_names_the_record() {
        let (mut op, _) = decode(ErrorPolicy::Fail);
        let err = op.on_batch(raw(&["x,1", "y,notanint"]), &mut Collector::default()).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("malformed record at logs/2@41: error while parsing value 'notanint' as type 'Int32' for column 1. Row data: '[y,notanint]'")
        );
    }

    /// ksqlDB's KEY columns come from the record key; a record without a key has a null
    /// KEY column, but a PRIMARY KEY (NOT NULL) makes it malformed.
    #[test]
    fn key_columns_come_from_the_record_key() -> Result<()> {
        for (nullable, rows, malformed) in [(true, 2, 0), (false, 0, 2)] {
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, nullable), Field::new("n", DataType::Int32, true)]));
            let metrics = Arc::new(QueryMetrics::default());
            let mut op = Decode::new(Format::Json, schema, metrics.clone(), ErrorPolicy::Skip, "q".into()).with_record_key(
                Format::Json,
                KeyFormat::Kafka,
                &["id".to_string()],
            )?;
            let mut out = Collector::default();
            let values: Vec<&[u8]> = vec![br#"{"n": 1}"#, br#"{"n": 2}"#];
            op.on_batch(crate::record::raw_batch(&values, "t", 0, 0)?, &mut out)?;
            let batches = out.take_batches();
            let got: usize = batches.iter().map(RecordBatch::num_rows).sum();
            assert_eq!((got, metrics.snapshot().malformed), (rows, malformed), "nullable {nullable}");
            if nullable {
                assert!(batches[0].column(0).is_null(0));
                assert_eq!(batches[0].column(1).as_primitive::<Int32Type>().values().to_vec(), [1, 2]);
            }
        }
        Ok(())
    }
}
