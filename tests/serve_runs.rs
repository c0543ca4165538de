//! Scenarios: deliveries from the forge become runs, jobs and queued check runs.

mod common;

use common::farm::{deliver, example_payload, FarmServer};
use metalfarm::store::PendingCheckRun;

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";

const CI: &str = "\
name: CI
on:
  push:
    branches: [master]
  pull_request:
jobs:
  build:
    name: build (${{ matrix.cpu }})
    runs-on: [self-hosted, '${{ matrix.cpu }}']
    strategy:
      matrix:
        cpu: [amd64, intel64]
    steps:
      - run: make
  test:
    needs: build
    runs-on: [self-hosted, amd64, hostprovisioning]
    steps:
      - run: make check
";

const TAGS_ONLY: &str = "name: Release\non:\n  push:\n    tags: ['v*']\njobs:\n  r:\n    runs-on: amd64\n    steps:\n      - run: true\n";

const BROKEN: &str =
    "name: Broken\non: push\njobs:\n  build:\n    runs-on: amd64\n    step:\n      - run: make\n";

async fn check_runs(server: &FarmServer) -> Vec<PendingCheckRun> {
    let store = server.store().await;
    let due = store.due_check_runs(i64::MAX, 1000).await.unwrap();
    store.close().await;
    due
}

#[tokio::test]
async fn a_push_to_a_branch_queues_one_check_run_per_job() {
    let server = FarmServer::start(REPO);
    server.write("workflows/ci.yml", CI);
    server.write("workflows/release.yml", TAGS_ONLY);
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    assert_eq!(deliver(&server, "push", "push-1", push.to_string().as_bytes()).await.status, 200);
    server.processed().await;

    let store = server.store().await;
    let runs = store.runs().await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0].workflow.as_str(), runs[0].run_number), ("workflows/ci.yml", 1));
    assert_eq!(runs[0].head_sha, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(runs[0].status, "queued");

    let checks = check_runs(&server).await;
    let shown: Vec<_> = checks
        .iter()
        .map(|c| {
            let state = &c.items.last().unwrap().state;
            (state.name.as_str(), state.status.as_str(), state.head_sha.as_str(), c.installation_id)
        })
        .collect();
    let sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    assert_eq!(
        shown,
        [
            ("CI / build (amd64)", "queued", sha, Some(1)),
            ("CI / build (intel64)", "queued", sha, Some(1)),
            ("CI / test", "queued", sha, Some(1)),
        ]
    );
    let test_summary = &checks[2].items[0].state.summary;
    assert!(test_summary.contains("[self-hosted, amd64, hostprovisioning]"), "{test_summary}");
    assert!(test_summary.contains("Runs after: build"), "{test_summary}");

    // The same push again is a new delivery: a second run, numbered 2.
    deliver(&server, "push", "push-2", push.to_string().as_bytes()).await;
    server.processed().await;
    let numbers: Vec<_> = store.runs().await.unwrap().iter().map(|r| r.run_number).collect();
    assert_eq!(numbers, [1, 2]);
}

#[tokio::test]
async fn a_pull_request_reports_on_its_head_commit() {
    let server = FarmServer::start(REPO);
    server.write("workflows/ci.yml", CI);
    let opened = example_payload("pull_request", |p| p["action"] == "opened" && p["installation"]["id"] == 1);
    deliver(&server, "pull_request", "pr-1", opened.to_string().as_bytes()).await;
    let labeled = example_payload("pull_request", |p| p["action"] == "labeled");
    deliver(&server, "pull_request", "pr-2", labeled.to_string().as_bytes()).await;
    server.processed().await;
    // `labeled` is not among pull_request's default types: only `opened` ran.
    let checks = check_runs(&server).await;
    assert_eq!(checks.len(), 3);
    assert!(checks.iter().all(|c| c.items[0].state.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"));
}

#[tokio::test]
async fn a_broken_workflow_fails_with_an_annotation_on_its_line() {
    let server = FarmServer::start(REPO);
    server.write("workflows/broken.yml", BROKEN);
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master");
    deliver(&server, "push", "push-broken", push.to_string().as_bytes()).await;
    server.processed().await;

    let checks = check_runs(&server).await;
    assert_eq!(checks.len(), 1);
    let state = &checks[0].items[0].state;
    assert_eq!((state.status.as_str(), state.conclusion.as_deref()), ("completed", Some("failure")));
    assert_eq!(state.title, "Invalid workflow file");
    assert!(state.summary.contains("workflows/broken.yml:6:5:"), "{}", state.summary);
    assert_eq!(state.annotations.len(), 1, "{:?}", state.annotations);
    assert_eq!(
        (state.annotations[0].path.as_str(), state.annotations[0].start_line),
        ("workflows/broken.yml", 6)
    );
}

#[tokio::test]
async fn a_deleted_tag_starts_nothing() {
    let server = FarmServer::start(REPO);
    server.write("workflows/release.yml", TAGS_ONLY.replace("['v*']", "['*']").as_str());
    let deleted = example_payload("push", |p| p["deleted"] == true);
    deliver(&server, "push", "del-1", deleted.to_string().as_bytes()).await;
    let created = example_payload("push", |p| p["ref"] == "refs/tags/simple-tag" && p["deleted"] == false);
    deliver(&server, "push", "tag-1", created.to_string().as_bytes()).await;
    server.processed().await;
    let store = server.store().await;
    let runs = store.runs().await.unwrap();
    assert_eq!(runs.iter().map(|r| r.delivery_id.as_deref().unwrap()).collect::<Vec<_>>(), ["tag-1"]);
}
