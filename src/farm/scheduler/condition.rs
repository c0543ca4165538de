//! A job's `if`, decided when every job it needs has finished.
//!
//! GitHub's rules: an `if` that calls no status function runs as
//! `success() && (if)`; `success()` holds when every job up the dependency chain
//! succeeded (a skipped, failed or cancelled ancestor makes it false, so dependents
//! of a skipped job are skipped); `failure()` holds when an ancestor failed;
//! `needs.<id>.result` is `success`, `failure`, `cancelled` or `skipped`.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::workflow::expr::{Allowed, EvalContext, Expr, JobStatus, Value, JOB_STATUS_FUNCTIONS};
use crate::workflow::plan::{DEFAULT_IF, SKIPPED_IF};

use super::Conclusion;

/// The contexts a job's `if` may read, as GitHub allows them.
const JOB_IF_CONTEXTS: &[&str] = &["github", "needs", "vars", "inputs"];

/// A job's `if` and what it reads besides `needs`.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The `if` as the plan left it (`success()` when the job has none), with or
    /// without `${{ }}`.
    pub expr: String,
    /// The `github`, `inputs` and `vars` contexts of the run, shared by its jobs;
    /// the scheduler adds `needs`.
    pub contexts: Arc<IndexMap<String, Value>>,
}

impl Condition {
    pub fn new(expr: impl Into<String>, contexts: Arc<IndexMap<String, Value>>) -> Condition {
        Condition { expr: expr.into(), contexts }
    }
}

impl Default for Condition {
    /// GitHub's default: `success()`.
    fn default() -> Condition {
        Condition::new(DEFAULT_IF, Arc::default())
    }
}

/// The worst outcome up a job's dependency chain, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Chain {
    Success,
    Skipped,
    Cancelled,
    Failure,
}

impl From<Conclusion> for Chain {
    fn from(conclusion: Conclusion) -> Chain {
        match conclusion {
            Conclusion::Success => Chain::Success,
            Conclusion::Skipped => Chain::Skipped,
            Conclusion::Cancelled => Chain::Cancelled,
            Conclusion::Failure => Chain::Failure,
        }
    }
}

/// A parsed condition; the two the plan writes most are recognised without parsing.
pub(super) enum Compiled {
    /// `success()`: run when the whole chain succeeded.
    Success,
    /// `false`: the plan already knows the job is skipped.
    Never,
    Expr(Box<CompiledExpr>),
    /// The `if` does not parse: the job fails with this message.
    Invalid(String),
}

pub(super) struct CompiledExpr {
    expr: Expr,
    /// No status function: GitHub runs it as `success() && (if)`.
    implies_success: bool,
    contexts: Arc<IndexMap<String, Value>>,
    /// The contexts the expression reads, lower-cased.
    reads: Vec<String>,
    reads_needs: bool,
}

/// What a released job's `if` decided.
pub(super) enum Verdict {
    Run,
    Skip,
    Fail(String),
}

impl Compiled {
    pub fn new(condition: Condition) -> Compiled {
        let source = strip_wrapper(&condition.expr);
        match source {
            DEFAULT_IF | "" => return Compiled::Success,
            SKIPPED_IF => return Compiled::Never,
            _ => {}
        }
        let allowed = Allowed { contexts: JOB_IF_CONTEXTS, functions: JOB_STATUS_FUNCTIONS };
        match Expr::parse(source, &allowed) {
            Ok(expr) => {
                let reads = expr.referenced_contexts();
                Compiled::Expr(Box::new(CompiledExpr {
                    implies_success: !expr.uses_status_function(),
                    reads_needs: reads.iter().any(|c| c == "needs"),
                    reads,
                    expr,
                    contexts: condition.contexts,
                }))
            }
            Err(err) => Compiled::Invalid(format!("the job's `if` is invalid: {err}")),
        }
    }

    /// Decides the condition; `needs` builds the `needs` context when it is read.
    pub fn decide(&self, chain: Chain, needs: impl FnOnce() -> Value) -> Verdict {
        let c = match self {
            Compiled::Success if chain == Chain::Success => return Verdict::Run,
            Compiled::Success | Compiled::Never => return Verdict::Skip,
            Compiled::Invalid(message) => return Verdict::Fail(message.clone()),
            Compiled::Expr(c) => c,
        };
        if c.implies_success && chain != Chain::Success {
            return Verdict::Skip;
        }
        let mut contexts = IndexMap::with_capacity(c.reads.len());
        if c.reads_needs {
            contexts.insert("needs".to_string(), needs());
        }
        for name in c.reads.iter().filter(|n| *n != "needs") {
            if let Some(value) = c.contexts.get(name) {
                contexts.insert(name.clone(), value.clone());
            }
        }
        // A skipped ancestor should make success(), failure() and cancelled() all false;
        // the evaluator's statuses cannot say that, so it counts as success there
        // (`!failure() && !cancelled()`, the usual way to run after a skip, holds).
        let status = match chain {
            Chain::Success | Chain::Skipped => JobStatus::Success,
            Chain::Cancelled => JobStatus::Cancelled,
            Chain::Failure => JobStatus::Failure,
        };
        let cx = EvalContext { contexts: &contexts, status, files: None };
        match c.expr.eval_truthy(&cx) {
            Ok(true) => Verdict::Run,
            Ok(false) => Verdict::Skip,
            Err(err) => Verdict::Fail(format!("the job's `if` failed: {err}")),
        }
    }
}

/// `${{ cond }}` → `cond`, when the whole text is one expression (as the plan reads it).
fn strip_wrapper(text: &str) -> &str {
    let t = text.trim();
    match t.strip_prefix("${{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner.trim(),
        _ => t,
    }
}

/// `needs.<id>` of one needed job (all its matrix combinations): the result GitHub
/// gives a matrix (failure if any failed, else cancelled if any was, else success if
/// any succeeded, else skipped) and the outputs.
pub(super) fn need_value(results: &[Conclusion], outputs: Option<&IndexMap<String, String>>) -> Value {
    let result = if results.contains(&Conclusion::Failure) {
        Conclusion::Failure
    } else if results.contains(&Conclusion::Cancelled) {
        Conclusion::Cancelled
    } else if results.contains(&Conclusion::Success) {
        Conclusion::Success
    } else {
        Conclusion::Skipped
    };
    let outputs = outputs
        .map(|o| o.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
        .unwrap_or_default();
    let mut need = IndexMap::new();
    need.insert("result".to_string(), Value::String(result.as_str().to_string()));
    need.insert("outputs".to_string(), Value::Object(outputs));
    Value::Object(need)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(expr: &str, chain: Chain) -> &'static str {
        let needs =
            || Value::Object([("build".to_string(), need_value(&[Conclusion::Skipped], None))].into());
        match Compiled::new(Condition::new(expr, Arc::default())).decide(chain, needs) {
            Verdict::Run => "run",
            Verdict::Skip => "skip",
            Verdict::Fail(_) => "fail",
        }
    }

    #[test]
    fn status_functions_follow_the_chain() {
        use Chain::*;
        let table = [
            ("success()", ["run", "skip", "skip", "skip"]),
            ("${{ success() }}", ["run", "skip", "skip", "skip"]),
            ("false", ["skip", "skip", "skip", "skip"]),
            ("always()", ["run", "run", "run", "run"]),
            ("failure()", ["skip", "skip", "skip", "run"]),
            ("cancelled()", ["skip", "skip", "run", "skip"]),
            ("!failure() && !cancelled()", ["run", "run", "skip", "skip"]),
            ("needs.build.result == 'skipped'", ["run", "skip", "skip", "skip"]),
            ("always() && needs.build.result == 'skipped'", ["run", "run", "run", "run"]),
            ("fromJSON('{')", ["fail", "skip", "skip", "skip"]),
            ("nope.x", ["fail", "fail", "fail", "fail"]),
        ];
        for (expr, want) in table {
            let got: Vec<_> = [Success, Skipped, Cancelled, Failure].map(|c| decide(expr, c)).to_vec();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn a_matrix_need_sums_its_results() {
        let result = |results: &[Conclusion]| need_value(results, None).get("result").cloned().unwrap();
        use Conclusion::*;
        assert_eq!(result(&[Success, Failure, Cancelled]), Value::String("failure".into()));
        assert_eq!(result(&[Success, Cancelled]), Value::String("cancelled".into()));
        assert_eq!(result(&[Skipped, Success]), Value::String("success".into()));
        assert_eq!(result(&[Skipped]), Value::String("skipped".into()));
    }
}
