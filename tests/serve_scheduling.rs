//! Placement end to end: a real `metalfarm serve`, hosts from the admin CLI or the
//! config, pushes as signed real payloads, and what the check runs on the test forge
//! and the hosts in the inventory show as jobs are leased, wait and are recovered.

mod common;

use common::cli::{admin_token, ok};
use common::farm::{farm_and_forge, host_json, push_master, wait_for_host_state, FarmServer};
use common::forge::{ForgeCheckRun, TestForge};
use common::lab::lab_toml;
use common::testhost::{TestHost, TestHosts};
use std::time::Duration;

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";

/// One long job that only hosts with the rare labels can run.
const KVM_ONLY: &str = "\
name: CI
on: push
jobs:
  kvm:
    runs-on: [self-hosted, intel64, hostprovisioning]
    steps:
      - run: sleep 600
";

/// Adds `host` to the farm as `name` with `labels`, through the CLI.
fn add_host(server: &FarmServer, token: &str, host: &TestHost, name: &str, labels: &[&str]) {
    let (address, port) = (host.address(), host.port().to_string());
    let mut args = vec!["host", "add", name, "--address", &address, "--port", &port];
    for label in labels {
        args.extend(["--label", label]);
    }
    ok(server, token, &args);
}

/// A farm and forge whose hosts are `hosts` (added later, through the CLI).
async fn lab_farm(hosts: &TestHosts) -> (FarmServer, TestForge) {
    farm_and_forge(&format!("{REPO}\n{}", lab_toml(hosts, &[]))).await
}

fn nth<'a>(runs: &'a [ForgeCheckRun], name: &str, n: usize) -> Option<&'a ForgeCheckRun> {
    let mut named: Vec<&ForgeCheckRun> = runs.iter().filter(|r| r.name == name).collect();
    named.sort_by_key(|r| r.id);
    named.get(n).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_goes_to_the_only_host_with_its_labels_the_next_says_what_it_waits_for_and_the_cli_cancels_both(
) {
    let hosts = TestHosts::start(2);
    let (server, forge) = lab_farm(&hosts).await;
    server.write("workflows/ci.yml", KVM_ONLY);
    let token = admin_token(&server);
    add_host(&server, &token, hosts.host(0), "amd-1", &["amd64", "hostprovisioning"]);
    add_host(&server, &token, hosts.host(1), "intel-1", &["intel64", "hostprovisioning"]);

    push_master(&server, "d-first").await;
    forge
        .wait_for("the first job running", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.status == "in_progress")
        })
        .await;
    let first = nth(&forge.check_runs(), "CI / kvm", 0).cloned().unwrap();
    assert_eq!(first.title, "Running on intel-1");
    assert_eq!(first.history, ["queued", "in_progress"]);
    let leased = host_json(&server, "intel-1").await;
    assert_eq!(leased["state"], "leased", "{leased:#}");
    assert_eq!(host_json(&server, "amd-1").await["state"], "ready");

    // An admin locks the host while it runs the job: the job keeps it.
    ok(&server, &token, &["host", "lock", "intel-1", "--reason", "BIOS update"]);
    assert_eq!(host_json(&server, "intel-1").await["state"], "leased");

    push_master(&server, "d-second").await;
    forge
        .wait_for("the second job saying why it waits", |runs| {
            nth(runs, "CI / kvm", 1).is_some_and(|r| r.summary.contains("is busy"))
        })
        .await;
    let second = nth(&forge.check_runs(), "CI / kvm", 1).cloned().unwrap();
    assert_eq!(second.status, "queued");
    assert_eq!(
        second.summary,
        "The only host with labels [self-hosted, intel64, hostprovisioning] is busy.\n\n\
         Runs on a host with labels [self-hosted, intel64, hostprovisioning]."
    );

    // Cancelled from the CLI: the running job ends, the host goes to the maintenance
    // it was locked for, and the waiting job now waits for a host that is not ready.
    ok(&server, &token, &["job", "cancel", &first.external_id]);
    forge
        .wait_for("the first job cancelled and the second waiting on a host not ready", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.conclusion.as_deref() == Some("cancelled"))
                && nth(runs, "CI / kvm", 1).is_some_and(|r| r.summary.contains("is not ready"))
        })
        .await;
    let locked = host_json(&server, "intel-1").await;
    assert_eq!(locked["state"], "maintenance", "{locked:#}");
    assert!(locked["state_reason"].as_str().unwrap_or_default().contains("BIOS update"), "{locked:#}");
    ok(&server, &token, &["job", "cancel", &second.external_id]);
    forge
        .wait_for("the second job cancelled", |runs| {
            nth(runs, "CI / kvm", 1).is_some_and(|r| r.conclusion.as_deref() == Some("cancelled"))
        })
        .await;
    assert_eq!(nth(&forge.check_runs(), "CI / kvm", 1).unwrap().history, ["queued", "completed"]);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_needs_another_waits_for_it_and_a_job_no_host_can_run_says_so() {
    let hosts = TestHosts::start(2);
    let (server, forge) = lab_farm(&hosts).await;
    // Build on [self-hosted, amd64], then kvm on [self-hosted, intel64, hostprovisioning];
    // no host has amd64 here.
    server.write("workflows/ci.yml", &common::farm::TWO_JOB_CI.replace("run: make\n", "run: sleep 600\n"));
    let token = admin_token(&server);
    add_host(&server, &token, hosts.host(0), "intel-1", &["intel64", "hostprovisioning"]);
    push_master(&server, "d-push").await;
    forge
        .wait_for("both jobs saying why they wait", |runs| {
            nth(runs, "CI / build", 0).is_some_and(|r| r.summary.starts_with("No host has labels"))
                && nth(runs, "CI / kvm", 0).is_some_and(|r| r.summary.starts_with("Waiting for build"))
        })
        .await;
    let build = nth(&forge.check_runs(), "CI / build", 0).cloned().unwrap();
    assert_eq!(build.status, "queued");
    assert!(build.summary.starts_with("No host has labels [self-hosted, amd64]."), "{}", build.summary);
    assert_eq!(host_json(&server, "intel-1").await["state"], "ready", "kvm must not start before build");

    // A host that can run it comes: build takes it.
    add_host(&server, &token, hosts.host(1), "amd-1", &["amd64"]);
    forge
        .wait_for("build running", |runs| {
            nth(runs, "CI / build", 0).is_some_and(|r| r.status == "in_progress")
        })
        .await;
    assert_eq!(nth(&forge.check_runs(), "CI / build", 0).unwrap().title, "Running on amd-1");
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_nobody_renews_is_recovered_and_the_job_runs_elsewhere() {
    let hosts = TestHosts::start(2);
    let labels: &[&str] = &["intel64", "hostprovisioning"];
    let config = format!("{REPO}\n{}", lab_toml(&hosts, &[("intel-1", labels), ("intel-2", labels)]));
    let (mut server, forge) = lease_timeout_farm(&config).await;
    server.write("workflows/ci.yml", KVM_ONLY);
    push_master(&server, "d-push").await;
    forge
        .wait_for("the job running", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.status == "in_progress")
        })
        .await;
    let first_host = nth(&forge.check_runs(), "CI / kvm", 0).unwrap().title.replace("Running on ", "");
    let other_host = if first_host == "intel-1" { "intel-2" } else { "intel-1" };

    // The farm renews its lease while it lives: well past the timeout, the host is still leased.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(host_json(&server, &first_host).await["state"], "leased");

    // The farm dies; the new one does not hold the old lease, which lapses.
    server.kill_and_restart();
    let repairing = wait_for_host_state(&server, &first_host, "repairing", Duration::from_secs(30)).await;
    assert!(repairing["state_reason"].as_str().unwrap_or_default().contains("lapsed"), "{repairing:#}");
    forge
        .wait_for("the job running on the other host", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.title == format!("Running on {other_host}"))
        })
        .await;
    let job = nth(&forge.check_runs(), "CI / kvm", 0).cloned().unwrap();
    assert_eq!(job.history, ["queued", "in_progress", "queued", "in_progress"]);
    assert_eq!(host_json(&server, other_host).await["state"], "leased");
    assert_eq!(forge.violations(), Vec::<String>::new());
}

/// A farm and forge whose leases lapse after one second.
async fn lease_timeout_farm(extra: &str) -> (FarmServer, TestForge) {
    let (private, public) = common::farm::app_key_pair();
    let forge = TestForge::start(public).await;
    let server =
        FarmServer::start_reporting_with(&forge.api_url(), &private, "lease_timeout = \"1s\"\n", extra);
    (server, forge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_run_of_a_cancel_in_progress_group_cancels_the_running_one() {
    let hosts = TestHosts::start(1);
    let (server, forge) = lab_farm(&hosts).await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\nconcurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true\n\
         jobs:\n  kvm:\n    runs-on: [self-hosted, intel64]\n    steps:\n      - run: sleep 600\n",
    );
    let token = admin_token(&server);
    add_host(&server, &token, hosts.host(0), "intel-1", &["intel64"]);
    push_master(&server, "d-first").await;
    forge
        .wait_for("the first run's job running", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.status == "in_progress")
        })
        .await;

    push_master(&server, "d-second").await;
    forge
        .wait_for("the first cancelled, the second running", |runs| {
            nth(runs, "CI / kvm", 0).is_some_and(|r| r.conclusion.as_deref() == Some("cancelled"))
                && nth(runs, "CI / kvm", 1).is_some_and(|r| r.status == "in_progress")
        })
        .await;
    let first = nth(&forge.check_runs(), "CI / kvm", 0).cloned().unwrap();
    assert_eq!(first.history, ["queued", "in_progress", "completed"]);
    assert!(first.summary.contains("ci-refs/heads/master"), "{}", first.summary);
    assert_eq!(host_json(&server, "intel-1").await["state"], "leased");
    assert_eq!(forge.violations(), Vec::<String>::new());
}
