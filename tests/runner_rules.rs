//! The pure rules of the job runner checked against the cases of GitHub's own runner
//! tests (actions/runner `src/Test/L0/Worker`: `ActionCommandL0`,
//! `ActionCommandManagerL0`, `SetEnvFileCommandL0`), so a difference from GitHub's
//! behaviour shows up here by the upstream test's name; and the step shells' command
//! lines run through a real `sh`, with the error behaviour GitHub documents.
//! Upstream tests use a made-up command `do-something` with a property `k1`; here the
//! same text goes through `::error` and its `title`.

use metalfarm::exec::commands::{AnnotationLevel, CommandParser, WorkflowCommand};
use metalfarm::exec::envfiles::{parse_assignments, EnvFileError};
use metalfarm::exec::shell::Shell;

/// `(title, message)` of the annotation a line makes, or `None` if it is no command.
type Made = Option<(Option<String>, String)>;

fn title_and_message(line: &str) -> Made {
    match CommandParser::new().parse_line(line)?.command {
        WorkflowCommand::Annotation(a) => Some((a.title, a.message)),
        other => panic!("{line:?}: not an annotation: {other:?}"),
    }
}

fn annotation(title: Option<&str>, message: &str) -> Made {
    Some((title.map(str::to_owned), message.to_owned()))
}

#[test]
fn action_command_l0_command_parser_test_legacy_form() {
    let cases: &[(&str, Made)] = &[
        ("##[error title=v1;]msg", annotation(Some("v1"), "msg")),
        ("##[error]", annotation(None, "")),
        ("##[error title=%3B=%0D=%0A=%5D;]%3B-%0D-%0A-%5D", annotation(Some(";=\r=\n=]"), ";-\r-\n-]")),
        (
            "##[error title=%253B=%250D=%250A=%255D;]%253B-%250D-%250A-%255D",
            annotation(Some("%3B=%0D=%0A=%5D"), "%3B-%0D-%0A-%5D"),
        ),
        ("##[error title=;k2=;]", annotation(None, "")),
        (">>>   ##[error title=v1;]msg", annotation(Some("v1"), "msg")),
    ];
    for (line, expected) in cases {
        assert_eq!(&title_and_message(line), expected, "{line:?}");
    }
}

#[test]
fn action_command_l0_command_parser_v2_test() {
    let cases: &[(&str, Made)] = &[
        ("::error title=v1,::msg", annotation(Some("v1"), "msg")),
        ("::error::", annotation(None, "")),
        (
            "::error title=;=%2C=%0D=%0A=]=%3A,::;-%0D-%0A-]-:-,",
            annotation(Some(";=,=\r=\n=]=:"), ";-\r-\n-]-:-,"),
        ),
        (
            "::error title=;=%252C=%250D=%250A=]=%253A,::;-%250D-%250A-]-:-,",
            annotation(Some(";=%2C=%0D=%0A=]=%3A"), ";-%0D-%0A-]-:-,"),
        ),
        ("::error title=,k2=,::", annotation(None, "")),
        ("::error title=v1::", annotation(Some("v1"), "")),
        ("   ::error title=v1,::msg", annotation(Some("v1"), "msg")),
        ("   >>>   ::error title=v1,::msg", None),
    ];
    for (line, expected) in cases {
        assert_eq!(&title_and_message(line), expected, "{line:?}");
    }
}

#[test]
fn action_command_manager_l0_stop_process_command() {
    let mut parser = CommandParser::new();
    parser.set_allow_unsecure_commands(true);
    assert!(parser.parse_line("##[stop-commands]stopToken").is_some());
    assert_eq!(parser.parse_line("##[set-env name=foo]bar"), None);
    assert!(parser.parse_line("##[stopToken]").is_some());
    assert_eq!(
        parser.parse_line("##[set-env name=foo]bar").map(|p| p.command),
        Some(WorkflowCommand::SetEnv { name: "foo".into(), value: "bar".into() })
    );
}

#[test]
fn action_command_manager_l0_echo_process_command() {
    let mut parser = CommandParser::new();
    assert!(!parser.echo());
    for (line, on) in
        [("::echo::on", true), ("::echo::off", false), ("::echo::ON", true), ("::echo::Off   ", false)]
    {
        let parsed = parser.parse_line(line).expect(line);
        assert_eq!(parsed.command, WorkflowCommand::Echo(on), "{line:?}");
        assert!(!parsed.fails_step);
        assert_eq!(parser.echo(), on, "{line:?}");
    }
}

#[test]
fn action_command_manager_l0_echo_process_command_debug_on() {
    let mut parser = CommandParser::new();
    parser.set_step_debug(true);
    assert!(parser.echo());
    parser.parse_line("::echo::off");
    assert!(!parser.echo());
    parser.parse_line("::echo::on");
    assert!(parser.echo());
}

#[test]
fn action_command_manager_l0_echo_process_command_invalid() {
    let mut parser = CommandParser::new();
    for line in ["::echo::invalid", "::echo::"] {
        let parsed = parser.parse_line(line).expect(line);
        assert!(parsed.fails_step, "{line:?}");
        assert!(parsed.annotations.iter().all(|a| a.level == AnnotationLevel::Error));
        assert!(!parser.echo());
    }
}

fn env(lines: &[&str]) -> Result<Vec<(String, String)>, EnvFileError> {
    // Upstream writes the lines joined with the platform's line break, after a BOM.
    parse_assignments(&format!("\u{feff}{}", lines.join("\n")))
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

#[test]
fn set_env_file_command_l0_simple_forms() {
    assert_eq!(env(&[]), Ok(vec![]), "EmptyFile");
    assert_eq!(env(&["MY_ENV=MY VALUE"]), Ok(pairs(&[("MY_ENV", "MY VALUE")])), "Simple");
    assert_eq!(
        env(&["", "MY_ENV=my value", "", "MY_ENV_2=my second value", ""]),
        Ok(pairs(&[("MY_ENV", "my value"), ("MY_ENV_2", "my second value")])),
        "Simple_SkipEmptyLines"
    );
    assert_eq!(env(&["MY_ENV="]), Ok(pairs(&[("MY_ENV", "")])), "Simple_EmptyValue");
    assert_eq!(
        env(&["MY_ENV=my value", "MY_ENV_2=", "MY_ENV_3=my third value"]),
        Ok(pairs(&[("MY_ENV", "my value"), ("MY_ENV_2", ""), ("MY_ENV_3", "my third value")])),
        "Simple_MultipleValues"
    );
    assert_eq!(
        env(&["MY_ENV==abc", "MY_ENV_2=def=ghi", "MY_ENV_3=jkl="]),
        Ok(pairs(&[("MY_ENV", "=abc"), ("MY_ENV_2", "def=ghi"), ("MY_ENV_3", "jkl=")])),
        "Simple_SpecialCharacters"
    );
}

#[test]
fn set_env_file_command_l0_heredocs() {
    assert_eq!(
        env(&["MY_ENV<<EOF", "line one", "line two", "line three", "EOF"]),
        Ok(pairs(&[("MY_ENV", "line one\nline two\nline three")])),
        "Heredoc"
    );
    assert_eq!(env(&["MY_ENV<<EOF", "EOF"]), Ok(pairs(&[("MY_ENV", "")])), "Heredoc_EmptyValue");
    assert_eq!(
        env(&["", "MY_ENV<<EOF", "hello", "world", "EOF", "", "MY_ENV_2<<EOF", "HELLO", "AGAIN", "EOF", ""]),
        Ok(pairs(&[("MY_ENV", "hello\nworld"), ("MY_ENV_2", "HELLO\nAGAIN")])),
        "Heredoc_SkipEmptyLines"
    );
    assert_eq!(
        env(&[
            "MY_ENV<<=EOF",
            "hello",
            "one",
            "=EOF",
            "MY_ENV_2<<<EOF",
            "hello",
            "two",
            "<EOF",
            "MY_ENV_3<<EOF",
            "hello",
            "",
            "three",
            "",
            "EOF",
            "MY_ENV_4<<EOF",
            "hello=four",
            "EOF",
            "MY_ENV_5<<EOF",
            " EOF",
            "EOF",
        ]),
        Ok(pairs(&[
            ("MY_ENV", "hello\none"),
            ("MY_ENV_2", "hello\ntwo"),
            ("MY_ENV_3", "hello\n\nthree\n"),
            ("MY_ENV_4", "hello=four"),
            ("MY_ENV_5", " EOF"),
        ])),
        "Heredoc_SpecialCharacters"
    );
}

#[test]
fn set_env_file_command_l0_heredoc_missing_new_line() {
    let joined = |lines: &[&str]| parse_assignments(&lines.join(" "));
    let error = joined(&["MY_ENV<<EOF", "line one", "line two", "line three", "EOF"]).unwrap_err();
    assert!(error.to_string().contains("Matching delimiter not found"), "{error}");
    let error = joined(&[
        "MY_ENV<<EOF",
        "line one\n                    line two\n                    line three",
        "EOF",
    ])
    .unwrap_err();
    assert!(error.to_string().contains("EOF marker missing new line"), "{error}");
}

/// Runs `script` with the step shell `shell` through `sh -c`, as SSH runs a command
/// line on a host; returns the exit code and stdout.
fn run_step(shell: Option<&str>, script: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let shell = Shell::parse(shell, true).expect("a valid shell");
    let path = dir.path().join(format!("step script{}", shell.script_extension()));
    std::fs::write(&path, shell.script_contents(script)).expect("the script is written");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(shell.command_line(path.to_str().expect("a UTF-8 path")))
        .output()
        .expect("sh runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn step_shells_stop_on_errors_as_on_github() {
    // No shell: `bash -e {0}`, no pipefail.
    assert_eq!(run_step(None, "false | true\necho after"), (0, "after\n".into()));
    assert_eq!(run_step(None, "false\necho after"), (1, String::new()));
    // `bash`: pipefail too.
    assert_eq!(run_step(Some("bash"), "false | true\necho after"), (1, String::new()));
    assert_eq!(run_step(Some("bash"), "echo \"$0\" | grep -c 'step script.sh$'"), (0, "1\n".into()));
    // `sh`: `-e`.
    assert_eq!(run_step(Some("sh"), "exit 3\necho after"), (3, String::new()));
    assert_eq!(run_step(Some("sh"), "false || echo handled"), (0, "handled\n".into()));
    // A custom shell gets the path where `{0}` is: one argument of its own, or text in
    // an argument (inside `-c`, quoting the path is the workflow's business).
    assert_eq!(run_step(Some("bash -c \"cat '{0}'\""), "echo hi"), (0, "echo hi".into()));
    assert_eq!(run_step(Some("bash {0} one two"), "echo \"$#:$2\""), (0, "2:two\n".into()));
}
