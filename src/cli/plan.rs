//! `metalfarm plan` (under construction).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {}

pub fn run(_args: PlanArgs) -> ExitCode {
    eprintln!("metalfarm plan: not built yet");
    ExitCode::from(super::EXIT_USAGE)
}
