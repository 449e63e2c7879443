//! The front of a two-input join (interval join, event-time temporal join): what runs
//! before the key exchange, on each worker's share of the source partitions.
//!
//! Both inputs arrive in one sequence of raw records (the query's source reads both
//! topics, [`crate::runtime::union_source`]). Each record goes to its input's own chain
//! (decode, computed columns, watermark), so each input keeps its own format, schema and
//! event time; the rows each chain emits leave tagged with their side
//! ([`side_of`]), so the exchange can route them by that side's key expressions and the
//! join behind it can tell them apart.
//!
//! The front also emits the join's watermark: the lower of its two inputs' watermarks,
//! an idle input not holding it back (Flink's rule where inputs merge; when both are
//! idle, the more advanced one). Where n fronts feed n join workers, the exchange takes
//! the minimum over the fronts again, so the join sees the minimum over every partition
//! of both inputs, at any parallelism.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use super::chain::{merged_watermark, records_of, run_chain, tick_chain, UnionInput};
use super::interval_join::JoinSide;
use crate::error::Result;
use crate::operator::{Collector, Message, Operator, Timestamp};

/// The schema metadata key that names a row batch's join side (`"0"` or `"1"`).
pub const JOIN_SIDE: &str = "eddy.join.side";

/// The side (0 or 1) a batch emitted by a [`JoinFront`] comes from; `None` for a batch
/// without the tag.
pub fn side_of(batch: &RecordBatch) -> Option<usize> {
    match batch.schema_ref().metadata().get(JOIN_SIDE).map(String::as_str) {
        Some("0") => Some(0),
        Some("1") => Some(1),
        _ => None,
    }
}

/// `batch` with its schema tagged as side `side`'s.
fn tagged(batch: RecordBatch, side: usize) -> Result<RecordBatch> {
    let schema = batch.schema();
    let metadata = HashMap::from([(JOIN_SIDE.to_string(), side.to_string())]);
    let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata));
    Ok(batch.with_schema(schema)?)
}

/// One input's chain and how far its watermark is.
struct Input {
    input: UnionInput,
    chain: Vec<Box<dyn Operator>>,
    watermark: Option<Timestamp>,
    idle: bool,
}

/// The front of a two-input join (see the module docs).
pub struct JoinFront {
    inputs: [Input; 2],
    /// The order the inputs see each micro-batch (a temporal join's table first, so a
    /// version and a stream row of one micro-batch arrive version first).
    order: [usize; 2],
    watermark: Timestamp,
    idle_announced: bool,
}

impl JoinFront {
    /// The front over the chains of `sides` (side 0, then side 1), taken out of them:
    /// the sides keep their schemas and keys for the join. `order` is the order the
    /// inputs see each micro-batch.
    pub fn take_chains(sides: [&mut JoinSide; 2], order: [usize; 2]) -> JoinFront {
        let [zero, one] = sides;
        let input = |s: &mut JoinSide| Input { input: s.input, chain: std::mem::take(&mut s.chain), watermark: None, idle: false };
        JoinFront { inputs: [input(zero), input(one)], order, watermark: Timestamp::MIN, idle_announced: false }
    }

    /// Runs side `s`'s messages: its rows leave tagged, its watermark and idleness are
    /// noted; then the join's watermark moves if it can.
    fn on_side_messages(&mut self, s: usize, messages: Vec<Message>, out: &mut Collector) -> Result<()> {
        for m in messages {
            match m {
                Message::Batch(rows) => {
                    self.inputs[s].idle = false;
                    if rows.num_rows() > 0 {
                        out.emit(tagged(rows, s)?);
                    }
                }
                Message::Watermark(w) => {
                    let input = &mut self.inputs[s];
                    input.idle = false;
                    input.watermark = Some(input.watermark.map_or(w, |c| c.max(w)));
                }
                Message::Idle => self.inputs[s].idle = true,
                Message::LateRows(b) => out.late_rows(b),
                Message::DeadLetters(b) => out.dead_letters(b),
                Message::Barrier(_) | Message::End => {}
            }
        }
        self.advance(out);
        Ok(())
    }

    /// Emits the join's watermark when it moved: the lower of the inputs' (an idle one
    /// not holding it back; both idle: the higher), and says when both inputs are idle.
    fn advance(&mut self, out: &mut Collector) {
        let inputs: Vec<(Option<Timestamp>, bool)> = self.inputs.iter().map(|i| (i.watermark, i.idle)).collect();
        if let Some(next) = merged_watermark(&inputs).filter(|w| *w > self.watermark) {
            self.watermark = next;
            out.watermark(next);
            self.idle_announced = false;
        }
        let idle = self.inputs.iter().all(|i| i.idle);
        if idle && !self.idle_announced {
            self.idle_announced = true;
            out.idle();
        } else if !idle {
            self.idle_announced = false;
        }
    }
}

impl Operator for JoinFront {
    fn name(&self) -> &'static str {
        "join-front"
    }

    /// Takes raw records of both inputs; each goes through its input's chain.
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        for s in self.order {
            let Some(part) = records_of(&batch, self.inputs[s].input)? else { continue };
            let messages = run_chain(&mut self.inputs[s].chain, |op, c| op.on_batch(part, c))?;
            self.on_side_messages(s, messages, out)?;
        }
        Ok(())
    }

    /// A bounded source's final watermark: through both chains.
    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        for s in self.order {
            let messages = run_chain(&mut self.inputs[s].chain, |op, c| op.on_watermark(watermark, c))?;
            self.on_side_messages(s, messages, out)?;
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector) -> Result<()> {
        for s in self.order {
            let messages = tick_chain(&mut self.inputs[s].chain, now)?;
            self.on_side_messages(s, messages, out)?;
        }
        Ok(())
    }
}
