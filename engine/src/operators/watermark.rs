//! Watermarks: reads each row's event time, drops rows whose event time cannot be read
//! (malformed, by the error policy), and derives the watermark (docs/DESIGN.md, time).
//!
//! Per source partition the watermark is the largest event time seen minus the declared
//! delay (Flink's bounded out-of-orderness). The operator's watermark is the minimum over
//! partitions, skipping partitions idle for `'scan.watermark.idle-timeout'` (processing
//! time; Flink's `withIdleness`). A partition that has sent nothing yet holds time back
//! until it is idle too, so a slow partition at startup does not make the others' rows late.
//! When every partition is idle, the most advanced one sets the watermark: unlike Flink,
//! which then stops advancing, Eddy closes the windows of a burst that has ended.
//! Watermarks only move forward and are emitted in-band after the batch that advanced them.
//!
//! Input: the relation's columns plus [`super::MetaColumns::Position`] (or `Record`).
//! Output: the same plus `__rowtime Timestamp(ms)` (the event time), never NULL.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;

use super::decode::{META_OFFSET, META_PARTITION, META_TIMESTAMP};
use super::state;
use crate::catalog::EventTime;
use crate::error::{EngineError, Result};
use crate::format::java_time::{java_to_chrono, CompiledFormat};
use crate::metrics::QueryMetrics;
use crate::operator::{Collector, Operator, OperatorState, Shard, Timestamp};
use crate::options::ErrorPolicy;

/// Name of the event-time column the watermark operator appends.
pub const META_ROWTIME: &str = "__rowtime";

/// How a row's event time is read.
#[derive(Debug, Clone)]
enum TimeSource {
    /// A TIMESTAMP column (any unit).
    Timestamp(usize),
    /// A BIGINT / INT column of epoch milliseconds (ksqlDB).
    EpochMillis(usize),
    /// A VARCHAR column: ISO-8601, or a chrono format translated from Java's pattern.
    Text(usize, Option<CompiledFormat>),
    /// The Kafka record timestamp (ksqlDB ROWTIME).
    Record(usize),
}

#[derive(Debug, Clone, Copy)]
struct PartitionTime {
    /// Largest event time seen (ms); `i64::MIN` before the first row.
    max: Timestamp,
    /// Wall-clock time of the last row (ms).
    last_active: Timestamp,
    /// The source's total backpressure time (ms) at `last_active`.
    stalled_at_active: i64,
    /// No row for the idle timeout: ignored by the minimum until its next row.
    idle: bool,
}

/// The watermark operator (see the module docs).
pub struct Watermarks {
    source: TimeSource,
    delay: i64,
    idle_timeout: i64,
    partitions: BTreeMap<i32, PartitionTime>,
    partition_index: usize,
    offset_index: usize,
    current: Timestamp,
    output: SchemaRef,
    metrics: Arc<QueryMetrics>,
    policy: ErrorPolicy,
    query_id: String,
    idle_announced: bool,
    /// A TABLE's changelog: (`__value`, `__timestamp`) columns, so a tombstone, whose
    /// value columns are all NULL, takes its record's timestamp as its event time.
    tombstones: Option<(usize, usize)>,
}

impl Watermarks {
    /// A watermark operator over batches of `input` (relation columns + position meta
    /// columns), for the source partitions `partitions`, starting at wall-clock `now` (ms).
    ///
    /// Errors: the event-time column or a meta column is missing from `input`, or the
    /// timestamp format is not supported.
    pub fn new(
        event_time: &EventTime,
        input: &Schema,
        partitions: &[i32],
        now: Timestamp,
        metrics: Arc<QueryMetrics>,
        policy: ErrorPolicy,
        query_id: String,
    ) -> Result<Self> {
        let index = |name: &str| input.index_of(name).map_err(|_| EngineError::Internal(format!("no column \"{name}\" in the input")));
        let source = match &event_time.column {
            None => TimeSource::Record(index(META_TIMESTAMP)?),
            Some(c) => {
                let i = index(c)?;
                match input.field(i).data_type() {
                    DataType::Timestamp(..) => TimeSource::Timestamp(i),
                    DataType::Int64 | DataType::Int32 => TimeSource::EpochMillis(i),
                    DataType::Utf8 => {
                        let format = event_time
                            .format
                            .as_deref()
                            .map(|f| java_to_chrono(f).and_then(|f| CompiledFormat::new(&f)))
                            .transpose()
                            .map_err(EngineError::statement)?;
                        TimeSource::Text(i, format)
                    }
                    other => return Err(EngineError::statement(format!("event-time column \"{c}\" has unsupported type {other}"))),
                }
            }
        };
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(META_ROWTIME, DataType::Timestamp(TimeUnit::Millisecond, None), false));
        Ok(Watermarks {
            source,
            delay: event_time.delay_ms,
            idle_timeout: event_time.idle_timeout_ms,
            partitions: partitions.iter().map(|&p| (p, PartitionTime::new(now))).collect(),
            partition_index: index(META_PARTITION)?,
            offset_index: index(META_OFFSET)?,
            current: Timestamp::MIN,
            output: Arc::new(Schema::new(fields)),
            metrics,
            policy,
            query_id,
            idle_announced: false,
            tombstones: None,
        })
    }

    /// For a TABLE's changelog (its rows with `__value` and `__timestamp`, as
    /// [`super::MetaColumns::Record`] appends them): a tombstone has no value, so an event
    /// time read from a value column is missing; it takes the Kafka record's timestamp
    /// instead of being dropped as malformed (a delete must reach the versioned table).
    ///
    /// Errors: `input` lacks `__value` or `__timestamp`.
    pub fn with_tombstone_time(mut self, input: &Schema) -> Result<Self> {
        let index = |name: &str| input.index_of(name).map_err(|_| EngineError::Internal(format!("no column \"{name}\" in the input")));
        self.tombstones = Some((index(super::META_VALUE)?, index(META_TIMESTAMP)?));
        Ok(self)
    }

    /// The schema of the batches this operator emits.
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Event time (ms) of every row; NULL where it cannot be read. A tombstone of a
    /// changelog takes its record's timestamp ([`Self::with_tombstone_time`]).
    fn event_times(&self, batch: &RecordBatch) -> Result<Int64Array> {
        let times = self.value_times(batch)?;
        let Some((value, timestamp)) = self.tombstones.filter(|_| times.null_count() > 0) else { return Ok(times) };
        let values = batch.column(value);
        let records = arrow::compute::cast(batch.column(timestamp), &DataType::Int64)?;
        let records = records.as_primitive::<Int64Type>();
        Ok((0..times.len())
            .map(|i| match times.is_valid(i) {
                true => Some(times.value(i)),
                false if values.is_null(i) && records.is_valid(i) => Some(records.value(i)),
                false => None,
            })
            .collect())
    }

    /// Event time (ms) of every row as its event-time column says; NULL where it cannot
    /// be read.
    fn value_times(&self, batch: &RecordBatch) -> Result<Int64Array> {
        Ok(match &self.source {
            TimeSource::Timestamp(i) | TimeSource::Record(i) => {
                let column = batch.column(*i);
                let ms = match column.data_type() {
                    DataType::Timestamp(TimeUnit::Millisecond, None) => column.clone(),
                    _ => arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
                };
                ms.as_primitive::<TimestampMillisecondType>().reinterpret_cast::<Int64Type>()
            }
            TimeSource::EpochMillis(i) => arrow::compute::cast(batch.column(*i), &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            TimeSource::Text(i, None) => {
                let options = arrow::compute::CastOptions { safe: true, ..Default::default() };
                let ts = arrow::compute::cast_with_options(batch.column(*i), &DataType::Timestamp(TimeUnit::Millisecond, None), &options)?;
                ts.as_primitive::<TimestampMillisecondType>().reinterpret_cast::<Int64Type>()
            }
            TimeSource::Text(i, Some(format)) => {
                let text = batch.column(*i).as_string::<i32>();
                let mut memo = crate::format::java_time::DateMemo::default();
                text.iter().map(|v| v.and_then(|v| format.parse_ms_memo(v, &mut memo))).collect()
            }
        })
    }

    /// The minimum over active partitions; when every partition is idle, none holds
    /// time back and the most advanced one sets the watermark (a burst that has ended
    /// closes its windows once the idle timeout has passed).
    fn advance(&mut self, out: &mut Collector) {
        let active = self.partitions.values().filter(|p| !p.idle).map(|p| p.max).min();
        let candidate = match active {
            Some(min) => min,
            None => self.partitions.values().map(|p| p.max).max().unwrap_or(Timestamp::MIN),
        };
        if candidate == Timestamp::MIN {
            return;
        }
        let watermark = candidate.saturating_sub(self.delay);
        if watermark > self.current {
            self.current = watermark;
            self.metrics.set_watermark(watermark);
            out.watermark(watermark);
        }
    }
}

impl PartitionTime {
    fn new(now: Timestamp) -> Self {
        PartitionTime { max: Timestamp::MIN, last_active: now, stalled_at_active: 0, idle: false }
    }
}

impl Operator for Watermarks {
    fn name(&self) -> &'static str {
        "watermark"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        let times = self.event_times(&batch)?;
        let batch = if times.null_count() > 0 {
            let partitions = batch.column(self.partition_index).as_primitive::<Int32Type>();
            let offsets = batch.column(self.offset_index).as_primitive::<Int64Type>();
            let bad: Vec<usize> = (0..times.len()).filter(|&i| times.is_null(i)).collect();
            for &i in bad.iter().take(if self.policy == ErrorPolicy::Fail { 1 } else { 3 }) {
                let location = format!("{}@{}", partitions.value(i), offsets.value(i));
                if self.policy == ErrorPolicy::Fail {
                    return Err(EngineError::Malformed { location, reason: "the event time is missing or does not parse".into() });
                }
                tracing::warn!(query = %self.query_id, record = %location, "skipped record: the event time is missing or does not parse");
            }
            self.metrics.add_malformed(bad.len() as u64);
            let keep = arrow::array::BooleanArray::from_iter((0..times.len()).map(|i| Some(times.is_valid(i))));
            let batch = arrow::compute::filter_record_batch(&batch, &keep)?;
            let times = arrow::compute::filter(&times, &keep)?;
            return self.emit_with_times(batch, times.as_primitive::<Int64Type>().clone(), out);
        } else {
            batch
        };
        self.emit_with_times(batch, times, out)
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        // Only a bounded source's final watermark comes from upstream.
        if watermark > self.current {
            self.current = watermark;
            self.metrics.set_watermark(watermark);
            out.watermark(watermark);
        }
        Ok(())
    }

    /// Two batches: `partition Int32, max_event_time Int64` (ms), one row per source
    /// partition that has sent a row; and `watermark Int64` (ms), one row, the
    /// operator's watermark. Idleness is not kept: after a restore every partition
    /// starts active, with its idle timer from the restart.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let seen: Vec<(i32, Timestamp)> =
            self.partitions.iter().filter(|(_, p)| p.max != Timestamp::MIN).map(|(id, p)| (*id, p.max)).collect();
        let partitions = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("partition", DataType::Int32, false),
                Field::new("max_event_time", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int32Array::from_iter_values(seen.iter().map(|s| s.0))),
                Arc::new(Int64Array::from_iter_values(seen.iter().map(|s| s.1))),
            ],
        )?;
        Ok(OperatorState { batches: vec![partitions, state::scalar("watermark", self.current)?] })
    }

    fn restore(&mut self, states: Vec<OperatorState>, shard: Option<Shard>) -> Result<()> {
        let mut current: Option<Timestamp> = None;
        let now = now_ms();
        for s in &states {
            let [partitions, watermark] = s.batches.as_slice() else { return Err(state::layout_error(self.name())) };
            let w = state::read_scalar(watermark, "watermark")?;
            // With another parallelism the partitions moved: the lowest watermark of the
            // old workers is one that none of this worker's partitions has passed.
            current = Some(current.map_or(w, |c| c.min(w)));
            let ids = state::column::<Int32Type>(partitions, "partition")?;
            let maxes = state::column::<Int64Type>(partitions, "max_event_time")?;
            for (&id, &max) in ids.values().iter().zip(maxes.values()) {
                if shard.is_some_and(|s| id.rem_euclid(s.count as i32) as usize != s.index) {
                    continue;
                }
                let p = self.partitions.entry(id).or_insert_with(|| PartitionTime::new(now));
                p.max = p.max.max(max);
            }
        }
        if let Some(c) = current {
            self.current = self.current.max(c);
            if c != Timestamp::MIN {
                self.metrics.set_watermark(self.current);
            }
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector) -> Result<()> {
        if self.partitions.is_empty() {
            // A worker that reads no partition holds nothing back.
            if !self.idle_announced {
                self.idle_announced = true;
                out.idle();
            }
            return Ok(());
        }
        let mut changed = false;
        // Time the source spent blocked handing records downstream does not count: a
        // worker starved by backpressure on another worker is not idle (a partition
        // marked idle then would let the watermark pass its rows, making them late).
        // Nor is a partition that may still have records waiting in the topic: where the
        // source measures it (Kafka, every 2 s), only a partition read to its end can be
        // idle, as a FLIP-27 source reader decides idleness from its splits. Silence
        // while a backlog is read (after a restart) is the pipeline's, not the
        // partition's, and must not let the watermark pass the partition's rows.
        let stalled = self.metrics.source_stalled_ms();
        let measured = self.metrics.measures_unread();
        for (id, p) in self.partitions.iter_mut() {
            let waiting = measured && self.metrics.unread(*id) != Some(0);
            if !p.idle && !waiting && (now - p.last_active) - (stalled - p.stalled_at_active) >= self.idle_timeout {
                p.idle = true;
                changed = true;
            }
        }
        if changed {
            self.advance(out);
            // Every partition idle: downstream, where workers merge, this one no longer
            // holds time back (the same rule as for partitions).
            if self.partitions.values().all(|p| p.idle) && !self.idle_announced {
                tracing::debug!(query = %self.query_id, watermark = self.current, "every partition is idle");
                self.idle_announced = true;
                out.idle();
            }
        }
        Ok(())
    }
}

impl Watermarks {
    fn emit_with_times(&mut self, batch: RecordBatch, times: Int64Array, out: &mut Collector) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let now = now_ms();
        // The largest time per partition in this batch: one map update per run of rows
        // from the same partition (sources deliver partitions in runs), not one per row.
        let partitions = batch.column(self.partition_index).as_primitive::<Int32Type>();
        let mut runs: Vec<(i32, Timestamp)> = Vec::new();
        for (&p, &t) in partitions.values().iter().zip(times.values()) {
            match runs.last_mut() {
                Some((last, max)) if *last == p => *max = (*max).max(t),
                _ => runs.push((p, t)),
            }
        }
        let stalled = self.metrics.source_stalled_ms();
        for (p, t) in runs {
            let state = self.partitions.entry(p).or_insert_with(|| PartitionTime::new(now));
            state.max = state.max.max(t);
            state.last_active = now;
            state.stalled_at_active = stalled;
            state.idle = false;
        }
        self.idle_announced = false;
        let rowtime: ArrayRef = Arc::new(TimestampMillisecondArray::new(times.values().clone(), None));
        let mut columns = batch.columns().to_vec();
        columns.push(rowtime);
        out.emit(RecordBatch::try_new(self.output.clone(), columns)?);
        self.advance(out);
        Ok(())
    }
}

fn now_ms() -> Timestamp {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray};

    use super::*;

    fn batch(values: &[Option<&str>], partitions: &[i32]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Utf8, true),
            Field::new(META_PARTITION, DataType::Int32, false),
            Field::new(META_OFFSET, DataType::Int64, false),
            Field::new(META_TIMESTAMP, DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let n = values.len();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(values.to_vec())),
                Arc::new(Int32Array::from(partitions.to_vec())),
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(TimestampMillisecondArray::from(vec![None; n])),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn watermarks(out: &mut Collector) -> Vec<i64> {
        out.take()
            .into_iter()
            .filter_map(|m| match m {
                crate::operator::Message::Watermark(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn per_partition_minimum_idle_timeout_and_malformed_times() -> Result<()> {
        let event_time = EventTime { column: Some("ts".into()), delay_ms: 5000, idle_timeout_ms: 10_000, ..Default::default() };
        let input = batch(&[], &[]).schema();
        let metrics = Arc::new(QueryMetrics::default());
        // Started at wall-clock 0 (ms) with partitions 0 and 1.
        let mut op = Watermarks::new(&event_time, &input, &[0, 1], 0, metrics.clone(), ErrorPolicy::Skip, "q".into())?;
        let mut out = Collector::default();
        let t = |s: i64| 1_767_261_600_000 + s * 1000;
        // Partition 1 has sent nothing: it holds the watermark back.
        op.on_batch(batch(&[Some("2026-01-01T10:00:10Z"), Some("not a time")], &[0, 0]), &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        assert_eq!(metrics.snapshot().malformed, 1);
        // Until it has been silent for the idle timeout.
        op.on_processing_time(9_999, &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        op.on_processing_time(10_000, &mut out)?;
        assert_eq!(watermarks(&mut out), vec![t(5)]);
        // Partition 1 wakes up behind partition 0: the minimum rules again, and the
        // watermark never moves back.
        op.on_batch(batch(&[Some("2026-01-01T10:00:08Z")], &[1]), &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        op.on_batch(batch(&[Some("2026-01-01T10:00:30Z")], &[0]), &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        op.on_batch(batch(&[Some("2026-01-01T10:00:20Z")], &[1]), &mut out)?;
        assert_eq!(watermarks(&mut out), vec![t(15)]);
        // Both fall silent: none holds time back, the most advanced one rules.
        op.on_processing_time(now_ms() + 10_000, &mut out)?;
        assert_eq!(watermarks(&mut out), vec![t(25)]);
        Ok(())
    }

    #[test]
    fn a_partition_with_unread_records_or_a_stalled_source_is_not_idle() -> Result<()> {
        let event_time = EventTime { column: Some("ts".into()), delay_ms: 5000, idle_timeout_ms: 10_000, ..Default::default() };
        let input = batch(&[], &[]).schema();
        let metrics = Arc::new(QueryMetrics::default());
        let mut op = Watermarks::new(&event_time, &input, &[0, 1], 0, metrics.clone(), ErrorPolicy::Skip, "q".into())?;
        let mut out = Collector::default();
        let t = |s: i64| 1_767_261_600_000 + s * 1000;
        op.on_batch(batch(&[Some("2026-01-01T10:00:10Z")], &[0]), &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        // Partition 1 has 500 records waiting in the topic: silence is not idleness.
        metrics.set_unread(0, 0);
        metrics.set_unread(1, 500);
        op.on_processing_time(60_000, &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        // The source was blocked by backpressure for 55 of those 60 s: still not idle
        // once partition 1 is read to its end, since only 5 s of silence count.
        metrics.add_source_stalled(55_000);
        metrics.set_unread(1, 0);
        op.on_processing_time(60_000, &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new());
        // Read to its end and silent for 10 s the source was free: idle.
        op.on_processing_time(65_000, &mut out)?;
        assert_eq!(watermarks(&mut out), vec![t(5)]);
        Ok(())
    }

    /// A source that measures unread records (Kafka) but has not measured yet: no
    /// partition can turn idle, however long it is silent (a 1 s idle timeout is
    /// shorter than the 2 s between librdkafka's statistics).
    #[test]
    fn before_the_first_measurement_no_partition_is_idle() -> Result<()> {
        let event_time = EventTime { column: Some("ts".into()), delay_ms: 5000, idle_timeout_ms: 1_000, ..Default::default() };
        let input = batch(&[], &[]).schema();
        let metrics = Arc::new(QueryMetrics::default());
        metrics.expect_unread();
        let mut op = Watermarks::new(&event_time, &input, &[0, 1], 0, metrics.clone(), ErrorPolicy::Skip, "q".into())?;
        let mut out = Collector::default();
        let t = |s: i64| 1_767_261_600_000 + s * 1000;
        op.on_batch(batch(&[Some("2026-01-01T10:00:10Z")], &[0]), &mut out)?;
        op.on_processing_time(60_000, &mut out)?;
        assert_eq!(watermarks(&mut out), Vec::<i64>::new(), "partition 1 may hold a backlog nobody has measured");
        metrics.set_unread(0, 0);
        metrics.set_unread(1, 0);
        op.on_processing_time(61_000, &mut out)?;
        assert_eq!(watermarks(&mut out), vec![t(5)]);
        Ok(())
    }
}
