//! Kafka record keys to key columns and back, in ksqlDB's `KEY_FORMAT`s
//! ([`KeyFormat`]), so that Eddy reads the topics ksqlDB and Kafka Streams write and they
//! read Eddy's:
//!
//! - `KAFKA`: Kafka's serializers (`StringSerializer`, `IntegerSerializer`,
//!   `LongSerializer`, `DoubleSerializer`, `BytesSerializer`): one column, a STRING as
//!   UTF-8, an INT as 4 bytes, a BIGINT or DOUBLE as 8 bytes, big-endian.
//! - `JSON`: one column as a bare value (`1`, `"a"`; an object holding the column is
//!   also read), several as an object.
//! - `DELIMITED`: the columns in order, separated by the delimiter.
//!
//! A windowed key (ksqlDB's windowed tables, Kafka Streams' `TimeWindowedSerializer`) is
//! the key bytes followed by the window start, 8 bytes of milliseconds, big-endian.
//! A record without a key has null key columns.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;

use super::{CsvDecoder, JsonDecoder, Malformed, ValueDecoder, ValueEncoder};
use crate::error::Result;
use crate::options::{Format, KeyFormat};

/// Whether the `KAFKA` key format can hold a column of this type; `Err` names why not.
pub fn check_kafka_key(fields: &[&arrow::datatypes::Field]) -> std::result::Result<(), String> {
    match fields {
        [f] => match f.data_type() {
            DataType::Utf8 | DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Binary => Ok(()),
            other => Err(format!(
                "The 'KAFKA' format does not support type '{}' (key column \"{}\")",
                crate::sql::types::sql_name(other),
                f.name()
            )),
        },
        several => Err(format!(
            "The 'KAFKA' format only supports a single field. Got: [{}]",
            several.iter().map(|f| format!("`{}` {}", f.name(), crate::sql::types::sql_name(f.data_type()))).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Decodes record keys into the key columns.
pub struct KeyDecoder {
    format: KeyFormat,
    schema: SchemaRef,
    text: Option<Box<dyn ValueDecoder>>,
}

impl KeyDecoder {
    /// A decoder of keys in `format` into the columns of `schema` (the key columns, in
    /// order).
    pub fn new(format: KeyFormat, schema: SchemaRef) -> Self {
        let text: Option<Box<dyn ValueDecoder>> = match format {
            KeyFormat::Json => Some(Box::new(JsonDecoder::new(schema.clone()))),
            KeyFormat::Delimited { delimiter } => Some(Box::new(CsvDecoder::new(schema.clone(), delimiter))),
            KeyFormat::Kafka | KeyFormat::None => None,
        };
        KeyDecoder { format, schema, text }
    }

    /// The key columns of every record (`keys` has one entry per record; a null key gives
    /// null columns), and the records whose key does not decode.
    pub fn decode(&mut self, keys: &BinaryArray) -> Result<(Vec<ArrayRef>, Vec<Malformed>)> {
        let n = keys.len();
        match self.format {
            KeyFormat::None => {
                Ok((self.schema.fields().iter().map(|f| arrow::array::new_null_array(f.data_type(), n)).collect(), Vec::new()))
            }
            KeyFormat::Kafka => self.kafka(keys),
            KeyFormat::Json | KeyFormat::Delimited { .. } => self.text(keys),
        }
    }

    fn kafka(&self, keys: &BinaryArray) -> Result<(Vec<ArrayRef>, Vec<Malformed>)> {
        let field = self.schema.field(0);
        let mut malformed = Vec::new();
        let mut bad = |index: usize, reason: String| malformed.push(Malformed { index, reason: format!("key: {reason}") });
        let fixed = |index: usize, bytes: &[u8], size: usize, bad: &mut dyn FnMut(usize, String)| -> Option<Vec<u8>> {
            if bytes.len() == size {
                Some(bytes.to_vec())
            } else {
                bad(index, format!("expected {size} bytes for {}, found {}", crate::sql::types::sql_name(field.data_type()), bytes.len()));
                None
            }
        };
        let column: ArrayRef = match field.data_type() {
            DataType::Utf8 => Arc::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| {
                        k.and_then(|b| match std::str::from_utf8(b) {
                            Ok(s) => Some(s.to_string()),
                            Err(_) => {
                                bad(i, "invalid UTF-8".into());
                                None
                            }
                        })
                    })
                    .collect::<StringArray>(),
            ),
            DataType::Int32 => Arc::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| k.and_then(|b| fixed(i, b, 4, &mut bad)).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])))
                    .collect::<Int32Array>(),
            ),
            DataType::Int64 => Arc::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| k.and_then(|b| fixed(i, b, 8, &mut bad)).map(|b| i64::from_be_bytes(eight(&b))))
                    .collect::<Int64Array>(),
            ),
            DataType::Float64 => Arc::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| k.and_then(|b| fixed(i, b, 8, &mut bad)).map(|b| f64::from_be_bytes(eight(&b))))
                    .collect::<Float64Array>(),
            ),
            DataType::Binary => Arc::new(keys.clone()),
            other => {
                return Err(crate::error::EngineError::statement(format!(
                    "the KAFKA key format cannot read {}",
                    crate::sql::types::sql_name(other)
                )))
            }
        };
        Ok((vec![column], malformed))
    }

    fn text(&mut self, keys: &BinaryArray) -> Result<(Vec<ArrayRef>, Vec<Malformed>)> {
        let single = self.schema.fields().len() == 1 && matches!(self.format, KeyFormat::Json);
        let name = self.schema.field(0).name().clone();
        // A bare JSON value is wrapped into an object holding the one key column.
        let wrapped: Vec<Option<Vec<u8>>> = keys
            .iter()
            .map(|k| {
                k.map(|b| {
                    let trimmed = b.trim_ascii_start();
                    if single && !trimmed.starts_with(b"{") {
                        let mut v = format!("{{{}:", serde_json::Value::String(name.clone())).into_bytes();
                        v.extend_from_slice(b);
                        v.push(b'}');
                        v
                    } else {
                        b.to_vec()
                    }
                })
            })
            .collect();
        let present: Vec<usize> = (0..keys.len()).filter(|i| wrapped[*i].is_some()).collect();
        let values: Vec<Option<&[u8]>> = present.iter().map(|i| wrapped[*i].as_deref()).collect();
        let Some(text) = self.text.as_mut() else { return Ok((Vec::new(), Vec::new())) };
        let decoded = text.decode(&values)?;
        // Row of `decoded.batch` for each record; null where the key is null or bad.
        let mut at: Vec<Option<u32>> = vec![None; keys.len()];
        for (row, input) in decoded.rows.iter().enumerate() {
            at[present[*input]] = Some(row as u32);
        }
        let indices = UInt32Array::from(at);
        let columns =
            decoded.batch.columns().iter().map(|c| arrow::compute::take(c, &indices, None)).collect::<std::result::Result<Vec<_>, _>>()?;
        let malformed =
            decoded.malformed.into_iter().map(|m| Malformed { index: present[m.index], reason: format!("key: {}", m.reason) }).collect();
        Ok((columns, malformed))
    }
}

fn eight(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

/// The record key of each row of `keys` (the key columns, in order) in `format`; with
/// `window` (Timestamp(ms) columns), the windowed key: the key bytes, then each window
/// column's ms as 8 bytes, big-endian, in the order given (Kafka Streams: the start for a
/// time window; the end, then the start, for a session). A row whose key columns are all
/// null has no key. Dates and times in a JSON or DELIMITED key are written in `style`.
pub fn encode_record_keys(
    format: KeyFormat,
    keys: &RecordBatch,
    window: &[ArrayRef],
    style: super::TimestampStyle,
) -> Result<Vec<Option<Vec<u8>>>> {
    let n = keys.num_rows();
    let mut out: Vec<Option<Vec<u8>>> = match format {
        KeyFormat::None => vec![None; n],
        KeyFormat::Kafka if keys.num_columns() == 1 => {
            let c = keys.column(0);
            match c.data_type() {
                DataType::Utf8 => c.as_string::<i32>().iter().map(|v| v.map(|s| s.as_bytes().to_vec())).collect(),
                DataType::Int32 => c.as_primitive::<Int32Type>().iter().map(|v| v.map(|x| x.to_be_bytes().to_vec())).collect(),
                DataType::Int64 => c.as_primitive::<Int64Type>().iter().map(|v| v.map(|x| x.to_be_bytes().to_vec())).collect(),
                DataType::Float64 => c.as_primitive::<Float64Type>().iter().map(|v| v.map(|x| x.to_be_bytes().to_vec())).collect(),
                DataType::Binary => c.as_binary::<i32>().iter().map(|v| v.map(<[u8]>::to_vec)).collect(),
                _ => super::encode_keys(c, super::TimestampStyle::Iso, false)?,
            }
        }
        KeyFormat::Kafka | KeyFormat::Json if keys.num_columns() == 1 && plain_json(keys.column(0).data_type()) => {
            // One plain column: the bare JSON value, straight from the array (a string
            // quoted and escaped; a number or boolean as its text).
            let c = keys.column(0);
            match c.data_type() {
                DataType::Utf8 => c.as_string::<i32>().iter().map(|v| v.and_then(|s| serde_json::to_vec(s).ok())).collect(),
                _ => {
                    let formatter = arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())?;
                    (0..c.len()).map(|i| (!c.is_null(i)).then(|| formatter.value(i).to_string().into_bytes())).collect()
                }
            }
        }
        KeyFormat::Kafka | KeyFormat::Json => {
            let rows = ValueEncoder::new(Format::Json).with_timestamps(style, Vec::new()).encode(keys)?;
            if keys.num_columns() == 1 {
                // One other column (a date, a nested value): the bare value, not an object.
                let name = keys.schema().field(0).name().clone();
                rows.into_iter()
                    .map(|r| {
                        serde_json::from_slice::<serde_json::Value>(&r)
                            .ok()
                            .and_then(|mut v| v.get_mut(&name).map(serde_json::Value::take))
                            .and_then(|v| serde_json::to_vec(&v).ok())
                    })
                    .collect()
            } else {
                rows.into_iter().map(Some).collect()
            }
        }
        KeyFormat::Delimited { delimiter } => {
            ValueEncoder::new(Format::delimited(delimiter)).with_timestamps(style, Vec::new()).encode(keys)?.into_iter().map(Some).collect()
        }
    };
    let times: Vec<_> = window.iter().filter_map(|c| c.as_primitive_opt::<TimestampMillisecondType>()).collect();
    if !times.is_empty() {
        for (i, key) in out.iter_mut().enumerate() {
            let mut bytes = key.take().unwrap_or_default();
            for t in &times {
                bytes.extend_from_slice(&t.value(i).to_be_bytes());
            }
            *key = Some(bytes);
        }
    }
    Ok(out)
}

/// Whether a key column's JSON is its display text (or, for a string, a quoted string).
fn plain_json(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::Boolean | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
}

/// The schema of the key columns `names` of `schema`.
pub fn key_schema(schema: &Schema, names: &[String]) -> Result<SchemaRef> {
    let fields = names.iter().map(|n| schema.field_with_name(n).cloned()).collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;
    use crate::format::TimestampStyle;

    fn binary(keys: &[Option<&[u8]>]) -> BinaryArray {
        keys.iter().copied().collect()
    }

    #[test]
    fn kafka_keys_are_big_endian_and_utf8() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true)]));
        let keys = binary(&[Some(&[0, 0, 0, 7]), None, Some(&[1, 2])]);
        let (columns, malformed) = KeyDecoder::new(KeyFormat::Kafka, schema.clone()).decode(&keys)?;
        assert_eq!(columns[0].as_primitive::<Int32Type>(), &Int32Array::from(vec![Some(7), None, None]));
        assert_eq!(malformed, vec![Malformed { index: 2, reason: "key: expected 4 bytes for INT, found 2".into() }]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![Some(7), None])) as ArrayRef])?;
        assert_eq!(encode_record_keys(KeyFormat::Kafka, &batch, &[], TimestampStyle::Iso)?, vec![Some(vec![0, 0, 0, 7]), None]);
        Ok(())
    }

    #[test]
    fn json_keys_bare_or_objects() -> Result<()> {
        let one = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let keys = binary(&[Some(b"12"), Some(br#"{"ID": 13}"#), Some(b"x")]);
        let (columns, malformed) = KeyDecoder::new(KeyFormat::Json, one.clone()).decode(&keys)?;
        assert_eq!(columns[0].as_primitive::<Int64Type>(), &Int64Array::from(vec![Some(12), Some(13), None]));
        assert_eq!(malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![2]);
        let batch = RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![12])) as ArrayRef])?;
        assert_eq!(encode_record_keys(KeyFormat::Json, &batch, &[], TimestampStyle::Iso)?, vec![Some(b"12".to_vec())]);
        let text = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(text, vec![Arc::new(StringArray::from(vec![Some("a\"b"), None])) as ArrayRef])?;
        assert_eq!(encode_record_keys(KeyFormat::Json, &batch, &[], TimestampStyle::Iso)?, vec![Some(br#""a\"b""#.to_vec()), None]);
        let two = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("b", DataType::Int32, true)]));
        let batch = RecordBatch::try_new(
            two,
            vec![Arc::new(StringArray::from(vec!["x"])) as ArrayRef, Arc::new(Int32Array::from(vec![1])) as ArrayRef],
        )?;
        assert_eq!(encode_record_keys(KeyFormat::Json, &batch, &[], TimestampStyle::Iso)?, vec![Some(br#"{"a":"x","b":1}"#.to_vec())]);
        Ok(())
    }

    #[test]
    fn windowed_keys_end_with_the_window_start() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"])) as ArrayRef])?;
        let start: ArrayRef = Arc::new(arrow::array::TimestampMillisecondArray::from(vec![1_000]));
        assert_eq!(
            encode_record_keys(KeyFormat::Kafka, &batch, std::slice::from_ref(&start), TimestampStyle::Iso)?,
            vec![Some(vec![b'a', 0, 0, 0, 0, 0, 0, 3, 232])]
        );
        // A session (Kafka Streams' SessionKeySchema): the end, then the start.
        let end: ArrayRef = Arc::new(arrow::array::TimestampMillisecondArray::from(vec![2_000]));
        assert_eq!(
            encode_record_keys(KeyFormat::Kafka, &batch, &[end, start], TimestampStyle::Iso)?,
            vec![Some(vec![b'a', 0, 0, 0, 0, 0, 0, 7, 208, 0, 0, 0, 0, 0, 0, 3, 232])]
        );
        Ok(())
    }
}
