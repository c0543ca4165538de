//! GitHub Actions expressions, the language inside `${{ }}`.
//!
//! GitHub's own evaluator, the npm package `@actions/expressions`, is the reference:
//! where the two differ, this module is wrong. The differential test
//! `tests/expressions_differential.rs` holds the two side by side.
//!
//! Parsing needs to know which named contexts and which extra functions (status
//! functions, `hashFiles`) the place of the expression allows, exactly as GitHub's
//! parser does: an unknown name is a parse error, not an evaluation error.
//!
//! - `lexer`, `parser`: text to tree, with GitHub's limits and error messages
//! - `eval`: the evaluator (values borrowed from the contexts, GitHub's coercions)
//! - [`template`](Template): strings with `${{ }}` parts
//! - [`js`]: the JavaScript semantics the reference inherits (number parsing and
//!   printing, JSON, case-insensitive comparison in UTF-16 order)
//! - [`value`]: the values expressions compute with
//!
//! Where metalfarm deliberately follows GitHub's runner instead of the npm package
//! (results above the runner's memory limit, the length-limit message, the quotes of a
//! template's text), the differential test lists the cases.

mod eval;
pub mod js;
mod lexer;
mod parser;
mod template;
pub mod value;

pub use lexer::MAX_EXPRESSION_LENGTH;
pub use parser::MAX_PARSER_DEPTH;
pub use template::{quoted_text, Template};
pub use value::Value;

use indexmap::IndexMap;

use crate::workflow::diag::Pos;
use parser::Node;

/// An extra function a place allows, beyond the always-available ones
/// (contains, startsWith, endsWith, format, join, toJSON, fromJSON, and `case`,
/// which GitHub's evaluator also always knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSig {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
}

/// What an expression at some place in a workflow may name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed<'a> {
    /// Named contexts, e.g. `["github", "inputs", "vars"]`.
    pub contexts: &'a [&'a str],
    /// Extra functions, e.g. `success()`, `hashFiles(1, 255)`.
    pub functions: &'a [FunctionSig],
}

/// The status functions of a step's `if:` (`success()`, `failure()`, `always()`,
/// `cancelled()`, no arguments), as GitHub's workflow schema declares them.
pub const STATUS_FUNCTIONS: &[FunctionSig] = &[
    FunctionSig { name: "success", min_args: 0, max_args: 0 },
    FunctionSig { name: "failure", min_args: 0, max_args: 0 },
    FunctionSig { name: "always", min_args: 0, max_args: 0 },
    FunctionSig { name: "cancelled", min_args: 0, max_args: 0 },
];

/// The status functions of a job's `if:`, where `success()` and `failure()` may name
/// jobs of `needs` (GitHub's schema: `success(0,MAX)`, `failure(0,MAX)`).
pub const JOB_STATUS_FUNCTIONS: &[FunctionSig] = &[
    FunctionSig { name: "success", min_args: 0, max_args: usize::MAX },
    FunctionSig { name: "failure", min_args: 0, max_args: usize::MAX },
    FunctionSig { name: "always", min_args: 0, max_args: 0 },
    FunctionSig { name: "cancelled", min_args: 0, max_args: 0 },
];

/// `hashFiles(pattern, ...)`: 1 to 255 patterns.
pub const HASH_FILES: FunctionSig = FunctionSig { name: "hashFiles", min_args: 1, max_args: 255 };

/// An expression that failed to lex, parse or evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    /// Where in the expression text the error is (line from 1, column = characters
    /// since the line's start + 1), when known: lexing and parsing errors have one.
    pub pos: Option<Pos>,
}

impl ExprError {
    pub fn new(message: impl Into<String>, pos: Option<Pos>) -> Self {
        ExprError { message: message.into(), pos }
    }

    /// An error at byte offset `byte` of `input`.
    pub(crate) fn at(message: String, input: &str, byte: usize) -> Self {
        let before = &input[..byte.min(input.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        ExprError { message, pos: Some(Pos::new(line as u32, col as u32)) }
    }
}

/// The outcome so far of the job or step whose `if:` is evaluated, for the status
/// functions: `success()` is true on `Success`, `failure()` on `Failure`,
/// `cancelled()` on `Cancelled`, `always()` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobStatus {
    #[default]
    Success,
    Failure,
    Cancelled,
}

/// What `hashFiles` reads files through (the workflow language does no I/O itself);
/// `crate::exec::hash_files` implements it over a workspace directory.
pub trait FileHasher {
    /// The hash of the files matching `patterns` (glob, `!` negation), or an empty
    /// string when none match.
    fn hash_files(&self, patterns: &[String]) -> Result<String, String>;
}

/// What an evaluation sees: the named contexts (looked up case-insensitively), the
/// status for the status functions, and the files for `hashFiles`.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub contexts: &'a IndexMap<String, Value>,
    pub status: JobStatus,
    pub files: Option<&'a dyn FileHasher>,
}

impl<'a> EvalContext<'a> {
    pub fn new(contexts: &'a IndexMap<String, Value>) -> Self {
        EvalContext { contexts, status: JobStatus::Success, files: None }
    }
}

/// A parsed expression (the text inside `${{ }}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// `None` for an empty expression, which evaluates to null.
    root: Option<Node>,
}

impl Expr {
    /// Lexes and parses `src` as GitHub does; names of contexts and extra functions
    /// that `allowed` does not list are parse errors, with GitHub's messages.
    pub fn parse(src: &str, allowed: &Allowed<'_>) -> Result<Expr, ExprError> {
        let tokens = lexer::lex(src)?;
        let root = parser::parse(src, &tokens, allowed)?;
        Ok(Expr { root })
    }

    pub fn eval(&self, cx: &EvalContext<'_>) -> Result<Value, ExprError> {
        match &self.root {
            None => Ok(Value::Null),
            Some(node) => eval::Evaluator::new(cx).eval(node).map(eval::Val::into_value),
        }
    }

    /// Evaluates to a boolean as an `if:` does (the value's truthiness), without
    /// building the value.
    pub fn eval_truthy(&self, cx: &EvalContext<'_>) -> Result<bool, ExprError> {
        match &self.root {
            None => Ok(false),
            Some(node) => eval::Evaluator::new(cx).eval(node).map(|v| !v.is_falsy()),
        }
    }

    /// The named contexts the expression reads, lower-cased, in first-use order.
    pub fn referenced_contexts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(root) = &self.root {
            walk(root, &mut |n| {
                if let Node::Context(name) = n {
                    let lower = name.to_lowercase();
                    if !out.contains(&lower) {
                        out.push(lower);
                    }
                }
            });
        }
        out
    }

    /// Whether the expression calls `success()`, `failure()`, `always()` or
    /// `cancelled()` (an `if:` without one is implicitly `success() && (...)`).
    pub fn uses_status_function(&self) -> bool {
        let mut found = false;
        if let Some(root) = &self.root {
            walk(root, &mut |n| {
                if let Node::Call(f, _) = n {
                    found |= f.is_status();
                }
            });
        }
        found
    }

    /// Whether the expression is empty (only whitespace).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }
}

fn walk(node: &Node, f: &mut impl FnMut(&Node)) {
    f(node);
    match node {
        Node::Literal(_) | Node::Context(_) => {}
        Node::Property(x, _) | Node::Star(x) | Node::Not(x) => walk(x, f),
        Node::Index(a, b) | Node::Cmp(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        Node::And(xs) | Node::Or(xs) | Node::Call(_, xs) => xs.iter().for_each(|x| walk(x, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FixedHasher;

    impl FileHasher for FixedHasher {
        fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
            Ok(format!("hash of {}", patterns.join("+")))
        }
    }

    fn contexts() -> IndexMap<String, Value> {
        let mut c = IndexMap::new();
        c.insert("github".to_string(), Value::from_json(&serde_json::json!({"ref": "refs/heads/main"})));
        c.insert("needs".to_string(), Value::from_json(&serde_json::json!({})));
        c
    }

    const ALLOWED: Allowed<'static> = Allowed {
        contexts: &["github", "needs", "matrix"],
        functions: &[
            HASH_FILES,
            STATUS_FUNCTIONS[0],
            STATUS_FUNCTIONS[1],
            STATUS_FUNCTIONS[2],
            STATUS_FUNCTIONS[3],
        ],
    };

    #[test]
    fn referenced_contexts_are_lower_cased_and_deduplicated() {
        let e = Expr::parse("GitHub.ref == matrix.os || github.sha && toJSON(Needs.*)", &ALLOWED).unwrap();
        assert_eq!(e.referenced_contexts(), ["github", "matrix", "needs"]);
        assert!(Expr::parse("1", &ALLOWED).unwrap().referenced_contexts().is_empty());
    }

    #[test]
    fn status_functions_are_found_and_follow_the_status() {
        let e = Expr::parse("github.ref && !Cancelled()", &ALLOWED).unwrap();
        assert!(e.uses_status_function());
        assert!(!Expr::parse("github.ref", &ALLOWED).unwrap().uses_status_function());
        let c = contexts();
        let mut cx = EvalContext::new(&c);
        for (status, success, failure, cancelled) in [
            (JobStatus::Success, true, false, false),
            (JobStatus::Failure, false, true, false),
            (JobStatus::Cancelled, false, false, true),
        ] {
            cx.status = status;
            let eval = |src: &str| Expr::parse(src, &ALLOWED).unwrap().eval(&cx).unwrap();
            assert_eq!(eval("success()"), Value::Bool(success));
            assert_eq!(eval("failure()"), Value::Bool(failure));
            assert_eq!(eval("cancelled()"), Value::Bool(cancelled));
            assert_eq!(eval("always()"), Value::Bool(true));
        }
        // Without the status functions allowed, they are unknown functions.
        let bare = Allowed { contexts: &[], functions: &[] };
        assert!(Expr::parse("success()", &bare)
            .unwrap_err()
            .message
            .starts_with("Unrecognized function: 'success'"));
    }

    #[test]
    fn hash_files_goes_through_the_file_hasher() {
        let c = contexts();
        let mut cx = EvalContext::new(&c);
        let e = Expr::parse("hashFiles('a/**', 1)", &ALLOWED).unwrap();
        assert!(e.eval(&cx).is_err());
        cx.files = Some(&FixedHasher);
        assert_eq!(e.eval(&cx).unwrap(), Value::String("hash of a/**+1".into()));
        assert!(Expr::parse("hashFiles()", &ALLOWED).is_err());
    }

    #[test]
    fn truthiness_and_strings() {
        let c = contexts();
        let cx = EvalContext::new(&c);
        let truthy = |src: &str| Expr::parse(src, &ALLOWED).unwrap().eval_truthy(&cx).unwrap();
        assert!(truthy("github.ref"));
        assert!(!truthy("github.nope"));
        assert!(truthy("fromJSON('[]')"));
        assert!(!truthy("''"));
        assert!(!truthy(""));
        assert!(!Value::Number(f64::NAN).is_truthy());
        assert!(Value::Object(IndexMap::new()).is_truthy());
        assert_eq!(Value::Number(1.5).coerce_to_string(), "1.5");
        assert_eq!(Value::Number(-0.0).coerce_to_string(), "0");
        assert_eq!(Value::Array(vec![]).coerce_to_string(), "Array");
        assert_eq!(Value::Null.coerce_to_string(), "");
        assert_eq!(Expr::parse("", &ALLOWED).unwrap().eval(&cx).unwrap(), Value::Null);
    }

    #[test]
    fn parse_errors_have_positions() {
        let e = Expr::parse("github.ref ==\n  nope", &ALLOWED).unwrap_err();
        assert_eq!(e.pos, Some(Pos::new(2, 3)));
        assert!(e.message.starts_with("Unrecognized named-value: 'nope'. Located at position 17"));
    }
}
