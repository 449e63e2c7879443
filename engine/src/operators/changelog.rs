//! Changelog: turns a TABLE's topic (upserts by primary key, a record without a value
//! deletes) into weighted rows that an aggregation can count back (ksqlDB's and Flink's
//! retraction semantics; docs/DESIGN.md, windows and emission).
//!
//! For each record, in order: when its key has a current row, that row is emitted again
//! with `__weight` -1 (its contribution is taken back); unless the record is a tombstone
//! (no value), the new row is emitted with `__weight` +1 and becomes the key's current
//! row. So `1 -> A`, `2 -> A`, `1 -> B`, `2 -> (deleted)` counts A as 1, 2, 1, 0.
//!
//! Input: the relation's columns, then the meta columns of [`super::MetaColumns::Record`]
//! (`__value` tells a tombstone). Output: the relation's columns, `__weight Int64`, then
//! the same meta columns. State: one row per live key (the table's size), row-encoded;
//! snapshotted as `key Binary, row Binary` and restored whole (a key only ever arrives at
//! the worker reading its partition).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use super::state;
use super::META_VALUE;
use crate::error::{EngineError, Result};
use crate::operator::{Collector, Operator, OperatorState, Shard};

/// The weight column the changelog adds: +1 for a row that enters, -1 for one taken back.
pub const WEIGHT: &str = "__weight";

/// The changelog operator (see the module docs).
pub struct Changelog {
    /// Indices of the primary key columns in the input.
    keys: Vec<usize>,
    /// Columns before the meta columns (the relation's).
    relation_columns: usize,
    value: usize,
    key_rows: RowConverter,
    rows: RowConverter,
    output: SchemaRef,
    current: HashMap<Vec<u8>, Vec<u8>>,
}

impl Changelog {
    /// A changelog over batches of `input` (the relation's `relation_columns` columns,
    /// then meta columns with `__value`), keyed by the columns named `key`.
    ///
    /// Errors: a key column or `__value` is missing, or a type cannot be row-encoded.
    pub fn new(input: &Schema, relation_columns: usize, key: &[String]) -> Result<Self> {
        let keys = key.iter().map(|k| input.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(EngineError::Internal("a changelog needs the table's primary key".into()));
        }
        let value = input.index_of(META_VALUE)?;
        let key_rows = RowConverter::new(keys.iter().map(|&i| SortField::new(input.field(i).data_type().clone())).collect())?;
        let rows = RowConverter::new(input.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.insert(relation_columns, Field::new(WEIGHT, DataType::Int64, false));
        Ok(Changelog { keys, relation_columns, value, key_rows, rows, output: Arc::new(Schema::new(fields)), current: HashMap::new() })
    }

    /// The schema of the rows emitted.
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }
}

impl Operator for Changelog {
    fn name(&self) -> &'static str {
        "changelog"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let key_columns: Vec<ArrayRef> = self.keys.iter().map(|&i| batch.column(i).clone()).collect();
        let keys = self.key_rows.convert_columns(&key_columns)?;
        let rows = self.rows.convert_columns(batch.columns())?;
        let tombstone = batch.column(self.value).clone();
        // Emission order: (0, index into `taken_back`) or (1, row of `batch`).
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(n);
        let mut weights: Vec<i64> = Vec::with_capacity(n);
        let mut taken_back: Vec<Vec<u8>> = Vec::new();
        for i in 0..n {
            let key = keys.row(i).as_ref().to_vec();
            let previous =
                if tombstone.is_null(i) { self.current.remove(&key) } else { self.current.insert(key, rows.row(i).as_ref().to_vec()) };
            if let Some(previous) = previous {
                order.push((0, taken_back.len()));
                weights.push(-1);
                taken_back.push(previous);
            }
            if !tombstone.is_null(i) {
                order.push((1, i));
                weights.push(1);
            }
        }
        if order.is_empty() {
            return Ok(());
        }
        let parser = self.rows.parser();
        let old: Vec<ArrayRef> = self.rows.convert_rows(taken_back.iter().map(|r| parser.parse(r)))?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.fields().len());
        for (j, current) in batch.columns().iter().enumerate() {
            if j == self.relation_columns {
                columns.push(Arc::new(Int64Array::from(weights.clone())));
            }
            columns.push(arrow::compute::interleave(&[old[j].as_ref(), current.as_ref()], &order)?);
        }
        if self.relation_columns == batch.num_columns() {
            columns.push(Arc::new(Int64Array::from(weights)));
        }
        out.emit(RecordBatch::try_new(self.output.clone(), columns)?);
        Ok(())
    }

    /// State: one batch `key Binary, row Binary` (row-encoded primary key and row).
    fn snapshot(&mut self) -> Result<OperatorState> {
        let keys = BinaryArray::from_iter_values(self.current.keys());
        let rows = BinaryArray::from_iter_values(self.current.values());
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Binary, false), Field::new("row", DataType::Binary, false)]));
        Ok(OperatorState { batches: vec![RecordBatch::try_new(schema, vec![Arc::new(keys), Arc::new(rows)])?] })
    }

    fn restore(&mut self, states: Vec<OperatorState>, _shard: Option<Shard>) -> Result<()> {
        for s in states {
            for batch in s.batches {
                let (Some(keys), Some(rows)) = (
                    batch.column_by_name("key").and_then(|c| c.as_binary_opt::<i32>()),
                    batch.column_by_name("row").and_then(|c| c.as_binary_opt::<i32>()),
                ) else {
                    return Err(state::layout_error(self.name()));
                };
                for (k, r) in keys.iter().zip(rows.iter()) {
                    if let (Some(k), Some(r)) = (k, r) {
                        self.current.insert(k.to_vec(), r.to_vec());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{BinaryArray, Int64Array, StringArray};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("id", DataType::Int64, true),
            Field::new(META_VALUE, DataType::Binary, true),
        ])
    }

    /// (key, id, has a value) rows in, (key, id, weight) rows out.
    fn step(op: &mut Changelog, rows: &[(&str, Option<i64>, bool)]) -> Vec<(String, Option<i64>, i64)> {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(BinaryArray::from(rows.iter().map(|r| r.2.then_some(b"v".as_slice())).collect::<Vec<_>>())),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Collector::default();
        op.on_batch(batch, &mut out).unwrap_or_else(|e| panic!("{e}"));
        out.take_batches()
            .iter()
            .flat_map(|b| {
                let k = b.column(0).as_string::<i32>().clone();
                let id = b.column(1).as_primitive::<arrow::datatypes::Int64Type>().clone();
                let w = b.column(2).as_primitive::<arrow::datatypes::Int64Type>().clone();
                (0..b.num_rows()).map(move |i| (k.value(i).to_string(), id.is_valid(i).then(|| id.value(i)), w.value(i)))
            })
            .collect()
    }

    /// ksqlDB's "count back to zero": an update takes the old row back, a tombstone
    /// deletes; the state survives a snapshot and restore.
    #[test]
    fn updates_and_deletes_take_rows_back() -> Result<()> {
        let mut op = Changelog::new(&schema(), 2, &["k".to_string()])?;
        assert_eq!(step(&mut op, &[("1", Some(3), true), ("2", Some(3), true)]), vec![("1".into(), Some(3), 1), ("2".into(), Some(3), 1)]);
        assert_eq!(step(&mut op, &[("1", Some(4), true)]), vec![("1".into(), Some(3), -1), ("1".into(), Some(4), 1)]);
        let state = op.snapshot()?;
        let mut restored = Changelog::new(&schema(), 2, &["k".to_string()])?;
        restored.restore(vec![state], None)?;
        assert_eq!(step(&mut restored, &[("2", None, false), ("9", None, false)]), vec![("2".into(), Some(3), -1)]);
        assert_eq!(step(&mut restored, &[("1", None, false)]), vec![("1".into(), Some(4), -1)]);
        Ok(())
    }
}
