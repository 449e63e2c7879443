//! Operator state snapshots at checkpoint barriers (Flink's asynchronous barrier
//! snapshots, docs/DESIGN.md, fault tolerance).
//!
//! When a barrier has arrived on every input of an operator task (aligned, see
//! [`super::exchange::Inputs`]), the task asks each of its operators for its state
//! ([`crate::operator::Operator::snapshot`]) and leaves it on the query's
//! [`SnapshotBoard`] under the barrier id, before it forwards the barrier. The barrier
//! reaches the sink only after every task has done so; the sink takes the states of
//! that barrier off the board and writes them, with the checkpoint's source positions,
//! into the checkpoint directory ([`super::checkpoint::CheckpointStore::write`]).
//!
//! Each state batch is one Arrow IPC file (`op<op>-<name>-w<worker>of<workers>-<n>.arrow`),
//! so a checkpoint can be read with any Arrow tool.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;

use crate::error::{EngineError, Result};
use crate::operator::{OperatorState, Shard};

/// The state of one operator of one worker at one checkpoint.
#[derive(Debug, Clone)]
pub struct StateEntry {
    /// The operator's place in the query's operator chain (front operators first, then
    /// the ones after the key exchange), the same for every worker.
    pub op: usize,
    /// The operator's name ([`crate::operator::Operator::name`]), checked on restore.
    pub name: String,
    /// The worker that held it, `0..workers`.
    pub worker: usize,
    /// Workers of the operator's stage when the checkpoint was taken.
    pub workers: usize,
    /// The state.
    pub state: OperatorState,
}

impl StateEntry {
    /// The file name of its `n`th batch.
    pub fn file_name(&self, n: usize) -> String {
        format!("op{:02}-{}-w{}of{}-{n}.arrow", self.op, self.name, self.worker, self.workers)
    }

    /// Parses a name written by [`StateEntry::file_name`]: `(op, name, worker, workers, n)`.
    pub fn parse_file_name(file: &str) -> Option<(usize, String, usize, usize, usize)> {
        let stem = file.strip_prefix("op")?.strip_suffix(".arrow")?;
        let (op, rest) = stem.split_once('-')?;
        let (rest, n) = rest.rsplit_once('-')?;
        let (name, workers) = rest.rsplit_once("-w")?;
        let (worker, workers) = workers.split_once("of")?;
        Some((op.parse().ok()?, name.to_string(), worker.parse().ok()?, workers.parse().ok()?, n.parse().ok()?))
    }
}

/// Where a query's operator tasks leave their states for the sink (see the module docs).
#[derive(Debug, Default)]
pub struct SnapshotBoard {
    states: Mutex<BTreeMap<u64, Vec<StateEntry>>>,
}

impl SnapshotBoard {
    /// Leaves `entry` under barrier `id`.
    pub fn deposit(&self, id: u64, entry: StateEntry) {
        self.lock().entry(id).or_default().push(entry);
    }

    /// Takes the states left under barrier `id`, and drops any of earlier barriers.
    pub fn take(&self, id: u64) -> Vec<StateEntry> {
        let mut states = self.lock();
        let later = states.split_off(&(id.saturating_add(1)));
        let mut taken = std::mem::replace(&mut *states, later);
        taken.remove(&id).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<StateEntry>>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The states for operator `op` of worker `worker` of `workers`, from a checkpoint's
/// `entries`: its own entry when the checkpoint was taken with the same parallelism
/// (shard `None`), else every worker's entry with the shard to keep.
pub fn states_for(entries: &[StateEntry], op: usize, worker: usize, workers: usize) -> (Vec<OperatorState>, Option<Shard>) {
    let mine: Vec<&StateEntry> = entries.iter().filter(|e| e.op == op).collect();
    if mine.is_empty() {
        return (Vec::new(), None);
    }
    if mine.iter().all(|e| e.workers == workers) {
        let own = mine.iter().filter(|e| e.worker == worker).map(|e| e.state.clone()).collect();
        return (own, None);
    }
    (mine.iter().map(|e| e.state.clone()).collect(), Some(Shard { index: worker, count: workers }))
}

/// Writes `batch` as an Arrow IPC file at `path` and syncs it to disk.
///
/// Errors: the file cannot be created, written or synced.
pub fn write_ipc(path: &Path, batch: &RecordBatch) -> Result<()> {
    let io = |e: std::io::Error| EngineError::io("checkpoint state", path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Reads the batches of the Arrow IPC file at `path`, as one batch.
///
/// Errors: the file cannot be read or is not an Arrow IPC file; the message names the
/// file and says how to start without it.
pub fn read_ipc(path: &Path) -> Result<RecordBatch> {
    let damaged = |e: &dyn std::fmt::Display| {
        EngineError::State(format!(
            "checkpoint state {} cannot be read: {e}; delete that checkpoint directory to start from an older checkpoint or the committed offsets",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| damaged(&e))?;
    let reader = arrow::ipc::reader::FileReader::try_new(file, None).map_err(|e| damaged(&e))?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| damaged(&e))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| damaged(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let e = StateEntry { op: 3, name: "window-aggregate".into(), worker: 1, workers: 2, state: OperatorState::default() };
        assert_eq!(e.file_name(0), "op03-window-aggregate-w1of2-0.arrow");
        assert_eq!(StateEntry::parse_file_name(&e.file_name(4)), Some((3, "window-aggregate".to_string(), 1, 2, 4)));
        assert_eq!(StateEntry::parse_file_name("progress.json"), None);
    }

    #[test]
    fn a_changed_parallelism_hands_every_worker_all_states_and_its_shard() {
        let entry = |worker, workers| StateEntry { op: 1, name: "x".into(), worker, workers, state: OperatorState::default() };
        let entries = vec![entry(0, 2), entry(1, 2)];
        assert_eq!(states_for(&entries, 1, 1, 2).0.len(), 1);
        assert_eq!(states_for(&entries, 1, 1, 2).1, None);
        assert_eq!(states_for(&entries, 1, 2, 3).0.len(), 2);
        assert_eq!(states_for(&entries, 1, 2, 3).1, Some(Shard { index: 2, count: 3 }));
        assert!(states_for(&entries, 0, 0, 2).0.is_empty());
        let board = SnapshotBoard::default();
        board.deposit(5, entry(0, 2));
        board.deposit(6, entry(1, 2));
        assert_eq!(board.take(6).len(), 1);
        assert!(board.take(5).is_empty(), "earlier barriers' states are dropped");
    }
}
