//! The operator contract (DESIGN.md, data flow): what flows between operators and the
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
    Barrier(u64),
    /// The input ended (bounded source, or the query is stopping).
    End,
}

/// Where an operator puts its output batches.
#[derive(Debug, Default)]
pub struct Collector {
    batches: Vec<RecordBatch>,
}

impl Collector {
    /// Emits a batch downstream (empty batches are dropped).
    pub fn emit(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
    }

    /// Takes what was emitted so far.
    pub fn take(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.batches)
    }
}

/// An operator's state at a checkpoint: Arrow batches (buffered rows, accumulator states).
#[derive(Debug, Clone, Default)]
pub struct OperatorState {
    /// The state as Arrow batches; stateless operators have none.
    pub batches: Vec<RecordBatch>,
}

/// One step of a pipeline. Operators see whole Arrow batches, never single rows
/// (MATCH_RECOGNIZE is the one exception, inside one partition key).
pub trait Operator: Send {
    /// A short name for EXPLAIN and logs, e.g. `filter`.
    fn name(&self) -> &'static str;

    /// Processes one batch, emitting zero or more batches.
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()>;

    /// Reacts to a watermark (ms): windows close, buffered rows are released.
    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Collector) -> Result<()> {
        Ok(())
    }

    /// The state to store in a checkpoint.
    fn snapshot(&self) -> Result<OperatorState> {
        Ok(OperatorState::default())
    }

    /// Restores the state of a checkpoint.
    fn restore(&mut self, _state: OperatorState) -> Result<()> {
        Ok(())
    }
}
