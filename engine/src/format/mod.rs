//! Record formats: values decoded straight into Arrow and encoded back.
//!
//! Decoding is vectorized: a whole micro-batch of values goes through one arrow-csv or
//! arrow-json decoder. Only when that fails (a malformed record is somewhere in the
//! batch) are the values decoded one at a time, each with a fresh decoder, to find the
//! bad ones. So a malformed record costs a slow pass over its own batch, never the loss
//! of the good records polled with it, and never leaves a half-read record in a
//! decoder's buffer (the failure Arroyo hit, arroyo#891).

mod bytes;
mod csv;
mod encode;
pub mod java_time;
mod json;
mod json_names;
mod key;
mod temporal;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

pub use self::bytes::to_base64 as bytes_as_base64;
pub use self::csv::CsvDecoder;
pub use self::encode::{encode_keys, unwrap_single_value, with_ksql_names, ValueEncoder};
pub use self::json::JsonDecoder;
pub use self::key::{check_kafka_key, encode_record_keys, key_schema, KeyDecoder};
pub use self::temporal::TimestampStyle;
use crate::error::Result;
use crate::options::Format;

/// A record value that did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Index of the value in the input slice.
    pub index: usize,
    /// Why it did not decode, e.g. `wrong number of fields: expected 5, found 2`.
    pub reason: String,
}

/// The result of decoding a slice of values.
#[derive(Debug)]
pub struct Decoded {
    /// The good records, in input order, with the decoder's schema.
    pub batch: RecordBatch,
    /// Input index of each row of `batch` (so callers can find its offset).
    pub rows: Vec<usize>,
    /// The values that did not decode, in input order.
    pub malformed: Vec<Malformed>,
}

/// Decodes record values into Arrow rows of a fixed schema.
pub trait ValueDecoder: Send {
    /// Decodes `values` (one per record; `None` is a record without a value).
    ///
    /// Never fails because of one bad value: it is returned in [`Decoded::malformed`].
    /// Errors only on internal failures (e.g. concatenating decoded batches).
    fn decode(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded>;

    /// Builds only the columns where `read` (one per schema column) is true and NULLs
    /// for the others, which the query never reads ([`crate::sql::columns_read`]). The
    /// schema of the decoded rows does not change. A decoder that cannot skip columns
    /// keeps building every one.
    fn read_only(&mut self, read: &[bool]) {
        let _ = read;
    }
}

/// `read` for a decoder of `schema`: a column that cannot hold NULLs is read anyway, and
/// so is the first column when none is (a batch needs a column to count its rows);
/// `None` when every column is read.
pub(crate) fn readable(schema: &SchemaRef, read: &[bool]) -> Option<Vec<bool>> {
    let mut read: Vec<bool> =
        schema.fields().iter().enumerate().map(|(i, f)| read.get(i).copied().unwrap_or(true) || !f.is_nullable()).collect();
    if let (false, Some(first)) = (read.iter().any(|r| *r), read.first_mut()) {
        *first = true;
    }
    (!read.iter().all(|r| *r)).then_some(read)
}

/// `batch` (the columns of `schema` where `read` is true, in order) with a NULL column
/// of each other field of `schema` put in its place.
///
/// Errors: the columns do not fit `schema`.
pub(crate) fn with_unread_as_nulls(
    batch: RecordBatch,
    schema: &SchemaRef,
    read: &[bool],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let mut decoded = batch.columns().iter();
    let columns: Vec<arrow::array::ArrayRef> = schema
        .fields()
        .iter()
        .zip(read)
        .map(|(f, r)| match r.then(|| decoded.next()).flatten() {
            Some(column) => column.clone(),
            None => arrow::array::new_null_array(f.data_type(), rows),
        })
        .collect();
    RecordBatch::try_new_with_options(schema.clone(), columns, &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)))
}

/// A decoder for `format` producing rows of `schema`.
pub fn decoder(format: Format, schema: SchemaRef) -> Box<dyn ValueDecoder> {
    match format {
        Format::Delimited { delimiter, quote, escape, comment } => {
            Box::new(CsvDecoder::new(schema, delimiter).with_dialect(quote, escape, comment))
        }
        Format::Json => Box::new(JsonDecoder::new(schema)),
    }
}

/// Shared driver: try the whole batch at once, else one value at a time.
///
/// `decode_many` decodes newline-joined values and returns their rows; `decode_one`
/// decodes one value and must return exactly one row.
pub(crate) fn decode_with_fallback(
    schema: &SchemaRef,
    values: &[Option<&[u8]>],
    mut decode_many: impl FnMut(&[u8], usize) -> std::result::Result<Option<RecordBatch>, String>,
    mut decode_one: impl FnMut(&[u8]) -> std::result::Result<Option<RecordBatch>, String>,
) -> Result<Decoded> {
    let mut malformed = Vec::new();
    let mut candidates = Vec::with_capacity(values.len());
    let mut buffer = Vec::with_capacity(values.iter().map(|v| v.map_or(0, <[u8]>::len) + 1).sum());
    for (index, value) in values.iter().enumerate() {
        match value {
            None => malformed.push(Malformed { index, reason: "record has no value".into() }),
            Some(v) if v.iter().all(u8::is_ascii_whitespace) => malformed.push(Malformed { index, reason: "empty value".into() }),
            Some(v) => {
                candidates.push(index);
                buffer.extend_from_slice(v);
                buffer.push(b'\n');
            }
        }
    }
    // A value with its own line breaks could split into several records: then each value
    // is decoded alone so it cannot shift its neighbours. One vectorized pass over the
    // joined values finds them (the separators are the only line feeds otherwise).
    let needs_slow_path = memchr::memchr(b'\r', &buffer).is_some() || memchr::memchr_iter(b'\n', &buffer).count() != candidates.len();
    if candidates.is_empty() {
        return Ok(Decoded { batch: RecordBatch::new_empty(schema.clone()), rows: Vec::new(), malformed });
    }
    if !needs_slow_path {
        if let Ok(Some(batch)) = decode_many(&buffer, candidates.len()) {
            if batch.num_rows() == candidates.len() {
                return Ok(Decoded { batch, rows: candidates, malformed });
            }
        }
    }
    let mut batches = Vec::with_capacity(candidates.len());
    let mut rows = Vec::with_capacity(candidates.len());
    for index in candidates {
        let Some(value) = values[index] else { continue };
        match decode_one(value) {
            Ok(Some(batch)) if batch.num_rows() == 1 => {
                batches.push(batch);
                rows.push(index);
            }
            Ok(Some(batch)) => malformed.push(Malformed { index, reason: format!("value holds {} records", batch.num_rows()) }),
            Ok(None) => malformed.push(Malformed { index, reason: "empty value".into() }),
            Err(reason) => malformed.push(Malformed { index, reason }),
        }
    }
    malformed.sort_by_key(|m| m.index);
    let batch = arrow::compute::concat_batches(schema, &batches)?;
    Ok(Decoded { batch, rows, malformed })
}

/// Turns Arrow's error text into a short reason: no `Parser error:` prefix, lowercase first letter.
pub(crate) fn reason(e: &arrow::error::ArrowError) -> String {
    let text = e.to_string();
    let text = ["Parser error: ", "Csv error: ", "Json error: ", "Invalid argument error: "]
        .iter()
        .fold(text, |t, p| t.strip_prefix(p).map(str::to_string).unwrap_or(t));
    // Each value is decoded on its own here, so arrow's line numbers only mislead.
    let text = [" for line ", " at line "].iter().fold(text, |t, marker| match t.find(marker) {
        Some(i) => {
            let rest = &t[i + marker.len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            format!("{}{}", &t[..i], &rest[digits..])
        }
        None => t,
    });
    crate::error::lowercase_first(&text)
}
