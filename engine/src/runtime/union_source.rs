//! One source over several: the query of an interval join reads both streams' topics as
//! one sequence of micro-batches, so one progress ledger, one barrier sequence and one
//! checkpoint cover both (the positions name their topics).
//!
//! Each micro-batch asks every source once, in turn, and concatenates what they gave.
//! The `partition` column is renumbered (`partition * n + i` for source `i` of `n`) so
//! that the partitions of different topics stay apart where watermarks and ties of
//! event time are kept per partition; the positions keep the real partitions, and each
//! source commits those of its own topic.

use arrow::array::{ArrayRef, AsArray, Int32Array};
use arrow::compute::concat_batches;
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use std::sync::Arc;

use crate::connector::{PartitionOffset, Source, SourceBatch};
use crate::error::Result;
use crate::record::{raw_schema, RawColumn};

/// Several sources read as one (see the module docs).
pub struct UnionSource {
    /// Each source with the topic (or path) its positions name.
    sources: Vec<(String, Box<dyn Source>)>,
    ended: Vec<bool>,
}

impl UnionSource {
    /// The sources, each with the topic its records and positions carry.
    pub fn new(sources: Vec<(String, Box<dyn Source>)>) -> Self {
        let ended = vec![false; sources.len()];
        UnionSource { sources, ended }
    }

    /// The partition id source `i` of `n` has for its partition `p`.
    pub fn renumber(p: i32, i: usize, n: usize) -> i32 {
        p.saturating_mul(n as i32).saturating_add(i as i32)
    }
}

#[async_trait]
impl Source for UnionSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let n = self.sources.len();
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut positions: Vec<PartitionOffset> = Vec::new();
        for (i, (_, source)) in self.sources.iter_mut().enumerate() {
            if self.ended[i] {
                continue;
            }
            match source.next_batch().await? {
                None => self.ended[i] = true,
                Some(batch) => {
                    if batch.records.num_rows() > 0 {
                        let mut columns: Vec<ArrayRef> = batch.records.columns().to_vec();
                        let renumbered: Int32Array = columns[RawColumn::Partition as usize]
                            .as_primitive::<Int32Type>()
                            .iter()
                            .map(|p| p.map(|p| Self::renumber(p, i, n)))
                            .collect();
                        columns[RawColumn::Partition as usize] = Arc::new(renumbered);
                        parts.push(RecordBatch::try_new(batch.records.schema(), columns)?);
                    }
                    positions.extend(batch.positions);
                }
            }
        }
        if self.ended.iter().all(|e| *e) && parts.is_empty() {
            return Ok(None);
        }
        let schema = parts.first().map_or_else(raw_schema, |p| p.schema());
        let records = concat_batches(&schema, &parts)?;
        Ok(Some(SourceBatch { records, positions }))
    }

    async fn commit(&mut self, positions: &[PartitionOffset], watermark: Option<i64>) -> Result<()> {
        for (topic, source) in &mut self.sources {
            let mine: Vec<PartitionOffset> = positions.iter().filter(|p| &p.topic == topic).cloned().collect();
            source.commit(&mine, watermark).await?;
        }
        Ok(())
    }

    fn restored_watermark(&self) -> Option<i64> {
        let all: Vec<Option<i64>> = self.sources.iter().map(|(_, s)| s.restored_watermark()).collect();
        if all.iter().all(Option::is_some) {
            all.into_iter().flatten().min()
        } else {
            None
        }
    }

    async fn close(&mut self) -> Result<()> {
        for (_, source) in &mut self.sources {
            source.close().await?;
        }
        Ok(())
    }

    fn partitions(&self) -> Vec<i32> {
        let n = self.sources.len();
        self.sources.iter().enumerate().flat_map(|(i, (_, s))| s.partitions().into_iter().map(move |p| Self::renumber(p, i, n))).collect()
    }

    fn is_bounded(&self) -> bool {
        self.sources.iter().all(|(_, s)| s.is_bounded())
    }
}
