//! Group commit for webhook deliveries. Each delivery must be durable before the forge
//! gets its 2xx, and a durable commit costs a disk flush; one flush per delivery caps
//! the farm at the disk's flush rate, and concurrent SQLite writers queue on the
//! database lock with sleeps. Instead, one task takes every delivery queued while the
//! previous commit was flushing and commits them together, then answers each waiter.
//! Under light load a batch is one delivery, so nothing waits for a batch to fill.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::deliveries::{insert_delivery_in, DeliveryInsert};
use super::StoreError;

/// Deliveries one transaction takes at most.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer before senders wait too (back pressure).
const QUEUE: usize = 4096;

/// A delivery waiting for its commit.
struct Queued {
    id: String,
    event: String,
    body: String,
    received_at: i64,
    answer: oneshot::Sender<Result<DeliveryInsert, StoreError>>,
}

/// The handle on the writer task; the task ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct DeliveryWriter {
    queue: mpsc::Sender<Queued>,
}

impl DeliveryWriter {
    /// Starts the writer task on the current runtime.
    pub(super) fn spawn(pool: AnyPool) -> DeliveryWriter {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_forever(pool, waiting));
        DeliveryWriter { queue }
    }

    /// Queues a delivery and waits for its commit. `None` when the writer task is gone
    /// (its runtime ended); the caller then commits on its own.
    pub(super) async fn insert(
        &self,
        id: &str,
        event: &str,
        body: &str,
        received_at: i64,
    ) -> Option<Result<DeliveryInsert, StoreError>> {
        let (answer, answered) = oneshot::channel();
        let queued =
            Queued { id: id.to_owned(), event: event.to_owned(), body: body.to_owned(), received_at, answer };
        self.queue.send(queued).await.ok()?;
        answered.await.ok()
    }
}

async fn write_forever(pool: AnyPool, mut waiting: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit_batch(&pool, &batch).await {
            Ok(outcomes) => {
                tracing::debug!(deliveries = batch.len(), "committed a batch of deliveries");
                for (queued, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = queued.answer.send(Ok(outcome));
                }
            }
            Err(err) => {
                // One bad delivery must not fail the others: each is committed alone
                // and gets its own answer.
                tracing::warn!(%err, deliveries = batch.len(), "a batch of deliveries failed; committing them one by one");
                for queued in batch.drain(..) {
                    let outcome = insert_delivery_in(
                        &pool,
                        &queued.id,
                        &queued.event,
                        &queued.body,
                        queued.received_at,
                    )
                    .await;
                    let _ = queued.answer.send(outcome);
                }
            }
        }
    }
}

/// Inserts a batch in one transaction, in queue order: of two deliveries with the same
/// id in one batch, the first is `Stored` and the second `Duplicate`, as if they had
/// come one after the other.
async fn commit_batch(pool: &AnyPool, batch: &[Queued]) -> Result<Vec<DeliveryInsert>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for queued in batch {
        outcomes.push(
            insert_delivery_in(&mut *tx, &queued.id, &queued.event, &queued.body, queued.received_at).await?,
        );
    }
    tx.commit().await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn queued(id: &str) -> (Queued, oneshot::Receiver<Result<DeliveryInsert, StoreError>>) {
        let (answer, answered) = oneshot::channel();
        let queued =
            Queued { id: id.to_owned(), event: "push".into(), body: "{}".into(), received_at: 1, answer };
        (queued, answered)
    }

    #[tokio::test]
    async fn a_batch_stores_the_first_of_equal_ids_and_the_rest_are_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
        store.insert_delivery("old", "push", "{}").await.unwrap();
        let batch: Vec<_> = ["a", "old", "a", "b", "a"].iter().map(|id| queued(id).0).collect();
        let outcomes = commit_batch(store.pool(), &batch).await.unwrap();
        use DeliveryInsert::{Duplicate, Stored};
        assert_eq!(outcomes, [Stored, Duplicate, Duplicate, Stored, Duplicate]);
        assert_eq!(store.delivery_count().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn every_waiter_of_a_batch_gets_its_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
        // Queued before the writer runs, so all four are one batch.
        let (queue, waiting) = mpsc::channel(QUEUE);
        let mut answers = Vec::new();
        for id in ["x", "y", "x", "z"] {
            let (queued, answered) = queued(id);
            queue.send(queued).await.unwrap();
            answers.push(answered);
        }
        drop(queue);
        write_forever(store.pool().clone(), waiting).await;
        let mut outcomes = Vec::new();
        for answered in answers {
            outcomes.push(answered.await.unwrap().unwrap());
        }
        use DeliveryInsert::{Duplicate, Stored};
        assert_eq!(outcomes, [Stored, Stored, Duplicate, Stored]);
        assert_eq!(store.delivery_count().await.unwrap(), 3);
    }
}
