//! The reporter: delivers the outbox to the forge. Per check run, the pending states go
//! in order and coalesce (only the newest state is sent, with the annotations of all of
//! them); failures wait and retry — with backoff after a 5xx or a network error, as long
//! as the forge asks after a rate limit — and everything survives a restart, since the
//! outbox is in the store.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tracing::Instrument;

use super::Farm;
use crate::forge::api::{send, ForgeError};
use crate::forge::app::GithubApp;
use crate::forge::checks::{find_check_run, request_bodies, CheckRunLinks, ANNOTATIONS_PER_REQUEST};
use crate::store::{now_ms, PendingCheckRun, StoreError};

/// Check runs handled per pass.
const BATCH: i64 = 50;
const POLL: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Delivers the outbox until the task is dropped.
pub async fn report_forever(farm: Arc<Farm>, app: Arc<GithubApp>) {
    loop {
        let pause = match report_due(&farm, &app).await {
            Ok(0) => POLL,
            Ok(_) => Duration::ZERO,
            Err(err) => {
                tracing::error!(%err, "the reporter could not read the outbox");
                POLL
            }
        };
        if !pause.is_zero() {
            let _ = tokio::time::timeout(pause, farm.outbox_waiting.notified()).await;
        }
    }
}

/// One pass: delivers what is due now; returns how many check runs reached the forge.
pub async fn report_due(farm: &Farm, app: &GithubApp) -> Result<usize, StoreError> {
    let due = farm.store.due_check_runs(now_ms(), BATCH).await?;
    let mut delivered = 0;
    for pending in &due {
        let span = tracing::info_span!(
            "check_run",
            id = pending.check_run_id,
            run = pending.run_id,
            job = pending.job_id
        );
        let last_item = pending.items.last().map_or(0, |i| i.id);
        let delivery = deliver(farm, app, pending).instrument(span).await;
        if let Some(forge_id) = delivery.forge_id.filter(|id| pending.forge_id != Some(*id)) {
            // Kept even when a later request of this delivery failed: the forge has it.
            farm.store.set_check_run_forge_id(pending.check_run_id, forge_id).await?;
        }
        match delivery.result {
            Ok(()) => {
                farm.store.mark_delivered(pending.check_run_id, last_item).await?;
                delivered += 1;
            }
            Err(ForgeError::Permanent(why) | ForgeError::Config(why) | ForgeError::NotFound(why)) => {
                // Sending the same again cannot succeed: record why, and move on so later
                // states of this check run are not blocked behind it.
                tracing::error!(why, "the forge refused a check-run state; dropped");
                farm.store.defer_delivery(pending.check_run_id, now_ms(), &why).await?;
                farm.store.mark_delivered(pending.check_run_id, last_item).await?;
            }
            Err(ForgeError::RateLimited(wait)) => {
                tracing::warn!(?wait, "rate limited by the forge; waiting");
                let at = now_ms() + wait.as_millis() as i64;
                farm.store.defer_delivery(pending.check_run_id, at, "rate limited").await?;
                // The limit is the installation's, not this check run's: stop this pass.
                break;
            }
            Err(ForgeError::Transient(why)) => {
                let attempts = pending.items.iter().map(|i| i.attempts).max().unwrap_or(0);
                let wait = backoff(attempts);
                tracing::warn!(why, ?wait, "check-run delivery failed; will retry");
                farm.store
                    .defer_delivery(pending.check_run_id, now_ms() + wait.as_millis() as i64, &why)
                    .await?;
            }
        }
    }
    Ok(delivered)
}

/// 1 s, 2 s, 4 s … capped at five minutes.
fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 16) as u32;
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// What one delivery did: the forge's id of the check run once known (created, found,
/// or known before), and whether every request went through.
struct Delivery {
    forge_id: Option<i64>,
    result: Result<(), ForgeError>,
}

/// Sends the newest state (and every pending annotation). A check run whose creation
/// was sent before without an answer is first looked for on the forge by its
/// `external_id`, and updated if found.
async fn deliver(farm: &Farm, app: &GithubApp, pending: &PendingCheckRun) -> Delivery {
    let mut forge_id = pending.forge_id;
    let result = send_state(farm, app, pending, &mut forge_id).await;
    Delivery { forge_id, result }
}

async fn send_state(
    farm: &Farm,
    app: &GithubApp,
    pending: &PendingCheckRun,
    forge_id: &mut Option<i64>,
) -> Result<(), ForgeError> {
    let installation = pending
        .installation_id
        .ok_or_else(|| ForgeError::Permanent("the event named no App installation".into()))?;
    let client = app.installation(installation).await?;
    let state = &pending.items.last().expect("a pending check run has items").state;
    let mut annotations: Vec<_> =
        pending.items.iter().flat_map(|i| i.state.annotations.iter().cloned()).collect();
    let links = links(farm, pending);
    if let (None, Some(sent_item)) = (*forge_id, pending.creation_sent_item) {
        *forge_id =
            find_check_run(&client, &pending.repo, &state.head_sha, app.app_id(), &links.external_id).await?;
        match forge_id {
            Some(id) => {
                tracing::info!(forge_id = id, "an earlier creation reached the forge; updating it");
                // That creation added the first batch of the annotations it carried.
                let carried: usize = pending
                    .items
                    .iter()
                    .filter(|i| i.id <= sent_item)
                    .map(|i| i.state.annotations.len())
                    .sum();
                annotations.drain(..carried.min(ANNOTATIONS_PER_REQUEST));
            }
            None => tracing::info!("an earlier creation did not reach the forge; creating the check run"),
        }
    }
    for body in request_bodies(state, &annotations, &links, forge_id.is_none()) {
        let answer = match *forge_id {
            None => {
                // Record-then-send: once this is committed, a lost answer or a crash
                // leads to a look-up by external_id, never to a second check run.
                let last_item = pending.items.last().map_or(0, |i| i.id);
                farm.store.mark_creation_sent(pending.check_run_id, last_item).await.map_err(|e| {
                    ForgeError::Transient(format!("recording the creation before sending it: {e}"))
                })?;
                send(&client, Method::POST, &format!("/repos/{}/check-runs", pending.repo), Some(&body))
                    .await?
            }
            Some(id) => {
                send(&client, Method::PATCH, &format!("/repos/{}/check-runs/{id}", pending.repo), Some(&body))
                    .await?
            }
        };
        if forge_id.is_none() {
            let id = answer.get("id").and_then(serde_json::Value::as_i64);
            *forge_id =
                Some(id.ok_or_else(|| ForgeError::Permanent("the created check run has no id".into()))?);
        }
    }
    Ok(())
}

/// `external_id` is the job id; `details_url` the job's page on the farm.
fn links(farm: &Farm, pending: &PendingCheckRun) -> CheckRunLinks {
    let base = farm.config.server.public_url.trim_end_matches('/');
    match pending.job_id {
        Some(job) => {
            CheckRunLinks { external_id: job.to_string(), details_url: format!("{base}/jobs/{job}") }
        }
        None => CheckRunLinks {
            external_id: format!("run-{}", pending.run_id),
            details_url: format!("{base}/runs/{}", pending.run_id),
        },
    }
}
