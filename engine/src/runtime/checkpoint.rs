//! Local checkpoints (docs/DESIGN.md fault tolerance): per query, under
//! `<checkpoint dir>/<consumer group>/chk-<id>/`, a directory holding
//!
//! - `progress.json`: the checkpoint id, the next offset of every source partition, the
//!   watermark ([`Progress`] as JSON);
//! - `plan.txt`: what the operator state depends on (the query's decode, watermark and
//!   stateful operators as EXPLAIN prints them): a restart into a changed query
//!   compares it and refuses to restore state taken of another plan (Flink's operator
//!   uid rule), naming the change and the way out;
//! - one Arrow IPC file per state batch of every stateful operator of every worker
//!   (`op<op>-<name>-w<worker>of<workers>-<n>.arrow`, see [`super::snapshot`]): open
//!   windows and their accumulators, MATCH_RECOGNIZE's sort buffer, held rows and
//!   partial-match positions, per-partition watermarks.
//!
//! A checkpoint is written into `chk-<id>.tmp/` (every file fsynced), renamed to
//! `chk-<id>/` and the parent directory fsynced: a crash leaves either the whole
//! checkpoint or none. The newest two are kept ([`RETAINED_CHECKPOINTS`]).
//!
//! When they are written, and which one a restarted query restores, is the pipeline's
//! (`runtime::pipeline`): a stateful query writes one at every barrier (its source sends
//! one every `'execution.checkpointing.interval'`), a stateless one at most once per
//! interval and when it stops. Checkpoints written by earlier versions as one
//! `chk-<id>.json` file (progress only) are still read.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::snapshot::{read_ipc, write_ipc, StateEntry};
use crate::connector::Progress;
use crate::error::{EngineError, Result};
use crate::operator::OperatorState;

/// Checkpoints kept per query.
pub const RETAINED_CHECKPOINTS: usize = 2;

/// The checkpoint interval when neither the session nor the engine sets one (ms), as
/// Flink's `execution.checkpointing.interval` in Eddy's default configuration.
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;

/// Where queries keep their checkpoints and how often they write them (the engine's
/// default; a session's `'execution.checkpointing.interval'` overrides the interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointing {
    /// The directory under which each query has its own (`<dir>/<consumer group>/`).
    pub dir: PathBuf,
    /// Milliseconds between two checkpoints of a query.
    pub interval_ms: u64,
}

impl Default for Checkpointing {
    /// `.eddy/checkpoints` in the working directory, every 10 s.
    fn default() -> Self {
        Checkpointing { dir: PathBuf::from(".eddy").join("checkpoints"), interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS }
    }
}

/// The checkpoints of one query.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    /// What the query's operator state depends on ([`crate::sql::planner::QueryPlan::state_fingerprint`]),
    /// written with each checkpoint and compared on restore.
    plan: Option<String>,
}

impl CheckpointStore {
    /// The store of the query reading under consumer group `group_id`, below `root`.
    pub fn new(root: &Path, group_id: &str) -> Self {
        let name: String = group_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        CheckpointStore { dir: root.join(name), plan: None }
    }

    /// The store, writing `plan` (the query's state fingerprint) with each checkpoint.
    pub fn with_plan(mut self, plan: String) -> Self {
        self.plan = Some(plan);
        self
    }

    /// The state fingerprint this store writes, if any.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// The directory holding this query's checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The progress of the newest checkpoint that can be read; damaged or half-written
    /// ones are skipped with a warning (an older complete one is used).
    ///
    /// Errors: the directory exists but cannot be listed.
    pub fn latest(&self) -> Result<Option<Progress>> {
        for (id, path) in self.files()?.into_iter().rev() {
            match read_progress(&path) {
                Ok(p) if p.checkpoint_id == id => return Ok(Some(p)),
                Ok(_) => tracing::warn!(file = %path.display(), "checkpoint name and content disagree; skipped"),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "damaged checkpoint skipped"),
            }
        }
        Ok(None)
    }

    /// The checkpoint with id `id`, with its operator states; `None` when there is no
    /// readable one. A checkpoint in the old one-file form has `with_state` false.
    ///
    /// Errors: the directory cannot be listed, or a state file of the checkpoint
    /// cannot be read (the checkpoint is damaged: restoring part of a state would give
    /// wrong results, so the query does not start).
    pub fn load(&self, id: u64) -> Result<Option<Checkpoint>> {
        let Some((_, path)) = self.files()?.into_iter().find(|(i, _)| *i == id) else { return Ok(None) };
        let progress = match read_progress(&path) {
            Ok(p) if p.checkpoint_id == id => p,
            Ok(_) | Err(_) => return Ok(None),
        };
        if !path.is_dir() {
            return Ok(Some(Checkpoint { progress, states: Vec::new(), with_state: false, plan: None }));
        }
        // Checkpoints of earlier versions have no plan file: they restore unchecked.
        let plan = std::fs::read_to_string(path.join(PLAN_FILE)).ok();
        let io = |e: std::io::Error| EngineError::io("checkpoint", &path, e);
        let mut files: Vec<(usize, String, usize, usize, usize, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some((op, op_name, worker, workers, n)) = StateEntry::parse_file_name(&name) {
                files.push((op, op_name, worker, workers, n, entry.path()));
            }
        }
        files.sort();
        let mut states: Vec<StateEntry> = Vec::new();
        for (op, name, worker, workers, _, file) in files {
            let batch = read_ipc(&file)?;
            match states.last_mut() {
                Some(e) if e.op == op && e.worker == worker && e.workers == workers => e.state.batches.push(batch),
                _ => states.push(StateEntry { op, name, worker, workers, state: OperatorState { batches: vec![batch] } }),
            }
        }
        Ok(Some(Checkpoint { progress, states, with_state: true, plan }))
    }

    /// Writes a checkpoint of `progress` and the operator `states` atomically (see the
    /// module docs) and prunes all but the newest [`RETAINED_CHECKPOINTS`].
    ///
    /// Errors: a file cannot be written, synced or renamed.
    pub fn write(&self, progress: &Progress, states: &[StateEntry]) -> Result<()> {
        let io = |e: std::io::Error| EngineError::io("checkpoint", &self.dir, e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let name = format!("chk-{:020}", progress.checkpoint_id);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io)?;
        }
        std::fs::create_dir(&tmp).map_err(io)?;
        for entry in states {
            for (n, batch) in entry.state.batches.iter().enumerate() {
                write_ipc(&tmp.join(entry.file_name(n)), batch)?;
            }
        }
        if let Some(plan) = &self.plan {
            let mut file = std::fs::File::create(tmp.join(PLAN_FILE)).map_err(io)?;
            file.write_all(plan.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let mut file = std::fs::File::create(tmp.join(PROGRESS_FILE)).map_err(io)?;
        file.write_all(encode(progress).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::File::open(&tmp).and_then(|d| d.sync_all()).map_err(io)?;
        if path.exists() {
            // The same id again (a stop right after a barrier): the newer one wins.
            std::fs::remove_dir_all(&path).map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        let files = self.files()?;
        if files.len() > RETAINED_CHECKPOINTS {
            for (_, old) in &files[..files.len() - RETAINED_CHECKPOINTS] {
                let _ = if old.is_dir() { std::fs::remove_dir_all(old) } else { std::fs::remove_file(old) };
            }
        }
        Ok(())
    }

    /// `(checkpoint id, path)` of every checkpoint (directory, or old one-file form),
    /// oldest first.
    fn files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io("checkpoint", &self.dir, e)),
        };
        let mut files: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let id = name.strip_prefix("chk-")?;
                let id = id.strip_suffix(".json").unwrap_or(id);
                Some((id.parse::<u64>().ok()?, e.path()))
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

/// A checkpoint read back: its progress and its operators' states.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Positions, watermark and id.
    pub progress: Progress,
    /// Every operator state of every worker.
    pub states: Vec<StateEntry>,
    /// Whether operator states were taken with it (false for the old one-file form).
    pub with_state: bool,
    /// The state fingerprint of the plan it was taken with (`None`: written by an
    /// earlier version).
    pub plan: Option<String>,
}

/// The progress file inside a checkpoint directory.
const PROGRESS_FILE: &str = "progress.json";

/// The file inside a checkpoint directory holding the state fingerprint of the plan it
/// was taken with (text, one line per stateful part of the plan).
pub const PLAN_FILE: &str = "plan.txt";

/// The progress of the checkpoint at `path` (directory or old one-file form).
fn read_progress(path: &Path) -> std::result::Result<Progress, String> {
    let file = if path.is_dir() { path.join(PROGRESS_FILE) } else { path.to_path_buf() };
    std::fs::read(&file).map_err(|e| e.to_string()).and_then(|b| decode(&b))
}

fn encode(p: &Progress) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> std::result::Result<Progress, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The newer of two progresses (by checkpoint id), with each partition at the furthest
/// position either has: what a restarted query resumes from.
pub fn newest(a: Option<Progress>, b: Option<Progress>) -> Option<Progress> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (mut newer, older) = if a.checkpoint_id >= b.checkpoint_id { (a, b) } else { (b, a) };
            for o in older.positions {
                match newer.positions.iter_mut().find(|p| p.topic == o.topic && p.partition == o.partition) {
                    Some(p) => p.next_offset = p.next_offset.max(o.next_offset),
                    None => newer.positions.push(o),
                }
            }
            newer.watermark = match (newer.watermark, older.watermark) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            Some(newer)
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::PartitionOffset;
    use arrow::record_batch::RecordBatch;

    #[test]
    fn progress_json_is_the_documented_shape() {
        let p = progress(3, 9_000_000_000);
        assert_eq!(encode(&p), r#"{"checkpoint_id":3,"positions":[{"topic":"t","partition":1,"offset":9000000000}],"watermark":3}"#);
        assert_eq!(decode(encode(&p).as_bytes()), Ok(p));
        assert!(decode(br#"{"checkpoint_id":3,"positions":[{"topic":"t"}],"watermark":null}"#)
            .is_err_and(|e| e.contains("missing field `partition`")));
    }

    fn progress(id: u64, offset: i64) -> Progress {
        Progress {
            checkpoint_id: id,
            positions: vec![PartitionOffset { topic: "t".into(), partition: 1, next_offset: offset }],
            watermark: Some(id as i64),
        }
    }

    #[test]
    fn keeps_the_newest_two_and_skips_a_damaged_one() -> Result<()> {
        let root = std::env::temp_dir().join(format!("eddy-checkpoint-test-{}", std::process::id()));
        let store = CheckpointStore::new(&root, "app-q/1");
        assert_eq!(store.latest()?, None);
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "x",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3]))])?;
        let state = StateEntry {
            op: 2,
            name: "window-aggregate".into(),
            worker: 0,
            workers: 1,
            state: OperatorState { batches: vec![batch.clone(), batch.slice(0, 1)] },
        };
        for id in 1..=4 {
            store.write(&progress(id, id as i64 * 10), std::slice::from_ref(&state))?;
        }
        let names: Vec<String> = std::fs::read_dir(store.dir())
            .map_err(|e| EngineError::io("test file", store.dir(), e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names, ["chk-00000000000000000003", "chk-00000000000000000004"]);
        assert_eq!(store.latest()?, Some(progress(4, 40)));
        let loaded = store.load(4)?.ok_or_else(|| EngineError::Internal("no checkpoint 4".into()))?;
        assert!(loaded.with_state);
        assert_eq!(loaded.states.len(), 1);
        assert_eq!(loaded.states[0].state.batches, vec![batch.clone(), batch.slice(0, 1)]);
        // A damaged state file is an error naming the file, not a restore of part of a state.
        let state_file = store.dir().join("chk-00000000000000000004").join(state.file_name(1));
        std::fs::write(&state_file, b"ARROW1 but not really").map_err(|e| EngineError::io("test file", store.dir(), e))?;
        let err = store.load(4).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with(&format!("checkpoint state {} cannot be read: ", state_file.display())), "{err}");
        assert!(err.ends_with("delete that checkpoint directory to start from an older checkpoint or the committed offsets"), "{err}");
        std::fs::write(store.dir().join("chk-00000000000000000004").join(PROGRESS_FILE), b"{\"checkpoint_id\": 4, \"posi")
            .map_err(|e| EngineError::io("test file", store.dir(), e))?;
        assert_eq!(store.latest()?, Some(progress(3, 30)));
        assert!(store.load(4)?.is_none());
        // A half-written checkpoint (no rename yet) is not one.
        std::fs::create_dir_all(store.dir().join("chk-00000000000000000009.tmp"))
            .map_err(|e| EngineError::io("test file", store.dir(), e))?;
        assert_eq!(store.latest()?, Some(progress(3, 30)));
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }

    #[test]
    fn newest_takes_the_later_id_and_the_furthest_positions() {
        let mut a = progress(5, 50);
        a.positions.push(PartitionOffset { topic: "t".into(), partition: 2, next_offset: 7 });
        let b = progress(6, 40);
        let n = newest(Some(a), Some(b));
        assert_eq!(n.as_ref().map(|p| p.checkpoint_id), Some(6));
        assert_eq!(n.map(|p| p.positions.iter().map(|o| (o.partition, o.next_offset)).collect::<Vec<_>>()), Some(vec![(1, 50), (2, 7)]));
    }
}
