//! Aggregates for `/metrics`: counts computed at scrape time, so nothing is lost on a
//! restart (the store is the truth). Each query is one `GROUP BY` or `COUNT`, over an
//! index where one fits; a scrape reads them all from one snapshot, so its numbers
//! agree with each other.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::deliveries::DISPATCH_ID_PREFIX;
use super::{Backend, Store, StoreError};

/// What the farm's metrics are computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FarmCounts {
    /// Hosts by state (only states some host is in).
    pub hosts_by_state: Vec<(String, i64)>,
    /// Jobs not completed, by status (`waiting`, `queued`, `in_progress`).
    pub unfinished_jobs_by_status: Vec<(String, i64)>,
    /// Queued jobs by their `runs-on` (as stored: a JSON array).
    pub queued_jobs: Vec<QueuedJobs>,
    /// Jobs that started, by their `runs-on`: how long they waited for a host.
    pub job_waits: Vec<JobWaits>,
    /// Completed jobs by conclusion.
    pub completed_jobs_by_conclusion: Vec<(String, i64)>,
    pub runs_by_status: Vec<(String, i64)>,
    pub deliveries: DeliveryCounts,
    /// Check-run states not yet delivered to the forge.
    pub outbox_backlog: i64,
}

/// The queued jobs of one `runs-on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJobs {
    /// The JSON array of labels, as stored.
    pub runs_on: String,
    pub count: i64,
    /// Unix milliseconds of the oldest one's creation.
    pub oldest_created_at: i64,
}

/// The started jobs of one `runs-on` and their waits (`started_at - created_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobWaits {
    /// The JSON array of labels, as stored.
    pub runs_on: String,
    pub count: i64,
    pub sum_ms: i64,
    /// For each bound asked for, the jobs that waited at most that long (cumulative).
    pub at_most: Vec<i64>,
}

/// Stored deliveries, the forge's and the farm's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Every stored delivery: the forge's webhooks and the farm's own events.
    pub total: i64,
    /// `schedule` events the cron stored (one per tick fired).
    pub scheduled: i64,
    /// `workflow_dispatch` events made through the REST API.
    pub dispatched: i64,
    /// Webhook deliveries not processed yet.
    pub unprocessed: i64,
}

impl DeliveryCounts {
    /// Deliveries that came through the webhook.
    pub fn webhooks(&self) -> i64 {
        self.total - self.scheduled - self.dispatched
    }

    /// Webhook deliveries processed.
    pub fn webhooks_processed(&self) -> i64 {
        self.webhooks() - self.unprocessed
    }
}

impl Store {
    /// Everything `/metrics` shows from the store, read in one transaction.
    /// `wait_bounds_ms`: the upper bounds of the job-wait histogram's buckets.
    pub async fn farm_counts(&self, wait_bounds_ms: &[i64]) -> Result<FarmCounts, StoreError> {
        let mut tx = self.pool().begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        // SQLite's read transactions see one snapshot; PostgreSQL's by default take a
        // new one at each statement.
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *conn)
                .await?;
        }
        let counts = FarmCounts {
            hosts_by_state: grouped(conn, "SELECT state AS k, COUNT(*) AS n FROM hosts GROUP BY state")
                .await?,
            // `status <> 'completed'` matches the partial index `jobs_unfinished` (as a
            // literal: a bound value would not): only unfinished jobs are read, however
            // long the history.
            unfinished_jobs_by_status: grouped(
                conn,
                "SELECT status AS k, COUNT(*) AS n FROM jobs WHERE status <> 'completed' GROUP BY status",
            )
            .await?,
            queued_jobs: queued_jobs(conn).await?,
            job_waits: job_waits(conn, wait_bounds_ms).await?,
            completed_jobs_by_conclusion: grouped(
                conn,
                "SELECT COALESCE(conclusion, 'none') AS k, COUNT(*) AS n FROM jobs \
                 WHERE status = 'completed' GROUP BY COALESCE(conclusion, 'none')",
            )
            .await?,
            runs_by_status: grouped(conn, "SELECT status AS k, COUNT(*) AS n FROM runs GROUP BY status")
                .await?,
            deliveries: delivery_counts(conn, self.backend()).await?,
            // As `Store::outbox_backlog`, inside this transaction.
            outbox_backlog: count(conn, "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL")
                .await?,
        };
        tx.commit().await?;
        Ok(counts)
    }
}

/// `(k, n)` rows, by `k`.
async fn grouped(conn: &mut AnyConnection, sql: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let mut rows = sqlx::query(sql)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("k")?, row.try_get("n")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    rows.sort();
    Ok(rows)
}

async fn count(conn: &mut AnyConnection, sql: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query(sql).fetch_one(conn).await?.try_get("n")?)
}

async fn queued_jobs(conn: &mut AnyConnection) -> Result<Vec<QueuedJobs>, StoreError> {
    // The first condition lets SQLite use the partial index `jobs_unfinished` (it does
    // not infer it from the second).
    let rows = sqlx::query(
        "SELECT runs_on, COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs \
         WHERE status <> 'completed' AND status = 'queued' GROUP BY runs_on ORDER BY runs_on",
    )
    .fetch_all(conn)
    .await?;
    let queued = rows.iter().map(|row: &AnyRow| {
        Ok(QueuedJobs {
            runs_on: row.try_get("runs_on")?,
            count: row.try_get("n")?,
            oldest_created_at: row.try_get("oldest")?,
        })
    });
    Ok(queued.collect::<Result<_, sqlx::Error>>()?)
}

/// One pass over the started jobs, counting each bucket with a `CASE`. This reads the
/// whole job history (no index fits a histogram): a scrape of a farm with a long
/// history costs a table scan.
async fn job_waits(conn: &mut AnyConnection, bounds_ms: &[i64]) -> Result<Vec<JobWaits>, StoreError> {
    // Sums are cast: PostgreSQL sums BIGINTs into NUMERIC.
    let buckets: String = (1..=bounds_ms.len())
        .map(|n| {
            format!(
                ", CAST(SUM(CASE WHEN started_at - created_at <= ${n} THEN 1 ELSE 0 END) AS BIGINT) AS b{n}"
            )
        })
        .collect();
    let sql = format!(
        "SELECT runs_on, COUNT(*) AS n, CAST(SUM(started_at - created_at) AS BIGINT) AS total{buckets} \
         FROM jobs WHERE started_at IS NOT NULL GROUP BY runs_on ORDER BY runs_on"
    );
    let mut query = sqlx::query(&sql);
    for bound in bounds_ms {
        query = query.bind(*bound);
    }
    let rows = query.fetch_all(conn).await?;
    let waits = rows.iter().map(|row: &AnyRow| {
        Ok(JobWaits {
            runs_on: row.try_get("runs_on")?,
            count: row.try_get("n")?,
            sum_ms: row.try_get("total")?,
            at_most: (1..=bounds_ms.len())
                .map(|n| row.try_get(format!("b{n}").as_str()))
                .collect::<Result<_, sqlx::Error>>()?,
        })
    });
    Ok(waits.collect::<Result<_, sqlx::Error>>()?)
}

/// Counted over indexes: a delivery's row holds its whole body, which a scan of the
/// table would read (on SQLite; PostgreSQL keeps large bodies apart).
async fn delivery_counts(conn: &mut AnyConnection, backend: Backend) -> Result<DeliveryCounts, StoreError> {
    // SQLite compares the ids bytewise: the prefix is a range of the primary key. A
    // PostgreSQL collation may ignore punctuation in comparisons: LIKE is exact there.
    let dispatched = match backend {
        Backend::Sqlite => sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE id >= $1 AND id < $2")
            .bind(DISPATCH_ID_PREFIX)
            .bind(prefix_end(DISPATCH_ID_PREFIX)),
        Backend::Postgres => sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE id LIKE $1")
            .bind(format!("{DISPATCH_ID_PREFIX}%")),
    };
    Ok(DeliveryCounts {
        // The primary key's index.
        total: count(conn, "SELECT COUNT(*) AS n FROM deliveries").await?,
        // The cron records each tick it fires with the `schedule` delivery it stored.
        scheduled: count(conn, "SELECT COUNT(*) AS n FROM cron_ticks").await?,
        dispatched: dispatched.fetch_one(&mut *conn).await?.try_get("n")?,
        // The partial index `deliveries_unprocessed`. The farm's own events are stored
        // processed, so these are all the forge's.
        unprocessed: count(conn, "SELECT COUNT(*) AS n FROM deliveries WHERE processed_at IS NULL").await?,
    })
}

/// The least string above every string starting with `prefix` (ASCII, not ending in
/// the last character).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    let last = end.pop().expect("a prefix");
    end.push(char::from(last as u8 + 1));
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewJob, NewRun};

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
        (dir, store)
    }

    /// A run with one job per `runs-on`, all queued.
    async fn queue(store: &Store, runs_on: &[&[&str]]) -> Vec<i64> {
        let mut tx = store.begin().await.unwrap();
        let run = NewRun {
            repo: "lab/qemu",
            workflow: "workflows/ci.yml",
            workflow_name: "CI",
            event: "push",
            head_sha: "abc",
            check_sha: "abc",
            git_ref: "refs/heads/main",
            ..Default::default()
        };
        let ids = tx.insert_run(&run).await.unwrap();
        let mut jobs = Vec::new();
        for (n, labels) in runs_on.iter().enumerate() {
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            let key = format!("job{n}");
            let job = NewJob { job_key: &key, name: &key, runs_on: &labels, ..Default::default() };
            jobs.push(tx.insert_job(ids.run_id, &job).await.unwrap());
        }
        tx.commit().await.unwrap();
        jobs
    }

    /// Moves a job's creation `ms` before its start, as if it had waited that long.
    async fn waited(store: &Store, job: i64, ms: i64) {
        sqlx::query("UPDATE jobs SET created_at = started_at - $1 WHERE id = $2")
            .bind(ms)
            .bind(job)
            .execute(store.writes())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_empty_farm_counts_nothing() {
        let (_dir, store) = store().await;
        let counts = store.farm_counts(&[1000]).await.unwrap();
        assert_eq!(counts, FarmCounts::default());
    }

    #[tokio::test]
    async fn jobs_are_counted_by_status_runs_on_conclusion_and_wait() {
        let (_dir, store) = store().await;
        let jobs = queue(
            &store,
            &[&["self-hosted", "amd64"], &["self-hosted", "amd64"], &["arm64"], &["arm64"], &["arm64"]],
        )
        .await;
        // Two arm64 jobs started after 0.5 s and 30 s; one of them is done.
        let mut tx = store.begin().await.unwrap();
        tx.start_job(jobs[2], "arm-1").await.unwrap();
        tx.start_job(jobs[3], "arm-2").await.unwrap();
        assert!(tx.complete_job(jobs[3], "failure").await.unwrap());
        tx.commit().await.unwrap();
        waited(&store, jobs[2], 500).await;
        waited(&store, jobs[3], 30_000).await;

        let counts = store.farm_counts(&[1_000, 60_000]).await.unwrap();
        let pair = |k: &str, n| (k.to_owned(), n);
        assert_eq!(counts.unfinished_jobs_by_status, [pair("in_progress", 1), pair("queued", 3)]);
        assert_eq!(counts.completed_jobs_by_conclusion, [pair("failure", 1)]);
        assert_eq!(counts.runs_by_status, [pair("in_progress", 1)]);
        let queued: Vec<_> = counts.queued_jobs.iter().map(|q| (q.runs_on.as_str(), q.count)).collect();
        assert_eq!(queued, [("[\"arm64\"]", 1), ("[\"self-hosted\",\"amd64\"]", 2)]);
        assert_eq!(
            counts.job_waits,
            [JobWaits { runs_on: "[\"arm64\"]".into(), count: 2, sum_ms: 30_500, at_most: vec![1, 2] }]
        );
    }

    #[tokio::test]
    async fn the_farms_own_events_are_told_apart_from_webhooks() {
        let (_dir, store) = store().await;
        store.insert_delivery("d1", "push", "{}").await.unwrap();
        store.insert_delivery("d2", "push", "{}").await.unwrap();
        store.mark_delivery_processed("d1", "planned").await.unwrap();
        let key = crate::store::CronKey {
            repo: "lab/qemu".into(),
            workflow: "workflows/nightly.yml".into(),
            cron: "0 3 * * *".into(),
        };
        let mut tx = store.begin().await.unwrap();
        assert!(tx.claim_cron_tick(&key, 0, "schedule:1", &serde_json::json!({}), 0).await.unwrap());
        tx.mark_delivery_processed("schedule:1", "planned").await.unwrap();
        tx.commit().await.unwrap();
        // What a dispatch through the API stores.
        let dispatch = "dispatch:lab/qemu@1700000000000-0";
        store.insert_delivery(dispatch, "workflow_dispatch", "{}").await.unwrap();
        store.mark_delivery_processed(dispatch, "planned").await.unwrap();
        // Ids on either side of the prefix are the forge's.
        store.insert_delivery("dispatch", "push", "{}").await.unwrap();
        store.insert_delivery("dispatch;", "push", "{}").await.unwrap();

        let deliveries = store.farm_counts(&[]).await.unwrap().deliveries;
        assert_eq!(deliveries, DeliveryCounts { total: 6, scheduled: 1, dispatched: 1, unprocessed: 3 });
        assert_eq!((deliveries.webhooks(), deliveries.webhooks_processed()), (4, 1));
    }
}
