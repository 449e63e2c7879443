//! The interval join of two streams (ksqlDB's `JOIN b WITHIN 1 HOUR`, Flink's `a.ts
//! BETWEEN b.ts - INTERVAL '1' HOUR AND b.ts`): a row `l` of the left stream and a row
//! `r` of the right join when their keys are equal, `l.t - before <= r.t <= l.t + after`
//! (event times, ms) and the rest of the ON clause holds.
//!
//! Each stream's rows arrive decoded by its own chain in the join's front
//! ([`super::join_front`]), tagged with their side, and, at parallelism n, routed by key
//! to one of n join workers; the watermark is the lower of the two sides' (Flink's rule
//! where inputs merge), as the front and the exchange compute it. Each side's rows are
//! kept by key until no row of the other side can join them any more: a left row until
//! the watermark passes `l.t + after + grace`, a right row until it passes
//! `r.t + before + grace`. A kept row that never joined is emitted
//! padded with NULLs then, for the outer sides of a LEFT, RIGHT or FULL join (ksqlDB
//! emits them when the window closes, after the grace period). A row older than the
//! watermark minus the grace period is late: it is dropped and counted.
//!
//! A regular join (Flink's join of two streams without a time bound, under
//! `table.exec.state.ttl`) is this join with unbounded times and no late rows: each row
//! joins every row of the other side with its key, and is kept for the TTL in processing
//! time from when it arrived (Flink's state TTL, updated on write) ([`IntervalJoin::with_state_ttl`]).
//!
//! Output rows: the left stream's declared columns, the right's (all nullable), then
//! `__rowtime`, the later of the two rows' times (ksqlDB's ROWTIME of a join), or the
//! padded row's own. Keys compare in Arrow's row format; a NULL key joins nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions, TimestampMillisecondArray, UInt32Array,
};
use arrow::compute::{filter_record_batch, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::chain::UnionInput;
use super::join_front::side_of;
use super::state;
use super::watermark::META_ROWTIME;
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};

/// Which rows of an interval join are kept without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalJoinKind {
    /// Only joined rows.
    Inner,
    /// Every left row.
    Left,
    /// Every right row.
    Right,
    /// Every row of both.
    Full,
}

impl std::fmt::Display for IntervalJoinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntervalJoinKind::Inner => "INNER",
            IntervalJoinKind::Left => "LEFT",
            IntervalJoinKind::Right => "RIGHT",
            IntervalJoinKind::Full => "FULL",
        })
    }
}

/// One input stream of the join, as the pipeline builds it.
pub struct JoinSide {
    /// Its source in the query's union source (its records' renumbered partitions).
    pub input: UnionInput,
    /// Its operators from raw records to rows with `__rowtime`: decode, computed
    /// columns, watermark.
    pub chain: Vec<Box<dyn Operator>>,
    /// The schema the chain emits: the declared columns first.
    pub schema: SchemaRef,
    /// How many declared columns lead its rows.
    pub columns: usize,
    /// The join key values over the chain's rows (cast to the same types on both sides).
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
}

/// Approximate bytes a kept row takes: its row and key (one copy, shared by the map by
/// key and the expiry index) and the entries' fixed parts.
fn kept_bytes(key: &[u8], row: &[u8]) -> usize {
    row.len() + key.len() + 80
}

/// A join key in row format, held once for every kept row of the key and the expiry
/// index entries that name it.
type Key = Arc<[u8]>;

/// One kept row.
#[derive(Debug, Clone)]
struct Kept {
    time: Timestamp,
    seq: u64,
    /// The declared columns, row-encoded.
    row: Vec<u8>,
    matched: bool,
}

/// A side's rows' shape and kept rows.
struct Side {
    schema: SchemaRef,
    columns: usize,
    rowtime: usize,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_rows: RowConverter,
    rows: RowConverter,
    kept: HashMap<Key, Vec<Kept>>,
    /// (time, seq) -> key, to find the rows that expire first.
    expiry: BTreeMap<(Timestamp, u64), Key>,
}

/// The interval join (see the module docs).
pub struct IntervalJoin {
    sides: [Side; 2],
    kind: IntervalJoinKind,
    /// How far a right row may be before the left one (ms; negative: it must be after).
    before_ms: i64,
    /// How far a right row may be after the left one (ms).
    after_ms: i64,
    grace_ms: i64,
    condition: Option<Arc<dyn PhysicalExpr>>,
    /// The declared columns of both sides: what `condition` reads.
    joined: SchemaRef,
    output: SchemaRef,
    watermark: Timestamp,
    seq: u64,
    metrics: Arc<QueryMetrics>,
    /// A regular join's state TTL (ms of processing time).
    state_ttl_ms: Option<i64>,
    /// A regular join's kept rows in arrival order: (arrived at, side, event time, seq, key).
    arrivals: std::collections::VecDeque<(Timestamp, usize, Timestamp, u64, Key)>,
}

const LEFT: usize = 0;
const RIGHT: usize = 1;

impl IntervalJoin {
    /// The join of `left` and `right` with the bound `[l.t - before_ms, l.t + after_ms]`
    /// for the right row's time, `grace_ms` of allowed lateness, and `condition` (over
    /// the left's declared columns then the right's). The sides' chains are not run here
    /// (they belong to the front, [`super::join_front::JoinFront::take_chains`]): the join
    /// takes rows tagged with their side, and one watermark.
    ///
    /// Errors: a chain emits no `__rowtime`, or a column type has no row format.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        left: JoinSide,
        right: JoinSide,
        kind: IntervalJoinKind,
        before_ms: i64,
        after_ms: i64,
        grace_ms: i64,
        condition: Option<Arc<dyn PhysicalExpr>>,
        metrics: Arc<QueryMetrics>,
    ) -> Result<Self> {
        let side = |s: JoinSide| -> Result<Side> {
            let rowtime = s.schema.index_of(META_ROWTIME)?;
            let key_types: Vec<SortField> =
                s.keys.iter().map(|k| k.data_type(&s.schema).map(SortField::new)).collect::<datafusion::error::Result<_>>()?;
            let row_types: Vec<SortField> = s.schema.fields()[..s.columns].iter().map(|f| SortField::new(f.data_type().clone())).collect();
            Ok(Side {
                schema: s.schema,
                columns: s.columns,
                rowtime,
                keys: s.keys,
                key_rows: RowConverter::new(key_types)?,
                rows: RowConverter::new(row_types)?,
                kept: HashMap::new(),
                expiry: BTreeMap::new(),
            })
        };
        let sides = [side(left)?, side(right)?];
        let mut fields: Vec<Field> = Vec::new();
        for s in &sides {
            fields.extend(s.schema.fields()[..s.columns].iter().map(|f| f.as_ref().clone().with_nullable(true)));
        }
        let joined = Arc::new(Schema::new(fields.clone()));
        fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
        Ok(IntervalJoin {
            sides,
            kind,
            before_ms,
            after_ms,
            grace_ms,
            condition,
            joined,
            output: Arc::new(Schema::new(fields)),
            watermark: Timestamp::MIN,
            seq: 0,
            metrics,
            state_ttl_ms: None,
            arrivals: std::collections::VecDeque::new(),
        })
    }

    /// The schema of the joined rows.
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Whether the rows of side `s` that never joined are emitted padded.
    fn outer(&self, s: usize) -> bool {
        matches!((self.kind, s), (IntervalJoinKind::Full, _) | (IntervalJoinKind::Left, LEFT) | (IntervalJoinKind::Right, RIGHT))
    }

    /// The times a row of the other side must have to join a row of side `s` at `t`.
    fn partner_range(&self, s: usize, t: Timestamp) -> (Timestamp, Timestamp) {
        if s == LEFT {
            (t.saturating_sub(self.before_ms), t.saturating_add(self.after_ms))
        } else {
            (t.saturating_sub(self.after_ms), t.saturating_add(self.before_ms))
        }
    }

    /// The last time a row of side `s` at `t` can still find a partner.
    fn last_partner_time(&self, s: usize, t: Timestamp) -> Timestamp {
        self.partner_range(s, t).1
    }

    /// Joins `rows` of side `s` with the other side's kept rows, then keeps them.
    fn on_rows(&mut self, s: usize, rows: RecordBatch, out: &mut Collector) -> Result<()> {
        let o = 1 - s;
        let times = rows.column(self.sides[s].rowtime).as_primitive::<TimestampMillisecondType>().clone();
        // Late rows: older than the watermark minus the grace period.
        let floor = self.watermark.saturating_sub(self.grace_ms);
        let on_time: BooleanArray = times.iter().map(|t| Some(t.is_some_and(|t| t >= floor))).collect();
        let late = on_time.false_count();
        let (rows, times) = if late > 0 {
            self.metrics.add_late(late as u64);
            let rows = filter_record_batch(&rows, &on_time)?;
            let times = rows.column(self.sides[s].rowtime).as_primitive::<TimestampMillisecondType>().clone();
            (rows, times)
        } else {
            (rows, times)
        };
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let n = rows.num_rows();
        let key_columns: Vec<ArrayRef> =
            self.sides[s].keys.iter().map(|k| k.evaluate(&rows).and_then(|v| v.into_array(n))).collect::<datafusion::error::Result<_>>()?;
        let null_key: Vec<bool> = (0..n).map(|i| key_columns.iter().any(|c| c.is_null(i))).collect();
        let keys = self.sides[s].key_rows.convert_columns(&key_columns)?;
        // Candidate pairs: (row of this batch, index among the other side's kept rows of
        // the row's key); the key itself is the row's own (`keys`), never copied per pair.
        let mut mine: Vec<u32> = Vec::new();
        let mut theirs: Vec<usize> = Vec::new();
        for (i, _) in null_key.iter().enumerate().filter(|(_, null)| !**null) {
            let Some(kept) = self.sides[o].kept.get(keys.row(i).as_ref()) else { continue };
            let (lo, hi) = self.partner_range(s, times.value(i));
            for (j, k) in kept.iter().enumerate() {
                if k.time >= lo && k.time <= hi {
                    mine.push(i as u32);
                    theirs.push(j);
                }
            }
        }
        let mut matched = vec![false; n];
        if !mine.is_empty() {
            let indices = UInt32Array::from(mine.clone());
            let own: Vec<ArrayRef> =
                rows.columns()[..self.sides[s].columns].iter().map(|c| take(c, &indices, None)).collect::<std::result::Result<_, _>>()?;
            let parser = self.sides[o].rows.parser();
            let partners: Vec<&Kept> = mine
                .iter()
                .zip(&theirs)
                .map(|(&i, &j)| {
                    self.sides[o]
                        .kept
                        .get(keys.row(i as usize).as_ref())
                        .and_then(|kept| kept.get(j))
                        .ok_or_else(|| EngineError::Internal("interval join: a kept row vanished".into()))
                })
                .collect::<Result<_>>()?;
            let other = self.sides[o].rows.convert_rows(partners.iter().map(|k| parser.parse(&k.row)))?;
            let rowtimes: TimestampMillisecondArray =
                mine.iter().zip(&partners).map(|(&i, k)| Some(times.value(i as usize).max(k.time))).collect();
            let (left, right) = if s == LEFT { (own, other) } else { (other, own) };
            let mut columns = left;
            columns.extend(right);
            let pairs = mine.len();
            let options = RecordBatchOptions::new().with_row_count(Some(pairs));
            let joined = RecordBatch::try_new_with_options(self.joined.clone(), columns.clone(), &options)?;
            let keep: BooleanArray = match &self.condition {
                Some(c) => {
                    let v = c.evaluate(&joined)?.into_array(pairs)?;
                    v.as_boolean().iter().map(|b| Some(b == Some(true))).collect()
                }
                None => BooleanArray::from(vec![true; pairs]),
            };
            for (p, (&i, &j)) in mine.iter().zip(&theirs).enumerate() {
                if keep.value(p) {
                    matched[i as usize] = true;
                    if let Some(k) = self.sides[o].kept.get_mut(keys.row(i as usize).as_ref()).and_then(|kept| kept.get_mut(j)) {
                        k.matched = true;
                    }
                }
            }
            columns.push(Arc::new(rowtimes));
            let batch = RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?;
            out.emit(filter_record_batch(&batch, &keep)?);
        }
        // Keep the rows; a row with a NULL key can never join: an outer side pads it now.
        let encoded = self.sides[s].rows.convert_columns(&rows.columns()[..self.sides[s].columns])?;
        let mut padded: Vec<u32> = Vec::new();
        for i in 0..n {
            if null_key[i] {
                if self.outer(s) {
                    padded.push(i as u32);
                }
                continue;
            }
            self.keep(s, keys.row(i).as_ref(), times.value(i), encoded.row(i).as_ref().to_vec(), matched[i]);
        }
        if !padded.is_empty() {
            let indices = UInt32Array::from(padded);
            let own: Vec<ArrayRef> =
                rows.columns()[..self.sides[s].columns].iter().map(|c| take(c, &indices, None)).collect::<std::result::Result<_, _>>()?;
            let rowtimes = take(rows.column(self.sides[s].rowtime), &indices, None)?;
            out.emit(self.padded(s, own, rowtimes)?);
        }
        Ok(())
    }

    /// Rows of side `s` (its declared columns) with NULLs for the other side.
    fn padded(&self, s: usize, own: Vec<ArrayRef>, rowtimes: ArrayRef) -> Result<RecordBatch> {
        let n = rowtimes.len();
        let o = 1 - s;
        let nulls: Vec<ArrayRef> =
            self.sides[o].schema.fields()[..self.sides[o].columns].iter().map(|f| arrow::array::new_null_array(f.data_type(), n)).collect();
        let (mut columns, right) = if s == LEFT { (own, nulls) } else { (nulls, own) };
        columns.extend(right);
        columns.push(rowtimes);
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?)
    }

    /// Moves the join's watermark to `next` (the lower of the sides', as the front
    /// computed it), drops the rows that can no longer join (padding the outer ones),
    /// and forwards the watermark.
    fn advance(&mut self, next: Timestamp, out: &mut Collector) -> Result<()> {
        if next <= self.watermark {
            return Ok(());
        }
        self.watermark = next;
        let floor = next.saturating_sub(self.grace_ms);
        for s in [LEFT, RIGHT] {
            let mut expired: Vec<(Timestamp, Vec<u8>)> = Vec::new();
            loop {
                let side = &self.sides[s];
                let Some((&(time, seq), _)) = side.expiry.first_key_value() else { break };
                if self.last_partner_time(s, time) >= floor {
                    break;
                }
                let side = &mut self.sides[s];
                let Some((_, key)) = side.expiry.pop_first() else { break };
                if let Some(kept) = side.kept.get_mut(&key) {
                    if let Some(at) = kept.iter().position(|k| k.seq == seq) {
                        let k = kept.remove(at);
                        self.metrics.adjust_state(0, -(kept_bytes(&key, &k.row) as i64));
                        if !k.matched {
                            expired.push((k.time, k.row));
                        }
                    }
                    if kept.is_empty() {
                        side.kept.remove(&key);
                    }
                }
            }
            if self.outer(s) && !expired.is_empty() {
                let parser = self.sides[s].rows.parser();
                let own = self.sides[s].rows.convert_rows(expired.iter().map(|(_, r)| parser.parse(r)))?;
                let rowtimes: ArrayRef = Arc::new(TimestampMillisecondArray::from_iter_values(expired.iter().map(|(t, _)| *t)));
                out.emit(self.padded(s, own, rowtimes)?);
            }
        }
        out.watermark(next);
        Ok(())
    }

    /// Keeps a row of side `s` (its key and declared columns, row-encoded), counting its
    /// bytes in the query's state.
    fn keep(&mut self, s: usize, key: &[u8], time: Timestamp, row: Vec<u8>, matched: bool) {
        self.seq += 1;
        self.metrics.adjust_state(0, kept_bytes(key, &row) as i64);
        let side = &mut self.sides[s];
        // The key's one copy: the one its kept rows already have, else a new one.
        let key: Key = match side.kept.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        side.expiry.insert((time, self.seq), key.clone());
        if self.state_ttl_ms.is_some() {
            self.arrivals.push_back((chrono::Utc::now().timestamp_millis(), s, time, self.seq, key.clone()));
        }
        side.kept.entry(key).or_default().push(Kept { time, seq: self.seq, row, matched });
    }

    /// A regular join (the bounds unbounded): each row is kept `ttl_ms` of processing
    /// time after it arrived, then dropped (Flink's `table.exec.state.ttl`).
    pub fn with_state_ttl(mut self, ttl_ms: Option<i64>) -> Self {
        self.state_ttl_ms = ttl_ms;
        self
    }

    /// Drops a regular join's rows that arrived more than the TTL before `now`.
    fn expire_ttl(&mut self, now: Timestamp) {
        let Some(ttl) = self.state_ttl_ms else { return };
        while let Some(&(arrived, s, time, seq, _)) = self.arrivals.front() {
            if arrived.saturating_add(ttl) > now {
                break;
            }
            let Some((_, _, _, _, key)) = self.arrivals.pop_front() else { break };
            let side = &mut self.sides[s];
            side.expiry.remove(&(time, seq));
            if let Some(kept) = side.kept.get_mut(&key) {
                if let Some(at) = kept.iter().position(|k| k.seq == seq) {
                    let k = kept.remove(at);
                    self.metrics.adjust_state(0, -(kept_bytes(&key, &k.row) as i64));
                }
                if kept.is_empty() {
                    side.kept.remove(&key);
                }
            }
        }
    }

    /// Kept rows (tests, metrics).
    pub fn kept_rows(&self) -> usize {
        self.sides.iter().map(|s| s.expiry.len()).sum()
    }
}

impl Operator for IntervalJoin {
    fn name(&self) -> &'static str {
        "interval-join"
    }

    /// Takes one side's rows, tagged by the front ([`side_of`]).
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let s = side_of(&batch).ok_or_else(|| EngineError::Internal("interval join: a batch without its side".into()))?;
        self.on_rows(s, batch, out)
    }

    /// The join's watermark: rows that can no longer join are dropped (outer ones
    /// padded), then it is forwarded.
    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        self.advance(watermark, out)
    }

    fn on_processing_time(&mut self, now: Timestamp, _out: &mut Collector) -> Result<()> {
        self.expire_ttl(now);
        Ok(())
    }

    /// Three batches: the join's watermark (`watermark Int64`, one row), then per side
    /// its kept rows: the declared columns, `__time Int64` (ms) and `__matched Boolean`.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let mut batches = vec![state::scalar("watermark", self.watermark)?];
        for side in &self.sides {
            let mut kept: Vec<&Kept> = side.kept.values().flatten().collect();
            kept.sort_by_key(|k| k.seq);
            let parser = side.rows.parser();
            let mut columns = side.rows.convert_rows(kept.iter().map(|k| parser.parse(&k.row)))?;
            columns.push(Arc::new(Int64Array::from_iter_values(kept.iter().map(|k| k.time))));
            columns.push(Arc::new(BooleanArray::from_iter(kept.iter().map(|k| Some(k.matched)))));
            let mut fields: Vec<Field> =
                side.schema.fields()[..side.columns].iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
            fields.push(Field::new("__time", DataType::Int64, false));
            fields.push(Field::new("__matched", DataType::Boolean, false));
            let options = RecordBatchOptions::new().with_row_count(Some(kept.len()));
            batches.push(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?);
        }
        Ok(OperatorState { batches })
    }

    /// Keeps the rows whose key routes to `shard` (all of them when `shard` is `None`),
    /// by the exchange's routing of that side's keys.
    fn restore(&mut self, states: Vec<OperatorState>, shard: Option<Shard>) -> Result<()> {
        for s in states {
            let [watermark, left, right] = s.batches.as_slice() else { return Err(state::layout_error(self.name())) };
            self.watermark = self.watermark.max(state::read_scalar(watermark, "watermark")?);
            for (side, batch) in [(LEFT, left), (RIGHT, right)] {
                let columns = self.sides[side].columns;
                if batch.num_columns() != columns + 2 {
                    return Err(state::layout_error(self.name()));
                }
                let times = state::column::<arrow::datatypes::Int64Type>(batch, "__time")?.clone();
                let matched = batch.column(columns + 1).as_boolean().clone();
                // The key values: the side's key expressions over its rows (with
                // `__rowtime` and meta columns absent, the keys read declared columns).
                let rows_batch = RecordBatch::try_new_with_options(
                    Arc::new(Schema::new(self.sides[side].schema.fields()[..columns].to_vec())),
                    batch.columns()[..columns].to_vec(),
                    &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
                )?;
                let n = rows_batch.num_rows();
                let key_columns: Vec<ArrayRef> = self.sides[side]
                    .keys
                    .iter()
                    .map(|k| k.evaluate(&rows_batch).and_then(|v| v.into_array(n)))
                    .collect::<datafusion::error::Result<_>>()
                    .map_err(|e| EngineError::State(format!("the interval join's kept rows cannot be keyed: {e}")))?;
                let keys = self.sides[side].key_rows.convert_columns(&key_columns)?;
                let encoded = self.sides[side].rows.convert_columns(rows_batch.columns())?;
                let mine = state::shard_rows(&key_columns, n, shard)?;
                for i in (0..n).filter(|&i| mine[i]) {
                    self.keep(side, keys.row(i).as_ref(), times.value(i), encoded.row(i).as_ref().to_vec(), matched.value(i));
                }
            }
        }
        Ok(())
    }
}
