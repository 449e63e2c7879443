//! MATCH_RECOGNIZE (docs/DESIGN.md; SQL:2016 row pattern recognition, Flink's `WITHIN`): the
//! watermark-sort stage and the NFA matcher of RisingWave's and Flink's split, in one
//! operator.
//!
//! **Sort.** Incoming rows wait in a [`SortBuffer`] until the watermark passes them;
//! then they are released in event-time order (ties by source partition and offset) as
//! one batch. A row at or behind the watermark when it arrives cannot be put in order
//! any more: it is late (counted, and sent to the late-rows topic when there is one).
//! Because matching only sees rows in this order, out-of-order delivery can neither
//! create nor hide a match.
//!
//! **Match.** Over each released batch, the DEFINE conjuncts that read only the current
//! row are evaluated vectorized (one DataFusion `PhysicalExpr` call per variable); the
//! rows are appended to their partition key's history, and the [`Matcher`] runs over each
//! key that received rows. Conjuncts that read other rows, or running aggregates, are
//! evaluated per partial match on a one-row batch of navigation and aggregate columns. WITHIN bounds a match: a row extends it only
//! if its event time is less than the first row's plus WITHIN, and once the watermark
//! passes that bound the search ends, so partial matches and the rows they hold are freed.
//!
//! **Output.** The matches completed by one watermark are emitted together, ordered by
//! their last row (event time, partition, offset), with the MEASURES evaluated
//! vectorized over them: [`MatchRecognizePlan::output_schema`], then `__rowtime`
//! (Timestamp(ms)), the match's last row's event time (Flink's `MATCH_ROWTIME()`), which
//! a Kafka sink writes as the record timestamp.
//!
//! **State.** Rows are held as references into the released batches (a batch is freed
//! when no key holds one of its rows). `partial_matches` and `state_bytes` are reported
//! to the query's metrics after every watermark.
//!
//! **Checkpoints.** Barriers pass at once; the state is snapshotted with them: the
//! rows waiting in the sort buffer, each key's held rows with the row number its next
//! search starts at, and the match counts (see [`Operator::snapshot`] for the Arrow
//! layout). A partial match is not stored as such: the matcher is deterministic, so on
//! restore each key's search starts again at that row over the same held rows and
//! reaches the same partial matches.

mod key_table;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Weak};

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType, UInt64Type};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{HashMap, HashSet, ScalarValue};

use self::key_table::{KeyTable, Slot};
use super::decode::{META_OFFSET, META_PARTITION};
use super::late::LateRows;
use super::state;
use super::watermark::META_ROWTIME;
use crate::error::{EngineError, Result};
use crate::metrics::{MatchStateChange, QueryMetrics};
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};
use crate::partitioning::route_by_key;
use crate::rpr::matcher::{Classified, Match, Matcher, PartitionState, Scratch};
use crate::rpr::sort::SortBuffer;
use crate::sql::match_recognize::{MatchRecognizePlan, MeasureAggregate, Navigation};

/// Released batches are compacted only when they hold at least this many bytes of rows
/// no key holds any more (see [`MatchRecognize::compact`]).
const COMPACT_MIN_GARBAGE_BYTES: usize = 1 << 20;

/// A released batch that keys may still hold rows of.
struct Alive {
    released: Weak<Released>,
    /// Its Arrow memory (bytes).
    bytes: usize,
    rows: usize,
}

/// Rows released together, in event-time order, with what matching needs of them.
struct Released {
    /// The rows (the operator's input schema).
    batch: RecordBatch,
    /// Event time (ms) per row.
    rowtime: Vec<Timestamp>,
    /// Order of rows with equal event times: (source partition, offset).
    position: Vec<(i32, i64)>,
    /// Per pattern variable, its vectorized DEFINE conjuncts (`None`: true).
    defines: Vec<Option<BooleanArray>>,
}

/// One row held in state.
#[derive(Clone)]
struct RowRef {
    released: Arc<Released>,
    row: usize,
}

impl RowRef {
    fn rowtime(&self) -> Timestamp {
        self.released.rowtime[self.row]
    }

    fn order(&self) -> (Timestamp, i32, i64) {
        let (p, o) = self.released.position[self.row];
        (self.rowtime(), p, o)
    }
}

/// One partition key: its rows (numbered from 0 in event-time order; `rows[0]` is row
/// `base`), the matcher's state and the matches found so far.
#[derive(Default)]
struct KeyState {
    rows: VecDeque<RowRef>,
    base: usize,
    matcher: PartitionState,
    matches: i64,
}

impl KeyState {
    /// A new key, with room for one row: most keys of a rule like the fraud one hold a
    /// single row (a login waiting for a second), and a queue's first growth would make
    /// room for four.
    fn with_room_for_one_row() -> Self {
        KeyState { rows: VecDeque::with_capacity(1), ..KeyState::default() }
    }
}

/// A match ready to emit.
struct Found {
    order: (Timestamp, i32, i64),
    first: RowRef,
    number: i64,
    rows: Vec<(RowRef, usize)>,
    /// Per output row (one, or one per row of the match), per measure navigation.
    navigations: Vec<Vec<Option<RowRef>>>,
}

/// An input batch whose rows wait in the sort buffer.
struct Waiting {
    batch: RecordBatch,
    pending: usize,
}

/// The MATCH_RECOGNIZE operator (see the module docs).
pub struct MatchRecognize {
    plan: MatchRecognizePlan,
    input: SchemaRef,
    /// The plan's output schema and `__rowtime`.
    output: SchemaRef,
    rowtime: usize,
    /// The `__partition` column, when ties of event time are ordered by partition
    /// first (Kafka: offsets are per partition); `None` for a source whose offsets are
    /// one sequence ([`MatchRecognize::with_one_offset_sequence`]).
    partition: Option<usize>,
    offset: Option<usize>,
    late: LateRows,
    converter: Option<RowConverter>,
    sort: SortBuffer<(), (u64, usize)>,
    waiting: BTreeMap<u64, Waiting>,
    next_arrival: u64,
    keys: KeyTable<KeyState>,
    /// Keys with a search in progress, by the event time (ms) at which WITHIN ends that
    /// search (its first row's time + WITHIN - 1). A key without new rows can change only
    /// when the watermark reaches that time, so a watermark visits just the keys it
    /// reached, not every key with a search (which cost O(keys) per micro-batch). An
    /// entry may be stale (the key's search moved on, or the key was forgotten and its
    /// slot given to another): visiting it then changes nothing.
    deadlines: BTreeSet<(Timestamp, Slot)>,
    /// One NULL per input column, read by navigations that find no row.
    nulls: Vec<ArrayRef>,
    watermark: Timestamp,
    alive: Vec<Alive>,
    /// The matcher's working memory, shared by the keys.
    scratch: Scratch,
    metrics: Arc<QueryMetrics>,
    reported: MatchStateChange,
}

impl MatchRecognize {
    /// The operator for `plan` over batches of `input` (the source's columns, then the
    /// meta columns `__partition`, `__offset` and `__rowtime`).
    ///
    /// Errors: `input` lacks `__rowtime`, or the PARTITION BY types cannot be row-encoded.
    pub fn new(plan: &MatchRecognizePlan, input: &SchemaRef, metrics: Arc<QueryMetrics>) -> Result<Self> {
        let rowtime = input.index_of(META_ROWTIME).map_err(|_| EngineError::Internal("no __rowtime column".into()))?;
        let converter = if plan.partition_by.is_empty() {
            None
        } else {
            let fields = plan
                .partition_by
                .iter()
                .map(|k| Ok(SortField::new(k.expr.return_field(input)?.data_type().clone())))
                .collect::<Result<Vec<_>>>()?;
            Some(RowConverter::new(fields)?)
        };
        let mut output: Vec<Field> = plan.output_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        output.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
        Ok(MatchRecognize {
            plan: plan.clone(),
            input: input.clone(),
            output: Arc::new(Schema::new(output)),
            rowtime,
            partition: input.index_of(META_PARTITION).ok(),
            offset: input.index_of(META_OFFSET).ok(),
            late: LateRows::new(input, metrics.clone()),
            converter,
            sort: SortBuffer::default(),
            waiting: BTreeMap::new(),
            next_arrival: 0,
            keys: KeyTable::default(),
            deadlines: BTreeSet::new(),
            nulls: input.fields().iter().map(|f| new_null_array(f.data_type(), 1)).collect(),
            watermark: Timestamp::MIN,
            alive: Vec::new(),
            scratch: Scratch::default(),
            metrics,
            reported: MatchStateChange::default(),
        })
    }

    /// Takes the rows the watermark has passed out of the sort buffer, in order.
    fn release(&mut self) -> Result<Option<Arc<Released>>> {
        let rows: Vec<(u64, usize)> = self.sort.release(self.watermark).into_iter().flat_map(|(_, rows)| rows).collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let batch = self.waiting_rows(&rows)?;
        for (arrival, _) in &rows {
            if let Some(w) = self.waiting.get_mut(arrival) {
                w.pending -= 1;
                if w.pending == 0 {
                    self.waiting.remove(arrival);
                }
            }
        }
        self.released(batch).map(Some)
    }

    /// Orders rows of equal event time by offset alone: for a source whose offsets are
    /// one sequence across its partitions (a file's line numbers, its partitions being
    /// only the splits that parallel workers decode), so that ties come out in the
    /// input's own order whatever the parallelism (Flink's result at parallelism 1).
    pub fn with_one_offset_sequence(mut self) -> Self {
        self.partition = None;
        self
    }

    /// Rows in event-time order, with their DEFINE conjuncts evaluated, as held in state.
    fn released(&mut self, batch: RecordBatch) -> Result<Arc<Released>> {
        let rowtime: Vec<Timestamp> = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>().values().to_vec();
        let p = self.partition.map(|p| batch.column(p).as_primitive::<Int32Type>().clone());
        let o = self.offset.map(|o| batch.column(o).as_primitive::<Int64Type>().clone());
        let position: Vec<(i32, i64)> = (0..batch.num_rows())
            .map(|i| (p.as_ref().map(|p| p.value(i)).unwrap_or(0), o.as_ref().map(|o| o.value(i)).unwrap_or(i as i64)))
            .collect();
        let mut defines = Vec::with_capacity(self.plan.defines.len());
        for d in &self.plan.defines {
            defines.push(match &d.row {
                None => None,
                Some(e) => {
                    let value = e.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
                    Some(value.as_boolean().clone())
                }
            });
        }
        let released = Arc::new(Released { batch, rowtime, position, defines });
        self.alive.push(Alive {
            released: Arc::downgrade(&released),
            bytes: released.batch.get_array_memory_size(),
            rows: released.rowtime.len(),
        });
        Ok(released)
    }

    /// Appends released rows to their keys; returns the keys in order of first row.
    ///
    /// Errors: a PARTITION BY expression fails, or more than `u32::MAX` keys.
    fn distribute(&mut self, released: &Arc<Released>) -> Result<Vec<Slot>> {
        let n = released.batch.num_rows();
        let mut touched = Vec::new();
        match &self.converter {
            None => {
                let slot = self.keys.slot_or_insert(&[], KeyState::with_room_for_one_row)?;
                if let Some(state) = self.keys.get_mut(slot) {
                    state.rows.extend((0..n).map(|row| RowRef { released: released.clone(), row }));
                }
                touched.push(slot);
            }
            Some(converter) => {
                let arrays = self
                    .plan
                    .partition_by
                    .iter()
                    .map(|k| k.expr.evaluate(&released.batch).and_then(|v| v.into_array(n)))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let rows = converter.convert_columns(&arrays)?;
                for row in 0..n {
                    let slot = self.keys.slot_or_insert(rows.row(row).data(), KeyState::with_room_for_one_row)?;
                    let Some(state) = self.keys.get_mut(slot) else { continue };
                    // A key's first row of this batch: its last held row is older.
                    if state.rows.back().is_none_or(|r| !Arc::ptr_eq(&r.released, released)) {
                        touched.push(slot);
                    }
                    state.rows.push_back(RowRef { released: released.clone(), row });
                }
            }
        }
        Ok(touched)
    }

    /// Runs the matcher over one key's rows; returns its completed matches.
    fn match_key(&mut self, slot: Slot, end: bool, found: &mut Vec<Found>) -> Result<()> {
        let plan = &self.plan;
        let Some(state) = self.keys.get_mut(slot) else { return Ok(()) };
        let watermark = self.watermark;
        let KeyState { rows, base: base_ref, matcher, matches } = state;
        let base = *base_ref;
        let searching_from = matcher.search_start();
        let available = base + rows.len();
        let within = plan.within_ms;
        let row_at = |i: usize| rows.get(i.wrapping_sub(base));
        let finished = |start: usize| {
            end || match (within, row_at(start)) {
                (Some(w), Some(r)) => r.rowtime().saturating_add(w - 1) <= watermark,
                _ => false,
            }
        };
        let mut failure: Option<EngineError> = None;
        let mut define = |v: usize, row: usize, before: Classified<'_>| -> bool {
            let Some(r) = row_at(row) else { return false };
            if let Some(Some(b)) = r.released.defines.get(v) {
                if !b.is_valid(r.row) || !b.value(r.row) {
                    return false;
                }
            }
            if let (Some(w), Some(first)) = (within, before.first_row()) {
                if let Some(f) = row_at(first) {
                    if r.rowtime().saturating_sub(f.rowtime()) >= w {
                        return false;
                    }
                }
            }
            let Some(nav) = plan.defines.get(v).and_then(|d| d.navigated.as_ref()) else { return true };
            let mut classified = before.rows();
            classified.push((row, v));
            let mut columns: Vec<ArrayRef> = nav
                .navigations
                .iter()
                .map(|n| match n.resolve(&classified).and_then(&row_at) {
                    Some(src) => src.released.batch.column(n.column).slice(src.row, 1),
                    None => self.nulls[n.column].clone(),
                })
                .collect();
            let aggregates = nav.aggregates.iter().map(|a| {
                let rows: Vec<Option<&RowRef>> =
                    classified.iter().filter(|(_, v)| a.variable.is_none_or(|x| x == *v)).map(|(r, _)| row_at(*r)).collect();
                aggregate_value(&self.input, &self.nulls, a, &rows).and_then(|v| Ok(v.to_array()?))
            });
            let result = aggregates
                .collect::<Result<Vec<_>>>()
                .and_then(|a| {
                    columns.extend(a);
                    Ok(RecordBatch::try_new(nav.schema.clone(), std::mem::take(&mut columns))?)
                })
                .and_then(|b| Ok(nav.expr.expr.evaluate(&b)?.into_array(1)?));
            match result {
                Ok(a) => {
                    let a = a.as_boolean();
                    a.is_valid(0) && a.value(0)
                }
                Err(e) => {
                    failure.get_or_insert(e);
                    false
                }
            }
        };
        let m = Matcher::new(&plan.program, plan.skip).with_history(plan.history);
        let completed = m.advance(matcher, &mut self.scratch, available, finished, &mut define);
        if let Some(e) = failure {
            return Err(e);
        }
        for Match { rows: classified } in completed {
            *matches += 1;
            let Some(first) = classified.first().and_then(|(r, _)| row_at(*r)).cloned() else { continue };
            let Some(last) = classified.last().and_then(|(r, _)| row_at(*r)).cloned() else { continue };
            let navigations = if plan.all_rows {
                (1..=classified.len()).map(|k| resolve_all(&plan.measure_navigations, &classified[..k], &row_at)).collect()
            } else {
                vec![resolve_all(&plan.measure_navigations, &classified, &row_at)]
            };
            let rows_of = classified.iter().filter_map(|(r, v)| row_at(*r).map(|x| (x.clone(), *v))).collect();
            found.push(Found { order: last.order(), first, number: *matches, rows: rows_of, navigations });
        }
        // Forget rows no search can read again, keeping PREV's look-back.
        let keep_from = matcher.first_needed().saturating_sub(plan.max_prev).max(base);
        for _ in base..keep_from {
            rows.pop_front();
        }
        *base_ref = keep_from;
        if matcher.threads() > 0 {
            // A search still running since the last visit has its deadline indexed: it
            // leaves the index only when the watermark reaches it, which ends the search.
            let new_search = matcher.search_start().filter(|s| Some(*s) != searching_from);
            let first = new_search.and_then(|s| rows.get(s.wrapping_sub(keep_from)));
            if let (Some(w), Some(first)) = (within, first) {
                self.deadlines.insert((first.rowtime().saturating_add(w - 1), slot));
            }
        } else if rows.is_empty() && !plan.uses_match_number {
            // A key with nothing in flight is forgotten, unless MATCH_NUMBER() needs its
            // count: keys that stop sending cost nothing.
            self.keys.remove(slot);
        }
        Ok(())
    }

    /// The output rows of `found` (see the module docs).
    fn output(&self, found: &[Found]) -> Result<RecordBatch> {
        let plan = &self.plan;
        // One entry per output row: (match, rows of the match up to it).
        let mut out_rows: Vec<(&Found, usize)> = Vec::new();
        for f in found {
            if plan.all_rows {
                out_rows.extend((1..=f.rows.len()).map(|k| (f, k)));
            } else {
                out_rows.push((f, f.rows.len()));
            }
        }
        let n = out_rows.len();
        let mut measure_columns: Vec<ArrayRef> = Vec::new();
        for (i, nav) in plan.measure_navigations.iter().enumerate() {
            let refs: Vec<Option<&RowRef>> = out_rows
                .iter()
                .map(|(f, k)| {
                    let per_row = if plan.all_rows { k - 1 } else { 0 };
                    f.navigations.get(per_row).and_then(|v| v.get(i)).and_then(Option::as_ref)
                })
                .collect();
            measure_columns.push(gather(&self.nulls, nav.column, &refs)?);
        }
        for a in &plan.measure_aggregates {
            let mut values = Vec::with_capacity(n);
            for (f, k) in &out_rows {
                let rows: Vec<Option<&RowRef>> =
                    f.rows[..*k].iter().filter(|(_, v)| a.variable.is_none_or(|x| x == *v)).map(|(r, _)| Some(r)).collect();
                values.push(aggregate_value(&self.input, &self.nulls, a, &rows)?);
            }
            let field = a.function.field();
            measure_columns.push(if values.is_empty() {
                new_null_array(field.data_type(), 0)
            } else {
                ScalarValue::iter_to_array(values)?
            });
        }
        measure_columns.push(Arc::new(Int64Array::from_iter_values(out_rows.iter().map(|(f, _)| f.number))));
        measure_columns.push(Arc::new(StringArray::from_iter(
            out_rows.iter().map(|(f, k)| f.rows.get(k - 1).and_then(|(_, v)| plan.program.variables.get(*v)).map(|v| v.to_uppercase())),
        )));
        let match_rowtime: ArrayRef = Arc::new(TimestampMillisecondArray::from_iter_values(
            out_rows.iter().map(|(f, k)| f.rows.get(k - 1).map(|(r, _)| r.rowtime()).unwrap_or(Timestamp::MIN)),
        ));
        measure_columns.push(match_rowtime.clone());
        let measure_batch = RecordBatch::try_new(plan.measure_schema.clone(), measure_columns)?;

        let mut columns: Vec<ArrayRef> = Vec::with_capacity(plan.output_schema.fields().len());
        let firsts: Vec<Option<&RowRef>> = out_rows.iter().map(|(f, _)| Some(&f.first)).collect();
        for k in &plan.partition_by {
            let column = self.input.index_of(&k.name)?;
            columns.push(gather(&self.nulls, column, &firsts)?);
        }
        for m in &plan.measures {
            columns.push(m.expr.evaluate(&measure_batch)?.into_array(n)?);
        }
        let current: Vec<Option<&RowRef>> = out_rows.iter().map(|(f, k)| f.rows.get(k - 1).map(|(r, _)| r)).collect();
        for &c in &plan.copied_columns {
            columns.push(gather(&self.nulls, c, &current)?);
        }
        let mut columns = columns
            .into_iter()
            .zip(plan.output_schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow::compute::cast(&c, f.data_type()) })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        columns.push(match_rowtime);
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }

    /// Releases what the watermark allows, matches, emits.
    fn advance(&mut self, out: &mut Collector) -> Result<()> {
        let end = self.watermark == Timestamp::MAX;
        let mut keys: Vec<Slot> = match self.release()? {
            Some(released) => self.distribute(&released)?,
            None => Vec::new(),
        };
        let mut seen: HashSet<Slot> = keys.iter().copied().collect();
        if end {
            // The input ended: every search ends now (a key restored from a checkpoint
            // starts its search again first).
            keys.extend(self.keys.iter().map(|(slot, _, _)| slot).filter(|slot| !seen.contains(slot)));
            self.deadlines.clear();
        } else if let Some(bound) = self.watermark.checked_add(1) {
            // Keys whose WITHIN the watermark reached (see `deadlines`).
            let later = self.deadlines.split_off(&(bound, 0));
            for (_, slot) in std::mem::replace(&mut self.deadlines, later) {
                if self.keys.get(slot).is_some() && seen.insert(slot) {
                    keys.push(slot);
                }
            }
        }
        let mut found = Vec::new();
        for slot in keys {
            self.match_key(slot, end, &mut found)?;
        }
        if !found.is_empty() {
            found.sort_by_key(|f| f.order);
            out.emit(self.output(&found)?);
        }
        Ok(())
    }

    fn report_state(&mut self) {
        self.alive.retain(|a| a.released.strong_count() > 0);
        // Released batches still referenced, batches waiting for the watermark, and the
        // keys: the key table, then per key its bytes, its row queue and its search's heap.
        let (mut keys, mut held, mut partial) = (self.keys.table_bytes(), 0usize, 0usize);
        for (_, k, s) in self.keys.iter() {
            keys += k.len() + s.rows.capacity() * std::mem::size_of::<RowRef>() + s.matcher.heap_bytes();
            held += s.rows.len();
            partial += s.matcher.threads();
        }
        let bytes: usize = self.alive.iter().map(|a| a.bytes).sum::<usize>()
            + self.waiting.values().map(|w| w.batch.get_array_memory_size()).sum::<usize>()
            + keys;
        let now = MatchStateChange {
            partial_matches: partial as i64,
            keys: self.keys.len() as i64,
            held_rows: held as i64,
            state_bytes: bytes as i64,
        };
        let was = self.reported;
        self.metrics.adjust_matches(MatchStateChange {
            partial_matches: now.partial_matches - was.partial_matches,
            keys: now.keys - was.keys,
            held_rows: now.held_rows - was.held_rows,
            state_bytes: now.state_bytes - was.state_bytes,
        });
        self.reported = now;
    }

    /// Shrinks the key table when three quarters of it are empty, and copies the rows
    /// keys still hold out of released batches that are mostly free (keys hold less
    /// than a quarter of their rows) into one new batch, so those batches are dropped.
    ///
    /// A released batch lives while any key holds one of its rows, and a search can hold
    /// a row for the whole WITHIN: without this, a few long searches keep every batch of
    /// the last WITHIN alive (the fraud rule over 10,000 accounts: 32 MB for 14,000 held
    /// rows). Done when the free rows of those batches reach half of all released bytes
    /// (and at least [`COMPACT_MIN_GARBAGE_BYTES`]); a copy frees at least three times
    /// the bytes it copies (and everything copied is freed once), so it copies at most
    /// half as many rows as the operator reads (the fraud rule: about 5% more CPU, 20%
    /// less peak RSS; a third-held rule cost 10%). Rows keep their event time, position
    /// and DEFINE results; the keys' row numbers do not change, so the matcher's state
    /// is untouched.
    ///
    /// Errors: Arrow cannot interleave the columns (a bug).
    fn compact(&mut self) -> Result<()> {
        // The key table keeps the room of its largest moment (a burst of accounts) unless
        // told: give it back once three quarters of it are empty.
        self.keys.shrink();
        self.alive.retain(|a| a.released.strong_count() > 0);
        let mut sources: Vec<Arc<Released>> = Vec::new();
        let mut slots: HashMap<*const Released, usize> = HashMap::new();
        let (mut total, mut garbage) = (0usize, 0usize);
        for a in &self.alive {
            total += a.bytes;
            // Every held row is one strong reference (nothing else keeps one between
            // watermarks).
            let held = a.released.strong_count();
            if held * 4 < a.rows {
                if let Some(r) = a.released.upgrade() {
                    garbage += a.bytes - a.bytes * held / a.rows;
                    slots.insert(Arc::as_ptr(&r), sources.len());
                    sources.push(r);
                }
            }
        }
        if garbage < COMPACT_MIN_GARBAGE_BYTES.max(total / 2) {
            return Ok(());
        }
        let mut indices: Vec<(usize, usize)> = Vec::new();
        for (_, _, state) in self.keys.iter() {
            indices.extend(state.rows.iter().filter_map(|r| slots.get(&Arc::as_ptr(&r.released)).map(|&slot| (slot, r.row))));
        }
        let interleave = |column: &dyn Fn(&Released) -> Option<&dyn Array>| -> Result<Option<ArrayRef>> {
            let arrays: Vec<&dyn Array> = sources.iter().filter_map(|s| column(s)).collect();
            if arrays.len() < sources.len() {
                return Ok(None);
            }
            Ok(Some(arrow::compute::interleave(&arrays, &indices)?))
        };
        let mut columns = Vec::with_capacity(self.input.fields().len());
        for c in 0..self.input.fields().len() {
            let column = interleave(&|s: &Released| Some(s.batch.column(c).as_ref()))?;
            columns.push(column.ok_or_else(|| EngineError::Internal("a released batch lacks a column".into()))?);
        }
        let mut defines = Vec::with_capacity(self.plan.defines.len());
        for v in 0..self.plan.defines.len() {
            let define = interleave(&|s: &Released| s.defines.get(v).and_then(Option::as_ref).map(|b| b as &dyn Array))?;
            defines.push(define.map(|d| d.as_boolean().clone()));
        }
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(indices.len()));
        let batch = RecordBatch::try_new_with_options(self.input.clone(), columns, &options)?;
        let rowtime = indices.iter().map(|&(s, r)| sources[s].rowtime[r]).collect();
        let position = indices.iter().map(|&(s, r)| sources[s].position[r]).collect();
        let copy = Arc::new(Released { batch, rowtime, position, defines });
        self.alive.push(Alive { released: Arc::downgrade(&copy), bytes: copy.batch.get_array_memory_size(), rows: indices.len() });
        let mut next = 0;
        for state in self.keys.states_mut() {
            for r in state.rows.iter_mut() {
                if slots.contains_key(&Arc::as_ptr(&r.released)) {
                    *r = RowRef { released: copy.clone(), row: next };
                    next += 1;
                }
            }
        }
        drop(sources);
        self.alive.retain(|a| a.released.strong_count() > 0);
        Ok(())
    }
}

/// Column `column` of the given rows (NULL where there is none, read from `nulls`: one
/// NULL per input column).
fn gather(nulls: &[ArrayRef], column: usize, rows: &[Option<&RowRef>]) -> Result<ArrayRef> {
    let mut sources: Vec<&Arc<Released>> = Vec::new();
    let mut indices = Vec::with_capacity(rows.len());
    for r in rows {
        match r {
            None => indices.push((0, 0)),
            Some(r) => {
                let slot = match sources.iter().position(|s| Arc::ptr_eq(s, &r.released)) {
                    Some(s) => s,
                    None => {
                        sources.push(&r.released);
                        sources.len() - 1
                    }
                };
                indices.push((slot + 1, r.row));
            }
        }
    }
    let Some(null) = nulls.get(column) else { return Err(EngineError::Internal(format!("no column {column}"))) };
    let mut arrays: Vec<&dyn Array> = vec![null.as_ref()];
    arrays.extend(sources.iter().map(|s| s.batch.column(column).as_ref()));
    Ok(arrow::compute::interleave(&arrays, &indices)?)
}

/// `aggregate` over `rows` (batches of schema `input`) with a fresh DataFusion accumulator.
fn aggregate_value(input: &SchemaRef, nulls: &[ArrayRef], aggregate: &MeasureAggregate, rows: &[Option<&RowRef>]) -> Result<ScalarValue> {
    let columns = (0..input.fields().len()).map(|c| gather(nulls, c, rows)).collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::try_new(input.clone(), columns)?;
    let args = aggregate
        .function
        .expressions()
        .iter()
        .map(|e| e.evaluate(&batch).and_then(|v| v.into_array(batch.num_rows())))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut acc = aggregate.function.create_accumulator()?;
    if batch.num_rows() > 0 {
        acc.update_batch(&args)?;
    }
    Ok(acc.evaluate()?)
}

/// Every navigation resolved to a row, over the classified rows.
fn resolve_all<'r>(
    navigations: &[Navigation],
    classified: &[(usize, usize)],
    row_at: &impl Fn(usize) -> Option<&'r RowRef>,
) -> Vec<Option<RowRef>> {
    navigations.iter().map(|n| n.resolve(classified).and_then(row_at).cloned()).collect()
}

impl Operator for MatchRecognize {
    fn name(&self) -> &'static str {
        "match_recognize"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let rowtime = batch.column(self.rowtime).as_primitive::<TimestampMillisecondType>().clone();
        let partition = self.partition.map(|p| batch.column(p).as_primitive::<Int32Type>().clone());
        let offset = self.offset.map(|o| batch.column(o).as_primitive::<Int64Type>().clone());
        let mut late = Vec::new();
        let mut pending = 0;
        for row in 0..batch.num_rows() {
            let ts = rowtime.value(row);
            if ts <= self.watermark {
                late.push(row as u32);
                continue;
            }
            let p = partition.as_ref().map(|p| p.value(row)).unwrap_or(0);
            let o = offset.as_ref().map(|o| o.value(row)).unwrap_or(row as i64);
            self.sort.push((), ts, p, o, (arrival, row));
            pending += 1;
        }
        self.late.send(&batch, &late, out)?;
        if pending > 0 {
            self.waiting.insert(arrival, Waiting { batch, pending });
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.advance(out)?;
            self.compact()?;
        }
        out.watermark(watermark);
        self.report_state();
        Ok(())
    }

    /// Four batches:
    ///
    /// 1. `watermark Int64`: one row, the operator's watermark (ms).
    /// 2. One row per partition key: `key_<i>` (the PARTITION BY values, typed as the
    ///    expressions), `base UInt64` (the number of the key's first held row; rows are
    ///    numbered from 0 per key in event-time order), `next_start UInt64` (the row the
    ///    key's next or current search starts at), `matches Int64` (matches found, for
    ///    MATCH_NUMBER()), `rows UInt64` (held rows).
    /// 3. The held rows of every key, in key order (batch 2) and event-time order, with
    ///    the operator's input schema.
    /// 4. The rows waiting in the sort buffer for the watermark, input schema, in order.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let mut key_bytes: Vec<&[u8]> = Vec::with_capacity(self.keys.len());
        let (mut bases, mut starts, mut matches, mut counts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut held: Vec<&RowRef> = Vec::new();
        let mut ordered: Vec<(&[u8], &KeyState)> = self.keys.iter().map(|(_, k, s)| (k, s)).collect();
        ordered.sort_by(|a, b| a.0.cmp(b.0));
        for (key, state) in ordered {
            key_bytes.push(key);
            bases.push(state.base as u64);
            starts.push(state.matcher.first_needed() as u64);
            matches.push(state.matches);
            counts.push(state.rows.len() as u64);
            held.extend(state.rows.iter());
        }
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(converter) = &self.converter {
            let parser = converter.parser();
            for (i, c) in converter.convert_rows(key_bytes.iter().map(|k| parser.parse(k)))?.into_iter().enumerate() {
                fields.push(Field::new(format!("key_{i}"), c.data_type().clone(), true));
                columns.push(c);
            }
        }
        for (name, values) in [("base", bases), ("next_start", starts), ("rows", counts)] {
            fields.push(Field::new(name, DataType::UInt64, false));
            columns.push(Arc::new(UInt64Array::from(values)));
        }
        fields.push(Field::new("matches", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(matches)));
        let keys = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let refs: Vec<Option<&RowRef>> = held.into_iter().map(Some).collect();
        let held = self.rows_of(&refs)?;
        let waiting_rows: Vec<(u64, usize)> = self.sort.items().map(|(_, item)| *item).collect();
        let waiting = self.waiting_rows(&waiting_rows)?;
        Ok(OperatorState { batches: vec![state::scalar("watermark", self.watermark)?, keys, held, waiting] })
    }

    fn restore(&mut self, states: Vec<OperatorState>, shard: Option<Shard>) -> Result<()> {
        let mut watermark: Option<Timestamp> = None;
        let mut waiting: Vec<RecordBatch> = Vec::new();
        for s in &states {
            let [w, keys, held, pending] = s.batches.as_slice() else { return Err(state::layout_error(self.name())) };
            let w = state::read_scalar(w, "watermark")?;
            watermark = Some(watermark.map_or(w, |x| x.min(w)));
            self.restore_keys(keys, held, shard)?;
            let partition_keys = self.partition_keys(pending)?;
            waiting.push(state::keep_shard(pending, &partition_keys, shard)?);
        }
        if let Some(w) = watermark {
            self.watermark = self.watermark.max(w);
        }
        // Rows waiting for the watermark go back into the sort buffer (all are after it).
        let mut ignored = Collector::default();
        for batch in waiting {
            if batch.num_rows() > 0 {
                self.on_batch(batch, &mut ignored)?;
            }
        }
        self.report_state();
        Ok(())
    }
}

impl MatchRecognize {
    /// The PARTITION BY values of `batch` (input schema), one array per expression.
    fn partition_keys(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        Ok(self
            .plan
            .partition_by
            .iter()
            .map(|k| k.expr.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// The given rows as one batch of the input schema.
    fn rows_of(&self, rows: &[Option<&RowRef>]) -> Result<RecordBatch> {
        let columns = (0..self.input.fields().len()).map(|c| gather(&self.nulls, c, rows)).collect::<Result<Vec<_>>>()?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(self.input.clone(), columns, &options)?)
    }

    /// The sort buffer's rows `(arrival, row)` as one batch of the input schema.
    fn waiting_rows(&self, rows: &[(u64, usize)]) -> Result<RecordBatch> {
        let mut slots: Vec<u64> = rows.iter().map(|r| r.0).collect();
        slots.sort_unstable();
        slots.dedup();
        let sources: Vec<&RecordBatch> = slots.iter().filter_map(|a| self.waiting.get(a).map(|w| &w.batch)).collect();
        if sources.len() != slots.len() {
            return Err(EngineError::Internal("a waiting row's batch is gone".into()));
        }
        if sources.is_empty() {
            return Ok(RecordBatch::new_empty(self.input.clone()));
        }
        let indices: Vec<(usize, usize)> = rows.iter().map(|(a, r)| (slots.binary_search(a).unwrap_or(0), *r)).collect();
        let mut columns = Vec::with_capacity(self.input.fields().len());
        for c in 0..self.input.fields().len() {
            let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(c).as_ref()).collect();
            columns.push(arrow::compute::interleave(&arrays, &indices)?);
        }
        Ok(RecordBatch::try_new(self.input.clone(), columns)?)
    }

    /// Rebuilds the keys of batches 2 and 3 of a snapshot, keeping `shard`'s keys.
    fn restore_keys(&mut self, keys: &RecordBatch, held: &RecordBatch, shard: Option<Shard>) -> Result<()> {
        let key_columns: Vec<ArrayRef> = (0..self.plan.partition_by.len())
            .map(|i| keys.column_by_name(&format!("key_{i}")).cloned().ok_or_else(|| state::layout_error("match_recognize")))
            .collect::<Result<_>>()?;
        let route = route_by_key(&key_columns, keys.num_rows(), shard.map_or(1, |s| s.count))?;
        let bases = state::column::<UInt64Type>(keys, "base")?.clone();
        let starts = state::column::<UInt64Type>(keys, "next_start")?.clone();
        let counts = state::column::<UInt64Type>(keys, "rows")?.clone();
        let matches = state::column::<Int64Type>(keys, "matches")?.clone();
        let encoded = match &self.converter {
            Some(c) => Some(c.convert_columns(&key_columns)?),
            None => None,
        };
        // Keep the held rows of this shard's keys, as one released batch.
        let mut keep: Vec<bool> = Vec::with_capacity(held.num_rows());
        for (k, worker) in route.iter().enumerate() {
            let mine = shard.is_none_or(|s| *worker == s.index);
            keep.extend(std::iter::repeat_n(mine, counts.value(k) as usize));
        }
        if keep.len() != held.num_rows() {
            return Err(state::layout_error("match_recognize"));
        }
        let held = arrow::compute::filter_record_batch(held, &BooleanArray::from(keep))?;
        let released = self.released(held)?;
        let mut row = 0;
        for (k, worker) in route.iter().enumerate() {
            if shard.is_some_and(|s| *worker != s.index) {
                continue;
            }
            let key: &[u8] = encoded.as_ref().map(|e| e.row(k).data()).unwrap_or_default();
            let n = counts.value(k) as usize;
            let state = KeyState {
                rows: (row..row + n).map(|r| RowRef { released: released.clone(), row: r }).collect(),
                base: bases.value(k) as usize,
                matcher: PartitionState::starting_at(starts.value(k) as usize),
                matches: matches.value(k),
            };
            row += n;
            let held = !state.rows.is_empty();
            let slot = self.keys.slot_or_insert(key, || state)?;
            if held {
                // The search starts again at the next advance.
                self.deadlines.insert((Timestamp::MIN, slot));
            }
        }
        Ok(())
    }
}
