//! POSIX cron schedules (`on.schedule[].cron`), accepted exactly as GitHub's workflow
//! parser accepts them, and matched against UTC times.
//!
//! The accepted syntax follows `isValidCron` of `@actions/workflow-parser`
//! (`tests/cron_oracle.rs` holds the two side by side): five fields split on runs of
//! spaces; in each field, in this order of precedence, a month/day name (`JAN`..`DEC`,
//! `SUN`..`SAT`, any case), `*`, a `,` list, a `/` step (`start/step`, where `start`
//! may be `*`, a value or a range and `step` is a plain value within the field's
//! range), a `-` range (`start <= end`, names allowed), or a number read as
//! JavaScript's `Number()` reads it. Day of week is `0`..`6` (GitHub rejects `7`).
//!
//! Matching follows Vixie cron, as Linux crons do: when both day of month and day of
//! week are restricted, a day matches if either does; a field whose text starts with
//! `*` (`*`, `*/2`) counts as unrestricted for that rule.

use std::fmt;

/// A parsed `cron:` schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    source: String,
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

/// One of the five fields: a union of stepped ranges.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    ranges: Vec<SteppedRange>,
    /// The field's text starts with `*`: Vixie cron's DOM_STAR/DOW_STAR.
    starts_with_star: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct SteppedRange {
    start: f64,
    end: f64,
    step: f64,
}

impl SteppedRange {
    fn contains(&self, value: f64) -> bool {
        self.start <= value && value <= self.end && ((value - self.start) % self.step) == 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct FieldKind {
    label: &'static str,
    min: f64,
    max: f64,
    names: &'static [(&'static str, u32)],
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const DAY_NAMES: &[(&str, u32)] =
    &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)];

const MINUTE: FieldKind = FieldKind { label: "minute", min: 0.0, max: 59.0, names: &[] };
const HOUR: FieldKind = FieldKind { label: "hour", min: 0.0, max: 23.0, names: &[] };
const DAY_OF_MONTH: FieldKind = FieldKind { label: "day of month", min: 1.0, max: 31.0, names: &[] };
const MONTH: FieldKind = FieldKind { label: "month", min: 1.0, max: 12.0, names: MONTH_NAMES };
const DAY_OF_WEEK: FieldKind = FieldKind { label: "day of week", min: 0.0, max: 6.0, names: DAY_NAMES };

impl Schedule {
    /// Parses a cron expression. The error says which field is wrong; the loader
    /// reports GitHub's own message around it.
    pub fn parse(source: &str) -> Result<Schedule, String> {
        let parts = split_on_space_runs(source);
        if parts.len() != 5 {
            return Err(format!("expected 5 fields separated by spaces, found {}", parts.len()));
        }
        let field = |text: &str, kind: FieldKind| {
            parse_field(text, kind).ok_or_else(|| format!("invalid {} field `{text}`", kind.label))
        };
        Ok(Schedule {
            source: source.to_string(),
            minute: field(parts[0], MINUTE)?,
            hour: field(parts[1], HOUR)?,
            day_of_month: field(parts[2], DAY_OF_MONTH)?,
            month: field(parts[3], MONTH)?,
            day_of_week: field(parts[4], DAY_OF_WEEK)?,
        })
    }

    /// The text this schedule was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the schedule fires at this time (UTC). `day_of_week` is 0 for Sunday.
    pub fn matches(&self, minute: u32, hour: u32, day_of_month: u32, month: u32, day_of_week: u32) -> bool {
        self.minute.contains(minute)
            && self.hour.contains(hour)
            && self.month.contains(month)
            && self.day_matches(day_of_month, day_of_week)
    }

    fn day_matches(&self, day_of_month: u32, day_of_week: u32) -> bool {
        let dom = self.day_of_month.contains(day_of_month);
        let dow = self.day_of_week.contains(day_of_week);
        if self.day_of_month.starts_with_star || self.day_of_week.starts_with_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether the schedule fires in the minute that contains `unix_seconds`.
    pub fn matches_unix(&self, unix_seconds: i64) -> bool {
        let t = UtcMinute::from_unix(unix_seconds);
        self.matches(t.minute, t.hour, t.day, t.month, t.weekday)
    }

    /// The first minute strictly after `unix_seconds` at which the schedule fires, as
    /// Unix seconds, or `None` when it never fires (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, unix_seconds: i64) -> Option<i64> {
        // Eight years cover every leap-day/weekday combination.
        const HORIZON_DAYS: i64 = 8 * 366;
        let first_minute = unix_seconds.div_euclid(60) + 1;
        let first_day = first_minute.div_euclid(MINUTES_PER_DAY);
        for day in first_day..first_day + HORIZON_DAYS {
            let (_, month, dom) = civil_from_days(day);
            let weekday = weekday_from_days(day);
            if !self.month.contains(month) || !self.day_matches(dom, weekday) {
                continue;
            }
            let start = if day == first_day { first_minute.rem_euclid(MINUTES_PER_DAY) } else { 0 };
            for minute_of_day in start..MINUTES_PER_DAY {
                let (hour, minute) = ((minute_of_day / 60) as u32, (minute_of_day % 60) as u32);
                if self.hour.contains(hour) && self.minute.contains(minute) {
                    return Some((day * MINUTES_PER_DAY + minute_of_day) * 60);
                }
            }
        }
        None
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Field {
    fn contains(&self, value: u32) -> bool {
        self.ranges.iter().any(|r| r.contains(f64::from(value)))
    }
}

/// JavaScript's `text.split(/ +/)`: only the space character separates, and a leading
/// or trailing space leaves an empty field.
fn split_on_space_runs(text: &str) -> Vec<&str> {
    let pieces: Vec<&str> = text.split(' ').collect();
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .filter(|(i, p)| *i == 0 || *i == last || !p.is_empty())
        .map(|(_, p)| *p)
        .collect()
}

fn parse_field(text: &str, kind: FieldKind) -> Option<Field> {
    let ranges = parse_part(text, kind)?;
    Some(Field { ranges, starts_with_star: text.starts_with('*') })
}

/// One comma-free-or-not part, with GitHub's precedence: name, `*`, `,`, `/`, `-`, number.
fn parse_part(text: &str, kind: FieldKind) -> Option<Vec<SteppedRange>> {
    if let Some(n) = name_value(text, kind) {
        return Some(vec![SteppedRange { start: n, end: n, step: 1.0 }]);
    }
    if text == "*" {
        return Some(vec![SteppedRange { start: kind.min, end: kind.max, step: 1.0 }]);
    }
    if text.contains(',') {
        let mut ranges = Vec::new();
        for item in text.split(',') {
            if item.is_empty() {
                return None;
            }
            ranges.extend(parse_part(item, kind)?);
        }
        return Some(ranges);
    }
    if text.contains('/') {
        let mut pieces = text.split('/');
        let (start, step) = (pieces.next()?, pieces.next()?);
        if pieces.next().is_some() || start.is_empty() || step.is_empty() {
            return None;
        }
        // The step is a plain number (no name) within the field's range.
        let step = js_string_to_number(step)?;
        if step <= 0.0 || !(kind.min..=kind.max).contains(&step) {
            return None;
        }
        // `start/step` runs from start to the field's end; `*` and ranges keep their ends.
        let mut ranges = parse_part(start, kind)?;
        let single = start != "*" && !start.contains('-');
        for r in &mut ranges {
            if single {
                r.end = kind.max;
            }
            r.step = step;
        }
        return Some(ranges);
    }
    if text.contains('-') {
        let mut pieces = text.split('-');
        let (start, end) = (pieces.next()?, pieces.next()?);
        if pieces.next().is_some() || start.is_empty() || end.is_empty() {
            return None;
        }
        let (start, end) = (plain_value(start, kind)?, plain_value(end, kind)?);
        if end < start {
            return None;
        }
        return Some(vec![SteppedRange { start, end, step: 1.0 }]);
    }
    let n = js_string_to_number(text)?;
    (kind.min..=kind.max).contains(&n).then_some(vec![SteppedRange { start: n, end: n, step: 1.0 }])
}

/// A value where no separator may appear: the end of a range or a step. `*` is
/// accepted there by GitHub's check but has no number, so it fails the caller's
/// comparisons; it is refused here directly.
fn plain_value(text: &str, kind: FieldKind) -> Option<f64> {
    if let Some(n) = name_value(text, kind) {
        return Some(n);
    }
    if text.contains([',', '/', '-']) {
        return None;
    }
    let n = js_string_to_number(text)?;
    (kind.min..=kind.max).contains(&n).then_some(n)
}

fn name_value(text: &str, kind: FieldKind) -> Option<f64> {
    let lower = text.to_lowercase();
    kind.names.iter().find(|(name, _)| *name == lower).map(|(_, n)| f64::from(*n))
}

/// JavaScript's `Number(text)` (StringToNumber), `None` for NaN. `""` and blanks are 0.
fn js_string_to_number(text: &str) -> Option<f64> {
    let t = text.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return Some(0.0);
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() {
                return None;
            }
            let mut n = 0.0f64;
            for c in digits.chars() {
                n = n * f64::from(radix) + f64::from(c.to_digit(radix)?);
            }
            return Some(n);
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return Some(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    is_js_decimal_literal(unsigned).then(|| t.parse::<f64>().ok()).flatten()
}

/// StrUnsignedDecimalLiteral: `1`, `1.`, `.5`, `1.5e-3` (no `_`, no `inf`/`nan`).
fn is_js_decimal_literal(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa_digits = digits(&mut i);
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// ECMAScript WhiteSpace and LineTerminator, which `Number()` trims.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

const MINUTES_PER_DAY: i64 = 24 * 60;

/// A UTC minute broken into cron's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcMinute {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl UtcMinute {
    pub fn from_unix(unix_seconds: i64) -> UtcMinute {
        let days = unix_seconds.div_euclid(86_400);
        let secs_of_day = unix_seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        UtcMinute {
            year,
            month,
            day,
            hour: (secs_of_day / 3600) as u32,
            minute: ((secs_of_day % 3600) / 60) as u32,
            weekday: weekday_from_days(days),
        }
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 0 = Sunday; 1970-01-01 was a Thursday.
fn weekday_from_days(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Schedule {
        Schedule::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn accepts_and_rejects_like_github() {
        for ok in [
            "* * * * *",
            "0 0 * * *",
            "*/15 * * * *",
            "0,30 8-17 * * MON-FRI",
            "0 0 1 jan,JUL *",
            "5/15 * * * *",
            "1-10/3 * * * *",
            "30 5 * * 1,3",
            "  0 0 * * *".trim_start(),
            "0  0 * * *",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "*/60 * * * *",
            "5-1 * * * *",
            "1,,2 * * * *",
            "? * * * *",
            "* * * * MON#2",
            "0 0 * * sunday",
            "0\t0 * * *",
            "0 0 * * *-5",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn numbers_read_as_javascript_reads_them() {
        assert_eq!(js_string_to_number(""), Some(0.0));
        assert_eq!(js_string_to_number("0x1f"), Some(31.0));
        assert_eq!(js_string_to_number("+5"), Some(5.0));
        assert_eq!(js_string_to_number("05"), Some(5.0));
        assert_eq!(js_string_to_number("1e1"), Some(10.0));
        assert_eq!(js_string_to_number(".5"), Some(0.5));
        assert_eq!(js_string_to_number("5."), Some(5.0));
        assert_eq!(js_string_to_number("inf"), None);
        assert_eq!(js_string_to_number("1_0"), None);
        assert_eq!(js_string_to_number("0x"), None);
        assert_eq!(js_string_to_number("+0x1"), None);
    }

    #[test]
    fn fields_match_values() {
        let s = parse("*/15 9-17 * * MON-FRI");
        assert!(s.matches(0, 9, 3, 3, 1));
        assert!(s.matches(45, 17, 3, 3, 5));
        assert!(!s.matches(50, 9, 3, 3, 1));
        assert!(!s.matches(0, 18, 3, 3, 1));
        assert!(!s.matches(0, 9, 3, 3, 0));
        let s = parse("5/20 * * * *");
        assert!(s.matches(5, 0, 1, 1, 0) && s.matches(25, 0, 1, 1, 0) && s.matches(45, 0, 1, 1, 0));
        assert!(!s.matches(0, 0, 1, 1, 0) && !s.matches(20, 0, 1, 1, 0));
        let s = parse("1-10/3 * * * *");
        let minutes: Vec<u32> = (0..60).filter(|m| s.matches(*m, 0, 1, 1, 0)).collect();
        assert_eq!(minutes, vec![1, 4, 7, 10]);
    }

    #[test]
    fn day_of_month_and_week_are_ored_when_both_restricted() {
        let both = parse("0 0 13 * FRI");
        assert!(both.matches(0, 0, 13, 6, 2), "the 13th, a Tuesday");
        assert!(both.matches(0, 0, 20, 6, 5), "a Friday, not the 13th");
        assert!(!both.matches(0, 0, 14, 6, 6));
        let dom_star = parse("0 0 * * FRI");
        assert!(!dom_star.matches(0, 0, 13, 6, 2));
        assert!(dom_star.matches(0, 0, 20, 6, 5));
        // Vixie cron: a stepped `*` counts as unrestricted, so days are ANDed.
        let stepped = parse("0 0 */2 * 1");
        assert!(stepped.matches(0, 0, 3, 1, 1));
        assert!(!stepped.matches(0, 0, 3, 1, 2));
        assert!(!stepped.matches(0, 0, 2, 1, 1));
    }

    #[test]
    fn calendar_conversion() {
        // 2024-02-29T13:37:00Z, a Thursday.
        let t = UtcMinute::from_unix(1_709_213_820);
        assert_eq!(t, UtcMinute { year: 2024, month: 2, day: 29, hour: 13, minute: 37, weekday: 4 });
        assert_eq!(UtcMinute::from_unix(0).weekday, 4);
        assert_eq!(UtcMinute::from_unix(-1).day, 31);
    }

    #[test]
    fn next_after_finds_the_next_firing() {
        // 2024-02-29T13:37:00Z
        let now = 1_709_213_820;
        let hourly = parse("0 * * * *");
        assert_eq!(hourly.next_after(now), Some(1_709_215_200)); // 14:00
        let every_minute = parse("* * * * *");
        assert_eq!(every_minute.next_after(now), Some(now + 60));
        // Next 29 February falls in 2028.
        let leap = parse("0 0 29 2 *");
        let next = leap.next_after(now).expect("fires in 2028");
        let t = UtcMinute::from_unix(next);
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute), (2028, 2, 29, 0, 0));
        assert!(leap.matches_unix(next));
        assert_eq!(parse("0 0 30 2 *").next_after(now), None);
    }
}
