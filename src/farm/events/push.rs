//! `push`: a branch or tag moved. Runs the workflows whose `on.push` filters match; a
//! push that deletes a branch or tag runs nothing (as on GitHub).

use serde_json::Value as Json;

use super::{event_of, installation_of, repo_of, Delivered, HandlerError};
use crate::farm::start::{start_runs, EventOrigin};
use crate::farm::workflows::event_workflows;
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
) -> Result<String, HandlerError> {
    let payload = &delivery.payload;
    let repo = repo_of(payload)?;
    if payload.get("deleted").and_then(Json::as_bool) == Some(true) {
        return Ok(format!("{repo}: a deleted ref starts nothing"));
    }
    let Some(sha) = payload.get("after").and_then(Json::as_str) else {
        return Ok(format!("{repo}: push without `after`"));
    };
    let origin = EventOrigin {
        repo,
        installation_id: installation_of(payload),
        delivery_id: Some(delivery.id),
        check_sha: sha,
        attempt_of: None,
        priority: 0,
    };
    let files = event_workflows(farm, repo, origin.installation_id, sha).await?;
    Ok(start_runs(tx, &event_of(delivery), &origin, &files).await?.describe())
}
