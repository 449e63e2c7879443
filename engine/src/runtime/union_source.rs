//! One source over several: the query of an interval join reads both streams' topics as
//! one sequence of micro-batches, so one progress ledger, one barrier sequence and one
//! checkpoint cover both (the positions name their topics).
//!
//! Inputs over the same topic (a stream joined with itself) share one source: its
//! records are handed to each of those inputs, so the topic is read once and its
//! positions are one per partition (two consumers of one topic would commit and resume
//! from each other's positions).
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
    /// For each input, in order, the source it reads (an index into `sources`).
    inputs: Vec<usize>,
    ended: Vec<bool>,
}

impl UnionSource {
    /// The sources, each with the topic its records and positions carry; `inputs` gives,
    /// for each input of the query (its place numbers the partitions), the source it
    /// reads. Every source must be read by at least one input.
    pub fn new(sources: Vec<(String, Box<dyn Source>)>, inputs: Vec<usize>) -> Self {
        let ended = vec![false; sources.len()];
        UnionSource { sources, inputs, ended }
    }

    /// The partition id source `i` of `n` has for its partition `p`.
    pub fn renumber(p: i32, i: usize, n: usize) -> i32 {
        p.saturating_mul(n as i32).saturating_add(i as i32)
    }
}

#[async_trait]
impl Source for UnionSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let n = self.inputs.len();
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut positions: Vec<PartitionOffset> = Vec::new();
        for (r, (_, source)) in self.sources.iter_mut().enumerate() {
            if self.ended[r] {
                continue;
            }
            match source.next_batch().await? {
                None => self.ended[r] = true,
                Some(batch) => {
                    if batch.records.num_rows() > 0 {
                        // Once per input reading this source, with that input's partitions.
                        for (i, _) in self.inputs.iter().enumerate().filter(|(_, s)| **s == r) {
                            let mut columns: Vec<ArrayRef> = batch.records.columns().to_vec();
                            let renumbered: Int32Array = columns[RawColumn::Partition as usize]
                                .as_primitive::<Int32Type>()
                                .iter()
                                .map(|p| p.map(|p| Self::renumber(p, i, n)))
                                .collect();
                            columns[RawColumn::Partition as usize] = Arc::new(renumbered);
                            parts.push(RecordBatch::try_new(batch.records.schema(), columns)?);
                        }
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
        let n = self.inputs.len();
        self.inputs
            .iter()
            .enumerate()
            .flat_map(|(i, &r)| self.sources[r].1.partitions().into_iter().map(move |p| Self::renumber(p, i, n)))
            .collect()
    }

    fn is_bounded(&self) -> bool {
        self.sources.iter().all(|(_, s)| s.is_bounded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch of `n` records of partition 0, then the end.
    struct OneBatch(Option<SourceBatch>);

    #[async_trait]
    impl Source for OneBatch {
        async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
            Ok(self.0.take())
        }

        async fn commit(&mut self, _positions: &[PartitionOffset], _watermark: Option<i64>) -> Result<()> {
            Ok(())
        }
    }

    fn one_batch(topic: &str, n: usize) -> Result<Box<dyn Source>> {
        let values: Vec<&[u8]> = vec![b"x"; n];
        let records = crate::record::raw_batch(&values, topic, 0, 0)?;
        let positions = vec![PartitionOffset { topic: topic.into(), partition: 0, next_offset: n as i64 }];
        Ok(Box::new(OneBatch(Some(SourceBatch { records, positions }))))
    }

    #[tokio::test]
    async fn a_topic_two_inputs_read_is_read_once_and_handed_to_each() -> Result<()> {
        // Inputs 0 and 2 read topic a (a self-join), input 1 reads topic b.
        let mut union = UnionSource::new(vec![("a".into(), one_batch("a", 2)?), ("b".into(), one_batch("b", 1)?)], vec![0, 1, 0]);
        assert_eq!(union.partitions(), vec![0, 1, 2]);
        let Some(batch) = union.next_batch().await? else { return Err(crate::error::EngineError::Internal("no batch".into())) };
        let partitions: Vec<i32> = batch.records.column(RawColumn::Partition as usize).as_primitive::<Int32Type>().values().to_vec();
        let topics: Vec<&str> = batch.records.column(RawColumn::Topic as usize).as_string::<i32>().iter().flatten().collect();
        assert_eq!(partitions, vec![0, 0, 2, 2, 1]);
        assert_eq!(topics, vec!["a", "a", "a", "a", "b"]);
        // One position per topic and partition: the topic was read once.
        let positions: Vec<(String, i64)> = batch.positions.iter().map(|p| (p.topic.clone(), p.next_offset)).collect();
        assert_eq!(positions, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        assert!(union.next_batch().await?.is_none());
        Ok(())
    }
}
