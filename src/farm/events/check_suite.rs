//! `check_suite`: on `rerequested` ("Re-run all checks" on the forge), every run of the
//! farm on that commit gets a new attempt.

use octocrab::models::webhook_events::payload::{
    CheckSuiteWebhookEventAction, CheckSuiteWebhookEventPayload,
};
use serde_json::Value as Json;

use super::{action_name, Delivered, HandlerError};
use crate::farm::rerun::rerun;
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    suite: &CheckSuiteWebhookEventPayload,
) -> Result<String, HandlerError> {
    if suite.action != CheckSuiteWebhookEventAction::Rerequested {
        return Ok(format!("check_suite {}: nothing to do", action_name(&suite.action)));
    }
    let repo = delivery.repo()?;
    // octocrab (0.54) leaves the event's `check_suite` untyped (a JSON value), and its
    // REST `CheckSuite` model wants fields the webhook does not send: read the one
    // field needed here.
    let Some(sha) = suite.check_suite.get("head_sha").and_then(Json::as_str) else {
        return Ok(format!("{repo}: check suite without head_sha"));
    };
    let runs = farm.store.latest_runs_for_commit(repo, sha).await?;
    if runs.is_empty() {
        return Ok(format!("{repo}: no run on {sha} to re-run"));
    }
    let mut outcomes = Vec::new();
    for run in &runs {
        outcomes.push(rerun(farm, tx, run).await?);
    }
    Ok(outcomes.join("; "))
}
