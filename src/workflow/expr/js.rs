//! The few JavaScript semantics GitHub's evaluator inherits from its host language and
//! that expressions can observe: `Number(string)`, `Number.prototype.toString`,
//! `JSON.parse`/`JSON.stringify` (including the key order of JS objects),
//! `String.prototype.trim`, and UTF-16 code-unit order for string comparison.

use indexmap::IndexMap;

use super::Value;

/// JavaScript's `WhiteSpace` and `LineTerminator` (what `/\s/` and `trim()` match).
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// Length of a string in UTF-16 code units, as JavaScript counts it.
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// `Number(s)`: ECMAScript StringToNumber. NaN when `s` is not a numeric literal.
pub fn string_to_number(s: &str) -> f64 {
    let s = js_trim(s);
    if s.is_empty() {
        return 0.0;
    }
    let bytes = s.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'0' {
        let radix = match bytes[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return parse_radix(&s[2..], radix);
        }
    }
    let (sign, rest) = match bytes[0] {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(rest.as_bytes()) {
        return f64::NAN;
    }
    // The grammar is checked above; Rust's parser rounds correctly, as JS does.
    sign * rest.parse::<f64>().unwrap_or(f64::NAN)
}

/// `digits [. digits] [e [+-] digits]` or `. digits [exponent]`, with at least one digit
/// in the mantissa.
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = count_digits(&b[i..]);
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_digits = count_digits(&b[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// An unsigned integer in base 2, 8 or 16, rounded to the nearest double (ties to even).
fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let bits_per_digit = radix.trailing_zeros();
    let mut acc: u128 = 0;
    let mut shifted_out: i32 = 0;
    let mut sticky = false;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { return f64::NAN };
        if acc >> (128 - 8) != 0 {
            // Keep the leading 120+ bits; what falls off only matters as a sticky bit.
            shifted_out += bits_per_digit as i32;
            sticky |= d != 0;
        } else {
            acc = (acc << bits_per_digit) | u128::from(d);
        }
    }
    if sticky {
        acc |= 1;
    }
    (acc as f64) * 2f64.powi(shifted_out)
}

/// `Number.prototype.toString()` (shortest round-trip digits, JS exponent style).
pub fn number_to_string(n: f64) -> String {
    if n == 0.0 {
        return "0".to_string();
    }
    ryu_js::Buffer::new().format(n).to_string()
}

/// How GitHub's evaluator turns a number into a string: at most 15 decimals,
/// `(+n.toFixed(15)).toString()`, with 0 and -0 both `"0"`.
pub fn number_coerce_string(n: f64) -> String {
    if n == 0.0 {
        return "0".to_string();
    }
    if !n.is_finite() || n.abs() >= 1e21 {
        // toFixed falls back to ToString here; reparsing changes nothing.
        return number_to_string(n);
    }
    let fixed = to_fixed_15(n.abs());
    let reparsed: f64 = fixed.parse().unwrap_or(f64::NAN);
    number_to_string(if n < 0.0 { -reparsed } else { reparsed })
}

/// `x.toFixed(15)` for a finite `0 <= x < 1e21`: the exact value rounded to 15
/// decimals, a tie rounding up (the spec picks the larger n).
fn to_fixed_15(x: f64) -> String {
    // Rust prints exact decimal expansions, rounding ties to even. A tie at the 16th
    // decimal needs an exact expansion ending there, so x * 2^16 is an integer; only
    // then print the 16 exact decimals and round half up by hand.
    let scaled = x * 65536.0;
    if scaled.fract() != 0.0 {
        return format!("{x:.15}");
    }
    let exact = format!("{x:.16}");
    let (kept, last) = exact.split_at(exact.len() - 1);
    if last.as_bytes()[0] < b'5' {
        return kept.to_string();
    }
    // Increment the last kept digit, carrying over nines (and the decimal point).
    let mut digits: Vec<u8> = kept.bytes().collect();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, b'1');
            break;
        }
        i -= 1;
        match digits[i] {
            b'.' => continue,
            b'9' => digits[i] = b'0',
            d => {
                digits[i] = d + 1;
                break;
            }
        }
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// Keys that are array indices ("0", "42", not "01" or "-1") come first in ascending
/// order in a JS object, before the other keys in insertion order.
fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let v: u64 = key.parse().ok()?;
    (v < u64::from(u32::MAX)).then_some(v as u32)
}

/// Builds an object the way GitHub's evaluator builds its dictionaries from a parsed JS
/// object: JS key order, then case-insensitive deduplication (the first key wins), and
/// without the keys its lookup table cannot hold (`constructor`, `__proto__`).
pub fn js_object(pairs: Vec<(String, Value)>) -> IndexMap<String, Value> {
    let has_index = pairs.iter().any(|(k, _)| array_index(k).is_some());
    let mut ordered = pairs;
    if has_index {
        let mut indexed: Vec<(u32, (String, Value))> = Vec::new();
        let mut named = Vec::new();
        for (k, v) in ordered {
            match array_index(&k) {
                Some(i) => indexed.push((i, (k, v))),
                None => named.push((k, v)),
            }
        }
        indexed.sort_by_key(|(i, _)| *i);
        ordered = indexed.into_iter().map(|(_, kv)| kv).chain(named).collect();
    }
    let mut out: IndexMap<String, Value> = IndexMap::with_capacity(ordered.len());
    // Lower-cased keys seen so far, for objects too big to compare pairwise.
    let mut seen: Option<std::collections::HashSet<String>> =
        (ordered.len() > 16).then(|| std::collections::HashSet::with_capacity(ordered.len()));
    for (k, v) in ordered {
        if k.eq_ignore_ascii_case("constructor") || k.eq_ignore_ascii_case("__proto__") {
            continue;
        }
        let duplicate = match &mut seen {
            Some(seen) => !seen.insert(k.to_lowercase()),
            None => out.contains_key(&k) || out.keys().any(|existing| lower_eq(existing, &k)),
        };
        if !duplicate {
            out.insert(k, v);
        }
    }
    out
}

/// `a.toLowerCase() === b.toLowerCase()`.
pub fn lower_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.to_lowercase() == b.to_lowercase()
}

/// Error from [`parse_json`]; GitHub's evaluator reports every one the same way.
#[derive(Debug)]
pub struct JsonError;

/// `JSON.parse` into expression values: duplicate keys keep the last value at the
/// first key's place, numbers out of range become infinities, as in JavaScript.
pub fn parse_json(text: &str) -> Result<Value, JsonError> {
    let mut p = JsonParser { b: text.as_bytes(), s: text, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(JsonError);
    }
    Ok(v)
}

struct JsonParser<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Result<(), JsonError> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(JsonError)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        // Far deeper than any real document; keeps the native stack safe.
        if depth > 2000 {
            return Err(JsonError);
        }
        match self.b.get(self.i).copied().ok_or(JsonError)? {
            b'n' => self.eat("null").map(|_| Value::Null),
            b't' => self.eat("true").map(|_| Value::Bool(true)),
            b'f' => self.eat("false").map(|_| Value::Bool(false)),
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(JsonError),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut map: IndexMap<String, Value> = IndexMap::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Object(js_object(Vec::new())));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(JsonError);
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(JsonError);
                    }
                    self.i += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Object(js_object(map.into_iter().collect())));
                        }
                        _ => return Err(JsonError),
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(JsonError),
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        let b = self.b;
        if b[self.i] == b'-' {
            self.i += 1;
        }
        match b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.i += count_digits(&b[self.i..]),
            _ => return Err(JsonError),
        }
        if b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let n = count_digits(&b[self.i..]);
            if n == 0 {
                return Err(JsonError);
            }
            self.i += n;
        }
        if matches!(b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let n = count_digits(&b[self.i..]);
            if n == 0 {
                return Err(JsonError);
            }
            self.i += n;
        }
        self.s[start..self.i].parse::<f64>().map(Value::Number).map_err(|_| JsonError)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self.s.get(self.i..self.i + 4).ok_or(JsonError)?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(JsonError);
        }
        self.i += 4;
        u32::from_str_radix(h, 16).map_err(|_| JsonError)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && !matches!(self.b[self.i], b'"' | b'\\' | 0..=0x1f) {
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            match self.b.get(self.i).copied().ok_or(JsonError)? {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let c = self.b.get(self.i).copied().ok_or(JsonError)?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with("\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    self.i = save;
                                    hi
                                }
                            } else {
                                hi
                            };
                            // A lone surrogate has no UTF-8 form: it becomes U+FFFD.
                            out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(JsonError),
                    }
                }
                _ => return Err(JsonError),
            }
        }
    }
}

/// `JSON.stringify(value, null, indent)` for expression values: NaN and the
/// infinities print as `null`, numbers as JS prints them.
pub fn stringify(value: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_json(&mut out, value, indent, 0);
    out
}

pub fn write_json(out: &mut String, value: &Value, indent: &str, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_json_number(out, *n),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            write_seq(out, items.iter(), indent, level, |out, v, l| write_json(out, v, indent, l), '[', ']')
        }
        Value::Object(map) => write_seq(
            out,
            map.iter(),
            indent,
            level,
            |out, (k, v), l| {
                write_json_string(out, k);
                out.push(':');
                if !indent.is_empty() {
                    out.push(' ');
                }
                write_json(out, v, indent, l);
            },
            '{',
            '}',
        ),
    }
}

/// Writes `open items… close` with JSON.stringify's layout for `indent`.
pub fn write_seq<I: ExactSizeIterator>(
    out: &mut String,
    items: I,
    indent: &str,
    level: usize,
    mut item: impl FnMut(&mut String, I::Item, usize),
    open: char,
    close: char,
) {
    out.push(open);
    if items.len() == 0 {
        out.push(close);
        return;
    }
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if !indent.is_empty() {
            out.push('\n');
            for _ in 0..=level {
                out.push_str(indent);
            }
        }
        item(out, v, level + 1);
    }
    if !indent.is_empty() {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
    out.push(close);
}

pub fn write_json_number(out: &mut String, n: f64) {
    if n.is_finite() {
        out.push_str(&number_to_string(n));
    } else {
        out.push_str("null");
    }
}

pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The code units of `s` upper-cased as GitHub's `toUpperSpecial` does (JS
/// `toUpperCase`, except that the dotless `ı` stays as it is).
fn upper_units(s: &str) -> impl DoubleEndedIterator<Item = u16> + '_ {
    s.chars().flat_map(|c| {
        let mut units = [0u16; 6];
        let mut n = 0;
        let mut push = |u: char| {
            n += u.encode_utf16(&mut units[n..]).len();
        };
        if c == 'ı' {
            push(c);
        } else {
            for u in c.to_uppercase() {
                push(u);
            }
        }
        units.into_iter().take(n)
    })
}

/// Case-insensitive equality as GitHub's evaluator compares strings.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    upper_units(a).eq(upper_units(b))
}

/// Case-insensitive ordering (upper-cased, then UTF-16 code-unit order, as JS `<`).
pub fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.bytes().map(|c| c.to_ascii_uppercase()).cmp(b.bytes().map(|c| c.to_ascii_uppercase()));
    }
    upper_units(a).cmp(upper_units(b))
}

pub fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    if s.is_ascii() && prefix.is_ascii() {
        return s.len() >= prefix.len()
            && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
    }
    let mut it = upper_units(s);
    upper_units(prefix).all(|u| it.next() == Some(u))
}

pub fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    if s.is_ascii() && suffix.is_ascii() {
        return s.len() >= suffix.len()
            && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes());
    }
    let mut it = upper_units(s).rev();
    upper_units(suffix).rev().all(|u| it.next() == Some(u))
}

/// `s.toLowerCase().includes(needle.toLowerCase())`.
pub fn contains_ignore_case(s: &str, needle: &str) -> bool {
    if s.is_ascii() && needle.is_ascii() {
        let (h, n) = (s.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    s.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_js_number() {
        assert_eq!(string_to_number("0x1F"), 31.0);
        assert_eq!(string_to_number("0b101"), 5.0);
        assert_eq!(string_to_number("0o17"), 15.0);
        assert!(string_to_number("-0x1").is_nan());
        assert_eq!(string_to_number(" 1.5e3 "), 1500.0);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert!(string_to_number(".").is_nan());
        assert!(string_to_number("1e").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"), 2f64.powi(136));
    }

    #[test]
    fn numbers_print_as_github_does() {
        assert_eq!(number_coerce_string(1e21), "1e+21");
        assert_eq!(number_coerce_string(0.1 + 0.2), "0.3");
        assert_eq!(number_coerce_string(1e-7), "1e-7");
        assert_eq!(number_coerce_string(1e-16), "0");
        assert_eq!(number_coerce_string(-0.0), "0");
        assert_eq!(number_coerce_string(f64::NAN), "NaN");
        assert_eq!(number_coerce_string(123456789012345678.0), "123456789012345680");
        assert_eq!(number_coerce_string(1.8155653336393567e-17), "0");
        // 2^-16 = 0.0000152587890625 exactly: a tie at the 16th decimal rounds up.
        assert_eq!(number_coerce_string(2f64.powi(-16)), "0.000015258789063");
        assert_eq!(number_coerce_string(-(2f64.powi(-16))), "-0.000015258789063");
        assert_eq!(number_coerce_string(0.9999999999999999), "1");
    }

    #[test]
    fn object_keys_follow_js_order_and_dedupe() {
        let obj = js_object(vec![
            ("b".into(), Value::Null),
            ("2".into(), Value::Null),
            ("B".into(), Value::Null),
            ("1".into(), Value::Null),
            ("Constructor".into(), Value::Null),
        ]);
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["1", "2", "b"]);
        let many: Vec<(String, Value)> = (0..40)
            .map(|i| (if i % 2 == 0 { format!("k{i}") } else { format!("K{}", i - 1) }, Value::Null))
            .collect();
        assert_eq!(js_object(many).len(), 20);
    }

    #[test]
    fn strings_compare_ignoring_case() {
        assert!(eq_ignore_case("straße", "STRASSE"));
        assert!(!eq_ignore_case("ı", "I"));
        assert!(starts_with_ignore_case("ßa", "s"));
        assert!(ends_with_ignore_case("aß", "S"));
        assert!(contains_ignore_case("Hello", "ELL"));
    }
}
