//! Processing stored webhook deliveries, oldest first. The webhook handler only stores
//! them; this task turns them into runs, so it also finishes, at the next start, any
//! delivery a crash left unprocessed. Each delivery is processed in one transaction
//! with everything it causes, so it causes it exactly once.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::events::{self, Delivered, HandlerError};
use super::Farm;
use crate::store::{Delivery, StoreError};

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

/// One pass over the backlog, in order; returns how many deliveries it processed. A
/// postponed delivery ends the pass, so later ones never overtake it.
pub async fn process_pending(farm: &Farm) -> Result<usize, StoreError> {
    let backlog = farm.store.unprocessed_deliveries(BATCH).await?;
    let mut processed = 0;
    for delivery in &backlog {
        let span = tracing::info_span!("delivery", id = %delivery.id, event = %delivery.event);
        let outcome = process(farm, delivery).instrument(span.clone()).await?;
        let _entered = span.enter();
        match outcome {
            Some(outcome) => tracing::info!(outcome, "processed delivery"),
            None => break,
        }
        processed += 1;
    }
    if processed > 0 {
        farm.outbox_waiting.notify_one();
        farm.dispatcher.wake();
    }
    Ok(processed)
}

/// Processes one delivery; `None` when it was postponed (the forge is unavailable).
async fn process(farm: &Farm, delivery: &Delivery) -> Result<Option<String>, StoreError> {
    let mut tx = farm.store.begin().await?;
    let outcome = match Delivered::read(delivery) {
        // Done, with why (the span names the delivery): never retried, never lost silently.
        Err(err) => {
            tracing::warn!(%err, "unreadable webhook delivery");
            format!("unreadable payload: {err}")
        }
        Ok(delivered) => {
            match events::handle(farm, &mut tx, delivered).await {
                Ok(outcome) | Err(HandlerError::Nothing(outcome)) => outcome,
                Err(HandlerError::Store(err)) => return Err(err),
                Err(HandlerError::ForgeUnavailable(err)) => {
                    // Nothing is written: the delivery is processed again on a later pass.
                    tracing::warn!(%err, "delivery postponed");
                    return Ok(None);
                }
            }
        }
    };
    tx.mark_delivery_processed(&delivery.id, &outcome).await?;
    tx.commit().await?;
    Ok(Some(outcome))
}
