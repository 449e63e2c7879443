//! The event-time temporal join (Flink's `JOIN rates FOR SYSTEM_TIME AS OF o.order_time`
//! against a versioned table): each stream row joins the version of the table row of its
//! key that was current at the stream row's event time, the latest version whose time is
//! at most the row's, as long as that version is not a delete.
//!
//! The stream's rows and the table's changelog arrive decoded by their own chains in the
//! join's front ([`super::join_front`]; the table's decodes tombstones as deletes),
//! tagged with their side, and, at parallelism n, routed by key to one of n join
//! workers, with the lower of the two inputs' watermarks. A stream row waits
//! until the watermark (the lower of the two inputs') reaches its time, so every version
//! up to it has arrived, however out of order; then it is joined and emitted (INNER drops
//! a row without a version, LEFT pads it with NULLs). Versions older than the latest one
//! at or before the watermark can no longer be asked for and are dropped. A stream row
//! already behind the watermark joins at once with the versions kept.
//!
//! Output rows: the stream's declared columns, the table's (nullable), then `__rowtime`,
//! the stream row's time.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions, TimestampMillisecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::join_front::side_of;
use super::state;
use super::watermark::META_ROWTIME;
use super::JoinSide;
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};
use crate::operators::META_VALUE;

const STREAM: usize = 0;
const TABLE: usize = 1;

struct Input {
    schema: SchemaRef,
    columns: usize,
    rowtime: usize,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    rows: RowConverter,
}

/// One key's table versions: (version time, seq) -> the row, `None` for a delete.
type Versions = BTreeMap<(Timestamp, u64), Option<Vec<u8>>>;

/// A stream row waiting for the watermark.
struct Waiting {
    /// Its key (row format); `None` for a NULL key, which matches nothing.
    key: Option<Vec<u8>>,
    row: Vec<u8>,
}

/// The temporal join (see the module docs).
pub struct TemporalJoin {
    inputs: [Input; 2],
    left_outer: bool,
    condition: Option<Arc<dyn PhysicalExpr>>,
    key_rows: RowConverter,
    joined: SchemaRef,
    output: SchemaRef,
    /// (time, seq) -> the stream row.
    waiting: BTreeMap<(Timestamp, u64), Waiting>,
    /// key -> (version time, seq) -> the table row, `None` for a delete.
    versions: HashMap<Vec<u8>, Versions>,
    /// (version time, seq) -> key, for each version that, once the watermark reaches it,
    /// makes older versions of its key droppable (or, a delete, the key): the watermark
    /// visits only these keys, never every key.
    superseding: BTreeMap<(Timestamp, u64), Vec<u8>>,
    watermark: Timestamp,
    seq: u64,
    metrics: Arc<QueryMetrics>,
}

/// Approximate bytes of a waiting row or a kept version: its row, its key and the
/// entry's fixed parts.
fn entry_bytes(key: Option<&[u8]>, row: Option<&[u8]>) -> i64 {
    (key.map_or(0, <[u8]>::len) + row.map_or(0, <[u8]>::len) + 48) as i64
}

impl TemporalJoin {
    /// The join of `stream` with the versioned `table` (its chain decodes its changelog:
    /// rows with `__value`, NULL for a delete); LEFT when `left_outer`; `condition` over
    /// the stream's declared columns then the table's. The inputs' chains are not run
    /// here (they belong to the front, [`super::join_front::JoinFront::take_chains`]):
    /// the join takes rows tagged with their side, and one watermark.
    ///
    /// Errors: a chain emits no `__rowtime`, the table's no `__value`, or a type has no
    /// row format.
    pub fn new(
        stream: JoinSide,
        table: JoinSide,
        left_outer: bool,
        condition: Option<Arc<dyn PhysicalExpr>>,
        metrics: Arc<QueryMetrics>,
    ) -> Result<Self> {
        let input = |s: JoinSide| -> Result<Input> {
            let rowtime = s.schema.index_of(META_ROWTIME)?;
            let rows = RowConverter::new(s.schema.fields()[..s.columns].iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
            Ok(Input { schema: s.schema, columns: s.columns, rowtime, keys: s.keys, rows })
        };
        let inputs = [input(stream)?, input(table)?];
        inputs[TABLE].schema.index_of(META_VALUE)?;
        let key_types: Vec<SortField> = inputs[TABLE]
            .keys
            .iter()
            .map(|k| k.data_type(&inputs[TABLE].schema).map(SortField::new))
            .collect::<datafusion::error::Result<_>>()?;
        let mut fields: Vec<Field> = Vec::new();
        for i in &inputs {
            fields.extend(i.schema.fields()[..i.columns].iter().map(|f| f.as_ref().clone().with_nullable(true)));
        }
        let joined = Arc::new(Schema::new(fields.clone()));
        fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
        Ok(TemporalJoin {
            inputs,
            left_outer,
            condition,
            key_rows: RowConverter::new(key_types)?,
            joined,
            output: Arc::new(Schema::new(fields)),
            waiting: BTreeMap::new(),
            versions: HashMap::new(),
            superseding: BTreeMap::new(),
            watermark: Timestamp::MIN,
            seq: 0,
            metrics,
        })
    }

    /// The schema of the joined rows.
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Stream rows waiting and table versions kept (tests, metrics).
    pub fn kept(&self) -> (usize, usize) {
        (self.waiting.len(), self.versions.values().map(BTreeMap::len).sum())
    }

    /// Input `i`'s keys of `rows`: row-encoded, whether each has a NULL, and the key
    /// columns.
    fn keys_of(&self, i: usize, rows: &RecordBatch) -> Result<(arrow::row::Rows, Vec<bool>, Vec<ArrayRef>)> {
        let n = rows.num_rows();
        let columns: Vec<ArrayRef> =
            self.inputs[i].keys.iter().map(|k| k.evaluate(rows).and_then(|v| v.into_array(n))).collect::<datafusion::error::Result<_>>()?;
        let null: Vec<bool> = (0..n).map(|r| columns.iter().any(|c| c.is_null(r))).collect();
        Ok((self.key_rows.convert_columns(&columns)?, null, columns))
    }

    fn on_stream(&mut self, rows: RecordBatch, out: &mut Collector) -> Result<()> {
        let (keys, null, _) = self.keys_of(STREAM, &rows)?;
        let times = rows.column(self.inputs[STREAM].rowtime).as_primitive::<TimestampMillisecondType>().clone();
        let encoded = self.inputs[STREAM].rows.convert_columns(&rows.columns()[..self.inputs[STREAM].columns])?;
        let mut now: Vec<(Timestamp, Waiting)> = Vec::new();
        for (r, is_null) in null.iter().enumerate() {
            let Some(time) = times.is_valid(r).then(|| times.value(r)) else { continue };
            let waiting = Waiting { key: (!is_null).then(|| keys.row(r).as_ref().to_vec()), row: encoded.row(r).as_ref().to_vec() };
            if time <= self.watermark {
                now.push((time, waiting));
            } else {
                self.wait(time, waiting);
            }
        }
        if !now.is_empty() {
            out.emit(self.join(now)?);
        }
        Ok(())
    }

    fn on_table(&mut self, rows: RecordBatch) -> Result<()> {
        let (keys, null, _) = self.keys_of(TABLE, &rows)?;
        let times = rows.column(self.inputs[TABLE].rowtime).as_primitive::<TimestampMillisecondType>().clone();
        let deletes = rows.column(rows.schema().index_of(META_VALUE)?).clone();
        let encoded = self.inputs[TABLE].rows.convert_columns(&rows.columns()[..self.inputs[TABLE].columns])?;
        for (r, is_null) in null.iter().enumerate() {
            if *is_null || times.is_null(r) {
                continue;
            }
            let version = (!deletes.is_null(r)).then(|| encoded.row(r).as_ref().to_vec());
            self.add_version(keys.row(r).as_ref().to_vec(), times.value(r), version);
        }
        Ok(())
    }

    /// Keeps a stream row until the watermark reaches `time`.
    fn wait(&mut self, time: Timestamp, waiting: Waiting) {
        self.seq += 1;
        self.metrics.adjust_state(0, entry_bytes(waiting.key.as_deref(), Some(&waiting.row)));
        self.waiting.insert((time, self.seq), waiting);
    }

    /// Keeps a version of the table row of `key` (`None`: a delete).
    fn add_version(&mut self, key: Vec<u8>, time: Timestamp, version: Option<Vec<u8>>) {
        self.seq += 1;
        self.metrics.adjust_state(0, entry_bytes(Some(&key), version.as_deref()));
        let at = (time, self.seq);
        let delete = version.is_none();
        let versions = self.versions.entry(key.clone()).or_default();
        versions.insert(at, version);
        // The new version supersedes those before it once the watermark reaches it; one
        // that arrived out of order is superseded by the next version after it.
        let next = versions.range(at..).nth(1).map(|(k, _)| *k);
        if delete || versions.len() > 1 {
            if let Some(next) = next {
                self.superseding.insert(next, key.clone());
            }
            self.superseding.insert(at, key);
        }
    }

    /// Drops the versions of `key` no stream row can ask for at watermark `watermark`:
    /// those older than the latest at or before it, and the key itself when that one is a
    /// delete with nothing after it. Returns the bytes freed.
    fn drop_superseded(&mut self, key: &[u8], watermark: Timestamp) -> i64 {
        let Some(v) = self.versions.get_mut(key) else { return 0 };
        let Some(&latest) = v.range(..=(watermark, u64::MAX)).next_back().map(|(k, _)| k) else { return 0 };
        let rest = v.split_off(&latest);
        let mut dropped: i64 = v.values().map(|r| entry_bytes(Some(key), r.as_deref())).sum();
        *v = rest;
        if v.len() == 1 && v.values().next().is_some_and(Option::is_none) {
            dropped += entry_bytes(Some(key), None);
            self.versions.remove(key);
        }
        dropped
    }

    /// Joins stream rows (with their times) with the versions current at those times.
    fn join(&self, rows: Vec<(Timestamp, Waiting)>) -> Result<RecordBatch> {
        let n = rows.len();
        let mut found: Vec<Option<&[u8]>> = Vec::with_capacity(n);
        for (time, w) in &rows {
            let version = w
                .key
                .as_ref()
                .and_then(|k| self.versions.get(k))
                .and_then(|v| v.range(..=(*time, u64::MAX)).next_back())
                .and_then(|(_, row)| row.as_deref());
            found.push(version);
        }
        let stream_parser = self.inputs[STREAM].rows.parser();
        let mut columns = self.inputs[STREAM].rows.convert_rows(rows.iter().map(|(_, w)| stream_parser.parse(&w.row)))?;
        // The table's columns: the versions found, NULL where none.
        let table = &self.inputs[TABLE];
        let present: Vec<&[u8]> = found.iter().flatten().copied().collect();
        let table_parser = table.rows.parser();
        let converted = table.rows.convert_rows(present.iter().map(|r| table_parser.parse(r)))?;
        let mut at = 0u32;
        let indices: arrow::array::UInt32Array = found
            .iter()
            .map(|f| {
                f.map(|_| {
                    at += 1;
                    at - 1
                })
            })
            .collect();
        for c in converted {
            columns.push(arrow::compute::take(&c, &indices, None)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let joined = RecordBatch::try_new_with_options(self.joined.clone(), columns.clone(), &options)?;
        let matched: Vec<bool> = match &self.condition {
            Some(c) => {
                let v = c.evaluate(&joined)?.into_array(n)?;
                let b = v.as_boolean();
                (0..n).map(|i| found[i].is_some() && b.is_valid(i) && b.value(i)).collect()
            }
            None => found.iter().map(Option::is_some).collect(),
        };
        // A row whose version fails the condition keeps the stream's columns alone (LEFT).
        if matched.iter().zip(&found).any(|(m, f)| !m && f.is_some()) {
            let keep: BooleanArray = matched.iter().map(|m| Some(*m)).collect();
            let stream_columns = self.inputs[STREAM].columns;
            for c in columns.iter_mut().skip(stream_columns) {
                *c = arrow::compute::nullif(c, &arrow::compute::not(&keep)?)?;
            }
        }
        columns.push(Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|(t, _)| *t))));
        let batch = RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?;
        if self.left_outer {
            Ok(batch)
        } else {
            Ok(filter_record_batch(&batch, &matched.iter().map(|m| Some(*m)).collect::<BooleanArray>())?)
        }
    }

    /// Moves the watermark to `next` (the lower of the inputs', as the front computed
    /// it), joins the stream rows it reached, drops the versions no row can ask for any
    /// more, and forwards it.
    fn advance(&mut self, next: Timestamp, out: &mut Collector) -> Result<()> {
        if next <= self.watermark {
            return Ok(());
        }
        self.watermark = next;
        let later = self.waiting.split_off(&(next.saturating_add(1), 0));
        let ready = std::mem::replace(&mut self.waiting, later);
        if !ready.is_empty() {
            let released: i64 = ready.values().map(|w| entry_bytes(w.key.as_deref(), Some(&w.row))).sum();
            self.metrics.adjust_state(0, -released);
            let rows: Vec<(Timestamp, Waiting)> = ready.into_iter().map(|((t, _), w)| (t, w)).collect();
            out.emit(self.join(rows)?);
        }
        // Keep, per key, the latest version at or before the watermark and those after:
        // only the keys with a version the watermark just reached can have more.
        let later = self.superseding.split_off(&(next.saturating_add(1), 0));
        let due = std::mem::replace(&mut self.superseding, later);
        let mut dropped = 0i64;
        for key in due.into_values() {
            dropped += self.drop_superseded(&key, next);
        }
        self.metrics.adjust_state(0, -dropped);
        out.watermark(next);
        Ok(())
    }
}

impl Operator for TemporalJoin {
    fn name(&self) -> &'static str {
        "temporal-join"
    }

    /// Takes the stream's or the table's rows, tagged by the front ([`side_of`]).
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        match side_of(&batch) {
            Some(STREAM) => self.on_stream(batch, out),
            Some(TABLE) => self.on_table(batch),
            _ => Err(EngineError::Internal("temporal join: a batch without its side".into())),
        }
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        self.advance(watermark, out)
    }

    /// Three batches: the watermark (`watermark Int64`, one row); the waiting stream rows
    /// (its declared columns and `__time Int64`); the kept versions (the table's declared
    /// columns, `__time Int64` and `__deleted Boolean`).
    fn snapshot(&mut self) -> Result<OperatorState> {
        let stream = &self.inputs[STREAM];
        let parser = stream.rows.parser();
        let mut columns = stream.rows.convert_rows(self.waiting.values().map(|w| parser.parse(&w.row)))?;
        columns.push(Arc::new(Int64Array::from_iter_values(self.waiting.keys().map(|(t, _)| *t))));
        let mut fields: Vec<Field> =
            stream.schema.fields()[..stream.columns].iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        fields.push(Field::new("__time", DataType::Int64, false));
        let options = RecordBatchOptions::new().with_row_count(Some(self.waiting.len()));
        let waiting = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?;

        let table = &self.inputs[TABLE];
        let mut kept: Vec<(Timestamp, u64, Option<&Vec<u8>>)> =
            self.versions.values().flat_map(|v| v.iter().map(|((t, s), r)| (*t, *s, r.as_ref()))).collect();
        kept.sort_by_key(|k| k.1);
        let parser = table.rows.parser();
        // A delete keeps its key: its row is re-encoded from NULL columns with the key.
        let placeholder = table.rows.convert_columns(
            &table.schema.fields()[..table.columns].iter().map(|f| arrow::array::new_null_array(f.data_type(), 1)).collect::<Vec<_>>(),
        )?;
        let null_row = placeholder.row(0).as_ref().to_vec();
        let mut columns =
            table.rows.convert_rows(kept.iter().map(|(_, _, r)| parser.parse(r.map_or(null_row.as_slice(), |r| r.as_slice()))))?;
        columns.push(Arc::new(Int64Array::from_iter_values(kept.iter().map(|k| k.0))));
        columns.push(Arc::new(BooleanArray::from_iter(kept.iter().map(|k| Some(k.2.is_none())))));
        let mut fields: Vec<Field> =
            table.schema.fields()[..table.columns].iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        fields.push(Field::new("__time", DataType::Int64, false));
        fields.push(Field::new("__deleted", DataType::Boolean, false));
        let options = RecordBatchOptions::new().with_row_count(Some(kept.len()));
        let versions = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?;
        Ok(OperatorState { batches: vec![state::scalar("watermark", self.watermark)?, waiting, versions] })
    }

    /// Keeps the rows and versions whose key routes to `shard` (all of them when `shard`
    /// is `None`), by the exchange's routing of that input's keys.
    fn restore(&mut self, states: Vec<OperatorState>, shard: Option<Shard>) -> Result<()> {
        for s in states {
            let [watermark, waiting, versions] = s.batches.as_slice() else { return Err(state::layout_error(self.name())) };
            self.watermark = self.watermark.max(state::read_scalar(watermark, "watermark")?);
            for (i, batch) in [(STREAM, waiting), (TABLE, versions)] {
                let columns = self.inputs[i].columns;
                let rows = RecordBatch::try_new_with_options(
                    Arc::new(Schema::new(self.inputs[i].schema.fields()[..columns].to_vec())),
                    batch.columns()[..columns].to_vec(),
                    &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
                )?;
                let times = state::column::<arrow::datatypes::Int64Type>(batch, "__time")?.clone();
                let (keys, null, key_columns) =
                    self.keys_of(i, &rows).map_err(|e| EngineError::State(format!("the temporal join's state cannot be keyed: {e}")))?;
                let encoded = self.inputs[i].rows.convert_columns(rows.columns())?;
                let mine = state::shard_rows(&key_columns, rows.num_rows(), shard)?;
                for (r, is_null) in null.iter().enumerate().filter(|(r, _)| mine[*r]) {
                    let time = times.value(r);
                    if i == STREAM {
                        let key = (!is_null).then(|| keys.row(r).as_ref().to_vec());
                        self.wait(time, Waiting { key, row: encoded.row(r).as_ref().to_vec() });
                    } else {
                        let deleted = batch.column(columns + 1).as_boolean().value(r);
                        let version = (!deleted).then(|| encoded.row(r).as_ref().to_vec());
                        self.add_version(keys.row(r).as_ref().to_vec(), time, version);
                    }
                }
            }
        }
        Ok(())
    }
}
