//! `eddy run --state-dir`: which files were applied, with their checksums
//! (`applied.json` in the state directory), in the manner of ksql-migrations'
//! migration records. An applied file is not applied again; its streams, tables and
//! queries come back from the command log. A file that changed after it was applied is
//! refused, because re-applying it would start its queries a second time.

use std::path::Path;

use anyhow::Context;
use eddy_engine::{Engine, EngineError, Script, ScriptError, Session};
use serde::{Deserialize, Serialize};

use crate::run::print_sql_error;

/// The record file in the state directory.
pub const APPLIED: &str = "applied.json";

/// One applied file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppliedFile {
    /// The file's name as given (`queries/fraud/01_sources.sql`).
    pub file: String,
    /// CRC-32 of its text after variable substitution, in hex.
    pub checksum: String,
    /// When it was applied (ms since the epoch).
    pub applied_at_ms: i64,
}

/// The text of each statement of `sql`, as the command log records it; none if it does
/// not parse (the planning step reports that).
fn statement_texts(sql: &str) -> Vec<String> {
    eddy_engine::split_statements(sql).map(|p| p.into_iter().map(|s| s.text).collect()).unwrap_or_default()
}

fn checksum(sql: &str) -> String {
    format!("{:08x}", crc32fast::hash(sql.as_bytes()))
}

fn read(dir: &Path) -> anyhow::Result<Vec<AppliedFile>> {
    let path = dir.join(APPLIED);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the record atomically (temporary file, fsync, rename).
fn write(dir: &Path, applied: &[AppliedFile]) -> anyhow::Result<()> {
    let path = dir.join(APPLIED);
    let tmp = dir.join(format!("{APPLIED}.tmp"));
    let text = serde_json::to_string_pretty(applied)?;
    let file = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()
    });
    file.and_then(|()| std::fs::rename(&tmp, &path)).with_context(|| format!("cannot write {}", path.display()))
}

/// Applies the scripts not applied yet, in order, and records each. Returns
/// `Some(exit code)` when nothing may run (a changed file, a statement that does not
/// plan or fails), `None` when the queries should run.
///
/// Errors: the record cannot be read or written.
pub async fn apply_new(engine: &mut Engine, dir: &Path, scripts: &[Script], logged: &[String]) -> anyhow::Result<Option<u8>> {
    let mut applied = read(dir)?;
    // Statements in the command log that no applied file accounts for: a run killed
    // in the middle of a file logged them without recording the file as applied.
    let mut unaccounted: Vec<&str> = logged.iter().map(String::as_str).collect();
    for script in scripts.iter().filter(|s| applied.iter().any(|a| a.file == s.name)) {
        for text in statement_texts(&script.sql) {
            if let Some(i) = unaccounted.iter().position(|l| *l == text) {
                unaccounted.remove(i);
            }
        }
    }
    let mut new = Vec::new();
    for script in scripts {
        let sum = checksum(&script.sql);
        match applied.iter().find(|a| a.file == script.name) {
            Some(a) if a.checksum == sum => {
                let at = chrono::DateTime::from_timestamp_millis(a.applied_at_ms).map(|t| t.to_rfc3339()).unwrap_or_default();
                eprintln!("{}: applied {at}, unchanged; not applied again", script.name);
            }
            Some(a) => {
                eprintln!(
                    "error: {} changed since it was applied (checksum {} then, {sum} now)\nhint: an applied file is never re-applied, which would start its queries twice; put the change in a new numbered file (TERMINATE or DROP, then CREATE), or restore the file",
                    script.name, a.checksum
                );
                return Ok(Some(2));
            }
            None => {
                // Leave out the statements an interrupted run already applied.
                let texts = statement_texts(&script.sql);
                let mut rest = Vec::new();
                for text in &texts {
                    match unaccounted.iter().position(|l| l == text) {
                        Some(i) => {
                            unaccounted.remove(i);
                        }
                        None => rest.push(text.clone()),
                    }
                }
                if rest.len() == texts.len() {
                    new.push(script.clone());
                } else {
                    eprintln!(
                        "{}: {} of its {} statements were applied before an interruption; applying the other {}",
                        script.name,
                        texts.len() - rest.len(),
                        texts.len(),
                        rest.len()
                    );
                    let sql = rest.iter().map(|t| format!("{t};\n")).collect::<String>();
                    new.push(Script { name: script.name.clone(), sql });
                }
            }
        }
    }
    // Plan every new file before applying any, so a mistake in the last starts nothing.
    if let Err(ScriptError { script, error }) = engine.plan(&new) {
        let sql = new.iter().find(|s| s.name == script).map(|s| s.sql.as_str()).unwrap_or("");
        print_sql_error(&script, sql, &error);
        return Ok(Some(2));
    }
    let mut session = Session::default();
    for script in &new {
        match engine.execute(&script.sql, &mut session).await {
            Ok(executed) => {
                for e in executed {
                    for r in e.results {
                        eprintln!("{r}");
                    }
                }
            }
            Err(e) => {
                match &e.error {
                    EngineError::Sql(error) => print_sql_error(&script.name, &script.sql, error),
                    other => eprintln!("error: {}: {other}", script.name),
                }
                return Ok(Some(2));
            }
        }
        let original = scripts.iter().find(|s| s.name == script.name).map_or(script.sql.as_str(), |s| s.sql.as_str());
        applied.push(AppliedFile {
            file: script.name.clone(),
            checksum: checksum(original),
            applied_at_ms: chrono::Utc::now().timestamp_millis(),
        });
        write(dir, &applied)?;
    }
    Ok(None)
}
