//! `metalfarm check [--format text|json] [--syntax-only] [PATH...]`: validates workflow
//! files. Text errors are `path:line:col: message`, one a line; exit 0 when every file is
//! valid, 1 when one is not, 2 for usage and I/O errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::workflow_files::{parallel_map, read_texts, workflow_files};
use crate::workflow::diag::Diagnostic;
use crate::workflow::load::{load, LoadOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only GitHub's checks: skip those that depend on this farm (available actions,
    /// containers) and the matrix-reference lint.
    #[arg(long)]
    pub syntax_only: bool,
    /// Workflow files, or directories of `*.yml`/`*.yaml` files (default: `workflows/`
    /// and `.github/workflows/`).
    pub paths: Vec<PathBuf>,
}

pub fn run(args: CheckArgs) -> ExitCode {
    match check(&args) {
        Ok(all_valid) => ExitCode::from(if all_valid { 0 } else { 1 }),
        Err(e) => {
            eprintln!("metalfarm check: {e:#}");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}

struct FileResult {
    path: String,
    diagnostics: Vec<Diagnostic>,
}

fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let files = workflow_files(&args.paths)?;
    let texts = read_texts(&files)?;
    let opts = LoadOptions { syntax_only: args.syntax_only };
    let results = parallel_map(files.len(), |i| FileResult {
        path: files[i].display().to_string(),
        diagnostics: load(&texts[i], &opts).diagnostics,
    });

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Text => {
            for result in &results {
                for d in &result.diagnostics {
                    writeln!(out, "{}", d.render(&result.path))?;
                }
            }
        }
        Format::Json => {
            let files: Vec<serde_json::Value> = results
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "path": r.path,
                        "valid": r.diagnostics.is_empty(),
                        "diagnostics": r.diagnostics.iter().map(|d| serde_json::json!({
                            "line": d.pos.line, "col": d.pos.col, "message": d.message,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let valid = results.iter().all(|r| r.diagnostics.is_empty());
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "valid": valid, "files": files }))?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(results.iter().all(|r| r.diagnostics.is_empty()))
}
