//! The job runner on real OpenSSH test hosts, without a server: steps as GitHub's
//! runner runs them — environment layers and the file commands, outputs, `if` and the
//! status functions, continue-on-error, timeouts that kill the whole process tree,
//! cancellation, masking, annotations, reboots — and a host that dies mid-step; a step
//! ends when its shell exits, and the job's end kills every process it started.

mod common;

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use metalfarm::exec::host::HostTarget;
use metalfarm::exec::job::{run_job, Conclusion, JobDefinition, JobOutcome, RunnerEvent};
use metalfarm::workflow::event::{Event, RunInfo};
use metalfarm::workflow::load::{load, LoadOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::lab::{run_job_logged, target};
use common::testhost::TestHosts;

fn definition(yaml: &str, job: &str) -> JobDefinition {
    let loaded = load(yaml, &LoadOptions::default());
    let workflow =
        loaded.workflow.unwrap_or_else(|| panic!("workflow does not load: {:?}", loaded.diagnostics));
    let payload = serde_json::json!({
        "ref": "refs/heads/main",
        "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {"full_name": "lab/qemu", "name": "qemu", "owner": {"login": "lab"}},
        "sender": {"login": "alice"},
    });
    let event = Event::new("push", payload);
    JobDefinition::new(Arc::new(workflow), job, &event, &RunInfo::default(), ".github/workflows/ci.yml")
}

/// What a job left: its outcome and its log.
struct Ran {
    outcome: JobOutcome,
    log: Vec<String>,
}

impl Ran {
    fn log_text(&self) -> String {
        self.log.join("\n")
    }

    fn output(&self, step: i64) -> Conclusion {
        self.outcome.steps.iter().find(|s| s.number == step).map(|s| s.conclusion).expect("the step ran")
    }
}

async fn run_with(definition: JobDefinition, target: HostTarget, cancel: CancellationToken) -> Ran {
    let (outcome, log) = run_job_logged(&definition, &target, cancel).await;
    Ran { outcome, log }
}

async fn run(yaml: &str, hosts: &TestHosts) -> Ran {
    run_with(definition(yaml, "test"), target(hosts, hosts.host(0)), CancellationToken::new()).await
}

#[tokio::test]
async fn environment_layers_file_commands_and_runner_variables() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
env: {LAYER: workflow, WF_ONLY: wf}
defaults:
  run: {working-directory: sub}
jobs:
  test:
    runs-on: self-hosted
    env: {LAYER: job, JOB_ONLY: "job-${{ github.event_name }}"}
    steps:
      - run: mkdir -p "$GITHUB_WORKSPACE/sub"
        working-directory: .
      - name: layers
        env: {LAYER: step}
        run: |
          echo "layer=$LAYER wf=$WF_ONLY job=$JOB_ONLY pwd=$(pwd)"
          echo "ci=$CI actions=$GITHUB_ACTIONS repo=$GITHUB_REPOSITORY sha=$GITHUB_SHA ref=$GITHUB_REF job=$GITHUB_JOB"
          echo "runner=$RUNNER_NAME os=$RUNNER_OS arch=$RUNNER_ARCH"
          grep -q '"ref": *"refs/heads/main"' "$GITHUB_EVENT_PATH" && echo "event file ok"
          echo "FROM_ENV_FILE=one" >> "$GITHUB_ENV"
          printf 'MULTI<<EOF\nline 1\nline 2\nEOF\n' >> "$GITHUB_ENV"
          mkdir -p "$HOME/extra-bin" && printf '#!/bin/sh\necho extra tool ran\n' > "$HOME/extra-bin/extra-tool"
          chmod +x "$HOME/extra-bin/extra-tool" && echo "$HOME/extra-bin" >> "$GITHUB_PATH"
          echo "## Summary of step 2" >> "$GITHUB_STEP_SUMMARY"
      - run: |
          echo "later layer=$LAYER from-file=$FROM_ENV_FILE"
          echo "multi=[$MULTI]" | tr '\n' '|'; echo
          extra-tool
          echo "expr env=${{ env.FROM_ENV_FILE }}"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert!(log.contains("layer=step wf=wf job=job-push pwd=/root/metalfarm-work/qemu/qemu/sub"), "{log}");
    assert!(
        log.contains("ci=true actions=true repo=lab/qemu sha=0123456789abcdef0123456789abcdef01234567 ref=refs/heads/main job=test"),
        "{log}"
    );
    assert!(log.contains("runner=host-1 os=Linux arch=X64"), "{log}");
    assert!(log.contains("event file ok"), "{log}");
    assert!(log.contains("later layer=job from-file=one"), "{log}");
    assert!(log.contains("multi=[line 1|line 2]|"), "{log}");
    assert!(log.contains("extra tool ran"), "{log}");
    assert!(log.contains("expr env=one"), "{log}");
    assert!(ran.outcome.summary.contains("## Summary of step 2"));
}

#[tokio::test]
async fn outputs_status_functions_and_continue_on_error() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    outputs:
      greeting: ${{ steps.produce.outputs.greeting }}
      letters: ${{ steps.produce.outputs.letters }}
    steps:
      - id: produce
        run: |
          echo "greeting=hello" >> "$GITHUB_OUTPUT"
          { echo "letters<<END"; echo a; echo b; echo END; } >> "$GITHUB_OUTPUT"
      - run: echo "got ${{ steps.produce.outputs.greeting }} outcome=${{ steps.produce.outcome }}"
      - id: flaky
        continue-on-error: true
        run: exit 3
      - run: echo "after flaky outcome=${{ steps.flaky.outcome }} conclusion=${{ steps.flaky.conclusion }} status=${{ job.status }}"
      - id: broken
        run: exit 1
      - run: echo "must not run"
      - if: failure()
        run: echo "failure() ran"
      - if: always()
        run: echo "always() ran"
      - if: success()
        run: echo "success() must not run"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure, "log:\n{log}");
    assert!(log.contains("got hello outcome=success"), "{log}");
    assert!(log.contains("after flaky outcome=failure conclusion=success status=success"), "{log}");
    assert!(!log.contains("\nmust not run") && !log.lines().any(|l| l == "must not run"), "{log}");
    assert!(log.lines().any(|l| l == "failure() ran"), "{log}");
    assert!(log.lines().any(|l| l == "always() ran"), "{log}");
    assert!(!log.lines().any(|l| l == "success() must not run"), "{log}");
    let flaky = &ran.outcome.steps[2];
    assert_eq!((flaky.outcome, flaky.conclusion), (Conclusion::Failure, Conclusion::Success));
    assert_eq!(ran.output(5), Conclusion::Failure);
    assert_eq!(ran.output(6), Conclusion::Skipped);
    assert_eq!(ran.output(9), Conclusion::Skipped);
    assert_eq!(ran.outcome.outputs.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(ran.outcome.outputs.get("letters").map(String::as_str), Some("a\nb"));
    assert!(
        ran.outcome.annotations.iter().any(|a| a.message == "Process completed with exit code 1."),
        "{:?}",
        ran.outcome.annotations
    );
}

#[tokio::test]
async fn a_step_timeout_kills_the_whole_process_tree() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - timeout-minutes: 0.05
        run: |
          sh -c 'sleep 600' &
          echo $! > /root/child.pid
          echo started
          sleep 600
      - if: always()
        run: echo "cleanup ran"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure, "log:\n{log}");
    assert_eq!(ran.output(1), Conclusion::Failure);
    assert!(log.lines().any(|l| l == "cleanup ran"), "{log}");
    let child = hosts.host(0).run("cat /root/child.pid");
    let pid = String::from_utf8_lossy(&child.stdout).trim().to_owned();
    assert!(!pid.is_empty(), "the step wrote its child's pid");
    let alive = hosts.host(0).run(&format!("kill -0 {pid}"));
    assert!(!alive.status.success(), "the step's background child {pid} was killed too");
    let sleepers = hosts.host(0).run("pgrep -x sleep");
    assert!(!sleepers.status.success(), "no sleep is left: {}", String::from_utf8_lossy(&sleepers.stdout));
}

#[tokio::test]
async fn cancelling_stops_the_step_and_runs_only_always_steps() {
    let hosts = TestHosts::start(1);
    let cancel = CancellationToken::new();
    let definition = definition(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: echo working; sleep 600
      - run: echo "next step must not run"
      - if: cancelled()
        run: echo "cancelled() ran"
      - if: always()
        run: echo "always() ran"
"###,
        "test",
    );
    // Cancelled while the first step sleeps.
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            cancel.cancel();
        })
    };
    let ran = run_with(definition, target(&hosts, hosts.host(0)), cancel).await;
    stopper.await.unwrap();
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Cancelled, "log:\n{log}");
    assert!(log.lines().any(|l| l == "working"), "{log}");
    assert_eq!(ran.output(1), Conclusion::Cancelled);
    assert_eq!(ran.output(2), Conclusion::Skipped);
    assert!(log.lines().any(|l| l == "cancelled() ran"), "{log}");
    assert!(log.lines().any(|l| l == "always() ran"), "{log}");
    assert!(!hosts.host(0).run("pgrep -x sleep").status.success(), "the step's sleep was killed");
}

#[tokio::test]
async fn secrets_and_added_masks_never_reach_the_log_or_annotations() {
    let hosts = TestHosts::start(1);
    let mut definition = definition(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - name: deploy with ${{ secrets.DEPLOY_TOKEN }}
        env: {TOKEN: "${{ secrets.DEPLOY_TOKEN }}"}
        run: |
          echo "token is $TOKEN"
          echo "::warning file=src/main.c,line=4::leaked $TOKEN"
          value=$(printf 'runtime-%s-%s' value 42)
          echo "::add-mask::$value"
          echo "later $value and ${{ secrets.DEPLOY_TOKEN }}"
          echo "summary has $TOKEN" >> "$GITHUB_STEP_SUMMARY"
"###,
        "test",
    );
    definition.set_secrets(IndexMap::from([("DEPLOY_TOKEN".to_owned(), "s3cr3t-v4lue".to_owned())]));
    let ran = run_with(definition, target(&hosts, hosts.host(0)), CancellationToken::new()).await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert!(log.contains("token is ***"), "{log}");
    assert!(log.contains("later *** and ***"), "{log}");
    assert_eq!(ran.outcome.steps[0].name, "deploy with ***");
    for leak in ["s3cr3t-v4lue", "runtime-value-42"] {
        assert!(!log.contains(leak), "{leak} leaked into the log:\n{log}");
        assert!(!ran.outcome.summary.contains(leak));
        assert!(ran.outcome.annotations.iter().all(|a| !a.message.contains(leak)));
    }
    let warning =
        ran.outcome.annotations.iter().find(|a| a.file.as_deref() == Some("src/main.c")).expect("annotation");
    assert_eq!((warning.line, warning.message.as_str()), (Some(4), "leaked ***"));
}

#[tokio::test]
async fn workflow_commands_become_annotations_and_groups() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: |
          echo "::group::Compile"
          echo "compiling"
          echo "::endgroup::"
          echo "::error file=hw/kvm.c,line=10,endLine=12,title=Build error::undefined symbol"
          echo "::notice::all done"
          echo "::stop-commands::pause-token"
          echo "::error::not a command while stopped"
          echo "::pause-token::"
          echo "::warning col=3,line=2,file=x.c::back on"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert!(log.contains("##[group]Compile\ncompiling\n##[endgroup]"), "{log}");
    assert!(log.lines().any(|l| l == "::error::not a command while stopped"), "{log}");
    let found: Vec<(Option<&str>, Option<u32>, &str)> =
        ran.outcome.annotations.iter().map(|a| (a.file.as_deref(), a.line, a.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (Some("hw/kvm.c"), Some(10), "undefined symbol"),
            (None, None, "all done"),
            (Some("x.c"), Some(2), "back on"),
        ]
    );
    assert_eq!(ran.outcome.annotations[0].title.as_deref(), Some("Build error"));
    assert_eq!(ran.outcome.annotations[0].end_line, Some(12));
}

#[tokio::test]
async fn reboot_comes_back_with_a_new_boot_id() {
    let hosts = TestHosts::start(1);
    let before = hosts.host(0).boot_id();
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    outputs:
      before: ${{ steps.before.outputs.boot }}
      after: ${{ steps.after.outputs.boot }}
    steps:
      - id: before
        run: |
          echo "boot=$(cat /proc/sys/kernel/random/boot_id)" >> "$GITHUB_OUTPUT"
          touch /tmp/gone-after-reboot /root/kept-after-reboot
      - uses: metalfarm/reboot@v1
        with: {timeout: 60s}
      - id: after
        run: |
          echo "boot=$(cat /proc/sys/kernel/random/boot_id)" >> "$GITHUB_OUTPUT"
          test ! -e /tmp/gone-after-reboot
          test -e /root/kept-after-reboot
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    let (first, second) = (&ran.outcome.outputs["before"], &ran.outcome.outputs["after"]);
    assert_eq!(first, &before);
    assert_ne!(first, second, "a new boot id after the reboot");
    assert_eq!(second, &hosts.host(0).boot_id());
}

#[tokio::test]
async fn shells_as_github_runs_them() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    defaults:
      run: {shell: bash}
    steps:
      - id: pipefail
        continue-on-error: true
        run: false | true
      - shell: sh
        run: echo "sh says $0"
      - shell: perl {0}
        run: print "perl says hi\n";
      - run: echo "$-" | grep -q e && echo "errexit on"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    assert_eq!(ran.outcome.steps[0].outcome, Conclusion::Failure, "`shell: bash` has pipefail: {log}");
    assert!(log.contains("sh says /root/metalfarm-work/_temp/step-2"), "{log}");
    assert!(log.lines().any(|l| l == "perl says hi"), "{log}");
    assert!(log.lines().any(|l| l == "errexit on"), "{log}");
    assert!(log.contains("shell: bash --noprofile --norc -eo pipefail"), "{log}");
}

#[tokio::test]
async fn a_host_that_dies_mid_step_is_an_infrastructure_failure() {
    let hosts = TestHosts::start(1);
    let definition = definition(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: echo working; sleep 600
"###,
        "test",
    );
    let target = target(&hosts, hosts.host(0));
    let running = tokio::spawn(async move { run_with(definition, target, CancellationToken::new()).await });
    // Killed (sshd and every process of the host) while the step sleeps.
    tokio::time::sleep(Duration::from_secs(2)).await;
    hosts.host(0).kill();
    let ran = running.await.unwrap();
    let log = ran.log_text();
    let failure =
        ran.outcome.infra.as_ref().unwrap_or_else(|| panic!("an infrastructure failure; log:\n{log}"));
    assert!(failure.reason.contains("host-1"), "{}", failure.reason);
    assert!(log.contains("Infrastructure failure"), "{log}");
    // The step cut short is completed as failed, not left in progress.
    assert_eq!(ran.output(1), Conclusion::Failure);
}

#[tokio::test]
async fn a_full_disk_is_an_infrastructure_failure_before_any_step() {
    let hosts = TestHosts::start(1);
    // The home folder fills up: a 1 MiB file system over it.
    let full = hosts.host(0).run("mount -t tmpfs -o size=1m tmpfs /root");
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let ran = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      - run: echo never\n",
        &hosts,
    )
    .await;
    let failure =
        ran.outcome.infra.as_ref().unwrap_or_else(|| panic!("an infrastructure failure: {}", ran.log_text()));
    assert!(failure.reason.contains("disk of host host-1 is full"), "{}", failure.reason);
    assert!(ran.outcome.steps.is_empty());
}

#[tokio::test]
async fn output_reaches_the_observer_while_the_step_still_runs() {
    let hosts = TestHosts::start(1);
    let definition = definition(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - run: |\n          echo first\n          while [ ! -e /root/go ]; do sleep 0.1; done\n          echo second\n",
        "test",
    );
    let (events, mut heard) = mpsc::channel(64);
    let target = target(&hosts, hosts.host(0));
    let job =
        tokio::spawn(async move { run_job(&definition, &target, events, CancellationToken::new()).await });
    // The step waits for /root/go, which is made only once its first line was heard.
    let mut log = Vec::new();
    while !log.iter().any(|l| l == "first") {
        match tokio::time::timeout(Duration::from_secs(60), heard.recv()).await {
            Ok(Some(RunnerEvent::Log(lines))) => log.extend(lines),
            Ok(Some(_)) => {}
            other => panic!("the first line never came while the step ran: {other:?}; log: {log:?}"),
        }
    }
    assert!(hosts.host(0).run("touch /root/go").status.success());
    while let Some(event) = heard.recv().await {
        if let RunnerEvent::Log(lines) = event {
            log.extend(lines);
        }
    }
    let outcome = job.await.unwrap();
    assert_eq!(outcome.conclusion, Conclusion::Success, "{log:?}");
    assert!(log.iter().any(|l| l == "second"), "{log:?}");
}

#[tokio::test]
async fn a_job_timeout_fails_the_job_and_skips_what_is_left() {
    let hosts = TestHosts::start(1);
    let ran = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    timeout-minutes: 0.05\n    steps:\n      \
         - run: sleep 600\n      - run: echo never\n",
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure, "log:\n{log}");
    assert_eq!(ran.output(2), Conclusion::Skipped);
    assert!(
        ran.outcome.annotations.iter().any(|a| a.message.contains("maximum execution time of 0.05 minutes")),
        "{:?}",
        ran.outcome.annotations
    );
    assert!(!hosts.host(0).run("pgrep -x sleep").status.success(), "the step's sleep was killed");
}

/// Stopping a step goes over the same connection as its output: the output must be
/// drained meanwhile, or the signal never gets through and the job hangs.
#[tokio::test]
async fn a_step_that_never_stops_printing_still_times_out() {
    let hosts = TestHosts::start(1);
    let ran = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - timeout-minutes: 0.05\n        run: while :; do echo \"line $((n += 1))\"; done\n      \
         - if: always()\n        run: echo cleanup ran\n",
        &hosts,
    )
    .await;
    assert_eq!(ran.outcome.conclusion, Conclusion::Failure);
    assert!(ran.log.iter().any(|l| l == "line 1"), "the step's output was logged");
    assert!(ran.log.iter().any(|l| l == "cleanup ran"), "the always() step ran");
}

/// No process a job started outlives it, however it detached, and its `_temp` is gone.
fn assert_the_job_left_nothing(hosts: &TestHosts, log: &str) {
    let sleepers = hosts.host(0).run("pgrep -a sleep");
    assert!(
        !sleepers.status.success(),
        "the job's processes outlived it: {}\nlog:\n{log}",
        String::from_utf8_lossy(&sleepers.stdout)
    );
    let temp = hosts.host(0).run("ls -A /root/metalfarm-work/_temp");
    assert!(!temp.status.success(), "the job's _temp is left: {}", String::from_utf8_lossy(&temp.stdout));
    assert!(
        hosts.host(0).run("test -d /root/metalfarm-work/qemu/qemu").status.success(),
        "the workspace stays"
    );
}

/// GitHub's rule: a step ends when its shell exits, though a background child still
/// holds its output, and its file commands are read as usual. At the end of the job
/// every process it started is killed — one in its own session (`setsid`) too, and
/// one whose step set `RUNNER_TRACKING_ID` in its `env` — and `_temp` (the wrapper
/// scripts hold secrets) is wiped.
#[tokio::test]
async fn a_step_ends_with_its_shell_and_the_job_ends_what_it_left() {
    let hosts = TestHosts::start(1);
    let ran = run(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - id: holder
        run: |
          (sleep 30; echo late) &
          echo "started=yes" >> "$GITHUB_OUTPUT"
          echo started
      - env:
          RUNNER_TRACKING_ID: ""
        run: |
          setsid sleep 300 &
          nohup sleep 301 > /dev/null 2>&1 &
          echo "tracked as $RUNNER_TRACKING_ID"
      - run: echo "output ${{ steps.holder.outputs.started }}"
"###,
        &hosts,
    )
    .await;
    let log = ran.log_text();
    assert_eq!(ran.outcome.conclusion, Conclusion::Success, "log:\n{log}");
    let holder = &ran.outcome.steps[0];
    assert!(
        holder.duration < Duration::from_secs(10),
        "the step lasted {:?}: it waited for its child",
        holder.duration
    );
    assert!(ran.log.iter().any(|l| l == "started"), "{log}");
    assert!(ran.log.iter().any(|l| l == "output yes"), "the step's outputs were read: {log}");
    assert!(ran.log.iter().any(|l| l.starts_with("tracked as metalfarm_")), "{log}");
    assert!(!ran.log.iter().any(|l| l == "late"), "{log}");
    assert!(ran.log.iter().any(|l| l == "Cleaning up orphan processes"), "{log}");
    let terminated = ran.log.iter().filter(|l| l.starts_with("Terminate orphan process: pid (")).count();
    assert!(terminated >= 4, "the subshell and three sleeps: {log}");
    assert_the_job_left_nothing(&hosts, &log);
}

/// The same end after a failed job and after a cancelled one.
#[tokio::test]
async fn a_failed_or_cancelled_job_leaves_no_process_and_no_temp() {
    let hosts = TestHosts::start(1);
    let failed = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - run: setsid sleep 300 & exit 3\n",
        &hosts,
    )
    .await;
    assert_eq!(failed.outcome.conclusion, Conclusion::Failure, "log:\n{}", failed.log_text());
    assert_the_job_left_nothing(&hosts, &failed.log_text());

    let cancel = CancellationToken::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            cancel.cancel();
        })
    };
    let definition = definition(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - run: |\n          setsid sleep 300 &\n          sleep 600\n",
        "test",
    );
    let cancelled = run_with(definition, target(&hosts, hosts.host(0)), cancel).await;
    stopper.await.unwrap();
    assert_eq!(cancelled.outcome.conclusion, Conclusion::Cancelled, "log:\n{}", cancelled.log_text());
    assert_the_job_left_nothing(&hosts, &cancelled.log_text());
}

/// A line over the 1 MiB cut is logged in pieces; a secret around the cut is still
/// masked whole, wherever it falls (the attack of issue 11: offsets 1, 5, 10, 15).
#[tokio::test]
async fn a_secret_split_by_the_line_cut_is_still_masked() {
    let hosts = TestHosts::start(1);
    let mut definition = definition(
        r###"
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - env: {SECRET: "${{ secrets.TOKEN }}"}
        run: |
          for off in 1 5 10 15; do
            head -c $((1048576-off)) /dev/zero | tr '\0' B; printf '%s\n' "$SECRET"
          done
"###,
        "test",
    );
    definition.set_secrets(IndexMap::from([("TOKEN".to_owned(), "hunter2-s3cret-value".to_owned())]));
    let ran = run_with(definition, target(&hosts, hosts.host(0)), CancellationToken::new()).await;
    assert_eq!(ran.outcome.conclusion, Conclusion::Success);
    let log = ran.log_text();
    for piece in ["hunter", "s3cret", "value"] {
        assert!(!log.contains(piece), "a piece of the secret ({piece}) leaked");
    }
    // Each of the four lines ends in its mask (a piece of its own when the cut moved).
    assert_eq!(ran.log.iter().filter(|l| l.ends_with("B***") || l.as_str() == "***").count(), 4);
}
