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

/// A state directory locked and its command log read, not replayed yet.
pub struct Opened {
    /// An engine with its connectors and checkpointing, and an empty catalog.
    pub engine: Engine,
    /// Warnings so far (a damaged log tail).
    pub warnings: Vec<String>,
    /// The lock on the state directory, released when dropped.
    pub lock: File,
    log: CommandLog,
    log_path: PathBuf,
    commands: Vec<eddy_engine::command_log::Command>,
}

/// Locks `dir` and reads its command log: only local file I/O, so a server can listen
/// at once and replay in the background ([`Opened::replay`]).
///
/// Errors: the directory cannot be created or is locked by another process; the log
/// cannot be read or is not a command log.
pub fn open(
    settings: &Settings,
    dir: &Path,
    application_id: &str,
    sandbox: Option<eddy_connectors::sandbox::Sandbox>,
) -> anyhow::Result<Opened> {
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
    engine.set_server_properties(settings.server_properties(application_id));
    Ok(Opened { engine, warnings, lock, log, log_path, commands })
}

impl Opened {
    /// Replays the command log into the engine (the streams, tables and queries come
    /// back; queries reconnect), then records later changes in the log. Returns the
    /// warnings and the logged statements' texts.
    pub async fn replay_into(
        engine: &mut Engine,
        log: CommandLog,
        log_path: &Path,
        commands: &[eddy_engine::command_log::Command],
    ) -> Vec<String> {
        let warnings = engine.restore(commands).await;
        if !commands.is_empty() {
            tracing::info!(commands = commands.len(), queries = engine.queries().len(), "catalog restored from {}", log_path.display());
        }
        engine.set_command_log(log);
        warnings
    }

    /// Splits off what [`Opened::replay_into`] needs, leaving the engine and the lock.
    pub fn take_log(self) -> (Engine, File, Vec<String>, (CommandLog, PathBuf, Vec<eddy_engine::command_log::Command>)) {
        (self.engine, self.lock, self.warnings, (self.log, self.log_path, self.commands))
    }
}

/// Locks `dir`, replays its command log into a new engine and starts the queries
/// that were running, then records later changes in the log.
///
/// Errors: as [`open`].
pub async fn restore(
    settings: &Settings,
    dir: &Path,
    application_id: &str,
    sandbox: Option<eddy_connectors::sandbox::Sandbox>,
) -> anyhow::Result<Restored> {
    let (mut engine, lock, mut warnings, (log, log_path, commands)) = open(settings, dir, application_id, sandbox)?.take_log();
    warnings.extend(Opened::replay_into(&mut engine, log, &log_path, &commands).await);
    let logged = commands.iter().map(|c| c.statement.clone()).collect();
    Ok(Restored { engine, warnings, lock, logged })
}
