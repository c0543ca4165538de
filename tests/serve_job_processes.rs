//! A job's processes on a real `metalfarm serve` and a real OpenSSH test host: a step
//! whose background child holds its output ends when its shell exits, and nothing the
//! job started — not even a child in its own session — outlives the job, nor its
//! `_temp` (the wrapper scripts hold the secrets).

mod common;

use std::time::Duration;

use common::farm::{app_key_pair, get, host_json, job_log, push_master, FarmServer};
use common::forge::TestForge;
use common::lab::lab_toml;
use common::testhost::TestHosts;
use serde_json::Value;

const LEAVING: &str = r###"
name: Leaving
on: push
jobs:
  build:
    runs-on: [self-hosted, kvm]
    steps:
      - name: holds its output
        run: |
          (sleep 30; echo late) &
          echo "deploying with ${{ secrets.DEPLOY_TOKEN }}"
      - name: detaches
        run: setsid sleep 300 &
      - run: echo done
"###;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_ends_without_waiting_for_what_it_left_and_leaves_nothing_running() {
    let hosts = TestHosts::start(1);
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let config = format!(
        "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\nsecrets_file = \"secrets.toml\"\n\n{}",
        lab_toml(&hosts, &[("kvm-a", &["kvm"])])
    );
    let server = FarmServer::start_reporting_with(&forge.api_url(), &private, "", &config);
    server.write("secrets.toml", "DEPLOY_TOKEN = \"hunter2-deploy-token\"\n");
    server.write("workflows/leaving.yml", LEAVING);
    push_master(&server, "d-leaving").await;
    // Within the test forge's minute: the steps' children (30 s, 300 s) are not waited for.
    forge
        .wait_for("the job completed", |runs| {
            runs.iter().any(|r| r.name == "Leaving / build" && r.status == "completed")
        })
        .await;
    let check = forge.check_runs().into_iter().find(|r| r.name == "Leaving / build").unwrap();
    assert_eq!(check.conclusion.as_deref(), Some("success"), "{check:#?}");
    let job: Value =
        serde_json::from_str(&get(&server.url(&format!("/api/v1/jobs/{}", check.external_id))).await.body)
            .unwrap();
    let steps = job["steps"].as_array().expect("the job's steps");
    assert_eq!(steps.len(), 3, "{job:#}");
    let first = &steps[0];
    let took = chrono::DateTime::parse_from_rfc3339(first["completed_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(first["started_at"].as_str().unwrap()).unwrap();
    assert!(took < chrono::TimeDelta::seconds(10), "the step waited for its child: {first:#}");

    let log = job_log(&server, &check.external_id).await;
    assert!(log.contains("Cleaning up orphan processes"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    let sleepers = hosts.host(0).run("pgrep -a sleep");
    assert!(!sleepers.status.success(), "left running: {}", String::from_utf8_lossy(&sleepers.stdout));
    let temp = hosts.host(0).run("ls -A /root/metalfarm-work/_temp");
    assert!(!temp.status.success(), "the job's _temp is left: {}", String::from_utf8_lossy(&temp.stdout));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host_json(&server, "kvm-a").await["state"] != "ready" {
        assert!(std::time::Instant::now() < deadline, "the host never came back to ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
