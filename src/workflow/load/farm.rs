//! Checks beyond GitHub's parser: what this farm can run (`container:`, `services:`,
//! `uses:`), and references to matrix keys a literal matrix does not define.

use crate::workflow::diag::{Diagnostic, Pos};
use crate::workflow::load::template;
use crate::workflow::yaml::{Node, Value};

/// The actions this farm provides (DESIGN.md), as `uses:` prefixes.
pub const AVAILABLE_ACTIONS: &[&str] =
    &["actions/checkout@", "actions/upload-artifact@", "metalfarm/provision@v1", "metalfarm/reboot@v1", "./"];

pub fn action_available(uses: &str) -> bool {
    AVAILABLE_ACTIONS.iter().any(|a| {
        if a.ends_with('@') || *a == "./" {
            uses.starts_with(a) && uses.len() > a.len()
        } else {
            uses == *a
        }
    })
}

/// `container:`, `services:` and `uses:` of each job: errors unless this farm can run them.
pub fn check_runnable(root: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(jobs) = root.get("jobs").and_then(Node::as_map) else { return };
    for (job_key, job) in jobs {
        let (Some(id), Some(entries)) = (job_key.as_str(), job.as_map()) else { continue };
        for (key, value) in entries {
            match key.as_str() {
                Some("container") => diags.push(Diagnostic::new(
                    key.pos,
                    format!("`container` in job `{id}` is not supported on bare metal: steps run directly on the host"),
                )),
                Some("services") => diags.push(Diagnostic::new(
                    key.pos,
                    format!("`services` in job `{id}` is not supported on bare metal: there are no service containers"),
                )),
                Some("uses") => {
                    if let Some(uses) = value.as_str() {
                        diags.push(Diagnostic::new(
                            value.pos,
                            format!("job `{id}` calls the reusable workflow `{uses}`; reusable workflows are not available on this farm"),
                        ));
                    }
                }
                Some("steps") => {
                    for step in value.as_seq().unwrap_or_default() {
                        let Some(uses) = step.get("uses") else { continue };
                        let Some(name) = uses.as_str() else { continue };
                        if !action_available(name) {
                            diags.push(Diagnostic::new(
                                uses.pos,
                                format!(
                                    "the action `{name}` is not available on this farm (available: actions/checkout@v*, actions/upload-artifact@v*, metalfarm/provision@v1, metalfarm/reboot@v1, ./local-action)"
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// `matrix.x` where the job's matrix is literal and has no key `x`.
pub fn check_matrix_references(root: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(jobs) = root.get("jobs").and_then(Node::as_map) else { return };
    for (job_key, job) in jobs {
        let (Some(id), Some(entries)) = (job_key.as_str(), job.as_map()) else { continue };
        let keys = match job.get("strategy").and_then(|s| s.get("matrix")) {
            Some(matrix) => match literal_matrix_keys(matrix) {
                Some(keys) => keys,
                None => continue,
            },
            None => Vec::new(),
        };
        for (key, value) in entries {
            if matches!(key.as_str(), Some("strategy" | "needs")) {
                continue;
            }
            let bare_condition = key.as_str() == Some("if");
            walk(value, bare_condition, &mut |node, expr, pos| {
                for name in matrix_refs(expr) {
                    if !keys.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                        let message = if keys.is_empty() {
                            format!("`matrix.{name}` is used in job `{id}`, which has no matrix")
                        } else {
                            format!(
                                "`matrix.{name}` is not defined by the matrix of job `{id}` (it defines {})",
                                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                            )
                        };
                        diags.push(Diagnostic::new(pos.unwrap_or(node.pos), message));
                    }
                }
            });
        }
    }
}

/// The keys of a matrix written out in full; None when an expression decides them.
fn literal_matrix_keys(matrix: &Node) -> Option<Vec<String>> {
    let entries = matrix.as_map()?;
    let mut keys = Vec::new();
    for (key, value) in entries {
        let name = key.as_str()?;
        if name.contains("${{") {
            return None;
        }
        match name {
            "include" => {
                for item in value.as_seq()? {
                    for (k, _) in item.as_map()? {
                        let k = k.as_str()?;
                        if k.contains("${{") {
                            return None;
                        }
                        if !keys.iter().any(|have: &String| have.eq_ignore_ascii_case(k)) {
                            keys.push(k.to_string());
                        }
                    }
                }
            }
            "exclude" => {}
            _ => {
                // An axis whose values come from an expression is still a key.
                keys.push(name.to_string());
            }
        }
    }
    Some(keys)
}

/// Calls `f` with every expression in the strings below `node` and its position.
fn walk(node: &Node, bare_condition: bool, f: &mut dyn FnMut(&Node, &str, Option<Pos>)) {
    match &node.value {
        Value::String(s) => {
            if let Ok(parts) = template::parts(&s.text) {
                if parts.is_empty() && bare_condition {
                    f(node, &s.text, None);
                }
                for part in parts {
                    f(node, part.inner, None);
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| walk(i, false, f)),
        Value::Map(entries) => {
            for (k, v) in entries {
                walk(k, false, f);
                walk(v, bare_condition || k.as_str() == Some("if"), f);
            }
        }
        _ => {}
    }
}

/// The names in `matrix.NAME` and `matrix['NAME']` outside string literals.
fn matrix_refs(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        let boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'-' | b'.'));
        if boundary && bytes.len() >= i + 6 && bytes[i..i + 6].eq_ignore_ascii_case(b"matrix") {
            let rest = &expr[i + 6..];
            let rest_trim = rest.trim_start();
            if let Some(after) = rest_trim.strip_prefix('.') {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                if !name.is_empty() && name != "*" {
                    out.push(name);
                }
            } else if let Some(after) = rest_trim.strip_prefix("['") {
                if let Some(end) = after.find('\'') {
                    out.push(after[..end].to_string());
                }
            }
            i += 6;
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_matrix_references_outside_strings() {
        assert_eq!(matrix_refs("matrix.os == 'matrix.no' && matrix['node-v']"), vec!["os", "node-v"]);
        assert!(matrix_refs("github.matrix.x || mymatrix.y").is_empty());
        assert!(action_available("actions/checkout@v4"));
        assert!(action_available("./.github/actions/build"));
        assert!(action_available("metalfarm/provision@v1"));
        assert!(!action_available("metalfarm/provision@v2"));
        assert!(!action_available("actions/setup-node@v4"));
    }
}
