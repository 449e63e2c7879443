//! A Kafka TABLE materialized for a stream–table join (ksqlDB's `FROM stream JOIN table
//! ON stream.x = table.key`): a task of its own reads the table's topic from the
//! beginning, upserts each record's row by its primary key and deletes the key on a
//! tombstone (a record without a value), as Kafka Streams restores a KTable from its
//! changelog topic. The lookup join asks it for keys ([`LookupTable`]), and each stream
//! row joins the table as it stands when the row is processed.
//!
//! The query starts joining once the table has caught up with its topic (its first
//! poll that finds nothing new, within [`CATCH_UP_TIMEOUT`]), so rows are not joined
//! against a half-read table after a restart. State: one row per live key, row-encoded
//! (Arrow's row format); it is not checkpointed: a restarted query reads the topic again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use tokio::sync::watch;

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, LookupTable, QueryContext, Source};
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Message, Operator};
use crate::operators::{Decode, MetaColumns, META_VALUE};
use crate::options::{ConnectorOptions, StartupMode};

/// How long a query waits for its table to catch up with the topic before it joins
/// anyway (a table on a broker that answers slowly is still read meanwhile).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// The live rows of a table by primary key.
struct Rows {
    keys: RowConverter,
    rows: RowConverter,
    current: HashMap<Vec<u8>, Vec<u8>>,
    /// Why reading the topic stopped, if it failed.
    failed: Option<String>,
}

/// A materialized Kafka table (see the module docs).
pub struct MaterializedTable {
    name: String,
    schema: SchemaRef,
    key: Vec<String>,
    state: Arc<Mutex<Rows>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for MaterializedTable {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl MaterializedTable {
    /// Starts reading `table`'s topic through `factory` for query `query` and waits until
    /// it caught up (at most [`CATCH_UP_TIMEOUT`]).
    ///
    /// Errors: the table is not a Kafka table with a primary key, has computed columns,
    /// or its topic cannot be opened.
    pub async fn open(factory: &dyn ConnectorFactory, table: &Relation, query: &QueryContext) -> Result<MaterializedTable> {
        let Some(format) = table.connector.format() else {
            return Err(EngineError::statement(format!("\"{}\" cannot be read", table.name)));
        };
        if !table.is_changelog() || !table.computed.is_empty() {
            return Err(EngineError::statement(format!("\"{}\" cannot be joined as a table", table.name)));
        }
        // Always the whole topic, whatever the table's startup mode says.
        let mut relation = table.clone();
        if let ConnectorOptions::Kafka(k) = &mut relation.connector {
            k.startup = StartupMode::Earliest;
        }
        let context = QueryContext {
            query_id: query.query_id.clone(),
            group_id: format!("{}-table-{}", query.group_id, table.name),
            metrics: Arc::new(QueryMetrics::default()),
            parallelism: 1,
            transient: true,
            resume_from: Vec::new(),
            resume_exact: false,
            state_dir: None,
        };
        let source = factory.source(&relation, &context).await?;
        let decode = super::pipeline::decode_operator(&relation, format, &context.metrics, MetaColumns::Record, true, &query.query_id)?;
        let schema = table.schema.clone();
        let key_indices = table.key.iter().map(|k| schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        let state = Arc::new(Mutex::new(Rows {
            keys: RowConverter::new(key_indices.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect())?,
            rows: RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?,
            current: HashMap::new(),
            failed: None,
        }));
        let (caught_up_tx, mut caught_up) = watch::channel(false);
        let reader =
            tokio::spawn(read(source, decode, state.clone(), key_indices, schema.fields().len(), caught_up_tx, table.name.clone()));
        let waited = tokio::time::timeout(CATCH_UP_TIMEOUT, caught_up.wait_for(|c| *c)).await;
        if waited.is_err() {
            tracing::warn!(table = %table.name, "the table did not catch up with its topic within {} s; joining meanwhile", CATCH_UP_TIMEOUT.as_secs());
        }
        Ok(MaterializedTable { name: table.name.clone(), schema, key: table.key.clone(), state, reader })
    }

    /// Live keys (tests, metrics).
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.current.len())
    }

    /// Whether the table has no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the topic until the query stops: each decoded batch is applied to `state`.
async fn read(
    mut source: Box<dyn Source>,
    mut decode: Decode,
    state: Arc<Mutex<Rows>>,
    key_indices: Vec<usize>,
    columns: usize,
    caught_up: watch::Sender<bool>,
    name: String,
) {
    let mut collector = Collector::default();
    loop {
        let batch = match source.next_batch().await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let _ = caught_up.send(true);
                return;
            }
            Err(e) => {
                tracing::error!(table = %name, error = %e, "reading the table's topic failed");
                if let Ok(mut s) = state.lock() {
                    s.failed = Some(e.to_string());
                }
                let _ = caught_up.send(true);
                return;
            }
        };
        if batch.records.num_rows() == 0 {
            let _ = caught_up.send(true);
            continue;
        }
        if let Err(e) = decode.on_batch(batch.records, &mut collector) {
            if let Ok(mut s) = state.lock() {
                s.failed = Some(e.to_string());
            }
            let _ = caught_up.send(true);
            return;
        }
        for message in collector.take() {
            // Records that did not decode were counted and logged by Decode.
            if let Message::Batch(rows) = message {
                if let Ok(mut s) = state.lock() {
                    if let Err(e) = apply(&mut s, &rows, &key_indices, columns) {
                        s.failed = Some(e.to_string());
                    }
                }
            }
        }
    }
}

/// Upserts or deletes each row of `batch` (the table's columns, then the record's meta
/// columns with `__value`, NULL for a tombstone).
fn apply(state: &mut Rows, batch: &RecordBatch, key_indices: &[usize], columns: usize) -> Result<()> {
    let value = batch.schema().index_of(META_VALUE)?;
    let tombstone = batch.column(value).clone();
    let key_columns: Vec<ArrayRef> = key_indices.iter().map(|&i| batch.column(i).clone()).collect();
    let keys = state.keys.convert_columns(&key_columns)?;
    let rows = state.rows.convert_columns(&batch.columns()[..columns])?;
    for i in 0..batch.num_rows() {
        let key = keys.row(i).as_ref().to_vec();
        if tombstone.is_null(i) {
            state.current.remove(&key);
        } else {
            state.current.insert(key, rows.row(i).as_ref().to_vec());
        }
    }
    Ok(())
}

#[async_trait]
impl LookupTable for MaterializedTable {
    async fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch> {
        let state = self.state.lock().map_err(|_| EngineError::Internal("the table's state is poisoned".into()))?;
        if let Some(why) = &state.failed {
            return Err(EngineError::statement(format!("the table \"{}\" cannot be read: {why}", self.name)));
        }
        // The key columns in the table's key order.
        let columns: Vec<ArrayRef> =
            self.key.iter().map(|k| keys.schema().index_of(k).map(|i| keys.column(i).clone())).collect::<std::result::Result<_, _>>()?;
        let wanted = state.keys.convert_columns(&columns)?;
        let parser = state.rows.parser();
        let found: Vec<&Vec<u8>> = wanted.iter().filter_map(|k| state.current.get(k.as_ref())).collect();
        let arrays = state.rows.convert_rows(found.iter().map(|r| parser.parse(r)))?;
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(found.len()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?)
    }
}
