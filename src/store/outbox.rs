//! The outbox: check-run states waiting to reach the forge, in order per check run.

use sqlx::Row;

use super::runs::CheckRunState;
use super::{now_ms, Store, StoreError};

/// One undelivered state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub state: CheckRunState,
    pub attempts: i64,
}

/// A check run with undelivered states, oldest first. Delivering the last one is enough
/// (each is a whole state) except for annotations, which the forge appends: the
/// reporter sends those of every pending item.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCheckRun {
    pub check_run_id: i64,
    pub run_id: i64,
    pub job_id: Option<i64>,
    pub repo: String,
    pub installation_id: Option<i64>,
    /// The forge's id once the check run was created there.
    pub forge_id: Option<i64>,
    /// A creation was sent before, carrying the states up to this outbox item; it may
    /// have reached the forge without the farm hearing back: see
    /// [`Store::mark_creation_sent`].
    pub creation_sent_item: Option<i64>,
    pub items: Vec<OutboxItem>,
}

impl Store {
    /// Check runs with states due for delivery at `now_ms`, in the order their oldest
    /// pending state was queued.
    pub async fn due_check_runs(&self, now_ms: i64, limit: i64) -> Result<Vec<PendingCheckRun>, StoreError> {
        let heads = sqlx::query(
            "SELECT c.id, c.run_id, c.job_id, c.repo, c.installation_id, c.forge_id, c.creation_sent_item, \
             MIN(o.id) AS first \
             FROM check_runs c JOIN outbox o ON o.check_run_id = c.id \
             WHERE o.delivered_at IS NULL \
             GROUP BY c.id, c.run_id, c.job_id, c.repo, c.installation_id, c.forge_id, c.creation_sent_item \
             HAVING MAX(o.next_attempt_at) <= $1 ORDER BY first LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut due = Vec::with_capacity(heads.len());
        for head in heads {
            let check_run_id: i64 = head.try_get("id")?;
            let rows = sqlx::query(
                "SELECT id, payload, attempts FROM outbox WHERE check_run_id = $1 AND delivered_at IS NULL ORDER BY id",
            )
            .bind(check_run_id)
            .fetch_all(self.pool())
            .await?;
            let items = rows
                .iter()
                .map(|row| {
                    let payload: String = row.try_get("payload")?;
                    Ok(OutboxItem {
                        id: row.try_get("id")?,
                        state: serde_json::from_str(&payload)
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        attempts: row.try_get("attempts")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            due.push(PendingCheckRun {
                check_run_id,
                run_id: head.try_get("run_id")?,
                job_id: head.try_get("job_id")?,
                repo: head.try_get("repo")?,
                installation_id: head.try_get("installation_id")?,
                forge_id: head.try_get("forge_id")?,
                creation_sent_item: head.try_get("creation_sent_item")?,
                items,
            });
        }
        Ok(due)
    }

    /// The forge has the check run (created as `forge_id`).
    pub async fn set_check_run_forge_id(&self, check_run_id: i64, forge_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE check_runs SET forge_id = $1 WHERE id = $2")
            .bind(forge_id)
            .bind(check_run_id)
            .execute(self.writes())
            .await?;
        Ok(())
    }

    /// The reporter is about to send the check run's creation, carrying its pending
    /// states up to `last_item`: recorded (committed) before the request leaves, so that
    /// after a lost answer or a crash the check run is looked up on the forge instead of
    /// created twice.
    pub async fn mark_creation_sent(&self, check_run_id: i64, last_item: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE check_runs SET creation_sent_item = $1 WHERE id = $2")
            .bind(last_item)
            .bind(check_run_id)
            .execute(self.writes())
            .await?;
        Ok(())
    }

    /// Every pending state of the check run up to `last_item` has reached the forge.
    pub async fn mark_delivered(&self, check_run_id: i64, last_item: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET delivered_at = $1 WHERE check_run_id = $2 AND id <= $3 AND delivered_at IS NULL",
        )
        .bind(now_ms())
        .bind(check_run_id)
        .bind(last_item)
        .execute(self.writes())
        .await?;
        Ok(())
    }

    /// Delivery failed: try the check run's pending states again at `next_attempt_ms`.
    pub async fn defer_delivery(
        &self,
        check_run_id: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
             WHERE check_run_id = $3 AND delivered_at IS NULL",
        )
        .bind(next_attempt_ms)
        .bind(error)
        .bind(check_run_id)
        .execute(self.writes())
        .await?;
        Ok(())
    }

    /// States not yet delivered (the `/metrics` outbox backlog).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Annotation, NewRun};

    fn state(status: &str, annotations: usize) -> CheckRunState {
        CheckRunState {
            name: "CI / build".into(),
            head_sha: "a".repeat(40),
            status: status.into(),
            conclusion: None,
            title: status.into(),
            summary: String::new(),
            annotations: (0..annotations)
                .map(|i| Annotation {
                    path: "x.yml".into(),
                    start_line: i as u32 + 1,
                    end_line: i as u32 + 1,
                    start_column: None,
                    level: "failure".into(),
                    message: "m".into(),
                    title: None,
                })
                .collect(),
            actions: Vec::new(),
        }
    }

    #[tokio::test]
    async fn states_queue_in_order_and_deliver_or_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("f.db").display())).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let run = NewRun {
            repo: "lab/qemu",
            workflow: "workflows/ci.yml",
            workflow_name: "CI",
            event: "push",
            installation_id: Some(7),
            head_sha: "abc",
            check_sha: "abc",
            git_ref: "refs/heads/main",
            ..Default::default()
        };
        let ids = tx.insert_run(&run).await.unwrap();
        assert_eq!(ids.run_number, 1);
        let check =
            tx.insert_check_run(ids.run_id, None, "lab/qemu", Some(7), &state("queued", 1)).await.unwrap();
        tx.queue_check_run_state(check, &state("in_progress", 2)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 2);

        let due = store.due_check_runs(now_ms(), 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let statuses: Vec<_> = due[0].items.iter().map(|i| i.state.status.as_str()).collect();
        assert_eq!(statuses, ["queued", "in_progress"]);
        assert_eq!(due[0].installation_id, Some(7));
        assert_eq!(due[0].creation_sent_item, None);
        store.mark_creation_sent(check, due[0].items[1].id).await.unwrap();
        assert_eq!(
            store.due_check_runs(now_ms(), 10).await.unwrap()[0].creation_sent_item,
            Some(due[0].items[1].id)
        );

        // A failed attempt waits until its time.
        store.defer_delivery(check, now_ms() + 60_000, "502").await.unwrap();
        assert!(store.due_check_runs(now_ms(), 10).await.unwrap().is_empty());
        assert!(!store.due_check_runs(now_ms() + 61_000, 10).await.unwrap().is_empty());

        store.set_check_run_forge_id(check, 99).await.unwrap();
        store.mark_delivered(check, due[0].items[1].id).await.unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);

        // The second run of the same workflow gets the next number.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.insert_run(&run).await.unwrap().run_number, 2);
        tx.commit().await.unwrap();
    }
}
