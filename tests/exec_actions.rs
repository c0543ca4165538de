//! The actions a step may `uses:` on this farm, on real OpenSSH test hosts without a
//! server: `actions/checkout` from a real git repository (depths, `path`, `ref`,
//! submodules), `actions/upload-artifact` into the job's artifact directory, and
//! local composite actions (`uses: ./path`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use metalfarm::exec::host::HostTarget;
use metalfarm::exec::job::{Conclusion, JobDefinition, JobOutcome};
use metalfarm::workflow::event::{Event, RunInfo};
use metalfarm::workflow::load::{load, LoadOptions};
use tokio_util::sync::CancellationToken;

use common::testhost::TestHosts;

fn target(hosts: &TestHosts) -> HostTarget {
    common::lab::target(hosts, hosts.host(0))
}

/// A scratch directory the test hosts see too (each
/// host mounts its own /tmp).
fn scratch() -> tempfile::TempDir {
    common::testhost::scratch_dir("exec-actions-")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"])
        .args(["-c", "protocol.file.allow=always"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit_file(dir: &Path, file: &str, contents: &str, message: &str) -> String {
    std::fs::write(dir.join(file), contents).unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository `qemu` with three commits on `main`, a branch `feature`, and a
/// submodule `libs/sub` (repository `sub`); returns its `file://` URL and head sha.
fn repositories(root: &Path) -> (String, String) {
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q"]);
    commit_file(&sub, "sub.txt", "from the submodule\n", "sub: first");
    let repo = root.join("qemu");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    commit_file(&repo, "VERSION", "1\n", "one");
    commit_file(&repo, "VERSION", "2\n", "two");
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    commit_file(&repo, "FEATURE", "feature branch\n", "feature");
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["submodule", "add", "-q", &format!("file://{}", sub.display()), "libs/sub"]);
    git(&repo, &["commit", "-q", "-m", "three: the submodule"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    (format!("file://{}", repo.display()), head)
}

fn definition(yaml: &str, clone_url: Option<&str>, sha: &str, artifacts: Option<PathBuf>) -> JobDefinition {
    let loaded = load(yaml, &LoadOptions::default());
    let workflow =
        loaded.workflow.unwrap_or_else(|| panic!("workflow does not load: {:?}", loaded.diagnostics));
    let mut payload = serde_json::json!({
        "ref": "refs/heads/main",
        "after": sha,
        "repository": {"full_name": "lab/qemu", "name": "qemu", "owner": {"login": "lab"}},
        "sender": {"login": "alice"},
    });
    if let Some(url) = clone_url {
        payload["repository"]["clone_url"] = url.into();
    }
    let event = Event::new("push", payload);
    let mut definition = JobDefinition::new(
        Arc::new(workflow),
        "test",
        &event,
        &RunInfo::default(),
        ".github/workflows/ci.yml",
    );
    definition.artifacts_dir = artifacts;
    definition
}

/// What a job left: its outcome and its log.
struct Ran {
    outcome: JobOutcome,
    log: String,
}

impl Ran {
    fn step(&self, number: i64) -> Conclusion {
        self.outcome.steps.iter().find(|s| s.number == number).map(|s| s.outcome).expect("the step ran")
    }
}

async fn run(definition: JobDefinition, hosts: &TestHosts) -> Ran {
    let (outcome, log) =
        common::lab::run_job_logged(&definition, &target(hosts), CancellationToken::new()).await;
    Ran { outcome, log: log.join("\n") }
}

#[tokio::test]
async fn checkout_depths_paths_refs_and_submodules() {
    let hosts = TestHosts::start(1);
    let root = scratch();
    let (url, head) = repositories(root.path());
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
      - name: shallow, at the event's commit, no submodule
        run: |
          test "$(git rev-parse HEAD)" = "${{ github.sha }}"
          test "$(git rev-list --count HEAD)" = 1
          test "$(cat VERSION)" = 2
          test ! -e libs/sub/sub.txt
          test ! -e FEATURE
      - uses: actions/checkout@v4
        with: {fetch-depth: 0, path: full}
      - name: the whole history
        run: |
          cd full
          test "$(git rev-list --count HEAD)" = 3
          git rev-parse --verify -q refs/remotes/origin/feature
          test "$(git rev-parse HEAD)" = "${{ github.sha }}"
      - uses: actions/checkout@v4
        with: {ref: feature, path: nested/feat}
      - name: a branch, shallow, under a nested path
        run: |
          test "$(cat nested/feat/FEATURE)" = "feature branch"
          test "$(git -C nested/feat rev-list --count HEAD)" = 1
      - uses: actions/checkout@v4
        with: {path: with-sub, submodules: true}
      - run: test "$(cat with-sub/libs/sub/sub.txt)" = "from the submodule"
      - name: the default checkout again, over the workspace's own files
        uses: actions/checkout@v4
      - run: test ! -e full && test ! -e with-sub && test "$(cat VERSION)" = 2
"###;
    let ran = run(definition(yaml, Some(&url), &head, None), &hosts).await;
    let log = &ran.log;
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert_eq!(ran.outcome.steps.len(), 10);
    assert!(log.contains("HEAD is now at"), "{log}");
    assert!(log.contains(&format!("HEAD is now at {}", &head[..7])), "{log}");
}

#[tokio::test]
async fn checkout_of_a_missing_ref_fails_the_step() {
    let hosts = TestHosts::start(1);
    let root = scratch();
    let (url, head) = repositories(root.path());
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
        with: {ref: no-such-branch}
      - if: failure()
        run: echo "the checkout failed"
"###;
    let ran = run(definition(yaml, Some(&url), &head, None), &hosts).await;
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure, "log:\n{}", ran.log);
    assert_eq!(ran.step(1), Conclusion::Failure);
    assert!(
        ran.outcome.annotations.iter().any(|a| a.message.contains("actions/checkout")),
        "{:?}",
        ran.outcome.annotations
    );
    assert!(ran.log.contains("the checkout failed"), "{}", ran.log);

    // Without a repository in the event there is nothing to check out.
    let ran = run(definition(yaml, None, &head, None), &hosts).await;
    assert_eq!(ran.step(1), Conclusion::Failure);
    assert!(
        ran.outcome.annotations.iter().any(|a| a.message.contains("no repository to check out")),
        "{:?}",
        ran.outcome.annotations
    );
}

fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[tokio::test]
async fn upload_artifact_files_globs_and_missing_files() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: |
          mkdir -p out/logs/deep build
          echo a > out/a.txt; echo b > out/b.txt; echo c > out/c.bin
          echo deep > out/logs/deep/kernel.log
          echo report > build/report.html
      - name: globs and a directory
        uses: actions/upload-artifact@v4
        with:
          name: results
          path: |
            out/*.txt
            out/logs/
      - name: one file
        uses: actions/upload-artifact@v4
        with: {name: report, path: build/report.html}
      - name: nothing, a warning by default
        uses: actions/upload-artifact@v4
        with: {name: none, path: "missing/*.log"}
      - name: nothing, ignored
        uses: actions/upload-artifact@v4
        with: {name: none2, path: missing.log, if-no-files-found: ignore}
      - name: nothing, an error
        id: strict
        continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: none3, path: missing.log, if-no-files-found: error}
      - name: a bad name
        continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: ../escape, path: out}
      - name: a name taken
        continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: report, path: out/a.txt}
      - name: a name taken, overwritten
        uses: actions/upload-artifact@v4
        with: {name: report, path: out/c.bin, overwrite: true}
"###;
    let ran = run(
        definition(yaml, None, "0123456789abcdef0123456789abcdef01234567", Some(store.path().into())),
        &hosts,
    )
    .await;
    let log = &ran.log;
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert_eq!(ran.outcome.artifacts, vec!["results".to_owned(), "report".to_owned()]);
    // The root of an artifact is the search paths' least common ancestor, as GitHub's.
    assert_eq!(files_under(&store.path().join("results")), ["a.txt", "b.txt", "logs/deep/kernel.log"]);
    assert_eq!(files_under(&store.path().join("report")), ["c.bin"], "overwritten");
    assert_eq!(std::fs::read_to_string(store.path().join("results/logs/deep/kernel.log")).unwrap(), "deep\n");
    assert!(!store.path().join("none").exists() && !store.path().join("none3").exists());
    assert_eq!(ran.step(4), Conclusion::Success);
    assert_eq!(ran.step(5), Conclusion::Success);
    assert_eq!(ran.step(6), Conclusion::Failure);
    assert_eq!(ran.step(7), Conclusion::Failure);
    let warnings: Vec<_> = ran.outcome.annotations.iter().map(|a| (a.level, a.message.as_str())).collect();
    assert!(
        warnings.iter().any(|(level, m)| *level == metalfarm::exec::commands::AnnotationLevel::Warning
            && m.starts_with("No files were found with the provided path: missing/*.log")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|(_, m)| m.contains("invalid artifact name `../escape`")), "{warnings:?}");
    assert_eq!(ran.step(8), Conclusion::Failure);
    assert!(
        warnings
            .iter()
            .any(|(_, m)| m.contains("an artifact named `report` already exists on this workflow run")),
        "{warnings:?}"
    );
    assert!(log.contains("Artifact `results`: 3 file(s)"), "{log}");
}

fn write(dir: &Path, file: &str, contents: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A repository with local actions under `.github/actions/`; its URL and head sha.
fn repository_with_actions(root: &Path) -> (String, String) {
    let repo = root.join("qemu");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    write(
        &repo,
        ".github/actions/greet/action.yml",
        r###"
name: greet
description: says hello
inputs:
  who:
    description: whom to greet
    required: true
  greeting:
    default: Hello
  actor:
    default: ${{ github.actor }}
outputs:
  sentence:
    description: what was said
    value: ${{ steps.say.outputs.sentence }}
  nested:
    value: ${{ steps.inner.outputs.echoed }}
runs:
  using: composite
  steps:
    - id: say
      name: say it
      shell: bash
      env:
        PUNCT: "!"
      run: |
        echo "sentence=${{ inputs.greeting }}, ${{ inputs.who }}$PUNCT (from ${{ inputs.actor }})" >> "$GITHUB_OUTPUT"
        echo "action path ${{ github.action_path }} = $GITHUB_ACTION_PATH"
        "$GITHUB_ACTION_PATH/helper.sh"
        echo "outer env $FROM_CALLER"
        echo "GREETED=${{ inputs.who }}" >> "$GITHUB_ENV"
    - shell: sh
      working-directory: sub
      run: echo "composite pwd $(pwd)"
    - if: inputs.greeting == 'never'
      shell: sh
      run: echo "should not run"
    - id: soft
      shell: sh
      continue-on-error: true
      run: exit 3
    - id: inner
      uses: ./.github/actions/echo
      with:
        text: ${{ steps.soft.outcome }}-${{ steps.say.outputs.sentence != '' }}
"###,
    );
    write(
        &repo,
        ".github/actions/greet/helper.sh",
        "#!/bin/sh\necho \"helper ran in $(basename \"$(dirname \"$0\")\")\"\n",
    );
    std::fs::set_permissions(
        repo.join(".github/actions/greet/helper.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(
        &repo,
        ".github/actions/echo/action.yaml",
        r###"
inputs:
  text: {required: true}
outputs:
  echoed: {value: "${{ steps.e.outputs.out }}"}
runs:
  using: composite
  steps:
    - id: e
      shell: bash
      run: echo "out=echo:${{ inputs.text }}" >> "$GITHUB_OUTPUT"
"###,
    );
    write(
        &repo,
        ".github/actions/fails/action.yml",
        r###"
runs:
  using: composite
  steps:
    - shell: sh
      run: echo "failing now"; exit 2
    - shell: sh
      run: echo "after the failure, should not run"
    - if: failure()
      shell: sh
      run: echo "cleanup after failure"
"###,
    );
    write(&repo, ".github/actions/node/action.yml", "runs: {using: node20, main: index.js}\n");
    write(
        &repo,
        ".github/actions/loop/action.yml",
        "runs:\n  using: composite\n  steps:\n    - uses: ./.github/actions/loop\n",
    );
    write(&repo, "sub/.keep", "");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "local actions"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    (format!("file://{}", repo.display()), head)
}

#[tokio::test]
async fn local_composite_actions() {
    let hosts = TestHosts::start(1);
    let root = scratch();
    let (url, head) = repository_with_actions(root.path());
    let yaml = r###"
on: push
defaults:
  run: {working-directory: does-not-exist}
jobs:
  test:
    runs-on: self-hosted
    outputs:
      sentence: ${{ steps.greet.outputs.sentence }}
      nested: ${{ steps.greet.outputs.nested }}
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: ./.github/actions/greet
        env: {FROM_CALLER: caller-env}
        with: {who: World}
      - run: echo "after greeted=$GREETED"
        working-directory: .
      - id: failing
        uses: ./.github/actions/fails
        continue-on-error: true
      - id: missing_input
        continue-on-error: true
        uses: ./.github/actions/greet
      - id: node
        continue-on-error: true
        uses: ./.github/actions/node
      - id: nowhere
        continue-on-error: true
        uses: ./no/such/action
      - id: loop
        continue-on-error: true
        uses: ./.github/actions/loop
      - working-directory: .
        run: |
          echo "outcomes ${{ steps.failing.outcome }} ${{ steps.missing_input.outcome }} ${{ steps.node.outcome }} ${{ steps.nowhere.outcome }} ${{ steps.loop.outcome }}"
"###;
    let ran = run(definition(yaml, Some(&url), &head, None), &hosts).await;
    let log = &ran.log;
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert_eq!(ran.outcome.steps.len(), 9, "the action's steps are inside one step of the job");
    assert_eq!(ran.outcome.outputs["sentence"], "Hello, World! (from alice)");
    assert_eq!(ran.outcome.outputs["nested"], "echo:failure-true");
    let path = "/root/metalfarm-work/qemu/qemu/.github/actions/greet";
    assert!(log.contains(&format!("action path {path} = {path}")), "{log}");
    for line in [
        "helper ran in greet",
        "outer env caller-env",
        "composite pwd /root/metalfarm-work/qemu/qemu/sub",
        "after greeted=World",
        "failing now",
        "cleanup after failure",
        "outcomes failure failure failure failure failure",
    ] {
        assert!(log.lines().any(|l| l == line), "`{line}` in:\n{log}");
    }
    assert!(!log.contains("should not run"), "{log}");
    let messages: Vec<&str> = ran.outcome.annotations.iter().map(|a| a.message.as_str()).collect();
    for expected in [
        "Input required and not supplied: who",
        "`using: node20` is not supported on this farm",
        "Can't find 'action.yml' or 'action.yaml' under '/root/metalfarm-work/qemu/qemu/no/such/action'",
        "`./.github/actions/loop`: composite actions may be nested at most 10 levels deep",
    ] {
        assert!(messages.iter().any(|m| m.contains(expected)), "`{expected}` in {messages:#?}");
    }
}

#[tokio::test]
async fn an_artifact_name_belongs_to_one_job_of_the_run() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: mkdir -p out && echo "${{ github.run_attempt }} ${{ matrix.arch }}" > out/a.txt
      - uses: actions/upload-artifact@v4
        with: {name: results, path: out/a.txt}
"###;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let first = run(definition(yaml, None, sha, Some(store.path().into())), &hosts).await;
    assert_eq!(first.outcome.conclusion, Conclusion::Success, "{}", first.log);
    // The same job again (as after a host failure): its artifact is replaced.
    std::fs::write(store.path().join("results/stale.txt"), "from the cut attempt").unwrap();
    let again = run(definition(yaml, None, sha, Some(store.path().into())), &hosts).await;
    assert_eq!(again.outcome.conclusion, Conclusion::Success, "{}", again.log);
    assert_eq!(files_under(&store.path().join("results")), ["a.txt"]);
    // Another job of the run (another matrix combination) may not take the name.
    let mut other = definition(yaml, None, sha, Some(store.path().into()));
    other.contexts.insert(
        "matrix".into(),
        metalfarm::workflow::expr::Value::from_json(&serde_json::json!({"arch": "arm"})),
    );
    let other = run(other, &hosts).await;
    assert_eq!(other.outcome.conclusion, Conclusion::Failure, "{}", other.log);
    assert_eq!(other.step(2), Conclusion::Failure);
    assert!(other.outcome.artifacts.is_empty());
    assert_eq!(files_under(&store.path().join("results")), ["a.txt"]);
}

/// Names from the host are data: a newline, a leading dash, spaces, a backslash or a
/// tab in a file name uploads that file under that name. Symbolic links are followed
/// as GitHub's action follows them: a link to a file (inside the artifact or outside)
/// uploads the file's content under the link's name, a link to a folder the folder's
/// files, and a broken link is left out.
#[tokio::test]
async fn artifact_file_names_are_data_and_symbolic_links_upload_their_targets() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: |
          mkdir -p out/sub /root/outside-dir
          printf 'newline\n' > "out/a
          b.txt"
          printf 'dash\n' > out/-dash
          printf 'space\n' > "out/with space"
          printf 'backslash\n' > 'out/back\slash'
          printf 'tab\n' > "$(printf 'out/tab\there')"
          printf 'inside\n' > out/sub/target.txt
          ln -s sub/target.txt out/link-in
          printf 'outside\n' > /root/outside.txt
          ln -s /root/outside.txt out/link-out
          printf 'in a linked folder\n' > /root/outside-dir/f.txt
          ln -s /root/outside-dir out/dirlink
          ln -s /nowhere out/dangling
      - uses: actions/upload-artifact@v4
        with: {name: odd, path: out/}
"###;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let ran = run(definition(yaml, None, sha, Some(store.path().into())), &hosts).await;
    let log = &ran.log;
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert!(ran.outcome.infra.is_none());
    let odd = store.path().join("odd");
    assert_eq!(
        files_under(&odd),
        [
            "-dash",
            "a\nb.txt",
            "back\\slash",
            "dirlink/f.txt",
            "link-in",
            "link-out",
            "sub/target.txt",
            "tab\there",
            "with space"
        ]
    );
    let read = |name: &str| std::fs::read_to_string(odd.join(name)).unwrap();
    assert_eq!(read("a\nb.txt"), "newline\n");
    assert_eq!(read("-dash"), "dash\n");
    assert_eq!(read("back\\slash"), "backslash\n");
    assert_eq!(read("link-in"), "inside\n");
    assert_eq!(read("link-out"), "outside\n");
    assert_eq!(read("dirlink/f.txt"), "in a linked folder\n");
    assert!(!std::fs::symlink_metadata(odd.join("link-out")).unwrap().file_type().is_symlink());
    assert!(
        log.contains("Skipped the broken symbolic link /root/metalfarm-work/qemu/qemu/out/dangling"),
        "{log}"
    );
}

/// A file that cannot be uploaded (a FIFO, a name that is not UTF-8, a link to a file
/// of /proc, whose reading may never end) fails the step with an error naming it; the
/// job goes on on its host, and nothing of the artifact is kept.
#[tokio::test]
async fn a_file_that_cannot_be_uploaded_is_a_step_error_naming_it() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: |
          mkdir -p fifo bytes kernel
          echo fine > fifo/a.txt
          mkfifo fifo/pipe
          echo fine > bytes/a.txt
          echo bad > "bytes/$(printf 'bad\377name')"
          ln -s /proc/version kernel/version
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: fifo, path: fifo/}
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: kernel, path: kernel/}
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: bytes, path: bytes/}
      - run: echo "still on the host"
"###;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let ran = run(definition(yaml, None, sha, Some(store.path().into())), &hosts).await;
    let log = &ran.log;
    assert!(ran.outcome.infra.is_none(), "{:?}\n{log}", ran.outcome.infra);
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert_eq!(
        (ran.step(2), ran.step(3), ran.step(4)),
        (Conclusion::Failure, Conclusion::Failure, Conclusion::Failure)
    );
    assert!(log.contains("still on the host"), "{log}");
    let errors: Vec<&str> = ran.outcome.annotations.iter().map(|a| a.message.as_str()).collect();
    assert!(
        errors.iter().any(|m| m
            .contains("cannot upload /root/metalfarm-work/qemu/qemu/fifo/pipe: it is not a regular file")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|m| m.contains(
            "cannot upload /root/metalfarm-work/qemu/qemu/bytes/bad\\xffname: its name is not UTF-8"
        )),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|m| m.contains(
            "cannot upload /root/metalfarm-work/qemu/qemu/kernel/version: it is a file of the kernel"
        )),
        "{errors:?}"
    );
    assert!(ran.outcome.artifacts.is_empty());
    assert!(
        files_under(store.path()).iter().all(|f| f.starts_with(".owner-")),
        "{:?}",
        files_under(store.path())
    );
}

/// The farm's own disk full is the farm's failure: the step fails saying so, the job
/// is not retried elsewhere (the host is fine), and half an artifact is not kept.
#[tokio::test]
async fn the_farms_full_disk_is_the_farms_failure() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let tiny = common::TinyDisk::mount(store.path());
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: mkdir -p out && head -c 1048576 /dev/zero > out/big.bin
      - uses: actions/upload-artifact@v4
        with: {name: big, path: out/}
      - if: always()
        run: echo "still on the host"
"###;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let ran = run(definition(yaml, None, sha, Some(store.path().into())), &hosts).await;
    let log = &ran.log;
    assert!(ran.outcome.infra.is_none(), "{:?}\n{log}", ran.outcome.infra);
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure, "log:\n{log}");
    assert_eq!(ran.step(2), Conclusion::Failure);
    let farm = ran.outcome.farm_failure.as_deref().expect("the farm's failure");
    assert!(farm.starts_with("The farm could not store artifact `big`: "), "{farm}");
    assert!(farm.contains("the farm's failure, not the job's or the host's"), "{farm}");
    assert!(log.contains("still on the host"), "{log}");
    assert!(!store.path().join("big").exists(), "half an artifact is not kept");
    drop(tiny);
}

/// `[server] artifact_limit`: an artifact larger than the limit per artifact, or one
/// that would take the run's artifacts past the limit per run, fails its step saying
/// which, and is not kept.
#[tokio::test]
async fn artifacts_are_limited_per_artifact_and_per_run() {
    let hosts = TestHosts::start(1);
    let store = scratch();
    let yaml = r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: |
          head -c 800 /dev/zero > a.bin
          head -c 1200 /dev/zero > b.bin
          head -c 600 /dev/zero > c.bin
      - uses: actions/upload-artifact@v4
        with: {name: first, path: a.bin}
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: too-big, path: b.bin}
      - uses: actions/upload-artifact@v4
        with: {name: second, path: c.bin}
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: third, path: c.bin}
"###;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let mut definition = definition(yaml, None, sha, Some(store.path().into()));
    definition.artifact_limit = metalfarm::config::ArtifactLimit { artifact: 1000, run: 1500 };
    let ran = run(definition, &hosts).await;
    let log = &ran.log;
    assert_eq!(ran.outcome.artifacts, ["first", "second"], "log:\n{log}");
    assert_eq!((ran.step(3), ran.step(5)), (Conclusion::Failure, Conclusion::Failure));
    let errors: Vec<&str> = ran.outcome.annotations.iter().map(|a| a.message.as_str()).collect();
    assert!(
        errors.iter().any(|m| {
            m.contains(
            "artifact `too-big` would hold 1200 bytes, more than the farm's limit of 1000 bytes per artifact \
             (`[server] artifact_limit`)"
        )
        }),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|m| m.contains("artifact `third` (600 bytes) would bring the run's artifacts to")
            && m.contains("more than the farm's limit of 1500 bytes per run")),
        "{errors:?}"
    );
    assert!(!store.path().join("too-big").exists() && !store.path().join("third").exists());
}
