//! Local pre-aggregation before the key exchange: the first phase of Flink's local-global
//! (two-phase) aggregation (`table.optimizer.agg-phase-strategy`), docs/DESIGN.md,
//! pipeline shapes.
//!
//! A front worker aggregates each micro-batch on its own, per window and group, and sends
//! the accumulators' partial states instead of the rows; the [`WindowAggregate`] behind
//! the exchange (built with [`WindowAggregate::merging_partials`]) merges them
//! (DataFusion's `state` / `merge_batch`, as its own partial and final aggregation). With
//! few groups a batch of thousands of rows crosses the exchange as a handful of rows, and
//! a hot key no longer sends every one of its rows to one worker.
//!
//! Where a batch has more groups than half its rows, partial states would only add work:
//! such a batch goes on as rows, and so do the next few, before the next try (as
//! DataFusion skips its partial aggregation). Behind the exchange both are read: a batch
//! whose schema is marked [`PARTIAL`] is partial states, any other is rows.
//!
//! Nothing is kept between batches, so barriers and watermarks pass at once and there is
//! no state to checkpoint. Which rows are late is still decided behind the exchange, by
//! the window's own watermark: every row of a partial is in the same window, so the
//! window's decision is each row's. A partial whose window is closed counts the rows it
//! stands for as late ([`PARTIAL_ROWS`]). Only where late rows go to a topic
//! (`'late-rows.topic'`) are rows needed behind the exchange, and there the planner does
//! not pre-aggregate.
//!
//! [`WindowAggregate`]: super::WindowAggregate
//! [`WindowAggregate::merging_partials`]: super::WindowAggregate::merging_partials

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, TimestampMillisecondType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;

use super::groups::{Aggregate, Groups};
use super::{aggregates, concat, inputs, key_columns, key_schema, push_fields, TABLE_BOUNDS};
use crate::error::{EngineError, Result};
use crate::operator::{Collector, Operator, Timestamp};
use crate::operators::watermark::META_ROWTIME;
use crate::sql::ast::WindowKind;
use crate::sql::planner::AggregatePlan;

/// In a partial batch, per window: on the window's first row, the number of rows whose
/// last window (the one that closes last) it is; 0 on its other rows. Behind the
/// exchange a closed window's sum is its late rows: a row is late when its last window is
/// closed (the earlier ones close first).
pub const PARTIAL_ROWS: &str = "__rows";

/// The schema metadata key marking a batch of partial states (a column name could be a
/// user's).
pub const PARTIAL: &str = "eddy.partial";

/// The local aggregation of a front worker (see the module docs).
///
/// Input: the front's rows (with `__rowtime`). Output, per batch, the batch itself (see
/// the module docs) or one row per window and group of the batch's rows, windows in
/// order of `window_start`: `key_<i>` (the GROUP BY key values, typed as its
/// expressions), `window_start Int64` (ms; `i64::MIN` for a non-windowed GROUP BY), `agg<i>_<j>` (field `j` of aggregate `i`'s accumulator state,
/// the hidden `MAX(__rowtime)` last, as in [`super::WindowAggregate`]'s checkpoints), and
/// [`PARTIAL_ROWS`] `Int64`.
pub struct LocalAggregate {
    /// `(size, advance)` of tumbling or hopping windows (ms); `None` for a non-windowed
    /// GROUP BY.
    window: Option<(i64, i64)>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_schema: Option<arrow::datatypes::SchemaRef>,
    aggregates: Vec<Aggregate>,
    rowtime: usize,
    /// Emptied groups, reused by the next batch's windows (not created anew per batch).
    pool: Vec<Groups>,
    /// Batches still to pass on as rows: set when a batch had more groups than half its
    /// rows, where partial states would only add work.
    pass_rows: u32,
}

/// A batch with more groups than this share of its rows (of the rows added to windows:
/// each row once per hopping window it is in) is passed on as rows, and so are
/// the next [`PASS_ROWS_BATCHES`] batches (DataFusion skips its partial aggregation so,
/// `skip_partial_aggregation_probe_ratio_threshold`).
const MAX_GROUPS_PER_ROW: f64 = 0.5;

/// Batches passed on as rows after a batch with too many groups, before trying again.
const PASS_ROWS_BATCHES: u32 = 32;

impl LocalAggregate {
    /// Whether `plan` is pre-aggregated before its key exchange: tumbling and hopping
    /// windows and a non-windowed GROUP BY (session windows merge per row), with no
    /// DISTINCT aggregate (its partial state is as large as its input) and no
    /// `'late-rows.topic'` (`late_rows_to_topic`: late rows must reach the exchange as
    /// rows).
    pub fn applies(plan: &AggregatePlan, late_rows_to_topic: bool) -> bool {
        let windows = !matches!(plan.window.as_ref().map(|w| w.kind), Some(WindowKind::Session { .. }));
        windows && !late_rows_to_topic && plan.aggregates.iter().all(|a| !a.function.is_distinct())
    }

    /// The local aggregation of `plan` over batches of `input`.
    ///
    /// Errors: session windows, `input` lacks `__rowtime`, or DataFusion cannot group by
    /// the key types.
    pub fn new(plan: &AggregatePlan, input: &Schema) -> Result<Self> {
        let window = match plan.window.as_ref().map(|w| w.kind) {
            None => None,
            Some(WindowKind::Tumbling { size }) => Some((size, size)),
            Some(WindowKind::Hopping { size, advance }) => Some((size, advance)),
            Some(WindowKind::Session { .. }) => return Err(EngineError::Internal("session windows are not pre-aggregated".into())),
        };
        let rowtime = input.index_of(META_ROWTIME).map_err(|_| EngineError::Internal("no __rowtime column".into()))?;
        Ok(LocalAggregate {
            window,
            keys: plan.keys.iter().map(|k| k.expr.clone()).collect(),
            key_schema: key_schema(plan, input)?,
            aggregates: aggregates(plan, input)?,
            rowtime,
            pool: Vec::new(),
            pass_rows: 0,
        })
    }

    /// The key columns of a partial batch, for the key exchange to route by: `key_<i>`
    /// at position `i` of `keys` keys, so a group's partials go where its rows go.
    pub fn partial_keys(keys: usize) -> Vec<Arc<dyn PhysicalExpr>> {
        (0..keys).map(|i| Arc::new(Column::new(&format!("key_{i}"), i)) as Arc<dyn PhysicalExpr>).collect()
    }

    /// Whether `batch` holds partial states (its schema is marked [`PARTIAL`]), else rows.
    pub fn is_partial(batch: &RecordBatch) -> bool {
        batch.schema_ref().metadata().contains_key(PARTIAL)
    }

    /// The windows of `batch`'s rows: per `window_start`, the rows in it (`None`: all
    /// rows) and how many of them have it as their last window.
    fn windows_of(&self, batch: &RecordBatch) -> Vec<(Timestamp, Option<UInt32Array>, i64)> {
        let n = batch.num_rows();
        let Some((size, advance)) = self.window else { return vec![(TABLE_BOUNDS.0, None, n as i64)] };
        let times = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>().values();
        let first = times.first().map(|t| t - t.rem_euclid(size)).unwrap_or(0);
        if advance == size && times.iter().all(|t| t - t.rem_euclid(size) == first) {
            return vec![(first, None, n as i64)];
        }
        let mut by_window: BTreeMap<Timestamp, (Vec<u32>, i64)> = BTreeMap::new();
        for (r, &ts) in times.iter().enumerate() {
            let last = ts - ts.rem_euclid(advance);
            let mut start = last;
            while start > ts.saturating_sub(size) {
                let entry = by_window.entry(start).or_default();
                entry.0.push(r as u32);
                entry.1 += i64::from(start == last);
                match start.checked_sub(advance) {
                    Some(s) => start = s,
                    None => break,
                }
            }
        }
        by_window.into_iter().map(|(start, (rows, last))| (start, (rows.len() != n).then(|| UInt32Array::from(rows)), last)).collect()
    }
}

impl Operator for LocalAggregate {
    fn name(&self) -> &'static str {
        "local-aggregate"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        if self.pass_rows > 0 {
            self.pass_rows -= 1;
            out.emit(batch);
            return Ok(());
        }
        let keys = key_columns(&self.keys, self.key_schema.is_some(), &batch)?;
        let inputs = inputs(&self.aggregates, &batch)?;
        let mut starts: Vec<Timestamp> = Vec::new();
        let mut counts: Vec<i64> = Vec::new();
        let mut key_parts: Vec<Vec<ArrayRef>> = Vec::new();
        let mut state_parts: Vec<Vec<Vec<ArrayRef>>> = vec![Vec::new(); self.aggregates.len()];
        // Rows added to windows: a row of hopping windows is added to each of its windows.
        let mut added = 0;
        for (start, rows, last) in self.windows_of(&batch) {
            added += rows.as_ref().map_or(n, |r| r.len());
            let mut groups = match self.pool.pop() {
                Some(g) => g,
                None => Groups::new(self.key_schema.as_ref(), &self.aggregates)?,
            };
            groups.update(keys.as_deref(), rows.as_ref(), &inputs, n)?;
            let len = groups.len();
            let (window_keys, states) = groups.drain()?;
            self.pool.push(groups);
            if len == 0 {
                continue;
            }
            starts.extend(std::iter::repeat_n(start, len));
            counts.push(last);
            counts.extend(std::iter::repeat_n(0, len - 1));
            push_fields(&mut key_parts, window_keys);
            for (parts, fields) in state_parts.iter_mut().zip(states) {
                push_fields(parts, fields);
            }
        }
        if starts.is_empty() {
            return Ok(());
        }
        if starts.len() as f64 > added as f64 * MAX_GROUPS_PER_ROW {
            // Few rows per group: the rows themselves are cheaper to send and to merge.
            self.pass_rows = PASS_ROWS_BATCHES;
            out.emit(batch);
            return Ok(());
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (i, arrays) in key_parts.iter().enumerate() {
            let c = concat(arrays)?;
            fields.push(Field::new(format!("key_{i}"), c.data_type().clone(), true));
            columns.push(c);
        }
        fields.push(Field::new("window_start", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(starts)));
        for (i, per_field) in state_parts.iter().enumerate() {
            for (j, arrays) in per_field.iter().enumerate() {
                let c = concat(arrays)?;
                fields.push(Field::new(format!("agg{i}_{j}"), c.data_type().clone(), true));
                columns.push(c);
            }
        }
        fields.push(Field::new(PARTIAL_ROWS, DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(counts)));
        let schema = Schema::new(fields).with_metadata([(PARTIAL.to_string(), "true".to_string())].into_iter().collect());
        out.emit(RecordBatch::try_new(Arc::new(schema), columns)?);
        Ok(())
    }
}
