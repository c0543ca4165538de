//! A check run is shown once on the commit, whatever happens to its creation: the
//! answer lost after the forge made it, the farm SIGKILLed while the forge holds the
//! request (made, or not), then restarted. The farm records that it sends a creation
//! before the request leaves, and looks the check run up by `external_id` before it
//! would create it again. A real `serve` against the test forge.

mod common;

use std::time::Duration;

use common::farm::{app_key_pair, deliver, example_payload, farm_and_forge, FarmServer};
use common::forge::{CreateFault, Failure, ForgeCheckRun, TestForge};

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";

/// One job the plan already knows is skipped: its check run goes from queued to
/// completed without a host.
const SKIPPED: &str = "\
name: Skip
on: push
jobs:
  never:
    if: github.event_name == 'schedule'
    runs-on: amd64
    steps:
      - run: make
";

fn push() -> Vec<u8> {
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    push.to_string().into_bytes()
}

/// The answer of a forge (or its proxy) that failed the request.
fn bad_gateway() -> Failure {
    Failure { status: 502, headers: vec![], body: serde_json::json!({"message": "Bad Gateway"}) }
}

fn creations(forge: &TestForge) -> usize {
    forge.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/check-runs")).count()
}

fn look_ups(forge: &TestForge) -> usize {
    forge.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with("/check-runs")).count()
}

/// Each external_id at most once on the forge.
fn assert_no_duplicate(runs: &[ForgeCheckRun]) {
    let mut ids: Vec<&str> = runs.iter().map(|r| r.external_id.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "a check run was created twice: {runs:#?}");
}

/// Waits (bounded) until the deliveries are processed and the farm's outbox is empty:
/// everything reached the forge.
async fn wait_until_reported(server: &FarmServer) {
    server.processed().await;
    let store = server.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.outbox_backlog().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the outbox never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_whose_answer_is_lost_is_found_and_updated_not_repeated() {
    let (server, forge) = farm_and_forge(REPO).await;
    // The first check run is created, but the farm hears a 502.
    forge.fault_next_creations([CreateFault::CreateThenFail(bad_gateway())]);
    deliver(&server, "push", "d-lost", &push()).await;
    wait_until_reported(&server).await;

    let runs = forge.check_runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_no_duplicate(&runs);
    // The retry looked the first one up and updated it; only the other one was created.
    assert_eq!(creations(&forge), 2);
    assert_eq!(look_ups(&forge), 1);
    let lost = format!("/repos/Codertocat/Hello-World/check-runs/{}", runs[0].id);
    assert!(
        forge.requests().iter().any(|r| r.method == "PATCH" && r.path == lost && r.status == 200),
        "the found check run was not updated: {:#?}",
        forge.requests()
    );
    // The farm knows the forge's id of both: later states are updates.
    let store = server.store().await;
    for run in &runs {
        let stored = store.run_of_forge_check_run("Codertocat/Hello-World", run.id).await.unwrap();
        assert!(
            stored.is_some(),
            "the farm does not know check run {} as the forge's {}",
            run.external_id,
            run.id
        );
    }
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_found_check_run_does_not_get_its_annotations_twice() {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let server = FarmServer::start_reporting(&forge.api_url(), &private, REPO);
    // An invalid workflow: its check run is created completed, with one annotation.
    server.write(
        "workflows/broken.yml",
        "name: Broken\non: push\njobs:\n  b:\n    runs-on: amd64\n    step: []\n",
    );
    forge.fault_next_creations([CreateFault::CreateThenFail(bad_gateway())]);
    deliver(&server, "push", "d-broken", &push()).await;
    wait_until_reported(&server).await;
    let runs = forge.check_runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!((runs[0].status.as_str(), runs[0].conclusion.as_deref()), ("completed", Some("failure")));
    assert_eq!(runs[0].annotations.len(), 1, "{:#?}", runs[0].annotations);
    assert_eq!((creations(&forge), look_ups(&forge)), (1, 1));
    assert_eq!(forge.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_creation_that_made_nothing_is_made_once_after_the_look_up() {
    let (server, forge) = farm_and_forge(REPO).await;
    // A 502 before the forge made anything: the look-up finds nothing, so it is created.
    forge.fault_next_creations([CreateFault::FailWithoutCreating(bad_gateway())]);
    deliver(&server, "push", "d-502", &push()).await;
    wait_until_reported(&server).await;
    let runs = forge.check_runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_no_duplicate(&runs);
    assert_eq!((creations(&forge), look_ups(&forge)), (3, 1));
    assert_eq!(forge.violations(), Vec::<String>::new());
}

/// The farm is SIGKILLed while the forge holds its only check run's creation (having
/// made it or not, as `fault` says), then restarted: one check run, in its final state.
async fn killed_while_creating(fault: CreateFault) -> TestForge {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let mut server = FarmServer::start_reporting(&forge.api_url(), &private, REPO);
    server.write("workflows/skip.yml", SKIPPED);
    forge.fault_next_creations([fault]);
    deliver(&server, "push", "d-held", &push()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !forge.requests().iter().any(|r| r.method == "POST" && r.status == 0) {
        assert!(std::time::Instant::now() < deadline, "the creation never reached the forge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill_and_restart();
    forge
        .wait_for("the skipped job's check run", |runs| {
            runs.iter().any(|r| r.conclusion.as_deref() == Some("skipped"))
        })
        .await;
    wait_until_reported(&server).await;

    let runs = forge.check_runs();
    assert_eq!(runs.len(), 1, "one job, one check run: {runs:#?}");
    assert_eq!(runs[0].name, "Skip / never");
    assert_eq!((runs[0].status.as_str(), runs[0].conclusion.as_deref()), ("completed", Some("skipped")));
    assert_eq!(look_ups(&forge), 1, "the restarted farm looked before creating");
    assert_eq!(forge.violations(), Vec::<String>::new());
    forge
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_forge_holds_a_creation_it_made_the_check_run_is_not_made_twice() {
    let forge = killed_while_creating(CreateFault::CreateThenHold).await;
    // Only the held creation: the restarted farm found it and updated it.
    assert_eq!(creations(&forge), 1);
    assert!(forge.requests().iter().any(|r| r.method == "PATCH" && r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_a_creation_is_lost_on_the_way_the_check_run_is_still_made() {
    let forge = killed_while_creating(CreateFault::Hold).await;
    // The held request made nothing; the look-up found nothing, so it was created again.
    assert_eq!(creations(&forge), 2);
}

/// A forge that takes a creation and never answers (a proxy that swallowed the answer)
/// holds the reporter only for `[forge] request_timeout`: the creation counts as failed,
/// the check run is looked up, found and updated to its final state, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_that_never_answers_holds_the_reporter_only_for_its_request_timeout() {
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    // Lines before the first table of the extra config belong to the harness's [forge].
    let config = format!("request_timeout = \"2s\"\n{REPO}");
    let server = FarmServer::start_reporting(&forge.api_url(), &private, &config);
    server.write("workflows/skip.yml", SKIPPED);
    forge.fault_next_creations([CreateFault::CreateThenHold]);
    deliver(&server, "push", "d-unanswered", &push()).await;
    forge
        .wait_for("the skipped job's check run, though its creation was never answered", |runs| {
            runs.iter().any(|r| r.conclusion.as_deref() == Some("skipped"))
        })
        .await;
    wait_until_reported(&server).await;
    let runs = forge.check_runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!((creations(&forge), look_ups(&forge)), (1, 1));
    assert_eq!(forge.violations(), Vec::<String>::new());
}
