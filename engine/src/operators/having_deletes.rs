//! HAVING over a changing table written to Kafka (`EMIT CHANGES`): a row whose group
//! fails the predicate is not dropped but marked, and the sink writes a tombstone for its
//! key, so that a group that stops qualifying leaves the table (ksqlDB's having.json:
//! `HAVING SUM(v) > 100` writes a null value for a group at 0, Kafka Streams'
//! `KTable.filter`). NULL counts as failing, as in WHERE.
//!
//! Output: the input columns, then `__delete Boolean` (true: write a tombstone); an
//! input that has `__delete` last (a session window's retractions) keeps its marks.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{EngineError, Result};
use crate::operator::{Collector, Operator};

/// The column marking the rows to delete.
pub const DELETE: &str = "__delete";

/// Marks the rows failing HAVING (see the module docs).
pub struct HavingDeletes {
    predicate: Arc<dyn PhysicalExpr>,
    output: Option<SchemaRef>,
}

impl HavingDeletes {
    /// Marks by `predicate`, which must evaluate to Boolean on the input schema.
    pub fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        HavingDeletes { predicate, output: None }
    }
}

impl Operator for HavingDeletes {
    fn name(&self) -> &'static str {
        "having_deletes"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let mask = self.predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        if mask.data_type() != &DataType::Boolean {
            return Err(EngineError::statement(format!("HAVING must be BOOLEAN, found {}", mask.data_type())));
        }
        let mask = mask.as_boolean();
        // Rows already marked (a session's retraction) stay marked.
        let schema = batch.schema();
        let marked = schema.fields().last().filter(|f| f.name() == DELETE).map(|_| batch.num_columns() - 1);
        let already = |i: usize| marked.is_some_and(|c| batch.column(c).as_boolean().value(i));
        let deletes: BooleanArray = (0..mask.len()).map(|i| Some(already(i) || !(mask.is_valid(i) && mask.value(i)))).collect();
        let mut columns = batch.columns().to_vec();
        let output = match marked {
            Some(c) => {
                columns[c] = Arc::new(deletes);
                schema
            }
            None => {
                columns.push(Arc::new(deletes));
                self.output
                    .get_or_insert_with(|| {
                        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                        fields.push(Field::new(DELETE, DataType::Boolean, false));
                        Arc::new(Schema::new(fields))
                    })
                    .clone()
            }
        };
        out.emit(RecordBatch::try_new(output, columns)?);
        Ok(())
    }
}
