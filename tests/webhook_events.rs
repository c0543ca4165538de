//! Stored deliveries read as octocrab's typed events (`forge::webhook::parse_event`):
//! every real example of every event the farm handles (`@octokit/webhooks-examples`,
//! read at test time) reads as its kind, the fields the handlers use come out right,
//! and a delivery that cannot be read is done with why, not lost.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use metalfarm::config::Config;
use metalfarm::farm::deliveries::process_pending;
use metalfarm::farm::Farm;
use metalfarm::forge::webhook::{parse_event, PayloadError, HANDLED_EVENTS};
use metalfarm::store::Store;
use octocrab::models::webhook_events::payload::{
    CheckRunWebhookEventAction, CheckSuiteWebhookEventAction, InstallationWebhookEventAction,
    PullRequestWebhookEventAction,
};
use octocrab::models::webhook_events::{EventInstallation, WebhookEvent, WebhookEventPayload};
use serde_json::{json, Value as Json};

/// The example of `event` that `pick` chooses, as the typed event and the raw payload.
fn example(event: &str, pick: impl Fn(&Json) -> bool) -> (WebhookEvent, Json) {
    let raw = common::webhook_examples(event)
        .into_iter()
        .find(|payload| pick(payload))
        .unwrap_or_else(|| panic!("no such {event} example"));
    (read(event, &raw), raw)
}

fn read(event: &str, raw: &Json) -> WebhookEvent {
    parse_event(event, &raw.to_string()).unwrap_or_else(|err| panic!("{event}: {err}"))
}

fn repo(webhook: &WebhookEvent) -> Option<&str> {
    webhook.repository.as_ref().and_then(|repo| repo.full_name.as_deref())
}

fn installation_id(webhook: &WebhookEvent) -> Option<u64> {
    webhook.installation.as_ref().map(|installation| installation.id().0)
}

fn sender(webhook: &WebhookEvent) -> Option<&str> {
    webhook.sender.as_ref().map(|sender| sender.login.as_str())
}

#[test]
fn every_example_of_every_handled_event_reads_as_its_kind() {
    let mut read_examples = 0;
    for &event in HANDLED_EVENTS {
        let examples = common::webhook_examples(event);
        assert!(!examples.is_empty(), "no {event} examples");
        for (i, raw) in examples.iter().enumerate() {
            let webhook = parse_event(event, &raw.to_string())
                .unwrap_or_else(|err| panic!("{event} example {i} does not read: {err}"));
            assert_eq!(serde_json::to_value(&webhook.kind).unwrap(), json!(event), "{event} example {i}");
            let specific_fits = match &webhook.specific {
                WebhookEventPayload::Push(_) => event == "push",
                WebhookEventPayload::PullRequest(_) => event == "pull_request",
                WebhookEventPayload::WorkflowDispatch(_) => event == "workflow_dispatch",
                WebhookEventPayload::CheckRun(_) => event == "check_run",
                WebhookEventPayload::CheckSuite(_) => event == "check_suite",
                WebhookEventPayload::Installation(_) => event == "installation",
                WebhookEventPayload::InstallationRepositories(_) => event == "installation_repositories",
                WebhookEventPayload::Ping(_) => event == "ping",
                _ => false,
            };
            assert!(specific_fits, "{event} example {i} read as {:?}", webhook.kind);
            if event != "ping" {
                assert_eq!(repo(&webhook), raw["repository"]["full_name"].as_str(), "{event} example {i}");
            }
            read_examples += 1;
        }
    }
    // As many as the examples package had when this was written, or more.
    assert!(read_examples >= 70, "only {read_examples} examples");
}

#[test]
fn a_branch_push_gives_its_ref_commit_repository_and_installation() {
    let (webhook, _) = example("push", |p| p["ref"] == "refs/heads/master" && p["installation"].is_object());
    let WebhookEventPayload::Push(push) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(push.r#ref, "refs/heads/master");
    assert_eq!(push.after, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert!(!push.deleted);
    assert_eq!(repo(&webhook), Some("Codertocat/Hello-World"));
    assert_eq!(installation_id(&webhook), Some(1));
    assert_eq!(sender(&webhook), Some("Codertocat"));
}

#[test]
fn a_deleted_tag_push_says_deleted() {
    let (webhook, _) = example("push", |p| p["ref"] == "refs/tags/simple-tag" && p["deleted"] == true);
    let WebhookEventPayload::Push(push) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(push.r#ref, "refs/tags/simple-tag");
    assert!(push.deleted);
    assert_eq!(push.after, "0".repeat(40));
}

#[test]
fn a_pull_request_from_a_fork_names_the_fork_head_and_author() {
    // The examples are all same-repository pull requests: move the head to a fork, as
    // GitHub sends it for one.
    let mut raw = common::webhook_examples("pull_request")
        .into_iter()
        .find(|p| p["action"] == "opened")
        .expect("an opened pull_request example");
    raw["pull_request"]["user"]["login"] = json!("someone");
    let head = &mut raw["pull_request"]["head"];
    head["repo"]["full_name"] = json!("someone/Hello-World");
    head["repo"]["fork"] = json!(true);
    let head_sha = head["sha"].as_str().expect("head sha").to_owned();

    let webhook = read("pull_request", &raw);
    let WebhookEventPayload::PullRequest(pull) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(pull.action, PullRequestWebhookEventAction::Opened);
    assert_eq!(pull.number, 2);
    assert_eq!(pull.pull_request.head.sha, head_sha);
    let head_repo = pull.pull_request.head.repo.as_ref().and_then(|r| r.full_name.as_deref());
    assert_eq!(head_repo, Some("someone/Hello-World"));
    assert_eq!(pull.pull_request.base.ref_field, "master");
    assert_eq!(pull.pull_request.user.as_ref().map(|u| u.login.as_str()), Some("someone"));
    assert_eq!(repo(&webhook), Some("Codertocat/Hello-World"));

    // A deleted fork: no head repository at all.
    raw["pull_request"]["head"]["repo"] = Json::Null;
    let webhook = read("pull_request", &raw);
    let WebhookEventPayload::PullRequest(pull) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert!(pull.pull_request.head.repo.is_none());
}

#[test]
fn a_pressed_check_run_button_gives_its_check_run_and_who_pressed_it() {
    let (webhook, raw) = example("check_run", |p| p["action"] == "requested_action");
    let WebhookEventPayload::CheckRun(check_run) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(check_run.action, CheckRunWebhookEventAction::RequestedAction);
    // octocrab leaves `check_run` untyped and has no `requested_action`: the handler
    // reads these from the JSON, as here.
    assert_eq!(check_run.check_run.get("id").and_then(Json::as_i64), Some(1494503112));
    assert_eq!(raw.pointer("/requested_action/identifier").and_then(Json::as_str), Some("lgtm|26764"));
    assert_eq!(sender(&webhook), raw["sender"]["login"].as_str());
    assert!(sender(&webhook).is_some_and(|login| !login.is_empty()));

    let (webhook, _) = example("check_run", |p| p["action"] == "rerequested");
    let WebhookEventPayload::CheckRun(check_run) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(check_run.action, CheckRunWebhookEventAction::Rerequested);
    assert_eq!(check_run.check_run.get("id").and_then(Json::as_i64), Some(4));
}

#[test]
fn suites_dispatches_and_installations_give_what_their_handlers_read() {
    let (webhook, raw) = example("check_suite", |p| p["action"] == "rerequested");
    let WebhookEventPayload::CheckSuite(suite) = &webhook.specific else { panic!("{:?}", webhook.kind) };
    assert_eq!(suite.action, CheckSuiteWebhookEventAction::Rerequested);
    let head_sha = suite.check_suite.get("head_sha").and_then(Json::as_str);
    assert_eq!(head_sha, raw["check_suite"]["head_sha"].as_str());
    assert!(head_sha.is_some());

    let (webhook, raw) = example("workflow_dispatch", |_| true);
    let WebhookEventPayload::WorkflowDispatch(dispatch) = &webhook.specific else {
        panic!("{:?}", webhook.kind)
    };
    assert_eq!(Some(dispatch.r#ref.as_str()), raw["ref"].as_str());
    assert_eq!(dispatch.inputs, raw["inputs"]);

    let (webhook, raw) = example("installation", |p| p["action"] == "created");
    let WebhookEventPayload::Installation(installation) = &webhook.specific else {
        panic!("{:?}", webhook.kind)
    };
    assert_eq!(installation.action, InstallationWebhookEventAction::Created);
    let Some(EventInstallation::Full(full)) = &webhook.installation else {
        panic!("{:?}", webhook.installation)
    };
    assert_eq!(Some(full.account.login.as_str()), raw["installation"]["account"]["login"].as_str());
    assert_eq!(installation_id(&webhook), raw["installation"]["id"].as_u64());
}

#[test]
fn payload_errors_say_whether_it_is_json_at_all() {
    assert!(matches!(parse_event("push", "{not json"), Err(PayloadError::NotJson(_))));
    let err = parse_event("push", r#"{"ref": 42}"#).expect_err("a push without its fields");
    assert!(matches!(err, PayloadError::Unexpected { .. }), "{err:?}");
    assert!(err.to_string().starts_with("not a `push` event as octocrab reads it: "), "{err}");
}

/// A writer the test's log goes to.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A delivery stored as received (signed, JSON) but not readable as its event: it is
/// processed — done, with why in its outcome and a warning naming it — and the ones
/// after it are processed too.
#[tokio::test]
async fn an_unreadable_delivery_is_done_with_why_and_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", dir.path().join("farm.db").display());
    let config =
        Config::from_toml(&format!("[server]\ndatabase = \"{database}\"\n"), "farm.toml", dir.path())
            .expect("config");
    let store = Store::open(&database).await.expect("open the store");
    let farm = Farm::new(config, store.clone(), None);
    let (_, mut push) = example("push", |p| p["ref"] == "refs/heads/master");
    push["after"] = json!(42);
    store.insert_delivery("d-odd", "push", &push.to_string()).await.expect("store");
    store.insert_delivery("d-ping", "ping", r#"{"zen": "Keep it logically awesome."}"#).await.expect("store");

    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_ansi(false)
        .finish();
    let processed = {
        let _default = tracing::subscriber::set_default(subscriber);
        process_pending(&farm).await.expect("processing")
    };

    assert_eq!(processed, 2);
    assert!(store.delivery_processed("d-odd").await.unwrap());
    assert!(store.delivery_processed("d-ping").await.unwrap());
    // The store has no reader for outcomes (they are for the logs): read the column.
    let outcome = |id: &'static str| {
        let database = database.clone();
        async move {
            let pool = sqlx::SqlitePool::connect(&database).await.expect("open the database");
            let outcome: String = sqlx::query_scalar("SELECT outcome FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("outcome");
            pool.close().await;
            outcome
        }
    };
    let odd = outcome("d-odd").await;
    assert!(odd.starts_with("unreadable payload: not a `push` event as octocrab reads it: "), "{odd}");
    assert!(odd.contains("invalid type: integer `42`"), "{odd}");
    assert_eq!(outcome("d-ping").await, "pong");

    let log = String::from_utf8(log.0.lock().unwrap().clone()).expect("UTF-8 log");
    let warning = log
        .lines()
        .find(|line| line.contains("WARN") && line.contains("unreadable"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    assert!(warning.contains("d-odd"), "{warning}");
    store.close().await;
}
