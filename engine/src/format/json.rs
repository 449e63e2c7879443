//! JSON values to Arrow with arrow-json (one object per value, fields by name matched
//! without regard to ASCII case as ksqlDB does ([`super::json_names`]); unknown fields
//! ignored, missing fields null).

use arrow::datatypes::{DataType, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;

use super::json_names::FieldNames;
use super::{decode_with_fallback, reason, Decoded, ValueDecoder};
use crate::error::Result;

/// Decodes JSON object values. Invalid JSON, a non-object, a value of the wrong type for
/// its column (`"amount": "abc"` for an INT), invalid UTF-8 and empty values are
/// malformed records.
pub struct JsonDecoder {
    schema: SchemaRef,
    /// `schema` with BYTES read as base64 text ([`super::bytes`]).
    read_schema: SchemaRef,
    names: FieldNames,
    /// Per column: built (else NULL, [`ValueDecoder::read_only`]), and `read_schema`
    /// with only those columns; `None` builds all.
    read: Option<(Vec<bool>, SchemaRef)>,
    /// No STRUCT anywhere in the schema: field names need matching at the top level only.
    flat: bool,
}

impl JsonDecoder {
    /// A decoder for rows of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let flat = !schema.fields().iter().any(|f| has_struct(f.data_type()));
        JsonDecoder { names: FieldNames::new(&schema), read_schema: super::bytes::text_schema(&schema), schema, read: None, flat }
    }

    fn run(&self, bytes: &[u8], rows: usize) -> std::result::Result<Option<RecordBatch>, String> {
        if std::str::from_utf8(bytes).is_err() {
            return Err("invalid UTF-8".into());
        }
        if self.flat {
            // Without respelling first: a key spelled otherwise than its column only
            // leaves that column NULL (arrow-json skips it as unknown). So a batch without
            // NULLs, or whose names need no respelling, is the answer already.
            if let Ok(Some(batch)) = self.decode_exact(bytes, rows) {
                if batch.columns().iter().all(|c| c.null_count() == 0) {
                    return self.finish(batch).map(Some);
                }
                return match self.names.normalize(bytes) {
                    std::borrow::Cow::Borrowed(_) => self.finish(batch).map(Some),
                    std::borrow::Cow::Owned(respelled) => self.decode_exact(&respelled, rows)?.map(|b| self.finish(b)).transpose(),
                };
            }
        }
        let bytes = &*self.names.normalize(bytes);
        self.decode_exact(bytes, rows)?.map(|b| self.finish(b)).transpose()
    }

    /// The read columns of `bytes` (`rows` JSON values), field names matched exactly.
    fn decode_exact(&self, bytes: &[u8], rows: usize) -> std::result::Result<Option<RecordBatch>, String> {
        // Fields of unread columns are skipped like unknown ones.
        let built = self.read.as_ref().map_or(&self.read_schema, |(_, s)| s);
        let mut decoder = ReaderBuilder::new(built.clone()).with_batch_size(rows.max(1) + 1).build_decoder().map_err(|e| reason(&e))?;
        let mut offset = 0;
        while offset < bytes.len() {
            let n = decoder.decode(&bytes[offset..]).map_err(|e| reason(&e))?;
            if n == 0 {
                break;
            }
            offset += n;
        }
        if offset < bytes.len() {
            return Err("value holds more records than expected".into());
        }
        decoder.flush().map_err(|e| reason(&e))
    }

    /// A decoded batch of the read columns as rows of the schema: NULLs for the unread
    /// columns, BYTES from base64.
    fn finish(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, String> {
        let batch = match &self.read {
            Some((read, _)) => super::with_unread_as_nulls(batch, &self.read_schema, read).map_err(|e| reason(&e))?,
            None => batch,
        };
        match super::bytes::has_binary(&self.schema) {
            true => super::bytes::from_base64(batch, &self.schema),
            false => Ok(batch),
        }
    }
}

/// Whether `data_type` holds a struct (whose field names are matched too).
fn has_struct(data_type: &DataType) -> bool {
    match data_type {
        DataType::Struct(_) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::Map(f, _) => match f.data_type() {
            // A map's entries are a struct of key and value: only the value counts.
            DataType::Struct(kv) if matches!(data_type, DataType::Map(..)) => kv.iter().skip(1).any(|f| has_struct(f.data_type())),
            other => has_struct(other),
        },
        _ => false,
    }
}

impl ValueDecoder for JsonDecoder {
    fn read_only(&mut self, read: &[bool]) {
        self.read = super::readable(&self.read_schema, read).map(|read| {
            let fields: Vec<_> = self.read_schema.fields().iter().zip(&read).filter(|(_, r)| **r).map(|(f, _)| f.clone()).collect();
            (read, std::sync::Arc::new(arrow::datatypes::Schema::new(fields)))
        });
    }

    fn decode(&mut self, values: &[Option<&[u8]>]) -> Result<Decoded> {
        let schema = self.schema.clone();
        decode_with_fallback(&schema, values, |bytes, rows| self.run(bytes, rows), |value| self.run(value, 1))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    #[test]
    fn good_and_malformed_mixed() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![Field::new("user_id", DataType::Utf8, true), Field::new("amount", DataType::Int64, true)]));
        let values: Vec<Option<&[u8]>> = vec![
            Some(br#"{"user_id": "5a", "amount": 50}"#),
            Some(b"hello,world"),
            Some(br#"{"user_id": "0b", "amount": 100, "extra": true}"#),
            Some(br#"{"user_id": "1c", "amount": "abc"}"#),
            Some(br#"{"user_id": "2d""#),
            Some(b"   "),
            Some(b"{\"user_id\": \"\xff\"}"),
            Some(br#"{"user_id": "3e"}"#),
        ];
        let decoded = JsonDecoder::new(schema).decode(&values)?;
        assert_eq!(decoded.rows, vec![0, 2, 7]);
        assert_eq!(decoded.malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![1, 3, 4, 5, 6]);
        let b = &decoded.batch;
        assert_eq!(b.column(0).as_string::<i32>(), &StringArray::from(vec!["5a", "0b", "3e"]));
        assert_eq!(b.column(1).as_primitive::<Int64Type>(), &Int64Array::from(vec![Some(50), Some(100), None]));
        Ok(())
    }

    #[test]
    fn unread_columns_are_null_and_not_parsed() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![Field::new("user_id", DataType::Utf8, true), Field::new("amount", DataType::Int64, true)]));
        let values: Vec<Option<&[u8]>> =
            vec![Some(br#"{"user_id": "5a", "amount": 50}"#), Some(br#"{"user_id": 7, "AMOUNT": 8}"#), Some(br#"{"amount": "x"}"#)];
        let mut decoder = JsonDecoder::new(schema.clone());
        decoder.read_only(&[false, true]);
        let decoded = decoder.decode(&values)?;
        assert_eq!(decoded.rows, vec![0, 1]);
        assert_eq!(decoded.malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![2]);
        assert_eq!(decoded.batch.schema(), schema);
        assert_eq!(decoded.batch.column(0).null_count(), 2);
        assert_eq!(decoded.batch.column(1).as_primitive::<Int64Type>(), &Int64Array::from(vec![50, 8]));
        let mut decoder = JsonDecoder::new(schema);
        decoder.read_only(&[false, false]);
        let values: Vec<Option<&[u8]>> = vec![Some(br#"{"user_id": "a"}"#), Some(br#"{"amount": "x"}"#)];
        assert_eq!(decoder.decode(&values)?.rows, vec![0, 1]);
        Ok(())
    }

    #[test]
    fn field_names_match_without_regard_to_case() -> Result<()> {
        let schema = Arc::new(Schema::new(vec![Field::new("user_id", DataType::Utf8, true), Field::new("amount", DataType::Int64, true)]));
        let values: Vec<Option<&[u8]>> =
            vec![Some(br#"{"USER_ID": "5a", "AMOUNT": 50}"#), Some(br#"{"User_Id": "0b", "amount": 7}"#), Some(br#"{"USER_ID": 1}"#)];
        let decoded = JsonDecoder::new(schema).decode(&values)?;
        assert_eq!(decoded.rows, vec![0, 1]);
        assert_eq!(decoded.malformed.iter().map(|m| m.index).collect::<Vec<_>>(), vec![2]);
        let b = &decoded.batch;
        assert_eq!(b.column(0).as_string::<i32>(), &StringArray::from(vec!["5a", "0b"]));
        assert_eq!(b.column(1).as_primitive::<Int64Type>(), &Int64Array::from(vec![Some(50), Some(7)]));
        Ok(())
    }
}
