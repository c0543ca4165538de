//! The `metalfarm` command line: one file per command group. Commands are thin: they
//! read files and flags, call the library, and print. Exit codes follow DESIGN.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod client;
pub mod dispatch;
pub mod expr;
pub mod host;
pub mod job;
pub mod label;
pub mod plan;
pub mod provision;
pub mod run;
pub mod serve;
mod terminal;
pub mod workflow_files;

#[derive(Debug, Parser)]
#[command(
    name = "metalfarm",
    version,
    about = "A GitHub-Actions-compatible runner farm for bare-metal hosts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The controller: webhook endpoint, scheduler, REST API (embedded defaults without --config).
    Serve(serve::ServeArgs),
    /// Validate workflow files (default: `workflows/` and `.github/workflows/`).
    Check(check::CheckArgs),
    /// Evaluate a GitHub Actions expression (written without `${{ }}`).
    Expr(expr::ExprArgs),
    /// Dry run: which workflows and jobs an event would start, as JSON.
    Plan(plan::PlanArgs),
    /// The inventory: add, list, show, lock, unlock and remove hosts (through the server's API).
    Host(host::HostArgs),
    /// The labels of the inventory (through the server's API).
    Label(label::LabelArgs),
    /// Jobs: list, show and cancel them (through the server's API).
    Job(job::JobArgs),
    /// Runs: re-run one (through the server's API).
    Run(run::RunArgs),
    /// A manual run of a workflow, as `workflow_dispatch` (through the server's API).
    Dispatch(dispatch::DispatchArgs),
    /// Reinstall one host through Cobbler outside any job (through the server's API).
    Provision(provision::ProvisionArgs),
}

impl Cli {
    /// How the command logs: `serve --log-format`, else text.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Serve(args) => args.log_format,
            _ => LogFormat::Text,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// A line of text per event, in colour on a terminal.
    #[default]
    Text,
    /// A JSON object per line (time, level, target, fields, spans), for a log collector.
    Json,
}

/// Exit code for usage and I/O errors, shared by every command.
pub const EXIT_USAGE: u8 = 2;

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Expr(args) => expr::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Host(args) => host::run(args),
        Command::Label(args) => label::run(args),
        Command::Job(args) => job::run(args),
        Command::Run(args) => run::run(args),
        Command::Dispatch(args) => dispatch::run(args),
        Command::Provision(args) => provision::run(args),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings), so stdout stays
/// clean for the machine-readable output of commands: as text, in colour only on a
/// terminal (a log file or journal holds plain text), or as JSON lines.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}
