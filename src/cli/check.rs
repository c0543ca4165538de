//! `metalfarm check` (under construction).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn run(_args: CheckArgs) -> ExitCode {
    eprintln!("metalfarm check: not built yet");
    ExitCode::from(super::EXIT_USAGE)
}
