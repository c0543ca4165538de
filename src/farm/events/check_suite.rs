//! `check_suite`: on `rerequested` ("Re-run all checks" on the forge), every run of the
//! farm on that commit gets a new attempt.

use serde_json::Value as Json;

use super::{repo_of, Delivered, HandlerError};
use crate::farm::rerun::rerun;
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
) -> Result<String, HandlerError> {
    let payload = &delivery.payload;
    let action = payload.get("action").and_then(Json::as_str).unwrap_or_default();
    if action != "rerequested" {
        return Ok(format!("check_suite {action}: nothing to do"));
    }
    let repo = repo_of(payload)?;
    let Some(sha) = payload.pointer("/check_suite/head_sha").and_then(Json::as_str) else {
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
