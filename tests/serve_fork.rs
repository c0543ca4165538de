//! Scenarios: a pull request from a fork whose author lacks write access reaches no
//! host until someone with write access presses "Approve and run" — through the real
//! server, signed real payloads, and the test forge answering who may write.

mod common;

use std::time::{Duration, Instant};

use common::farm::{deliver, example_payload, farm_and_forge, FarmServer};
use common::forge::{Failure, ForgeCheckRun, TestForge};
use metalfarm::store::{Approval, RunRow};
use serde_json::{json, Value as Json};

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";

const PR_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const PERMISSION_OF: &str = "/repos/Codertocat/Hello-World/collaborators/";

/// The real `pull_request` opened example, as if opened by `author`; from the fork
/// `author/Hello-World` when `fork`.
fn pull_request(author: &str, fork: bool) -> Json {
    let mut payload =
        example_payload("pull_request", |p| p["action"] == "opened" && p["installation"]["id"] == 1);
    assert_eq!(payload["pull_request"]["head"]["repo"]["full_name"], "Codertocat/Hello-World");
    payload["pull_request"]["user"]["login"] = json!(author);
    payload["sender"]["login"] = json!(author);
    if fork {
        let head = &mut payload["pull_request"]["head"];
        head["label"] = json!(format!("{author}:changes"));
        head["user"]["login"] = json!(author);
        head["repo"]["full_name"] = json!(format!("{author}/Hello-World"));
        head["repo"]["owner"]["login"] = json!(author);
        head["repo"]["fork"] = json!(true);
    }
    payload
}

/// The real `check_run` `requested_action` example (from another repository), pointed
/// at `check_run` of the pull request's repository and pressed by `sender`.
fn approve_pressed(check_run: &ForgeCheckRun, sender: &str) -> Json {
    let mut payload = example_payload("check_run", |p| p["action"] == "requested_action");
    let pr = pull_request("Codertocat", false);
    payload["repository"] = pr["repository"].clone();
    payload["installation"] = pr["installation"].clone();
    payload.as_object_mut().unwrap().remove("organization");
    payload["sender"]["login"] = json!(sender);
    payload["requested_action"]["identifier"] = json!("approve");
    let run = &mut payload["check_run"];
    run["id"] = json!(check_run.id);
    run["external_id"] = json!(check_run.external_id);
    run["name"] = json!(check_run.name);
    run["head_sha"] = json!(check_run.head_sha);
    run["status"] = json!(check_run.status);
    run["conclusion"] = json!(check_run.conclusion);
    run["details_url"] = json!(check_run.details_url);
    payload
}

async fn runs(server: &FarmServer) -> Vec<RunRow> {
    let store = server.store().await;
    let runs = store.runs().await.unwrap();
    store.close().await;
    runs
}

/// Waits (bounded) until every check-run state reached the forge.
async fn outbox_empty(server: &FarmServer) {
    let store = server.store().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.outbox_backlog().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the outbox was not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
}

/// The logins whose permission the farm asked the forge for, in order.
fn permission_asked(forge: &TestForge) -> Vec<String> {
    forge
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.status == 200)
        .filter_map(|r| r.path.strip_prefix(PERMISSION_OF)?.strip_suffix("/permission").map(str::to_owned))
        .collect()
}

fn awaiting_approval(runs: &[ForgeCheckRun]) -> bool {
    runs.len() == 2
        && runs.iter().all(|r| r.status == "completed" && r.conclusion.as_deref() == Some("action_required"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_pull_request_waits_until_a_writer_approves_it() {
    let (server, forge) = farm_and_forge(REPO).await;
    forge.set_permission("forker", "read");
    forge.set_permission("bystander", "triage");
    forge.set_permission("maintainer", "maintain");
    // The first request to the forge fails: the delivery is processed again later.
    forge.fail_next([Failure { status: 502, headers: vec![], body: json!({"message": "Bad Gateway"}) }]);
    let opened = pull_request("forker", true);
    assert_eq!(deliver(&server, "pull_request", "d-fork", opened.to_string().as_bytes()).await.status, 200);
    forge.wait_for("two check runs waiting for approval", awaiting_approval).await;

    let statuses: Vec<u16> = forge.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.first(), Some(&502), "{statuses:?}");
    assert_eq!(permission_asked(&forge), ["forker"]);
    let approve = json!([{
        "label": "Approve and run",
        "description": "Run this fork's jobs on the farm",
        "identifier": "approve",
    }]);
    for run in forge.check_runs() {
        assert_eq!(run.head_sha, PR_HEAD);
        assert_eq!(run.title, "Waiting for approval");
        assert!(run.summary.contains("write access"), "{}", run.summary);
        assert_eq!(Json::Array(run.actions.clone()), approve, "{}", run.name);
    }
    let recorded = runs(&server).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!((recorded[0].fork, recorded[0].approval), (true, Approval::Required));
    outbox_empty(&server).await;

    // Someone who can only triage presses the button: refused, nothing changes.
    let build = forge.check_runs().into_iter().find(|r| r.name == "CI / build").expect("CI / build");
    let pressed = approve_pressed(&build, "bystander");
    assert_eq!(deliver(&server, "check_run", "d-press-1", pressed.to_string().as_bytes()).await.status, 200);
    server.processed().await;
    assert_eq!(permission_asked(&forge), ["forker", "bystander"]);
    outbox_empty(&server).await;
    assert!(awaiting_approval(&forge.check_runs()), "{:#?}", forge.check_runs());
    assert_eq!(runs(&server).await[0].approval, Approval::Required);

    // A maintainer presses it: every check run of the run is queued again, without buttons.
    let pressed = approve_pressed(&build, "maintainer");
    assert_eq!(deliver(&server, "check_run", "d-press-2", pressed.to_string().as_bytes()).await.status, 200);
    forge
        .wait_for("both check runs queued again", |runs| {
            runs.len() == 2 && runs.iter().all(|r| r.status == "queued" && r.conclusion.is_none())
        })
        .await;
    assert_eq!(permission_asked(&forge), ["forker", "bystander", "maintainer"]);
    for run in forge.check_runs() {
        assert_eq!(run.history, ["completed", "queued"], "{}", run.name);
        assert!(run.actions.is_empty(), "{}: {:?}", run.name, run.actions);
        assert_eq!(run.title, "Queued");
    }
    let kvm = forge.check_runs().into_iter().find(|r| r.name == "CI / kvm").expect("CI / kvm");
    assert!(kvm
        .summary
        .starts_with("Waiting for a host with labels [self-hosted, intel64, hostprovisioning]."));
    assert!(kvm.summary.contains("Runs after: build."), "{}", kvm.summary);
    assert_eq!(runs(&server).await[0].approval, Approval::Approved);

    // A second press on the other check run finds nothing left to approve.
    let pressed = approve_pressed(&kvm, "maintainer");
    assert_eq!(deliver(&server, "check_run", "d-press-3", pressed.to_string().as_bytes()).await.status, 200);
    server.processed().await;
    outbox_empty(&server).await;
    assert_eq!(permission_asked(&forge).len(), 3, "no need to ask again");
    assert!(forge.check_runs().iter().all(|r| r.history == ["completed", "queued"]));
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_repository_and_writers_fork_pull_requests_are_not_gated() {
    let (server, forge) = farm_and_forge(REPO).await;
    forge.set_permission("colleague", "write");
    let same_repo = pull_request("Codertocat", false);
    assert_eq!(
        deliver(&server, "pull_request", "d-same", same_repo.to_string().as_bytes()).await.status,
        200
    );
    let writers_fork = pull_request("colleague", true);
    assert_eq!(
        deliver(&server, "pull_request", "d-fork", writers_fork.to_string().as_bytes()).await.status,
        200
    );
    forge.wait_for("four queued check runs", |runs| runs.len() == 4).await;

    for run in forge.check_runs() {
        assert_eq!((run.status.as_str(), run.conclusion.as_deref()), ("queued", None), "{}", run.name);
        assert!(run.actions.is_empty());
    }
    // Only the fork's author was asked about; the same-repository pull request needs no one.
    assert_eq!(permission_asked(&forge), ["colleague"]);
    let recorded: Vec<(bool, Approval)> = runs(&server).await.iter().map(|r| (r.fork, r.approval)).collect();
    assert_eq!(recorded, [(false, Approval::None), (true, Approval::None)]);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

/// "Re-run all checks" on a fork's pull request that nobody approved: the new attempt
/// waits for approval as the first did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_an_unapproved_fork_run_still_waits() {
    let (server, forge) = farm_and_forge(REPO).await;
    forge.set_permission("forker", "read");
    let opened = pull_request("forker", true);
    deliver(&server, "pull_request", "d-fork", opened.to_string().as_bytes()).await;
    forge.wait_for("two check runs waiting for approval", awaiting_approval).await;

    let suite = example_payload("check_suite", |p| p["action"] == "rerequested");
    assert_eq!(suite["check_suite"]["head_sha"], PR_HEAD);
    deliver(&server, "check_suite", "d-suite", suite.to_string().as_bytes()).await;
    forge.wait_for("the second attempt's check runs", |runs| runs.len() == 4).await;

    assert!(
        forge
            .check_runs()
            .iter()
            .all(|r| r.conclusion.as_deref() == Some("action_required") && r.actions.len() == 1),
        "{:#?}",
        forge.check_runs()
    );
    let recorded: Vec<_> = runs(&server).await.iter().map(|r| (r.run_attempt, r.fork, r.approval)).collect();
    assert_eq!(recorded, [(1, true, Approval::Required), (2, true, Approval::Required)]);
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_test_forge_checks_buttons_and_permission_requests_as_github_would() {
    use axum::http::Method;
    use common::forge::validate_request;
    let path = "/repos/o/r/check-runs";
    let with_actions = |actions: Json| {
        json!({"name": "a", "head_sha": PR_HEAD, "status": "completed", "conclusion": "action_required",
               "output": {"title": "t", "summary": "s"}, "actions": actions})
    };
    let button = json!({"label": "Approve and run", "description": "d", "identifier": "approve"});
    assert_eq!(validate_request(&Method::POST, path, &with_actions(json!([button]))), Ok(()));
    assert_eq!(validate_request(&Method::PATCH, "/repos/o/r/check-runs/1", &json!({"actions": []})), Ok(()));
    let too_long = json!({"label": "A label over twenty chars", "description": "d", "identifier": "approve"});
    let no_identifier = json!({"label": "Approve", "description": "d"});
    for actions in [json!([too_long]), json!([no_identifier]), json!([button, button, button, button])] {
        assert!(
            validate_request(&Method::POST, path, &with_actions(actions.clone())).is_err(),
            "accepted {actions}"
        );
    }
    let permission = "/repos/o/r/collaborators/octocat/permission";
    assert_eq!(validate_request(&Method::GET, permission, &Json::Null), Ok(()));
    assert!(validate_request(&Method::GET, permission, &json!({})).is_err(), "a GET with a body");
    assert!(validate_request(&Method::POST, permission, &Json::Null).is_err());
}
