//! The command a `run:` step runs with, as GitHub's runner on Linux builds it
//! (`ScriptHandler`, `ScriptHandlerHelpers`):
//!
//! | `shell:`            | runs                                          | script file |
//! |---------------------|-----------------------------------------------|-------------|
//! | none                | `bash -e {0}` (`sh -e {0}` without bash)      | `.sh`       |
//! | `bash`              | `bash --noprofile --norc -eo pipefail {0}`    | `.sh`       |
//! | `sh`                | `sh -e {0}`                                   | `.sh`       |
//! | `python`            | `python {0}`                                  | `.py`       |
//! | `pwsh`/`powershell` | `pwsh -command ". '{0}'"`                     | `.ps1`      |
//! | `cmd`               | `cmd /D /E:ON /V:OFF /S /C "CALL "{0}""`      | `.cmd`      |
//! | `COMMAND ARGS…{0}…` | `COMMAND` with its arguments                  | as above by `COMMAND`, else none |
//!
//! The first word (up to the first space) is the program; the rest is a .NET format
//! string where `{0}` is the script's path (`{{`, `}}` are braces), whose arguments .NET
//! splits as it does on Unix (blanks; `"` groups; `\"` is a quote). A built-in name
//! alone takes its arguments from the table; anything else without `{0}` is refused.
//! Names are matched case-insensitively, as GitHub does. Here the result is one command
//! line for the host's POSIX shell (SSH runs commands through it), every word quoted.

use std::fmt;

use thiserror::Error;

/// A `shell:` GitHub's runner refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShellError {
    #[error(
        "Invalid shell option '{shell}'. Shell must be a valid built-in (bash, sh, cmd, powershell, pwsh) \
         or a format string containing '{{0}}'"
    )]
    Invalid { shell: String },
    /// What .NET's `string.Format` says about a brace that is not `{0}`, `{{` or `}}`.
    #[error("Invalid shell option '{shell}': Input string was not in a correct format.")]
    Format { shell: String },
}

/// The built-in shells: name, arguments, script extension.
const BUILT_INS: &[(&str, &str, &str)] = &[
    ("cmd", "/D /E:ON /V:OFF /S /C \"CALL \"{0}\"\"", ".cmd"),
    ("pwsh", "-command \". '{0}'\"", ".ps1"),
    ("powershell", "-command \". '{0}'\"", ".ps1"),
    ("bash", "--noprofile --norc -eo pipefail {0}", ".sh"),
    ("sh", "-e {0}", ".sh"),
    ("python", "{0}", ".py"),
];

fn built_in(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    BUILT_INS.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

/// The shell of a `run:` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    program: String,
    /// The arguments, a .NET format string holding `{0}`.
    arguments: String,
    /// The name the script kind is known by (`sh` for the default shell).
    kind: String,
}

impl Shell {
    /// The shell for a step whose `shell:` (after `defaults.run`) is `shell`;
    /// `bash_available` says whether the host has `bash` on its `PATH` (for the default).
    pub fn parse(shell: Option<&str>, bash_available: bool) -> Result<Shell, ShellError> {
        let parsed = match shell.filter(|s| !s.is_empty()) {
            None => Shell {
                program: if bash_available { "bash" } else { "sh" }.to_owned(),
                arguments: "-e {0}".to_owned(),
                kind: "sh".to_owned(),
            },
            Some(option) => {
                let (program, arguments) = option.split_once(' ').unwrap_or((option, ""));
                let mut arguments = arguments.trim_start().to_owned();
                if arguments.is_empty() {
                    arguments = built_in(program).map(|(_, a, _)| a.to_string()).unwrap_or_default();
                }
                if program.is_empty() || !arguments.contains("{0}") {
                    return Err(ShellError::Invalid { shell: option.to_owned() });
                }
                Shell { program: program.to_owned(), arguments, kind: program.to_owned() }
            }
        };
        if format_arguments(&parsed.arguments, "").is_none() {
            return Err(ShellError::Format { shell: shell.unwrap_or_default().to_owned() });
        }
        Ok(parsed)
    }

    /// The extension of the script file (`.sh`, `.py`, …; empty for a custom program).
    pub fn script_extension(&self) -> &'static str {
        built_in(&self.kind).map_or("", |(_, _, extension)| extension)
    }

    /// The script file's contents for the step's `run:` text: as written, but for
    /// PowerShell (stop on errors, exit with the last exit code) and cmd (`@echo off`).
    pub fn script_contents(&self, run: &str) -> String {
        // GitHub's runner matches these names case-sensitively.
        match self.kind.as_str() {
            "pwsh" | "powershell" => format!(
                "$ErrorActionPreference = 'stop'\n{run}\n\
                 if ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) {{ exit $LASTEXITCODE }}"
            ),
            "cmd" => format!("@echo off\n{run}"),
            _ => run.to_owned(),
        }
    }

    /// The command line that runs the script at `script_path` on the host: the program
    /// and each argument quoted for a POSIX shell. The arguments are split before the
    /// path goes in, so a path with blanks or quotes stays one argument (GitHub's runner
    /// formats first and would split it; its own script paths have none).
    pub fn command_line(&self, script_path: &str) -> String {
        let mut words = vec![shell_quote(&self.program)];
        for argument in split_arguments(&self.arguments) {
            let argument = format_arguments(&argument, script_path).expect("checked by Shell::parse");
            words.push(shell_quote(&argument));
        }
        words.join(" ")
    }
}

/// As GitHub shows the shell in a step's log: `bash -e {0}`.
impl fmt::Display for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.program, self.arguments)
    }
}

/// .NET's `string.Format(format, value)` for one argument: `{0}` is the value, `{{` and
/// `}}` are braces; anything else with a brace is `None` (a `FormatException`).
fn format_arguments(format: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(format.len() + value.len());
    let mut rest = format;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{0}") {
            out.push_str(value);
            rest = after;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Splits an argument string into arguments as .NET does on Unix
/// (`Process.ParseArgumentsIntoList`): blanks (space, tab) separate; `"` starts and
/// ends a quoted part (`""` inside one is a quote); backslashes are literal unless they
/// precede `"`, where each pair is one backslash and an odd one makes the quote literal.
fn split_arguments(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        let mut current = String::new();
        let mut in_quotes = false;
        while i < chars.len() {
            let backslashes = chars[i..].iter().take_while(|&&c| c == '\\').count();
            if backslashes > 0 {
                i += backslashes;
                if chars.get(i) == Some(&'"') {
                    current.extend(std::iter::repeat_n('\\', backslashes / 2));
                    if backslashes % 2 == 1 {
                        current.push('"');
                        i += 1;
                    }
                } else {
                    current.extend(std::iter::repeat_n('\\', backslashes));
                }
                continue;
            }
            let c = chars[i];
            if c == '"' {
                if in_quotes && chars.get(i + 1) == Some(&'"') {
                    current.push('"');
                    i += 1;
                } else {
                    in_quotes = !in_quotes;
                }
                i += 1;
                continue;
            }
            if matches!(c, ' ' | '\t') && !in_quotes {
                break;
            }
            current.push(c);
            i += 1;
        }
        out.push(current);
    }
    out
}

/// One word for a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-+=:,./@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(shell: Option<&str>, path: &str) -> String {
        Shell::parse(shell, true).unwrap_or_else(|e| panic!("{shell:?}: {e}")).command_line(path)
    }

    /// The words `sh` passes to the program of a command line.
    fn words_through_sh(command_line: &str) -> Vec<String> {
        // Replace the program by printf to see the argv the shell builds.
        let (_, args) = command_line.split_once(' ').unwrap_or((command_line, ""));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {args}"))
            .output()
            .expect("sh runs");
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn github_defaults_on_linux() {
        let s = Shell::parse(None, true).unwrap();
        assert_eq!(s.command_line("/tmp/s.sh"), "bash -e /tmp/s.sh");
        assert_eq!(s.script_extension(), ".sh");
        assert_eq!(s.to_string(), "bash -e {0}");
        assert_eq!(Shell::parse(None, false).unwrap().command_line("/tmp/s.sh"), "sh -e /tmp/s.sh");
        assert_eq!(Shell::parse(Some(""), false).unwrap().to_string(), "sh -e {0}");

        assert_eq!(line(Some("bash"), "/tmp/s.sh"), "bash --noprofile --norc -eo pipefail /tmp/s.sh");
        assert_eq!(line(Some("sh"), "/tmp/s.sh"), "sh -e /tmp/s.sh");
        assert_eq!(line(Some("python"), "/tmp/s.py"), "python /tmp/s.py");
        assert_eq!(line(Some("pwsh"), "/tmp/s.ps1"), r"pwsh -command '. '\''/tmp/s.ps1'\'''");
        assert_eq!(words_through_sh(&line(Some("pwsh"), "/tmp/s.ps1")), ["-command", ". '/tmp/s.ps1'"]);

        let extension = |shell| Shell::parse(Some(shell), true).unwrap().script_extension();
        assert_eq!(extension("bash"), ".sh");
        assert_eq!(extension("sh"), ".sh");
        assert_eq!(extension("python"), ".py");
        assert_eq!(extension("pwsh"), ".ps1");
        assert_eq!(extension("powershell"), ".ps1");
        assert_eq!(extension("cmd"), ".cmd");
        assert_eq!(extension("Python {0}"), ".py", "the kind comes from the program's name");
        assert_eq!(extension("bash -x {0}"), ".sh");
        assert_eq!(extension("perl {0}"), "");
    }

    #[test]
    fn custom_shells() {
        assert_eq!(line(Some("perl {0}"), "/tmp/s"), "perl /tmp/s");
        assert_eq!(line(Some("bash -x {0}"), "/tmp/s.sh"), "bash -x /tmp/s.sh");
        assert_eq!(line(Some("bash   -x {0}"), "/tmp/s.sh"), "bash -x /tmp/s.sh");
        assert_eq!(line(Some("sh -c \"cat {0}; echo done\""), "/tmp/s"), r"sh -c 'cat /tmp/s; echo done'");
        assert_eq!(
            words_through_sh(&line(Some("sh -c \"cat {0}; echo done\""), "/tmp/s")),
            ["-c", "cat /tmp/s; echo done"]
        );
        assert_eq!(Shell::parse(Some("node {0} --flag"), true).unwrap().to_string(), "node {0} --flag");
        // Braces: `{{`/`}}` are literal.
        assert_eq!(line(Some("bash -c \"f(){{ . {0}; }}; f\""), "/x"), r"bash -c 'f(){ . /x; }; f'");
    }

    #[test]
    fn refused_shells() {
        for shell in ["perl", "bash -x", "fish -c source", " bash", "Bash -e"] {
            assert_eq!(
                Shell::parse(Some(shell), true),
                Err(ShellError::Invalid { shell: shell.to_owned() }),
                "{shell:?}"
            );
        }
        assert_eq!(
            Shell::parse(Some("perl"), true).unwrap_err().to_string(),
            "Invalid shell option 'perl'. Shell must be a valid built-in (bash, sh, cmd, powershell, pwsh) \
             or a format string containing '{0}'"
        );
        for shell in ["bash {1} {0}", "bash {0} {", "bash {0} }", "bash {0,5} {0}"] {
            assert_eq!(
                Shell::parse(Some(shell), true),
                Err(ShellError::Format { shell: shell.to_owned() }),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn built_in_names_are_case_insensitive() {
        assert_eq!(line(Some("BASH"), "/s"), "BASH --noprofile --norc -eo pipefail /s");
    }

    #[test]
    fn paths_with_spaces_and_quotes_reach_the_program_whole() {
        for path in
            ["/tmp/a b/s.sh", "/tmp/it's.sh", "/tmp/q\"uote.sh", "/tmp/$HOME`x`.sh", "/tmp/back\\slash"]
        {
            let words = words_through_sh(&line(Some("bash"), path));
            assert_eq!(words.last().map(String::as_str), Some(path), "{path:?}");
            let words = words_through_sh(&line(Some("python"), path));
            assert_eq!(words, [path], "{path:?}");
        }
    }

    #[test]
    fn dotnet_argument_splitting() {
        assert_eq!(split_arguments("  a\tb  "), ["a", "b"]);
        assert_eq!(split_arguments(r#""a b" c"#), ["a b", "c"]);
        assert_eq!(split_arguments(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(split_arguments(r#"\"a\""#), ["\"a\""]);
        assert_eq!(split_arguments(r#"a\\b"#), [r"a\\b"]);
        assert_eq!(split_arguments(r#""a\\" b"#), [r"a\", "b"]);
        assert_eq!(split_arguments(r#""a""b""#), [r#"a"b"#]);
        assert_eq!(split_arguments(r#""""#), [""]);
        assert!(split_arguments("   ").is_empty());
    }

    #[test]
    fn script_contents() {
        let contents = |shell| Shell::parse(Some(shell), true).unwrap().script_contents("echo hi");
        assert_eq!(contents("bash"), "echo hi");
        assert_eq!(contents("python"), "echo hi");
        assert_eq!(
            contents("pwsh"),
            "$ErrorActionPreference = 'stop'\necho hi\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }"
        );
        assert_eq!(contents("cmd"), "@echo off\necho hi");
        assert_eq!(Shell::parse(None, true).unwrap().script_contents("x\r\ny"), "x\r\ny");
    }
}
