//! Jobs run end to end: a real `metalfarm serve` reporting to the test forge, real
//! OpenSSH test hosts, pushes as signed real payloads. What a user sees: the check
//! runs from queued to completed with the right conclusion, summary and annotations,
//! the live log, secrets kept out of both, infrastructure failures retried elsewhere.

mod common;

use std::time::Duration;

use common::cli::{admin_token, ok};
use common::farm::{app_key_pair, host_json, job_log, push_master, FarmServer};
use common::forge::{ForgeCheckRun, TestForge};
use common::lab::lab_toml;
use common::testhost::TestHosts;

const SECRET: &str = "hunter2-deploy-token";

fn repo_toml() -> String {
    "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\nsecrets_file = \"secrets.toml\"\n"
        .to_owned()
}

const PASSING: &str = r###"
name: Pass
on: push
jobs:
  build:
    runs-on: [self-hosted, kvm]
    outputs:
      version: ${{ steps.version.outputs.version }}
    steps:
      - id: version
        run: |
          echo "version=9.2.0" >> "$GITHUB_OUTPUT"
          echo "deploying with ${{ secrets.DEPLOY_TOKEN }}"
          echo "::notice file=VERSION,line=1::version 9.2.0"
          echo "## Build ok" >> "$GITHUB_STEP_SUMMARY"
  test:
    needs: build
    runs-on: [self-hosted, kvm]
    steps:
      - run: echo "testing version ${{ needs.build.outputs.version }} (${{ needs.build.result }})"
"###;

const FAILING: &str = r###"
name: Fail
on: push
jobs:
  check:
    runs-on: [self-hosted, kvm]
    steps:
      - name: compile
        run: |
          echo "::error file=hw/kvm/main.c,line=42,col=7,title=Compile error::implicit declaration of kvm_foo"
          exit 2
      - name: never
        run: echo "not reached"
"###;

async fn farm(hosts: &TestHosts, lab: &[(&str, &[&str])], server_keys: &str) -> (FarmServer, TestForge) {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let config = format!("{}\n{}", repo_toml(), lab_toml(hosts, lab));
    let server = FarmServer::start_reporting_with(&forge.api_url(), &private, server_keys, &config);
    server.write("secrets.toml", &format!("DEPLOY_TOKEN = \"{SECRET}\"\n"));
    (server, forge)
}

fn named<'a>(runs: &'a [ForgeCheckRun], name: &str) -> Option<&'a ForgeCheckRun> {
    runs.iter().find(|r| r.name == name)
}

fn completed(runs: &[ForgeCheckRun], name: &str) -> bool {
    named(runs, name).is_some_and(|r| r.status == "completed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_runs_a_passing_and_a_failing_workflow_to_completed_check_runs() {
    let hosts = TestHosts::start(2);
    let (server, forge) = farm(&hosts, &[("kvm-a", &["kvm"]), ("kvm-b", &["kvm"])], "").await;
    server.write("workflows/pass.yml", PASSING);
    server.write("workflows/fail.yml", FAILING);
    push_master(&server, "d-run").await;
    forge
        .wait_for("every job completed", |runs| {
            ["Pass / build", "Pass / test", "Fail / check"].iter().all(|n| completed(runs, n))
        })
        .await;
    let runs = forge.check_runs();

    let build = named(&runs, "Pass / build").unwrap();
    assert_eq!(build.conclusion.as_deref(), Some("success"), "{build:#?}");
    // A quick job's `in_progress` may be superseded by its end before it is delivered.
    assert_eq!(
        (build.history.first(), build.history.last()),
        (Some(&"queued".into()), Some(&"completed".into()))
    );
    assert!(build.title.starts_with("Succeeded on kvm-"), "{}", build.title);
    assert!(
        build.summary.contains("| 1 | Run echo \"version=9.2.0\" >> \"$GITHUB_OUTPUT\" | success |"),
        "{}",
        build.summary
    );
    assert!(build.summary.contains("## Build ok"), "{}", build.summary);
    let notice = &build.annotations[0];
    assert_eq!(
        (notice["path"].as_str(), notice["start_line"].as_i64(), notice["annotation_level"].as_str()),
        (Some("VERSION"), Some(1), Some("notice")),
        "{notice:#}"
    );

    let test = named(&runs, "Pass / test").unwrap();
    assert_eq!(test.conclusion.as_deref(), Some("success"), "{test:#?}");
    let test_log = job_log(&server, &test.external_id).await;
    assert!(test_log.contains("testing version 9.2.0 (success)"), "{test_log}");

    let check = named(&runs, "Fail / check").unwrap();
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert_eq!(check.title, "Failed at step 1: compile");
    assert!(check.summary.contains("| 2 | never | skipped |"), "{}", check.summary);
    let error = check.annotations.iter().find(|a| a["path"] == "hw/kvm/main.c").expect("the compile error");
    assert_eq!(
        (error["start_line"].as_i64(), error["start_column"].as_i64(), error["annotation_level"].as_str()),
        (Some(42), Some(7), Some("failure"))
    );
    assert_eq!(error["title"], "Compile error");
    assert_eq!(error["message"], "implicit declaration of kvm_foo");
    assert!(check.annotations.iter().any(|a| a["message"] == "Process completed with exit code 2."));

    // The secret reached the step (masked in its log) and nothing else.
    let build_log = job_log(&server, &build.external_id).await;
    assert!(build_log.contains("deploying with ***"), "{build_log}");
    let log_files = server.dir.path().join("data/logs");
    for entry in walk(&log_files) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(SECRET), "{} holds the secret", entry.display());
    }
    for request in forge.requests() {
        assert!(
            !request.body.to_string().contains(SECRET),
            "{} {} sent the secret",
            request.method,
            request.path
        );
    }
    assert_eq!(forge.violations(), Vec::<String>::new());
    for name in ["kvm-a", "kvm-b"] {
        assert_eq!(host_json(&server, name).await["state"], "ready");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_dies_mid_step_sends_the_job_to_another_host_and_itself_to_repair() {
    let hosts = TestHosts::start(2);
    let (server, forge) = farm(&hosts, &[("kvm-a", &["kvm"]), ("kvm-b", &["kvm"])], "").await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\njobs:\n  suite:\n    runs-on: [self-hosted, kvm]\n    steps:\n      \
         - run: echo \"on $RUNNER_NAME\"; test -e /root/quick || sleep 600\n",
    );
    push_master(&server, "d-dies").await;
    forge
        .wait_for("the job running", |runs| {
            named(runs, "CI / suite").is_some_and(|r| r.status == "in_progress")
        })
        .await;
    let suite = named(&forge.check_runs(), "CI / suite").cloned().unwrap();
    let first = suite.title.replace("Running on ", "");
    let (index, other) = if first == "kvm-a" { (0, "kvm-b") } else { (1, "kvm-a") };
    // On the other host the step ends at once.
    assert!(hosts.host(1 - index).run("touch /root/quick").status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !job_log(&server, &suite.external_id).await.contains(&format!("on {first}")) {
        assert!(std::time::Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its host dies mid-step: sshd and every process on it killed.
    hosts.host(index).kill();
    forge.wait_for("the job completed", |runs| completed(runs, "CI / suite")).await;
    let suite = named(&forge.check_runs(), "CI / suite").cloned().unwrap();
    assert_eq!(suite.conclusion.as_deref(), Some("success"), "{suite:#?}");
    assert_eq!(suite.title, format!("Succeeded on {other}"));
    // Queued again for the other host: states the forge may not see, superseded by the
    // quick end there before the reporter sent them.
    assert_eq!(suite.history[..2], ["queued", "in_progress"]);
    assert_eq!(suite.history.last().map(String::as_str), Some("completed"));
    assert!(suite.summary.contains("Retried after infrastructure failures"), "{}", suite.summary);
    assert!(
        suite.summary.contains(&format!("- host `{first}`: host {first} is unreachable")),
        "{}",
        suite.summary
    );
    let dead = host_json(&server, &first).await;
    assert_eq!(dead["state"], "repairing", "{dead:#}");
    assert!(dead["state_reason"].as_str().unwrap_or_default().contains("unreachable"), "{dead:#}");
    let log = job_log(&server, &suite.external_id).await;
    assert!(log.contains("Infrastructure failure"), "{log}");
    assert!(log.contains(&format!("on {other}")), "{log}");
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_its_processes_and_frees_the_host() {
    let hosts = TestHosts::start(1);
    let (server, forge) = farm(&hosts, &[("kvm-a", &["kvm"])], "").await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\njobs:\n  soak:\n    runs-on: [self-hosted, kvm]\n    steps:\n      \
         - run: echo soaking; sleep 600\n      - if: always()\n        run: echo cleaned up\n",
    );
    push_master(&server, "d-cancel").await;
    forge
        .wait_for("the job running", |runs| {
            named(runs, "CI / soak").is_some_and(|r| r.status == "in_progress")
        })
        .await;
    let job = named(&forge.check_runs(), "CI / soak").unwrap().external_id.clone();
    // Until the step has started on the host.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !job_log(&server, &job).await.contains("soaking") {
        assert!(std::time::Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = admin_token(&server);
    ok(&server, &token, &["job", "cancel", &job]);
    forge.wait_for("the job cancelled", |runs| completed(runs, "CI / soak")).await;
    let soak = named(&forge.check_runs(), "CI / soak").cloned().unwrap();
    assert_eq!(soak.conclusion.as_deref(), Some("cancelled"), "{soak:#?}");
    let log = job_log(&server, &job).await;
    assert!(log.contains("cleaned up"), "{log}");
    assert!(!hosts.host(0).run("pgrep -x sleep").status.success(), "the step's sleep was killed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host_json(&server, "kvm-a").await["state"] != "ready" {
        assert!(std::time::Instant::now() < deadline, "the host never came back to ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_key_changed_outside_a_reinstall_is_refused_and_sent_to_repair() {
    let hosts = TestHosts::start(2);
    let (server, forge) = farm(&hosts, &[("kvm-a", &["kvm"]), ("kvm-b", &["kvm"])], "").await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\njobs:\n  suite:\n    runs-on: [self-hosted, kvm]\n    steps:\n      - run: echo \"on $RUNNER_NAME\"\n",
    );
    // The farm learns both keys at start.
    let store = server.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for name in ["kvm-a", "kvm-b"] {
        while store.host_key(name).await.unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "{name}'s key was never pinned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(store.host_key("kvm-a").await.unwrap(), Some(hosts.host(0).host_key()));
    let token = admin_token(&server);
    ok(&server, &token, &["host", "lock", "kvm-b", "--reason", "keep the job on kvm-a"]);
    // kvm-a comes back with other keys, though nobody reinstalled it through the farm.
    hosts.host(0).reinstall();
    push_master(&server, "d-key").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let host = host_json(&server, "kvm-a").await;
        if host["state"] == "repairing" {
            break host;
        }
        assert!(std::time::Instant::now() < deadline, "kvm-a never went to repair: {host:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused["state_reason"].as_str().unwrap_or_default().contains("host key changed"), "{refused:#}");
    ok(&server, &token, &["host", "unlock", "kvm-b"]);
    forge.wait_for("the job completed", |runs| completed(runs, "CI / suite")).await;
    let suite = named(&forge.check_runs(), "CI / suite").cloned().unwrap();
    assert_eq!(suite.conclusion.as_deref(), Some("success"), "{suite:#?}");
    assert_eq!(suite.title, "Succeeded on kvm-b");
    // The new key is not pinned: only a reinstall through the farm pins one.
    assert_ne!(store.host_key("kvm-a").await.unwrap(), Some(hosts.host(0).host_key()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_out_of_retries_fails_as_an_infrastructure_failure() {
    let hosts = TestHosts::start(1);
    let (server, forge) = farm(&hosts, &[("kvm-a", &["kvm"])], "infra_retries = 0\n").await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\njobs:\n  suite:\n    runs-on: [self-hosted, kvm]\n    steps:\n      - run: echo hi\n",
    );
    // The only host is down, though the farm still thinks it ready.
    hosts.host(0).kill();
    push_master(&server, "d-down").await;
    forge.wait_for("the job completed", |runs| completed(runs, "CI / suite")).await;
    let suite = named(&forge.check_runs(), "CI / suite").cloned().unwrap();
    assert_eq!(suite.conclusion.as_deref(), Some("failure"), "{suite:#?}");
    assert_eq!(suite.title, "Infrastructure failure");
    assert!(suite.summary.contains("tried on 1 host(s) and gave up"), "{}", suite.summary);
    assert!(suite.summary.contains("- host `kvm-a`: host kvm-a:"), "{}", suite.summary);
    assert_eq!(host_json(&server, "kvm-a").await["state"], "repairing");
    assert_eq!(forge.violations(), Vec::<String>::new());
}
