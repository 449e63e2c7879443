//! Projection: computes the output columns (SELECT list, CASE, CAST, functions) with
//! DataFusion `PhysicalExpr`s over the whole batch.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::Result;
use crate::operator::{Collector, Operator};

/// Evaluates one expression per output column.
pub struct Projection {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Projection {
    /// A projection producing `schema` (one field per expression, same order).
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        Projection { exprs, schema }
    }

    /// The schema of the rows it emits.
    pub fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Operator for Projection {
    fn name(&self) -> &'static str {
        "project"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let rows = batch.num_rows();
        let columns = self.exprs.iter().map(|e| e.evaluate(&batch)?.into_array(rows)).collect::<Result<Vec<_>, _>>()?;
        // Expressions may differ in nullability from the declared schema; the sink's schema rules.
        let columns = cast_to(columns, &self.schema)?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        out.emit(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?);
        Ok(())
    }
}

/// `columns` cast, where their types differ, to the types of `schema`'s fields (in order).
///
/// Errors: a cast Arrow cannot do.
pub(crate) fn cast_to(columns: Vec<ArrayRef>, schema: &Schema) -> Result<Vec<ArrayRef>> {
    Ok(columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow::compute::cast(&c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()?)
}
