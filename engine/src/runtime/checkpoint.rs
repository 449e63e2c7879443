//! Local checkpoints: a query's committed [`Progress`] (checkpoint id, the next offset of
//! every source partition, the watermark), kept under
//! `<checkpoint dir>/<consumer group>/chk-<id>.json`.
//!
//! Written after the sink has committed the checkpoint's rows and before the source
//! commits the offsets to the consumer group, at most once per checkpoint interval
//! (`'execution.checkpointing.interval'`) and always when the query stops. Each file is
//! written atomically (temporary file, fsync, rename, fsync of the directory); the
//! newest two are kept. A restarted query resumes from the newest readable one, or from
//! the sink's own progress (PostgreSQL's `eddy_progress`) when that is newer, and a
//! Kafka sink suppresses the records it wrote after it (see `KafkaSink`).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Progress;
use crate::error::{EngineError, Result};

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
}

impl CheckpointStore {
    /// The store of the query reading under consumer group `group_id`, below `root`.
    pub fn new(root: &Path, group_id: &str) -> Self {
        let name: String = group_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        CheckpointStore { dir: root.join(name) }
    }

    /// The directory holding this query's checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest checkpoint that can be read; damaged or half-written files are
    /// skipped with a warning (an older complete one is used).
    ///
    /// Errors: the directory exists but cannot be listed.
    pub fn latest(&self) -> Result<Option<Progress>> {
        for (id, path) in self.files()?.into_iter().rev() {
            match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| decode(&b)) {
                Ok(p) if p.checkpoint_id == id => return Ok(Some(p)),
                Ok(_) => tracing::warn!(file = %path.display(), "checkpoint file name and content disagree; skipped"),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "damaged checkpoint skipped"),
            }
        }
        Ok(None)
    }

    /// Writes `progress` atomically and prunes all but the newest
    /// [`RETAINED_CHECKPOINTS`].
    ///
    /// Errors: the file cannot be written, synced or renamed.
    pub fn write(&self, progress: &Progress) -> Result<()> {
        let io = |e: std::io::Error| EngineError::Other(format!("checkpoint {}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.dir.join(format!("chk-{:020}.json", progress.checkpoint_id));
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(encode(progress).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        let files = self.files()?;
        if files.len() > RETAINED_CHECKPOINTS {
            for (_, old) in &files[..files.len() - RETAINED_CHECKPOINTS] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }

    /// `(checkpoint id, path)` of every checkpoint file, oldest first.
    fn files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::Other(format!("checkpoint {}: {e}", self.dir.display()))),
        };
        let mut files: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let id = name.strip_prefix("chk-")?.strip_suffix(".json")?.parse::<u64>().ok()?;
                Some((id, e.path()))
            })
            .collect();
        files.sort();
        Ok(files)
    }
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
    use crate::runtime::PartitionOffset;

    #[test]
    fn progress_json_is_the_documented_shape() {
        let p = progress(3, 9_000_000_000);
        assert_eq!(encode(&p), r#"{"checkpoint_id":3,"positions":[{"topic":"t","partition":1,"offset":9000000000}],"watermark":3}"#);
        assert_eq!(decode(encode(&p).as_bytes()), Ok(p));
        assert!(decode(br#"{"checkpoint_id":3,"positions":[{"topic":"t"}],"watermark":null}"#).is_err_and(|e| e.contains("missing field `partition`")));
    }

    fn progress(id: u64, offset: i64) -> Progress {
        Progress { checkpoint_id: id, positions: vec![PartitionOffset { topic: "t".into(), partition: 1, next_offset: offset }], watermark: Some(id as i64) }
    }

    #[test]
    fn keeps_the_newest_two_and_skips_a_damaged_one() -> Result<()> {
        let root = std::env::temp_dir().join(format!("eddy-checkpoint-test-{}", std::process::id()));
        let store = CheckpointStore::new(&root, "app-q/1");
        assert_eq!(store.latest()?, None);
        for id in 1..=4 {
            store.write(&progress(id, id as i64 * 10))?;
        }
        let names: Vec<String> = std::fs::read_dir(store.dir()).map_err(|e| EngineError::Other(e.to_string()))?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        assert_eq!(names, ["chk-00000000000000000003.json", "chk-00000000000000000004.json"]);
        assert_eq!(store.latest()?, Some(progress(4, 40)));
        std::fs::write(store.dir().join("chk-00000000000000000004.json"), b"{\"checkpoint_id\": 4, \"posi").map_err(|e| EngineError::Other(e.to_string()))?;
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
