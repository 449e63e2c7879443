//! How pipeline stages connect when a query runs on several workers (docs/DESIGN.md, scale):
//! the fan-out side ([`Downstream`]) splits batches by source partition or by group key
//! and broadcasts everything else; the fan-in side ([`Inputs`]) merges its senders the
//! way Flink's input gates do: a barrier goes on once every sender has sent it (aligned),
//! the watermark is the minimum over the senders that are not idle, and the input ends
//! when every sender has.
//!
//! Every channel carries `(sender index, Message)`; a stage with one sender sees its
//! messages unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow::array::{AsArray, UInt32Array};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use tokio::sync::mpsc;

use crate::error::{EngineError, Result};
use crate::operator::{Message, Timestamp};
use crate::operators::LocalAggregate;
use crate::partitioning::route_by_key;
use crate::record::RawColumn;

/// A message with the index of the worker that sent it.
pub type Tagged = (usize, Message);

/// The sending half of one worker's input channel, with this sender's index.
#[derive(Clone)]
pub struct Outlet {
    tx: mpsc::Sender<Tagged>,
    me: usize,
}

impl Outlet {
    /// An outlet sending as worker `me` into `tx`.
    pub fn new(tx: mpsc::Sender<Tagged>, me: usize) -> Self {
        Outlet { tx, me }
    }

    /// Sends; a closed channel means the next stage has ended (its own error is the one
    /// reported).
    pub async fn send(&self, message: Message) -> Result<()> {
        self.tx.send((self.me, message)).await.map_err(|_| EngineError::ChannelClosed)
    }
}

/// Where a stage's output goes.
pub enum Downstream {
    /// One next stage.
    One(Outlet),
    /// Raw record batches split by source partition: partition `p` goes to worker
    /// `(p / sources) mod n`, so each partition is read, in order, by one worker. A
    /// union source of `sources` inputs numbers partition `q` of input `i` as
    /// `q * sources + i` ([`super::union_source`]): each worker then gets its share of
    /// every input's partitions, not one input's all.
    ByPartition {
        /// One outlet per worker.
        outlets: Vec<Outlet>,
        /// Inputs of the source (1 unless it is a union source).
        sources: usize,
    },
    /// Rows split by the hash of the group key, so each key lives on one worker.
    ByKey {
        /// One outlet per worker.
        outlets: Vec<Outlet>,
        /// The group key expressions.
        keys: Vec<Arc<dyn PhysicalExpr>>,
        /// A local aggregation's partial states ([`LocalAggregate::is_partial`]) are split
        /// by these, their key columns (`None`: no local aggregation).
        partial_keys: Option<Vec<Arc<dyn PhysicalExpr>>>,
    },
    /// A two-input join's rows (tagged with their side by the join's front,
    /// [`crate::operators::join_front::side_of`]) split by the hash of that side's key:
    /// both sides' keys have the same types, so equal keys meet on one worker.
    ByJoinKey {
        /// One outlet per worker.
        outlets: Vec<Outlet>,
        /// Each side's key expressions.
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    },
}

impl Downstream {
    /// Sends `message`: batches are routed, everything else goes to every worker (late
    /// rows go to the first).
    pub async fn send(&self, message: Message) -> Result<()> {
        match (self, message) {
            (Downstream::One(o), m) => o.send(m).await,
            (Downstream::ByPartition { outlets, sources }, Message::Batch(batch)) => {
                let n = outlets.len();
                let sources = (*sources).max(1) as i32;
                let partitions = batch.column(RawColumn::Partition as usize).as_primitive::<Int32Type>();
                let worker = |p: i32| p.div_euclid(sources).rem_euclid(n as i32) as usize;
                let route: Vec<usize> = partitions.values().iter().map(|&p| worker(p)).collect();
                send_split(outlets, &batch, &route).await
            }
            (Downstream::ByKey { outlets, keys, partial_keys }, Message::Batch(batch)) => {
                let keys = match partial_keys {
                    Some(p) if LocalAggregate::is_partial(&batch) => p,
                    _ => keys,
                };
                if outlets.len() == 1 || keys.is_empty() {
                    return match outlets.first() {
                        Some(o) => o.send(Message::Batch(batch)).await,
                        None => Ok(()),
                    };
                }
                let rows = batch.num_rows();
                let arrays = keys.iter().map(|k| k.evaluate(&batch)?.into_array(rows)).collect::<Result<Vec<_>, _>>()?;
                let route = route_by_key(&arrays, rows, outlets.len())?;
                send_split(outlets, &batch, &route).await
            }
            (Downstream::ByJoinKey { outlets, keys }, Message::Batch(batch)) => {
                let side = crate::operators::join_front::side_of(&batch)
                    .ok_or_else(|| EngineError::Internal("a join's row batch without its side reached the key exchange".into()))?;
                let rows = batch.num_rows();
                let arrays = keys[side].iter().map(|k| k.evaluate(&batch)?.into_array(rows)).collect::<Result<Vec<_>, _>>()?;
                let route = route_by_key(&arrays, rows, outlets.len())?;
                send_split(outlets, &batch, &route).await
            }
            // Side outputs go to one worker only: the sink writes each row once.
            (
                Downstream::ByPartition { outlets, .. } | Downstream::ByKey { outlets, .. } | Downstream::ByJoinKey { outlets, .. },
                m @ (Message::LateRows(_) | Message::DeadLetters(_)),
            ) => match outlets.first() {
                Some(o) => o.send(m).await,
                None => Ok(()),
            },
            (Downstream::ByPartition { outlets, .. } | Downstream::ByKey { outlets, .. } | Downstream::ByJoinKey { outlets, .. }, m) => {
                for o in outlets {
                    o.send(m.clone()).await?;
                }
                Ok(())
            }
        }
    }
}

/// Sends row `i` of `batch` to worker `route[i]` (one `take` per worker that gets rows).
async fn send_split(outlets: &[Outlet], batch: &RecordBatch, route: &[usize]) -> Result<()> {
    if let Some(&first) = route.first() {
        if route.iter().all(|&w| w == first) {
            return outlets[first].send(Message::Batch(batch.clone())).await;
        }
    }
    // The rows of each worker, in one pass over the route.
    let mut per_worker: Vec<Vec<u32>> = vec![Vec::with_capacity(route.len() / outlets.len().max(1) + 16); outlets.len()];
    for (i, &w) in route.iter().enumerate() {
        if let Some(rows) = per_worker.get_mut(w) {
            rows.push(i as u32);
        }
    }
    for (outlet, indices) in outlets.iter().zip(per_worker) {
        if indices.is_empty() {
            continue;
        }
        let indices = UInt32Array::from(indices);
        // A column of NULLs (one the query never reads, see `columns_read`) is made anew,
        // not taken row by row.
        let columns = batch
            .columns()
            .iter()
            .map(|c| match c.null_count() == c.len() {
                true => Ok(arrow::array::new_null_array(c.data_type(), indices.len())),
                false => arrow::compute::take(c, &indices, None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        outlet.send(Message::Batch(RecordBatch::try_new(batch.schema(), columns)?)).await?;
    }
    Ok(())
}

/// The receiving side of a stage with `senders` upstream workers (see the module docs).
///
/// Barriers are aligned as in Flink's aligned checkpoints: once a sender has delivered
/// barrier `id`, what it sends next is held back until every sender has delivered `id`.
/// The stage thus sees every row before the barrier, and none after it, before the
/// barrier itself, so its state snapshot at the barrier is exact. What is held back is
/// bounded by the channels before the senders (the source waits on the slowest worker).
pub struct Inputs {
    rx: mpsc::Receiver<Tagged>,
    senders: usize,
    barriers: BTreeMap<u64, usize>,
    /// Per sender: the barrier it delivered and the others have not yet (held back).
    blocked: Vec<bool>,
    /// Messages of blocked senders, in arrival order.
    held: VecDeque<Tagged>,
    /// Messages released by an aligned barrier, to process before reading on.
    replay: VecDeque<Tagged>,
    watermarks: Vec<Timestamp>,
    idle: Vec<bool>,
    current: Timestamp,
    ended: usize,
    idle_sent: bool,
}

impl Inputs {
    /// Merges `rx`, fed by `senders` workers.
    pub fn new(rx: mpsc::Receiver<Tagged>, senders: usize) -> Self {
        Inputs {
            rx,
            senders,
            barriers: BTreeMap::new(),
            blocked: vec![false; senders],
            held: VecDeque::new(),
            replay: VecDeque::new(),
            watermarks: vec![Timestamp::MIN; senders],
            idle: vec![false; senders],
            current: Timestamp::MIN,
            ended: 0,
            idle_sent: false,
        }
    }

    /// The next aligned message; `None` when every sender is gone without `End`.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let (from, message) = match self.replay.pop_front() {
                Some(m) => m,
                None => self.rx.recv().await?,
            };
            if self.blocked.get(from).copied().unwrap_or(false) {
                self.held.push_back((from, message));
                continue;
            }
            match message {
                Message::Barrier(id) => {
                    let seen = self.barriers.entry(id).or_insert(0);
                    *seen += 1;
                    if *seen >= self.senders {
                        self.barriers.remove(&id);
                        // Aligned: the held-back messages come next, in order.
                        self.blocked.iter_mut().for_each(|b| *b = false);
                        let held = std::mem::take(&mut self.held);
                        self.replay = held.into_iter().chain(std::mem::take(&mut self.replay)).collect();
                        return Some(Message::Barrier(id));
                    }
                    if let Some(b) = self.blocked.get_mut(from) {
                        *b = true;
                    }
                }
                Message::Watermark(w) => {
                    if let Some(slot) = self.watermarks.get_mut(from) {
                        *slot = (*slot).max(w);
                    }
                    if let Some(idle) = self.idle.get_mut(from) {
                        *idle = false;
                    }
                    self.idle_sent = false;
                    if let Some(m) = self.advance() {
                        return Some(m);
                    }
                }
                Message::Idle => {
                    if let Some(idle) = self.idle.get_mut(from) {
                        *idle = true;
                    }
                    if let Some(m) = self.advance() {
                        return Some(m);
                    }
                    if self.idle.iter().all(|i| *i) && !self.idle_sent {
                        self.idle_sent = true;
                        return Some(Message::Idle);
                    }
                }
                Message::End => {
                    self.ended += 1;
                    if self.ended >= self.senders {
                        return Some(Message::End);
                    }
                }
                other => return Some(other),
            }
        }
    }
}

impl Inputs {
    /// The minimum watermark over the senders that are not idle (when every sender is
    /// idle, the most advanced one's, as for partitions), when it moved forward.
    fn advance(&mut self) -> Option<Message> {
        let active = self.watermarks.iter().zip(&self.idle).filter(|(_, idle)| !**idle).map(|(w, _)| *w).min();
        let candidate = match active {
            Some(min) => min,
            None => self.watermarks.iter().copied().max()?,
        };
        tracing::debug!(watermarks = ?self.watermarks, idle = ?self.idle, candidate, current = self.current, "merged watermark");
        if candidate > self.current {
            self.current = candidate;
            return Some(Message::Watermark(candidate));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn barriers_align_and_watermarks_take_the_minimum() -> Result<()> {
        let (tx, rx) = mpsc::channel(16);
        let mut inputs = Inputs::new(rx, 2);
        let a = Outlet::new(tx.clone(), 0);
        let b = Outlet::new(tx, 1);
        a.send(Message::Barrier(1)).await?;
        a.send(Message::Watermark(10)).await?;
        b.send(Message::Watermark(5)).await?;
        b.send(Message::Barrier(1)).await?;
        b.send(Message::Watermark(20)).await?;
        // a falls idle: b alone sets the watermark until a speaks again.
        b.send(Message::Watermark(30)).await?;
        a.send(Message::Idle).await?;
        a.send(Message::Watermark(25)).await?;
        b.send(Message::Watermark(40)).await?;
        a.send(Message::End).await?;
        b.send(Message::End).await?;
        let mut seen = Vec::new();
        while let Some(m) = inputs.recv().await {
            let end = matches!(m, Message::End);
            seen.push(match m {
                Message::Barrier(id) => format!("barrier {id}"),
                Message::Watermark(w) => format!("watermark {w}"),
                Message::End => "end".into(),
                _ => "other".into(),
            });
            if end {
                break;
            }
        }
        // a's watermark 10 came after its barrier: held back until b's barrier.
        assert_eq!(seen, ["barrier 1", "watermark 5", "watermark 10", "watermark 30", "end"]);
        Ok(())
    }

    #[tokio::test]
    async fn rows_after_a_barrier_wait_until_every_sender_has_sent_it() -> Result<()> {
        let (tx, rx) = mpsc::channel(16);
        let mut inputs = Inputs::new(rx, 2);
        let a = Outlet::new(tx.clone(), 0);
        let b = Outlet::new(tx, 1);
        let rows = |n: i64| -> Result<Message> {
            let schema =
                Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, false)]));
            Ok(Message::Batch(RecordBatch::try_new(schema, vec![Arc::new(arrow::array::Int64Array::from(vec![n]))])?))
        };
        a.send(rows(1)?).await?;
        a.send(Message::Barrier(7)).await?;
        a.send(rows(2)?).await?;
        a.send(Message::Barrier(8)).await?;
        a.send(rows(3)?).await?;
        b.send(rows(10)?).await?;
        b.send(Message::Barrier(7)).await?;
        b.send(rows(20)?).await?;
        b.send(Message::Barrier(8)).await?;
        a.send(Message::End).await?;
        b.send(Message::End).await?;
        let mut seen = Vec::new();
        while let Some(m) = inputs.recv().await {
            match m {
                Message::Batch(b) => seen.push(format!("{}", b.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0))),
                Message::Barrier(id) => seen.push(format!("barrier {id}")),
                Message::End => break,
                _ => {}
            }
        }
        assert_eq!(seen, ["1", "10", "barrier 7", "2", "20", "barrier 8", "3"]);
        Ok(())
    }
}
