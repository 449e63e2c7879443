//! `eddy shell`: the interactive SQL shell (docs/DESIGN.md, control plane).
//!
//! Statements run on an embedded engine (its catalog durable in `--state-dir`), or on
//! an `eddy server` with `--server URL`. Input may span lines and ends at a `;` that is
//! not in a string or comment; history persists in `~/.eddy_history` (`EDDY_HISTORY`
//! overrides), Ctrl-R searches it, Tab completes keywords and names. A push query
//! prints rows as they arrive until its LIMIT or Ctrl-C, which cancels the query and
//! returns to the prompt; Ctrl-D leaves. `-f file.sql` runs a file and exits 1 at the
//! first error.

mod backend;
mod complete;
mod render;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use eddy_engine::substitute;
use eddy_engine::Session;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use self::backend::{Backend, Output, PushStream, ShellError};
use self::complete::{is_shell_command, ShellHelper};
use crate::settings::Settings;

/// Arguments of `eddy shell`.
#[derive(clap::Args, Debug)]
pub struct ShellArgs {
    /// Run statements on this `eddy server` instead of an embedded engine.
    #[arg(long)]
    server: Option<String>,
    /// Run the statements of this file, then exit (1 at the first error).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Directory of the embedded engine's durable catalog.
    #[arg(long, env = "EDDY_STATE_DIR", default_value = ".eddy")]
    state_dir: PathBuf,
    /// Prefix of the Kafka consumer groups of the queries.
    #[arg(long, env = "EDDY_APPLICATION_ID", default_value = "eddy")]
    application_id: String,
}

/// The embedded engine's log file in the state directory.
pub const LOG_FILE: &str = "eddy.log";

impl ShellArgs {
    /// Where the log goes: `<state dir>/eddy.log` for an embedded engine; `None` (standard
    /// error) with `--server`, where the engine and its log are the server's.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.server.is_none().then(|| self.state_dir.join(LOG_FILE))
    }
}

const HELP: &str = "Statements end with ';' and may span lines.
  SHOW STREAMS | TABLES | QUERIES | TOPICS | PROPERTIES | MODELS | VIEWS;
  DESCRIBE [EXTENDED] name;            EXPLAIN [(FORMAT DOT)] <statement> | <query id>;
  CREATE STREAM|TABLE ...;             CREATE STREAM name AS SELECT ...;
  INSERT INTO name SELECT ...;         SELECT ... EMIT CHANGES [LIMIT n];  (Ctrl-C stops it)
  SELECT ... FROM table WHERE key = ...;  (a pull query: the table's current rows)
  CREATE VIEW name AS SELECT ...;      DROP VIEW [IF EXISTS] name;
  EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END;
  TERMINATE <query id> | ALL;          DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC];
  SET 'auto.offset.reset'='earliest';  UNSET 'auto.offset.reset';
  RUN SCRIPT 'file.sql';               exit, or Ctrl-D, leaves.";

/// Runs the shell; returns the exit code.
pub async fn shell(settings: &Settings, args: ShellArgs) -> anyhow::Result<u8> {
    let mut _lock = None;
    let mut backend = match &args.server {
        Some(url) => Backend::Remote { url: url.trim_end_matches('/').to_string(), properties: Default::default() },
        None => {
            let restored = crate::state::restore(settings, &args.state_dir, &args.application_id, None).await?;
            for w in &restored.warnings {
                eprintln!("warning: {w}");
            }
            let crate::state::Restored { engine, lock, .. } = restored;
            _lock = Some(lock);
            Backend::Embedded { engine: Box::new(engine), session: Session::default() }
        }
    };
    let code = match &args.file {
        Some(file) => run_file(settings, &mut backend, file).await?,
        None => interactive(settings, &mut backend, &args).await?,
    };
    if let Backend::Embedded { engine, .. } = &mut backend {
        engine.stop_all().await;
    }
    Ok(code)
}

async fn run_file(settings: &Settings, backend: &mut Backend, file: &PathBuf) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !run_input(settings, backend, &text).await {
        return Ok(1);
    }
    Ok(0)
}

fn history_path() -> PathBuf {
    match std::env::var_os("EDDY_HISTORY") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".eddy_history"),
    }
}

async fn interactive(settings: &Settings, backend: &mut Backend, args: &ShellArgs) -> anyhow::Result<u8> {
    let names = Arc::new(Mutex::new(backend.names().await));
    let config = Config::builder().auto_add_history(false).max_history_size(10_000)?.build();
    let mut editor: Editor<ShellHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper { names: names.clone() }));
    let history = history_path();
    let _ = editor.load_history(&history);
    let front = match &args.server {
        Some(url) => format!("server {url}"),
        None => format!("embedded engine, catalog and log ({LOG_FILE}) in {}", args.state_dir.display()),
    };
    println!("Eddy {} shell ({front}). End statements with ';'. HELP lists them; Ctrl-D exits.", env!("CARGO_PKG_VERSION"));
    loop {
        let line = tokio::task::block_in_place(|| editor.readline("eddy> "));
        match line {
            Ok(input) => {
                let trimmed = input.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(trimmed);
                let _ = editor.append_history(&history).or_else(|_| editor.save_history(&history));
                if is_shell_command(trimmed) {
                    match trimmed.trim_end_matches(';').to_lowercase().as_str() {
                        "exit" | "quit" => break,
                        _ => println!("{HELP}"),
                    }
                    continue;
                }
                run_input(settings, backend, &input).await;
                let fresh = backend.names().await;
                if let Ok(mut n) = names.lock() {
                    *n = fresh;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}

/// Runs one input (one or more statements) and prints what it produced; false if a
/// statement failed.
async fn run_input(settings: &Settings, backend: &mut Backend, input: &str) -> bool {
    let sql = match substitute(input, |v| settings.variable(v)) {
        Ok(sql) => sql,
        Err(e) => {
            eprint!("{}", render::render_error(input, &ShellError { message: e.message, position: e.position, hint: e.hint }));
            return false;
        }
    };
    let (outputs, error) = backend.execute(&sql).await;
    for output in outputs {
        match output {
            Output::Entity(e) => println!("{}", render::render(&e)),
            Output::Push(stream) => stream_rows(stream).await,
        }
    }
    match error {
        Some(e) => {
            eprint!("{}", render::render_error(&sql, &e));
            false
        }
        None => true,
    }
}

/// Prints a push query's rows until it ends or Ctrl-C cancels it.
async fn stream_rows(stream: PushStream) {
    let PushStream { columns, rows: mut receiver, cancel, limit, .. } = stream;
    let widths = render::widths(&columns);
    println!("{}\n{}\n{}", render::rule(&widths), render::row_line(&columns, &widths), render::rule(&widths));
    let mut shown = 0usize;
    let mut cancelled = false;
    loop {
        tokio::select! {
            row = receiver.recv() => match row {
                Some(row) => {
                    println!("{}", render::row_line(&render::cells(&row), &widths));
                    shown += 1;
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                cancelled = true;
                break;
            }
        }
    }
    drop(receiver);
    tokio::task::spawn_blocking(cancel).await.ok();
    println!("{}", render::rule(&widths));
    if cancelled {
        println!("Query terminated ({shown} rows)");
    } else if limit.is_some_and(|l| shown >= l) {
        println!("Limit Reached");
    } else {
        println!("Query ended ({shown} rows)");
    }
}
