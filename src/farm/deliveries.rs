//! Processing stored webhook deliveries, oldest first. The webhook handler only stores
//! them; this task turns them into runs, so it also finishes, at the next start, any
//! delivery a crash left unprocessed. Each delivery is processed in one transaction
//! with everything it causes, so it causes it exactly once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tracing::Instrument;

use super::start::{start_runs, EventOrigin};
use super::workflows::farm_workflows;
use super::Farm;
use crate::store::{Delivery, StoreError};
use crate::workflow::event::Event;

/// How many stored deliveries one pass takes.
const BATCH: i64 = 100;
/// A pass also runs this often without being woken, to pick up anything missed.
const POLL: Duration = Duration::from_secs(5);

/// Processes deliveries until the task is dropped.
pub async fn process_forever(farm: Arc<Farm>) {
    loop {
        match process_pending(&farm).await {
            Ok(0) => {
                let _ = tokio::time::timeout(POLL, farm.deliveries_waiting.notified()).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(%err, "processing webhook deliveries failed; retrying");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// One pass over the backlog; returns how many deliveries it processed.
pub async fn process_pending(farm: &Farm) -> Result<usize, StoreError> {
    let backlog = farm.store.unprocessed_deliveries(BATCH).await?;
    for delivery in &backlog {
        let span = tracing::info_span!("delivery", id = %delivery.id, event = %delivery.event);
        async {
            let outcome = process(farm, delivery).await?;
            tracing::info!(outcome, "processed delivery");
            Ok::<_, StoreError>(())
        }
        .instrument(span)
        .await?;
    }
    if !backlog.is_empty() {
        farm.outbox_waiting.notify_one();
    }
    Ok(backlog.len())
}

async fn process(farm: &Farm, delivery: &Delivery) -> Result<String, StoreError> {
    let mut tx = farm.store.begin().await?;
    let outcome = match serde_json::from_str::<Json>(&delivery.body) {
        Err(err) => format!("unreadable payload: {err}"),
        Ok(payload) => match delivery.event.as_str() {
            "ping" => "pong".to_owned(),
            "push" | "pull_request" | "workflow_dispatch" => {
                let event = Event::new(delivery.event.clone(), payload);
                match origin_of(&event, &delivery.id) {
                    Err(why) => why,
                    Ok(origin) if deleted_ref(&event) => {
                        format!("{}: a deleted ref starts nothing", origin.repo)
                    }
                    Ok(origin) => {
                        let files = farm_workflows(&farm.config, origin.repo);
                        start_runs(&mut tx, &event, &origin, &files).await?.describe()
                    }
                }
            }
            // Re-runs, installations and fork approval arrive with the rest of issue 3.
            other => format!("{other}: stored, nothing to do yet"),
        },
    };
    tx.mark_delivery_processed(&delivery.id, &outcome).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// A push that deletes a branch or tag (`after` all zeros) runs no workflow.
fn deleted_ref(event: &Event) -> bool {
    event.name == "push" && event.payload.get("deleted").and_then(Json::as_bool) == Some(true)
}

/// Where the runs of an event belong; an error text when the payload does not say.
fn origin_of<'a>(event: &'a Event, delivery_id: &'a str) -> Result<EventOrigin<'a>, String> {
    let repo = event
        .payload
        .pointer("/repository/full_name")
        .and_then(Json::as_str)
        .ok_or_else(|| "payload without repository.full_name".to_owned())?;
    let check_sha = match event.name.as_str() {
        "pull_request" => event.payload.pointer("/pull_request/head/sha").and_then(Json::as_str),
        _ => event.sha(),
    };
    // A manual dispatch names a ref, not a commit; resolving it needs the forge API
    // (next step of issue 3). Until then such a delivery starts nothing.
    let check_sha = check_sha.ok_or_else(|| format!("{repo}: no commit in the payload"))?;
    Ok(EventOrigin {
        repo,
        installation_id: event.payload.pointer("/installation/id").and_then(Json::as_i64),
        delivery_id: Some(delivery_id),
        check_sha,
    })
}
