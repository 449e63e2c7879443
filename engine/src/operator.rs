//! The operator contract (docs/DESIGN.md, data flow): what flows between operators and the
//! one trait every operator implements.

use arrow::record_batch::RecordBatch;

use crate::error::Result;

/// Event time or a watermark, in milliseconds since the Unix epoch (UTC).
pub type Timestamp = i64;

/// What travels on the channels between pipeline stages, in order.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Batch(RecordBatch),
    /// No row with an event time at or below this (ms) will follow.
    Watermark(Timestamp),
    /// Checkpoint barrier: every row before it belongs to checkpoint `id`. A sink that
    /// receives it makes those rows durable and acknowledges `id` to the source, which
    /// then commits the offsets it recorded for `id` (Flink's asynchronous barrier snapshots).
    /// Operators pass it on at once; stateful ones are snapshotted right after
    /// ([`Operator::snapshot`]).
    Barrier(u64),
    /// The sender has no data to hold event time back: every partition it reads is idle
    /// (Flink's `WatermarkStatus.IDLE`). Where streams merge, an idle sender is left out
    /// of the minimum until its next watermark. Operators pass it through.
    Idle,
    /// Late rows (beyond the grace period) as raw records
    /// ([`crate::record::raw_schema`]): a side output the sink task writes to the
    /// query's late-rows topic. Operators pass it through untouched.
    LateRows(RecordBatch),
    /// Records that did not decode, under `'value.error.policy'='dead_letter'`
    /// ([`crate::record::dead_letter_schema`]): a side output the sink task writes
    /// to the source's dead letter topic or table. Operators pass it through untouched.
    DeadLetters(RecordBatch),
    /// The input ended (bounded source, or the query is stopping).
    End,
}

/// Where an operator puts its output: batches, watermarks, barriers and late rows, in
/// the order they are emitted.
#[derive(Debug, Default)]
pub struct Collector {
    messages: Vec<Message>,
}

impl Collector {
    /// Emits a batch downstream (empty batches are dropped).
    pub fn emit(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.messages.push(Message::Batch(batch));
        }
    }

    /// Emits a watermark (ms) downstream.
    pub fn watermark(&mut self, watermark: Timestamp) {
        self.messages.push(Message::Watermark(watermark));
    }

    /// Emits a checkpoint barrier downstream.
    pub fn barrier(&mut self, id: u64) {
        self.messages.push(Message::Barrier(id));
    }

    /// Announces that this stream is idle (see [`Message::Idle`]).
    pub fn idle(&mut self) {
        self.messages.push(Message::Idle);
    }

    /// Sends late rows (raw records) to the late-rows side output.
    pub fn late_rows(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.messages.push(Message::LateRows(batch));
        }
    }

    /// Sends records that did not decode to the dead letter side output.
    pub fn dead_letters(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.messages.push(Message::DeadLetters(batch));
        }
    }

    /// Takes what was emitted so far.
    pub fn take(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Takes only the batches emitted so far (tests and single-operator callers).
    pub fn take_batches(&mut self) -> Vec<RecordBatch> {
        self.take()
            .into_iter()
            .filter_map(|m| match m {
                Message::Batch(b) => Some(b),
                _ => None,
            })
            .collect()
    }
}

/// An operator's state at a checkpoint: Arrow batches (buffered rows, accumulator
/// states, scalars such as the operator's watermark in one-row batches). Each batch is
/// stored as its own Arrow IPC file in the checkpoint directory
/// (`crate::runtime::checkpoint`), so the layout of the batches is the operator's own
/// and documented with its [`Operator::snapshot`].
#[derive(Debug, Clone, Default)]
pub struct OperatorState {
    /// The state as Arrow batches; stateless operators have none.
    pub batches: Vec<RecordBatch>,
}

/// The share of a keyed state one worker restores when the query runs with another
/// parallelism than the checkpoint was taken with: the worker keeps the rows whose key
/// (or source partition) routes to `index` of `count` workers, with the same routing the
/// exchange uses ([`crate::partitioning::route_by_key`], partition mod count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's index, `0..count`.
    pub index: usize,
    /// Workers of the stage.
    pub count: usize,
}
/// One step of a pipeline. Operators see whole Arrow batches, never single rows
/// (MATCH_RECOGNIZE is the one exception, inside one partition key).
pub trait Operator: Send {
    /// A short name for EXPLAIN and logs, e.g. `filter`.
    fn name(&self) -> &'static str;

    /// Processes one batch, emitting zero or more batches.
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()>;

    /// Reacts to a watermark (ms): windows close, buffered rows are released. The
    /// default forwards it; an operator that emits rows on a watermark emits them
    /// before forwarding it.
    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        out.watermark(watermark);
        Ok(())
    }

    /// Reacts to a checkpoint barrier. The default forwards it at once, which every
    /// operator does: stateful operators are not asked to empty their state before a
    /// checkpoint, their state is snapshotted with it ([`Operator::snapshot`], Flink's
    /// asynchronous barrier snapshots).
    fn on_barrier(&mut self, id: u64, out: &mut Collector) -> Result<()> {
        out.barrier(id);
        Ok(())
    }

    /// Called about every [`PROCESSING_TIME_INTERVAL_MS`] with the wall-clock time
    /// (ms since the epoch), also while no data arrives: idle-partition detection.
    fn on_processing_time(&mut self, _now: Timestamp, _out: &mut Collector) -> Result<()> {
        Ok(())
    }

    /// The state to store in a checkpoint, taken right after the barrier passed this
    /// operator, on every input (aligned): it reflects exactly the rows before the
    /// barrier. Stateless operators return none (the default).
    ///
    /// Errors: the state cannot be converted to Arrow (an accumulator refuses).
    fn snapshot(&mut self) -> Result<OperatorState> {
        Ok(OperatorState::default())
    }

    /// Restores the state of a checkpoint, before the first message. `states` holds one
    /// entry per worker that wrote one: this worker's own (`shard` is `None`), or, when
    /// the checkpoint was taken with another parallelism, every worker's, of which this
    /// worker keeps its `shard`.
    ///
    /// Errors: the batches do not have the layout [`Operator::snapshot`] writes (a
    /// checkpoint of another query, or of a changed query).
    fn restore(&mut self, _states: Vec<OperatorState>, _shard: Option<Shard>) -> Result<()> {
        Ok(())
    }
}

/// How often operators get [`Operator::on_processing_time`] (ms).
pub const PROCESSING_TIME_INTERVAL_MS: u64 = 200;
