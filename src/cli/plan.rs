//! `metalfarm plan --event NAME --payload FILE [--workflows PATH...]`: a dry run of
//! what an event would start. Prints JSON on stdout:
//!
//! ```text
//! {"workflows": [{"path", "name", "run_name",
//!   "jobs": [{"id", "name", "runs_on": [...], "needs": [...], "matrix": {...} | null,
//!             "if": "...", "concurrency": {"group", "cancel_in_progress"} | null}]}]}
//! ```
//!
//! one job entry per matrix combination. `if` is the condition left for run time
//! (`success()` when it already holds, `false` when the job will be skipped). A value
//! that reads `needs` stays as written (a matrix from `needs` is that text).
//! Files that do not load, workflows whose filters or run name fail, and jobs whose
//! matrix or expressions fail (one entry with `"error"`) are reported on stderr as
//! `path:line:col: message` and make the exit code 1; the rest is still planned. Exit 2
//! for usage and I/O errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indexmap::IndexMap;

use super::workflow_files::{parallel_map, read_texts, workflow_files};
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::expr::Value;
use crate::workflow::load::{load, LoadOptions};
use crate::workflow::plan::{plan, PlanError, PlanOptions};
use crate::workflow::triggers::{triggers, TriggerContext};

/// Shown by `metalfarm plan --help`.
const OUTPUT_HELP: &str = "\
Output (JSON on stdout): {\"workflows\": [{\"path\", \"name\", \"run_name\", \"jobs\": [{\"id\", \"name\",
\"runs_on\", \"needs\", \"matrix\", \"if\", \"concurrency\"}]}]}, one job entry per matrix combination.
\"if\" is the condition left for run time: \"success()\" when the job's `if` already holds, \"false\"
when the job will be skipped, else the `if` as written. Values that read `needs` stay as written.
A job whose matrix or expressions fail before it runs has one entry, with \"error\".

Exit status: 0 when every workflow file loads and plans, 1 when a file or job does not
(reported on stderr as path:line:col: message; the rest is still planned), 2 for usage and
I/O errors.";

#[derive(Debug, clap::Args)]
#[command(after_help = OUTPUT_HELP)]
pub struct PlanArgs {
    /// The event's name, as in `on:` (`push`, `pull_request`, `workflow_dispatch`,
    /// `schedule`, `repository_dispatch`, …).
    #[arg(long, value_name = "NAME")]
    pub event: String,
    /// The event's webhook payload (JSON), as the forge sends it.
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,
    /// Workflow files, or directories of `*.yml`/`*.yaml` files (default: `workflows/`
    /// and `.github/workflows/`).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub workflows: Vec<PathBuf>,
    /// The commit for events whose payload names none (`workflow_dispatch`,
    /// `schedule`, `repository_dispatch`).
    #[arg(long)]
    pub sha: Option<String>,
    /// A configuration variable (`vars` context), `NAME=VALUE`; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// A file the event changed, for `paths` filters; repeatable. Without it the
    /// files are those a push's commits list, and a pull request (whose payload lists
    /// none) passes its `paths` filters, as on GitHub when the diff is unknown.
    #[arg(long = "changed-file", value_name = "PATH")]
    pub changed_files: Vec<String>,
}

pub fn run(args: PlanArgs) -> ExitCode {
    match plan_command(&args) {
        Ok(all_ok) => ExitCode::from(if all_ok { 0 } else { 1 }),
        Err(e) => {
            eprintln!("metalfarm plan: {e:#}");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}

fn plan_command(args: &PlanArgs) -> anyhow::Result<bool> {
    let payload_text = std::fs::read_to_string(&args.payload)
        .with_context(|| format!("reading {}", args.payload.display()))?;
    let payload: serde_json::Value = serde_json::from_str(&payload_text)
        .with_context(|| format!("{} is not JSON", args.payload.display()))?;
    let event = Event::new(args.event.clone(), payload);
    let mut vars = IndexMap::new();
    for var in &args.vars {
        let Some((name, value)) = var.split_once('=') else {
            bail!("--var {var}: expected NAME=VALUE");
        };
        vars.insert(name.to_string(), Value::String(value.to_string()));
    }
    let run = RunInfo { sha: args.sha.clone(), ..RunInfo::default() };

    let files = workflow_files(&args.workflows)?;
    let texts = read_texts(&files)?;
    let changed = (!args.changed_files.is_empty()).then_some(args.changed_files.as_slice());
    let opts = PlanOptions { path: String::new(), run, vars };
    let outcomes = parallel_map(files.len(), |i| {
        plan_file(&files[i].display().to_string(), &texts[i], &event, changed, &opts)
    });

    let mut all_ok = true;
    let mut planned = Vec::new();
    for outcome in outcomes {
        for error in &outcome.errors {
            eprintln!("{error}");
        }
        all_ok &= outcome.errors.is_empty();
        planned.extend(outcome.plan);
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "workflows": planned }))?;
    writeln!(out)?;
    out.flush()?;
    Ok(all_ok)
}

/// What one workflow file gives: its plan when the event starts it, and the errors
/// (`path:line:col: message`) that keep it from loading or planning.
struct FileOutcome {
    plan: Option<serde_json::Value>,
    errors: Vec<String>,
}

fn plan_file(
    path: &str,
    text: &str,
    event: &Event,
    changed_files: Option<&[String]>,
    opts: &PlanOptions,
) -> FileOutcome {
    let failed = |errors: Vec<String>| FileOutcome { plan: None, errors };
    let loaded = load(text, &LoadOptions { syntax_only: true });
    let Some(workflow) = loaded.workflow else {
        return failed(loaded.diagnostics.iter().map(|d| d.render(path)).collect());
    };
    let cx = TriggerContext { workflow_path: path, changed_files };
    match triggers(&workflow, event, &cx) {
        Ok(Some(_)) => {}
        Ok(None) => return FileOutcome { plan: None, errors: Vec::new() },
        Err(e) => return failed(vec![format!("{path}:{}:{}: {}", e.pos.line, e.pos.col, e.error)]),
    }
    let opts = PlanOptions { path: path.to_string(), ..opts.clone() };
    let render = |e: &PlanError| format!("{path}:{}:{}: {}", e.pos.line, e.pos.col, e.message);
    match plan(&workflow, event, &opts) {
        Ok(p) => FileOutcome { plan: Some(p.to_json()), errors: p.errors().map(render).collect() },
        Err(e) => failed(vec![render(&e)]),
    }
}
