//! A triggered workflow becomes a plan: its run name, and one planned job per job and
//! matrix combination, with what can be decided before anything runs already decided.
//!
//! At plan time the `github`, `inputs` and `vars` contexts are known, and per job the
//! `matrix` and `strategy` of each combination; `needs` (job outputs and results) is
//! not. So:
//! - the matrix is expanded ([`crate::workflow::matrix`]) unless it reads `needs`
//!   (then it is left as written, for run time);
//! - `runs-on` labels, the job's name and its concurrency group are evaluated unless
//!   they read `needs` (then kept as written);
//! - the job's `if` is decided when it reads only `github`, `inputs` and `vars` and
//!   calls no status function: GitHub runs such a condition as
//!   `success() && (cond)`, so what remains for run time is `success()` when it holds
//!   and `false` (the job will be skipped) when it does not. Otherwise it is kept as
//!   written. A job without `if` has `success()`, GitHub's default. A job whose
//!   condition implies `success()` and that needs a job the plan skips is skipped too.
//!
//! A job whose matrix or expressions fail at plan time fails alone, as on GitHub (where
//! e.g. a matrix over 256 configurations fails that job and the others run): it is one
//! entry with its [`JobPlan::error`], and the jobs that need it are skipped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use indexmap::IndexMap;
use serde_json::{json, Value as Json};

use crate::workflow::diag::Pos;
use crate::workflow::event::{inputs_context, DeclaredInput, Event, InputKind, RunInfo};
use crate::workflow::expr::{Allowed, EvalContext, Expr, JobStatus, Template, Value, JOB_STATUS_FUNCTIONS};
use crate::workflow::matrix::{self, Combination, MatrixError};
use crate::workflow::model::{Concurrency, InputType, Job, OrExpr, Text, Workflow};
use crate::workflow::yaml::{self, Node};

/// The contexts an expression may read at each place, as GitHub allows them.
const RUN_NAME_CONTEXTS: &[&str] = &["github", "inputs", "vars"];
const WORKFLOW_CONCURRENCY_CONTEXTS: &[&str] = &["github", "inputs", "vars"];
const JOB_IF_CONTEXTS: &[&str] = &["github", "needs", "vars", "inputs"];
const STRATEGY_CONTEXTS: &[&str] = &["github", "needs", "vars", "inputs"];
const JOB_CONTEXTS: &[&str] = &["github", "needs", "strategy", "matrix", "vars", "inputs"];
/// What the plan knows: an expression reading only these can be evaluated now.
const PLAN_TIME_CONTEXTS: &[&str] = &["github", "inputs", "vars", "matrix", "strategy"];

/// The run-time condition of a job without `if`.
pub const DEFAULT_IF: &str = "success()";
/// The run-time condition of a job the plan already knows will be skipped.
pub const SKIPPED_IF: &str = "false";

/// What the plan needs besides the workflow and the event.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The workflow file's path, shown in the plan and used when it has no `name`.
    pub path: String,
    pub run: RunInfo,
    /// The `vars` context (configuration variables).
    pub vars: IndexMap<String, Value>,
}

/// A workflow's plan for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPlan {
    pub path: String,
    pub name: String,
    pub run_name: String,
    /// The workflow-level concurrency group, evaluated.
    pub concurrency: Option<ConcurrencyPlan>,
    pub jobs: Vec<JobPlan>,
}

/// One job of the run: a job, or one combination of a job's matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub id: String,
    pub name: String,
    pub runs_on: Vec<String>,
    pub needs: Vec<String>,
    pub matrix: MatrixPlan,
    /// The condition left for run time: `success()`, `false`, or the `if` as written.
    pub if_: String,
    /// Whether that condition implies `success()` (it calls no status function), so
    /// the job is skipped when a job it needs is skipped.
    pub implies_success: bool,
    pub concurrency: Option<ConcurrencyPlan>,
    /// For a combination of an expanded matrix: how the scheduler treats the matrix's
    /// jobs together.
    pub strategy: Option<StrategyPlan>,
    /// Why the job fails before it runs (its matrix or an expression), if it does.
    pub error: Option<PlanError>,
}

/// `strategy.fail-fast` and `strategy.max-parallel` of a matrix, evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyPlan {
    pub fail_fast: bool,
    /// At most this many of the matrix's jobs run at once; `None`: no limit.
    pub max_parallel: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatrixPlan {
    /// No matrix.
    None,
    /// One combination of an expanded matrix.
    Combination(Combination),
    /// A matrix that reads `needs`: expanded at run time (the text as written).
    Deferred(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrencyPlan {
    pub group: String,
    /// `true`/`false`, or an expression text left for run time.
    pub cancel_in_progress: Value,
}

/// A workflow that cannot be planned: a matrix or expression that fails at plan time,
/// where GitHub fails the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct PlanError {
    pub pos: Pos,
    pub message: String,
}

impl PlanError {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        PlanError { pos, message: message.into() }
    }
}

/// Plans `workflow` for `event` (which must trigger it: see
/// [`crate::workflow::triggers`]).
pub fn plan(workflow: &Workflow, event: &Event, opts: &PlanOptions) -> Result<WorkflowPlan, PlanError> {
    let display_name = workflow.name.as_ref().map_or(opts.path.clone(), |n| n.value.clone());
    let mut contexts: IndexMap<String, Value> = IndexMap::new();
    contexts.insert("github".into(), event.github_context(&display_name, &opts.run));
    contexts.insert("inputs".into(), workflow_inputs(workflow, event));
    contexts.insert("vars".into(), Value::Object(opts.vars.clone()));

    let run_name = match &workflow.run_name {
        Some(text) => eval_string(text, RUN_NAME_CONTEXTS, &contexts)?,
        None => String::new(),
    };
    let run_name = if run_name.trim().is_empty() { default_run_name(event, &display_name) } else { run_name };
    let concurrency = match &workflow.concurrency {
        Some(c) => Some(plan_concurrency(c, WORKFLOW_CONCURRENCY_CONTEXTS, &contexts)?),
        None => None,
    };

    let mut jobs = Vec::new();
    for job in workflow.jobs.values() {
        let first = jobs.len();
        if let Err(error) = plan_job(job, &contexts, &mut jobs) {
            jobs.truncate(first);
            jobs.push(failed_job(job, error));
        }
    }
    propagate_skips(&job_order(workflow)?, &mut jobs);
    Ok(WorkflowPlan { path: opts.path.clone(), name: display_name, run_name, concurrency, jobs })
}

/// The jobs in an order where each comes after every job it needs (file order among
/// those that could go either way). An unknown need is ignored (the loader reports
/// it); a cycle is an error.
pub fn job_order(workflow: &Workflow) -> Result<Vec<String>, PlanError> {
    let index: HashMap<&str, usize> =
        workflow.jobs.keys().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    // Who needs whom, by index, so the order is found in time linear in the jobs and
    // their `needs` (a need listed twice counts twice).
    let mut remaining = vec![0usize; index.len()];
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); index.len()];
    for (i, job) in workflow.jobs.values().enumerate() {
        for need in job.needs.iter().filter_map(|n| index.get(n.value.as_str())) {
            remaining[i] += 1;
            needed_by[*need].push(i);
        }
    }
    // File order among the jobs that could go either way: always the first ready one.
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..index.len()).filter(|i| remaining[*i] == 0).map(Reverse).collect();
    let mut order: Vec<String> = Vec::with_capacity(index.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(workflow.jobs[next].id.value.clone());
        for &dependent in &needed_by[next] {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if order.len() < index.len() {
        let stuck = workflow.jobs.values().zip(&remaining).find(|(_, left)| **left > 0).map(|(job, _)| job);
        let pos = stuck.map_or(Pos::default(), |job| job.id.pos);
        return Err(PlanError::new(pos, "the jobs' `needs` form a cycle"));
    }
    Ok(order)
}

impl WorkflowPlan {
    /// The jobs that fail before they run.
    pub fn errors(&self) -> impl Iterator<Item = &PlanError> {
        self.jobs.iter().filter_map(|j| j.error.as_ref())
    }
}

/// The one entry of a job that fails at plan time: its values as written.
fn failed_job(job: &Job, error: PlanError) -> JobPlan {
    JobPlan {
        id: job.id.value.clone(),
        name: job.name.as_ref().map_or(job.id.value.clone(), |n| n.value.clone()),
        runs_on: job.runs_on.iter().flat_map(|r| r.labels.iter().map(|l| l.value.clone())).collect(),
        needs: job.needs.iter().map(|n| n.value.clone()).collect(),
        matrix: MatrixPlan::None,
        if_: job.if_.as_ref().map_or(DEFAULT_IF.to_string(), |c| c.value.clone()),
        implies_success: true,
        concurrency: None,
        strategy: None,
        error: Some(error),
    }
}

/// A job whose condition implies `success()` is skipped when a job it needs is
/// skipped or fails before running (GitHub skips dependents of skipped and failed
/// jobs): decided here when the needed job's fate already is.
fn propagate_skips(order: &[String], jobs: &mut [JobPlan]) {
    // The planned entries of each job id (a matrix has several), so each decision looks
    // only at the entries it concerns.
    let mut entries: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        entries.entry(job.id.clone()).or_default().push(i);
    }
    let skipped_or_failed = |jobs: &[JobPlan], id: &str| {
        entries
            .get(id)
            .is_some_and(|list| list.iter().all(|&i| jobs[i].if_ == SKIPPED_IF || jobs[i].error.is_some()))
    };
    for id in order {
        let Some(list) = entries.get(id.as_str()) else { continue };
        let skipped_need = {
            let entry = &jobs[list[0]];
            entry.implies_success
                && entry.if_ != SKIPPED_IF
                && entry.needs.iter().any(|need| skipped_or_failed(jobs, need))
        };
        if skipped_need {
            for &i in list {
                jobs[i].if_ = SKIPPED_IF.to_string();
            }
        }
    }
}

/// When `run-name` is absent or blank GitHub shows event-specific text: the head
/// commit's message for a push, the title for a pull request, else the workflow name.
fn default_run_name(event: &Event, workflow_name: &str) -> String {
    let from = |pointer: &str| event.payload.pointer(pointer).and_then(Json::as_str).map(str::to_string);
    let text = match event.name.as_str() {
        "push" => from("/head_commit/message"),
        "pull_request" | "pull_request_target" => from("/pull_request/title"),
        _ => None,
    };
    match text {
        Some(t) => t.lines().next().unwrap_or_default().to_string(),
        None => workflow_name.to_string(),
    }
}

/// The `inputs` context: a dispatch's inputs typed as the workflow declares them.
pub fn workflow_inputs(workflow: &Workflow, event: &Event) -> Value {
    if event.name != "workflow_dispatch" {
        return Value::Object(IndexMap::new());
    }
    let Some(config) = workflow.on.events.get("workflow_dispatch") else {
        return Value::Object(IndexMap::new());
    };
    let declared: Vec<DeclaredInput> = config
        .inputs
        .iter()
        .map(|(name, input)| DeclaredInput {
            name: name.clone(),
            kind: match input.kind {
                InputType::String => InputKind::String,
                InputType::Boolean => InputKind::Boolean,
                InputType::Number => InputKind::Number,
                InputType::Choice => InputKind::Choice,
                InputType::Environment => InputKind::Environment,
            },
            default: input.default.as_ref().map(node_to_value),
        })
        .collect();
    inputs_context(&declared, &event.payload)
}

fn plan_job(job: &Job, contexts: &IndexMap<String, Value>, out: &mut Vec<JobPlan>) -> Result<(), PlanError> {
    let needs: Vec<String> = job.needs.iter().map(|n| n.value.clone()).collect();
    let (if_, implies_success) = decide_if(job.if_.as_ref(), contexts)?;

    let combinations: Vec<Option<Combination>> = match job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) {
        None => vec![None],
        Some(node) => match expand_matrix(job, node, contexts)? {
            Expansion::Deferred(text) => {
                out.push(JobPlan {
                    id: job.id.value.clone(),
                    name: job.name.as_ref().map_or(job.id.value.clone(), |n| n.value.clone()),
                    runs_on: job
                        .runs_on
                        .iter()
                        .flat_map(|r| r.labels.iter().map(|l| l.value.clone()))
                        .collect(),
                    needs,
                    matrix: MatrixPlan::Deferred(text),
                    if_,
                    implies_success,
                    concurrency: None,
                    strategy: None,
                    error: None,
                });
                return Ok(());
            }
            Expansion::Combinations(list) if list.is_empty() => vec![None],
            Expansion::Combinations(list) => list.into_iter().map(Some).collect(),
        },
    };

    // `github.job` is the job's id in everything the job evaluates.
    let mut job_base = contexts.clone();
    if let Some(Value::Object(github)) = job_base.get_mut("github") {
        github.insert("job".to_string(), Value::String(job.id.value.clone()));
    }
    let total = combinations.len();
    for (index, combination) in combinations.into_iter().enumerate() {
        let mut job_contexts = job_base.clone();
        job_contexts.insert("matrix".into(), combination.clone().map_or(Value::Null, Value::Object));
        let strategy = strategy_context(job, index, total, &job_contexts)?;
        let strategy_plan = combination.as_ref().map(|_| strategy_plan(&strategy, total));
        job_contexts.insert("strategy".into(), strategy);

        let name = job_name(job, combination.as_ref(), &job_contexts)?;
        let mut runs_on = Vec::new();
        for label in job.runs_on.iter().flat_map(|r| r.labels.iter()) {
            runs_on.extend(eval_labels(label, &job_contexts)?);
        }
        let concurrency = match &job.concurrency {
            Some(c) => Some(plan_concurrency(c, JOB_CONTEXTS, &job_contexts)?),
            None => None,
        };
        out.push(JobPlan {
            id: job.id.value.clone(),
            name,
            runs_on,
            needs: needs.clone(),
            matrix: combination.map_or(MatrixPlan::None, MatrixPlan::Combination),
            if_: if_.clone(),
            implies_success,
            concurrency,
            strategy: strategy_plan,
            error: None,
        });
    }
    Ok(())
}

/// The scheduler's view of a matrix's `strategy` context. A `max-parallel` that is not a
/// positive number, or not below the number of jobs, limits nothing.
fn strategy_plan(strategy: &Value, total: usize) -> StrategyPlan {
    let Value::Object(map) = strategy else {
        return StrategyPlan { fail_fast: true, max_parallel: None };
    };
    let fail_fast = map.get("fail-fast").is_none_or(Value::is_truthy);
    let max_parallel = match map.get("max-parallel") {
        Some(Value::Number(n)) if *n >= 1.0 && (*n as usize) < total => Some(*n as u32),
        _ => None,
    };
    StrategyPlan { fail_fast, max_parallel }
}

/// `strategy`: fail-fast, job-index, job-total, max-parallel.
fn strategy_context(
    job: &Job,
    index: usize,
    total: usize,
    contexts: &IndexMap<String, Value>,
) -> Result<Value, PlanError> {
    let strategy = job.strategy.as_ref();
    let fail_fast = match strategy.and_then(|s| s.fail_fast.as_ref()) {
        Some(spanned) => match &spanned.value {
            OrExpr::Value(b) => Value::Bool(*b),
            OrExpr::Expr(text) => {
                let text = Text::new(spanned.pos, text.clone());
                eval_value(&text, STRATEGY_CONTEXTS, contexts).map(|v| Value::Bool(v.is_truthy()))?
            }
        },
        None => Value::Bool(true),
    };
    let max_parallel = match strategy.and_then(|s| s.max_parallel.as_ref()) {
        Some(spanned) => match &spanned.value {
            OrExpr::Value(n) => Value::Number(*n),
            OrExpr::Expr(text) => {
                eval_value(&Text::new(spanned.pos, text.clone()), STRATEGY_CONTEXTS, contexts)?
            }
        },
        None => Value::Number(total as f64),
    };
    let mut map = IndexMap::new();
    map.insert("fail-fast".to_string(), fail_fast);
    map.insert("job-index".to_string(), Value::Number(index as f64));
    map.insert("job-total".to_string(), Value::Number(total as f64));
    map.insert("max-parallel".to_string(), max_parallel);
    Ok(Value::Object(map))
}

/// The job's display name. A matrix job whose name has no expression (or that has no
/// name: its id) gets GitHub's suffix of the combination's values, `build (linux, 14)`,
/// leaving out null and empty values (and the brackets when none is left).
fn job_name(
    job: &Job,
    combination: Option<&Combination>,
    contexts: &IndexMap<String, Value>,
) -> Result<String, PlanError> {
    let (base, literal) = match &job.name {
        Some(text) => (eval_or_keep(text, JOB_CONTEXTS, contexts)?, !text.value.contains("${{")),
        None => (job.id.value.clone(), true),
    };
    let Some(combination) = combination.filter(|_| literal) else {
        return Ok(base);
    };
    let values: Vec<String> = combination
        .values()
        .filter(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
        .map(|v| match v {
            Value::Array(_) | Value::Object(_) => v.to_json().to_string(),
            other => other.coerce_to_string(),
        })
        .collect();
    Ok(if values.is_empty() { base } else { format!("{base} ({})", values.join(", ")) })
}

enum Expansion {
    Combinations(Vec<Combination>),
    Deferred(String),
}

/// Evaluates the matrix node (its expressions, at any depth) and expands it.
fn expand_matrix(job: &Job, node: &Node, contexts: &IndexMap<String, Value>) -> Result<Expansion, PlanError> {
    if node_reads(node, "needs") {
        return Ok(Expansion::Deferred(node_text(node)));
    }
    let value = eval_node(node, STRATEGY_CONTEXTS, contexts)?;
    matrix::expand(&value).map(Expansion::Combinations).map_err(|e| {
        let message = match e {
            MatrixError::TooManyCombinations(_) => format!("Strategy for job '{}' {e}", job.id.value),
            other => format!("the matrix of job '{}': {other}", job.id.value),
        };
        PlanError::new(node.pos, message)
    })
}

/// A YAML node as a value, with every string that holds `${{ }}` evaluated (a lone
/// expression keeps its type, so `${{ fromJSON(...) }}` gives a list or mapping).
fn eval_node(node: &Node, allowed: &[&str], contexts: &IndexMap<String, Value>) -> Result<Value, PlanError> {
    Ok(match &node.value {
        yaml::Value::String(s) if s.text.contains("${{") => {
            eval_value(&Text::new(node.pos, s.text.clone()), allowed, contexts)?
        }
        yaml::Value::Seq(items) => {
            Value::Array(items.iter().map(|i| eval_node(i, allowed, contexts)).collect::<Result<_, _>>()?)
        }
        yaml::Value::Map(entries) => {
            let mut map = IndexMap::new();
            for (key, value) in entries {
                map.insert(key.scalar_text(), eval_node(value, allowed, contexts)?);
            }
            Value::Object(map)
        }
        _ => node_to_value(node),
    })
}

/// A YAML node as a value, expressions left as text.
fn node_to_value(node: &Node) -> Value {
    match &node.value {
        yaml::Value::Null => Value::Null,
        yaml::Value::Bool(b) => Value::Bool(*b),
        yaml::Value::Number(n) => Value::Number(*n),
        yaml::Value::String(s) => Value::String(s.text.clone()),
        yaml::Value::Seq(items) => Value::Array(items.iter().map(node_to_value).collect()),
        yaml::Value::Map(entries) => {
            Value::Object(entries.iter().map(|(k, v)| (k.scalar_text(), node_to_value(v))).collect())
        }
    }
}

/// A node as compact text: a string as written, anything else as JSON.
fn node_text(node: &Node) -> String {
    match &node.value {
        yaml::Value::String(s) => s.text.clone(),
        _ => node_to_value(node).to_json().to_string(),
    }
}

fn node_reads(node: &Node, context: &str) -> bool {
    match &node.value {
        yaml::Value::String(s) => template_reads(&s.text, context),
        yaml::Value::Seq(items) => items.iter().any(|i| node_reads(i, context)),
        yaml::Value::Map(entries) => {
            entries.iter().any(|(k, v)| node_reads(k, context) || node_reads(v, context))
        }
        _ => false,
    }
}

/// Runs-on labels: each label's value; a label that computes a list adds each item.
fn eval_labels(label: &Text, contexts: &IndexMap<String, Value>) -> Result<Vec<String>, PlanError> {
    if text_reads(label, "needs") {
        return Ok(vec![label.value.clone()]);
    }
    Ok(match eval_value(label, JOB_CONTEXTS, contexts)? {
        Value::Array(items) => items.iter().map(Value::coerce_to_string).collect(),
        Value::Null => Vec::new(),
        other => vec![other.coerce_to_string()],
    })
}

fn plan_concurrency(
    concurrency: &Concurrency,
    allowed: &[&str],
    contexts: &IndexMap<String, Value>,
) -> Result<ConcurrencyPlan, PlanError> {
    if let Some(expr) = &concurrency.expr {
        if text_reads(expr, "needs") {
            return Ok(ConcurrencyPlan { group: expr.value.clone(), cancel_in_progress: Value::Bool(false) });
        }
        return Ok(match eval_value(expr, allowed, contexts)? {
            Value::Object(map) => ConcurrencyPlan {
                group: map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("group"))
                    .map_or(String::new(), |(_, v)| v.coerce_to_string()),
                cancel_in_progress: map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("cancel-in-progress"))
                    .map_or(Value::Bool(false), |(_, v)| Value::Bool(v.is_truthy())),
            },
            other => {
                ConcurrencyPlan { group: other.coerce_to_string(), cancel_in_progress: Value::Bool(false) }
            }
        });
    }
    let group = match &concurrency.group {
        Some(text) => eval_or_keep(text, allowed, contexts)?,
        None => String::new(),
    };
    let cancel_in_progress = match &concurrency.cancel_in_progress {
        None => Value::Bool(false),
        Some(spanned) => match &spanned.value {
            OrExpr::Value(b) => Value::Bool(*b),
            OrExpr::Expr(text) => {
                let text = Text::new(spanned.pos, text.clone());
                if text_reads(&text, "needs") {
                    Value::String(text.value.clone())
                } else {
                    Value::Bool(eval_value(&text, allowed, contexts)?.is_truthy())
                }
            }
        },
    };
    Ok(ConcurrencyPlan { group, cancel_in_progress })
}

/// Decides a job's `if` now when it only reads what the plan knows.
/// Also says whether the run-time condition implies `success()` (no status function),
/// so that a job is skipped when a job it needs is.
fn decide_if(
    condition: Option<&Text>,
    contexts: &IndexMap<String, Value>,
) -> Result<(String, bool), PlanError> {
    let Some(condition) = condition else {
        return Ok((DEFAULT_IF.to_string(), true));
    };
    let source = strip_wrapper(&condition.value);
    let allowed = Allowed { contexts: JOB_IF_CONTEXTS, functions: JOB_STATUS_FUNCTIONS };
    let expr = Expr::parse(source, &allowed).map_err(|e| PlanError::new(condition.pos, e.message))?;
    let plan_time = expr.referenced_contexts().iter().all(|c| RUN_NAME_CONTEXTS.contains(&c.as_str()));
    if !plan_time || expr.uses_status_function() {
        return Ok((condition.value.clone(), !expr.uses_status_function()));
    }
    let cx = EvalContext { contexts, status: JobStatus::Success, files: None };
    match expr.eval(&cx) {
        Ok(v) if v.is_truthy() => Ok((DEFAULT_IF.to_string(), true)),
        Ok(_) => Ok((SKIPPED_IF.to_string(), true)),
        Err(e) => Err(PlanError::new(condition.pos, e.message)),
    }
}

/// `${{ cond }}` → `cond`, when the whole text is one expression.
fn strip_wrapper(text: &str) -> &str {
    let t = text.trim();
    match t.strip_prefix("${{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner.trim(),
        _ => t,
    }
}

fn eval_value(text: &Text, allowed: &[&str], contexts: &IndexMap<String, Value>) -> Result<Value, PlanError> {
    let allowed = Allowed { contexts: allowed, functions: &[] };
    let template = Template::parse(&text.value, &allowed).map_err(|e| PlanError::new(text.pos, e.message))?;
    let cx = EvalContext { contexts, status: JobStatus::Success, files: None };
    template.eval(&cx).map_err(|e| PlanError::new(text.pos, e.message))
}

fn eval_string(
    text: &Text,
    allowed: &[&str],
    contexts: &IndexMap<String, Value>,
) -> Result<String, PlanError> {
    Ok(eval_value(text, allowed, contexts)?.coerce_to_string())
}

/// Evaluates a text now, or keeps it as written when it reads what only the run knows.
fn eval_or_keep(
    text: &Text,
    allowed: &[&str],
    contexts: &IndexMap<String, Value>,
) -> Result<String, PlanError> {
    let unknown = template_contexts(&text.value).iter().any(|c| !PLAN_TIME_CONTEXTS.contains(&c.as_str()));
    if unknown {
        return Ok(text.value.clone());
    }
    eval_string(text, allowed, contexts)
}

fn text_reads(text: &Text, context: &str) -> bool {
    template_reads(&text.value, context)
}

fn template_reads(text: &str, context: &str) -> bool {
    template_contexts(text).iter().any(|c| c == context)
}

/// The contexts the `${{ }}` parts of a text read (lower-cased). A text that does
/// not parse reads nothing here; evaluating it reports the error.
fn template_contexts(text: &str) -> Vec<String> {
    const ALL: &[&str] = &[
        "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs",
        "inputs",
    ];
    let allowed = Allowed { contexts: ALL, functions: JOB_STATUS_FUNCTIONS };
    match Template::parse(text, &allowed) {
        Ok(template) => template.exprs().flat_map(Expr::referenced_contexts).collect(),
        Err(_) => Vec::new(),
    }
}

impl WorkflowPlan {
    /// The plan as `metalfarm plan` prints it.
    pub fn to_json(&self) -> Json {
        json!({
            "path": self.path,
            "name": self.name,
            "run_name": self.run_name,
            "jobs": self.jobs.iter().map(JobPlan::to_json).collect::<Vec<_>>(),
        })
    }
}

impl JobPlan {
    /// The job as `metalfarm plan` prints it; a job that fails before running also
    /// has `"error"`.
    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "id": self.id,
            "name": self.name,
            "runs_on": self.runs_on,
            "needs": self.needs,
            "matrix": match &self.matrix {
                MatrixPlan::None => Json::Null,
                MatrixPlan::Combination(c) => Value::Object(c.clone()).to_json(),
                MatrixPlan::Deferred(text) => Json::String(text.clone()),
            },
            "if": self.if_,
            "concurrency": self.concurrency.as_ref().map(ConcurrencyPlan::to_json),
        });
        if let (Some(error), Json::Object(map)) = (&self.error, &mut out) {
            map.insert("error".to_string(), Json::String(error.message.clone()));
        }
        out
    }
}

impl ConcurrencyPlan {
    /// Whether a newer run or job of the group cancels the running one. An expression
    /// left for run time (it reads `needs`) counts as false.
    pub fn cancels_in_progress(&self) -> bool {
        self.cancel_in_progress == Value::Bool(true)
    }

    pub fn to_json(&self) -> Json {
        json!({"group": self.group, "cancel_in_progress": self.cancel_in_progress.to_json()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_of_templates() {
        assert_eq!(
            template_contexts("a ${{ matrix.os }} b ${{ needs.x.outputs.y }}"),
            vec!["matrix", "needs"]
        );
        assert_eq!(template_contexts("${{ '}}' }} ${{ github.ref }}"), vec!["github"]);
        assert!(template_contexts("no expressions").is_empty());
    }

    #[test]
    fn jobs_come_after_what_they_need() {
        let text = "on: push\njobs:\n  c:\n    needs: [a, b]\n    runs-on: x\n    steps: [{run: echo}]\n  \
                    a:\n    runs-on: x\n    steps: [{run: echo}]\n  \
                    b:\n    needs: a\n    runs-on: x\n    steps: [{run: echo}]\n  \
                    d:\n    runs-on: x\n    steps: [{run: echo}]\n";
        let loaded =
            crate::workflow::load::load(text, &crate::workflow::load::LoadOptions { syntax_only: true });
        let workflow = loaded.workflow.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        assert_eq!(job_order(&workflow).unwrap(), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn workflow_concurrency_and_what_waits_for_needs() {
        let text = "on: push\nconcurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true\njobs:\n  \
                    a:\n    runs-on: x\n    outputs: {label: '${{ steps.s.outputs.l }}'}\n    steps: [{id: s, run: echo}]\n  \
                    b:\n    needs: a\n    name: b on ${{ needs.a.outputs.label }}\n    \
                    runs-on: [self-hosted, '${{ needs.a.outputs.label }}']\n    \
                    concurrency: ${{ needs.a.outputs.label }}\n    steps: [{run: echo}]\n";
        let loaded =
            crate::workflow::load::load(text, &crate::workflow::load::LoadOptions { syntax_only: true });
        let workflow = loaded.workflow.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        let event = Event::new("push", serde_json::json!({"ref": "refs/heads/main", "after": "abc"}));
        let plan = plan(&workflow, &event, &PlanOptions { path: "ci.yml".into(), ..PlanOptions::default() })
            .expect("plans");
        assert_eq!(
            plan.concurrency,
            Some(ConcurrencyPlan {
                group: "ci-refs/heads/main".into(),
                cancel_in_progress: Value::Bool(true)
            })
        );
        let b = &plan.jobs[1];
        assert_eq!(b.name, "b on ${{ needs.a.outputs.label }}");
        assert_eq!(b.runs_on, vec!["self-hosted", "${{ needs.a.outputs.label }}"]);
        assert_eq!(b.concurrency.as_ref().map(|c| c.group.as_str()), Some("${{ needs.a.outputs.label }}"));
        assert_eq!(plan.run_name, "ci.yml");
    }

    #[test]
    fn matrix_jobs_carry_their_strategy() {
        let plan_of = |strategy: &str| {
            let text = format!(
                "on: push\njobs:\n  t:\n    runs-on: x\n    strategy:\n      matrix: {{os: [a, b, c]}}\n{strategy}    steps: [{{run: echo}}]\n  u:\n    runs-on: x\n    steps: [{{run: echo}}]\n"
            );
            let loaded =
                crate::workflow::load::load(&text, &crate::workflow::load::LoadOptions { syntax_only: true });
            let workflow = loaded.workflow.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
            let event = Event::new("push", serde_json::json!({"ref": "refs/heads/main", "after": "abc"}));
            plan(&workflow, &event, &PlanOptions::default()).expect("plans")
        };
        let defaults = plan_of("");
        assert_eq!(defaults.jobs.len(), 4);
        assert!(defaults.jobs[..3]
            .iter()
            .all(|j| j.strategy == Some(StrategyPlan { fail_fast: true, max_parallel: None })));
        assert_eq!(defaults.jobs[3].strategy, None, "a job without a matrix has no strategy");
        let limited = plan_of("      fail-fast: false\n      max-parallel: 2\n");
        assert_eq!(limited.jobs[0].strategy, Some(StrategyPlan { fail_fast: false, max_parallel: Some(2) }));
        let unlimited = plan_of("      max-parallel: ${{ 3 }}\n");
        assert_eq!(unlimited.jobs[0].strategy, Some(StrategyPlan { fail_fast: true, max_parallel: None }));
    }

    #[test]
    fn wrapper_is_stripped_only_around_one_expression() {
        assert_eq!(strip_wrapper("${{ github.ref == 'x' }}"), "github.ref == 'x'");
        assert_eq!(strip_wrapper("github.ref == 'x'"), "github.ref == 'x'");
        assert_eq!(strip_wrapper("${{ a }} && ${{ b }}"), "${{ a }} && ${{ b }}");
    }
}
