//! `schedule` ticks: the ones fired, when the farm first saw each schedule, and the last
//! minute the cron looked at. Which ticks are due, missed or too old is decided in
//! `farm::cron`; times here are unix milliseconds of a UTC minute.

use serde_json::Value as Json;
use sqlx::Row;

use super::deliveries::insert_delivery_in;
use super::{now_ms, DeliveryInsert, Store, StoreError, Tx};

/// One `cron:` entry of one workflow file of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CronKey {
    pub repo: String,
    /// The workflow file's path.
    pub workflow: String,
    /// The entry as written.
    pub cron: String,
}

/// A tick the cron fired, with the run it started (none when the workflow no longer
/// started one, e.g. its file changed in between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredTick {
    pub key: CronKey,
    /// The minute it is for.
    pub tick_at: i64,
    /// When its run was recorded: later than `tick_at` when it ran late.
    pub fired_at: i64,
    /// The stored `schedule` event its runs were started from.
    pub delivery_id: String,
    pub run_id: Option<i64>,
    pub head_sha: Option<String>,
    pub git_ref: Option<String>,
}

impl Store {
    /// The ticks fired for minutes at or after `since`, oldest first.
    pub async fn cron_ticks_since(&self, since: i64) -> Result<Vec<FiredTick>, StoreError> {
        // A re-run shares the first attempt's event: only the first attempt is the tick's.
        let rows = sqlx::query(
            "SELECT t.repo, t.workflow, t.cron, t.tick_at, t.fired_at, t.delivery_id, \
             r.id AS run_id, r.head_sha, r.git_ref \
             FROM cron_ticks t LEFT JOIN runs r ON r.delivery_id = t.delivery_id AND r.run_attempt = 1 \
             WHERE t.tick_at >= $1 ORDER BY t.tick_at, t.repo, t.workflow, t.cron",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FiredTick {
                    key: CronKey {
                        repo: row.try_get("repo")?,
                        workflow: row.try_get("workflow")?,
                        cron: row.try_get("cron")?,
                    },
                    tick_at: row.try_get("tick_at")?,
                    fired_at: row.try_get("fired_at")?,
                    delivery_id: row.try_get("delivery_id")?,
                    run_id: row.try_get("run_id")?,
                    head_sha: row.try_get("head_sha")?,
                    git_ref: row.try_get("git_ref")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every schedule the farm has seen, with the minute it first saw it.
    pub async fn cron_schedules(&self) -> Result<Vec<(CronKey, i64)>, StoreError> {
        let rows = sqlx::query("SELECT repo, workflow, cron, first_seen_at FROM cron_schedules")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let key = CronKey {
                    repo: row.try_get("repo")?,
                    workflow: row.try_get("workflow")?,
                    cron: row.try_get("cron")?,
                };
                Ok((key, row.try_get("first_seen_at")?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Records that the farm saw `key` at `first_seen_at`, unless it saw it before.
    pub async fn add_cron_schedule(&self, key: &CronKey, first_seen_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cron_schedules (repo, workflow, cron, first_seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, workflow, cron) DO NOTHING",
        )
        .bind(&key.repo)
        .bind(&key.workflow)
        .bind(&key.cron)
        .bind(first_seen_at)
        .execute(self.writes())
        .await?;
        Ok(())
    }

    /// The last minute the cron looked at; `None` before its first tick.
    pub async fn cron_last_tick(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT last_tick_at FROM cron_state WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("last_tick_at")).transpose()?)
    }

    /// Moves the last minute the cron looked at forward (never back).
    pub async fn set_cron_last_tick(&self, tick_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cron_state (id, last_tick_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE \
             SET last_tick_at = excluded.last_tick_at WHERE cron_state.last_tick_at < excluded.last_tick_at",
        )
        .bind(tick_at)
        .execute(self.writes())
        .await?;
        Ok(())
    }
}

impl Tx {
    /// Claims a tick for this transaction: records it as fired at `fired_at` (the cron's
    /// clock), and `payload` as the `schedule` event `delivery_id` its runs start from. False when it was claimed
    /// before (fired already, or by another farm on the same database): then nothing is
    /// written and the caller starts nothing.
    pub async fn claim_cron_tick(
        &mut self,
        key: &CronKey,
        tick_at: i64,
        delivery_id: &str,
        payload: &Json,
        fired_at: i64,
    ) -> Result<bool, StoreError> {
        let stored =
            insert_delivery_in(self.conn().await?, delivery_id, "schedule", &payload.to_string(), now_ms())
                .await?;
        if stored == DeliveryInsert::Duplicate {
            return Ok(false);
        }
        let claimed = sqlx::query(
            "INSERT INTO cron_ticks (repo, workflow, cron, tick_at, delivery_id, fired_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repo, workflow, cron, tick_at) DO NOTHING",
        )
        .bind(&key.repo)
        .bind(&key.workflow)
        .bind(&key.cron)
        .bind(tick_at)
        .bind(delivery_id)
        .bind(fired_at)
        .execute(self.conn().await?)
        .await?
        .rows_affected()
            == 1;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cron: &str) -> CronKey {
        CronKey { repo: "lab/qemu".into(), workflow: "workflows/nightly.yml".into(), cron: cron.into() }
    }

    #[tokio::test]
    async fn a_tick_is_claimed_once_and_state_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("c.db").display())).await.unwrap();
        let payload = serde_json::json!({"schedule": "0 2 * * *"});

        let mut tx = store.begin().await.unwrap();
        assert!(tx.claim_cron_tick(&key("0 2 * * *"), 7_200_000, "s1", &payload, 7_200_000).await.unwrap());
        tx.mark_delivery_processed("s1", "0 run(s)").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(!tx.claim_cron_tick(&key("0 2 * * *"), 7_200_000, "s1", &payload, 7_200_000).await.unwrap());
        drop(tx);
        assert!(store.unprocessed_deliveries(10).await.unwrap().is_empty(), "the event is stored processed");
        let fired = store.cron_ticks_since(0).await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].tick_at, fired[0].run_id), (7_200_000, None));
        assert!(store.cron_ticks_since(7_260_000).await.unwrap().is_empty());

        store.add_cron_schedule(&key("0 2 * * *"), 60_000).await.unwrap();
        store.add_cron_schedule(&key("0 2 * * *"), 120_000).await.unwrap();
        assert_eq!(store.cron_schedules().await.unwrap(), vec![(key("0 2 * * *"), 60_000)]);

        assert_eq!(store.cron_last_tick().await.unwrap(), None);
        store.set_cron_last_tick(120_000).await.unwrap();
        store.set_cron_last_tick(60_000).await.unwrap();
        assert_eq!(store.cron_last_tick().await.unwrap(), Some(120_000));
        store.set_cron_last_tick(180_000).await.unwrap();
        assert_eq!(store.cron_last_tick().await.unwrap(), Some(180_000));
    }
}
