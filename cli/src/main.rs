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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
