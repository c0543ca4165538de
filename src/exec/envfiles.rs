//! The files a step writes to talk to the runner, read as GitHub's runner reads them
//! (`FileCommandManager`): `GITHUB_ENV` and `GITHUB_OUTPUT` (assignments; the one name
//! `GITHUB_ENV` refuses), `GITHUB_PATH` (directories), and the size rule of
//! `GITHUB_STEP_SUMMARY`.
//!
//! Assignments are `NAME=value` (the value is the rest of the line, as is) or a heredoc
//! `NAME<<DELIMITER`, value lines, then a line that is exactly `DELIMITER`; the value
//! is the lines in between, without the line break before the delimiter. Empty lines are
//! skipped; any other line is an error. Lines end at `\n`; a `\r` before it is part of
//! the line break too (GitHub's Windows runner reads it so; the Linux runner would keep
//! the `\r` in the value, which is never what a script meant).

use thiserror::Error;

/// A `GITHUB_ENV`/`GITHUB_OUTPUT` file GitHub's runner refuses (it fails the step with
/// "Unable to process file command 'env' successfully." and this message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvFileError {
    #[error("Invalid format '{text}'. Name must not be empty (line {line})")]
    EmptyName { line: usize, text: String },
    #[error("Invalid format '{text}'. Name must not be empty and delimiter must not be empty (line {line})")]
    EmptyHeredoc { line: usize, text: String },
    #[error("Invalid value. Matching delimiter not found '{delimiter}' (line {line})")]
    NoDelimiter { line: usize, delimiter: String },
    /// The file ends inside a heredoc on a line without a line break.
    #[error("Invalid value. EOF marker missing new line. (line {line})")]
    MissingNewline { line: usize },
    #[error("Invalid format '{text}' (line {line})")]
    Invalid { line: usize, text: String },
}

/// One line of a file.
struct Line<'a> {
    /// 1-based.
    number: usize,
    /// Where it starts in the file.
    start: usize,
    /// Without its line break.
    text: &'a str,
    /// It ends with a line break (only the last line may not).
    broken: bool,
}

/// The lines of `contents`, after a byte order mark (.NET's `ReadAllText` drops it).
fn lines(contents: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = if contents.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    contents[offset..].split_inclusive('\n').enumerate().map(move |(index, raw)| {
        let start = offset;
        offset += raw.len();
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let broken = text.len() != raw.len();
        let text = text.strip_suffix('\r').unwrap_or(text);
        Line { number: index + 1, start, text, broken }
    })
}

/// The assignments of a `GITHUB_ENV` or `GITHUB_OUTPUT` file, in file order (a later
/// one of the same name wins).
pub fn parse_assignments(contents: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut assignments = Vec::new();
    let mut lines = lines(contents);
    while let Some(Line { number, text: line, .. }) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let (name, value) = (&line[..e], &line[e + 1..]);
                if name.is_empty() {
                    return Err(EnvFileError::EmptyName { line: number, text: line.to_owned() });
                }
                assignments.push((name.to_owned(), value.to_owned()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(EnvFileError::EmptyHeredoc { line: number, text: line.to_owned() });
                }
                // The value is the text from the next line up to the line break before
                // the delimiter, line breaks included as written.
                let mut value: Option<(usize, usize)> = None;
                loop {
                    let Some(next) = lines.next() else {
                        return Err(EnvFileError::NoDelimiter {
                            line: number,
                            delimiter: delimiter.to_owned(),
                        });
                    };
                    if next.text == delimiter {
                        break;
                    }
                    if !next.broken {
                        return Err(EnvFileError::MissingNewline { line: number });
                    }
                    let end = next.start + next.text.len();
                    value = Some(value.map_or((next.start, end), |(first, _)| (first, end)));
                }
                let value = value.map_or("", |(start, end)| &contents[start..end]);
                assignments.push((name.to_owned(), value.to_owned()));
            }
            _ => return Err(EnvFileError::Invalid { line: number, text: line.to_owned() }),
        }
    }
    Ok(assignments)
}

/// GitHub's error for a `GITHUB_ENV` assignment it refuses: `NODE_OPTIONS`, any case.
/// The assignment is skipped with this error annotation; the step does not fail.
pub fn refused_env_name(name: &str) -> Option<&'static str> {
    name.eq_ignore_ascii_case("NODE_OPTIONS")
        .then_some("Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.")
}

/// The directories of a `GITHUB_PATH` file, in file order; empty lines skipped. Lines
/// end at `\n`, `\r\n` or `\r` (.NET's `ReadAllLines`, which also drops a byte order
/// mark). Each is prepended to `PATH` in turn: see [`PathPrepends`].
pub fn parse_path_lines(contents: &str) -> Vec<String> {
    contents
        .strip_prefix('\u{feff}')
        .unwrap_or(contents)
        .split('\n')
        .flat_map(|l| l.split('\r'))
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The directories `GITHUB_PATH` added during a job, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPrepends(Vec<String>);

impl PathPrepends {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds directories; one added again moves to the front of the path.
    pub fn add(&mut self, dirs: impl IntoIterator<Item = String>) {
        for dir in dirs {
            self.0.retain(|d| *d != dir);
            self.0.push(dir);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `PATH` a later step runs with: the added directories, newest first, then
    /// `path` (the step's own `PATH`).
    pub fn apply(&self, path: &str) -> String {
        let mut parts: Vec<&str> = self.0.iter().rev().map(String::as_str).collect();
        if !path.is_empty() {
            parts.push(path);
        }
        parts.join(":")
    }
}

/// The most a `GITHUB_STEP_SUMMARY` file may hold (GitHub: 1024k).
pub const STEP_SUMMARY_LIMIT: u64 = 1024 * 1024;

/// GitHub's error for a step summary over [`STEP_SUMMARY_LIMIT`]: an error annotation;
/// the summary is dropped; the step does not fail.
pub fn step_summary_too_large(size: u64) -> Option<String> {
    (size > STEP_SUMMARY_LIMIT).then(|| {
        format!(
            "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of {}k, got {}k. \
             For more information see: \
             https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary",
            STEP_SUMMARY_LIMIT / 1024,
            size / 1024
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(contents: &str) -> Vec<(String, String)> {
        parse_assignments(contents).unwrap_or_else(|e| panic!("{contents:?}: {e}"))
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn simple_assignments_keep_the_value_as_written() {
        assert_eq!(
            pairs("A=1\nB= two = 2 \nC=\n\nD=x<<y\n"),
            [pair("A", "1"), pair("B", " two = 2 "), pair("C", ""), pair("D", "x<<y")]
        );
        assert_eq!(pairs(""), []);
        assert_eq!(pairs("\n\n"), []);
        assert_eq!(pairs("LAST=no newline"), [pair("LAST", "no newline")]);
        assert_eq!(pairs("A=1\nA=2\n"), [pair("A", "1"), pair("A", "2")]);
    }

    #[test]
    fn heredocs() {
        assert_eq!(
            pairs("JSON<<EOF\n{\n  \"a\": 1\n}\nEOF\nNEXT=1\n"),
            [pair("JSON", "{\n  \"a\": 1\n}"), pair("NEXT", "1")]
        );
        assert_eq!(pairs("E<<EOF\nEOF\n"), [pair("E", "")]);
        assert_eq!(pairs("E<<EOF\n\nEOF\n"), [pair("E", "")]);
        assert_eq!(pairs("E<<EOF\n\n\nEOF"), [pair("E", "\n")]);
        // The delimiter is matched exactly: not trimmed, not a prefix.
        assert_eq!(
            pairs("V<<ghadelimiter_1\nEOF\n ghadelimiter_1\nghadelimiter_1\n"),
            [pair("V", "EOF\n ghadelimiter_1")]
        );
        // `<<` before `=` makes a heredoc whose delimiter may hold `=`.
        assert_eq!(pairs("H<<A=B\nx=1\nA=B\n"), [pair("H", "x=1")]);
        // Lines inside a heredoc are not assignments, empty or not.
        assert_eq!(pairs("H<<END\nnot=an assignment\n\nEND\n"), [pair("H", "not=an assignment\n")]);
    }

    #[test]
    fn crlf_line_breaks() {
        assert_eq!(
            pairs("A=1\r\nM<<EOF\r\nx\r\ny\r\nEOF\r\nB=2\r\n"),
            [pair("A", "1"), pair("M", "x\r\ny"), pair("B", "2")]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_assignments("A=1\n=value\n"),
            Err(EnvFileError::EmptyName { line: 2, text: "=value".into() })
        );
        assert_eq!(
            parse_assignments("<<EOF\nx\nEOF\n"),
            Err(EnvFileError::EmptyHeredoc { line: 1, text: "<<EOF".into() })
        );
        assert_eq!(
            parse_assignments("A<<\n"),
            Err(EnvFileError::EmptyHeredoc { line: 1, text: "A<<".into() })
        );
        let error = parse_assignments("A=1\nB<<EOF\nx\nEOF \n").unwrap_err();
        assert_eq!(error, EnvFileError::NoDelimiter { line: 2, delimiter: "EOF".into() });
        assert_eq!(error.to_string(), "Invalid value. Matching delimiter not found 'EOF' (line 2)");
        let error = parse_assignments("A=1\n\njust text\n").unwrap_err();
        assert_eq!(error, EnvFileError::Invalid { line: 3, text: "just text".into() });
        assert_eq!(error.to_string(), "Invalid format 'just text' (line 3)");
        // A line of spaces is not empty.
        assert!(matches!(parse_assignments("  \n"), Err(EnvFileError::Invalid { line: 1, .. })));
    }

    #[test]
    fn byte_order_marks_are_dropped() {
        assert_eq!(pairs("\u{feff}A=1\nM<<E\nx\nE\n"), [pair("A", "1"), pair("M", "x")]);
        assert_eq!(parse_path_lines("\u{feff}/opt/bin\n"), ["/opt/bin"]);
    }

    #[test]
    fn heredoc_ending_the_file_without_a_line_break() {
        // As GitHub's SetEnvFileCommand_Heredoc_MissingNewLine* tests.
        assert_eq!(
            parse_assignments("A<<EOF\nline one\nline two EOF"),
            Err(EnvFileError::MissingNewline { line: 1 })
        );
        assert_eq!(
            parse_assignments("A<<EOF line one line two EOF"),
            Err(EnvFileError::NoDelimiter { line: 1, delimiter: "EOF line one line two EOF".into() })
        );
        assert_eq!(pairs("A<<EOF\nx\nEOF"), [pair("A", "x")], "the delimiter itself may end the file");
    }

    #[test]
    fn node_options_is_refused_in_github_env() {
        assert!(refused_env_name("node_Options").is_some());
        assert_eq!(refused_env_name("NODE_OPTIONS_X"), None);
        assert_eq!(refused_env_name("PATH"), None);
    }

    #[test]
    fn path_lines() {
        assert_eq!(parse_path_lines("/a\n\n/b c\r\n/d\r/e"), ["/a", "/b c", "/d", "/e"]);
        assert!(parse_path_lines("").is_empty());
    }

    #[test]
    fn path_prepends_newest_first() {
        let mut p = PathPrepends::new();
        assert_eq!(p.apply("/usr/bin:/bin"), "/usr/bin:/bin");
        p.add(parse_path_lines("/one\n/two\n"));
        assert_eq!(p.apply("/usr/bin"), "/two:/one:/usr/bin");
        p.add(["/one".to_owned()]);
        assert_eq!(p.apply("/usr/bin"), "/one:/two:/usr/bin");
        assert_eq!(p.apply(""), "/one:/two");
    }

    #[test]
    fn step_summary_limit() {
        assert_eq!(step_summary_too_large(STEP_SUMMARY_LIMIT), None);
        assert_eq!(
            step_summary_too_large(1536 * 1024).as_deref(),
            Some(
                "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k, got 1536k. \
                 For more information see: \
                 https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary"
            )
        );
    }
}
