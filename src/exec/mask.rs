//! Masking: secrets never reach a log, an annotation or the forge.
//!
//! As GitHub's runner (`SecretMasker`): every occurrence of every secret becomes `***`;
//! occurrences that overlap or touch become one `***`, so no part of a secret shows
//! between two masks. A multi-line secret is also masked line by line (trimmed), since
//! output is masked a line at a time. Like GitHub's value encoders, a secret is also
//! masked as it appears JSON-escaped (`toJSON(secrets)`) and URL-encoded.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;

/// What a secret becomes.
pub const MASK: &str = "***";

/// The secrets of one job, and a matcher for all of them at once.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: BTreeSet<String>,
    /// Built from `values` on each change: adds are rare, masking is per line.
    matcher: Option<AhoCorasick>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks `value` from now on. Empty and whitespace-only values are ignored.
    pub fn add(&mut self, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        let mut forms = vec![value.to_owned()];
        forms.extend(value.split(['\r', '\n']).map(|line| line.trim().to_owned()));
        forms.push(json_escaped(value));
        forms.push(uri_escaped(value));

        let before = self.values.len();
        self.values.extend(forms.into_iter().filter(|f| !f.trim().is_empty()));
        if self.values.len() != before {
            self.matcher = Some(AhoCorasick::new(&self.values).expect("secrets make a valid automaton"));
        }
    }

    /// No secret to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`]; borrowed when none occurs.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(matcher) = &self.matcher else {
            return Cow::Borrowed(text);
        };
        if !matcher.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut spans: Vec<(usize, usize)> =
            matcher.find_overlapping_iter(text).map(|m| (m.start(), m.end())).collect();
        spans.sort_unstable();

        let mut masked = String::with_capacity(text.len());
        let mut copied = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next_start, next_end)) = spans.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                spans.next();
            }
            masked.push_str(&text[copied..start]);
            masked.push_str(MASK);
            copied = end;
        }
        masked.push_str(&text[copied..]);
        Cow::Owned(masked)
    }
}

/// The value as it appears inside a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_owned()
}

/// The value percent-encoded as .NET's `Uri.EscapeDataString` does: all but the
/// unreserved characters of RFC 3986.
fn uri_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let mut m = Masker::new();
        for v in values {
            m.add(v);
        }
        m
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let m = Masker::new();
        assert!(m.is_empty());
        assert!(matches!(m.mask("hello"), Cow::Borrowed("hello")));
        let m = masker(&["s3cret"]);
        assert!(matches!(m.mask("hello"), Cow::Borrowed("hello")));
    }

    #[test]
    fn every_occurrence_is_masked() {
        let m = masker(&["s3cret"]);
        assert_eq!(m.mask("s3cret"), "***");
        assert_eq!(m.mask("a s3cret and s3crets: s3cret"), "a *** and ***s: ***");
    }

    #[test]
    fn blank_values_are_ignored() {
        let m = masker(&["", " ", "\t\n"]);
        assert!(m.is_empty());
        assert_eq!(m.mask(" a b "), " a b ");
    }

    #[test]
    fn overlapping_and_adjacent_secrets_become_one_mask() {
        let m = masker(&["abc", "bcd"]);
        assert_eq!(m.mask("xabcdx"), "x***x");
        let m = masker(&["abc", "def"]);
        assert_eq!(m.mask("abcdef"), "***");
        let m = masker(&["secret", "secretive"]);
        assert_eq!(m.mask("so secretive"), "so ***", "the longest occurrence wins");
        let m = masker(&["aa"]);
        assert_eq!(m.mask("aaa b aaaa"), "*** b ***");
    }

    #[test]
    fn multi_line_values_mask_each_line() {
        let m = masker(&["first line\r\n  second line  \nthird"]);
        assert_eq!(m.mask("the first line"), "the ***");
        assert_eq!(m.mask("second line!"), "***!");
        assert_eq!(m.mask("third"), "***");
        assert_eq!(m.mask("first line\r\n  second line  \nthird"), "***");
    }

    #[test]
    fn escaped_forms_are_masked() {
        let m = masker(&["p\"a ss/1\n2"]);
        assert_eq!(m.mask(r#"{"token":"p\"a ss/1\n2"}"#), r#"{"token":"***"}"#);
        assert_eq!(m.mask("https://h/?t=p%22a%20ss%2F1%0A2&x"), "https://h/?t=***&x");
    }

    #[test]
    fn unicode_text_and_secrets() {
        let m = masker(&["пароль"]);
        assert_eq!(m.mask("ключ: пароль ✓"), "ключ: *** ✓");
        assert_eq!(m.mask("%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C"), "***");
    }

    #[test]
    fn adding_again_changes_nothing() {
        let mut m = masker(&["one"]);
        m.add("one");
        m.add("two");
        assert_eq!(m.mask("one two three"), "*** *** three");
    }
}
