//! Filter: keeps the rows where a Boolean DataFusion `PhysicalExpr` is true (SQL WHERE;
//! NULL counts as false).

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{EngineError, Result};
use crate::operator::{Collector, Operator};

/// Evaluates the predicate on the whole batch, then filters with Arrow's kernel.
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
}

impl Filter {
    /// A filter on `predicate`, which must evaluate to Boolean on the input schema.
    pub fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        Filter { predicate }
    }
}

impl Operator for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let mask = self.predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        if mask.data_type() != &DataType::Boolean {
            return Err(EngineError::statement(format!("WHERE must be BOOLEAN, found {}", mask.data_type())));
        }
        out.emit(filter_record_batch(&batch, mask.as_boolean())?);
        Ok(())
    }
}
