//! Arrow rows back to record values (DELIMITED or JSON) and keys, for the Kafka sink.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::temporal::TimestampStyle;
use crate::error::Result;
use crate::options::Format;

/// Timestamps are written as ISO-8601 with milliseconds, UTC (`2020-10-03T14:44:42.000`).
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

/// Encodes each row of a batch into one record value.
pub struct ValueEncoder {
    format: Format,
    /// JSON field names as ksqlDB spells them ([`crate::catalog::ksql_name`]).
    ksql_names: bool,
    /// JSON: whether a NULL is written as `"col": null` (Flink's and ksqlDB's default)
    /// or left out (Flink's `'json.encode.ignore-null-fields' = 'true'`).
    explicit_nulls: bool,
    /// How DATE, TIME and TIMESTAMP values are written ([`TimestampStyle`]).
    timestamps: TimestampStyle,
    /// The columns declared TIMESTAMP_LTZ (Flink writes them with a `Z`).
    ltz: Vec<String>,
}

impl ValueEncoder {
    /// An encoder for `format`; each batch is encoded with its own schema. JSON writes
    /// NULLs as `null`.
    pub fn new(format: Format) -> Self {
        ValueEncoder { format, explicit_nulls: true, ksql_names: false, timestamps: TimestampStyle::Iso, ltz: Vec::new() }
    }

    /// DATE, TIME and TIMESTAMP values written in `style` (default: Eddy's ISO-8601);
    /// `ltz` names the TIMESTAMP_LTZ columns ([`crate::catalog::Relation::ltz_columns`]).
    pub fn with_timestamps(mut self, style: TimestampStyle, ltz: Vec<String>) -> Self {
        self.timestamps = style;
        self.ltz = ltz;
        self
    }

    /// JSON field names upper-cased as ksqlDB writes unquoted ones, when `ksql`
    /// (a relation declared in ksqlDB's form, [`crate::catalog::Relation::ksql_names`]).
    pub fn with_ksql_names(mut self, ksql: bool) -> Self {
        self.ksql_names = ksql;
        self
    }

    /// JSON leaves NULL fields out when `ignore` (Flink's `'json.encode.ignore-null-fields'`).
    pub fn ignoring_null_fields(mut self, ignore: bool) -> Self {
        self.explicit_nulls = !ignore;
        self
    }

    /// One value per row, in row order. DELIMITED: fields in column order, quoted where
    /// needed, no trailing newline; JSON: one object per row, NULLs as `null` (unless
    /// ignored), NaN and the infinities as the strings `"NaN"`, `"Infinity"` and
    /// `"-Infinity"`, as Jackson writes them for ksqlDB and Flink (JSON has no such numbers).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let batch = &self.timestamps.apply(&super::bytes::to_base64(batch)?, &self.ltz)?;
        let renamed;
        let batch = if self.ksql_names && matches!(self.format, Format::Json) {
            renamed = with_ksql_names(batch)?;
            &renamed
        } else {
            batch
        };
        match self.format {
            Format::Json => {
                let mut buf = Vec::with_capacity(batch.num_rows() * 64);
                {
                    let mut writer = arrow::json::WriterBuilder::new()
                        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
                        .with_explicit_nulls(self.explicit_nulls)
                        .with_encoder_factory(Arc::new(JavaDoubles))
                        .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                    writer.write(batch)?;
                    writer.finish()?;
                }
                // JSON escapes line breaks inside strings, so every '\n' ends a row.
                Ok(split_lines(&buf))
            }
            Format::Delimited { delimiter, quote, escape, .. } => {
                if has_line_breaks(batch) {
                    (0..batch.num_rows())
                        .map(|i| {
                            self.csv(&batch.slice(i, 1), delimiter, quote, escape).map(|mut v| {
                                while v.last() == Some(&b'\n') {
                                    v.pop();
                                }
                                v
                            })
                        })
                        .collect()
                } else {
                    Ok(split_lines(&self.csv(batch, delimiter, quote, escape)?))
                }
            }
        }
    }

    fn csv(&self, batch: &RecordBatch, delimiter: u8, quote: u8, escape: Option<u8>) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(batch.num_rows() * 64);
        {
            let mut builder = arrow::csv::WriterBuilder::new()
                .with_header(false)
                .with_delimiter(delimiter)
                .with_quote(quote)
                .with_timestamp_format(TIMESTAMP_FORMAT.to_string());
            if let Some(e) = escape {
                builder = builder.with_escape(e).with_double_quote(false);
            }
            let mut writer = builder.build(&mut buf);
            writer.write(batch)?;
        }
        Ok(buf)
    }
}

/// Writes the FLOAT and DOUBLE columns that hold NaN or an infinity as Jackson does
/// (`"NaN"`, `"Infinity"`, `"-Infinity"`; finite values as Rust prints them, `.0` added
/// to whole numbers); arrow-json would write `null`. Other columns keep arrow's encoder.
#[derive(Debug)]
struct JavaDoubles;

/// The FLOAT or DOUBLE column a [`JavaDoubles`] encoder writes, borrowed from the batch.
enum JavaDoubleEncoder<'a> {
    Double(&'a arrow::array::Float64Array),
    /// FLOAT (f32): printed at single precision (`0.1`, not `0.10000000149011612`).
    Single(&'a arrow::array::Float32Array),
}

impl arrow::json::Encoder for JavaDoubleEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let (v, text) = match self {
            JavaDoubleEncoder::Double(a) => (a.value(idx), a.value(idx).to_string()),
            JavaDoubleEncoder::Single(a) => (f64::from(a.value(idx)), a.value(idx).to_string()),
        };
        if v.is_nan() {
            out.extend_from_slice(b"\"NaN\"");
        } else if v.is_infinite() {
            out.extend_from_slice(if v > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
        } else {
            out.extend_from_slice(text.as_bytes());
            if !text.contains(['.', 'e', 'E']) {
                out.extend_from_slice(b".0");
            }
        }
    }
}

impl arrow::json::EncoderFactory for JavaDoubles {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a arrow::datatypes::FieldRef,
        array: &'a dyn Array,
        _options: &'a arrow::json::EncoderOptions,
    ) -> std::result::Result<Option<arrow::json::writer::NullableEncoder<'a>>, arrow::error::ArrowError> {
        // Columns of finite numbers (nearly all) keep arrow-json's encoder; nothing is copied.
        let encoder = match array.data_type() {
            DataType::Float64 => {
                let a = array.as_primitive::<arrow::datatypes::Float64Type>();
                if !a.iter().any(|v| v.is_some_and(|x| !x.is_finite())) {
                    return Ok(None);
                }
                JavaDoubleEncoder::Double(a)
            }
            DataType::Float32 => {
                let a = array.as_primitive::<arrow::datatypes::Float32Type>();
                if !a.iter().any(|v| v.is_some_and(|x| !x.is_finite())) {
                    return Ok(None);
                }
                JavaDoubleEncoder::Single(a)
            }
            _ => return Ok(None),
        };
        Ok(Some(arrow::json::writer::NullableEncoder::new(Box::new(encoder), array.logical_nulls())))
    }
}

/// The value of a one-field JSON object as its own JSON value (ksqlDB's
/// `WRAP_SINGLE_VALUE = false`): `{"N":5}` is `5`, `{"N":null}` and `{}` are `null`.
/// Anything else is returned as it is.
pub fn unwrap_single_value(object: Vec<u8>) -> Vec<u8> {
    if object.as_slice() == b"{}" {
        return b"null".to_vec();
    }
    let Some(body) = object.strip_prefix(b"{\"").and_then(|b| b.strip_suffix(b"}")) else { return object };
    // The end of the field name: the first quote not escaped by a backslash.
    let mut escaped = false;
    let Some(end) = body.iter().position(|&c| {
        let at_end = c == b'"' && !escaped;
        escaped = c == b'\\' && !escaped;
        at_end
    }) else {
        return object;
    };
    match body.get(end + 1) {
        Some(b':') => body[end + 2..].to_vec(),
        _ => object,
    }
}

/// `batch` with its column names, and its struct field names at every depth, as ksqlDB
/// spells them ([`crate::catalog::ksql_name`], [`crate::catalog::ksql_data_type`]).
///
/// Errors: none in practice (the values are unchanged; only names in the types change).
pub fn with_ksql_names(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let data_type = crate::catalog::ksql_data_type(field.data_type());
        columns.push(if &data_type == column.data_type() {
            column.clone()
        } else {
            arrow::array::make_array(retyped(column.to_data(), &data_type)?)
        });
        fields.push(field.as_ref().clone().with_name(crate::catalog::ksql_name(field.name())).with_data_type(data_type));
    }
    let schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// `data` under `data_type`, a type with the same layout that differs only in the names
/// of nested fields.
fn retyped(data: arrow::array::ArrayData, data_type: &DataType) -> Result<arrow::array::ArrayData> {
    let children = match data_type {
        DataType::Struct(fields) => {
            data.child_data().iter().zip(fields.iter()).map(|(c, f)| retyped(c.clone(), f.data_type())).collect::<Result<Vec<_>>>()?
        }
        DataType::List(f) => data.child_data().iter().map(|c| retyped(c.clone(), f.data_type())).collect::<Result<Vec<_>>>()?,
        DataType::Map(entries, _) => {
            data.child_data().iter().map(|c| retyped(c.clone(), entries.data_type())).collect::<Result<Vec<_>>>()?
        }
        _ => return Ok(data),
    };
    Ok(data.into_builder().data_type(data_type.clone()).child_data(children).build()?)
}

fn split_lines(buf: &[u8]) -> Vec<Vec<u8>> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn has_line_breaks(batch: &RecordBatch) -> bool {
    batch.columns().iter().any(|c| match c.data_type() {
        DataType::Utf8 => c.as_string::<i32>().iter().flatten().any(|s| s.contains(['\n', '\r'])),
        _ => false,
    })
}

/// The record key of each row: the column's value as text (`None` for null), a DATE,
/// TIME or TIMESTAMP in `style` (`zone`: a TIMESTAMP_LTZ).
pub fn encode_keys(column: &ArrayRef, style: TimestampStyle, zone: bool) -> Result<Vec<Option<Vec<u8>>>> {
    let restyled = style.column(column, zone);
    let column = restyled.as_ref().unwrap_or(column);
    if let DataType::Utf8 = column.data_type() {
        return Ok(column.as_string::<i32>().iter().map(|v| v.map(|s| s.as_bytes().to_vec())).collect());
    }
    let options = FormatOptions::default().with_timestamp_format(Some(TIMESTAMP_FORMAT));
    let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
    Ok((0..column.len()).map(|i| (!column.is_null(i)).then(|| formatter.value(i).to_string().into_bytes())).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int32, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![Some("a"), Some("b,c"), None])), Arc::new(Int32Array::from(vec![1, 2, 3]))],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn delimited_and_json() -> Result<()> {
        let b = batch();
        let csv = ValueEncoder::new(Format::delimited(b',')).encode(&b)?;
        assert_eq!(csv, vec![b"a,1".to_vec(), b"\"b,c\",2".to_vec(), b",3".to_vec()]);
        let json = ValueEncoder::new(Format::Json).encode(&b)?;
        assert_eq!(json, vec![br#"{"id":"a","n":1}"#.to_vec(), br#"{"id":"b,c","n":2}"#.to_vec(), br#"{"id":null,"n":3}"#.to_vec()]);
        let json = ValueEncoder::new(Format::Json).ignoring_null_fields(true).with_ksql_names(true).encode(&b)?;
        assert_eq!(json[2], br#"{"N":3}"#.to_vec());
        assert_eq!(unwrap_single_value(br#"{"N":3}"#.to_vec()), b"3".to_vec());
        assert_eq!(unwrap_single_value(br#"{"a\"b":"x:y"}"#.to_vec()), br#""x:y""#.to_vec());
        assert_eq!(unwrap_single_value(b"{}".to_vec()), b"null".to_vec());
        let keys = encode_keys(b.column(1), TimestampStyle::FlinkSql, false)?;
        assert_eq!(keys, vec![Some(b"1".to_vec()), Some(b"2".to_vec()), Some(b"3".to_vec())]);
        Ok(())
    }

    #[test]
    fn ksql_names_reach_nested_struct_fields() -> Result<()> {
        use arrow::array::{ListArray, StructArray};
        use arrow::datatypes::{Fields, Int32Type};
        let inner = Fields::from(vec![Field::new("city", DataType::Utf8, true), Field::new("Zip", DataType::Int32, true)]);
        let address =
            StructArray::new(inner.clone(), vec![Arc::new(StringArray::from(vec!["x"])), Arc::new(Int32Array::from(vec![7]))], None);
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("address", DataType::Struct(inner), true),
            Field::new("tags", list.data_type().clone(), true),
        ]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(address), Arc::new(list)]).unwrap_or_else(|e| panic!("{e}"));
        let json = ValueEncoder::new(Format::Json).with_ksql_names(true).encode(&b)?;
        assert_eq!(String::from_utf8_lossy(&json[0]), r#"{"ADDRESS":{"CITY":"x","Zip":7},"TAGS":[1]}"#);
        Ok(())
    }
}
