//! Running a chain of operators inside another operator, as `runtime::pipeline` runs
//! them within a task: the interval join and UNION ALL run each input stream's own chain
//! (decode, computed columns, watermark, ...) on the records of its own source.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int32Type;

use crate::error::Result;
use crate::operator::{Collector, Message, Operator, Timestamp};
use crate::record::RawColumn;

/// Which source of a union source ([`crate::runtime::union_source`]) an input reads:
/// source `index` of `of`. Its records are those whose renumbered partition is `index`
/// modulo `of`, so a stream joined with itself, or two files, stay apart (their topics
/// may be the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnionInput {
    /// The source's place in the union source (0: the query's FROM relation).
    pub index: usize,
    /// The union source's number of sources.
    pub of: usize,
}

/// The raw records of `batch` that `input` reads (by the raw `partition` column); `None`
/// if none is.
pub(crate) fn records_of(batch: &RecordBatch, input: UnionInput) -> Result<Option<RecordBatch>> {
    let partitions = batch.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
    let (index, of) = (input.index as i32, input.of.max(1) as i32);
    let mine: BooleanArray = partitions.iter().map(|p| Some(p.is_some_and(|p| p.rem_euclid(of) == index))).collect();
    Ok(match mine.true_count() {
        0 => None,
        n if n == batch.num_rows() => Some(batch.clone()),
        _ => Some(filter_record_batch(batch, &mine)?),
    })
}

/// The watermark where inputs merge, from each input's `(watermark, idle)`: the lowest
/// of the inputs that are not idle, once each of them has one (Flink's rule: an idle
/// input does not hold it back); when every input is idle, the highest any has. `None`
/// while it is not known.
pub(crate) fn merged_watermark(inputs: &[(Option<Timestamp>, bool)]) -> Option<Timestamp> {
    let active: Vec<Option<Timestamp>> = inputs.iter().filter(|(_, idle)| !idle).map(|(w, _)| *w).collect();
    if active.is_empty() {
        inputs.iter().filter_map(|(w, _)| *w).max()
    } else if active.iter().all(Option::is_some) {
        active.iter().flatten().min().copied()
    } else {
        None
    }
}

/// Processing time for every operator of the chain, each one's output run through the
/// operators after it.
pub(crate) fn tick_chain(chain: &mut [Box<dyn Operator>], now: Timestamp) -> Result<Vec<Message>> {
    let mut all = Vec::new();
    for i in 0..chain.len() {
        let (head, rest) = chain.split_at_mut(i + 1);
        let mut collector = Collector::default();
        head[i].on_processing_time(now, &mut collector)?;
        let mut messages = collector.take();
        for op in rest.iter_mut() {
            messages = forward(op.as_mut(), messages)?;
        }
        all.extend(messages);
    }
    Ok(all)
}

/// `messages` through `op`.
fn forward(op: &mut dyn Operator, messages: Vec<Message>) -> Result<Vec<Message>> {
    let mut next = Collector::default();
    for m in messages {
        match m {
            Message::Batch(b) => op.on_batch(b, &mut next)?,
            Message::Watermark(w) => op.on_watermark(w, &mut next)?,
            Message::Idle => next.idle(),
            Message::LateRows(b) => next.late_rows(b),
            Message::DeadLetters(b) => next.dead_letters(b),
            Message::Barrier(id) => next.barrier(id),
            Message::End => {}
        }
    }
    Ok(next.take())
}

/// Runs `first` on the chain's first operator, then every message through the rest, as
/// `run_operators` does within a task; returns what the last operator emitted.
pub(crate) fn run_chain(
    chain: &mut [Box<dyn Operator>],
    first: impl FnOnce(&mut dyn Operator, &mut Collector) -> Result<()>,
) -> Result<Vec<Message>> {
    let Some((head, rest)) = chain.split_first_mut() else { return Ok(Vec::new()) };
    let mut collector = Collector::default();
    first(head.as_mut(), &mut collector)?;
    let mut messages = collector.take();
    for op in rest.iter_mut() {
        messages = forward(op.as_mut(), messages)?;
    }
    Ok(messages)
}
