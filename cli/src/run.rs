//! `eddy run DIR|FILE...`: submit `.sql` files and run their persistent queries.
//!
//! Files of a directory are taken in numbered order: numeric prefix first (`01_`,
//! `02_`, `10_`), then name. Every statement of every file is parsed and planned before
//! anything starts; the first error is printed with file, line, column, the offending
//! line with a caret, and a hint, and the exit code is 2. Then the queries run until
//! SIGINT/SIGTERM, which flushes the sinks, commits the offsets and exits 0 (1 if a
//! query failed). With `--state-dir` the catalog is durable and each file is applied
//! once ([`crate::applied`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use eddy_engine::substitute;
use eddy_engine::QueryStatus;
use eddy_engine::{Engine, Script, ScriptError, SqlError};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use crate::settings::Settings;

/// Arguments of `eddy run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// `.sql` files, or directories of them (taken in numbered order).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Prefix of the Kafka consumer groups of the queries (`<id>-<query id>`), like ksqlDB's service id.
    #[arg(long, env = "EDDY_APPLICATION_ID", default_value = "eddy")]
    application_id: String,
    /// Parse and plan every statement, print the plans, and exit without running anything.
    #[arg(long)]
    check: bool,
    /// Parse and plan every statement of every file, report every error (not only the
    /// first), and exit without running anything: 0 when all plan, 2 otherwise.
    #[arg(long, conflicts_with = "check")]
    validate: bool,
    /// Write the queries' status and counters as JSON to this file every second.
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// Keep a durable catalog in this directory (as `eddy server` does): the streams,
    /// tables and queries of earlier runs come back from its command log, files already
    /// applied (recorded with their checksum) are not applied again, and an applied file
    /// that changed is refused. Without it, each run starts from an empty catalog.
    #[arg(long, conflicts_with_all = ["check", "validate"])]
    state_dir: Option<PathBuf>,
}

/// `(numeric prefix, name)`: `01_a.sql` < `2_b.sql` < `10_c.sql` < `x.sql`.
fn order_key(path: &Path) -> (u64, String) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), name)
}

/// The `.sql` files named by `paths`, directories expanded in numbered order.
pub fn sql_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
                .collect();
            in_dir.sort_by_key(|p| order_key(p));
            if in_dir.is_empty() {
                anyhow::bail!("no .sql files in {}", path.display());
            }
            files.extend(in_dir);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Prints `file:line:col: message`, the line with a caret under the column, and the hint.
pub fn print_sql_error(script: &str, sql: &str, error: &SqlError) {
    let location = match error.position {
        Some(p) => format!("{script}:{}:{}", p.line, p.column),
        None => script.to_string(),
    };
    eprintln!("error: {location}: {}", error.message);
    if let Some(p) = error.position {
        if let Some(line) = sql.lines().nth(p.line.saturating_sub(1) as usize) {
            let number = p.line.to_string();
            eprintln!("{} |", " ".repeat(number.len()));
            eprintln!("{number} | {line}");
            eprintln!("{} | {}^", " ".repeat(number.len()), " ".repeat(p.column.saturating_sub(1) as usize));
        }
    }
    if let Some(hint) = &error.hint {
        eprintln!("hint: {hint}");
    }
}

/// Runs `eddy run`; returns the process exit code.
pub async fn run(settings: &Settings, args: RunArgs) -> anyhow::Result<u8> {
    let files = sql_files(&args.paths)?;
    let mut scripts = Vec::with_capacity(files.len());
    for file in &files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
        match substitute(&text, |v| settings.variable(v)) {
            Ok(sql) => scripts.push(Script { name, sql }),
            Err(e) => {
                print_sql_error(&name, &text, &e);
                return Ok(2);
            }
        }
    }
    if let Some(dir) = args.state_dir.clone() {
        let restored = crate::state::restore(settings, &dir, &args.application_id, None).await?;
        for w in &restored.warnings {
            eprintln!("warning: {w}");
        }
        let crate::state::Restored { mut engine, lock, logged, .. } = restored;
        let code = match crate::applied::apply_new(&mut engine, &dir, &scripts, &logged).await? {
            Some(failed) => failed,
            None => run_queries(&mut engine, &args).await?,
        };
        drop(lock);
        return Ok(code);
    }
    let factory = Arc::new(settings.connectors(None));
    let mut engine = Engine::new(Some(factory), args.application_id.clone());
    engine.set_checkpointing(settings.checkpointing(None));
    if args.validate {
        let (errors, planned) = engine.validate(&scripts);
        for ScriptError { script, error } in &errors {
            let sql = scripts.iter().find(|s| s.name == *script).map(|s| s.sql.as_str()).unwrap_or("");
            print_sql_error(script, sql, error);
        }
        let files = scripts.len();
        if errors.is_empty() {
            eprintln!("{planned} statements in {files} files plan without errors");
            return Ok(0);
        }
        let bad: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.script.as_str()).collect();
        eprintln!("{} errors in {} of {files} files ({planned} statements plan)", errors.len(), bad.len());
        return Ok(2);
    }
    let plan = match engine.plan(&scripts) {
        Ok(plan) => plan,
        Err(ScriptError { script, error }) => {
            let sql = scripts.iter().find(|s| s.name == script).map(|s| s.sql.as_str()).unwrap_or("");
            print_sql_error(&script, sql, &error);
            return Ok(2);
        }
    };
    if args.check {
        for statement in &plan.statements {
            println!("{statement}");
        }
        return Ok(0);
    }
    for result in engine.apply(plan).await? {
        eprintln!("{result}");
    }
    run_queries(&mut engine, &args).await
}

/// Longest wait for the queries to flush and commit when Eddy stops: a broker or
/// database that stopped answering (a sync commit waits for it without end) must not
/// keep the process from exiting.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// What Eddy says when the queries did not stop within [`SHUTDOWN_TIMEOUT`].
pub const SHUTDOWN_TIMEOUT_MESSAGE: &str = "stopping: the queries did not finish flushing and committing within 60 s (a broker or \
     database is not answering); exiting without their last commit: they resume from their last committed progress, and \
     nothing is lost or repeated";

/// Runs the engine's queries until SIGINT/SIGTERM, a failure, or the end of every
/// bounded input; returns the exit code.
async fn run_queries(engine: &mut Engine, args: &RunArgs) -> anyhow::Result<u8> {
    if engine.queries().is_empty() {
        eprintln!("no persistent queries to run");
        return Ok(0);
    }
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    // A query's status change (its end) is seen at once, so a run over files exits as
    // soon as its last query has finished. Every second: the status file; every 10 s: the log.
    let mut updates: Vec<tokio::sync::watch::Receiver<QueryStatus>> = engine.queries().iter().map(|q| q.status_updates()).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    let mut failed = false;
    loop {
        let changed = async {
            if updates.is_empty() {
                std::future::pending::<()>().await;
            }
            let any = futures::future::select_all(updates.iter_mut().map(|u| Box::pin(u.changed())));
            if any.await.0.is_err() {
                // The query's handle is gone: only the tick looks at it from now on.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = changed => {}
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    write_status(engine, args.status_file.as_deref());
                }
                if ticks.is_multiple_of(100) {
                    log_progress(engine);
                }
            }
        }
        if engine.queries().iter().any(|q| matches!(q.status(), QueryStatus::Failed(_))) {
            failed = true;
            break;
        }
        // Queries over bounded sources (files) end by themselves; when all have, the
        // run is complete, like a batch job.
        if engine.queries().iter().all(|q| !q.is_running()) {
            eprintln!("every query has finished its input");
            break;
        }
    }
    eprintln!("stopping: flushing sinks and committing offsets");
    let statuses = match tokio::time::timeout(SHUTDOWN_TIMEOUT, engine.stop_all()).await {
        Ok(statuses) => statuses,
        Err(_) => {
            eprintln!("{SHUTDOWN_TIMEOUT_MESSAGE}");
            return Ok(1);
        }
    };
    write_status(engine, args.status_file.as_deref());
    log_progress(engine);
    for (id, status) in statuses {
        if let QueryStatus::Failed(e) = &status {
            eprintln!("query {id} failed: {e}");
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn log_progress(engine: &Engine) {
    for q in engine.queries() {
        let m = q.metrics.snapshot();
        tracing::info!(
            query = %q.plan.id,
            status = %q.status(),
            rows_in = m.rows_in,
            rows_out = m.rows_out,
            malformed = m.malformed,
            late_rows = m.late_rows,
            open_windows = m.open_windows,
            partial_matches = m.partial_matches,
            state_bytes = m.state_bytes,
            "progress"
        );
    }
}

/// Writes the status JSON atomically (temporary file, then rename).
fn write_status(engine: &Engine, path: Option<&Path>) {
    let Some(path) = path else { return };
    let queries: Vec<serde_json::Value> = engine
        .queries()
        .iter()
        .map(|q| {
            let m = q.metrics.snapshot();
            json!({
                "id": q.plan.id,
                "status": q.status().to_string(),
                "source": q.plan.source.name,
                "sink": q.plan.sink.name,
                "rows_in": m.rows_in,
                "bytes_in": m.bytes_in,
                "rows_out": m.rows_out,
                "malformed": m.malformed,
                "committed_batches": m.committed_batches,
                "late_rows": m.late_rows,
                "open_windows": m.open_windows,
                "partial_matches": m.partial_matches,
                "match_keys": m.match_keys,
                "held_rows": m.held_rows,
                "state_bytes": m.state_bytes,
                "watermark": m.watermark,
                "consumer_lag": m.consumer_lag,
            })
        })
        .collect();
    let body = json!({ "queries": queries }).to_string();
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, path)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the status file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_order() {
        let mut files: Vec<PathBuf> = ["10_c.sql", "x.sql", "2_b.sql", "01_a.sql", "02_a.sql"].iter().map(PathBuf::from).collect();
        files.sort_by_key(|p| order_key(p));
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["01_a.sql", "02_a.sql", "2_b.sql", "10_c.sql", "x.sql"]);
    }
}
