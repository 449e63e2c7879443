//! DELIMITED / CSV values to Arrow with arrow-csv (no header, fields in column order).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{decode_with_fallback, reason, Decoded, ValueDecoder};
use crate::error::Result;

/// Decodes DELIMITED values: one record per value, `schema.fields().len()` fields
/// separated by `delimiter`, RFC 4180 quoting. Wrong field counts, unparsable numbers,
/// booleans or timestamps, invalid UTF-8 and empty values are malformed records.
/// A TIMESTAMP is text (`2020-10-03 14:44:42.5`, ISO-8601 with or without a zone: Flink's
/// csv format) or a whole number of milliseconds since the epoch (ksqlDB's DELIMITED,
/// KLIP-43).
pub struct CsvDecoder {
    schema: SchemaRef,
    /// `schema` with BYTES read as base64 text ([`super::bytes`]) and TIMESTAMP as text.
    read_schema: SchemaRef,
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    /// Per column: built (else NULL, [`ValueDecoder::read_only`]); `None` builds all.
    read: Option<Vec<bool>>,
}

impl CsvDecoder {
    /// A decoder for rows of `schema`.
    pub fn new(schema: SchemaRef, delimiter: u8) -> Self {
        let read_schema = Arc::new(Schema::new(
            super::bytes::text_schema(&schema)
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Timestamp(TimeUnit::Millisecond, None) => f.as_ref().clone().with_data_type(DataType::Utf8),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ));
        CsvDecoder { read_schema, schema, delimiter, quote: b'"', escape: None, comment: None, read: None }
    }

    /// With Flink's `'csv.quote-character'`, `'csv.escape-character'` and
    /// `'csv.allow-comments'` (`#`).
    pub fn with_dialect(mut self, quote: u8, escape: Option<u8>, comment: Option<u8>) -> Self {
        self.quote = quote;
        self.escape = escape;
        self.comment = comment;
        self
    }

    fn run(&self, bytes: &[u8], rows: usize) -> std::result::Result<Option<RecordBatch>, String> {
        let mut builder = ReaderBuilder::new(self.read_schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote)
            .with_batch_size(rows.max(1) + 1);
        if let Some(e) = self.escape {
            builder = builder.with_escape(e);
        }
        if let Some(c) = self.comment {
            builder = builder.with_comment(c);
        }
        if let Some(read) = &self.read {
            // Every field is still split and counted; only the read ones are parsed.
            builder = builder.with_projection(read.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect());
        }
        let mut decoder = builder.build_decoder();
        let mut offset = 0;
        while offset < bytes.len() {
            let n = decoder.decode(&bytes[offset..]).map_err(|e| reason(&e))?;
            if n == 0 {
                break;
            }
            offset += n;
        }
        decoder.decode(&[]).map_err(|e| reason(&e))?;
        let mut batch = decoder.flush().map_err(|e| reason(&e))?;
        if let Some(read) = &self.read {
            batch = batch.map(|b| super::with_unread_as_nulls(b, &self.read_schema, read)).transpose().map_err(|e| reason(&e))?;
        }
        let batch = batch.map(|b| timestamps_from_text(b, &self.schema)).transpose()?;
        match batch {
            Some(b) if super::bytes::has_binary(&self.schema) => super::bytes::from_base64(b, &self.schema).map(Some),
            other => Ok(other),
        }
    }
}

/// A batch read with TIMESTAMP columns as text, those columns parsed: a whole number is
/// milliseconds since the epoch (ksqlDB), anything else a date and time as arrow-csv reads
/// it (UTC unless it names a zone). Errors naming the column and the value that is neither.
fn timestamps_from_text(batch: RecordBatch, schema: &SchemaRef) -> std::result::Result<RecordBatch, String> {
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Timestamp(..))) {
        return Ok(batch);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !matches!(field.data_type(), DataType::Timestamp(..)) {
            columns.push(column.clone());
            continue;
        }
        let text = column.as_string::<i32>();
        let mut values = Vec::with_capacity(text.len());
        for v in text.iter() {
            values.push(match v {
                None => None,
                Some(s) => Some(parse_timestamp(s).ok_or_else(|| format!("column {}: '{s}' is not a timestamp", field.name()))?),
            });
        }
        columns.push(Arc::new(TimestampMillisecondArray::from(values)));
    }
    // BYTES are still base64 text here ([`super::bytes::from_base64`] follows).
    RecordBatch::try_new(super::bytes::text_schema(schema), columns).map_err(|e| reason(&e))
}

/// Milliseconds since the epoch of `s`: a whole number as it is, else a date and time.
fn parse_timestamp(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s).ok().map(|t| t.timestamp_millis())
}

impl ValueDecoder for CsvDecoder {
    fn read_only(&mut self, read: &[bool]) {
        self.read = super::readable(&self.read_schema, read);
    }

    fn decode(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded> {
        if let Some(c) = self.comment {
            // Comment lines are skipped: neither rows nor malformed records (Flink).
            let kept: Vec<usize> = (0..values.len()).filter(|i| values[*i].is_none_or(|v| v.first() != Some(&c))).collect();
            if kept.len() < values.len() {
                let subset: Vec<Option<&[u8]>> = kept.iter().map(|i| values[*i]).collect();
                let mut decoded = self.decode_all(&subset)?;
                decoded.rows = decoded.rows.iter().map(|r| kept[*r]).collect();
                for m in &mut decoded.malformed {
                    m.index = kept[m.index];
                }
                return Ok(decoded);
            }
        }
        self.decode_all(values)
    }
}

impl CsvDecoder {
    fn decode_all(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded> {
        let schema = self.schema.clone();
        decode_with_fallback(
            &schema,
            values,
            |bytes, rows| self.run(bytes, rows),
            |value| {
                let mut line = Vec::with_capacity(value.len() + 1);
                line.extend_from_slice(value);
                line.push(b'\n');
                self.run(&line, 1)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Utf8, true),
            Field::new("account_id", DataType::Int32, true),
            Field::new("event_type", DataType::Utf8, true),
            Field::new("location_country", DataType::Utf8, true),
            Field::new("event_ts", DataType::Int64, true),
        ]))
    }

    #[test]
    fn good_and_malformed_mixed() -> Result<()> {
        let values: Vec<Option<&[u8]>> = vec![
            Some(b"a,1,login,RU,1601736282"),
            Some(b"hello,world"),
            Some(b"b,2,login,IN,1601736283"),
            Some(b""),
            Some(b"x,notanint,login,RU,1601736282"),
            Some(b"a,b,c,d,e,f,g"),
            Some(b"one,two"),
            Some(b"c,\xff\xfe,login,RU,1"),
            Some(b"d,\"4\",log-out,\"U,K\",1601736284"),
            None,
        ];
        let decoded = CsvDecoder::new(schema(), b',').decode(&values)?;
        assert_eq!(decoded.rows, vec![0, 2, 8]);
        assert_eq!(decoded.malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![1, 3, 4, 5, 6, 7, 9]);
        let b = &decoded.batch;
        assert_eq!(b.column(0).as_string::<i32>(), &StringArray::from(vec!["a", "b", "d"]));
        assert_eq!(b.column(1).as_primitive::<Int32Type>(), &Int32Array::from(vec![1, 2, 4]));
        assert_eq!(b.column(3).as_string::<i32>(), &StringArray::from(vec!["RU", "IN", "U,K"]));
        assert_eq!(b.column(4).as_primitive::<arrow::datatypes::Int64Type>(), &Int64Array::from(vec![1601736282, 1601736283, 1601736284]));
        let reasons: Vec<&str> = decoded.malformed.iter().map(|m| m.reason.as_str()).collect();
        assert_eq!(reasons[1], "empty value");
        assert!(reasons[2].contains("notanint"), "{}", reasons[2]);
        assert!(reasons[0].contains("incorrect number of fields"), "{}", reasons[0]);
        Ok(())
    }

    #[test]
    fn unread_columns_are_null_and_not_parsed() -> Result<()> {
        let values: Vec<Option<&[u8]>> =
            vec![Some(b"a,1,login,RU,10"), Some(b"b,notanint,click,IN,11"), Some(b"c,3,login"), Some(b"d,4,click,UK,x")];
        let mut decoder = CsvDecoder::new(schema(), b',');
        decoder.read_only(&[false, false, true, false, true]);
        let decoded = decoder.decode(&values)?;
        // Row 1's bad account_id is never parsed; a missing field or a bad read column
        // still makes the record malformed.
        assert_eq!(decoded.rows, vec![0, 1]);
        assert_eq!(decoded.malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![2, 3]);
        let b = &decoded.batch;
        assert_eq!(b.schema(), schema());
        assert_eq!(b.column(0).null_count(), 2);
        assert_eq!(b.column(1).null_count(), 2);
        assert_eq!(b.column(2).as_string::<i32>(), &StringArray::from(vec!["login", "click"]));
        assert_eq!(b.column(4).as_primitive::<arrow::datatypes::Int64Type>(), &Int64Array::from(vec![10, 11]));
        // No column read: the rows are still counted.
        let mut decoder = CsvDecoder::new(schema(), b',');
        decoder.read_only(&[false; 5]);
        assert_eq!(decoder.decode(&values[..2])?.rows, vec![0, 1]);
        Ok(())
    }

    #[test]
    fn all_good_uses_one_pass() -> Result<()> {
        let lines: Vec<String> = (0..1000).map(|i| format!("id{i},{i},click,DE,{}", 1_600_000_000 + i)).collect();
        let values: Vec<Option<&[u8]>> = lines.iter().map(|l| Some(l.as_bytes())).collect();
        let decoded = CsvDecoder::new(schema(), b',').decode(&values)?;
        assert_eq!(decoded.batch.num_rows(), 1000);
        assert!(decoded.malformed.is_empty());
        Ok(())
    }

    #[test]
    fn embedded_newline_cannot_shift_neighbours() -> Result<()> {
        let values: Vec<Option<&[u8]>> = vec![Some(b"a,1,login,RU,1\nb,2,login,IN,2"), Some(b"c,3,login,UK,3")];
        let decoded = CsvDecoder::new(schema(), b',').decode(&values)?;
        assert_eq!(decoded.rows, vec![1]);
        assert_eq!(decoded.malformed.len(), 1);
        Ok(())
    }

    #[test]
    fn timestamps_are_ksql_milliseconds_or_flink_text() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let values: Vec<Option<&[u8]>> =
            vec![Some(b"a,10"), Some(b"b,2020-10-03 14:44:42.5"), Some(b"c,2020-10-03T14:44:42Z"), Some(b"d,soon"), Some(b"e,")];
        let decoded = CsvDecoder::new(schema, b',').decode(&values)?;
        assert_eq!(decoded.rows, vec![0, 1, 2, 4]);
        let ts = decoded.batch.column(1).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        assert_eq!(ts.iter().collect::<Vec<_>>(), vec![Some(10), Some(1_601_736_282_500), Some(1_601_736_282_000), None]);
        assert_eq!(decoded.malformed[0].reason, "column ts: 'soon' is not a timestamp");
        Ok(())
    }
}
