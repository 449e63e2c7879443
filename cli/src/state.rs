//! The state directory (`--state-dir`, default `.eddy`) of a long-running engine: a
//! lock, so two processes never share one catalog, and the command log of the durable
//! catalog (docs/DESIGN.md, control plane).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use eddy_engine::command_log::CommandLog;
use eddy_engine::Engine;

use crate::settings::Settings;

/// Where the command log lives in the state directory.
pub const COMMAND_LOG: &str = "commands.log";

/// An engine restored from its state directory; the lock is held while this lives.
pub struct Restored {
    /// The engine, its catalog and queries back.
    pub engine: Engine,
    /// Warnings to show: a damaged log tail, commands that no longer apply.
    pub warnings: Vec<String>,
    /// The lock on the state directory, released when dropped.
    pub lock: File,
    /// The text of every statement in the command log, oldest first.
    pub logged: Vec<String>,
}

/// Locks `dir`, replays its command log into a new engine and starts the queries
/// that were running, then records later changes in the log.
///
/// Errors: the directory cannot be created or is locked by another process; the log
/// cannot be read or is not a command log.
pub async fn restore(
    settings: &Settings,
    dir: &Path,
    application_id: &str,
    sandbox: Option<eddy_connectors::sandbox::Sandbox>,
) -> anyhow::Result<Restored> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the state directory {}", dir.display()))?;
    let lock_path = dir.join("LOCK");
    let lock = File::create(&lock_path).with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "the state directory {} is in use by another eddy process; connect to it with `eddy shell --server URL`, or give this one its own --state-dir",
            dir.display()
        );
    }
    let log_path: PathBuf = dir.join(COMMAND_LOG);
    let (log, commands, torn) = CommandLog::open(&log_path)?;
    let mut warnings = Vec::new();
    if let Some(t) = torn {
        warnings.push(format!(
            "command log {}: entry {} (byte {}) is damaged: {}; starting from the {} commands before it ({} bytes dropped)",
            log_path.display(),
            t.entry,
            t.offset,
            t.reason,
            commands.len(),
            t.dropped_bytes
        ));
    }
    let factory = Arc::new(settings.connectors(sandbox));
    let mut engine = Engine::new(Some(factory), application_id);
    engine.set_checkpointing(settings.checkpointing(Some(dir)));
    warnings.extend(engine.restore(&commands).await);
    if !commands.is_empty() {
        tracing::info!(commands = commands.len(), queries = engine.queries().len(), "catalog restored from {}", log_path.display());
    }
    engine.set_command_log(log);
    let logged = commands.iter().map(|c| c.statement.clone()).collect();
    Ok(Restored { engine, warnings, lock, logged })
}
