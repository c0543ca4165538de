//! `workflow_dispatch`: a manual run of one workflow on a ref, with inputs. The payload
//! names the ref, not the commit: the forge says which commit it points at now, and
//! the run and its check runs use that commit. The inputs reach the workflow through
//! the raw payload (`github.event.inputs`).

use octocrab::models::webhook_events::payload::WorkflowDispatchWebhookEventPayload;

use super::{Delivered, HandlerError};
use crate::farm::start::{start_runs, EventOrigin};
use crate::farm::workflows::farm_workflows;
use crate::farm::Farm;
use crate::forge::api::ForgeError;
use crate::forge::repos::resolve_commit;
use crate::store::Tx;

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    dispatch: &WorkflowDispatchWebhookEventPayload,
) -> Result<String, HandlerError> {
    let repo = delivery.repo()?;
    let git_ref = dispatch.r#ref.as_str();
    let Some(app) = &farm.forge else {
        return Ok(format!("{repo}: no forge configured to resolve {git_ref}"));
    };
    let resolved = async {
        let installation = match delivery.installation_id() {
            Some(id) => id,
            None => app.installation_for_repo(repo).await?,
        };
        let client = app.installation(installation).await?;
        Ok::<_, ForgeError>((installation, resolve_commit(&client, repo, git_ref).await?))
    }
    .await;
    let (installation_id, sha) = match resolved {
        Ok(found) => found,
        Err(err @ (ForgeError::Transient(_) | ForgeError::RateLimited(_))) => {
            return Err(HandlerError::ForgeUnavailable(err))
        }
        Err(err) => return Ok(format!("{repo}: cannot resolve {git_ref}: {err}")),
    };
    let origin = EventOrigin {
        repo,
        installation_id: Some(installation_id),
        delivery_id: Some(delivery.id),
        check_sha: &sha,
        attempt_of: None,
        priority: 0,
    };
    let files = farm_workflows(&farm.config, repo);
    Ok(start_runs(tx, &delivery.event(), &origin, &files).await?.describe())
}
