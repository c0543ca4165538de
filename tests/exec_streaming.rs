//! A step's output on its way to the log, on a real OpenSSH test host: lines arrive
//! while the step runs (not when it ends), and a step that never stops printing can
//! still be stopped — its output is drained while the runner signals its processes
//! over the same connection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use metalfarm::exec::host::HostTarget;
use metalfarm::exec::job::{run_job, Conclusion, JobDefinition, JobOutcome, RunnerEvent};
use metalfarm::exec::keys::load_or_generate_farm_key;
use metalfarm::exec::ssh::{HostKeyPolicy, SshOptions};
use metalfarm::workflow::event::{Event, RunInfo};
use metalfarm::workflow::load::{load, LoadOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::testhost::TestHosts;

/// A job of `yaml` (job id `test`) on the first test host; every event with when it
/// arrived.
async fn run(yaml: &str, hosts: &TestHosts) -> (JobOutcome, Vec<(Instant, RunnerEvent)>) {
    let host = hosts.host(0);
    let key = load_or_generate_farm_key(hosts.farm_key_path()).expect("the test farm key");
    let target = HostTarget {
        name: host.name().to_owned(),
        address: host.address(),
        port: host.port(),
        arch: "X64".into(),
        ssh: SshOptions {
            user: "root".into(),
            key: Arc::new(key),
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(1),
            keepalive_max: 3,
        },
        host_key: HostKeyPolicy::Pinned(host.host_key()),
        reconnect_grace: Duration::from_secs(3),
    };
    let loaded = load(yaml, &LoadOptions::default());
    let workflow =
        loaded.workflow.unwrap_or_else(|| panic!("workflow does not load: {:?}", loaded.diagnostics));
    let payload = serde_json::json!({
        "ref": "refs/heads/main",
        "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {"full_name": "lab/qemu", "name": "qemu", "owner": {"login": "lab"}},
        "sender": {"login": "alice"},
    });
    let definition = JobDefinition::new(
        Arc::new(workflow),
        "test",
        &Event::new("push", payload),
        &RunInfo::default(),
        ".github/workflows/ci.yml",
    );
    let (events, mut heard) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(event) = heard.recv().await {
            all.push((Instant::now(), event));
        }
        all
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        run_job(&definition, &target, events, CancellationToken::new()),
    )
    .await
    .expect("the job ends within a minute");
    (outcome, collector.await.expect("collector"))
}

fn logged(event: &RunnerEvent, text: &str) -> bool {
    matches!(event, RunnerEvent::Log(lines) if lines.iter().any(|l| l == text))
}

#[tokio::test]
async fn lines_reach_the_log_while_the_step_runs() {
    let hosts = TestHosts::start(1);
    let (outcome, events) = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - run: |\n          echo first\n          sleep 3\n          echo second\n",
        &hosts,
    )
    .await;
    assert_eq!(outcome.conclusion, Conclusion::Success);
    let at = |found: &dyn Fn(&RunnerEvent) -> bool| {
        events.iter().find(|(_, e)| found(e)).map(|(at, _)| *at).expect("the event arrived")
    };
    let first = at(&|e| logged(e, "first"));
    let second = at(&|e| logged(e, "second"));
    let completed = at(&|e| matches!(e, RunnerEvent::StepCompleted { number: 1, .. }));
    assert!(second.duration_since(first) >= Duration::from_secs(2), "`first` arrived only with `second`");
    assert!(completed >= second);
}

#[tokio::test]
async fn a_step_that_never_stops_printing_still_times_out() {
    let hosts = TestHosts::start(1);
    let started = Instant::now();
    let (outcome, events) = run(
        "on: push\njobs:\n  test:\n    runs-on: self-hosted\n    steps:\n      \
         - timeout-minutes: 0.05\n        run: while :; do echo \"line $((n += 1))\"; done\n      \
         - if: always()\n        run: echo cleanup ran\n",
        &hosts,
    )
    .await;
    assert_eq!(outcome.conclusion, Conclusion::Failure);
    assert!(events.iter().any(|(_, e)| logged(e, "line 1")), "the step's output was logged");
    assert!(events.iter().any(|(_, e)| logged(e, "cleanup ran")), "the always() step ran");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped in {:?}", started.elapsed());
}
