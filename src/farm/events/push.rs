//! `push`: a branch or tag moved. Runs the workflows whose `on.push` filters match; a
//! push that deletes a branch or tag runs nothing (as on GitHub).

use octocrab::models::webhook_events::payload::PushWebhookEventPayload;

use super::{Delivered, HandlerError};
use crate::farm::start::{start_runs, EventOrigin};
use crate::farm::workflows::event_workflows;
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    push: &PushWebhookEventPayload,
) -> Result<String, HandlerError> {
    let repo = delivery.repo()?;
    if push.deleted {
        return Ok(format!("{repo}: a deleted ref starts nothing"));
    }
    let origin = EventOrigin {
        repo,
        installation_id: delivery.installation_id(),
        delivery_id: Some(delivery.id),
        check_sha: &push.after,
        attempt_of: None,
        priority: 0,
    };
    let files = event_workflows(farm, repo, origin.installation_id, &push.after).await?;
    Ok(start_runs(tx, &delivery.event(), &origin, &files).await?.describe())
}
