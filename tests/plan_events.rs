//! `metalfarm plan` on real webhook payloads (`@octokit/webhooks-examples`, read at
//! test time) against small workflows written here: which workflows and jobs each
//! event selects, as GitHub would select them. Plus the repository's own `workflows/`.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value as Json};

/// A directory of workflow files.
struct Workflows {
    dir: tempfile::TempDir,
}

impl Workflows {
    fn new(files: &[(&str, &str)]) -> Workflows {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".github/workflows")).expect("mkdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(".github/workflows").join(name), text).expect("write workflow");
        }
        Workflows { dir }
    }

    /// Runs `metalfarm plan` in the directory (default workflow dirs) and returns the
    /// JSON it prints.
    fn plan(&self, event: &str, payload: &Json) -> Json {
        let (status, stdout, stderr) = run_plan(self.dir.path(), event, payload, &[]);
        assert!(status == Some(0), "metalfarm plan failed ({status:?}): {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("plan output is not JSON ({e}): {stdout}"))
    }
}

fn run_plan(cwd: &Path, event: &str, payload: &Json, extra: &[&str]) -> (Option<i32>, String, String) {
    let payload_file = tempfile::NamedTempFile::new().expect("payload file");
    std::fs::write(payload_file.path(), serde_json::to_vec(payload).expect("JSON")).expect("write payload");
    let out = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .current_dir(cwd)
        .args(["plan", "--event", event, "--payload"])
        .arg(payload_file.path())
        .args(extra)
        .output()
        .expect("run metalfarm");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The file names of the selected workflows, in output order.
fn selected(plan: &Json) -> Vec<String> {
    plan["workflows"]
        .as_array()
        .expect("workflows list")
        .iter()
        .map(|w| {
            Path::new(w["path"].as_str().expect("path")).file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect()
}

fn workflow<'a>(plan: &'a Json, file: &str) -> &'a Json {
    plan["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"].as_str().is_some_and(|p| p.ends_with(file)))
        .unwrap_or_else(|| panic!("{file} not in the plan: {plan:#}"))
}

fn example(event: &str, pick: impl Fn(&Json) -> bool) -> Json {
    common::webhook_examples(event)
        .into_iter()
        .find(|p| pick(p))
        .unwrap_or_else(|| panic!("no matching {event} example"))
}

const JOB: &str = "jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n";

fn on(trigger: &str) -> String {
    format!("on:\n{trigger}\n{JOB}")
}

#[test]
fn push_to_a_branch() {
    // Codertocat/Hello-World: refs/heads/master, one commit adding README.md.
    let payload =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let w = Workflows::new(&[
        ("any-push.yml", &on("  push:")),
        ("master.yml", &on("  push:\n    branches: [master]")),
        ("main.yml", &on("  push:\n    branches: [main]")),
        ("ignore-master.yml", &on("  push:\n    branches-ignore: ['mas*']")),
        ("negated.yml", &on("  push:\n    branches: ['**', '!master']")),
        ("tags-only.yml", &on("  push:\n    tags: ['**']")),
        ("readme.yml", &on("  push:\n    branches: [master]\n    paths: ['*.md']")),
        ("src-only.yml", &on("  push:\n    paths: ['src/**']")),
        ("ignore-docs.yml", &on("  push:\n    paths-ignore: ['**.md']")),
        ("pr.yml", &on("  pull_request:")),
        ("list-form.yml", &format!("on: [pull_request, push]\n{JOB}")),
    ]);
    let plan = w.plan("push", &payload);
    assert_eq!(selected(&plan), vec!["any-push.yml", "list-form.yml", "master.yml", "readme.yml"]);
    let any = workflow(&plan, "any-push.yml");
    assert_eq!(any["name"], ".github/workflows/any-push.yml");
    // No run-name: a push shows its head commit's message.
    assert_eq!(any["run_name"], "Initial commit");
    assert_eq!(
        any["jobs"],
        json!([{"id": "build", "name": "build", "runs_on": ["ubuntu-latest"], "needs": [],
                "matrix": null, "if": "success()", "concurrency": null}])
    );
    // "[skip ci]" in the head commit's message skips every push workflow.
    let mut skipped = payload.clone();
    skipped["head_commit"]["message"] = json!("Initial commit [skip ci]");
    assert_eq!(selected(&w.plan("push", &skipped)), Vec::<String>::new());
}

#[test]
fn push_of_a_tag() {
    let created = example("push", |p| p["ref"] == "refs/tags/simple-tag" && p["created"] == true);
    let deleted = example("push", |p| p["ref"] == "refs/tags/simple-tag" && p["deleted"] == true);
    let w = Workflows::new(&[
        ("any-push.yml", &on("  push:")),
        ("branches-only.yml", &on("  push:\n    branches: ['**']")),
        ("tags.yml", &on("  push:\n    tags: ['simple-*']")),
        ("v-tags.yml", &on("  push:\n    tags: ['v[0-9]+']")),
        ("tags-ignore.yml", &on("  push:\n    tags-ignore: ['simple-tag']")),
        ("both.yml", &on("  push:\n    branches: [master]\n    tags: ['*']")),
        // "Path filters are not evaluated for pushes of tags."
        ("paths.yml", &on("  push:\n    paths: ['src/**']")),
    ]);
    let plan = w.plan("push", &created);
    assert_eq!(selected(&plan), vec!["any-push.yml", "both.yml", "paths.yml", "tags.yml"]);
    // A tag push has no commits but a head commit, whose message names the run.
    assert!(created["commits"].as_array().unwrap().is_empty());
    assert_eq!(workflow(&plan, "any-push.yml")["run_name"], created["head_commit"]["message"]);
    // Deleting a tag starts nothing.
    assert_eq!(selected(&w.plan("push", &deleted)), Vec::<String>::new());
}

#[test]
fn pull_request_activity_types_and_base_branch() {
    // Every pull_request example targets master.
    let w = Workflows::new(&[
        ("default.yml", &on("  pull_request:")),
        ("closed.yml", &on("  pull_request:\n    types: [closed]")),
        ("labeled.yml", &on("  pull_request:\n    types: [labeled, unlabeled]")),
        ("to-main.yml", &on("  pull_request:\n    branches: [main]")),
        ("to-master.yml", &on("  pull_request:\n    branches: [master]")),
        ("not-master.yml", &on("  pull_request:\n    branches-ignore: [master]")),
        ("target.yml", &on("  pull_request_target:")),
        ("push.yml", &on("  push:")),
    ]);
    let cases: &[(&str, &[&str])] = &[
        ("opened", &["default.yml", "to-master.yml"]),
        ("reopened", &["default.yml", "to-master.yml"]),
        ("synchronize", &["default.yml", "to-master.yml"]),
        ("closed", &["closed.yml"]),
        ("labeled", &["labeled.yml"]),
        ("unlabeled", &["labeled.yml"]),
        ("assigned", &[]),
        ("ready_for_review", &[]),
        ("converted_to_draft", &[]),
    ];
    for (action, expected) in cases {
        let payload = example("pull_request", |p| p["action"] == *action);
        let plan = w.plan("pull_request", &payload);
        assert_eq!(selected(&plan), *expected, "pull_request {action}");
    }
    let opened = example("pull_request", |p| p["action"] == "opened");
    let plan = w.plan("pull_request", &opened);
    assert_eq!(selected(&plan), vec!["default.yml", "to-master.yml"]);
    assert_eq!(workflow(&plan, "default.yml")["run_name"], opened["pull_request"]["title"]);
    // The same payload as pull_request_target selects only that workflow.
    assert_eq!(selected(&w.plan("pull_request_target", &opened)), vec!["target.yml"]);
}

const DISPATCH: &str = r#"name: Hello
run-name: Deploy ${{ inputs.target }} x${{ inputs.count }} dry=${{ inputs.dry }} by @${{ github.actor }} on ${{ github.ref_name }}
on:
  workflow_dispatch:
    inputs:
      target:
        type: choice
        options: [staging, production]
        default: staging
      count:
        type: number
        default: 2
      dry:
        type: boolean
        default: true
jobs:
  deploy:
    if: inputs.dry == false
    runs-on: [self-hosted, '${{ inputs.target }}']
    steps:
      - run: echo
  check:
    if: ${{ inputs.dry }}
    runs-on: ubuntu-latest
    steps:
      - run: echo
"#;

#[test]
fn workflow_dispatch_starts_the_named_workflow_with_typed_inputs() {
    // The payload names .github/workflows/hello-world-workflow.yml and gives no inputs.
    let payload = example("workflow_dispatch", |p| p["ref"] == "refs/heads/main");
    let w = Workflows::new(&[
        ("hello-world-workflow.yml", DISPATCH),
        ("other.yml", &on("  workflow_dispatch:")),
        ("push.yml", &on("  push:")),
    ]);
    let plan = w.plan("workflow_dispatch", &payload);
    assert_eq!(selected(&plan), vec!["hello-world-workflow.yml"]);
    let hello = workflow(&plan, "hello-world-workflow.yml");
    assert_eq!(hello["name"], "Hello");
    assert_eq!(hello["run_name"], "Deploy staging x2 dry=true by @octocat on main");
    let jobs = hello["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["id"], "deploy");
    assert_eq!(jobs[0]["if"], "false", "dry defaults to true: deploy is skipped");
    assert_eq!(jobs[0]["runs_on"], json!(["self-hosted", "staging"]));
    assert_eq!(jobs[1]["if"], "success()");

    // The same payload with inputs given, as strings (as the webhook sends them).
    let mut given = payload.clone();
    given["inputs"] = json!({"target": "production", "count": "5", "dry": "false"});
    let plan = w.plan("workflow_dispatch", &given);
    let hello = workflow(&plan, "hello-world-workflow.yml");
    assert_eq!(hello["run_name"], "Deploy production x5 dry=false by @octocat on main");
    assert_eq!(hello["jobs"][0]["if"], "success()");
    assert_eq!(hello["jobs"][0]["runs_on"], json!(["self-hosted", "production"]));
    assert_eq!(hello["jobs"][1]["if"], "false");
}

#[test]
fn schedule_starts_the_workflows_with_that_cron() {
    // GitHub's schedule payload: the cron that fired, the repository.
    let repository = example("push", |_| true)["repository"].clone();
    let payload = json!({"schedule": "0 2 * * *", "repository": repository});
    let w = Workflows::new(&[
        ("nightly.yml", &on("  schedule:\n    - cron: '0 4 * * *'\n    - cron: '0 2 * * *'")),
        ("weekly.yml", &on("  schedule:\n    - cron: '0 2 * * 1'")),
        ("push.yml", &on("  push:")),
    ]);
    let plan = w.plan("schedule", &payload);
    assert_eq!(selected(&plan), vec!["nightly.yml"]);
    let nightly = workflow(&plan, "nightly.yml");
    assert_eq!(nightly["run_name"], ".github/workflows/nightly.yml");
}

/// A run name that prints the `github` context's fields, `|`-separated.
const GITHUB_FIELDS: &str =
    "run-name: \"${{ github.event_name }}|${{ github.repository }}|${{ github.repository_owner }}|\
${{ github.actor }}|${{ github.ref }}|${{ github.ref_name }}|${{ github.ref_type }}|${{ github.sha }}|\
${{ github.base_ref }}|${{ github.head_ref }}|${{ github.server_url }}|${{ github.api_url }}|\
${{ github.workflow }}|${{ github.run_id }}|${{ github.event.sender.login }}\"\n";

#[test]
fn the_github_context_of_real_events() {
    let w = Workflows::new(&[(
        "context.yml",
        &format!("name: ctx\n{GITHUB_FIELDS}on: [push, pull_request]\n{JOB}"),
    )]);
    let run_name = |event: &str, payload: &Json| {
        let plan = w.plan(event, payload);
        workflow(&plan, "context.yml")["run_name"].as_str().expect("run name").to_string()
    };
    let push =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let s = |v: &Json| v.as_str().expect("string").to_string();
    let expected = [
        "push".to_string(),
        s(&push["repository"]["full_name"]),
        s(&push["repository"]["owner"]["login"]),
        s(&push["sender"]["login"]),
        "refs/heads/master".to_string(),
        "master".to_string(),
        "branch".to_string(),
        s(&push["after"]),
        String::new(),
        String::new(),
        "https://github.com".to_string(),
        "https://api.github.com".to_string(),
        "ctx".to_string(),
        "1".to_string(),
        s(&push["sender"]["login"]),
    ];
    assert_eq!(run_name("push", &push), expected.join("|"));

    let tag = example("push", |p| p["ref"] == "refs/tags/simple-tag" && p["created"] == true);
    let fields: Vec<String> = run_name("push", &tag).split('|').map(str::to_string).collect();
    assert_eq!(
        fields[4..8],
        ["refs/tags/simple-tag".to_string(), "simple-tag".into(), "tag".into(), s(&tag["after"])]
    );

    let pr = example("pull_request", |p| p["action"] == "opened");
    let number = pr["number"].as_u64().expect("number");
    let fields: Vec<String> = run_name("pull_request", &pr).split('|').map(str::to_string).collect();
    assert_eq!(fields[0], "pull_request");
    assert_eq!(fields[4], format!("refs/pull/{number}/merge"));
    assert_eq!(fields[5], format!("{number}/merge"));
    assert_eq!(fields[8], s(&pr["pull_request"]["base"]["ref"]));
    assert_eq!(fields[9], s(&pr["pull_request"]["head"]["ref"]));
}

#[test]
fn sha_and_vars_come_from_the_command_line() {
    let repository = example("push", |_| true)["repository"].clone();
    let payload = json!({"schedule": "0 2 * * *", "repository": repository});
    let text = "run-name: ${{ vars.LAB }} at ${{ github.sha }} on ${{ github.ref }}\non:\n  schedule:\n    - cron: '0 2 * * *'\n";
    let w = Workflows::new(&[("nightly.yml", &format!("{text}{JOB}"))]);
    let args = ["--sha", "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "--var", "LAB=kvm-lab", "--var", "X=1"];
    let (status, stdout, stderr) = run_plan(w.dir.path(), "schedule", &payload, &args);
    assert_eq!(status, Some(0), "{stderr}");
    let plan: Json = serde_json::from_str(&stdout).expect("JSON");
    // A schedule runs on the default branch (the example repository's is master).
    assert_eq!(
        workflow(&plan, "nightly.yml")["run_name"],
        "kvm-lab at 6113728f27ae82c7b1a177c8d03f9e96e0adf246 on refs/heads/master"
    );
    let (status, _, stderr) = run_plan(w.dir.path(), "schedule", &payload, &["--var", "novalue"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("NAME=VALUE"), "{stderr}");
}

#[test]
fn repository_dispatch_types_and_a_matrix_from_the_payload() {
    let mut payload = example("repository_dispatch", |p| p["action"] == "on-demand-test");
    // The docs' "matrix from a context" example: versions come with the event.
    payload["client_payload"] = json!({"versions": [12, 14, 16]});
    let matrix_workflow = r#"on:
  repository_dispatch:
    types: [on-demand-test]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        version: ${{ github.event.client_payload.versions }}
    steps:
      - run: echo
"#;
    let w = Workflows::new(&[
        ("matrix.yml", matrix_workflow),
        ("any.yml", &on("  repository_dispatch:")),
        ("other-type.yml", &on("  repository_dispatch:\n    types: [deploy]")),
    ]);
    let plan = w.plan("repository_dispatch", &payload);
    assert_eq!(selected(&plan), vec!["any.yml", "matrix.yml"]);
    let jobs = workflow(&plan, "matrix.yml")["jobs"].clone();
    let names: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["test (12)", "test (14)", "test (16)"]);
    assert_eq!(jobs[1]["matrix"], json!({"version": 14}));
}

#[test]
fn workflow_run_after_a_named_workflow() {
    // "Manually triggered workflow" completed on main.
    let payload =
        example("workflow_run", |p| p["action"] == "completed" && p["workflow_run"]["head_branch"] == "main");
    let name = payload["workflow_run"]["name"].as_str().expect("name").to_string();
    let w = Workflows::new(&[
        ("after.yml", &on(&format!("  workflow_run:\n    workflows: ['{name}']\n    types: [completed]"))),
        ("after-main.yml", &on(&format!("  workflow_run:\n    workflows: ['{name}']\n    branches: [main]"))),
        ("after-dev.yml", &on(&format!("  workflow_run:\n    workflows: ['{name}']\n    branches: [dev]"))),
        (
            "requested.yml",
            &on(&format!("  workflow_run:\n    workflows: ['{name}']\n    types: [requested]")),
        ),
        ("other.yml", &on("  workflow_run:\n    workflows: [Other]")),
    ]);
    assert_eq!(selected(&w.plan("workflow_run", &payload)), vec!["after-main.yml", "after.yml"]);
}

#[test]
fn jobs_matrix_needs_if_and_concurrency() {
    let payload =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let text = r#"name: CI
on: push
concurrency: ci-${{ github.ref }}
jobs:
  build:
    name: Build ${{ matrix.os }}/${{ matrix.node }}
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
        node: [14, 16]
        exclude:
          - os: windows-latest
            node: 14
        include:
          - os: ubuntu-latest
            experimental: true
    concurrency:
      group: ${{ github.job }}-${{ github.ref_name }}-${{ matrix.os }}
      cancel-in-progress: ${{ github.ref_name != 'master' }}
    steps:
      - run: echo
  test:
    needs: build
    if: github.ref == 'refs/heads/master'
    runs-on: [self-hosted, linux]
    strategy:
      matrix:
        shard: ${{ fromJSON('[1, 2]') }}
    steps:
      - run: echo
  deploy:
    needs: [build, test]
    if: needs.test.result == 'success'
    runs-on: ${{ fromJSON('["self-hosted", "deploy"]') }}
    steps:
      - run: echo
  report:
    needs: deploy
    if: always()
    runs-on: ubuntu-latest
    strategy:
      matrix: ${{ fromJSON(needs.deploy.outputs.matrix) }}
    steps:
      - run: echo
  pr-only:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - run: echo
  after-pr:
    needs: pr-only
    runs-on: ubuntu-latest
    steps:
      - run: echo
  after-pr-result:
    needs: [build, after-pr]
    if: needs.after-pr.result == 'skipped'
    runs-on: ubuntu-latest
    steps:
      - run: echo
  after-pr-always:
    needs: after-pr
    if: ${{ always() }}
    runs-on: ubuntu-latest
    steps:
      - run: echo
"#;
    let w = Workflows::new(&[("ci.yml", text)]);
    let plan = w.plan("push", &payload);
    let ci = workflow(&plan, "ci.yml");
    assert_eq!(ci["name"], "CI");
    let jobs = ci["jobs"].as_array().unwrap();
    let summary: Vec<(String, String, Json, String)> = jobs
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap().to_string(),
                j["name"].as_str().unwrap().to_string(),
                j["runs_on"].clone(),
                j["if"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |id: &str, name: &str, runs_on: Json, cond: &str| {
        (id.to_string(), name.to_string(), runs_on, cond.to_string())
    };
    assert_eq!(
        summary,
        vec![
            row("build", "Build ubuntu-latest/14", json!(["ubuntu-latest"]), "success()"),
            row("build", "Build ubuntu-latest/16", json!(["ubuntu-latest"]), "success()"),
            row("build", "Build windows-latest/16", json!(["windows-latest"]), "success()"),
            row("test", "test (1)", json!(["self-hosted", "linux"]), "success()"),
            row("test", "test (2)", json!(["self-hosted", "linux"]), "success()"),
            row("deploy", "deploy", json!(["self-hosted", "deploy"]), "needs.test.result == 'success'"),
            row("report", "report", json!(["ubuntu-latest"]), "always()"),
            row("pr-only", "pr-only", json!(["ubuntu-latest"]), "false"),
            // Dependents of a skipped job are skipped unless a status function says otherwise.
            row("after-pr", "after-pr", json!(["ubuntu-latest"]), "false"),
            row("after-pr-result", "after-pr-result", json!(["ubuntu-latest"]), "false"),
            row("after-pr-always", "after-pr-always", json!(["ubuntu-latest"]), "${{ always() }}"),
        ]
    );
    assert_eq!(jobs[0]["matrix"], json!({"os": "ubuntu-latest", "node": 14, "experimental": true}));
    assert_eq!(jobs[2]["matrix"], json!({"os": "windows-latest", "node": 16}));
    assert_eq!(
        jobs[0]["concurrency"],
        json!({"group": "build-master-ubuntu-latest", "cancel_in_progress": false})
    );
    assert_eq!(jobs[5]["needs"], json!(["build", "test"]));
    // A matrix computed from `needs` is expanded at run time: kept as written.
    assert_eq!(jobs[6]["matrix"], json!("${{ fromJSON(needs.deploy.outputs.matrix) }}"));
}

#[test]
fn pull_request_paths_from_the_known_diff() {
    let opened = example("pull_request", |p| p["action"] == "opened");
    let w = Workflows::new(&[
        ("src.yml", &on("  pull_request:\n    paths: ['src/**', '!src/docs/**']")),
        ("not-docs.yml", &on("  pull_request:\n    paths-ignore: ['**.md']")),
    ]);
    // The payload lists no files: GitHub runs path-filtered workflows without a diff.
    assert_eq!(selected(&w.plan("pull_request", &opened)), vec!["not-docs.yml", "src.yml"]);
    let with_files = |files: &[&str]| {
        let mut extra = Vec::new();
        for f in files {
            extra.extend(["--changed-file", f]);
        }
        let (status, stdout, stderr) = run_plan(w.dir.path(), "pull_request", &opened, &extra);
        assert_eq!(status, Some(0), "{stderr}");
        selected(&serde_json::from_str(&stdout).expect("JSON"))
    };
    assert_eq!(with_files(&["README.md"]), Vec::<String>::new());
    assert_eq!(with_files(&["src/docs/x.md"]), Vec::<String>::new());
    assert_eq!(with_files(&["src/lib.rs"]), vec!["not-docs.yml", "src.yml"]);
    assert_eq!(with_files(&["README.md", "src/docs/a.rs"]), vec!["not-docs.yml"]);
}

#[test]
fn job_names_of_matrix_jobs() {
    let payload =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let text = r#"on: push
jobs:
  literal:
    name: Tests
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux]
        opt: ['', fast]
        include:
          - os: linux
            extra: null
    steps:
      - run: echo
  expression:
    name: Tests on ${{ github.ref_name }}
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux]
    steps:
      - run: echo
  whole:
    runs-on: ubuntu-latest
    strategy:
      matrix: ${{ fromJSON('{"os":["a","b"],"include":[{"os":"b","big":true}]}') }}
    steps:
      - run: echo
"#;
    let w = Workflows::new(&[("names.yml", text)]);
    let plan = w.plan("push", &payload);
    let jobs = workflow(&plan, "names.yml")["jobs"].as_array().unwrap().clone();
    let names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["Tests (linux)", "Tests (linux, fast)", "Tests on master", "whole (a)", "whole (b, true)"]
    );
    assert_eq!(jobs[4]["matrix"], json!({"os": "b", "big": true}));
}

#[test]
fn matrix_over_256_jobs_fails_that_job_only() {
    // On GitHub the job fails at matrix expansion; the other jobs run, and the jobs that
    // need it are skipped.
    let payload =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let big = r#"on: push
jobs:
  big:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
        b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    steps:
      - run: echo
  small:
    runs-on: ubuntu-latest
    steps:
      - run: echo
  after:
    needs: big
    runs-on: ubuntu-latest
    steps:
      - run: echo
"#;
    let w = Workflows::new(&[("big.yml", big), ("ok.yml", &on("  push:"))]);
    let (status, stdout, stderr) = run_plan(w.dir.path(), "push", &payload, &[]);
    assert_eq!(status, Some(1), "{stderr}");
    let message =
        "Strategy for job 'big' produced 272 configurations which exceeds the maximum of 256 configurations";
    assert!(stderr.contains("big.yml:7:9: ") && stderr.contains(message), "{stderr}");
    let plan: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(selected(&plan), vec!["big.yml", "ok.yml"]);
    let jobs = workflow(&plan, "big.yml")["jobs"].clone();
    assert_eq!(
        jobs,
        json!([
            {"id": "big", "name": "big", "runs_on": ["ubuntu-latest"], "needs": [], "matrix": null,
             "if": "success()", "concurrency": null, "error": message},
            {"id": "small", "name": "small", "runs_on": ["ubuntu-latest"], "needs": [], "matrix": null,
             "if": "success()", "concurrency": null},
            {"id": "after", "name": "after", "runs_on": ["ubuntu-latest"], "needs": ["big"], "matrix": null,
             "if": "false", "concurrency": null}
        ])
    );
}

#[test]
fn usage_errors_exit_2() {
    let w = Workflows::new(&[("ok.yml", &on("  push:"))]);
    let missing = w.dir.path().join("missing.json");
    let out = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .current_dir(w.dir.path())
        .args(["plan", "--event", "push", "--payload"])
        .arg(&missing)
        .output()
        .expect("run metalfarm");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

#[test]
fn the_farms_own_workflows_on_a_push() {
    // A push to master that adds README.md: qemu-sanity (master, docs ignored) and
    // kvm-sanity (next, queue, master) run; qemu-stable (schedule, dispatch) does not.
    let payload =
        example("push", |p| p["ref"] == "refs/heads/master" && !p["commits"].as_array().unwrap().is_empty());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (status, stdout, stderr) = run_plan(repo, "push", &payload, &["--workflows", "workflows"]);
    assert_eq!(status, Some(0), "{stderr}");
    let plan: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(selected(&plan), vec!["kvm-sanity.yml", "qemu-sanity.yml"]);
    insta::assert_snapshot!("farm_workflows_push_master", stdout);

    // A push that only touches docs does not start qemu-sanity.
    let mut docs_only = payload.clone();
    docs_only["commits"] = json!([{"added": ["docs/setup.rst"], "modified": [], "removed": []}]);
    let (_, stdout, _) = run_plan(repo, "push", &docs_only, &["--workflows", "workflows"]);
    let plan: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(selected(&plan), vec!["kvm-sanity.yml"]);
}

#[test]
fn the_farms_own_workflows_on_a_manual_dispatch() {
    let mut payload = example("workflow_dispatch", |p| p["ref"] == "refs/heads/main");
    payload["workflow"] = json!("workflows/qemu-sanity.yml");
    payload["inputs"] = json!({"guest": "RHEL.6.4.x86_64"});
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (status, stdout, stderr) =
        run_plan(repo, "workflow_dispatch", &payload, &["--workflows", "workflows"]);
    assert_eq!(status, Some(0), "{stderr}");
    let plan: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(selected(&plan), vec!["qemu-sanity.yml"]);
    let sanity = workflow(&plan, "qemu-sanity.yml");
    assert_eq!(sanity["run_name"], "qemu sanity on main (workflow_dispatch)");
    let names: Vec<&str> =
        sanity["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["sanity (amd64)", "sanity (intel64)"]);
}

#[test]
fn the_farms_own_workflows_on_the_nightly_schedule() {
    let repository = example("push", |_| true)["repository"].clone();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (cron, expected) in
        [("0 2 * * *", "qemu-sanity.yml"), ("0 4 * * *", "kvm-sanity.yml"), ("0 20 * * *", "qemu-stable.yml")]
    {
        let payload = json!({"schedule": cron, "repository": repository});
        let (status, stdout, stderr) =
            run_plan(repo, "schedule", &payload, &["--workflows", "workflows", "--sha", "6113728f"]);
        assert_eq!(status, Some(0), "{stderr}");
        let plan: Json = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(selected(&plan), vec![expected], "cron {cron}");
    }
}

#[test]
fn help_says_what_the_output_means() {
    let out = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .args(["plan", "--help"])
        .output()
        .expect("run metalfarm");
    assert!(out.status.success());
    insta::assert_snapshot!("plan_help", String::from_utf8_lossy(&out.stdout));
}
