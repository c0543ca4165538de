//! `metalfarm run WORKFLOW --host ADDR` as a user runs it: the built binary against real
//! OpenSSH test hosts, no server — jobs in `needs` order with outputs, the live log and
//! the table of steps, exit codes, host keys pinned from known_hosts or trusted on
//! first use, masked secrets, `--job`, and a workflow that does not load.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metalfarm::exec::keys::{fingerprint, parse_public_key};

use common::testhost::{TestHost, TestHosts};

/// A folder for the test's files (workflow, known_hosts), outside /tmp like the hosts'.
fn scratch() -> tempfile::TempDir {
    common::testhost::scratch_dir("cli-run-")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// A `known_hosts` line for the host, as `ssh` writes it for a port other than 22.
fn known_hosts_line(host: &TestHost, key: &str) -> String {
    format!("[{}]:{} {key}\n", host.address(), host.port())
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// `metalfarm run WORKFLOW --host … --port … --identity <farm key> ARGS…`, in `dir`.
fn run(hosts: &TestHosts, dir: &Path, workflow: &Path, args: &[&str]) -> Ran {
    run_with_env(hosts, dir, workflow, args, &[])
}

/// [`run`] with these environment variables set.
fn run_with_env(hosts: &TestHosts, dir: &Path, workflow: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let host = hosts.host(0);
    let out: Output = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .envs(env.iter().copied())
        .arg("run")
        .arg(workflow)
        .args(["--host", &host.address(), "--port", &host.port().to_string()])
        .arg("--identity")
        .arg(hosts.farm_key_path())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run metalfarm");
    Ran {
        code: out.status.code().expect("metalfarm exited"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// The table at the end of stdout, times masked.
fn table(stdout: &str) -> String {
    let start = stdout.rfind("\nJOB ").expect("the table of jobs and steps") + 1;
    let time = regex::Regex::new(r"\d+\.\ds$").unwrap();
    stdout[start..].lines().map(|line| time.replace(line, "#.#s").into_owned() + "\n").collect()
}

const TWO_JOBS: &str = r#"
name: two jobs
on: push
jobs:
  build:
    runs-on: self-hosted
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - id: v
        name: pick a version
        run: echo "version=1.2.3" >> "$GITHUB_OUTPUT"
      - name: report
        run: echo "built on $(hostname)"
  test:
    needs: build
    runs-on: self-hosted
    steps:
      - name: use the version
        run: echo "testing version ${{ needs.build.outputs.version }} (${{ needs.build.result }})"
"#;

#[test]
fn two_jobs_in_needs_order_with_outputs_then_a_table() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(dir.path(), "ci.yml", TWO_JOBS);
    let ran = run(&hosts, dir.path(), &workflow, &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("[build] built on host-1\n"), "{ran:?}");
    assert!(ran.stdout.contains("[test] testing version 1.2.3 (success)\n"), "{ran:?}");
    let built = ran.stdout.find("[build] built on").unwrap();
    let tested = ran.stdout.find("[test] testing version").unwrap();
    assert!(built < tested, "build runs before the job that needs it: {ran:?}");
    // Trust on first use: the host's fingerprint on stderr.
    let host_fingerprint = fingerprint(&parse_public_key(&hosts.host(0).host_key()).unwrap());
    assert!(ran.stderr.contains(&host_fingerprint), "{ran:?}");
    insta::assert_snapshot!(table(&ran.stdout), @r"
    JOB    STEP                RESULT   TIME
    build                      success  #.#s
           1. pick a version   success  #.#s
           2. report           success  #.#s
    test                       success  #.#s
           1. use the version  success  #.#s
    ");
}

#[test]
fn a_failing_job_exits_1_and_skips_the_jobs_that_need_it() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "fail.yml",
        r#"
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: echo "about to fail"; exit 3
      - name: cleanup
        if: always()
        run: echo "cleaning up"
  test:
    needs: build
    runs-on: self-hosted
    steps:
      - run: echo "never printed"
  report:
    needs: build
    if: failure()
    runs-on: self-hosted
    steps:
      - run: echo "build failed, reporting"
"#,
    );
    let ran = run(&hosts, dir.path(), &workflow, &[]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("[build] about to fail\n"), "{ran:?}");
    assert!(ran.stdout.contains("[build] cleaning up\n"), "{ran:?}");
    assert!(!ran.stdout.contains("never printed"), "{ran:?}");
    assert!(ran.stdout.contains("[report] build failed, reporting\n"), "{ran:?}");
    let table = table(&ran.stdout);
    assert!(table.lines().any(|l| l.starts_with("build ") && l.contains("failure")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("test ") && l.contains("skipped")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("report ") && l.contains("success")), "{table}");
}

#[test]
fn known_hosts_pins_the_key_and_a_wrong_key_is_refused_with_both_fingerprints() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "one.yml",
        "on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo pinned ok\n",
    );
    let right = write(dir.path(), "known_hosts", &known_hosts_line(host, &host.host_key()));
    let ran = run(&hosts, dir.path(), &workflow, &["--known-hosts", right.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("pinned ok\n"), "{ran:?}");
    assert!(!ran.stderr.contains("first use"), "a pinned key is not trusted on first use: {ran:?}");

    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSR04boqN99vyFHrRF7Zp25IR/gyR0ncjyWYg9zCTVj";
    let wrong = write(dir.path(), "wrong_known_hosts", &known_hosts_line(host, other));
    let ran = run(&hosts, dir.path(), &workflow, &["--known-hosts", wrong.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(!ran.stdout.contains("pinned ok"), "{ran:?}");
    let offered = fingerprint(&parse_public_key(&host.host_key()).unwrap());
    assert!(ran.stderr.contains("SHA256:0eBB/AMp8oxY/gSHLxhy2bNUnmGd9GjWtdWm/bc6YO8"), "{ran:?}");
    assert!(ran.stderr.contains(&offered), "{ran:?}");

    let unlisted = write(dir.path(), "unlisted", &format!("elsewhere {other}\n"));
    let ran = run(&hosts, dir.path(), &workflow, &["--known-hosts", unlisted.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("lists no key for"), "{ran:?}");
}

#[test]
fn secrets_are_masked_and_job_selects_one_job() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "secret.yml",
        r#"
on:
  workflow_dispatch:
    inputs:
      greeting: {type: string, default: hi}
jobs:
  first:
    runs-on: self-hosted
    steps:
      - run: echo "first ran"
  second:
    needs: first
    runs-on: self-hosted
    steps:
      - run: |
          echo "the token is ${{ secrets.TOKEN }}"
          echo "from env: $TOKEN, input ${{ inputs.greeting }}"
        env:
          TOKEN: ${{ secrets.TOKEN }}
"#,
    );
    let ran = run(
        &hosts,
        dir.path(),
        &workflow,
        &["--job", "second", "--secret", "TOKEN=hunter2-s3cret", "--input", "greeting=hello"],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(!ran.stdout.contains("hunter2-s3cret"), "{ran:?}");
    assert!(ran.stdout.contains("the token is ***\n"), "{ran:?}");
    assert!(ran.stdout.contains("from env: ***, input hello\n"), "{ran:?}");
    // One job: no prefix, and `first` did not run.
    assert!(!ran.stdout.contains("first ran"), "{ran:?}");
    assert!(!ran.stdout.contains("[second]"), "{ran:?}");

    let ran = run(&hosts, dir.path(), &workflow, &["--job", "third"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("has no job `third` (its jobs: first, second)"), "{ran:?}");
}

#[test]
fn a_workflow_that_does_not_load_exits_2_with_path_line_col() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "bad.yml",
        "on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo hi\n        shel: bash\n",
    );
    let ran = run(&hosts, dir.path(), &workflow, &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    let path = workflow.display().to_string();
    assert!(ran.stderr.starts_with(&format!("{path}:7:9: ")), "{ran:?}");
    assert!(ran.stdout.is_empty(), "{ran:?}");
}

#[test]
fn an_unreachable_host_exits_2() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "one.yml",
        "on: push\njobs:\n  one:\n    runs-on: self-hosted\n    steps:\n      - run: echo hi\n",
    );
    hosts.host(0).kill();
    let ran = run(&hosts, dir.path(), &workflow, &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("infrastructure failure"), "{ran:?}");
    assert!(ran.stderr.contains(&hosts.host(0).address()), "{ran:?}");
}

#[test]
fn ctrl_c_cancels_the_running_job_whose_always_steps_still_run() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "long.yml",
        r#"
on: push
jobs:
  long:
    runs-on: self-hosted
    steps:
      - run: echo "sleeping now"; sleep 60
      - name: always
        if: always()
        run: echo "always ran"
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .arg("run")
        .arg(&workflow)
        .args(["--host", &host.address(), "--port", &host.port().to_string()])
        .arg("--identity")
        .arg(hosts.farm_key_path())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run metalfarm");
    // Killed on any early return, so no metalfarm outlives the test.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        seen.push(line.clone());
        if line == "sleeping now" {
            break;
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("sleeping now"), "{seen:?}");
    // SAFETY: kill(2) on the child's pid, which is still ours (not waited for).
    assert_eq!(unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(|l| l.expect("stdout line")).collect();
    let status = child.0.wait().expect("metalfarm ends after Ctrl-C");
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(rest.iter().any(|l| l == "always ran"), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("long ") && l.contains("cancelled")), "{rest:?}");
}

#[test]
fn uploaded_artifacts_land_in_the_current_folder() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "artifact.yml",
        r#"
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: mkdir -p out && echo "the build's result" > out/result.txt
      - uses: actions/upload-artifact@v4
        with:
          name: results
          path: out/result.txt
"#,
    );
    let ran = run(&hosts, dir.path(), &workflow, &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let artifacts = dir.path().join("metalfarm-artifacts/results");
    let files = common::files_with_ext(&artifacts, &[".txt"]);
    assert_eq!(files.len(), 1, "{files:?} in {}: {ran:?}", artifacts.display());
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "the build's result\n");
}

#[test]
fn an_event_from_a_payload_file_and_a_matrix_job_selected() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "matrix.yml",
        r#"
on: pull_request
jobs:
  lint:
    runs-on: self-hosted
    steps:
      - run: echo "lint ran"
  test:
    runs-on: self-hosted
    strategy:
      matrix:
        suite: [sanity, stable]
    steps:
      - run: echo "suite ${{ matrix.suite }} for ${{ github.event_name }} of ${{ github.event.pull_request.head.ref }}"
"#,
    );
    let payload = write(
        dir.path(),
        "payload.json",
        r#"{"action": "opened", "number": 7,
            "pull_request": {"number": 7, "head": {"ref": "topic", "sha": "1111111111111111111111111111111111111111"},
                             "base": {"ref": "main", "sha": "2222222222222222222222222222222222222222"}},
            "repository": {"name": "qemu", "full_name": "lab/qemu", "owner": {"login": "lab"}}}"#,
    );
    let ran = run(
        &hosts,
        dir.path(),
        &workflow,
        &["--job", "test", "--event", "pull_request", "--payload", payload.to_str().unwrap()],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(!ran.stdout.contains("lint ran"), "{ran:?}");
    for suite in ["sanity", "stable"] {
        let line = format!("] suite {suite} for pull_request of topic\n");
        assert!(ran.stdout.contains(&line), "{line:?} in {ran:?}");
    }
}

/// The 1 MiB line cut of issue 11: a secret around the cut is masked whole on stdout.
#[test]
fn a_secret_split_by_the_line_cut_is_still_masked() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "long-lines.yml",
        r#"
on: push
jobs:
  long:
    runs-on: self-hosted
    steps:
      - env: {SECRET: "${{ secrets.TOKEN }}"}
        run: |
          for off in 1 5 10 15; do
            head -c $((1048576-off)) /dev/zero | tr '\0' B; printf '%s\n' "$SECRET"
          done
"#,
    );
    let ran = run(&hosts, dir.path(), &workflow, &["--secret", "TOKEN=hunter2-s3cret-value"]);
    assert_eq!(ran.code, 0, "exit {}: {}", ran.code, ran.stderr);
    for piece in ["hunter", "s3cret", "value"] {
        assert!(!ran.stdout.contains(piece), "a piece of the secret ({piece}) leaked");
    }
    // Each of the four lines ends in its mask (a piece of its own when the cut moved).
    assert_eq!(ran.stdout.lines().filter(|l| *l == "***" || l.ends_with("B***")).count(), 4);
}

/// Secrets need not be on the command line, where every user sees them: `--secret NAME`
/// takes the environment variable's value, `--secret-file` reads `NAME = "value"` lines.
#[test]
fn secrets_from_the_environment_and_a_file() {
    let hosts = TestHosts::start(1);
    let dir = scratch();
    let workflow = write(
        dir.path(),
        "secrets.yml",
        r#"
on: push
jobs:
  check:
    runs-on: self-hosted
    steps:
      - run: |
          [ "$FROM_ENV" = env-s3cret-1 ] && echo "env secret arrived: $FROM_ENV"
          [ "$FROM_FILE" = file-s3cret-2 ] && echo "file secret arrived: $FROM_FILE"
        env:
          FROM_ENV: ${{ secrets.FROM_ENV }}
          FROM_FILE: ${{ secrets.FROM_FILE }}
"#,
    );
    let file =
        write(dir.path(), "secrets.toml", "FROM_FILE = \"file-s3cret-2\"\nFROM_ENV = \"overridden\"\n");
    let args = ["--secret-file", file.to_str().unwrap(), "--secret", "FROM_ENV"];
    let ran = run_with_env(&hosts, dir.path(), &workflow, &args, &[("FROM_ENV", "env-s3cret-1")]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("env secret arrived: ***\n"), "{ran:?}");
    assert!(ran.stdout.contains("file secret arrived: ***\n"), "{ran:?}");
    assert!(!ran.stdout.contains("s3cret"), "{ran:?}");

    let ran = run(&hosts, dir.path(), &workflow, &["--secret", "NOT_IN_THE_ENVIRONMENT"]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("no environment variable `NOT_IN_THE_ENVIRONMENT`"), "{ran:?}");
    let bad = write(dir.path(), "bad.toml", "TOKEN = 3\n");
    let ran = run(&hosts, dir.path(), &workflow, &["--secret-file", bad.to_str().unwrap()]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("secret `TOKEN` in"), "{ran:?}");
}
