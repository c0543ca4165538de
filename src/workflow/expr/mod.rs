//! GitHub Actions expressions, the language inside `${{ }}`.
//!
//! GitHub's own evaluator, the npm package `@actions/expressions`, is the reference:
//! where the two differ, this module is wrong. The differential test
//! `tests/expressions_differential.rs` holds the two side by side.
//!
//! Parsing needs to know which named contexts and which extra functions (status
//! functions, `hashFiles`) the place of the expression allows, exactly as GitHub's
//! parser does: an unknown name is a parse error, not an evaluation error.

pub mod value;

pub use value::Value;

use crate::workflow::diag::Pos;

/// An extra function a place allows, beyond the always-available ones
/// (contains, startsWith, endsWith, format, join, toJSON, fromJSON).
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

/// An expression that failed to lex, parse or evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    /// Where in the expression text (line 1, column = char offset + 1), when known.
    pub pos: Option<Pos>,
}
