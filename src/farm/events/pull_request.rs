//! `pull_request`: opened, synchronize, reopened, closed… Runs the workflows whose
//! `on.pull_request` types and filters match, reporting on the pull request's head commit.

use serde_json::Value as Json;

use super::{event_of, installation_of, repo_of, Delivered, HandlerError};
use crate::farm::start::{start_runs, EventOrigin};
use crate::farm::workflows::farm_workflows;
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
) -> Result<String, HandlerError> {
    let payload = &delivery.payload;
    let repo = match repo_of(payload) {
        Ok(repo) => repo,
        Err(why) => return Ok(why),
    };
    let Some(head_sha) = payload.pointer("/pull_request/head/sha").and_then(Json::as_str) else {
        return Ok(format!("{repo}: pull request without a head commit"));
    };
    let origin = EventOrigin {
        repo,
        installation_id: installation_of(payload),
        delivery_id: Some(delivery.id),
        check_sha: head_sha,
        attempt_of: None,
    };
    let files = farm_workflows(&farm.config, repo);
    Ok(start_runs(tx, &event_of(delivery), &origin, &files).await?.describe())
}
