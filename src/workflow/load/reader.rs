//! Phase 1 of loading, as GitHub's template reader: the YAML tree against the schema.
//! Unknown keys, wrong types, duplicate keys, missing required keys, and every `${{ }}`
//! parsed with the contexts and functions its place allows.

use std::collections::HashMap;
use std::rc::Rc;

use crate::workflow::diag::{Diagnostic, Pos};
use crate::workflow::expr::FunctionSig;
use crate::workflow::load::schema::{DefId, Kind, Schema};
use crate::workflow::load::template::{self, Scanned};
use crate::workflow::yaml::{Node, Style, Value};

/// What expressions at a place may name: the contexts and functions of every schema
/// definition from the root down to it.
#[derive(Debug, Default, PartialEq)]
pub struct AllowedCx {
    pub contexts: Vec<&'static str>,
    pub functions: Vec<FunctionSig>,
}

impl AllowedCx {
    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty() && self.functions.is_empty()
    }

    /// `parent` plus what definition `def` adds (a definition without contexts adds nothing).
    pub fn child(parent: &Rc<AllowedCx>, schema: &Schema, def: DefId) -> Rc<AllowedCx> {
        let d = schema.def(def);
        if d.contexts.is_empty() && d.functions.is_empty() {
            return parent.clone();
        }
        let mut cx = AllowedCx { contexts: parent.contexts.clone(), functions: parent.functions.clone() };
        for c in &d.contexts {
            if !cx.contexts.iter().any(|have| have.eq_ignore_ascii_case(c)) {
                cx.contexts.push(c);
            }
        }
        for f in &d.functions {
            if !cx.functions.iter().any(|have| have.name.eq_ignore_ascii_case(f.name)) {
                cx.functions.push(*f);
            }
        }
        Rc::new(cx)
    }
}

/// One step of the path from the root to a node, for messages.
#[derive(Debug, Clone)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub struct Reader<'a> {
    pub schema: &'static Schema,
    pub diags: &'a mut Vec<Diagnostic>,
    pub path: Vec<Seg>,
}

const BACKGROUND_STEP_KEYS: [&str; 4] = ["background", "wait", "wait-all", "cancel"];

impl Reader<'_> {
    fn error(&mut self, pos: Pos, message: String) {
        self.diags.push(Diagnostic::new(pos, message));
    }

    pub fn read(&mut self, node: &Node, def: DefId, cx: &Rc<AllowedCx>) {
        match &node.value {
            Value::Seq(items) => {
                let seqs = self.schema.of_kind(def, |k| matches!(k, Kind::Seq(_)));
                match seqs.first().map(|&s| &self.schema.def(s).kind) {
                    Some(&Kind::Seq(item)) => {
                        let item_cx = AllowedCx::child(cx, self.schema, item);
                        for (i, child) in items.iter().enumerate() {
                            self.path.push(Seg::Index(i));
                            self.read(child, item, &item_cx);
                            self.path.pop();
                        }
                    }
                    _ => {
                        let message = format!("{} must be {}, not a list", self.what(), self.expected(def));
                        self.error(node.pos, message);
                    }
                }
            }
            Value::Map(entries) => {
                let maps = self.schema.of_kind(def, |k| matches!(k, Kind::Map { .. }));
                if maps.is_empty() {
                    let message = format!("{} must be {}, not a mapping", self.what(), self.expected(def));
                    self.error(node.pos, message);
                    return;
                }
                let all_loose = maps.len() == 1
                    && matches!(&self.schema.def(maps[0]).kind, Kind::Map { props, loose: Some(_) } if props.is_empty());
                if all_loose {
                    self.read_loose_map(entries, maps[0], cx);
                } else {
                    self.read_known_map(node, entries, maps, cx);
                }
            }
            _ => {
                let scanned = self.scan(node, cx);
                self.validate(node, &scanned, def, cx);
            }
        }
    }

    /// Splits a string into literal text and `${{ }}` parts and checks each expression
    /// against what the place allows, reporting errors where GitHub does.
    pub fn scan(&mut self, node: &Node, cx: &AllowedCx) -> Scanned {
        template::scan(node, cx, self.diags, &self.what())
    }

    fn validate(&mut self, node: &Node, scanned: &Scanned, def: DefId, cx: &AllowedCx) {
        let literal = match scanned {
            Scanned::Expression => {
                if cx.is_empty() {
                    let message = format!("expressions (`${{{{ }}}}`) are not allowed in {}", self.what());
                    self.error(node.pos, message);
                }
                return;
            }
            Scanned::Insert => {
                let message =
                    format!("`${{{{ insert }}}}` is only allowed as a mapping key, not as {}", self.what());
                self.error(node.pos, message);
                return;
            }
            Scanned::LiteralString(s) => Value::String(crate::workflow::yaml::Str {
                text: s.clone(),
                style: crate::workflow::yaml::Style::SingleQuoted,
            }),
            Scanned::Literal => node.value.clone(),
        };
        let mut scalars = Vec::new();
        self.schema.scalars(def, &mut scalars);
        if scalars.iter().any(|&s| scalar_matches(&self.schema.def(s).kind, &literal, None)) {
            return;
        }
        let text = Node { pos: node.pos, value: literal.clone() }.scalar_text();
        if !matches!(literal, Value::String(_))
            && scalars.iter().any(|&s| scalar_matches(&self.schema.def(s).kind, &literal, Some(&text)))
        {
            return;
        }
        let mut message = format!("{} must be {}", self.what(), self.expected(def));
        let quoted_scalar = matches!(&node.value, Value::String(s) if s.style != Style::Plain && s.style != Style::Block)
            && matches!(crate::workflow::yaml::resolve_plain(&text), Some(Value::Bool(_) | Value::Number(_)));
        if quoted_scalar {
            // `'false'` is a string: the quotes make it one.
            message.push_str(&format!(", not the string `{}` (remove the quotes)", shown(&text)));
        } else if !text.is_empty() {
            message.push_str(&format!(", not `{}`", shown(&text)));
            let constants: Vec<&str> = scalars
                .iter()
                .filter_map(|&s| match self.schema.def(s).kind {
                    Kind::Str { constant: Some(c), .. } => Some(c),
                    _ => None,
                })
                .collect();
            if let Some(best) = suggest(&text, &constants) {
                if constants.len() > 8 {
                    // The suggestion says enough; the whole list would drown it.
                    message = format!("{} does not allow `{}`", self.what(), shown(&text));
                }
                message.push_str(&format!("; did you mean `{best}`?"));
            }
        }
        self.error(node.pos, message);
    }

    fn read_known_map(
        &mut self,
        node: &Node,
        entries: &[(Node, Node)],
        mut maps: Vec<DefId>,
        cx: &Rc<AllowedCx>,
    ) {
        let loose = match &self.schema.def(maps[0]).kind {
            Kind::Map { loose, .. } => *loose,
            _ => None,
        };
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut has_expression_key = false;
        // The candidate forms (e.g. a `run` step and a `uses` step) and the key that
        // chose among them, to explain a key that belongs to the form not chosen.
        let candidates = maps.clone();
        let mut chosen_by: Option<String> = None;
        let any = self.schema.id("any");
        for (key, value) in entries {
            let Some(name) = self.key_name(key, cx, &mut has_expression_key, value, any) else {
                continue;
            };
            if self.duplicate(&mut seen, &name, key.pos) {
                continue;
            }
            self.path.push(Seg::Key(name.clone()));
            let before = maps.len();
            if let Some(prop_ty) = self.match_property(&mut maps, &name) {
                if maps.len() < before && chosen_by.is_none() {
                    chosen_by = Some(name.clone());
                }
                if BACKGROUND_STEP_KEYS.contains(&name.as_str()) {
                    let message = format!(
                        "unknown key `{name}` in {}: background steps are not available",
                        self.place_of_parent()
                    );
                    self.error(key.pos, message);
                } else {
                    let child = AllowedCx::child(cx, self.schema, prop_ty);
                    self.read(value, prop_ty, &child);
                }
            } else if let Some((key_ty, value_ty)) = loose {
                self.validate_loose_key(key, &name, key_ty);
                let child = AllowedCx::child(cx, self.schema, value_ty);
                self.read(value, value_ty, &child);
            } else {
                let elsewhere = candidates.iter().any(|&m| {
                    matches!(&self.schema.def(m).kind, Kind::Map { props, .. } if props.iter().any(|p| p.name == name))
                });
                let message = match &chosen_by {
                    Some(other) if elsewhere && !BACKGROUND_STEP_KEYS.contains(&name.as_str()) => {
                        format!("`{name}` cannot be used with `{other}` in {}", self.place_of_parent())
                    }
                    _ => self.unknown_key_message(&name, &maps),
                };
                self.error(key.pos, message);
            }
            self.path.pop();
        }
        if maps.len() > 1 {
            let message = self.ambiguous_message(&maps);
            self.error(node.pos, message);
        } else if !has_expression_key {
            if let Kind::Map { props, .. } = &self.schema.def(maps[0]).kind {
                for prop in props.iter().filter(|p| p.required) {
                    if !seen.contains_key(&prop.name.to_ascii_lowercase()) {
                        let message = format!("{} is missing the required key `{}`", self.place(), prop.name);
                        self.error(node.pos, message);
                    }
                }
            }
        }
    }

    fn read_loose_map(&mut self, entries: &[(Node, Node)], map: DefId, cx: &Rc<AllowedCx>) {
        let Kind::Map { loose: Some((key_ty, value_ty)), .. } = self.schema.def(map).kind else { return };
        let value_cx = AllowedCx::child(cx, self.schema, value_ty);
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut has_expression_key = false;
        for (key, value) in entries {
            let Some(name) = self.key_name(key, cx, &mut has_expression_key, value, value_ty) else {
                continue;
            };
            if self.duplicate(&mut seen, &name, key.pos) {
                continue;
            }
            self.path.push(Seg::Key(name.clone()));
            self.validate_loose_key(key, &name, key_ty);
            self.read(value, value_ty, &value_cx);
            self.path.pop();
        }
    }

    /// The key's text, or None when the entry was handled (an expression key) or is broken.
    fn key_name(
        &mut self,
        key: &Node,
        cx: &Rc<AllowedCx>,
        has_expression_key: &mut bool,
        value: &Node,
        expression_value_ty: DefId,
    ) -> Option<String> {
        match &key.value {
            Value::String(s) => {
                if s.text.contains("${{") {
                    let scanned = self.scan(key, cx);
                    if matches!(scanned, Scanned::Expression | Scanned::Insert) {
                        *has_expression_key = true;
                        if cx.is_empty() {
                            let message = format!(
                                "expressions (`${{{{ }}}}`) are not allowed as keys in {}",
                                self.place()
                            );
                            self.error(key.pos, message);
                        } else {
                            // The value of an expression key: anything in a mapping of known
                            // keys, the loose value type in a mapping of loose keys.
                            let ty = expression_value_ty;
                            let child = AllowedCx::child(cx, self.schema, ty);
                            self.read(value, ty, &child);
                        }
                        return None;
                    }
                    if let Scanned::LiteralString(text) = scanned {
                        return Some(text);
                    }
                }
                Some(s.text.clone())
            }
            _ => {
                let message = format!(
                    "a key in {} must be a string, not {} `{}`",
                    self.place(),
                    key.kind(),
                    key.scalar_text()
                );
                self.error(key.pos, message);
                None
            }
        }
    }

    /// Whether `name` was already a key of this mapping (reported if so). `seen` holds
    /// the keys so far, lower-cased, so a mapping of many keys is checked in linear time.
    fn duplicate(&mut self, seen: &mut HashMap<String, Pos>, name: &str, pos: Pos) -> bool {
        if name.is_empty() {
            return false;
        }
        if let Some(first) = seen.get(&name.to_ascii_lowercase()) {
            let message = format!(
                "`{name}` is already defined in {} (line {}; keys are case-insensitive)",
                self.place(),
                first.line
            );
            self.error(pos, message);
            return true;
        }
        seen.insert(name.to_ascii_lowercase(), pos);
        false
    }

    fn validate_loose_key(&mut self, key: &Node, name: &str, key_ty: DefId) {
        if let Kind::Str { non_empty: true, .. } = self.schema.def(key_ty).kind {
            if name.is_empty() {
                let message = format!("a key in {} must not be empty", self.place_of_parent());
                self.error(key.pos, message);
            }
        }
    }

    /// GitHub's matchPropertyAndFilter: the property's type, dropping the candidate
    /// mappings that lack it (when some have it).
    fn match_property(&self, maps: &mut Vec<DefId>, name: &str) -> Option<DefId> {
        let mut found = None;
        let mut missing_somewhere = false;
        for &m in maps.iter() {
            if let Kind::Map { props, .. } = &self.schema.def(m).kind {
                match props.iter().find(|p| p.name == name) {
                    Some(p) => found = Some(p.ty),
                    None => missing_somewhere = true,
                }
            }
        }
        if found.is_some() && missing_somewhere {
            maps.retain(|&m| matches!(&self.schema.def(m).kind, Kind::Map { props, .. } if props.iter().any(|p| p.name == name)));
        }
        found
    }

    fn unknown_key_message(&self, name: &str, maps: &[DefId]) -> String {
        let mut known: Vec<&str> = Vec::new();
        for &m in maps {
            if let Kind::Map { props, .. } = &self.schema.def(m).kind {
                for p in props {
                    if !known.contains(&p.name) && !BACKGROUND_STEP_KEYS.contains(&p.name) {
                        known.push(p.name);
                    }
                }
            }
        }
        let mut message = format!("unknown key `{name}` in {}", self.place_of_parent());
        match suggest(name, &known) {
            Some(best) => message.push_str(&format!("; did you mean `{best}`?")),
            None if !known.is_empty() && known.len() <= 12 => {
                let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                message.push_str(&format!("; expected one of {}", list.join(", ")));
            }
            None => {}
        }
        message
    }

    fn ambiguous_message(&self, maps: &[DefId]) -> String {
        let names: Vec<&str> = maps.iter().map(|&m| self.schema.def(m).name).collect();
        if names.contains(&"run-step") && names.contains(&"regular-step") {
            return format!("{} must have `run` (a shell script) or `uses` (an action)", self.place());
        }
        if names.contains(&"job-factory") {
            return format!("{} must have `runs-on` (or `uses`, to call a reusable workflow)", self.place());
        }
        format!("{} is ambiguous: add one of the keys that tells which form is meant", self.place())
    }

    /// The node at the end of the path, for messages: "`runs-on`", "item 2 of `needs`".
    pub fn what(&self) -> String {
        describe_what(&self.path)
    }

    /// The mapping at the end of the path, for messages: "job `build`", "the workflow".
    pub fn place(&self) -> String {
        describe_place(&self.path)
    }

    /// The mapping that holds the key at the end of the path.
    fn place_of_parent(&self) -> String {
        describe_place(&self.path[..self.path.len().saturating_sub(1)])
    }

    /// What a definition accepts, in words.
    pub fn expected(&self, def: DefId) -> String {
        expected(self.schema, def, 0)
    }
}

/// A value as quoted in a one-line message: its first line, at most 60 characters.
pub fn shown(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut out: String = first.chars().take(60).collect();
    if out.len() < text.trim_end().len() {
        out.push('…');
    }
    out
}

fn scalar_matches(kind: &Kind, value: &Value, as_string: Option<&str>) -> bool {
    if let Some(text) = as_string {
        return match kind {
            Kind::Str { constant: Some(c), .. } => *c == text,
            Kind::Str { non_empty: true, .. } => !text.is_empty(),
            Kind::Str { .. } => true,
            _ => false,
        };
    }
    match (kind, value) {
        (Kind::Null, Value::Null) | (Kind::Bool, Value::Bool(_)) | (Kind::Number, Value::Number(_)) => true,
        (Kind::Str { constant: Some(c), .. }, Value::String(s)) => *c == s.text,
        (Kind::Str { non_empty: true, .. }, Value::String(s)) => !s.text.is_empty(),
        (Kind::Str { .. }, Value::String(_)) => true,
        _ => false,
    }
}

/// The closest known key, when it is close enough to be a typo.
pub fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4) && d < k.len().max(name.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

pub fn describe_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub fn describe_place(path: &[Seg]) -> String {
    match path {
        [] => "the workflow".to_string(),
        [Seg::Key(jobs), Seg::Key(id)] if jobs == "jobs" => format!("job `{id}`"),
        [Seg::Key(jobs), Seg::Key(id), Seg::Key(steps), Seg::Index(i)]
            if jobs == "jobs" && steps == "steps" =>
        {
            format!("step {} of job `{id}`", i + 1)
        }
        [Seg::Key(on), Seg::Key(event)] if on == "on" => format!("event `{event}`"),
        _ => format!("`{}`", describe_path(path)),
    }
}

pub fn describe_what(path: &[Seg]) -> String {
    match path {
        [] => "the workflow".to_string(),
        [.., Seg::Key(jobs), Seg::Key(id)] if jobs == "jobs" => format!("job `{id}`"),
        [.., Seg::Key(steps), Seg::Index(i)] if steps == "steps" => describe_place(path),
        [.., Seg::Key(k)] => format!("`{k}`"),
        [.., Seg::Key(k), Seg::Index(i)] => format!("item {} of `{k}`", i + 1),
        _ => format!("`{}`", describe_path(path)),
    }
}

const EXPECTATIONS: &[(&str, &str)] = &[
    ("runs-on", "a string, a list of strings or a map with `labels`"),
    ("needs", "a job id or a list of job ids"),
    ("event-filter", "a pattern or a list of patterns"),
    ("on-strict", "an event name, a list of event names or a map of events"),
    ("job", "a mapping with `runs-on` and `steps` (or `uses`)"),
    ("steps-item", "a mapping with `run` or `uses`"),
    ("schedule", "a list of `- cron: '…'` entries"),
    ("permissions", "`read-all`, `write-all` or a map of scopes to `read`, `write` or `none`"),
    ("workflow-concurrency", "a group name or a map with `group`"),
    ("job-concurrency", "a group name or a map with `group`"),
    ("container", "an image name or a map with `image`"),
    ("services-container", "an image name or a map with `image`"),
    ("job-environment", "an environment name or a map with `name`"),
    ("matrix", "a map of axes to lists (with optional `include` and `exclude`)"),
];

fn expected(schema: &Schema, def: DefId, depth: usize) -> String {
    let d = schema.def(def);
    if let Some((_, text)) = EXPECTATIONS.iter().find(|(n, _)| *n == d.name) {
        return text.to_string();
    }
    match &d.kind {
        Kind::Null => "empty".to_string(),
        Kind::Bool => "`true` or `false`".to_string(),
        Kind::Number => "a number".to_string(),
        Kind::Str { constant: Some(c), .. } => format!("`{c}`"),
        Kind::Str { non_empty: true, .. } => "a non-empty string".to_string(),
        Kind::Str { .. } => "a string".to_string(),
        Kind::Seq(item) if depth < 2 => match &schema.def(*item).kind {
            Kind::Str { constant: None, .. } => "a list of strings".to_string(),
            _ => format!("a list of {}", expected(schema, *item, depth + 1)),
        },
        Kind::Seq(_) => "a list".to_string(),
        Kind::Map { props, .. } if !props.is_empty() => {
            let required: Vec<String> =
                props.iter().filter(|p| p.required).map(|p| format!("`{}`", p.name)).collect();
            if required.is_empty() {
                "a mapping".to_string()
            } else {
                format!("a mapping with {}", required.join(" and "))
            }
        }
        Kind::Map { .. } => "a mapping".to_string(),
        Kind::OneOf(ids) if depth < 2 => {
            let all_constants =
                ids.iter().all(|&i| matches!(schema.def(i).kind, Kind::Str { constant: Some(_), .. }));
            let parts: Vec<String> = ids.iter().map(|&i| expected(schema, i, depth + 1)).collect();
            let mut unique: Vec<String> = Vec::new();
            for p in parts {
                if !unique.contains(&p) {
                    unique.push(p);
                }
            }
            if all_constants {
                format!("one of {}", unique.join(", "))
            } else {
                join_or(&unique)
            }
        }
        Kind::OneOf(_) => "another value".to_string(),
    }
}

fn join_or(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let known = ["steps", "runs-on", "needs", "if", "env"];
        assert_eq!(suggest("step", &known), Some("steps"));
        assert_eq!(suggest("run-on", &known), Some("runs-on"));
        assert_eq!(suggest("Needs", &known), Some("needs"));
        assert_eq!(suggest("completely-else", &known), None);
        assert_eq!(suggest("x", &["if"]), None);
        assert_eq!(shown("yes\nno\n"), "yes…");
        assert_eq!(shown("short"), "short");
    }
}
