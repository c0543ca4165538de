//! Strings with `${{ }}` parts, split as GitHub's workflow parser splits them: an
//! expression ends at the first `}}` outside a string literal.

use super::js;
use super::{Allowed, EvalContext, Expr, ExprError, Value};
use crate::workflow::diag::Pos;

const OPEN: &str = "${{";

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Expr(Expr),
}

/// A string that may hold `${{ }}` expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Splits `src` and parses each expression. Errors: an unclosed `${{`, an empty
    /// `${{ }}`, or an expression that does not parse (GitHub's messages).
    pub fn parse(src: &str, allowed: &Allowed<'_>) -> Result<Template, ExprError> {
        let mut segments: Vec<Segment> = Vec::new();
        let mut rest_start = 0;
        let mut search_from = 0;
        let mut lone_literal: Option<String> = None;
        while let Some(found) = src[search_from..].find(OPEN) {
            let start = search_from + found;
            let body_start = start + OPEN.len();
            let mut in_string = false;
            let mut end = None;
            let bytes = src.as_bytes();
            let mut i = body_start;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' => in_string = !in_string,
                    b'}' if !in_string && bytes[i - 1] == b'}' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let Some(end) = end else {
                return Err(ExprError::new(
                    "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.",
                    Some(pos_at(src, start)),
                ));
            };
            // `end` is the second `}`; the body stops before the first.
            let body = src.get(body_start..end - 1).unwrap_or("");
            let trimmed = js::js_trim(body);
            if trimmed.is_empty() {
                return Err(ExprError::new("An expression was expected", Some(pos_at(src, start))));
            }
            if start > rest_start {
                push_text(&mut segments, &src[rest_start..start]);
            }
            let expr_start = body_start + (body.len() - body.trim_start_matches(js::is_js_whitespace).len());
            let expr = Expr::parse(trimmed, allowed).map_err(|mut e| {
                // From a position in the expression to one in the whole string.
                let base = pos_at(src, expr_start);
                e.pos = Some(match e.pos {
                    Some(p) if p.line == 1 => Pos::new(base.line, base.col + p.col - 1),
                    Some(p) => Pos::new(base.line + p.line - 1, p.col),
                    None => base,
                });
                e
            })?;
            segments.push(Segment::Expr(expr));
            lone_literal = Some(trimmed.to_string());
            rest_start = end + 1;
            search_from = end + 1;
        }
        if rest_start < src.len() || segments.is_empty() {
            push_text(&mut segments, &src[rest_start..]);
        }
        // `${{ 'text' }}` alone is the literal text, unescaped by GitHub's reader's own
        // scan (every `''`), not by the expression lexer.
        if let ([Segment::Expr(_)], Some(text)) =
            (segments.as_slice(), lone_literal.as_deref().and_then(quoted_text))
        {
            segments = vec![Segment::Text(text)];
        }
        Ok(Template { segments })
    }

    /// True when there is no expression to evaluate.
    pub fn is_literal(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Text(_)))
    }

    /// The expressions, in order.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Expr(e) => Some(e),
            Segment::Text(_) => None,
        })
    }

    /// The value: a lone `${{ }}` keeps its type; otherwise the text with each
    /// expression's value as a string (as GitHub's `format` joins them).
    pub fn eval(&self, cx: &EvalContext<'_>) -> Result<Value, ExprError> {
        match self.segments.as_slice() {
            [Segment::Text(t)] => Ok(Value::String(t.clone())),
            [Segment::Expr(e)] => e.eval(cx),
            segments => {
                // Every expression is evaluated before the text is put together.
                let mut values = Vec::new();
                for s in segments {
                    if let Segment::Expr(e) = s {
                        values.push(e.eval(cx)?);
                    }
                }
                let mut values = values.into_iter();
                let mut out = String::new();
                for s in segments {
                    match s {
                        Segment::Text(t) => out.push_str(t),
                        Segment::Expr(_) => {
                            out.push_str(&values.next().unwrap_or_default().coerce_to_string())
                        }
                    }
                }
                Ok(Value::String(out))
            }
        }
    }
}

/// Line and column (from 1, in characters) of byte offset `byte` of `src`.
fn pos_at(src: &str, byte: usize) -> Pos {
    let before = &src[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos::new(line as u32, before[line_start..].chars().count() as u32 + 1)
}

/// GitHub's reader's test for an expression that is only a string literal: its text
/// with `''` unescaped, or `None`.
pub fn quoted_text(expr: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_string = false;
    for (i, c) in expr.char_indices() {
        if c == '\'' {
            in_string = !in_string;
            if in_string && i != 0 {
                out.push(c);
            }
        } else if !in_string {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.push_str(text);
    } else {
        segments.push(Segment::Text(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;

    fn eval(src: &str) -> Result<Value, ExprError> {
        let allowed = Allowed { contexts: &["github"], functions: &[] };
        let mut contexts = IndexMap::new();
        contexts.insert(
            "github".to_string(),
            Value::from_json(&serde_json::json!({"ref": "refs/heads/main", "n": 3, "ok": true})),
        );
        Template::parse(src, &allowed)?.eval(&EvalContext::new(&contexts))
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        assert_eq!(eval("${{ github.n }}").unwrap(), Value::Number(3.0));
        assert_eq!(eval("${{ github.ok }}").unwrap(), Value::Bool(true));
    }

    #[test]
    fn parts_are_joined_as_strings() {
        assert_eq!(
            eval("ref=${{ github.ref }}, n=${{ github.n }}").unwrap(),
            Value::String("ref=refs/heads/main, n=3".into())
        );
        assert_eq!(eval("${{ '}}' }}x").unwrap(), Value::String("}}x".into()));
        assert_eq!(eval("plain").unwrap(), Value::String("plain".into()));
        assert_eq!(eval("").unwrap(), Value::String(String::new()));
    }

    #[test]
    fn literal_templates() {
        let allowed = Allowed::default();
        assert!(Template::parse("${{ '{{ x }}' }}", &allowed).unwrap().is_literal());
        let quoted = Template::parse("${{ 'a''b''c' }}", &allowed).unwrap();
        assert_eq!(quoted.eval(&EvalContext::new(&IndexMap::new())).unwrap(), Value::String("a'b'c".into()));
        assert!(!Template::parse("${{ 1 }}", &allowed).unwrap().is_literal());
    }

    #[test]
    fn errors() {
        assert!(eval("${{ github.ref").unwrap_err().message.starts_with("The expression is not closed"));
        assert_eq!(eval("${{ }}").unwrap_err().message, "An expression was expected");
        let e = eval("ok: ${{ nope }}").unwrap_err();
        assert!(e.message.starts_with("Unrecognized named-value: 'nope'"));
        assert_eq!(e.pos, Some(Pos::new(1, 9)));
        assert_eq!(eval("a\nb ${{ github.ref == }}").unwrap_err().pos, Some(Pos::new(2, 18)));
        assert_eq!(eval("x ${{ y").unwrap_err().pos, Some(Pos::new(1, 3)));
    }
}
