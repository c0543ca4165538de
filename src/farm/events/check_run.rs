//! `check_run`: a button was pressed on one of the farm's check runs.
//!
//! `rerequested` ("Re-run" of one check run): the run it belongs to gets a new attempt.
//!
//! `requested_action` with the "Approve and run" identifier approves a fork's run that
//! waits for approval — only when the person who pressed it has write access, asked from
//! the forge (anyone who can see the pull request sees the button). The run's jobs are
//! then queued and their check runs show it, in the same transaction.

use octocrab::models::webhook_events::payload::{CheckRunWebhookEventAction, CheckRunWebhookEventPayload};
use serde_json::Value as Json;

use super::pull_request::write_access;
use super::{action_name, Delivered, HandlerError};
use crate::farm::rerun::rerun;
use crate::farm::start::{queued_state, APPROVE_ACTION};
use crate::farm::Farm;
use crate::store::{Approval, RunRow, StoreError, Tx};

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    check_run: &CheckRunWebhookEventPayload,
) -> Result<String, HandlerError> {
    match check_run.action {
        CheckRunWebhookEventAction::Rerequested => rerequested(farm, tx, delivery, check_run).await,
        CheckRunWebhookEventAction::RequestedAction => requested_action(farm, tx, delivery, check_run).await,
        ref other => Ok(format!("check_run {}: nothing to do", action_name(other))),
    }
}

async fn rerequested(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    check_run: &CheckRunWebhookEventPayload,
) -> Result<String, HandlerError> {
    let repo = delivery.repo()?;
    match run_of_check_run(farm, repo, check_run).await? {
        Ok(run) => Ok(rerun(farm, tx, &run).await?),
        Err(why) => Ok(why),
    }
}

async fn requested_action(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    check_run: &CheckRunWebhookEventPayload,
) -> Result<String, HandlerError> {
    let repo = delivery.repo()?;
    // octocrab's model of the event has no `requested_action` (the button pressed):
    // read it from the payload as sent.
    let identifier =
        delivery.payload.pointer("/requested_action/identifier").and_then(Json::as_str).unwrap_or_default();
    if identifier != APPROVE_ACTION {
        return Ok(format!("{repo}: unknown requested action `{identifier}`"));
    }
    // Read outside the transaction: it writes first, after asking the forge.
    let run = match run_of_check_run(farm, repo, check_run).await? {
        Ok(run) => run,
        Err(why) => return Ok(why),
    };
    let run_id = run.id;
    if run.approval != Approval::Required {
        return Ok(format!("{repo}: run {run_id} does not wait for approval ({})", run.approval.as_str()));
    }
    let sender = delivery.sender();
    let access = write_access(farm, delivery.installation_id(), repo, sender).await?;
    if !access.write {
        return Ok(format!(
            "{repo}: @{sender} ({}) may not approve run {run_id}: nothing changed",
            access.said
        ));
    }
    if !tx.approve_run(run_id).await? {
        return Ok(format!("{repo}: run {run_id} was already approved"));
    }
    let check_runs = tx.job_check_runs(run_id).await?;
    for check_run in &check_runs {
        let state = queued_state(
            check_run.state.name.clone(),
            check_run.state.head_sha.clone(),
            &check_run.runs_on,
            &check_run.needs,
        );
        tx.queue_check_run_state(check_run.check_run_id, &state).await?;
    }
    Ok(format!("{repo}: run {run_id} approved by @{sender}; {} check run(s) queued", check_runs.len()))
}

/// The run of the event's check run: by the forge's id or, failing that, by its
/// `external_id` (the job id; see the reporter's links). `Err` says why there is none.
async fn run_of_check_run(
    farm: &Farm,
    repo: &str,
    check_run: &CheckRunWebhookEventPayload,
) -> Result<Result<RunRow, String>, StoreError> {
    // octocrab (0.54) leaves the event's `check_run` untyped (a JSON value), and its
    // REST `CheckRun` model has no `external_id`: read the two fields needed here.
    let forge_id = check_run.check_run.get("id").and_then(Json::as_i64);
    let job_id =
        check_run.check_run.get("external_id").and_then(Json::as_str).and_then(|id| id.parse::<i64>().ok());
    let mut run_id = None;
    if let Some(forge_id) = forge_id {
        run_id = farm.store.run_of_forge_check_run(repo, forge_id).await?;
    }
    if let (None, Some(job_id)) = (run_id, job_id) {
        run_id = farm.store.run_of_job(repo, job_id).await?;
    }
    let Some(run_id) = run_id else {
        return Ok(Err(format!("{repo}: check run {forge_id:?} (job {job_id:?}) is not the farm's")));
    };
    Ok(farm.store.run(run_id).await?.ok_or_else(|| format!("{repo}: run {run_id} is gone")))
}
