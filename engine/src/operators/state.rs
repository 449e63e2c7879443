//! Helpers for the Arrow layouts of operator snapshots ([`crate::operator::Operator::snapshot`]):
//! one-row scalar batches, typed column lookup, and keeping a worker's shard of rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, PrimitiveArray};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{EngineError, Result};
use crate::operator::{Shard, Timestamp};
use crate::partitioning::route_by_key;

/// A one-row batch with the column `name Int64` holding `value`.
///
/// Errors: none in practice (the batch is well-formed).
pub fn scalar(name: &str, value: i64) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![value]))],
    )?)
}

/// The value of the one-row `name Int64` column of `batch`.
///
/// Errors: the column is missing, of another type, or the batch has no row.
pub fn read_scalar(batch: &RecordBatch, name: &str) -> Result<Timestamp> {
    let column = column::<arrow::datatypes::Int64Type>(batch, name)?;
    if column.is_empty() || column.is_null(0) {
        return Err(EngineError::State(format!("checkpoint state: \"{name}\" has no value")));
    }
    Ok(column.value(0))
}

/// Column `name` of `batch` as a primitive array of type `T`.
///
/// Errors: the column is missing or of another type.
pub fn column<'a, T: ArrowPrimitiveType>(batch: &'a RecordBatch, name: &str) -> Result<&'a PrimitiveArray<T>> {
    let c = batch.column_by_name(name).ok_or_else(|| EngineError::State(format!("checkpoint state: no column \"{name}\"")))?;
    c.as_primitive_opt::<T>()
        .ok_or_else(|| EngineError::State(format!("checkpoint state: column \"{name}\" is {}, not {}", c.data_type(), T::DATA_TYPE)))
}

/// The error for state batches that are not the layout an operator writes.
pub fn layout_error(operator: &str) -> EngineError {
    EngineError::State(format!(
        "checkpoint state of {operator} does not have the layout this version writes; \
         delete the query's checkpoint directory to start it from its committed offsets without state"
    ))
}

/// The rows of `batch` whose `keys` route to `shard` (all rows when `shard` is `None`).
///
/// Errors: the keys cannot be hashed, or the filter fails.
pub fn keep_shard(batch: &RecordBatch, keys: &[ArrayRef], shard: Option<Shard>) -> Result<RecordBatch> {
    let Some(shard) = shard else { return Ok(batch.clone()) };
    let route = route_by_key(keys, batch.num_rows(), shard.count)?;
    let keep = BooleanArray::from_iter(route.iter().map(|&w| Some(w == shard.index)));
    Ok(arrow::compute::filter_record_batch(batch, &keep)?)
}

/// Whether each of `rows` rows, keyed by `keys`, routes to `shard` (all `true` when
/// `shard` is `None`): a keyed state's rows a worker restores.
///
/// Errors: the keys cannot be hashed.
pub fn shard_rows(keys: &[ArrayRef], rows: usize, shard: Option<Shard>) -> Result<Vec<bool>> {
    let Some(shard) = shard else { return Ok(vec![true; rows]) };
    Ok(route_by_key(keys, rows, shard.count)?.into_iter().map(|w| w == shard.index).collect())
}
