//! `metalfarm check [--format text|json] [--syntax-only] [PATH...]`: validates workflow
//! files. Text errors are `path:line:col: message`, one a line; exit 0 when every file is
//! valid, 1 when one is not, 2 for usage and I/O errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::workflow::diag::Diagnostic;
use crate::workflow::load::{load, LoadOptions};

/// Where workflows live when no path is given.
const DEFAULT_DIRS: [&str; 2] = ["workflows", ".github/workflows"];

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
    let texts = read_all(&files)?;
    let opts = LoadOptions { syntax_only: args.syntax_only };
    let results = load_all(&files, &texts, &opts);

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

/// The files to check: each file given, and the `*.yml`/`*.yaml` files of each directory.
fn workflow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if paths.is_empty() {
        let dirs: Vec<&Path> = DEFAULT_DIRS.iter().map(Path::new).filter(|d| d.is_dir()).collect();
        if dirs.is_empty() {
            bail!(
                "no workflow directory here (looked for {}); give files or directories",
                DEFAULT_DIRS.join(" and ")
            );
        }
        for dir in dirs {
            files.extend(dir_files(dir)?);
        }
        return Ok(files);
    }
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            files.extend(dir_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn dir_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading directory {}", dir.display()))?.path();
        let is_workflow = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
        if is_workflow && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_all(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", f.display()))
        })
        .collect()
}

/// Loads every file, on as many threads as there are cores (each file is independent).
fn load_all(files: &[PathBuf], texts: &[String], opts: &LoadOptions) -> Vec<FileResult> {
    let one = |i: usize| FileResult {
        path: files[i].display().to_string(),
        diagnostics: load(&texts[i], opts).diagnostics,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().max(1));
    if threads <= 1 || files.len() < 8 {
        return (0..files.len()).map(one).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(files.len())..((t + 1) * chunk).min(files.len());
                scope.spawn(move || range.map(one).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a check thread panicked")).collect()
    })
}
