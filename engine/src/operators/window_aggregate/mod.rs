//! Window aggregation (docs/DESIGN.md, windows and emission): tumbling, hopping and session
//! windows, and the non-windowed GROUP BY table, over DataFusion accumulators.
//!
//! **State** ([`Windows`]). Tumbling and hopping windows are kept by `window_start`,
//! a non-windowed GROUP BY as one window that never closes; each holds its [`Groups`]
//! (`groups.rs`): DataFusion's `GroupValues` interning the group keys and one
//! `GroupsAccumulator` per aggregate, so a batch costs one vectorized `intern` and one
//! vectorized `update_batch` per window and aggregate. Session windows (`session.rs`)
//! are kept per key as non-overlapping `[start, end)` ranges with row `Accumulator`s,
//! merged (`state` + `merge_batch`) when a row bridges two.
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
//! Sessions with `EMIT CHANGES` emit each changed session after the batch, after a
//! retraction of each emitted session a merge replaced (rows end with `__delete`).
//!
//! **Two phases.** On several workers an aggregation that allows it is pre-aggregated
//! per batch before the key exchange ([`LocalAggregate`], `local.rs`); the operator
//! behind it ([`WindowAggregate::merging_partials`]) merges partial states instead of
//! adding rows, with the same windows, lateness and emission.
//!
//! **Checkpoints.** Barriers pass at once; the state is snapshotted with them (see
//! [`Operator::snapshot`] for the Arrow layout) and restored on start, so a restart
//! neither loses the rows of open windows nor counts a row twice. A restore with another
//! parallelism keeps the groups whose key routes to this worker.
//!
//! Input: the relation's columns plus meta columns and `__rowtime`. Output:
//! [`AggregatePlan::output_schema`] (keys, window_start, window_end, aggregates) and last
//! `__rowtime` (Timestamp(ms)): the largest `__rowtime` among the rows each result
//! aggregates, kept by a hidden `MAX` aggregate after the query's own (so in checkpoints
//! too). It becomes the Kafka record timestamp, as in ksqlDB.

mod groups;
mod local;
mod session;

pub use self::local::LocalAggregate;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;

use self::groups::{Aggregate, Groups, Inputs};
use self::session::SessionWindows;
use super::late::LateRows;
use super::state;
use super::watermark::META_ROWTIME;
use crate::error::{EngineError, Result};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};
use crate::sql::ast::{Emit, WindowKind};
use crate::sql::planner::AggregatePlan;

/// When windows fire and close: the operator's watermark, the grace period and the
/// allowed lateness (ms).
#[derive(Debug, Clone, Copy)]
struct Timing {
    watermark: Timestamp,
    grace: i64,
    lateness: i64,
}

impl Timing {
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
}

/// One window `[start, end)` and its groups.
struct Window {
    start: Timestamp,
    end: Timestamp,
    groups: Groups,
    /// EMIT FINAL has emitted it; it stays for the allowed lateness, re-emitting
    /// the groups late rows change.
    fired: bool,
}

/// The open windows, by kind of window.
enum Windows {
    /// A non-windowed GROUP BY: one window over all time, never closed (a table).
    Table(Window),
    /// Tumbling (`advance == size`) or hopping windows, by `window_start` (ms).
    Fixed { size: i64, advance: i64, open: BTreeMap<Timestamp, Window> },
    /// Session windows.
    Session(SessionWindows),
}

/// In a checkpoint, the bounds of the one window of a non-windowed GROUP BY.
const TABLE_BOUNDS: (Timestamp, Timestamp) = (Timestamp::MIN, Timestamp::MAX);

/// The window aggregation operator (see the module docs).
pub struct WindowAggregate {
    windows: Windows,
    /// Whether rows carry `window_start` and `window_end` (not for a table).
    windowed: bool,
    timing: Timing,
    emit: Emit,
    /// GROUP BY expressions, over the input.
    keys: Vec<Arc<dyn PhysicalExpr>>,
    /// `key_<i>` fields typed as the GROUP BY expressions; `None` without GROUP BY keys.
    key_schema: Option<SchemaRef>,
    aggregates: Vec<Aggregate>,
    output: SchemaRef,
    rowtime: usize,
    /// Rows end with `__delete` (session windows with EMIT CHANGES: a merged-away session
    /// is retracted with a tombstone).
    deletes: bool,
    /// Subtracted from a window's end in the rows (ms): a ksqlDB session's `WINDOWEND` is
    /// its last row's time, not the end of its gap (Flink's `window_end`).
    shown_end_offset: i64,
    late: LateRows,
    /// The input is partial aggregates of a [`LocalAggregate`] (`local.rs`) as well as rows.
    partials: bool,
    metrics: Arc<QueryMetrics>,
    reported: (i64, i64),
    batches: u64,
}

impl WindowAggregate {
    /// An aggregation running `plan` over batches of `input` (which has `__rowtime`, and
    /// the record meta columns when late rows go to a topic).
    ///
    /// Errors: `input` lacks `__rowtime`, or DataFusion cannot group by the key types.
    pub fn new(plan: &AggregatePlan, input: &Schema, metrics: Arc<QueryMetrics>) -> Result<Self> {
        let rowtime = input.index_of(META_ROWTIME).map_err(|_| EngineError::Internal("no __rowtime column".into()))?;
        let key_schema = key_schema(plan, input)?;
        let late = LateRows::new(input, metrics.clone());
        let aggregates = aggregates(plan, input)?;
        let mut output_fields: Vec<Field> = plan.output_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        output_fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), true));
        // Sessions with EMIT CHANGES retract merged sessions: rows carry a delete mark.
        let deletes = matches!(plan.window.as_ref().map(|w| w.kind), Some(WindowKind::Session { .. })) && plan.emit == Emit::Changes;
        if deletes {
            output_fields.push(Field::new(super::having_deletes::DELETE, DataType::Boolean, false));
        }
        let windows = match plan.window.as_ref().map(|w| w.kind) {
            None => Windows::Table(Window {
                start: TABLE_BOUNDS.0,
                end: TABLE_BOUNDS.1,
                groups: Groups::new(key_schema.as_ref(), &aggregates)?,
                fired: false,
            }),
            Some(WindowKind::Tumbling { size }) => Windows::Fixed { size, advance: size, open: BTreeMap::new() },
            Some(WindowKind::Hopping { size, advance }) => Windows::Fixed { size, advance, open: BTreeMap::new() },
            Some(WindowKind::Session { gap }) => {
                Windows::Session(SessionWindows::new(gap, key_schema.as_ref(), plan.emit == Emit::Changes)?)
            }
        };
        Ok(WindowAggregate {
            windowed: plan.window.is_some(),
            windows,
            timing: Timing {
                watermark: Timestamp::MIN,
                grace: plan.window.as_ref().map(|w| w.grace_ms).unwrap_or(0),
                lateness: plan.window.as_ref().map(|w| w.allowed_lateness_ms).unwrap_or(0),
            },
            emit: plan.emit,
            keys: plan.keys.iter().map(|k| k.expr.clone()).collect(),
            key_schema,
            aggregates,
            output: Arc::new(Schema::new(output_fields)),
            rowtime,
            deletes,
            shown_end_offset: match plan.window.as_ref() {
                Some(w) if w.syntax == crate::sql::window::WindowSyntax::Ksql => match w.kind {
                    WindowKind::Session { gap } => gap,
                    _ => 0,
                },
                _ => 0,
            },
            late,
            partials: false,
            metrics,
            reported: (0, 0),
            batches: 0,
        })
    }

    /// The aggregation behind a [`LocalAggregate`]: its input batches are partial
    /// aggregates (`LocalAggregate`'s output layout), merged into the windows, or rows
    /// (where the local aggregation passed them on).
    pub fn merging_partials(mut self) -> Self {
        self.partials = true;
        self
    }

    /// Merges a batch of partial aggregates into the open windows. Rows of one window are
    /// adjacent. A partial for a window that is already closed is late: the rows it
    /// stands for whose last window it is (its `__rows`) are counted as late rows, so
    /// the count is the one the rows themselves would have given.
    ///
    /// Errors: the batch is not the partial layout, or its state does not fit.
    fn merge_partials(&mut self, batch: &RecordBatch, out: &mut Collector) -> Result<()> {
        let starts = state::column::<Int64Type>(batch, "window_start")?.clone();
        let counts = state::column::<Int64Type>(batch, local::PARTIAL_ROWS)?.clone();
        let (key_columns, agg_columns) = state_columns(batch, self.keys.len(), self.aggregates.len())?;
        let keyed = self.key_schema.is_some();
        let timing = self.timing;
        let mut late = 0i64;
        for (from, to) in runs(starts.values()) {
            let start = starts.value(from);
            let keys = slice_columns(&key_columns, from, to - from);
            let states: Vec<Vec<ArrayRef>> = agg_columns.iter().map(|f| slice_columns(f, from, to - from)).collect();
            let keys = keyed.then_some(keys.as_slice());
            match &mut self.windows {
                Windows::Table(w) => w.groups.merge_partial(keys, to - from, &states)?,
                Windows::Fixed { size, open, .. } => {
                    let size = *size;
                    if timing.is_closed(start.saturating_add(size)) {
                        late += counts.values()[from..to].iter().sum::<i64>();
                    } else {
                        window_at(open, start, size, self.key_schema.as_ref(), &self.aggregates)?.groups.merge_partial(
                            keys,
                            to - from,
                            &states,
                        )?;
                    }
                }
                Windows::Session(_) => return Err(EngineError::Internal("session windows are not pre-aggregated".into())),
            }
        }
        if late > 0 {
            self.metrics.add_late(late as u64);
        }
        self.after_batch(batch, &[], out)
    }

    /// Rows of the output schema: key columns, the window bounds (windowed only) and
    /// the aggregate values, `n` rows.
    fn output_batch(&self, keys: Vec<ArrayRef>, n: usize, start: Timestamp, end: Timestamp, values: Vec<ArrayRef>) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.fields().len());
        columns.extend(keys);
        if self.windowed {
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![start; n])));
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![end.saturating_sub(self.shown_end_offset); n])));
        }
        columns.extend(values);
        if self.deletes {
            columns.push(Arc::new(BooleanArray::from(vec![false; n])));
        }
        let columns = super::projection::cast_to(columns, &self.output)?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?)
    }

    /// The current rows of `window` (only its changed groups when `changed_only`),
    /// keeping its state; `None` when there are none.
    fn current_rows(&self, window: &mut Window, changed_only: bool) -> Result<Option<RecordBatch>> {
        let Some((keys, values)) = window.groups.current(&self.aggregates, changed_only)? else { return Ok(None) };
        let n = values.first().map(|v| v.len()).or_else(|| keys.first().map(|k| k.len())).unwrap_or(0);
        Ok(Some(self.output_batch(keys, n, window.start, window.end, values)?))
    }

    /// Emits every group of a window that closes (EMIT FINAL).
    fn emit_final(&self, window: Window, out: &mut Collector) -> Result<()> {
        let n = window.groups.len();
        if n == 0 {
            return Ok(());
        }
        let (keys, values) = window.groups.finish()?;
        out.emit(self.output_batch(keys, n, window.start, window.end, values)?);
        Ok(())
    }

    /// A tombstone row for a session a merge replaced: its key and bounds, NULL values,
    /// the delete mark set.
    fn retraction(&self, keys: Vec<ArrayRef>, start: Timestamp, end: Timestamp) -> Result<RecordBatch> {
        let first_value = keys.len() + if self.windowed { 2 } else { 0 };
        let values: Vec<ArrayRef> = self.output.fields()[first_value..first_value + self.aggregates.len()]
            .iter()
            .map(|f| arrow::array::new_null_array(f.data_type(), 1))
            .collect();
        let batch = self.output_batch(keys, 1, start, end, values)?;
        let mut columns = batch.columns().to_vec();
        if let Some(last) = columns.last_mut() {
            *last = Arc::new(BooleanArray::from(vec![true]));
        }
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }

    /// Emits the groups that changed since the last call, of every open window (EMIT
    /// CHANGES) or of the windows that have fired (EMIT FINAL with allowed lateness:
    /// the corrected rows), keeping their state.
    fn emit_changes(&mut self, fired_only: bool, out: &mut Collector) -> Result<()> {
        if let Windows::Session(s) = &mut self.windows {
            let (gone, current) = s.take_changes(&self.aggregates)?;
            for g in gone {
                out.emit(self.retraction(g.keys, g.start, g.end)?);
            }
            for c in current {
                out.emit(self.output_batch(c.keys, 1, c.start, c.end, c.values)?);
            }
            return Ok(());
        }
        let mut windows = std::mem::replace(&mut self.windows, Windows::Fixed { size: 0, advance: 0, open: BTreeMap::new() });
        let result = (|| {
            let open: Vec<&mut Window> = match &mut windows {
                Windows::Table(w) => vec![w],
                Windows::Fixed { open, .. } => open.values_mut().collect(),
                Windows::Session(_) => Vec::new(),
            };
            for w in open {
                if w.groups.any_changed() && (w.fired || !fired_only) {
                    if let Some(batch) = self.current_rows(w, true)? {
                        out.emit(batch);
                    }
                }
            }
            Ok(())
        })();
        self.windows = windows;
        result
    }

    fn report_state(&mut self) {
        let (windows, bytes) = match &self.windows {
            Windows::Table(w) => (w.groups.len(), w.groups.size()),
            Windows::Fixed { open, .. } => open.values().fold((0, 0), |(n, b), w| (n + w.groups.len(), b + w.groups.size())),
            Windows::Session(s) => (s.len(), s.size()),
        };
        let now = (windows as i64, bytes as i64);
        self.metrics.adjust_state(now.0 - self.reported.0, now.1 - self.reported.1);
        self.reported = now;
    }

    /// Late rows out, changed rows out (EMIT CHANGES, or fired windows with allowed
    /// lateness), state gauges updated.
    fn after_batch(&mut self, batch: &RecordBatch, late: &[u32], out: &mut Collector) -> Result<()> {
        self.late.send(batch, late, out)?;
        match self.emit {
            Emit::Changes => self.emit_changes(false, out)?,
            Emit::Final if self.timing.lateness > 0 => self.emit_changes(true, out)?,
            Emit::Final => {}
        }
        self.batches += 1;
        // Fixed windows are few and cheap to measure; sessions are measured every 16 batches.
        if !matches!(&self.windows, Windows::Session(s) if !s.is_empty()) || self.batches % 16 == 1 {
            self.report_state();
        }
        Ok(())
    }

    /// Adds a batch to tumbling or hopping windows; rows whose windows are all closed
    /// go to `late`.
    fn update_fixed(&mut self, batch: &RecordBatch, keys: Option<&[ArrayRef]>, inputs: &Inputs, late: &mut Vec<u32>) -> Result<()> {
        let n = batch.num_rows();
        let timing = self.timing;
        let times = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>();
        let Windows::Fixed { size, advance, open } = &mut self.windows else { return Ok(()) };
        let (size, advance) = (*size, *advance);
        // Fast path: a tumbling window holding the whole batch (the usual case).
        let values = times.values();
        let first = values.first().map(|t| t - t.rem_euclid(size)).unwrap_or(0);
        if advance == size && !timing.is_closed(first.saturating_add(size)) && values.iter().all(|t| t - t.rem_euclid(size) == first) {
            return window_at(open, first, size, self.key_schema.as_ref(), &self.aggregates)?.groups.update(keys, None, inputs, n);
        }
        let mut by_window: BTreeMap<Timestamp, Vec<u32>> = BTreeMap::new();
        for (r, &ts) in values.iter().enumerate() {
            let mut start = ts - ts.rem_euclid(advance);
            let mut accepted = false;
            while start > ts.saturating_sub(size) {
                if !timing.is_closed(start.saturating_add(size)) {
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
            let rows = (rows.len() != n).then(|| UInt32Array::from(rows));
            window_at(open, start, size, self.key_schema.as_ref(), &self.aggregates)?.groups.update(keys, rows.as_ref(), inputs, n)?;
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
        if self.partials && LocalAggregate::is_partial(&batch) {
            return self.merge_partials(&batch, out);
        }
        let keys = key_columns(&self.keys, self.key_schema.is_some(), &batch)?;
        let inputs = inputs(&self.aggregates, &batch)?;
        let mut late: Vec<u32> = Vec::new();
        let timing = self.timing;
        match &mut self.windows {
            Windows::Table(w) => w.groups.update(keys.as_deref(), None, &inputs, n)?,
            Windows::Session(s) => {
                let times = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>();
                s.update(times, keys.as_deref(), &inputs, &self.aggregates, timing, &mut late)?
            }
            Windows::Fixed { .. } => self.update_fixed(&batch, keys.as_deref(), &inputs, &mut late)?,
        }
        self.after_batch(&batch, &late, out)
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        if watermark <= self.timing.watermark {
            return Ok(());
        }
        self.timing.watermark = watermark;
        let timing = self.timing;
        match &mut self.windows {
            Windows::Table(_) => {}
            Windows::Session(s) => {
                if !s.is_empty() {
                    let closed = s.close(watermark, timing.grace)?;
                    // EMIT CHANGES emitted each session as it changed: closing frees it.
                    if self.emit == Emit::Final {
                        for c in closed {
                            out.emit(self.output_batch(c.keys, 1, c.start, c.end, c.values)?);
                        }
                    }
                }
            }
            Windows::Fixed { open, .. } => {
                // Windows end in the order they start: the due ones come first.
                let due: Vec<Timestamp> =
                    open.iter().take_while(|(_, w)| timing.fire_time(w.end) <= watermark).map(|(start, _)| *start).collect();
                let mut emitted = Vec::new();
                let mut finished = Vec::new();
                for start in due {
                    let Some(w) = open.get(&start) else { continue };
                    let drop_now = timing.close_time(w.end) <= watermark;
                    if self.emit == Emit::Final && !w.fired {
                        if drop_now {
                            if let Some(w) = open.remove(&start) {
                                finished.push(w);
                            }
                            continue;
                        }
                        emitted.push(start);
                    }
                    if drop_now {
                        open.remove(&start);
                    }
                }
                let mut open = std::mem::take(open);
                let result = (|| {
                    for w in finished {
                        self.emit_final(w, out)?;
                    }
                    for start in emitted {
                        if let Some(w) = open.get_mut(&start) {
                            if let Some(batch) = self.current_rows(w, false)? {
                                out.emit(batch);
                            }
                            w.fired = true;
                        }
                    }
                    Ok::<_, EngineError>(())
                })();
                if let Windows::Fixed { open: o, .. } = &mut self.windows {
                    *o = open;
                }
                result?;
            }
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
        let mut batches = vec![state::scalar("watermark", self.timing.watermark)?];
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
            self.timing.watermark = self.timing.watermark.max(w);
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
        // Per key column: the arrays to concatenate.
        let mut keys: Vec<Vec<ArrayRef>> = Vec::new();
        // Per aggregate, per state field: the arrays to concatenate.
        let mut parts: Vec<Vec<Vec<ArrayRef>>> = vec![Vec::new(); self.aggregates.len()];
        let open: Vec<&mut Window> = match &mut self.windows {
            Windows::Table(w) => vec![w],
            Windows::Fixed { open, .. } => open.values_mut().collect(),
            Windows::Session(s) => {
                let state = s.snapshot(&self.aggregates)?;
                fired = vec![false; state.starts.len()];
                starts = state.starts;
                ends = state.ends;
                keys = state.keys.into_iter().map(|k| vec![k]).collect();
                parts = state.parts;
                Vec::new()
            }
        };
        for w in open {
            let total = w.groups.len();
            if total == 0 {
                continue;
            }
            let (window_keys, states) = w.groups.snapshot()?;
            for (i, fields) in states.into_iter().enumerate() {
                push_fields(&mut parts[i], fields);
            }
            push_fields(&mut keys, window_keys);
            starts.extend(std::iter::repeat_n(w.start, total));
            ends.extend(std::iter::repeat_n(w.end, total));
            fired.extend(std::iter::repeat_n(w.fired, total));
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
        for (i, arrays) in keys.into_iter().enumerate() {
            let c = concat(&arrays)?;
            fields.push(Field::new(format!("key_{i}"), c.data_type().clone(), true));
            columns.push(c);
        }
        for (i, per_field) in parts.into_iter().enumerate() {
            for (j, arrays) in per_field.into_iter().enumerate() {
                let c = concat(&arrays)?;
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
        let (key_columns, agg_columns) = state_columns(batch, self.keys.len(), self.aggregates.len())?;
        let keyed = self.key_schema.is_some();
        match &mut self.windows {
            Windows::Session(s) => s.restore(starts.values(), ends.values(), &key_columns, &agg_columns, &self.aggregates),
            Windows::Table(w) => {
                let states: Vec<Vec<ArrayRef>> = agg_columns.iter().map(|c| slice_columns(c, 0, n)).collect();
                w.fired |= fired.value(0);
                w.groups.merge(keyed.then_some(key_columns.as_slice()), n, &states)
            }
            Windows::Fixed { open, size, .. } => {
                // Rows of one window are adjacent (written window by window).
                for (from, to) in runs(starts.values()) {
                    let w = window_at(open, starts.value(from), *size, self.key_schema.as_ref(), &self.aggregates)?;
                    w.fired |= fired.value(from);
                    let keys = slice_columns(&key_columns, from, to - from);
                    let states: Vec<Vec<ArrayRef>> = agg_columns.iter().map(|c| slice_columns(c, from, to - from)).collect();
                    w.groups.merge(keyed.then_some(keys.as_slice()), to - from, &states)?;
                }
                Ok(())
            }
        }
    }
}

/// The GROUP BY key columns of `batch` (`keys` evaluated); `None` without GROUP BY keys.
///
/// Errors: a key expression fails on the batch.
fn key_columns(keys: &[Arc<dyn PhysicalExpr>], keyed: bool, batch: &RecordBatch) -> Result<Option<Vec<ArrayRef>>> {
    if !keyed {
        return Ok(None);
    }
    let columns = keys.iter().map(|k| k.evaluate(batch)?.into_array(batch.num_rows())).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(columns))
}

/// Per aggregate: its input arrays and its FILTER mask over `batch`.
///
/// Errors: an argument or FILTER expression fails on the batch.
fn inputs(aggregates: &[Aggregate], batch: &RecordBatch) -> Result<Vec<(Vec<ArrayRef>, Option<BooleanArray>)>> {
    let n = batch.num_rows();
    aggregates
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

/// The `key_<i>` columns of a state or partial batch and, per aggregate, its `agg<i>_<j>`
/// state fields in order.
///
/// Errors: an aggregate has no state fields in the batch (a checkpoint written before
/// the hidden `MAX` of `__rowtime` existed, or of another query).
fn state_columns(batch: &RecordBatch, keys: usize, aggregates: usize) -> Result<(Vec<ArrayRef>, Vec<Vec<ArrayRef>>)> {
    let key_columns: Vec<ArrayRef> = (0..keys).filter_map(|i| batch.column_by_name(&format!("key_{i}")).cloned()).collect();
    let mut agg_columns: Vec<Vec<ArrayRef>> = Vec::with_capacity(aggregates);
    for i in 0..aggregates {
        let prefix = format!("agg{i}_");
        let mut cols: Vec<(usize, ArrayRef)> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(c, f)| f.name().strip_prefix(&prefix).and_then(|j| j.parse::<usize>().ok()).map(|j| (j, batch.column(c).clone())))
            .collect();
        cols.sort_by_key(|(j, _)| *j);
        if cols.is_empty() {
            return Err(state::layout_error("window-aggregate"));
        }
        agg_columns.push(cols.into_iter().map(|(_, c)| c).collect());
    }
    Ok((key_columns, agg_columns))
}

/// The schema of the GROUP BY keys of `plan` over `input`: `key_<i>` typed as the key
/// expressions; `None` without GROUP BY keys.
///
/// Errors: a key expression has no type over `input`.
fn key_schema(plan: &AggregatePlan, input: &Schema) -> Result<Option<SchemaRef>> {
    if plan.keys.is_empty() {
        return Ok(None);
    }
    let fields = plan
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| Ok(Field::new(format!("key_{i}"), k.expr.return_field(input)?.data_type().clone(), true)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Arc::new(Schema::new(fields))))
}

/// The query's aggregates with the expressions that feed them, then the hidden `MAX` of
/// `__rowtime`: the row's time of each result is the largest `__rowtime` it aggregates
/// (ksqlDB's, that is Kafka Streams', rule for an aggregation's record timestamp).
///
/// Errors: `input` lacks `__rowtime`, or DataFusion cannot build the `MAX`.
fn aggregates(plan: &AggregatePlan, input: &Schema) -> Result<Vec<Aggregate>> {
    let rowtime = input.index_of(META_ROWTIME).map_err(|_| EngineError::Internal("no __rowtime column".into()))?;
    let mut aggregates: Vec<Aggregate> = plan
        .aggregates
        .iter()
        .map(|a| {
            let mut inputs = a.function.expressions();
            inputs.extend(a.function.order_bys().iter().map(|o| o.expr.clone()));
            Aggregate { function: a.function.clone(), inputs, filter: a.filter.clone() }
        })
        .collect();
    let rowtime_input: Arc<dyn PhysicalExpr> = Arc::new(Column::new(META_ROWTIME, rowtime));
    let max_rowtime =
        AggregateExprBuilder::new(max_udaf(), vec![rowtime_input.clone()]).schema(Arc::new(input.clone())).alias(META_ROWTIME).build()?;
    aggregates.push(Aggregate { function: Arc::new(max_rowtime), inputs: vec![rowtime_input], filter: None });
    Ok(aggregates)
}

/// The window of `open` that starts at `start`, created (with the end `start + size`)
/// if it is not open yet.
fn window_at<'a>(
    open: &'a mut BTreeMap<Timestamp, Window>,
    start: Timestamp,
    size: i64,
    key_schema: Option<&SchemaRef>,
    aggregates: &[Aggregate],
) -> Result<&'a mut Window> {
    Ok(match open.entry(start) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(Window { start, end: start.saturating_add(size), groups: Groups::new(key_schema, aggregates)?, fired: false })
        }
    })
}

/// The runs of equal values in `values`, as `(from, to)` row ranges (a state or partial
/// batch has the rows of one window adjacent).
fn runs(values: &[i64]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut from = 0;
    while from < values.len() {
        let mut to = from + 1;
        while to < values.len() && values[to] == values[from] {
            to += 1;
        }
        runs.push((from, to));
        from = to;
    }
    runs
}

/// Rows `from..from + len` of each of `columns`.
fn slice_columns(columns: &[ArrayRef], from: usize, len: usize) -> Vec<ArrayRef> {
    columns.iter().map(|c| c.slice(from, len)).collect()
}

/// Concatenates the arrays of one column.
fn concat(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    Ok(arrow::compute::concat(&refs)?)
}

/// Appends one accumulator's state `fields` (or one window's key columns) to `parts`
/// (one list per field).
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
