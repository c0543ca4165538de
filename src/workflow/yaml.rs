//! YAML text to a tree whose every node knows its line and column.
//!
//! GitHub's parser reads workflows with the npm `yaml` package (YAML 1.2, core schema),
//! so plain scalars resolve as that package does: `on`, `yes`, `no` stay strings;
//! `true`/`false`, `null`/`~`/empty, decimal, `0x` and `0o` integers, floats, `.inf` and
//! `.nan` do not. Anchors and aliases are resolved (an alias yields a copy of the
//! anchored node, with the anchored node's positions, as GitHub does). Merge keys (`<<`)
//! are plain keys in YAML 1.2. Duplicate keys are kept in order: GitHub's template reader,
//! not its YAML layer, reports them, so the loader does too.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::workflow::diag::{Diagnostic, Pos};

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts: a scalar's first character (its quote or block indicator
    /// included), a flow collection's bracket, a block collection's first entry.
    pub pos: Pos,
    pub value: Value,
}

/// The value of a node, after the core schema resolved plain scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(Str),
    Seq(Vec<Node>),
    /// Entries in document order, duplicates included.
    Map(Vec<(Node, Node)>),
}

/// A string scalar and how it was written (expression positions depend on it).
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    pub text: String,
    pub style: Style,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `|` or `>`: the text starts on the line after the node's position.
    Block,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The value of `key` in a mapping (the first entry with that exact key).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// A scalar as GitHub's template reader prints it (`Unexpected value '…'`).
    /// Collections print as `Sequence`/`Mapping`.
    pub fn scalar_text(&self) -> String {
        match &self.value {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => js_number(*n),
            Value::String(s) => s.text.clone(),
            Value::Seq(_) => "Sequence".to_string(),
            Value::Map(_) => "Mapping".to_string(),
        }
    }

    /// What kind of node this is, for messages: "a string", "a mapping"…
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A number as JavaScript's `String(n)` prints it.
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if n == 0.0 {
        "0".to_string()
    } else {
        let mut buf = ryu_js::Buffer::new();
        buf.format(n).to_string()
    }
}

/// A parsed document: its root (None for an empty document) or the syntax error.
pub fn parse(text: &str) -> Result<Option<Node>, Diagnostic> {
    // A byte-order mark is not content (npm `yaml` skips it too).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = match parse_once(text) {
        Err(e) if e.message.ends_with("invalid indentation") => e,
        other => return other,
    };
    // npm `yaml` accepts a flow collection's closing bracket at the indentation of its
    // key; the event parser does not. Indent each such line it trips on and read again
    // (no node starts on those lines, so no position moves).
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut error = first.clone();
    for _ in 0..64 {
        let Some(line) = lines.get_mut(error.pos.line as usize - 1) else { break };
        if !line.trim_start().starts_with([']', '}']) {
            break;
        }
        line.insert_str(0, "    ");
        match parse_once(&lines.join("\n")) {
            Err(e) if e.message.ends_with("invalid indentation") => error = e,
            Err(_) => break,
            ok => return ok,
        }
    }
    Err(first)
}

fn parse_once(text: &str) -> Result<Option<Node>, Diagnostic> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        lines: Lines::new(text),
        depth: 0,
        nodes: 0,
        aliased: false,
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    /// Anchored nodes and how many nodes each holds (an alias copies them all).
    anchors: HashMap<usize, (Node, usize)>,
    /// Collections open around the current node.
    depth: usize,
    /// Nodes built so far, alias copies included.
    nodes: usize,
    /// Whether an alias was expanded: only then does the node count say "through aliases".
    aliased: bool,
    lines: Lines<'a>,
}

/// The source by lines, to move the event parser's marks where GitHub puts positions.
pub struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    /// Line `line` (1-based), without its line break.
    pub fn line(&self, line: u32) -> &'a str {
        let Some(&start) = self.starts.get(line as usize - 1) else { return "" };
        let end = self.starts.get(line as usize).map_or(self.text.len(), |&e| e - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    fn char_at(&self, pos: Pos) -> Option<char> {
        self.line(pos.line).chars().nth(pos.col as usize - 1)
    }

    /// The nearest `|` or `>` before `pos`: a block scalar's header.
    fn block_header_before(&self, pos: Pos) -> Option<Pos> {
        let mut line = pos.line;
        let mut limit = pos.col as usize - 1;
        while line >= 1 {
            let chars: Vec<char> = self.line(line).chars().take(limit).collect();
            if let Some(i) = chars.iter().rposition(|&c| c == '|' || c == '>') {
                return Some(Pos::new(line, i as u32 + 1));
            }
            line -= 1;
            limit = usize::MAX;
        }
        None
    }

    /// Where npm `yaml` reports a syntax error the event parser found at `pos`: at the
    /// start of the plain scalar that caused it, which the event parser only notices later.
    fn syntax_error_pos(&self, pos: Pos, info: &str) -> Pos {
        let value_start = |line: u32| -> Option<Pos> {
            let text = self.line(line);
            let trimmed = text.trim_start();
            let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
            let colon = body.find(": ")?;
            let after = &body[colon + 2..];
            let value = after.trim_start();
            if value.is_empty() || value.starts_with(['#', '"', '\'', '[', '{', '|', '>', '&', '*', '!']) {
                return None;
            }
            let byte = text.len() - value.len();
            Some(Pos::new(line, text[..byte].chars().count() as u32 + 1))
        };
        let previous_content_line = |mut line: u32| -> Option<u32> {
            while line > 1 {
                line -= 1;
                let t = self.line(line).trim_start();
                if !t.is_empty() && !t.starts_with('#') {
                    return Some(line);
                }
            }
            None
        };
        match info {
            "mapping values are not allowed in this context" => {
                let text = self.line(pos.line);
                let before: String = text.chars().take(pos.col as usize - 1).collect();
                if before.contains(": ") {
                    // `key: a: b` — the value is where npm stops.
                    return value_start(pos.line).unwrap_or(pos);
                }
                // A continuation line of a plain scalar that holds `: `: npm points at the
                // scalar's start, a value (`key: a`) or a whole line without a key.
                match previous_content_line(pos.line) {
                    Some(line) => value_start(line).unwrap_or_else(|| {
                        let text = self.line(line);
                        let trimmed = text.trim_start();
                        let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
                        Pos::new(line, (text.len() - body.len()) as u32 + 1)
                    }),
                    None => pos,
                }
            }
            "while parsing node, found unknown anchor" => {
                // Marked before the alias: point at the `*name` itself.
                let mut line = pos.line;
                while line <= pos.line + 3 {
                    let text = self.line(line);
                    let skip = if line == pos.line { pos.col as usize - 1 } else { 0 };
                    if let Some(i) = text.chars().skip(skip).position(|c| c == '*') {
                        return Pos::new(line, (skip + i) as u32 + 1);
                    }
                    line += 1;
                }
                pos
            }
            info if info.starts_with("tabs disallowed") => {
                // npm `yaml` points at the indentation, where the tab is.
                let text = self.line(pos.line);
                let tab = text.chars().position(|c| c == '\t').unwrap_or(0);
                Pos::new(pos.line, tab as u32 + 1)
            }
            "simple key expect ':'" => {
                // A plain scalar line without its `:` before the next key.
                match previous_content_line(pos.line) {
                    Some(line) if !self.line(line).contains(':') => {
                        let text = self.line(line);
                        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
                        Pos::new(line, indent as u32 + 1)
                    }
                    _ => pos,
                }
            }
            _ => pos,
        }
    }

    /// Just after the `:` that ends the key starting at `pos`, when on the same line.
    fn after_colon(&self, pos: Pos) -> Option<Pos> {
        let chars: Vec<char> = self.line(pos.line).chars().collect();
        let mut i = pos.col as usize - 1;
        let quote = chars.get(i).copied().filter(|c| *c == '"' || *c == '\'');
        if let Some(q) = quote {
            i += 1;
            while i < chars.len() && chars[i] != q {
                i += if chars[i] == '\\' && q == '"' { 2 } else { 1 };
            }
            i += 1;
        }
        while i < chars.len() {
            if chars[i] == ':' && chars.get(i + 1).is_none_or(|c| c.is_whitespace()) {
                // An anchor or tag of the empty value (`key: &name`) comes before it.
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if matches!(chars.get(j), Some('&' | '!')) {
                    while j < chars.len() && !chars[j].is_whitespace() {
                        j += 1;
                    }
                    return Some(Pos::new(pos.line, j as u32 + 1));
                }
                // Trailing blanks belong before the empty value.
                if j == chars.len() {
                    return Some(Pos::new(pos.line, j as u32 + 1));
                }
                return Some(Pos::new(pos.line, i as u32 + 2));
            }
            i += 1;
        }
        None
    }

    /// Just after the nearest block-sequence dash before `pos`.
    fn after_dash_before(&self, pos: Pos) -> Option<Pos> {
        let mut line = pos.line;
        let mut limit = pos.col as usize - 1;
        while line >= 1 {
            let chars: Vec<char> = self.line(line).chars().take(limit).collect();
            for i in (0..chars.len()).rev() {
                if chars[i] == '-' && chars.get(i + 1).is_none_or(|c| c.is_whitespace()) {
                    // The event parser marks the empty item at the next item's content:
                    // the dash right before the mark is that next item's.
                    if line == pos.line && chars[i + 1..].iter().all(|c| c.is_whitespace()) {
                        continue;
                    }
                    return Some(Pos::new(line, i as u32 + 2));
                }
            }
            line -= 1;
            limit = usize::MAX;
        }
        None
    }

    /// The `-` of an indentless block sequence whose first item is at `pos`.
    fn dash_before(&self, pos: Pos) -> Option<Pos> {
        let chars: Vec<char> = self.line(pos.line).chars().take(pos.col as usize - 1).collect();
        let i = chars.iter().rposition(|&c| !c.is_whitespace())?;
        (chars[i] == '-').then(|| Pos::new(pos.line, i as u32 + 1))
    }
}

fn pos_of(mark: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos::new(mark.line() as u32, mark.col() as u32 + 1)
}

/// Deeper than any workflow needs; keeps recursion far from the stack's end.
const MAX_DEPTH: usize = 256;
/// Aliases can make a small text expand exponentially. GitHub's parser stops after as
/// many parse events (its `MaxParseEvents`, one per scalar and collection).
const MAX_NODES: usize = 1_000_000;

fn subtree_size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => items.iter().map(subtree_size).sum::<usize>() + 1,
        Value::Map(entries) => {
            entries.iter().map(|(k, v)| subtree_size(k) + subtree_size(v)).sum::<usize>() + 1
        }
        _ => 1,
    }
}

impl Builder<'_> {
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), Diagnostic> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            let message = if self.aliased {
                format!("YAML expands to more than {MAX_NODES} nodes through aliases (GitHub's parser stops at {MAX_NODES} parse events)")
            } else {
                format!("YAML has more than {MAX_NODES} nodes (GitHub's parser stops at {MAX_NODES} parse events)")
            };
            return Err(Diagnostic::new(pos, message));
        }
        Ok(())
    }

    fn next(&mut self) -> Result<(Event, Marker), Diagnostic> {
        self.parser.next_token().map_err(|e| {
            let pos = self.lines.syntax_error_pos(pos_of(*e.marker()), e.info());
            Diagnostic::new(pos, format!("YAML syntax error: {}", e.info()))
        })
    }

    fn document(&mut self) -> Result<Option<Node>, Diagnostic> {
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, mark) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        return Err(Diagnostic::new(
                            pos_of(mark),
                            "Source contains multiple documents; a workflow file holds exactly one",
                        ));
                    }
                }
                other => {
                    let node = self.node(other, mark)?;
                    // An empty document comes out as one null scalar: no content.
                    root = if node.is_null() { None } else { Some(node) };
                }
            }
        }
    }

    fn node(&mut self, event: Event, mark: Marker) -> Result<Node, Diagnostic> {
        let pos = pos_of(mark);
        let (anchor, node) = match event {
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Diagnostic::new(pos, "YAML syntax error: unknown alias"))?;
                self.aliased = true;
                self.count(size, pos)?;
                return Ok(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                // The event parser marks a block scalar's first content line; GitHub its header.
                let pos = if matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
                    self.lines.block_header_before(pos).unwrap_or(pos)
                } else {
                    pos
                };
                let tag = match &tag {
                    Some(t) => Some(core_tag(t).ok_or_else(|| {
                        Diagnostic::new(pos, format!("unsupported YAML tag `{}{}`", t.handle, t.suffix))
                    })?),
                    None => None,
                };
                let value = scalar(text, style, tag.flatten());
                (anchor, Node { pos, value })
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.depth >= MAX_DEPTH => {
                return Err(Diagnostic::new(pos, format!("YAML nested deeper than {MAX_DEPTH} levels")));
            }
            Event::SequenceStart(anchor, _) => {
                self.depth += 1;
                let mut items = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    let empty =
                        matches!(&event, Event::Scalar(t, TScalarStyle::Plain, _, None) if t.is_empty());
                    let mut item = self.node(event, mark)?;
                    if empty {
                        // An empty item sits right after its dash, as npm `yaml` has it.
                        if let Some(pos) = self.lines.after_dash_before(item.pos) {
                            item.pos = pos;
                        }
                    }
                    items.push(item);
                }
                // An indentless sequence is marked at its first item; GitHub puts it at the dash.
                let pos = match self.lines.char_at(pos) {
                    Some('[' | '-') => pos,
                    _ => items.first().and_then(|first| self.lines.dash_before(first.pos)).unwrap_or(pos),
                };
                (anchor, Node { pos, value: Value::Seq(items) })
            }
            Event::MappingStart(anchor, _) => {
                self.depth += 1;
                let mut entries = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(event, mark)?;
                    if matches!(key.value, Value::Seq(_) | Value::Map(_)) {
                        return Err(Diagnostic::new(
                            key.pos,
                            "YAML syntax error: a mapping key must be a scalar",
                        ));
                    }
                    let (event, mark) = self.next()?;
                    let empty =
                        matches!(&event, Event::Scalar(t, TScalarStyle::Plain, _, None) if t.is_empty());
                    let mut value = self.node(event, mark)?;
                    if empty {
                        // An empty value sits right after its key's colon, as npm `yaml` has it.
                        if let Some(pos) = self.lines.after_colon(key.pos) {
                            value.pos = pos;
                        }
                    }
                    entries.push((key, value));
                }
                // A block mapping is marked after its first key; GitHub puts it at the key.
                let pos = match (self.lines.char_at(pos), entries.first()) {
                    (Some('{'), _) | (_, None) => pos,
                    (_, Some((key, _))) => key.pos,
                };
                (anchor, Node { pos, value: Value::Map(entries) })
            }
            other => {
                return Err(Diagnostic::new(pos, format!("YAML syntax error: unexpected {other:?}")));
            }
        };
        if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
            self.depth -= 1;
        }
        self.count(1, pos)?;
        if anchor > 0 {
            let size = subtree_size(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }
}

/// The core-schema type a tag names (`!!int`, `!<tag:yaml.org,2002:str>`): Some(None)
/// for a local tag (`!foo`, ignored as npm `yaml` does), None for a type outside the
/// core schema (`!!timestamp`), which GitHub rejects.
fn core_tag(tag: &yaml_rust2::parser::Tag) -> Option<Option<&'static str>> {
    let name = match (tag.handle.as_str(), tag.suffix.strip_prefix("tag:yaml.org,2002:")) {
        (_, Some(name)) => name,
        ("!!", None) | ("tag:yaml.org,2002:", None) => tag.suffix.as_str(),
        _ => return Some(None),
    };
    ["str", "int", "float", "bool", "null", "seq", "map"].into_iter().find(|t| *t == name).map(Some)
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Value {
    let style = match style {
        TScalarStyle::Plain => Style::Plain,
        TScalarStyle::SingleQuoted => Style::SingleQuoted,
        TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
    };
    match tag {
        Some("str") => return Value::String(Str { text, style }),
        Some("null") => return Value::Null,
        Some("int" | "float" | "bool") => {
            // The tag decides the type even of a quoted scalar (`!!int "300"`).
            if let Some(value @ (Value::Number(_) | Value::Bool(_))) = resolve_plain(&text) {
                return value;
            }
        }
        _ => {}
    }
    if style == Style::Plain {
        if let Some(value) = resolve_plain(&text) {
            return value;
        }
    }
    Value::String(Str { text, style })
}

/// The YAML 1.2 core schema, as npm `yaml` applies it to plain scalars.
pub fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(Value::Number(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Number(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Number(f64::NAN)),
        _ => {}
    }
    let bytes = text.as_bytes();
    let first = bytes[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(Value::Number(radix(hex, 16)));
        }
        return None;
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Some(Value::Number(radix(oct, 8)));
        }
        return None;
    }
    // [-+]?[0-9]+  or  [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac_part {
        None => !int_part.is_empty() && digits(int_part),
        Some(frac) => {
            // `.5` and `5.` are floats, a lone `.` is not.
            digits(int_part) && digits(frac) && (!int_part.is_empty() || !frac.is_empty())
        }
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    };
    if mantissa_ok && exponent_ok {
        // Rust's float parser does not take a leading '+' with an empty integer part
        // (`+.5`) or a trailing dot everywhere; normalise first.
        let normal = text.strip_prefix('+').unwrap_or(text);
        let normal = if normal.ends_with('.') {
            format!("{normal}0")
        } else {
            normal.replace(".e", ".0e").replace(".E", ".0E")
        };
        return normal.parse::<f64>().ok().map(Value::Number);
    }
    None
}

fn radix(digits: &str, base: u32) -> f64 {
    digits.chars().fold(0.0, |acc, c| acc * base as f64 + c.to_digit(base).unwrap_or(0) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).expect("parses").expect("has content")
    }

    #[test]
    fn core_schema_scalars() {
        let cases: &[(&str, Value)] = &[
            ("on", Value::String(Str { text: "on".into(), style: Style::Plain })),
            ("yes", Value::String(Str { text: "yes".into(), style: Style::Plain })),
            ("true", Value::Bool(true)),
            ("False", Value::Bool(false)),
            ("~", Value::Null),
            ("0x1F", Value::Number(31.0)),
            ("0o17", Value::Number(15.0)),
            ("012", Value::Number(12.0)),
            ("-1.5e3", Value::Number(-1500.0)),
            (".5", Value::Number(0.5)),
            ("5.", Value::Number(5.0)),
            ("-.inf", Value::Number(f64::NEG_INFINITY)),
            ("1.2.3", Value::String(Str { text: "1.2.3".into(), style: Style::Plain })),
            ("0x", Value::String(Str { text: "0x".into(), style: Style::Plain })),
        ];
        for (text, want) in cases {
            let node = root(&format!("k: {text}\n"));
            assert_eq!(&node.get("k").unwrap().value, want, "{text}");
        }
        assert!(matches!(root("k: .nan").get("k").unwrap().value, Value::Number(n) if n.is_nan()));
        assert_eq!(root("k: '1'").get("k").unwrap().as_str(), Some("1"));
    }

    #[test]
    fn positions_keys_and_aliases() {
        let node = root("a: &x\n  b: 1\nc: *x\nd:\n  - 'q'\ne: |\n  text\nf:\n- i\ng: {h: [1]}\n");
        let entries = node.as_map().unwrap();
        assert_eq!(entries[0].0.pos, Pos::new(1, 1));
        assert_eq!(entries[1].0.pos, Pos::new(3, 1));
        assert_eq!(entries[1].1, entries[0].1);
        assert_eq!(entries[0].1.pos, Pos::new(2, 3));
        let seq = entries[2].1.as_seq().unwrap();
        assert_eq!(seq[0].pos, Pos::new(5, 5));
        assert_eq!(entries[2].1.pos, Pos::new(5, 3));
        assert_eq!(entries[3].1.pos, Pos::new(6, 4));
        assert_eq!(entries[4].1.pos, Pos::new(9, 1));
        assert_eq!(entries[5].1.pos, Pos::new(10, 4));
        assert_eq!(entries[5].1.get("h").unwrap().pos, Pos::new(10, 8));
        let empty = root("on:\n  push:\n  pull: &x\njobs: {}\n");
        assert_eq!(empty.get("on").unwrap().get("push").unwrap().pos, Pos::new(2, 8));
        assert_eq!(empty.get("on").unwrap().get("pull").unwrap().pos, Pos::new(3, 11));
        let items = root("paths:\n  -\n  - a\n");
        assert_eq!(items.get("paths").unwrap().as_seq().unwrap()[0].pos, Pos::new(2, 4));
    }

    #[test]
    fn duplicates_are_kept_and_errors_have_positions() {
        let node = root("a: 1\na: 2\n");
        assert_eq!(node.as_map().unwrap().len(), 2);
        let err = parse("a: [1\nb: 2\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err}");
        assert!(parse("").unwrap().is_none());
        assert!(parse("# only a comment\n").unwrap().is_none());
        assert!(parse("\u{feff}on: push\n").unwrap().unwrap().get("on").is_some());
        assert_eq!(parse("a:\n\tb: 1\n").unwrap_err().pos, Pos::new(2, 1));
        let deep = format!("k: {}{}\n", "[".repeat(300), "]".repeat(300));
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("deeper") || err.message.contains("recursion"), "{err}");
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            laughs.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let message = parse(&laughs).unwrap_err().message;
        assert!(message.contains("more than 1000000 nodes through aliases"), "{message}");
    }

    #[test]
    fn too_many_nodes_blames_aliases_only_when_there_are_some() {
        // Over the node limit without any alias: a flat sequence of 1,000,001 items.
        let flat = format!("k: [{}]\n", vec!["1"; 1_000_001].join(","));
        let message = parse(&flat).unwrap_err().message;
        assert!(message.contains("more than 1000000 nodes"), "{message}");
        assert!(!message.contains("alias"), "no alias was expanded: {message}");
        // A few aliases far below the limit are fine and say nothing.
        assert!(parse("a: &a [1, 2]\nb: *a\nc: *a\n").is_ok());
    }
}
