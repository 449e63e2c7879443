//! `eddy`: the command-line front of the Eddy streaming SQL engine.
//!
//! - `eddy run DIR|FILE...`: submit `.sql` files in numbered order and run their queries;
//! - `eddy gen server-logs|transactions`: produce the generated events of SCENARIOS.md;
//! - `eddy produce`: produce literal values (for demos and tests);
//! - `eddy topics list|create|delete`: manage topics through the Kafka admin API;
//! - `eddy server`: ksqlDB's REST API over a durable catalog;
//! - `eddy shell`: the interactive SQL shell.

mod applied;
mod entity;
mod gen;
mod produce;
mod run;
mod server;
mod settings;
mod shell;
mod state;
mod topics;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

#[derive(Parser)]
#[command(name = "eddy", version, about = "Eddy: declarative streaming SQL over Kafka and PostgreSQL")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit the statements of .sql files (directories in numbered order) and run the queries until stopped.
    Run(run::RunArgs),
    /// Produce generated events (SCENARIOS.md) to a topic.
    Gen(gen::GenArgs),
    /// Produce the given values (one record each) to a topic.
    Produce(produce::ProduceArgs),
    /// List, create or delete topics.
    Topics(topics::TopicsArgs),
    /// Serve ksqlDB's REST API (statements, push queries, metrics) over a durable catalog.
    Server(server::ServerArgs),
    /// An interactive SQL shell, over an embedded engine or a server.
    Shell(shell::ShellArgs),
}

/// Logs go to standard error, except under the interactive shell over an embedded
/// engine: there the engine's log lines would land in the prompt, so they go to
/// `log_file` (`<state dir>/eddy.log`), as psql and the ksql CLI keep the server's log
/// out of the terminal. `EDDY_LOG` sets the filter (default `info`).
fn init_logging(log_file: Option<std::path::PathBuf>) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter = || tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let file = log_file.and_then(|path| {
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warning: cannot open the log file {}: {e}; logging to standard error", path.display());
                None
            }
        }
    });
    let (writer, ansi) = match file {
        Some(f) => (BoxMakeWriter::new(std::sync::Mutex::new(f)), false),
        None => (BoxMakeWriter::new(std::io::stderr), std::io::IsTerminal::is_terminal(&std::io::stderr())),
    };
    tracing_subscriber::fmt().with_env_filter(filter()).with_writer(writer).with_ansi(ansi).init();
}

/// Stack of the runtime's worker threads (bytes).
const STACK_BYTES: usize = 8 << 20;

/// mimalloc in place of glibc's malloc, as DataFusion's CLI does: micro-batches allocate
/// and free large buffers all the time, which glibc serves with mmap and page faults.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(match &cli.command {
        Command::Shell(args) => args.log_file(),
        _ => None,
    });
    // Worker threads get the main thread's 8 MiB stack rather than tokio's 2 MiB: a
    // statement of up to MAX_OPERATORS_PER_STATEMENT operators is planned and evaluated
    // on them, recursing once per operator (the memory is reserved, not committed).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(STACK_BYTES).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(&cli.settings, args).await,
            Command::Gen(args) => gen::gen(&cli.settings, args).await.map(|()| 0),
            Command::Produce(args) => produce::produce(&cli.settings, args).await.map(|()| 0),
            Command::Topics(args) => topics::topics(&cli.settings, args).await.map(|()| 0),
            Command::Server(args) => server::server(&cli.settings, args).await,
            Command::Shell(args) => shell::shell(&cli.settings, args).await,
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
