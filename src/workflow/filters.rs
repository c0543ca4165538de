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

/// A pattern that cannot be compiled, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern '{pattern}': {reason}")]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

/// One compiled pattern of a filter list.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    source: String,
    negated: bool,
    tokens: Vec<Token>,
}

/// A pattern compiles to a sequence of tokens, matched against a whole name by a
/// dynamic program (no backtracking blow-up, no regex to build for every filter).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// One character (a literal or a `[]` class), possibly quantified by `?` or `+`.
    Char(CharSet, Repeat),
    /// `*`: any characters but `/`.
    Star,
    /// `**`: any characters.
    DoubleStar,
    /// `**/`: nothing, or any characters ending with `/`.
    AnyDirs,
}

#[derive(Debug, Clone, PartialEq)]
enum CharSet {
    Literal(char),
    /// Inclusive ranges (`[CB]` is `C-C`, `B-B`).
    Class(Vec<(char, char)>),
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        match self {
            CharSet::Literal(l) => *l == c,
            CharSet::Class(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Repeat {
    One,
    /// `?`
    ZeroOrOne,
    /// `+`
    OneOrMore,
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern, FilterError> {
        let (negated, body) = match source.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let tokens = compile(body).map_err(|reason| FilterError { pattern: source.to_string(), reason })?;
        Ok(Pattern { source: source.to_string(), negated, tokens })
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
        let text: Vec<char> = name.chars().collect();
        let n = text.len();
        // `next[j]`: the tokens after the current one match `text[j..]`; `cur[j]`: the
        // tokens from the current one on do. Filled from the last token backwards and,
        // within a token, from the end of the text backwards.
        let mut next = vec![false; n + 1];
        next[n] = true;
        let mut cur = vec![false; n + 1];
        for token in self.tokens.iter().rev() {
            cur[n] = match token {
                Token::Char(_, Repeat::ZeroOrOne) | Token::Star | Token::DoubleStar | Token::AnyDirs => {
                    next[n]
                }
                Token::Char(_, _) => false,
            };
            // For `**/`: some `/` at or after j is followed by a match of the rest.
            let mut slash_then_rest = false;
            for j in (0..n).rev() {
                let c = text[j];
                cur[j] = match token {
                    Token::Char(set, Repeat::One) => set.contains(c) && next[j + 1],
                    Token::Char(set, Repeat::ZeroOrOne) => next[j] || (set.contains(c) && next[j + 1]),
                    Token::Char(set, Repeat::OneOrMore) => set.contains(c) && (next[j + 1] || cur[j + 1]),
                    Token::Star => next[j] || (c != '/' && cur[j + 1]),
                    Token::DoubleStar => next[j] || cur[j + 1],
                    Token::AnyDirs => {
                        slash_then_rest |= c == '/' && next[j + 1];
                        next[j] || slash_then_rest
                    }
                };
            }
            std::mem::swap(&mut cur, &mut next);
        }
        next[0]
    }
}

/// An ordered list of patterns: one `branches:`, `tags:`, `paths:` (or `-ignore`) list.
#[derive(Debug, Clone, PartialEq)]
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

/// Compiles a pattern body (no leading `!`). `?` and `+` quantify the character or
/// class before them; after `*`/`**` or another quantifier they add nothing; at the
/// start they are literal.
fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    if chars.get(i + 2) == Some(&'/') {
                        tokens.push(Token::AnyDirs);
                        i += 3;
                    } else {
                        tokens.push(Token::DoubleStar);
                        i += 2;
                    }
                } else {
                    tokens.push(Token::Star);
                    i += 1;
                }
            }
            c @ ('?' | '+') => {
                match tokens.last_mut() {
                    Some(Token::Char(_, repeat @ Repeat::One)) => {
                        *repeat = if c == '?' { Repeat::ZeroOrOne } else { Repeat::OneOrMore };
                    }
                    Some(_) => {}
                    None => tokens.push(Token::Char(CharSet::Literal(c), Repeat::One)),
                }
                i += 1;
            }
            '[' => {
                let (class, next) = char_class(&chars, i)?;
                tokens.push(Token::Char(class, Repeat::One));
                i = next;
            }
            '\\' => {
                let Some(c) = chars.get(i + 1) else {
                    return Err("missing character after '\\'".to_string());
                };
                tokens.push(Token::Char(CharSet::Literal(*c), Repeat::One));
                i += 2;
            }
            c => {
                tokens.push(Token::Char(CharSet::Literal(c), Repeat::One));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// `[...]` starting at `chars[start]`: the class and the index after `]`. Only
/// alphanumerics and ranges within `a-z`, `A-Z` or `0-9` are allowed.
fn char_class(chars: &[char], start: usize) -> Result<(CharSet, usize), String> {
    let mut i = start + 1;
    let mut ranges = Vec::new();
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
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    if i >= chars.len() {
        return Err("missing closing ']'".to_string());
    }
    if ranges.is_empty() {
        return Err("empty brackets '[]'".to_string());
    }
    Ok((CharSet::Class(ranges), i + 1))
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

    /// The documented semantics as a regular expression, token by token: the matcher
    /// must agree with it on every pattern and name.
    fn as_regex(pattern: &Pattern) -> regex::Regex {
        let mut out = String::from("(?s)^");
        for token in &pattern.tokens {
            match token {
                Token::Star => out.push_str("[^/]*"),
                Token::DoubleStar => out.push_str(".*"),
                Token::AnyDirs => out.push_str("(?:.*/)?"),
                Token::Char(set, repeat) => {
                    match set {
                        CharSet::Literal(c) => out.push_str(&regex::escape(&c.to_string())),
                        CharSet::Class(ranges) => {
                            out.push('[');
                            for (lo, hi) in ranges {
                                out.push_str(&format!("{lo}-{hi}"));
                            }
                            out.push(']');
                        }
                    }
                    out.push_str(match repeat {
                        Repeat::One => "",
                        Repeat::ZeroOrOne => "?",
                        Repeat::OneOrMore => "+",
                    });
                }
            }
        }
        out.push('$');
        regex::Regex::new(&out).expect("valid regex")
    }

    #[test]
    fn matcher_agrees_with_the_regular_expression_semantics() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        const PIECES: &[&str] = &["a", "b", "/", ".", "*", "**", "**/", "?", "+", "[ab]", "[0-9]", "\\*"];
        const CHARS: &[char] = &['a', 'b', '/', '.', '1', '*'];
        let (mut matched, mut compared) = (0, 0);
        for _ in 0..3000 {
            let pattern: String = (0..1 + next(6)).map(|_| PIECES[next(PIECES.len())]).collect();
            let Ok(compiled) = Pattern::parse(&pattern) else { continue };
            let re = as_regex(&compiled);
            for _ in 0..20 {
                let name: String = (0..next(8)).map(|_| CHARS[next(CHARS.len())]).collect();
                let ours = compiled.body_matches(&name);
                assert_eq!(ours, re.is_match(&name), "{pattern:?} on {name:?}");
                compared += 1;
                matched += usize::from(ours);
            }
        }
        assert!(matched > compared / 50 && matched < compared / 2, "{matched} of {compared} matched");
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in ["[", "[]", "a[b", "[a-Z]", "[9-0]", "[.]", "[a-]", "[!a]", "x\\"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
