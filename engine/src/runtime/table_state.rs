//! A Kafka TABLE materialized from its topic: a task of its own reads the table's topic
//! from the beginning, upserts each record's row by its primary key and deletes the key
//! on a tombstone (a record without a value), as Kafka Streams restores a KTable from its
//! changelog topic. Two readers use it:
//!
//! - a stream–table join (ksqlDB's `FROM stream JOIN table ON stream.x = table.key`)
//!   asks it for keys ([`LookupTable`]); each stream row joins the table as it stands
//!   when the row is processed;
//! - a pull query (ksqlDB's `SELECT * FROM table WHERE id = 'x'`) reads the rows of the
//!   keys it pins ([`MaterializedTable::get`]) or scans them in key order
//!   ([`MaterializedTable::scan`]), a chunk at a time.
//!
//! A windowed table (a ksqlDB `CREATE TABLE ... AS SELECT ... WINDOW ...`) is read too:
//! its record keys end with the window bounds (Kafka Streams' windowed keys, see
//! [`crate::format::key`]), which become the table's window start (and end) columns;
//! the window end of a tumbling or hopping window is its start plus the window size.
//!
//! Readers wait until the table has caught up with its topic (it has read every
//! partition up to the end offset it had when reading started, as Kafka Streams restores
//! a KTable; without end offsets, its first poll that finds nothing after
//! [`CATCH_UP_QUIET`]; at most [`CATCH_UP_TIMEOUT`]), so rows are not joined against a
//! half-read table, after a restart or while a slow broker answers its first fetch.
//!
//! State: one row per live key, row-encoded (Arrow's row format, whose byte order is the
//! key columns' order); it is not checkpointed: a restarted query reads the topic again.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int64Array, RecordBatchOptions};
use arrow::datatypes::{Int32Type, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::common::HashMap;
use tokio::sync::watch;

use crate::catalog::Relation;
use crate::connector::{ConnectorFactory, LookupTable, PartitionOffset, QueryContext, ResidentTable, Source};
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Message, Operator};
use crate::operators::{Decode, MetaColumns, META_OFFSET, META_PARTITION, META_VALUE};
use crate::options::{ConnectorOptions, StartupMode};
use crate::record::RawColumn;

/// How long a reader waits for the table to catch up with the topic before it reads
/// anyway (a table on a broker that answers slowly is still read meanwhile).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a table's topic gives no end offsets, or one is not reached: the table has
/// caught up at the first poll that finds nothing after this long.
const CATCH_UP_QUIET: Duration = Duration::from_secs(2);

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

/// Where a windowed table's window bounds are: columns of the table's schema, and how
/// its record keys carry them.
#[derive(Debug, Clone)]
struct WindowColumns {
    start: usize,
    end: Option<usize>,
    /// Session keys end with the end then the start (16 bytes); time windows with the
    /// start (8 bytes).
    session: bool,
    /// Tumbling or hopping window length (ms): end = start + size.
    size_ms: Option<i64>,
    /// The table without its window columns, as its record keys decode without them.
    plain: Relation,
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
            return Err(EngineError::statement(format!("\"{}\" cannot be read as a table", table.name)));
        }
        // Always the whole topic, whatever the table's startup mode says.
        let mut relation = table.clone();
        if let ConnectorOptions::Kafka(k) = &mut relation.connector {
            k.startup = StartupMode::Earliest;
        }
        let windows = window_columns(&relation)?;
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
        let decoded = windows.as_ref().map_or(&relation, |w| &w.plain);
        let decode = super::pipeline::decode_operator(decoded, format, &context.metrics, MetaColumns::Record, true, &query.query_id)?;
        let schema = table.schema.clone();
        let key_indices = table.key.iter().map(|k| schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
        let state = Arc::new(Mutex::new(Rows {
            keys: RowConverter::new(key_indices.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect())?,
            rows: RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?,
            current: HashMap::new(),
            failed: None,
        }));
        let (caught_up_tx, mut caught_up) = watch::channel(false);
        let reader = Reader { decode, state: state.clone(), key_indices, schema: schema.clone(), windows, name: table.name.clone() };
        let reader = tokio::spawn(reader.run(source, caught_up_tx));
        let waited = tokio::time::timeout(CATCH_UP_TIMEOUT, caught_up.wait_for(|c| *c)).await;
        if waited.is_err() {
            tracing::warn!(table = %table.name, "the table did not catch up with its topic within {} s; reading it meanwhile", CATCH_UP_TIMEOUT.as_secs());
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

    /// The table's schema (the rows [`Self::get`] and [`Self::scan`] return).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn lock(&self) -> Result<MutexGuard<'_, Rows>> {
        let state = self.state.lock().map_err(|_| EngineError::Internal("the table's state is poisoned".into()))?;
        match &state.failed {
            Some(why) => Err(EngineError::statement(format!("the table \"{}\" cannot be read: {why}", self.name))),
            None => Ok(state),
        }
    }

    /// The rows of the keys in `keys` (a column per key column, named as the table's;
    /// other columns ignored) that the table holds, in the order asked.
    ///
    /// Errors: a key column is missing or of another type; reading the topic failed.
    pub fn get(&self, keys: &RecordBatch) -> Result<RecordBatch> {
        let state = self.lock()?;
        let columns: Vec<ArrayRef> =
            self.key.iter().map(|k| keys.schema().index_of(k).map(|i| keys.column(i).clone())).collect::<std::result::Result<_, _>>()?;
        let wanted = state.keys.convert_columns(&columns)?;
        let found: Vec<&Vec<u8>> = wanted.iter().filter_map(|k| state.current.get(k.as_ref())).collect();
        rows_batch(&state, &self.schema, &found)
    }

    /// Hands every live row to `each`, in key order, as batches of at most `chunk_rows`
    /// rows, until `each` returns `false`. The table is locked meanwhile (its reader
    /// waits), and only one chunk is copied at a time.
    ///
    /// Errors: reading the topic failed, or `each` failed.
    pub fn scan(&self, chunk_rows: usize, each: &mut dyn FnMut(RecordBatch) -> Result<bool>) -> Result<()> {
        let state = self.lock()?;
        let mut entries: Vec<(&Vec<u8>, &Vec<u8>)> = state.current.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for chunk in entries.chunks(chunk_rows.max(1)) {
            let rows: Vec<&Vec<u8>> = chunk.iter().map(|(_, r)| *r).collect();
            if !each(rows_batch(&state, &self.schema, &rows)?)? {
                break;
            }
        }
        Ok(())
    }
}

/// `rows` (row-encoded) as a batch of `schema`.
fn rows_batch(state: &Rows, schema: &SchemaRef, rows: &[&Vec<u8>]) -> Result<RecordBatch> {
    let parser = state.rows.parser();
    let arrays = state.rows.convert_rows(rows.iter().map(|r| parser.parse(r)))?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(schema.clone(), arrays, &options)?)
}

/// The window columns of a windowed table (`None` for a plain one).
fn window_columns(table: &Relation) -> Result<Option<WindowColumns>> {
    let ConnectorOptions::Kafka(k) = &table.connector else { return Ok(None) };
    let Some(start_name) = &k.windowed_key else { return Ok(None) };
    let schema = &table.schema;
    let start = schema.index_of(start_name)?;
    let end = ["windowend", "window_end"].iter().find_map(|n| schema.index_of(n).ok());
    if end.is_some() && !k.session_key && k.window_size_ms.is_none() {
        return Err(EngineError::statement(format!(
            "\"{}\" is a windowed table whose window size is unknown: its window end cannot be read",
            table.name
        )));
    }
    let window: Vec<usize> = std::iter::once(start).chain(end).collect();
    let mut plain = table.clone();
    plain.schema = Arc::new(Schema::new(
        schema.fields().iter().enumerate().filter(|(i, _)| !window.contains(i)).map(|(_, f)| f.clone()).collect::<Vec<_>>(),
    ));
    plain.key.retain(|name| !window.iter().any(|&i| schema.field(i).name() == name));
    if let ConnectorOptions::Kafka(k) = &mut plain.connector {
        k.windowed_key = None;
        k.session_key = false;
    }
    Ok(Some(WindowColumns { start, end, session: k.session_key, size_ms: k.window_size_ms, plain }))
}

/// The window bounds of each record of a batch by (partition, offset): (start, end)
/// in ms.
type WindowBounds = HashMap<(i32, i64), (i64, Option<i64>)>;

impl WindowColumns {
    /// `records` with each record key cut before its window bounds, and the bounds of
    /// each record by (partition, offset): (start, end) in ms; a key too short for
    /// them has none.
    fn split(&self, records: RecordBatch) -> Result<(RecordBatch, WindowBounds)> {
        let suffix = if self.session { 16 } else { 8 };
        let keys = records.column(RawColumn::Key as usize).as_binary::<i32>();
        let partitions = records.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
        let offsets = records.column(RawColumn::Offset as usize).as_primitive::<Int64Type>();
        let mut bounds = HashMap::with_capacity(records.num_rows());
        let mut cut: Vec<Option<&[u8]>> = Vec::with_capacity(records.num_rows());
        for i in 0..records.num_rows() {
            let key = if keys.is_null(i) { None } else { Some(keys.value(i)) };
            match key {
                Some(k) if k.len() >= suffix => {
                    let at = |from: usize| i64::from_be_bytes(k[from..from + 8].try_into().unwrap_or([0; 8]));
                    let (start, end) = if self.session {
                        (at(k.len() - 8), Some(at(k.len() - 16)))
                    } else {
                        let start = at(k.len() - 8);
                        (start, self.size_ms.map(|s| start.saturating_add(s)))
                    };
                    bounds.insert((partitions.value(i), offsets.value(i)), (start, end));
                    cut.push(Some(&k[..k.len() - suffix]));
                }
                other => cut.push(other),
            }
        }
        let mut columns = records.columns().to_vec();
        columns[RawColumn::Key as usize] = Arc::new(BinaryArray::from(cut));
        Ok((RecordBatch::try_new(records.schema(), columns)?, bounds))
    }

    /// The table's columns of `decoded` (the plain table's columns, then the meta
    /// columns), with the window bounds of each row put back.
    fn columns(&self, decoded: &RecordBatch, bounds: &WindowBounds, schema: &Schema) -> Result<Vec<ArrayRef>> {
        let partitions = decoded.column(decoded.schema().index_of(META_PARTITION)?).as_primitive::<Int32Type>().clone();
        let offsets = decoded.column(decoded.schema().index_of(META_OFFSET)?).as_primitive::<Int64Type>().clone();
        let found: Vec<Option<&(i64, Option<i64>)>> =
            (0..decoded.num_rows()).map(|i| bounds.get(&(partitions.value(i), offsets.value(i)))).collect();
        let starts: Int64Array = found.iter().map(|b| b.map(|b| b.0)).collect();
        let ends: Int64Array = found.iter().map(|b| b.and_then(|b| b.1)).collect();
        let plain = decoded.schema();
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let array: ArrayRef = if i == self.start {
                    Arc::new(starts.clone())
                } else if Some(i) == self.end {
                    Arc::new(ends.clone())
                } else {
                    return Ok(decoded.column(plain.index_of(field.name())?).clone());
                };
                Ok(arrow::compute::cast(&array, field.data_type())?)
            })
            .collect()
    }
}

/// Reads the topic into the state until the table is dropped.
struct Reader {
    decode: Decode,
    state: Arc<Mutex<Rows>>,
    key_indices: Vec<usize>,
    schema: SchemaRef,
    windows: Option<WindowColumns>,
    name: String,
}

impl Reader {
    /// Applies each decoded batch to the state; says when the table has caught up (and
    /// when reading failed: readers then get the reason).
    async fn run(mut self, mut source: Box<dyn Source>, caught_up: watch::Sender<bool>) {
        let mut collector = Collector::default();
        // The end of each partition when reading starts: caught up once every one is
        // reached. Without them (or when a partition's end is never reached, e.g. a
        // transaction marker last), a poll that finds nothing after CATCH_UP_QUIET.
        let mut behind: Option<Vec<PartitionOffset>> = source.end_offsets().await;
        let started = tokio::time::Instant::now();
        if behind.as_ref().is_some_and(|b| b.is_empty()) {
            let _ = caught_up.send(true);
        }
        loop {
            let batch = match source.next_batch().await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    let _ = caught_up.send(true);
                    return;
                }
                Err(e) => {
                    tracing::error!(table = %self.name, error = %e, "reading the table's topic failed");
                    self.fail(e.to_string());
                    let _ = caught_up.send(true);
                    return;
                }
            };
            let empty = batch.records.num_rows() == 0;
            // Applied before the end offsets are checked: a reader woken by "caught up"
            // must find the batch that reached them in the state.
            if !empty {
                if let Err(e) = self.on_records(batch.records, &mut collector) {
                    self.fail(e.to_string());
                    let _ = caught_up.send(true);
                    return;
                }
            }
            if let Some(b) = &mut behind {
                b.retain(|end| !batch.positions.iter().any(|p| p.partition == end.partition && p.next_offset >= end.next_offset));
                if b.is_empty() {
                    let _ = caught_up.send(true);
                }
            }
            if empty && (behind.as_ref().is_none_or(|b| b.is_empty()) || started.elapsed() >= CATCH_UP_QUIET) {
                let _ = caught_up.send(true);
            }
        }
    }

    fn fail(&self, why: String) {
        if let Ok(mut s) = self.state.lock() {
            s.failed = Some(why);
        }
    }

    fn on_records(&mut self, records: RecordBatch, collector: &mut Collector) -> Result<()> {
        let (records, bounds) = match &self.windows {
            Some(w) => {
                let (records, bounds) = w.split(records)?;
                (records, Some(bounds))
            }
            None => (records, None),
        };
        self.decode.on_batch(records, collector)?;
        for message in collector.take() {
            // Records that did not decode were counted and logged by Decode.
            let Message::Batch(rows) = message else { continue };
            let columns = match (&self.windows, &bounds) {
                (Some(w), Some(bounds)) => w.columns(&rows, bounds, &self.schema)?,
                _ => rows.columns()[..self.schema.fields().len()].to_vec(),
            };
            let tombstones = rows.column(rows.schema().index_of(META_VALUE)?).clone();
            let mut state = self.state.lock().map_err(|_| EngineError::Internal("the table's state is poisoned".into()))?;
            apply(&mut state, &columns, &tombstones, &self.key_indices)?;
        }
        Ok(())
    }
}

/// Upserts or deletes each row of `columns` (the table's) by its key: deletes where
/// `tombstones` (the record's value) is NULL. A row without a whole key is skipped, as
/// ksqlDB skips a table record without a key.
fn apply(state: &mut Rows, columns: &[ArrayRef], tombstones: &ArrayRef, key_indices: &[usize]) -> Result<()> {
    let key_columns: Vec<ArrayRef> = key_indices.iter().map(|&i| columns[i].clone()).collect();
    let keys = state.keys.convert_columns(&key_columns)?;
    let rows = state.rows.convert_columns(columns)?;
    for i in 0..tombstones.len() {
        if key_columns.iter().any(|k| k.is_null(i)) {
            continue;
        }
        let key = keys.row(i).as_ref().to_vec();
        if tombstones.is_null(i) {
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
        self.get(keys)
    }

    fn resident(&self) -> Option<&dyn ResidentTable> {
        Some(self)
    }
}

impl ResidentTable for MaterializedTable {
    fn key_columns(&self) -> &[String] {
        &self.key
    }

    /// One lock, one hash probe per key, and one conversion of the rows found to
    /// columns: the stored row bytes are never copied out one by one.
    fn rows_of(&self, keys: &arrow::row::Rows, skip: &[bool]) -> Result<(Vec<u32>, Vec<ArrayRef>)> {
        let state = self.lock()?;
        let mut found: Vec<u32> = Vec::with_capacity(keys.num_rows());
        let mut rows: Vec<&[u8]> = Vec::with_capacity(keys.num_rows());
        for (i, key) in keys.iter().enumerate() {
            if skip.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(row) = state.current.get(key.as_ref()) {
                found.push(i as u32);
                rows.push(row);
            }
        }
        let parser = state.rows.parser();
        let columns = state.rows.convert_rows(rows.iter().map(|r| parser.parse(r)))?;
        Ok((found, columns))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
    use async_trait::async_trait;
    use tokio::sync::Notify;

    use super::*;
    use crate::connector::{Sink, SourceBatch};

    /// A topic whose first fetch finds nothing (a broker slow to answer), then, once the
    /// gate opens, its two records: partition 0, offsets 0 and 1, end offset 2.
    struct SlowFirstFetch {
        polls: usize,
        gate: Arc<Notify>,
    }

    #[async_trait]
    impl Source for SlowFirstFetch {
        async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
            self.polls += 1;
            let rows: Vec<(&str, &str)> = match self.polls {
                1 => Vec::new(),
                2 => {
                    self.gate.notified().await;
                    vec![("u1", r#"{"NAME":"Ada"}"#), ("u2", r#"{"NAME":"Bo"}"#)]
                }
                _ => std::future::pending().await,
            };
            let n = rows.len();
            let records = RecordBatch::try_new(
                crate::record::raw_schema(),
                vec![
                    Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| r.0.as_bytes()))),
                    Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| r.1.as_bytes()))),
                    Arc::new(StringArray::from(vec!["users"; n])),
                    Arc::new(Int32Array::from(vec![0; n])),
                    Arc::new(Int64Array::from_iter_values(0..n as i64)),
                    Arc::new(TimestampMillisecondArray::from(vec![None; n])),
                ],
            )?;
            let positions =
                if n == 0 { Vec::new() } else { vec![PartitionOffset { topic: "users".into(), partition: 0, next_offset: n as i64 }] };
            Ok(Some(SourceBatch { records, positions }))
        }

        async fn commit(&mut self, _positions: &[PartitionOffset], _watermark: Option<i64>) -> Result<()> {
            Ok(())
        }

        async fn end_offsets(&mut self) -> Option<Vec<PartitionOffset>> {
            Some(vec![PartitionOffset { topic: "users".into(), partition: 0, next_offset: 2 }])
        }
    }

    struct OneSource(Mutex<Option<SlowFirstFetch>>);

    #[async_trait]
    impl ConnectorFactory for OneSource {
        async fn prepare(&self, _relation: &Relation) -> Result<()> {
            Ok(())
        }

        async fn source(&self, _relation: &Relation, _query: &QueryContext) -> Result<Box<dyn Source>> {
            let source = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
            source.map(|s| Box::new(s) as Box<dyn Source>).ok_or_else(|| EngineError::Internal("opened twice".into()))
        }

        async fn sink(&self, _relation: &Relation, _query: &QueryContext) -> Result<Box<dyn Sink>> {
            Err(EngineError::Internal("no sinks here".into()))
        }

        async fn raw_sink(&self, _source: &Relation, _topic: &str, _query: &QueryContext) -> Result<Box<dyn Sink>> {
            Err(EngineError::Internal("no sinks here".into()))
        }
    }

    /// A first poll that finds nothing is not the end of the topic while a partition has
    /// not reached the end offset it had: the table opens with both rows (with the rule
    /// "first empty poll", it opened empty and the stream's rows joined NULLs).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_first_fetch_does_not_open_the_table_half_read() -> Result<()> {
        let planned = crate::engine::Engine::new(None, "t")
            .plan(&[crate::engine::Script {
                name: "s".into(),
                sql: "CREATE TABLE users (ID VARCHAR PRIMARY KEY, NAME VARCHAR) WITH (kafka_topic='users', value_format='json');".into(),
            }])
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let Some(crate::sql::planner::PlannedStatement::CreateRelation(table)) = planned.statements.first() else {
            return Err(EngineError::Internal("no relation".into()));
        };
        let gate = Arc::new(Notify::new());
        let factory = OneSource(Mutex::new(Some(SlowFirstFetch { polls: 0, gate: gate.clone() })));
        let opener = {
            let gate = gate.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                gate.notify_one();
            })
        };
        let query = QueryContext::new("q", "app-q");
        let opened = MaterializedTable::open(&factory, table, &query).await?;
        assert_eq!(opened.len(), 2);
        opener.await.map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(())
    }
}
