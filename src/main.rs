use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = metalfarm::cli::Cli::parse();
    metalfarm::cli::init_tracing(cli.log_format());
    metalfarm::cli::run(cli)
}
