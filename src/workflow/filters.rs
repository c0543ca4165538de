//! GitHub's filter patterns for `branches`, `tags` and `paths` (and their `-ignore`
//! forms), as the "Filter pattern cheat sheet" of GitHub's workflow syntax documents:
//!
//! - `*` matches zero or more characters except `/`; `**` matches zero or more of any
//!   character; `**/` also matches nothing, so `**/README.md` matches `README.md`;
//! - `?` and `+` make the preceding character (or `[]` class) optional or repeatable,
//!   as in a regular expression (`*.jsx?` matches `page.js` and `page.jsx`);
//! - `[]` matches one alphanumeric character listed or in a range (`a-z`, `A-Z`, `0-9`);
//! - `\` makes the next character literal;
//! - `!` at the start of a pattern negates it. Patterns are checked in order: a later
//!   matching pattern overrides an earlier one, so a negative pattern excludes what the
//!   positive ones before it included, and a positive one re-includes.
//!
//! A pattern must match the whole name or path.

use regex::Regex;

/// A pattern that cannot be compiled, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern '{pattern}': {reason}")]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

/// One compiled pattern of a filter list.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    negated: bool,
    regex: Regex,
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern, FilterError> {
        let (negated, body) = match source.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let regex_src =
            to_regex(body).map_err(|reason| FilterError { pattern: source.to_string(), reason })?;
        let regex = Regex::new(&regex_src)
            .map_err(|e| FilterError { pattern: source.to_string(), reason: e.to_string() })?;
        Ok(Pattern { source: source.to_string(), negated, regex })
    }

    /// The pattern as written, `!` included.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// Whether the pattern's body (without `!`) matches the whole of `name`.
    pub fn body_matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

/// An ordered list of patterns: one `branches:`, `tags:`, `paths:` (or `-ignore`) list.
#[derive(Debug, Clone)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Filter, FilterError> {
        let patterns = patterns.iter().map(|p| Pattern::parse(p.as_ref())).collect::<Result<_, _>>()?;
        Ok(Filter { patterns })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether the list selects `name`: the last pattern that matches decides (a
    /// negative one deselects), and a name no pattern matches is not selected.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().rev().find(|p| p.body_matches(name)).is_some_and(|p| !p.negated)
    }

    /// For `branches`/`tags`/`paths`: whether any of the names is selected.
    pub fn includes_any<S: AsRef<str>>(&self, names: &[S]) -> bool {
        names.iter().any(|n| self.matches(n.as_ref()))
    }

    /// For `branches-ignore`/`tags-ignore`/`paths-ignore`: whether every name is
    /// ignored (then the workflow does not run). An empty list of names is all ignored.
    pub fn ignores_all<S: AsRef<str>>(&self, names: &[S]) -> bool {
        names.iter().all(|n| self.matches(n.as_ref()))
    }
}

/// Translates a pattern body (no leading `!`) into an anchored regular expression.
fn to_regex(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("(?s)^");
    // What was written last: one character or class, which `?`/`+` quantify; after
    // `*`/`**` or another quantifier they add nothing; at the start they are literal.
    enum Last {
        Nothing,
        Single,
        Wildcard,
        Quantified,
    }
    let mut last = Last::Nothing;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    if chars.get(i + 2) == Some(&'/') {
                        out.push_str("(?:.*/)?");
                        i += 3;
                    } else {
                        out.push_str(".*");
                        i += 2;
                    }
                } else {
                    out.push_str("[^/]*");
                    i += 1;
                }
                last = Last::Wildcard;
            }
            c @ ('?' | '+') => {
                match last {
                    Last::Single => {
                        out.push(c);
                        last = Last::Quantified;
                    }
                    Last::Wildcard | Last::Quantified => {}
                    Last::Nothing => {
                        out.push_str(&regex::escape(&c.to_string()));
                        last = Last::Single;
                    }
                }
                i += 1;
            }
            '[' => {
                let (class, next) = char_class(&chars, i)?;
                out.push_str(&class);
                i = next;
                last = Last::Single;
            }
            '\\' => {
                let Some(c) = chars.get(i + 1) else {
                    return Err("missing character after '\\'".to_string());
                };
                out.push_str(&regex::escape(&c.to_string()));
                i += 2;
                last = Last::Single;
            }
            c => {
                out.push_str(&regex::escape(&c.to_string()));
                i += 1;
                last = Last::Single;
            }
        }
    }
    out.push('$');
    Ok(out)
}

/// `[...]` starting at `chars[start]`: the regex class and the index after `]`.
/// Only alphanumerics and ranges within `a-z`, `A-Z` or `0-9` are allowed.
fn char_class(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut i = start + 1;
    let mut class = String::from("[");
    let mut empty = true;
    while i < chars.len() && chars[i] != ']' {
        let c = chars[i];
        if !c.is_ascii_alphanumeric() {
            return Err(format!(
                "'{c}' in brackets: only letters, digits and ranges a-z, A-Z, 0-9 are allowed"
            ));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|e| *e != ']') {
            let end = chars[i + 2];
            let same_kind = (c.is_ascii_lowercase() && end.is_ascii_lowercase())
                || (c.is_ascii_uppercase() && end.is_ascii_uppercase())
                || (c.is_ascii_digit() && end.is_ascii_digit());
            if !same_kind || end < c {
                return Err(format!("invalid range '{c}-{end}': ranges can only include a-z, A-Z and 0-9"));
            }
            class.push(c);
            class.push('-');
            class.push(end);
            i += 3;
        } else {
            class.push(c);
            i += 1;
        }
        empty = false;
    }
    if i >= chars.len() {
        return Err("missing closing ']'".to_string());
    }
    if empty {
        return Err("empty brackets '[]'".to_string());
    }
    class.push(']');
    Ok((class, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Filter::new(&[pattern]).unwrap_or_else(|e| panic!("{e}")).matches(name)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "main") && !m("*", "a/b"));
        assert!(m("**", "a/b/c") && m("**", ""));
        assert!(m("**/x", "x") && m("**/x", "a/b/x") && !m("**/x", "ax"));
        assert!(m("a/**/b", "a/b") && m("a/**/b", "a/x/y/b"));
        assert!(m("a**b", "a/x/b") && !m("a*b", "a/x/b"));
    }

    #[test]
    fn quantifiers_apply_to_the_preceding_character() {
        assert!(m("ab?c", "ac") && m("ab?c", "abc") && !m("ab?c", "abbc"));
        assert!(m("ab+c", "abbbc") && !m("ab+c", "ac"));
        assert!(m("[0-9]+", "2024") && !m("[0-9]+", ""));
        // At the start there is nothing to quantify: literal.
        assert!(m("?x", "?x") && m("+x", "+x"));
        // After a wildcard they add nothing.
        assert!(m("a*?", "abc") && m("a*+", "a"));
        assert!(m("ab?+", "a") && m("ab+?", "abb"));
    }

    #[test]
    fn escapes_and_literals() {
        assert!(m("v1.0", "v1.0") && !m("v1.0", "v1x0"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        assert!(m("\\!x", "!x"));
        assert!(m("(x)|y", "(x)|y"));
    }

    #[test]
    fn negation_in_order() {
        let f = Filter::new(&["releases/**", "!releases/**-alpha", "releases/keep-alpha"]).unwrap();
        assert!(f.matches("releases/10"));
        assert!(!f.matches("releases/beta/3-alpha"));
        assert!(f.matches("releases/keep-alpha"));
        assert!(!f.matches("main"));
        let only_negative = Filter::new(&["!main"]).unwrap();
        assert!(!only_negative.matches("main") && !only_negative.matches("dev"));
    }

    #[test]
    fn ignore_lists() {
        let f = Filter::new(&["docs/**"]).unwrap();
        assert!(f.ignores_all(&["docs/a.md", "docs/b/c.md"]));
        assert!(!f.ignores_all(&["docs/a.md", "src/main.rs"]));
        assert!(f.includes_any(&["docs/a.md", "src/main.rs"]));
        assert!(!f.includes_any(&["src/main.rs"]));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in ["[", "[]", "a[b", "[a-Z]", "[9-0]", "[.]", "[a-]", "[!a]", "x\\"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
