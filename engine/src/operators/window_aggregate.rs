//! Window aggregation (DESIGN.md, windows and emission): tumbling, hopping and session
//! windows, and the non-windowed GROUP BY table, over DataFusion accumulators.
//!
//! **State.** Tumbling and hopping windows are *panes* keyed by `window_start`; each
//! pane maps group keys (encoded with `arrow-row`) to a group index and holds one
//! DataFusion `GroupsAccumulator` per aggregate (a `GroupsAccumulatorAdapter` around the
//! row `Accumulator` where DataFusion has no grouped one, e.g. `COUNT(DISTINCT)`). A
//! batch costs one hash lookup per row and one vectorized `update_batch` per pane and
//! aggregate. Session windows are kept per key as non-overlapping `[start, end)` ranges
//! with row `Accumulator`s, merged (`state` + `merge_batch`) when a row bridges two.
//!
//! **Time.** A window `[start, end)` closes when the watermark reaches
//! `end - 1 + grace` (the watermark promises no row at or below it). Until then rows
//! behind the watermark still update it. A row whose windows are all closed is late:
//! counted in `late_rows` and, when the source names `'late-rows.topic'`, sent to the
//! late-rows side output with its original key and value bytes. Never dropped silently.
//!
//! **Emission.** `EMIT FINAL`: one row per window and key when the window fires
//! (watermark at `end - 1 + grace`), then its state is freed; with an allowed lateness
//! (`'allowed-lateness'` on the source, Flink's `allowedLateness`) the window stays that
//! much longer and every late row that changes it re-emits the corrected row (an upsert). `EMIT CHANGES`: after every micro-batch, one row per (window, key)
//! that the batch changed, with the current values (sinks upsert on key + window_start);
//! state is freed when the window closes. A non-windowed GROUP BY keeps its groups.
//!
//! **Checkpoints.** Barriers pass at once; the state is snapshotted with them (see
//! [`Operator::snapshot`] for the Arrow layout) and restored on start, so a restart
//! neither loses the rows of open windows nor counts a row twice. A restore with another
//! parallelism keeps the groups whose key routes to this worker.
//!
//! Input: the relation's columns plus meta columns and `__rowtime`. Output:
//! [`AggregatePlan::output_schema`] (keys, window_start, window_end, aggregates).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::hash_utils::RandomState;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};

use super::late::LateRows;
use super::state;
use super::watermark::META_ROWTIME;
use crate::error::{EngineError, Result};
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};
use crate::runtime::QueryMetrics;
use crate::sql::ast::{Emit, WindowKind};
use crate::sql::planner::AggregatePlan;

/// One aggregate function with the expressions that feed it.
struct Aggregate {
    function: Arc<AggregateFunctionExpr>,
    /// Arguments, then ORDER BY expressions (what DataFusion's accumulators expect).
    inputs: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
}

impl Aggregate {
    fn groups_accumulator(&self) -> Result<Box<dyn GroupsAccumulator>> {
        if self.function.groups_accumulator_supported() {
            return Ok(self.function.create_groups_accumulator()?);
        }
        let function = self.function.clone();
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || function.create_accumulator())))
    }
}

/// A tumbling or hopping window (or the one pane of a non-windowed GROUP BY).
struct Pane {
    start: Timestamp,
    end: Timestamp,
    keys: GroupKeys,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    changed: Vec<bool>,
    any_changed: bool,
    /// EMIT FINAL has emitted it; it stays for the allowed lateness, re-emitting
    /// the groups late rows change.
    fired: bool,
}

/// The group keys of a pane (row-encoded), interned to dense group indices without an
/// allocation per key: the bytes live in one arena, the hash table maps a key's hash to
/// the first group with that hash and `next` chains the rest.
#[derive(Default)]
struct GroupKeys {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    heads: HashMap<u64, u32, RandomState>,
    next: Vec<u32>,
}

impl GroupKeys {
    const END: u32 = u32::MAX;

    fn len(&self) -> usize {
        self.next.len()
    }

    fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// The key of group `g`.
    fn get(&self, g: usize) -> &[u8] {
        let start = if g == 0 { 0 } else { self.offsets[g - 1] };
        &self.bytes[start..self.offsets[g]]
    }

    /// The group of `key`, and whether it is new.
    fn intern(&mut self, key: &[u8]) -> (usize, bool) {
        let hash = KEY_HASH.hash_one(key);
        let mut g = self.heads.get(&hash).copied().unwrap_or(Self::END);
        while g != Self::END {
            if self.get(g as usize) == key {
                return (g as usize, false);
            }
            g = self.next[g as usize];
        }
        let new = self.next.len();
        self.bytes.extend_from_slice(key);
        self.offsets.push(self.bytes.len());
        let previous = self.heads.insert(hash, new as u32).unwrap_or(Self::END);
        self.next.push(previous);
        (new, true)
    }

    /// Approximate bytes held.
    fn size(&self) -> usize {
        self.bytes.capacity() + self.offsets.capacity() * 8 + self.next.capacity() * 4 + self.heads.capacity() * 16
    }
}

/// Hash state for group keys (fixed, like DataFusion's).
const KEY_HASH: RandomState = RandomState::with_seed(0x6b65_7973);

/// One session of one key.
struct Session {
    start: Timestamp,
    end: Timestamp,
    accumulators: Vec<Box<dyn Accumulator>>,
}

/// The window aggregation operator (see the module docs).
pub struct WindowAggregate {
    window: Option<WindowKind>,
    grace: i64,
    lateness: i64,
    emit: Emit,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Aggregate>,
    converter: Option<RowConverter>,
    output: SchemaRef,
    rowtime: usize,
    late: LateRows,
    panes: BTreeMap<Timestamp, Pane>,
    sessions: HashMap<Box<[u8]>, Vec<Session>>,
    watermark: Timestamp,
    metrics: Arc<QueryMetrics>,
    reported: (i64, i64),
    batches: u64,
}

/// The `window_start` of the one pane of a non-windowed aggregation.
const TABLE_PANE: Timestamp = Timestamp::MIN;

impl WindowAggregate {
    /// An aggregation running `plan` over batches of `input` (which has `__rowtime`, and
    /// the record meta columns when late rows go to a topic).
    ///
    /// Errors: `input` lacks `__rowtime`, or the key types cannot be row-encoded.
    pub fn new(plan: &AggregatePlan, input: &Schema, metrics: Arc<QueryMetrics>) -> Result<Self> {
        let rowtime = input.index_of(META_ROWTIME).map_err(|_| EngineError::Other("window aggregate: no __rowtime column".into()))?;
        let converter = if plan.keys.is_empty() {
            None
        } else {
            let fields = plan
                .keys
                .iter()
                .map(|k| Ok(SortField::new(k.expr.return_field(input)?.data_type().clone())))
                .collect::<Result<Vec<_>>>()?;
            Some(RowConverter::new(fields)?)
        };
        let late = LateRows::new(input, metrics.clone());
        let aggregates = plan
            .aggregates
            .iter()
            .map(|a| {
                let mut inputs = a.function.expressions();
                inputs.extend(a.function.order_bys().iter().map(|o| o.expr.clone()));
                Aggregate { function: a.function.clone(), inputs, filter: a.filter.clone() }
            })
            .collect();
        Ok(WindowAggregate {
            window: plan.window.as_ref().map(|w| w.kind),
            grace: plan.window.as_ref().map(|w| w.grace_ms).unwrap_or(0),
            lateness: plan.window.as_ref().map(|w| w.allowed_lateness_ms).unwrap_or(0),
            emit: plan.emit,
            keys: plan.keys.iter().map(|k| k.expr.clone()).collect(),
            aggregates,
            converter,
            output: plan.output_schema.clone(),
            rowtime,
            late,
            panes: BTreeMap::new(),
            sessions: HashMap::new(),
            watermark: Timestamp::MIN,
            metrics,
            reported: (0, 0),
            batches: 0,
        })
    }

    /// The watermark at which the window ending at `end` fires (EMIT FINAL).
    fn fire_time(&self, end: Timestamp) -> Timestamp {
        end.saturating_sub(1).saturating_add(self.grace)
    }

    /// The watermark at which the window ending at `end` is dropped: its fire time plus
    /// the allowed lateness. Rows for it after that are late.
    fn close_time(&self, end: Timestamp) -> Timestamp {
        self.fire_time(end).saturating_add(self.lateness)
    }

    fn is_closed(&self, end: Timestamp) -> bool {
        self.watermark != Timestamp::MIN && self.close_time(end) <= self.watermark
    }

    fn key_rows(&self, batch: &RecordBatch) -> Result<Option<Rows>> {
        let Some(converter) = &self.converter else { return Ok(None) };
        let columns = self.keys.iter().map(|k| k.evaluate(batch)?.into_array(batch.num_rows())).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(converter.convert_columns(&columns)?))
    }

    /// Per aggregate: its input arrays and its FILTER mask.
    fn inputs(&self, batch: &RecordBatch) -> Result<Vec<(Vec<ArrayRef>, Option<BooleanArray>)>> {
        let n = batch.num_rows();
        self.aggregates
            .iter()
            .map(|a| {
                let values = a.inputs.iter().map(|e| e.evaluate(batch)?.into_array(n)).collect::<Result<Vec<_>, _>>()?;
                let filter = match &a.filter {
                    Some(f) => Some(f.evaluate(batch)?.into_array(n)?.as_boolean().clone()),
                    None => None,
                };
                Ok((values, filter))
            })
            .collect()
    }

    fn new_pane(&self, start: Timestamp, end: Timestamp) -> Result<Pane> {
        Ok(Pane {
            start,
            end,
            keys: GroupKeys::default(),
            accumulators: self.aggregates.iter().map(Aggregate::groups_accumulator).collect::<Result<_>>()?,
            changed: Vec::new(),
            any_changed: false,
            fired: false,
        })
    }

    /// Adds `rows` of the batch to the pane starting at `start`.
    fn update_pane(
        &mut self,
        start: Timestamp,
        end: Timestamp,
        rows: &[u32],
        whole_batch: bool,
        keys: Option<&Rows>,
        inputs: &[(Vec<ArrayRef>, Option<BooleanArray>)],
    ) -> Result<()> {
        if !self.panes.contains_key(&start) {
            let pane = self.new_pane(start, end)?;
            self.panes.insert(start, pane);
        }
        let Some(pane) = self.panes.get_mut(&start) else { return Ok(()) };
        let groups: Vec<usize> = match keys {
            // No GROUP BY keys: one group per window.
            None => {
                if pane.keys.is_empty() {
                    pane.keys.intern(&[]);
                    pane.changed.push(false);
                }
                pane.changed[0] = true;
                vec![0; rows.len()]
            }
            Some(k) => {
                let mut groups = Vec::with_capacity(rows.len());
                for &r in rows {
                    let (g, new) = pane.keys.intern(k.row(r as usize).data());
                    if new {
                        pane.changed.push(false);
                    }
                    pane.changed[g] = true;
                    groups.push(g);
                }
                groups
            }
        };
        pane.any_changed = true;
        let indices = (!whole_batch).then(|| UInt32Array::from(rows.to_vec()));
        let total = pane.keys.len();
        for (acc, (values, filter)) in pane.accumulators.iter_mut().zip(inputs) {
            match &indices {
                None => acc.update_batch(values, &groups, filter.as_ref(), total)?,
                Some(idx) => {
                    let values = values.iter().map(|v| arrow::compute::take(v, idx, None)).collect::<Result<Vec<_>, _>>()?;
                    let filter = match filter {
                        Some(f) => Some(arrow::compute::take(f, idx, None)?.as_boolean().clone()),
                        None => None,
                    };
                    acc.update_batch(&values, &groups, filter.as_ref(), total)?;
                }
            }
        }
        Ok(())
    }

    /// Rows of the output schema for the given keys, window and aggregate values.
    fn output_batch(&self, keys: &[&[u8]], start: Timestamp, end: Timestamp, values: Vec<ArrayRef>) -> Result<RecordBatch> {
        let n = keys.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.fields().len());
        if let Some(converter) = &self.converter {
            let parser = converter.parser();
            columns.extend(converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?);
        }
        if self.window.is_some() {
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![start; n])));
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![end; n])));
        }
        columns.extend(values);
        let columns = super::projection::cast_to(columns, &self.output)?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?)
    }

    /// Emits every group of a closed pane (EMIT FINAL).
    fn emit_final(&self, mut pane: Pane, out: &mut Collector) -> Result<()> {
        if pane.keys.is_empty() {
            return Ok(());
        }
        let values = pane.accumulators.iter_mut().map(|a| a.evaluate(EmitTo::All)).collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<&[u8]> = (0..pane.keys.len()).map(|g| pane.keys.get(g)).collect();
        out.emit(self.output_batch(&keys, pane.start, pane.end, values)?);
        Ok(())
    }

    /// Emits the groups that changed since the last call, of every open pane (EMIT
    /// CHANGES) or of the panes that have fired (EMIT FINAL with allowed lateness: the
    /// corrected rows), keeping their state.
    fn emit_changes(&mut self, fired_only: bool, out: &mut Collector) -> Result<()> {
        let starts: Vec<Timestamp> =
            self.panes.iter().filter(|(_, p)| p.any_changed && (p.fired || !fired_only)).map(|(s, _)| *s).collect();
        for start in starts {
            if let Some(batch) = self.current_rows(start, true)? {
                out.emit(batch);
            }
        }
        Ok(())
    }

    /// The current rows of a pane (only the changed groups when `changed_only`), its
    /// state kept: `state` is taken, merged back, and merged into a fresh accumulator that
    /// is evaluated. Clears the pane's change marks.
    fn current_rows(&mut self, start: Timestamp, changed_only: bool) -> Result<Option<RecordBatch>> {
        let mut fresh: Vec<Box<dyn GroupsAccumulator>> =
            self.aggregates.iter().map(Aggregate::groups_accumulator).collect::<Result<_>>()?;
        let Some(pane) = self.panes.get_mut(&start) else { return Ok(None) };
        let total = pane.keys.len();
        let all: Vec<usize> = (0..total).collect();
        let picked: Vec<u32> = (0..total as u32).filter(|&g| !changed_only || pane.changed[g as usize]).collect();
        pane.changed.iter_mut().for_each(|c| *c = false);
        pane.any_changed = false;
        if picked.is_empty() {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(fresh.len());
        for (acc, eval) in pane.accumulators.iter_mut().zip(fresh.iter_mut()) {
            let state = acc.state(EmitTo::All)?;
            acc.merge_batch(&state, &all, total)?;
            eval.merge_batch(&state, &all, total)?;
            let current = eval.evaluate(EmitTo::All)?;
            values.push(if picked.len() == total {
                current
            } else {
                arrow::compute::take(&current, &UInt32Array::from(picked.clone()), None)?
            });
        }
        let keys: Vec<Box<[u8]>> = picked.iter().map(|&g| Box::from(pane.keys.get(g as usize))).collect();
        let (s, e) = (pane.start, pane.end);
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
        Ok(Some(self.output_batch(&keys, s, e, values)?))
    }

    /// Session windows: row by row inside the batch, merging the sessions a row bridges.
    fn update_sessions(
        &mut self,
        gap: i64,
        batch: &RecordBatch,
        keys: Option<&Rows>,
        inputs: &[(Vec<ArrayRef>, Option<BooleanArray>)],
        late: &mut Vec<u32>,
    ) -> Result<()> {
        let times = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>();
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        order.sort_by_key(|&r| times.value(r as usize));
        for r in order {
            let ts = times.value(r as usize);
            let key: Box<[u8]> = match keys {
                Some(k) => k.row(r as usize).data().into(),
                None => Box::new([]),
            };
            let (mut start, mut end) = (ts, ts.saturating_add(gap));
            let list = self.sessions.get(&key).map(|l| l.as_slice()).unwrap_or(&[]);
            let overlapping: Vec<usize> = list.iter().enumerate().filter(|(_, s)| s.start < end && start < s.end).map(|(i, _)| i).collect();
            for &i in &overlapping {
                start = start.min(list[i].start);
                end = end.max(list[i].end);
            }
            if self.is_closed(end) {
                late.push(r);
                continue;
            }
            let fresh: Vec<Box<dyn Accumulator>> =
                self.aggregates.iter().map(|a| a.function.create_accumulator()).collect::<Result<_, _>>()?;
            let list = self.sessions.entry(key).or_default();
            let mut merged = Session { start, end, accumulators: fresh };
            for i in overlapping.into_iter().rev() {
                let mut old = list.remove(i);
                for (acc, o) in merged.accumulators.iter_mut().zip(old.accumulators.iter_mut()) {
                    let state = o.state()?.iter().map(|s| s.to_array()).collect::<Result<Vec<_>, _>>()?;
                    acc.merge_batch(&state)?;
                }
            }
            for (acc, (values, filter)) in merged.accumulators.iter_mut().zip(inputs) {
                if filter.as_ref().is_some_and(|f| !f.is_valid(r as usize) || !f.value(r as usize)) {
                    continue;
                }
                let row: Vec<ArrayRef> = values.iter().map(|v| v.slice(r as usize, 1)).collect();
                acc.update_batch(&row)?;
            }
            let at = list.partition_point(|s| s.start < merged.start);
            list.insert(at, merged);
        }
        Ok(())
    }

    fn close_sessions(&mut self, out: &mut Collector) -> Result<()> {
        let mut closed: Vec<(Box<[u8]>, Session)> = Vec::new();
        let watermark = self.watermark;
        let grace = self.grace;
        self.sessions.retain(|key, list| {
            let mut i = 0;
            while i < list.len() {
                if list[i].end.saturating_sub(1).saturating_add(grace) <= watermark {
                    closed.push((key.clone(), list.remove(i)));
                } else {
                    i += 1;
                }
            }
            !list.is_empty()
        });
        // Emit in window order, then key order, for stable output.
        closed.sort_by(|a, b| (a.1.start, &a.0).cmp(&(b.1.start, &b.0)));
        for (key, mut session) in closed {
            let values = session.accumulators.iter_mut().map(|a| a.evaluate().and_then(|v| v.to_array())).collect::<Result<Vec<_>, _>>()?;
            out.emit(self.output_batch(&[key.as_ref()], session.start, session.end, values)?);
        }
        Ok(())
    }

    fn report_state(&mut self) {
        let windows: usize = self.panes.values().map(|p| p.keys.len()).sum::<usize>() + self.sessions.values().map(Vec::len).sum::<usize>();
        let bytes: usize =
            self.panes.values().map(|p| p.accumulators.iter().map(|a| a.size()).sum::<usize>() + p.keys.size()).sum::<usize>()
                + self
                    .sessions
                    .iter()
                    .map(|(k, l)| k.len() + l.iter().map(|s| s.accumulators.iter().map(|a| a.size()).sum::<usize>() + 32).sum::<usize>())
                    .sum::<usize>();
        let now = (windows as i64, bytes as i64);
        self.metrics.adjust_state(now.0 - self.reported.0, now.1 - self.reported.1);
        self.reported = now;
    }
}

impl WindowAggregate {
    /// Late rows out, changed rows out (EMIT CHANGES, or fired windows with allowed
    /// lateness), state gauges updated.
    fn after_batch(&mut self, batch: &RecordBatch, late: &[u32], out: &mut Collector) -> Result<()> {
        self.late.send(batch, late, out)?;
        match self.emit {
            Emit::Changes => self.emit_changes(false, out)?,
            Emit::Final if self.lateness > 0 => self.emit_changes(true, out)?,
            Emit::Final => {}
        }
        self.batches += 1;
        // Panes are few and cheap to measure; many sessions are measured every 16 batches.
        if self.sessions.is_empty() || self.batches % 16 == 1 {
            self.report_state();
        }
        Ok(())
    }
}

impl Operator for WindowAggregate {
    fn name(&self) -> &'static str {
        "window-aggregate"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = self.key_rows(&batch)?;
        let inputs = self.inputs(&batch)?;
        let mut late: Vec<u32> = Vec::new();
        match self.window {
            None => {
                let rows: Vec<u32> = (0..n as u32).collect();
                self.update_pane(TABLE_PANE, Timestamp::MAX, &rows, true, keys.as_ref(), &inputs)?;
            }
            Some(WindowKind::Session { gap }) => self.update_sessions(gap, &batch, keys.as_ref(), &inputs, &mut late)?,
            Some(WindowKind::Tumbling { size }) | Some(WindowKind::Hopping { size, .. }) => {
                let advance = match self.window {
                    Some(WindowKind::Hopping { advance, .. }) => advance,
                    _ => size,
                };
                let times = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>();
                // Fast path: a tumbling window holding the whole batch (the usual case).
                let values = times.values();
                let first = values.first().map(|t| t - t.rem_euclid(size)).unwrap_or(0);
                if advance == size && !self.is_closed(first.saturating_add(size)) && values.iter().all(|t| t - t.rem_euclid(size) == first)
                {
                    let rows: Vec<u32> = (0..n as u32).collect();
                    self.update_pane(first, first.saturating_add(size), &rows, true, keys.as_ref(), &inputs)?;
                    self.after_batch(&batch, &late, out)?;
                    return Ok(());
                }
                let mut by_window: BTreeMap<Timestamp, Vec<u32>> = BTreeMap::new();
                for (r, &ts) in times.values().iter().enumerate() {
                    let mut start = ts - ts.rem_euclid(advance);
                    let mut accepted = false;
                    while start > ts.saturating_sub(size) {
                        if !self.is_closed(start.saturating_add(size)) {
                            by_window.entry(start).or_default().push(r as u32);
                            accepted = true;
                        }
                        match start.checked_sub(advance) {
                            Some(s) => start = s,
                            None => break,
                        }
                    }
                    if !accepted {
                        late.push(r as u32);
                    }
                }
                for (start, rows) in by_window {
                    let whole = rows.len() == n;
                    self.update_pane(start, start.saturating_add(size), &rows, whole, keys.as_ref(), &inputs)?;
                }
            }
        }
        self.after_batch(&batch, &late, out)
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        let due: Vec<(Timestamp, Timestamp, bool)> = self
            .panes
            .iter()
            .take_while(|(start, pane)| **start != TABLE_PANE && self.fire_time(pane.end) <= watermark)
            .map(|(start, pane)| (*start, pane.end, pane.fired))
            .collect();
        for (start, end, fired) in due {
            let drop_now = self.close_time(end) <= watermark;
            if self.emit == Emit::Final && !fired {
                if drop_now {
                    if let Some(pane) = self.panes.remove(&start) {
                        self.emit_final(pane, out)?;
                    }
                    continue;
                }
                if let Some(batch) = self.current_rows(start, false)? {
                    out.emit(batch);
                }
                if let Some(pane) = self.panes.get_mut(&start) {
                    pane.fired = true;
                }
            }
            if drop_now {
                self.panes.remove(&start);
            }
        }
        if !self.sessions.is_empty() {
            self.close_sessions(out)?;
        }
        out.watermark(watermark);
        self.report_state();
        Ok(())
    }

    /// Two batches, or one when no window is open:
    ///
    /// 1. `watermark Int64`: one row, the operator's watermark (ms).
    /// 2. One row per open window and group: `window_start Int64`, `window_end Int64`
    ///    (ms; session bounds for session windows, `i64::MIN`/`i64::MAX` for a
    ///    non-windowed GROUP BY), `fired Boolean` (EMIT FINAL has emitted it and it
    ///    waits out the allowed lateness), `key_<i>` (the group key values, typed as the
    ///    GROUP BY expressions), then `agg<i>_<j>`: field `j` of aggregate `i`'s
    ///    accumulator state, as DataFusion's `state()` returns it (`merge_batch` reads it
    ///    back), e.g. sum and count for AVG.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let mut batches = vec![state::scalar("watermark", self.watermark)?];
        if let Some(windows) = self.windows_state()? {
            batches.push(windows);
        }
        Ok(OperatorState { batches })
    }

    fn restore(&mut self, states: Vec<OperatorState>, shard: Option<Shard>) -> Result<()> {
        let mut watermark: Option<Timestamp> = None;
        for s in &states {
            let Some((first, rest)) = s.batches.split_first() else { return Err(state::layout_error(self.name())) };
            let w = state::read_scalar(first, "watermark")?;
            watermark = Some(watermark.map_or(w, |x| x.min(w)));
            if let Some(windows) = rest.first() {
                let keys: Vec<ArrayRef> = (0..self.keys.len())
                    .map(|i| windows.column_by_name(&format!("key_{i}")).cloned().ok_or_else(|| state::layout_error("window-aggregate")))
                    .collect::<Result<_>>()?;
                let mine = state::keep_shard(windows, &keys, shard)?;
                self.restore_windows(&mine)?;
            }
        }
        if let Some(w) = watermark {
            self.watermark = self.watermark.max(w);
        }
        self.report_state();
        Ok(())
    }
}

impl WindowAggregate {
    /// The open windows as one batch (see [`Operator::snapshot`]); `None` when there are none.
    fn windows_state(&mut self) -> Result<Option<RecordBatch>> {
        let mut starts: Vec<Timestamp> = Vec::new();
        let mut ends: Vec<Timestamp> = Vec::new();
        let mut fired: Vec<bool> = Vec::new();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        // Per aggregate, per state field: the arrays to concatenate.
        let mut parts: Vec<Vec<Vec<ArrayRef>>> = vec![Vec::new(); self.aggregates.len()];
        for pane in self.panes.values_mut() {
            let total = pane.keys.len();
            if total == 0 {
                continue;
            }
            let all: Vec<usize> = (0..total).collect();
            for (i, acc) in pane.accumulators.iter_mut().enumerate() {
                // `state` drains the accumulator; merging it back keeps the window going.
                let fields = acc.state(EmitTo::All)?;
                acc.merge_batch(&fields, &all, total)?;
                push_fields(&mut parts[i], fields);
            }
            starts.extend(std::iter::repeat_n(pane.start, total));
            ends.extend(std::iter::repeat_n(pane.end, total));
            fired.extend(std::iter::repeat_n(pane.fired, total));
            keys.extend((0..total).map(|g| pane.keys.get(g).to_vec()));
        }
        for (key, list) in self.sessions.iter_mut() {
            for session in list.iter_mut() {
                for (i, acc) in session.accumulators.iter_mut().enumerate() {
                    // `state` may take the accumulator's values: a fresh one merges them back.
                    let fields = acc.state()?.iter().map(|v| v.to_array()).collect::<Result<Vec<_>, _>>()?;
                    let mut fresh = self.aggregates[i].function.create_accumulator()?;
                    fresh.merge_batch(&fields)?;
                    *acc = fresh;
                    push_fields(&mut parts[i], fields);
                }
                starts.push(session.start);
                ends.push(session.end);
                fired.push(false);
                keys.push(key.to_vec());
            }
        }
        if starts.is_empty() {
            return Ok(None);
        }
        let mut fields = vec![
            Field::new("window_start", DataType::Int64, false),
            Field::new("window_end", DataType::Int64, false),
            Field::new("fired", DataType::Boolean, false),
        ];
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from(starts)), Arc::new(Int64Array::from(ends)), Arc::new(BooleanArray::from(fired))];
        if let Some(converter) = &self.converter {
            let parser = converter.parser();
            for (i, c) in converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?.into_iter().enumerate() {
                fields.push(Field::new(format!("key_{i}"), c.data_type().clone(), true));
                columns.push(c);
            }
        }
        for (i, per_field) in parts.into_iter().enumerate() {
            for (j, arrays) in per_field.into_iter().enumerate() {
                let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                let c = arrow::compute::concat(&refs)?;
                fields.push(Field::new(format!("agg{i}_{j}"), c.data_type().clone(), true));
                columns.push(c);
            }
        }
        Ok(Some(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?))
    }

    /// Rebuilds the windows of a state batch (see [`Operator::snapshot`]).
    fn restore_windows(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let starts = state::column::<Int64Type>(batch, "window_start")?.clone();
        let ends = state::column::<Int64Type>(batch, "window_end")?.clone();
        let fired = batch
            .column_by_name("fired")
            .and_then(|c| c.as_boolean_opt().cloned())
            .ok_or_else(|| state::layout_error("window-aggregate"))?;
        let key_columns: Vec<ArrayRef> = (0..self.keys.len()).filter_map(|i| batch.column_by_name(&format!("key_{i}")).cloned()).collect();
        let keys = match &self.converter {
            Some(c) => Some(c.convert_columns(&key_columns)?),
            None => None,
        };
        let key_of = |r: usize| -> Box<[u8]> { keys.as_ref().map(|k| Box::from(k.row(r).data())).unwrap_or_default() };
        let mut agg_columns: Vec<Vec<ArrayRef>> = Vec::with_capacity(self.aggregates.len());
        for i in 0..self.aggregates.len() {
            let prefix = format!("agg{i}_");
            let mut cols: Vec<(usize, ArrayRef)> = batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter_map(|(c, f)| {
                    f.name().strip_prefix(&prefix).and_then(|j| j.parse::<usize>().ok()).map(|j| (j, batch.column(c).clone()))
                })
                .collect();
            cols.sort_by_key(|(j, _)| *j);
            agg_columns.push(cols.into_iter().map(|(_, c)| c).collect());
        }
        if let Some(WindowKind::Session { .. }) = self.window {
            for r in 0..n {
                let mut accumulators: Vec<Box<dyn Accumulator>> =
                    self.aggregates.iter().map(|a| a.function.create_accumulator()).collect::<Result<_, _>>()?;
                for (acc, cols) in accumulators.iter_mut().zip(&agg_columns) {
                    let row: Vec<ArrayRef> = cols.iter().map(|c| c.slice(r, 1)).collect();
                    acc.merge_batch(&row)?;
                }
                let session = Session { start: starts.value(r), end: ends.value(r), accumulators };
                let list = self.sessions.entry(key_of(r)).or_default();
                let at = list.partition_point(|s| s.start < session.start);
                list.insert(at, session);
            }
            return Ok(());
        }
        // Rows of one window are adjacent (written window by window).
        let mut from = 0;
        while from < n {
            let start = starts.value(from);
            let mut to = from + 1;
            while to < n && starts.value(to) == start {
                to += 1;
            }
            if !self.panes.contains_key(&start) {
                let pane = self.new_pane(start, ends.value(from))?;
                self.panes.insert(start, pane);
            }
            let Some(pane) = self.panes.get_mut(&start) else { return Ok(()) };
            pane.fired |= fired.value(from);
            let mut groups = Vec::with_capacity(to - from);
            for r in from..to {
                let (g, new) = pane.keys.intern(&key_of(r));
                if new {
                    pane.changed.push(false);
                }
                groups.push(g);
            }
            let total = pane.keys.len();
            for (acc, cols) in pane.accumulators.iter_mut().zip(&agg_columns) {
                let rows: Vec<ArrayRef> = cols.iter().map(|c| c.slice(from, to - from)).collect();
                acc.merge_batch(&rows, &groups, total)?;
            }
            from = to;
        }
        Ok(())
    }
}

/// Appends one accumulator's state `fields` to `parts` (one list per field).
fn push_fields(parts: &mut Vec<Vec<ArrayRef>>, fields: Vec<ArrayRef>) {
    if parts.len() < fields.len() {
        parts.resize(fields.len(), Vec::new());
    }
    for (j, f) in fields.into_iter().enumerate() {
        parts[j].push(f);
    }
}

impl Drop for WindowAggregate {
    fn drop(&mut self) {
        self.metrics.adjust_state(-self.reported.0, -self.reported.1);
    }
}
