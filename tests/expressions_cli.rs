//! `metalfarm expr`, run as a user runs it: output, exit codes, the JSONL protocol
//! and `hashFiles` over `--workspace`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn metalfarm(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running metalfarm");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("writing stdin");
    child.wait_with_output().expect("metalfarm output")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn prints_the_value_as_json() {
    let o = metalfarm(&["expr", "format('{0}-{1}', 1.50, true) == '1.5-TRUE'"], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "true\n");
    let o = metalfarm(&["expr", "fromJSON('{\"b\":[1,null],\"1\":2}')"], "");
    assert_eq!(stdout(&o), "{\"1\":2,\"b\":[1,null]}\n");
}

#[test]
fn reads_contexts_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("contexts.json");
    std::fs::write(&file, r#"{"github": {"ref": "refs/tags/v1"}, "custom": [1, 2]}"#)
        .expect("writing contexts");
    let file = file.to_string_lossy().into_owned();
    let o = metalfarm(
        &["expr", "--context", &file, "startsWith(github.REF, 'refs/tags/') && join(custom, '+')"],
        "",
    );
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "\"1+2\"\n".to_string()));
}

#[test]
fn exit_codes() {
    let o = metalfarm(&["expr", "nope.x"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Unrecognized named-value: 'nope'"));
    let o = metalfarm(&["expr", "format('{1}', 1)"], "");
    assert_eq!(o.status.code(), Some(1));
    let o = metalfarm(&["expr", "--context", "/nonexistent/contexts.json", "1"], "");
    assert_eq!(o.status.code(), Some(2));
    let o = metalfarm(&["expr"], "");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn jsonl_answers_every_line() {
    let input = [
        r#"{"expr": "a.b == 'X'", "contexts": {"a": {"b": "x"}}}"#,
        r#"{"expr": "b", "contexts": {"a": 1}}"#,
        r#"{"expr": "fromJSON('1e400')", "contexts": {}}"#,
        r#"{"expr": "success() && !cancelled()"}"#,
    ]
    .join("\n");
    let o = metalfarm(&["expr", "--jsonl"], &input);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            r#"{"ok":true,"value":true}"#,
            r#"{"ok":false,"error":"Unrecognized named-value: 'b'. Located at position 1 within expression: b"}"#,
            r#"{"ok":true,"value":null}"#,
            r#"{"ok":true,"value":true}"#,
        ]
    );
    let o = metalfarm(&["expr", "--jsonl"], "not json\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).starts_with(r#"{"ok":false,"error":"invalid input line"#));
}

#[test]
fn hash_files_over_the_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "a").expect("writing a file");
    let ws = dir.path().to_string_lossy().into_owned();
    let o = metalfarm(&["expr", "--workspace", &ws, "hashFiles('*.txt')"], "");
    assert_eq!(o.status.code(), Some(0));
    // sha256 over the one file's sha256 digest (computed with Python's hashlib).
    assert_eq!(stdout(&o), "\"bf5d3affb73efd2ec6c36ad3112dd933efed63c4e1cbffcfa88e2759c144f2d8\"\n");
    let o = metalfarm(&["expr", "--workspace", &ws, "hashFiles('*.none')"], "");
    assert_eq!(stdout(&o), "\"\"\n");
    let o = metalfarm(&["expr", "hashFiles('*.txt')"], "");
    assert_eq!(o.status.code(), Some(1));
}
