//! `INSERT INTO ... VALUES` (ksqlDB): the planned rows written with the relation's own
//! sink, flushed before the statement answers. On `eddy server` the write is a
//! preflight step, done without the engine's lock.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, QueryContext};
use crate::error::Result;

/// Writes `batch` to `relation` and waits until the sink has it (Kafka: acknowledged).
///
/// Errors: the sink cannot be opened or the write fails.
pub(crate) async fn write_rows(factory: &Arc<dyn ConnectorFactory>, relation: &Relation, batch: RecordBatch) -> Result<()> {
    let ctx = QueryContext {
        query_id: format!("insert_values_{}", relation.name),
        group_id: format!("insert-values-{}", relation.name),
        metrics: Arc::default(),
        parallelism: 1,
        transient: true,
        resume_from: Vec::new(),
        resume_exact: false,
        state_dir: None,
    };
    let mut sink = factory.sink(relation, &ctx).await?;
    sink.write(batch).await?;
    sink.flush().await
}
