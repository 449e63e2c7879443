//! `BYTES` columns in text formats are base64, as Flink's json and csv formats (Jackson's
//! binary encoding) and ksqlDB's JSON and DELIMITED formats write them. arrow-json and
//! arrow-csv read and write binary as hex, so a `BYTES` column is decoded as text and
//! converted here, and converted back to text before encoding.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Whether `schema` has a top-level `Binary` column.
pub fn has_binary(schema: &Schema) -> bool {
    schema.fields().iter().any(|f| f.data_type() == &DataType::Binary)
}

/// `schema` with its `Binary` columns read as `Utf8`.
pub fn text_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| if f.data_type() == &DataType::Binary { f.as_ref().clone().with_data_type(DataType::Utf8) } else { f.as_ref().clone() })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A batch decoded with [`text_schema`] turned into rows of `schema`: base64 text to
/// bytes. Errors with the column's name when a value is not base64.
pub fn from_base64(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() != &DataType::Binary {
            columns.push(column.clone());
            continue;
        }
        let text = column.as_string::<i32>();
        let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(text.len());
        for v in text.iter() {
            values.push(match v {
                None => None,
                Some(s) => Some(STANDARD.decode(s.trim()).map_err(|e| format!("field '{}' is not base64: {e}", field.name()))?),
            });
        }
        columns.push(Arc::new(BinaryArray::from_iter(values)));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// `batch` with its `Binary` columns as base64 text (for the text encoders).
pub fn to_base64(batch: &RecordBatch) -> arrow::error::Result<RecordBatch> {
    if !has_binary(&batch.schema()) {
        return Ok(batch.clone());
    }
    let schema = text_schema(&batch.schema());
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Binary => {
                Arc::new(c.as_binary::<i32>().iter().map(|v| v.map(|b| STANDARD.encode(b))).collect::<StringArray>()) as ArrayRef
            }
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}
