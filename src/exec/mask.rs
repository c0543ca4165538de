//! Masking: secrets never reach a log, an annotation or the forge.
//!
//! As GitHub's runner (`SecretMasker`): every occurrence of every secret becomes `***`;
//! occurrences that overlap or touch become one `***`, so no part of a secret shows
//! between two masks. A multi-line secret is also masked line by line (trimmed), since
//! output is masked a line at a time. Each of these is also masked in the forms GitHub's
//! value encoders give it: base64 (also without its first one or two bytes, so it is
//! found inside `base64(user:secret)`), JSON-escaped, URL-encoded, XML-escaped, as an
//! expression string (`'` doubled), and without surrounding double quotes.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// What a secret becomes.
pub const MASK: &str = "***";

/// The secrets of one job, and a matcher for all of them at once.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: BTreeSet<String>,
    /// Built from `values` on each change: adds are rare, masking is per line.
    matcher: Option<AhoCorasick>,
    /// The longest value in bytes: how far past a cut in a long line one must look.
    longest: usize,
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
        let mut plain = vec![value];
        if value.contains(['\r', '\n']) {
            plain.extend(value.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()));
        }
        let before = self.values.len();
        for form in plain {
            self.values.extend(encoded_forms(form).into_iter().filter(|f| !f.trim().is_empty()));
            self.values.insert(form.to_owned());
        }
        if self.values.len() != before {
            self.matcher = Some(AhoCorasick::new(&self.values).expect("secrets make a valid automaton"));
            self.longest = self.values.iter().map(String::len).max().unwrap_or(0);
        }
    }

    /// How many bytes past a cut must be seen to know that no secret spans it.
    pub fn lookahead(&self) -> usize {
        self.longest.saturating_sub(1)
    }

    /// A place to cut `text` near `at` (a character boundary, `0 < at < text.len()`)
    /// that splits no occurrence of a secret, so each piece masks it whole: `at` itself,
    /// else the start of the occurrences that span it, else — when one starts at the
    /// very beginning — their end. `text` must hold [`Masker::lookahead`] bytes past
    /// `at`, or the whole line.
    pub fn cut_point(&self, text: &[u8], at: usize) -> usize {
        let Some(matcher) = &self.matcher else {
            return at;
        };
        let from = at.saturating_sub(self.lookahead());
        let to = (at + self.lookahead()).min(text.len());
        let spans: Vec<(usize, usize)> = matcher
            .find_overlapping_iter(&text[from..to])
            .map(|m| (from + m.start(), from + m.end()))
            .collect();
        let spanning = |cut: usize| spans.iter().filter(move |&&(start, end)| start < cut && cut < end);
        let mut cut = at;
        while let Some(start) = spanning(cut).map(|&(start, _)| start).min() {
            cut = start;
        }
        if cut > 0 {
            return cut;
        }
        // A secret from the first byte on: the piece takes all of it, a little longer.
        let mut cut = at;
        while let Some(end) = spanning(cut).map(|&(_, end)| end).max() {
            cut = end;
        }
        cut
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

/// The forms GitHub's runner masks a value in besides itself (`ValueEncoders`).
fn encoded_forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let shifted = |shift: usize| BASE64.encode(if bytes.len() > shift { &bytes[shift..] } else { bytes });
    vec![
        shifted(0),
        shifted(1),
        shifted(2),
        value.replace('\'', "''"),
        json_escaped(value),
        uri_escaped(value),
        xml_escaped(value),
        trimmed_double_quotes(value),
    ]
}

/// .NET's `SecurityElement.Escape`.
fn xml_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// A value of more than 8 characters in double quotes, without them (else empty).
fn trimmed_double_quotes(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if value.chars().count() > 8 => inner.to_owned(),
        _ => String::new(),
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
    fn base64_forms_are_masked() {
        let m = masker(&["password"]);
        // base64("password"), and base64("user:password") where it is the tail.
        assert_eq!(m.mask("cGFzc3dvcmQ="), "***");
        for prefix in ["u:", "us:", "use:", "user:"] {
            let encoded = BASE64.encode(format!("{prefix}password"));
            assert!(m.mask(&encoded).contains("***"), "{prefix}: {encoded}");
        }
    }

    #[test]
    fn other_encoded_forms() {
        let m = masker(&["it's <&>"]);
        assert_eq!(m.mask("'it''s <&>'"), "'***'");
        assert_eq!(m.mask("<v>it&apos;s &lt;&amp;&gt;</v>"), "<v>***</v>");
        let m = masker(&["\"long secret\""]);
        assert_eq!(m.mask("=long secret;"), "=***;");
        let m = masker(&["\"short\""]);
        assert_eq!(m.mask("short"), "short", "only values of more than 8 characters lose their quotes");
    }

    #[test]
    fn unicode_text_and_secrets() {
        let m = masker(&["пароль"]);
        assert_eq!(m.mask("ключ: пароль ✓"), "ключ: *** ✓");
        assert_eq!(m.mask("%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C"), "***");
    }

    #[test]
    fn cut_points_split_no_secret() {
        let m = masker(&["secret"]);
        let text = b"xx secret yy";
        assert_eq!(m.cut_point(text, 2), 2, "nothing spans it");
        for at in 4..9 {
            assert_eq!(m.cut_point(text, at), 3, "inside the secret at {at}");
        }
        assert_eq!(m.cut_point(text, 9), 9, "right after it");
        // From the first byte: the piece grows to the secret's end.
        assert_eq!(m.cut_point(b"secretsecret", 3), 6);
        // Overlapping occurrences move the cut to the first of them.
        let m = masker(&["abcd", "cdef"]);
        assert_eq!(m.cut_point(b"--abcdef--", 5), 2);
        assert_eq!(Masker::new().cut_point(b"secret", 3), 3);
        assert_eq!(m.lookahead(), "abcd".len().max(BASE64.encode("abcd").len()) - 1);
    }

    #[test]
    fn adding_again_changes_nothing() {
        let mut m = masker(&["one"]);
        m.add("one");
        m.add("two");
        assert_eq!(m.mask("one two three"), "*** *** three");
    }
}
