//! `metalfarm expr` (under construction).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ExprArgs {}

pub fn run(_args: ExprArgs) -> ExitCode {
    eprintln!("metalfarm expr: not built yet");
    ExitCode::from(super::EXIT_USAGE)
}
