use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    metalfarm::cli::init_tracing();
    let cli = metalfarm::cli::Cli::parse();
    metalfarm::cli::run(cli)
}
