//! End to end with the forge: signed real payloads in over HTTP, check runs out to the
//! test forge through octocrab as a GitHub App, every request validated against
//! GitHub's OpenAPI description.

mod common;

use common::farm::{app_key_pair, deliver, example_payload, farm_and_forge, FarmServer};
use common::forge::{Failure, TestForge};

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n\n\
                    [[repo]]\nname = \"octo-org/octo-repo\"\nworkflows = [\"workflows/*.yml\"]\n";

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const PR_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_become_queued_check_runs_on_the_forge() {
    let (server, forge) = farm_and_forge(REPO).await;
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    let opened = example_payload("pull_request", |p| p["action"] == "opened" && p["installation"]["id"] == 1);
    let synchronize = example_payload("pull_request", |p| p["action"] == "synchronize");
    let ping = example_payload("ping", |p| p["zen"].is_string());
    for (event, id, payload) in [
        ("ping", "d-ping", &ping),
        ("push", "d-push", &push),
        ("pull_request", "d-opened", &opened),
        ("pull_request", "d-sync", &synchronize),
    ] {
        let answer = deliver(&server, event, id, payload.to_string().as_bytes()).await;
        assert_eq!(answer.status, 200, "{event}: {}", answer.body);
    }
    forge.wait_for("six check runs", |runs| runs.len() == 6).await;

    let mut seen: Vec<(String, String, String)> =
        forge.check_runs().iter().map(|r| (r.name.clone(), r.head_sha.clone(), r.status.clone())).collect();
    seen.sort();
    let expected = |sha: &str| {
        [
            ("CI / build".to_string(), sha.to_string(), "queued".to_string()),
            ("CI / kvm".into(), sha.into(), "queued".into()),
        ]
    };
    let mut want: Vec<_> =
        expected(SHA).into_iter().chain(expected(PR_HEAD)).chain(expected(PR_HEAD)).collect();
    want.sort();
    assert_eq!(seen, want);
    for run in forge.check_runs() {
        assert!(run.details_url.starts_with("https://farm.example.com/jobs/"), "{}", run.details_url);
        assert_eq!(run.details_url, format!("https://farm.example.com/jobs/{}", run.external_id));
    }
    // One installation token served all six check runs: it is cached until near its expiry.
    let token_requests = forge.requests().iter().filter(|r| r.path.ends_with("/access_tokens")).count();
    assert_eq!(token_requests, 1);
    let kvm = forge.check_runs().into_iter().find(|r| r.name == "CI / kvm").unwrap();
    assert!(kvm.summary.contains("[self-hosted, intel64, hostprovisioning]"), "{}", kvm.summary);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_forge_delays_but_loses_nothing() {
    let (server, forge) = farm_and_forge(REPO).await;
    forge.fail_next([
        Failure { status: 502, headers: vec![], body: serde_json::json!({"message": "Bad Gateway"}) },
        Failure {
            status: 403,
            headers: vec![("retry-after".into(), "1".into())],
            body: serde_json::json!({"message": "You have exceeded a secondary rate limit."}),
        },
    ]);
    server.write(
        "workflows/broken.yml",
        "name: Broken\non: push\njobs:\n  b:\n    runs-on: amd64\n    step: []\n",
    );
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    deliver(&server, "push", "d-push", push.to_string().as_bytes()).await;
    forge.wait_for("three check runs", |runs| runs.len() == 3).await;

    let runs = forge.check_runs();
    let broken =
        runs.iter().find(|r| r.name == "workflows/broken.yml").expect("the broken workflow's check run");
    assert_eq!((broken.status.as_str(), broken.conclusion.as_deref()), ("completed", Some("failure")));
    assert_eq!(broken.title, "Invalid workflow file");
    assert_eq!(broken.annotations.len(), 1);
    assert_eq!(broken.annotations[0]["path"], "workflows/broken.yml");
    assert_eq!(broken.annotations[0]["start_line"], 6);
    assert_eq!(broken.annotations[0]["annotation_level"], "failure");
    // Every check run was created exactly once, whatever failed on the way.
    let statuses: Vec<_> = forge.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&502) && statuses.contains(&403), "{statuses:?}");
    let created = forge
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/check-runs") && r.status == 201)
        .count();
    assert_eq!(created, 3);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_file_over_githubs_size_limit_fails_with_the_limit_named() {
    let (server, forge) = farm_and_forge(REPO).await;
    // A valid workflow made one byte too big by a comment: only its size is wrong.
    let mut big =
        String::from("name: Big\non: push\njobs:\n  b:\n    runs-on: amd64\n    steps: [{run: make}]\n#");
    big.push_str(&"x".repeat(500 * 1024 + 1 - big.len()));
    server.write("workflows/big.yml", &big);
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    deliver(&server, "push", "d-big", push.to_string().as_bytes()).await;
    forge.wait_for("three check runs", |runs| runs.len() == 3).await;

    let runs = forge.check_runs();
    let refused = runs.iter().find(|r| r.name == "workflows/big.yml").expect("the big workflow's check run");
    assert_eq!((refused.status.as_str(), refused.conclusion.as_deref()), ("completed", Some("failure")));
    assert_eq!(refused.title, "Invalid workflow file");
    let message = "the workflow file is 512001 bytes, more than GitHub's limit of 500 KB (512000 bytes) per workflow file";
    assert!(refused.summary.contains(&format!("workflows/big.yml:1:1: {message}")), "{}", refused.summary);
    assert_eq!(refused.annotations.len(), 1);
    assert_eq!(refused.annotations[0]["message"], message);
    assert_eq!(refused.annotations[0]["start_line"], 1);
    // The other workflow ran as usual.
    assert_eq!(runs.iter().filter(|r| r.name.starts_with("CI / ")).count(), 2);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_test_forge_refuses_what_github_would() {
    use axum::http::Method;
    use common::forge::validate_request;
    let path = "/repos/o/r/check-runs";
    assert!(validate_request(&Method::POST, path, &serde_json::json!({"name": "a", "head_sha": SHA})).is_ok());
    let bad = [
        serde_json::json!({"head_sha": SHA}),
        serde_json::json!({"name": "a", "head_sha": SHA, "status": "running"}),
        serde_json::json!({"name": "a", "head_sha": SHA, "conclusion": "great"}),
        serde_json::json!({"name": "a", "head_sha": SHA, "status": "completed"}),
        serde_json::json!({"name": "a", "head_sha": SHA, "output": {"title": "t", "summary": "s",
            "annotations": [{"path": "x", "start_line": 1, "end_line": 1, "annotation_level": "error", "message": "m"}]}}),
    ];
    for body in bad {
        assert!(validate_request(&Method::POST, path, &body).is_err(), "accepted {body}");
    }
    let fifty_one: Vec<_> = (0..51)
        .map(|_| serde_json::json!({"path": "x", "start_line": 1, "end_line": 1, "annotation_level": "failure", "message": "m"}))
        .collect();
    let body = serde_json::json!({"name": "a", "head_sha": SHA, "output": {"title": "t", "summary": "s", "annotations": fifty_one}});
    assert!(validate_request(&Method::POST, path, &body).is_err(), "51 annotations accepted");
    assert!(validate_request(&Method::DELETE, "/repos/o/r/check-runs/1", &serde_json::Value::Null).is_err());
}

const DISPATCHED: &str = "\
name: Sanity
on:
  workflow_dispatch:
    inputs:
      cpu:
        type: choice
        options: [amd64, intel64]
        default: amd64
jobs:
  sanity:
    name: sanity on ${{ inputs.cpu }}
    runs-on: [self-hosted, '${{ inputs.cpu }}']
    steps:
      - run: ./run-sanity
";

/// A manual dispatch names a ref; the forge says which commit, and the check run is on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_runs_on_the_commit_its_ref_points_at() {
    let (server, forge) = farm_and_forge(REPO).await;
    server.write("workflows/sanity.yml", DISPATCHED);
    forge.set_ref("octo-org/octo-repo", "main", "0123456789abcdef0123456789abcdef01234567");
    // The real payload names a workflow file of GitHub's; ours is the farm's file.
    let mut dispatch = example_payload("workflow_dispatch", |p| p["ref"] == "refs/heads/main");
    dispatch["workflow"] = "workflows/sanity.yml".into();
    dispatch["inputs"] = serde_json::json!({ "cpu": "intel64" });
    let answer = deliver(&server, "workflow_dispatch", "d-dispatch", dispatch.to_string().as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    forge.wait_for("the dispatched check run", |runs| runs.len() == 1).await;

    let run = &forge.check_runs()[0];
    assert_eq!(run.repo, "octo-org/octo-repo");
    assert_eq!(run.name, "Sanity / sanity on intel64");
    assert_eq!(run.head_sha, "0123456789abcdef0123456789abcdef01234567");
    assert!(run.summary.contains("[self-hosted, intel64]"), "{}", run.summary);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

/// "Re-run all checks" and "Re-run" on the forge: a new attempt of the same run number,
/// with new check runs on the same commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerequested_checks_start_a_new_attempt() {
    let (server, forge) = farm_and_forge(REPO).await;
    let opened = example_payload("pull_request", |p| p["action"] == "opened" && p["installation"]["id"] == 1);
    deliver(&server, "pull_request", "d-opened", opened.to_string().as_bytes()).await;
    forge.wait_for("the first attempt's check runs", |runs| runs.len() == 2).await;

    let suite = example_payload("check_suite", |p| p["action"] == "rerequested");
    assert_eq!(suite["check_suite"]["head_sha"], PR_HEAD);
    deliver(&server, "check_suite", "d-suite", suite.to_string().as_bytes()).await;
    forge.wait_for("the second attempt's check runs", |runs| runs.len() == 4).await;

    // One check run of the second attempt re-run alone: its whole run gets attempt 3.
    let mut rerun = example_payload("check_run", |p| p["action"] == "rerequested");
    rerun["repository"] = opened["repository"].clone();
    let forge_id = forge.check_runs()[3].id;
    rerun["check_run"]["id"] = forge_id.into();
    // The user presses "Re-run" once the farm has heard the forge's id for it.
    let store = server.store().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.run_of_forge_check_run("Codertocat/Hello-World", forge_id).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the farm never recorded check run {forge_id}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    deliver(&server, "check_run", "d-run", rerun.to_string().as_bytes()).await;
    forge.wait_for("the third attempt's check runs", |runs| runs.len() == 6).await;

    assert!(forge.check_runs().iter().all(|r| r.head_sha == PR_HEAD && r.status == "queued"));
    let attempts: Vec<_> =
        store.runs().await.unwrap().iter().map(|r| (r.run_number, r.run_attempt)).collect();
    assert_eq!(attempts, [(1, 1), (1, 2), (1, 3)]);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

/// With `repo_workflows`, a push also runs the repository's own `.github/workflows` as
/// they are at the pushed commit (fetched through the forge API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_workflows_come_from_the_pushed_commit() {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let config = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = []\nrepo_workflows = true\n";
    let server = FarmServer::start_reporting(&forge.api_url(), &private, config);
    let repo = "Codertocat/Hello-World";
    forge.add_file(
        repo,
        SHA,
        ".github/workflows/lint.yml",
        "name: Lint\non: push\njobs:\n  lint:\n    runs-on: amd64\n    steps:\n      - run: make lint\n",
    );
    forge.add_file(
        repo,
        SHA,
        ".github/workflows/bad.yml",
        "name: Bad\non: push\njobs:\n  x:\n    runs-on: amd64\n    steps:\n      - uses: docker://alpine\n",
    );
    forge.add_file(repo, "another-commit", ".github/workflows/other.yml", "on: push\njobs: {}\n");
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    deliver(&server, "push", "d-push", push.to_string().as_bytes()).await;
    forge.wait_for("two check runs", |runs| runs.len() == 2).await;

    let runs = forge.check_runs();
    let lint = runs.iter().find(|r| r.name == "Lint / lint").expect("the repository's workflow ran");
    assert_eq!((lint.head_sha.as_str(), lint.status.as_str()), (SHA, "queued"));
    let bad =
        runs.iter().find(|r| r.name == ".github/workflows/bad.yml").expect("the broken file is reported");
    assert_eq!(bad.conclusion.as_deref(), Some("failure"));
    assert_eq!(bad.annotations[0]["path"], ".github/workflows/bad.yml");
    assert_eq!(bad.annotations[0]["start_line"], 7);
    assert_eq!(forge.violations(), Vec::<String>::new());
}
