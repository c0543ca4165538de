//! `metalfarm expr`: evaluates a GitHub Actions expression (written without `${{ }}`).
//!
//! One expression: `metalfarm expr [--context FILE] [--workspace DIR] EXPR` prints the
//! value as JSON. The contexts file is a JSON object whose keys are context names; the
//! expression may name those and the usual workflow contexts (absent ones are null).
//! Exit 0 with the value, 1 when the expression does not parse or evaluate (the
//! message on stderr), 2 for usage or I/O errors.
//!
//! Many: `metalfarm expr --jsonl` reads lines `{"expr": "...", "contexts": {...}}` and
//! writes one line per input, `{"ok": true, "value": V}` or `{"ok": false, "error":
//! "..."}`; the allowed contexts are the keys of that line's `contexts`. Expression
//! errors are answers, not failures: exit 0 once every line is answered, 2 when a line
//! is not such an object (it is still answered) or on I/O errors.
//!
//! Both modes allow the status functions (as for a step's `if:`, status success) and
//! `hashFiles`, which hashes files under `--workspace` (an error without it).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;

use crate::exec::hash_files::WorkspaceHasher;
use crate::workflow::expr::{
    js, Allowed, EvalContext, Expr, FileHasher, FunctionSig, JobStatus, Value, HASH_FILES, STATUS_FUNCTIONS,
};

#[derive(Debug, clap::Args)]
pub struct ExprArgs {
    /// JSON file with the contexts, e.g. `{"github": {...}, "env": {...}}`.
    #[arg(long, value_name = "FILE", conflicts_with = "jsonl")]
    pub context: Option<PathBuf>,
    /// Directory `hashFiles()` hashes files under.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Read `{"expr", "contexts"}` lines on stdin, answer one JSON line each.
    #[arg(long)]
    pub jsonl: bool,
    /// The expression, without `${{ }}`.
    #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl")]
    pub expr: Option<String>,
}

/// Contexts a workflow can name, allowed in the one-expression mode besides the keys
/// of the contexts file.
const WORKFLOW_CONTEXTS: &[&str] = &[
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs",
    "inputs",
];

fn functions() -> Vec<FunctionSig> {
    let mut f = STATUS_FUNCTIONS.to_vec();
    f.push(HASH_FILES);
    f
}

pub fn run(args: ExprArgs) -> ExitCode {
    let hasher = args.workspace.as_ref().map(WorkspaceHasher::new);
    let files = hasher.as_ref().map(|h| h as &dyn FileHasher);
    if args.jsonl {
        return match run_jsonl(files) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(super::EXIT_USAGE),
            Err(e) => {
                eprintln!("metalfarm expr: {e:#}");
                ExitCode::from(super::EXIT_USAGE)
            }
        };
    }
    let contexts = match args.context.as_ref().map(read_contexts).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("metalfarm expr: {e:#}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let src = args.expr.unwrap_or_default();
    let mut names: Vec<&str> = WORKFLOW_CONTEXTS.to_vec();
    names.extend(contexts.keys().map(String::as_str));
    let functions = functions();
    match evaluate(&src, &contexts, &names, &functions, files) {
        Ok(value) => {
            println!("{}", value.to_json_string());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("metalfarm expr: {message}");
            ExitCode::from(1)
        }
    }
}

fn read_contexts(path: &PathBuf) -> Result<IndexMap<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match Value::parse_json(&text) {
        Some(Value::Object(map)) => Ok(map),
        Some(_) => bail!("{}: the contexts must be a JSON object", path.display()),
        None => bail!("{}: not valid JSON", path.display()),
    }
}

fn evaluate(
    src: &str,
    contexts: &IndexMap<String, Value>,
    names: &[&str],
    functions: &[FunctionSig],
    files: Option<&dyn FileHasher>,
) -> Result<Value, String> {
    let allowed = Allowed { contexts: names, functions };
    let expr = Expr::parse(src, &allowed).map_err(|e| e.message)?;
    let cx = EvalContext { contexts, status: JobStatus::Success, files };
    expr.eval(&cx).map_err(|e| e.message)
}

/// Answers every line; `Ok(false)` when some line was not a valid request.
fn run_jsonl(files: Option<&dyn FileHasher>) -> Result<bool> {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let functions = functions();
    let mut all_valid = true;
    for line in stdin.lines() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match parse_request(&line) {
            Ok((src, contexts)) => {
                let names: Vec<&str> = contexts.keys().map(String::as_str).collect();
                evaluate(&src, &contexts, &names, &functions, files)
            }
            Err(e) => {
                all_valid = false;
                Err(e)
            }
        };
        let mut text = String::new();
        match answer {
            Ok(v) => {
                text.push_str("{\"ok\":true,\"value\":");
                js::write_json(&mut text, &v, "", 0);
            }
            Err(message) => {
                text.push_str("{\"ok\":false,\"error\":");
                js::write_json_string(&mut text, &message);
            }
        }
        text.push('}');
        writeln!(out, "{text}").context("writing stdout")?;
    }
    out.flush().context("writing stdout")?;
    Ok(all_valid)
}

fn parse_request(line: &str) -> Result<(String, IndexMap<String, Value>), String> {
    let bad = |why: &str| {
        format!("invalid input line ({why}): expected {{\"expr\": \"...\", \"contexts\": {{...}}}}")
    };
    let Some(Value::Object(mut req)) = Value::parse_json(line) else { return Err(bad("not a JSON object")) };
    let Some(Value::String(src)) = req.swap_remove("expr") else { return Err(bad("no \"expr\" string")) };
    let contexts = match req.swap_remove("contexts") {
        None | Some(Value::Null) => IndexMap::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad("\"contexts\" is not an object")),
    };
    Ok((src, contexts))
}
