//! Webhook deliveries, stored raw before the forge gets its answer.

use sqlx::{Any, Row};

use super::{now_ms, Store, StoreError};

/// The id prefix of the events the API's dispatches store as deliveries (the forge's
/// delivery ids are GUIDs).
pub const DISPATCH_ID_PREFIX: &str = "dispatch:";

/// Inserts one delivery unless its id is stored already (`Duplicate`), on a pool (its
/// own commit) or inside a transaction.
pub(super) async fn insert_delivery_in<'c, E>(
    executor: E,
    id: &str,
    event: &str,
    body: &str,
    received_at: i64,
) -> Result<DeliveryInsert, StoreError>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    let result = sqlx::query(
        "INSERT INTO deliveries (id, event, body, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(event)
    .bind(body)
    .bind(received_at)
    .execute(executor)
    .await?;
    Ok(if result.rows_affected() == 1 { DeliveryInsert::Stored } else { DeliveryInsert::Duplicate })
}

/// One webhook delivery as the forge sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Delivery`: the forge's id, the same on a redelivery.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub body: String,
    pub received_at: i64,
}

/// Whether a delivery was new or a redelivery of one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryInsert {
    Stored,
    Duplicate,
}

impl Store {
    /// Commits a delivery; a second delivery with the same id changes nothing. Deliveries
    /// arriving together share one commit (see `writer`); each caller still returns
    /// only after its own delivery is durable.
    pub async fn insert_delivery(
        &self,
        id: &str,
        event: &str,
        body: &str,
    ) -> Result<DeliveryInsert, StoreError> {
        let received_at = now_ms();
        match self.delivery_writer.insert(id, event, body, received_at).await {
            Some(outcome) => outcome,
            // The writer's runtime has ended (a store used from another runtime):
            // commit alone, which is as durable, only slower.
            None => insert_delivery_in(self.writes(), id, event, body, received_at).await,
        }
    }

    /// Deliveries not processed yet, oldest first: after a crash, these are the work left.
    pub async fn unprocessed_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event, body, received_at FROM deliveries WHERE processed_at IS NULL \
             ORDER BY received_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// Records what processing a delivery did (`outcome` is a short text for the logs).
    pub async fn mark_delivery_processed(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET processed_at = $1, outcome = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(outcome)
            .bind(id)
            .execute(self.writes())
            .await?;
        Ok(())
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query("SELECT id, event, body, received_at FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(delivery_row).transpose()?)
    }

    /// Whether a delivery is stored and processed.
    pub async fn delivery_processed(&self, id: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE id = $1 AND processed_at IS NOT NULL")
                .bind(id)
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<i64, _>("n")? == 1)
    }

    pub async fn delivery_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }
}

impl super::Tx {
    /// Stores an event the farm made itself (a dispatch through the API) as a delivery
    /// in this transaction, so its runs have an event to be re-run from.
    pub async fn insert_own_event(
        &mut self,
        id: &str,
        event: &str,
        payload: &serde_json::Value,
    ) -> Result<DeliveryInsert, StoreError> {
        insert_delivery_in(self.conn().await?, id, event, &payload.to_string(), now_ms()).await
    }
}

fn delivery_row(row: &sqlx::any::AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.try_get("id")?,
        event: row.try_get("event")?,
        body: row.try_get("body")?,
        received_at: row.try_get("received_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_redelivery_is_stored_once() {
        let (_dir, store) = store().await;
        assert_eq!(store.insert_delivery("d1", "push", "{}").await.unwrap(), DeliveryInsert::Stored);
        assert_eq!(store.insert_delivery("d1", "push", "{}").await.unwrap(), DeliveryInsert::Duplicate);
        assert_eq!(store.delivery_count().await.unwrap(), 1);
    }

    /// Many webhook requests at once, as the group-commit writer batches them: of the
    /// requests carrying one id exactly one is `Stored`, and every distinct id is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_are_each_stored_once() {
        let (_dir, store) = store().await;
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..200 {
            let store = store.clone();
            // Every other request redelivers "same"; the rest are distinct.
            let id = if n % 2 == 0 { "same".to_owned() } else { format!("d{n}") };
            requests
                .spawn(async move { (id.clone(), store.insert_delivery(&id, "push", "{}").await.unwrap()) });
        }
        let mut stored_same = 0;
        while let Some(answer) = requests.join_next().await {
            let (id, outcome) = answer.unwrap();
            if id == "same" {
                stored_same += usize::from(outcome == DeliveryInsert::Stored);
            } else {
                assert_eq!(outcome, DeliveryInsert::Stored, "{id}");
            }
        }
        assert_eq!(stored_same, 1);
        assert_eq!(store.delivery_count().await.unwrap(), 101);
    }

    #[tokio::test]
    async fn processed_deliveries_leave_the_backlog() {
        let (_dir, store) = store().await;
        store.insert_delivery("d1", "push", "{\"a\":1}").await.unwrap();
        store.insert_delivery("d2", "ping", "{}").await.unwrap();
        let backlog = store.unprocessed_deliveries(10).await.unwrap();
        assert_eq!(backlog.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d1", "d2"]);
        assert_eq!(backlog[0].body, "{\"a\":1}");
        store.mark_delivery_processed("d1", "planned 1 run").await.unwrap();
        let backlog = store.unprocessed_deliveries(10).await.unwrap();
        assert_eq!(backlog.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d2"]);
    }
}
