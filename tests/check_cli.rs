//! `metalfarm check` as a user runs it: texts of the diagnostics (insta snapshots), the
//! output formats, exit codes, and the repository's own workflows.

use std::path::Path;
use std::process::Command;

/// Runs `metalfarm check ARGS` in `dir`; returns (exit code, stdout, stderr).
fn check_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run metalfarm");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

/// Writes `workflow` as `NAME.yml` in a fresh directory and checks it.
fn check_one(name: &str, workflow: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = format!("{name}.yml");
    std::fs::write(dir.path().join(&file), workflow).expect("write workflow");
    let mut args = extra.to_vec();
    args.push(&file);
    let (code, stdout, stderr) = check_in(dir.path(), &args);
    assert!(stderr.is_empty(), "stderr: {stderr}");
    (code, stdout)
}

/// An invalid example: exit 1 and the diagnostics as snapshot.
fn invalid(name: &str, workflow: &str) -> String {
    let (code, stdout) = check_one(name, workflow, &[]);
    assert_eq!(code, 1, "{name} must be rejected:\n{stdout}");
    for line in stdout.lines() {
        assert!(line.starts_with(&format!("{name}.yml:")), "not `path:line:col: message`: {line}");
    }
    stdout
}

#[test]
fn unknown_key_with_suggestion() {
    insta::assert_snapshot!(invalid(
        "unknown-key",
        "on: push\njobs:\n  build:\n    runs-on: [self-hosted]\n    step:\n      - run: make\n"
    ));
}

#[test]
fn runs_on_type() {
    insta::assert_snapshot!(invalid(
        "runs-on",
        "on: push\njobs:\n  build:\n    runs-on:\n    steps:\n      - run: make\n  test:\n    runs-on: {os: linux}\n    steps:\n      - run: make\n"
    ));
}

#[test]
fn needs_unknown_job_and_cycle() {
    insta::assert_snapshot!(invalid(
        "needs",
        "on: push
jobs:
  build:
    runs-on: [self-hosted]
    steps:
      - run: make
  test:
    needs: [biuld]
    runs-on: [self-hosted]
    steps:
      - run: make test
  a:
    needs: b
    runs-on: [self-hosted]
    steps:
      - run: a
  b:
    needs: a
    runs-on: [self-hosted]
    steps:
      - run: b
"
    ));
}

#[test]
fn no_job_without_needs() {
    insta::assert_snapshot!(invalid(
        "all-need",
        "on: push\njobs:\n  a:\n    needs: b\n    runs-on: x\n    steps: [{run: a}]\n  b:\n    needs: a\n    runs-on: x\n    steps: [{run: b}]\n"
    ));
}

#[test]
fn duplicate_step_id_and_bad_job_id() {
    insta::assert_snapshot!(invalid(
        "step-id",
        "on: push\njobs:\n  build:\n    runs-on: [self-hosted]\n    steps:\n      - id: one\n        run: make\n      - id: one\n        run: make test\n  1st:\n    runs-on: x\n    steps:\n      - run: a\n"
    ));
}

#[test]
fn unknown_context_and_function() {
    insta::assert_snapshot!(invalid(
        "context",
        "on: push
jobs:
  build:
    runs-on: [self-hosted]
    if: ${{ github.ref == 'refs/heads/main' && steps.ok }}
    steps:
      - run: echo ${{ secret.TOKEN }}
      - if: succes()
        run: make
      - run: |
          echo one
          echo ${{ hashFiles('a') }} ${{ env.X }} ${{ runner.os }}
        name: ${{ jobs.x }}
"
    ));
}

#[test]
fn expressions_where_github_forbids_them() {
    insta::assert_snapshot!(invalid(
        "forbidden",
        "name: ${{ 1 }}\non:\n  push:\n    branches: ['${{ github.ref }}']\njobs:\n  ${{ github.x }}:\n    runs-on: x\n    steps:\n      - uses: ${{ github.action }}\n"
    ));
}

#[test]
fn cron_syntax() {
    insta::assert_snapshot!(invalid(
        "cron",
        "on:\n  schedule:\n    - cron: '61 * * * *'\n    - cron: '0 4 * * *'\njobs:\n  build:\n    runs-on: [self-hosted]\n    steps:\n      - run: make\n"
    ));
}

#[test]
fn container_and_services_on_bare_metal() {
    let workflow = "on: push\njobs:\n  build:\n    runs-on: [self-hosted]\n    container: fedora:39\n    services:\n      db:\n        image: postgres\n    steps:\n      - run: make\n";
    insta::assert_snapshot!(invalid("container", workflow));
    // Whether the farm can run containers is not syntax.
    assert_eq!(check_one("container", workflow, &["--syntax-only"]), (0, String::new()));
}

#[test]
fn unknown_action() {
    let workflow = "on: push\njobs:\n  build:\n    runs-on: [self-hosted]\n    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-node@v4\n      - uses: metalfarm/provision@v1\n      - uses: metalfarm/reboot@v2\n      - uses: ./.github/actions/build\n      - uses: actions/upload-artifact@v4\n";
    insta::assert_snapshot!(invalid("action", workflow));
    assert_eq!(check_one("action", workflow, &["--syntax-only"]), (0, String::new()));
}

#[test]
fn dispatch_input_types_and_defaults() {
    insta::assert_snapshot!(invalid(
        "dispatch",
        "on:
  workflow_dispatch:
    inputs:
      debug:
        type: boolean
        default: 'yes'
      count:
        type: string
        default: 3
      guest:
        type: choice
        options: [fedora, rhel]
        default: debian
      os:
        type: choice
      size:
        type: integer
jobs:
  build:
    runs-on: [self-hosted]
    steps:
      - run: make
"
    ));
}

#[test]
fn matrix_references_to_missing_keys() {
    let workflow = "on: push\njobs:\n  build:\n    runs-on: [self-hosted, '${{ matrix.cpu }}']\n    strategy:\n      matrix:\n        cpu: [amd64, intel64]\n        include:\n          - cpu: amd64\n            guest: fedora\n    steps:\n      - run: echo ${{ matrix.guest }} ${{ matrix.os }}\n  lint:\n    runs-on: x\n    steps:\n      - run: echo ${{ matrix.os }}\n";
    insta::assert_snapshot!(invalid("matrix", workflow));
}

#[test]
fn yaml_syntax_error_and_duplicate_key() {
    insta::assert_snapshot!(invalid("yaml", "on: push\njobs:\n  build:\n    runs-on: [x\n    steps: []\n"));
    insta::assert_snapshot!(invalid(
        "dup",
        "on: push\njobs:\n  build:\n    runs-on: x\n    Runs-On: y\n    steps:\n      - run: a\n"
    ));
}

#[test]
fn json_format() {
    let (code, stdout) =
        check_one("dup", "on: push\njobs:\n  build:\n    runs-on: x\n    stepz: []\n", &["--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
}

#[test]
fn valid_file_prints_nothing_and_exits_0() {
    let (code, stdout) = check_one(
        "ok",
        "on: push\njobs:\n  build:\n    runs-on: [self-hosted, linux]\n    steps:\n      - uses: actions/checkout@v4\n      - run: make\n",
        &[],
    );
    assert_eq!((code, stdout.as_str()), (0, ""));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check_in(dir.path(), &["missing.yml"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("missing.yml"), "{stderr}");
    // No default workflow directory here.
    let (code, _, stderr) = check_in(dir.path(), &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = check_in(dir.path(), &["--format", "xml", "."]);
    assert_eq!(code, 2);
}

#[test]
fn directories_and_default_directories() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(workflows.join("a.yml"), "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n")
        .unwrap();
    std::fs::write(workflows.join("notes.txt"), "not a workflow").unwrap();
    std::fs::write(dir.path().join(".github/workflows/b.yaml"), "on: push\njobs:\n  b:\n    runs-on: x\n")
        .unwrap();
    let (code, stdout, _) = check_in(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}");
    std::fs::write(dir.path().join(".github/workflows/c.yml"), "on: push\n").unwrap();
    let (code, stdout, _) = check_in(dir.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(stdout, ".github/workflows/c.yml:1:1: the workflow is missing the required key `jobs`\n");
}

#[test]
fn the_repositorys_own_workflows_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, stderr) = check_in(root, &["--syntax-only", ".github/workflows"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = check_in(root, &["workflows"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn messages_stay_on_one_line() {
    insta::assert_snapshot!(invalid(
        "multiline",
        "on: push\njobs:\n  build:\n    runs-on: x\n    continue-on-error: |\n      yes\n      no\n    steps:\n      - run: |\n          echo ${{ github.ref ==\n            nope.x }}\n"
    ));
}

#[test]
fn quoted_booleans_are_strings() {
    insta::assert_snapshot!(invalid(
        "quoted",
        "on: push\njobs:\n  a:\n    runs-on: x\n    continue-on-error: \"false\"\n    timeout-minutes: '30'\n    steps: [{run: a}]\n"
    ));
}

#[test]
fn misspelt_values_get_suggestions() {
    insta::assert_snapshot!(invalid(
        "values",
        "on:\n  pushh:\n  pull_request:\n    types: [opend, synchronize]\npermissions:\n  contents: wirte\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n"
    ));
}

#[test]
fn keys_of_the_other_form() {
    insta::assert_snapshot!(invalid(
        "forms",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: make\n        with: {a: b}\n      - uses: actions/checkout@v4\n        shell: bash\n  b:\n    uses: ./.github/workflows/x.yml\n    runs-on: x\n"
    ));
}

/// A workflow of `jobs` jobs, each needing the one before it.
fn chain_of_jobs(jobs: usize) -> String {
    let mut text = String::from("on: push\njobs:\n");
    for i in 0..jobs {
        let needs = if i > 0 { format!("needs: j{}, ", i - 1) } else { String::new() };
        text.push_str(&format!("  j{i}: {{runs-on: x, {needs}steps: [{{run: make}}]}}\n"));
    }
    text
}

#[test]
fn a_file_over_githubs_size_limit_is_refused_with_the_limit_named() {
    // Valid YAML and a valid workflow, made big by a comment: only its size is wrong.
    let mut text = chain_of_jobs(1);
    let padding = 500 * 1024 - text.len();
    text.push('#');
    text.push_str(&"x".repeat(padding));
    assert_eq!(text.len(), 500 * 1024 + 1);
    let (code, stdout) = check_one("big", &text, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stdout,
        "big.yml:1:1: the workflow file is 512001 bytes, more than GitHub's limit of 500 KB (512000 bytes) per workflow file\n"
    );
    // One byte less is within the limit.
    text.pop();
    assert_eq!(check_one("big", &text, &[]), (0, String::new()));
}

#[test]
fn more_jobs_than_github_runs_in_a_workflow_are_refused() {
    assert_eq!(check_one("jobs", &chain_of_jobs(256), &[]), (0, String::new()));
    let (code, stdout) = check_one("jobs", &chain_of_jobs(257), &[]);
    assert_eq!(code, 1, "{stdout}");
    // At the first job over the limit (one job a line, after `on:` and `jobs:`).
    assert_eq!(
        stdout,
        "jobs.yml:259:3: the workflow defines 257 jobs, more than GitHub's limit of 256 jobs per workflow\n"
    );
    // A workflow far over the limit (as many as fit in the size limit) is refused just the
    // same, with that one error (and fast: see `benches/plan.rs`).
    let many = chain_of_jobs(8_000);
    assert!(many.len() < 500 * 1024);
    let (code, stdout) = check_one("jobs", &many, &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("defines 8000 jobs, more than GitHub's limit of 256"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}
