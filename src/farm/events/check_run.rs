//! `check_run`: on `rerequested` ("Re-run" of one check run on the forge), the run it
//! belongs to gets a new attempt. (`requested_action`, the approval of fork runs, comes
//! with its own handler code.)

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
    match action {
        "rerequested" => rerequested(farm, tx, delivery).await,
        other => Ok(format!("check_run {other}: nothing to do")),
    }
}

async fn rerequested(farm: &Farm, tx: &mut Tx, delivery: &Delivered<'_>) -> Result<String, HandlerError> {
    let payload = &delivery.payload;
    let repo = match repo_of(payload) {
        Ok(repo) => repo,
        Err(why) => return Ok(why),
    };
    let Some(forge_id) = payload.pointer("/check_run/id").and_then(Json::as_i64) else {
        return Ok(format!("{repo}: check_run without id"));
    };
    let Some(run_id) = farm.store.run_of_forge_check_run(repo, forge_id).await? else {
        return Ok(format!("{repo}: check run {forge_id} is not the farm's"));
    };
    let Some(run) = farm.store.run(run_id).await? else {
        return Ok(format!("{repo}: run {run_id} is gone"));
    };
    Ok(rerun(farm, tx, &run).await?)
}
