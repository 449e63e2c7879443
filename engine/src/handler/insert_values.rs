//! `INSERT INTO ... VALUES` (ksqlDB): the planned rows written with the relation's own
//! sink, flushed before the statement answers. On `eddy server` the write is a
//! preflight step, done without the engine's lock.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, QueryContext, Sink};
use crate::error::Result;

/// A sink writing rows inserted into `relation` (`INSERT ... VALUES`, ksqlDB's
/// `/inserts-stream`): the relation's own sink, outside any query (no progress headers,
/// no consumer group of its own).
///
/// Errors: the sink cannot be opened (the topic cannot be created, the host is refused).
pub async fn open_insert_sink(factory: &Arc<dyn ConnectorFactory>, relation: &Relation) -> Result<Box<dyn Sink>> {
    let ctx = QueryContext {
        query_id: format!("inserts_{}", relation.name),
        group_id: format!("inserts-{}", relation.name),
        metrics: Arc::default(),
        parallelism: 1,
        transient: true,
        resume_from: Vec::new(),
        resume_exact: false,
        state_dir: None,
    };
    factory.sink(relation, &ctx).await
}

/// Writes `batch` to `relation` and waits until the sink has it (Kafka: acknowledged).
///
/// Errors: the sink cannot be opened or the write fails.
pub(crate) async fn write_rows(factory: &Arc<dyn ConnectorFactory>, relation: &Relation, batch: RecordBatch) -> Result<()> {
    let mut sink = open_insert_sink(factory, relation).await?;
    sink.write(batch).await?;
    sink.flush().await
}
