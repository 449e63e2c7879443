//! `SELECT ... FROM a [WHERE ...] UNION ALL SELECT ... FROM b [WHERE ...]` (both dialects):
//! the rows of several streams as one stream.
//!
//! The streams arrive in one sequence of raw records (the query's source reads every
//! topic, [`crate::runtime::union_source`]); each record goes to its branch's own chain:
//! decode, computed columns, [watermark], [filter], and the branch's projection to the
//! union's columns (with `__rowtime` last when the rows go to Kafka). The union's
//! watermark is the lowest of the branches' (an idle branch does not hold it back), as
//! where Flink's inputs merge.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::chain::{merged_watermark, records_of, run_chain, tick_chain, UnionInput};
use crate::error::Result;
use crate::operator::{Collector, Message, Operator, Timestamp};

/// One branch of the union.
pub struct UnionBranchChain {
    /// Its source in the query's union source (its records' renumbered partitions).
    pub input: UnionInput,
    /// Raw records to the union's rows.
    pub chain: Vec<Box<dyn Operator>>,
}

struct Branch {
    input: UnionInput,
    chain: Vec<Box<dyn Operator>>,
    watermark: Option<Timestamp>,
    idle: bool,
}

/// The union (see the module docs).
pub struct UnionAll {
    branches: Vec<Branch>,
    output: SchemaRef,
    watermark: Timestamp,
}

impl UnionAll {
    /// The union of `branches`, each emitting rows of `output`.
    pub fn new(branches: Vec<UnionBranchChain>, output: SchemaRef) -> Self {
        let branches = branches.into_iter().map(|b| Branch { input: b.input, chain: b.chain, watermark: None, idle: false }).collect();
        UnionAll { branches, output, watermark: Timestamp::MIN }
    }

    /// The schema of the rows it emits.
    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn on_branch_messages(&mut self, b: usize, messages: Vec<Message>, out: &mut Collector) {
        for m in messages {
            match m {
                Message::Batch(rows) => {
                    self.branches[b].idle = false;
                    out.emit(rows);
                }
                Message::Watermark(w) => {
                    let branch = &mut self.branches[b];
                    branch.idle = false;
                    branch.watermark = Some(branch.watermark.map_or(w, |c| c.max(w)));
                }
                Message::Idle => self.branches[b].idle = true,
                Message::LateRows(rows) => out.late_rows(rows),
                Message::DeadLetters(rows) => out.dead_letters(rows),
                Message::Barrier(_) | Message::End => {}
            }
        }
        let inputs: Vec<(Option<Timestamp>, bool)> = self.branches.iter().map(|b| (b.watermark, b.idle)).collect();
        if let Some(next) = merged_watermark(&inputs).filter(|w| *w > self.watermark) {
            self.watermark = next;
            out.watermark(next);
        }
    }
}

impl Operator for UnionAll {
    fn name(&self) -> &'static str {
        "union-all"
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Collector) -> Result<()> {
        for b in 0..self.branches.len() {
            let Some(part) = records_of(&batch, self.branches[b].input)? else { continue };
            let messages = run_chain(&mut self.branches[b].chain, |op, c| op.on_batch(part, c))?;
            self.on_branch_messages(b, messages, out);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Collector) -> Result<()> {
        for b in 0..self.branches.len() {
            let messages = run_chain(&mut self.branches[b].chain, |op, c| op.on_watermark(watermark, c))?;
            self.on_branch_messages(b, messages, out);
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector) -> Result<()> {
        for b in 0..self.branches.len() {
            let messages = tick_chain(&mut self.branches[b].chain, now)?;
            self.on_branch_messages(b, messages, out);
        }
        Ok(())
    }
}
