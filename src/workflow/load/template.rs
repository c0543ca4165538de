//! `${{ }}` inside YAML strings, split and checked as GitHub's template reader does:
//! an expression ends at the first `}}` outside a `'string'`; each one is parsed with the
//! contexts and functions of its place; errors point at the string, as GitHub's do.

use crate::workflow::diag::Diagnostic;
use crate::workflow::expr::{quoted_text, Allowed, Expr};
use crate::workflow::load::reader::AllowedCx;
use crate::workflow::yaml::{Node, Value};

/// What a scalar turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Scanned {
    /// No expression (or one that failed: then it counts as plain text, as on GitHub).
    Literal,
    /// `${{ 'text' }}` alone: the string `text`.
    LiteralString(String),
    /// One or more valid expressions.
    Expression,
    /// `${{ insert }}` alone: GitHub's directive to merge a mapping in, only valid as a key.
    Insert,
}

/// One `${{ … }}` found in a string: its inner text and its char offset in the string.
pub struct Part<'s> {
    pub inner: &'s str,
    pub start: usize,
}

/// Splits `raw` into its `${{ }}` parts. Err(()) when one is not closed.
pub fn parts(raw: &str) -> Result<Vec<Part<'_>>, ()> {
    let mut out = Vec::new();
    let bytes = raw.as_bytes();
    let mut from = 0;
    while let Some(found) = raw[from..].find("${{") {
        let start = from + found;
        let mut i = start + 3;
        let mut in_string = false;
        let mut end = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\'' => in_string = !in_string,
                b'}' if !in_string && bytes[i - 1] == b'}' && i > start + 3 => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let end = end.ok_or(())?;
        out.push(Part { inner: &raw[start + 3..end - 1], start });
        from = end + 1;
    }
    Ok(out)
}

/// Checks one expression against what its place allows.
pub fn check_expression(expr: &str, cx: &AllowedCx) -> Result<(), String> {
    let allowed = Allowed { contexts: &cx.contexts, functions: &cx.functions };
    Expr::parse(expr, &allowed).map(|_| ()).map_err(|e| e.message)
}

/// An expression error, with what the place allows when a name was not allowed.
pub fn explain(error: &str, cx: &AllowedCx) -> String {
    if error.starts_with("Unrecognized named-value") {
        let list = if cx.contexts.is_empty() { "none".to_string() } else { cx.contexts.join(", ") };
        format!("{error} (contexts available here: {list})")
    } else if error.starts_with("Unrecognized function") && !cx.functions.is_empty() {
        let extra: Vec<&str> = cx.functions.iter().map(|f| f.name).collect();
        format!("{error} (besides the built-in functions, available here: {})", extra.join(", "))
    } else {
        error.to_string()
    }
}

pub fn scan(node: &Node, cx: &AllowedCx, diags: &mut Vec<Diagnostic>, what: &str) -> Scanned {
    let Value::String(s) = &node.value else { return Scanned::Literal };
    let raw = s.text.as_str();
    if !raw.contains("${{") {
        return Scanned::Literal;
    }
    let Ok(parts) = parts(raw) else {
        diags.push(Diagnostic::new(
            node.pos,
            format!("the expression in {what} is not closed: a `${{{{` without its `}}}}`"),
        ));
        return Scanned::Literal;
    };
    let mut failed = false;
    let whole = parts.len() == 1 && parts[0].start == 0 && parts[0].inner.len() + 5 == raw.len();
    for part in &parts {
        let trimmed = part.inner.trim();
        let error = if trimmed.is_empty() {
            Some(format!("an expression was expected inside `${{{{ }}}}` in {what}"))
        } else if trimmed == "insert" && whole {
            return Scanned::Insert;
        } else if trimmed == "insert" || trimmed.starts_with("insert ") || trimmed.starts_with("insert\t") {
            // GitHub's `insert` directive takes no arguments and fills a whole mapping key.
            Some(format!("the `insert` directive is only allowed alone, as a mapping key, not in {what}"))
        } else {
            check_expression(trimmed, cx)
                .err()
                .map(|e| format!("invalid expression in {what}: {}", explain(&e, cx)))
        };
        if let Some(message) = error {
            failed = true;
            // GitHub reports an expression's error at the start of the string holding it.
            diags.push(Diagnostic::new(node.pos, message));
        }
    }
    if failed {
        return Scanned::Literal;
    }
    if whole {
        if let Some(text) = quoted_text(parts[0].inner.trim()) {
            return Scanned::LiteralString(text);
        }
    }
    Scanned::Expression
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_end_at_the_first_closing_braces_outside_strings() {
        let p = parts("a ${{ x }} b ${{ '}}' }}").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].inner, " x ");
        assert_eq!(p[1].inner, " '}}' ");
        assert!(parts("${{ x }").is_err());
        assert_eq!(quoted_text("'it''s'"), Some("it's".to_string()));
        assert_eq!(quoted_text("'a' == 'b'"), None);
    }
}
