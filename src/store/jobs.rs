//! Jobs as the scheduler's driver reads and changes them: what placement needs to know
//! of a run's jobs, and the writes of a job's life after planning (leased, concluded,
//! what its check run says it waits for).

use sqlx::Row;

use super::runs::{CheckRunState, JobStatus};
use super::{now_ms, Store, StoreError, Tx};

/// A job of an unfinished run, with what placement needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulingJob {
    pub id: i64,
    pub run_id: i64,
    /// The run's repository (`owner/name`).
    pub repo: String,
    pub job_key: String,
    pub runs_on: Vec<String>,
    /// Workflow job ids it needs.
    pub needs: Vec<String>,
    pub condition: String,
    pub concurrency: Option<String>,
    pub cancel_in_progress: bool,
    /// The run's concurrency group (the workflow's `concurrency`) and its `cancel-in-progress`.
    pub run_concurrency: Option<(String, bool)>,
    /// `Some` for a matrix's job: (fail-fast, max-parallel).
    pub strategy: Option<(bool, Option<u32>)>,
    pub status: JobStatus,
    pub conclusion: Option<String>,
    pub host: Option<String>,
    pub priority: i32,
    pub created_at: i64,
    /// What its check run last said it waits for.
    pub waiting_reason: Option<String>,
}

const SCHEDULING_COLUMNS: &str = "j.id, j.run_id, r.repo, j.job_key, j.runs_on, j.needs, j.condition, j.concurrency, \
     j.cancel_in_progress, j.fail_fast, j.max_parallel, j.status, j.conclusion, j.host, r.priority, j.created_at, \
     j.waiting_reason, r.concurrency AS run_concurrency, r.cancel_in_progress AS run_cancel_in_progress";

fn scheduling_job(row: &sqlx::any::AnyRow) -> Result<SchedulingJob, sqlx::Error> {
    let list = |column: &str| -> Result<Vec<String>, sqlx::Error> {
        serde_json::from_str(&row.try_get::<String, _>(column)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let status: String = row.try_get("status")?;
    let fail_fast: Option<i64> = row.try_get("fail_fast")?;
    let max_parallel: Option<i64> = row.try_get("max_parallel")?;
    Ok(SchedulingJob {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        repo: row.try_get("repo")?,
        job_key: row.try_get("job_key")?,
        runs_on: list("runs_on")?,
        needs: list("needs")?,
        condition: row.try_get("condition")?,
        concurrency: row.try_get("concurrency")?,
        cancel_in_progress: row.try_get::<i64, _>("cancel_in_progress")? == 1,
        run_concurrency: row
            .try_get::<Option<String>, _>("run_concurrency")?
            .map(|group| Ok::<_, sqlx::Error>((group, row.try_get::<i64, _>("run_cancel_in_progress")? == 1)))
            .transpose()?,
        strategy: fail_fast.map(|f| (f == 1, max_parallel.map(|m| m.clamp(0, i64::from(u32::MAX)) as u32))),
        status: JobStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job status `{status}`").into()))?,
        conclusion: row.try_get("conclusion")?,
        host: row.try_get("host")?,
        priority: row.try_get::<i64, _>("priority")?.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        created_at: row.try_get("created_at")?,
        waiting_reason: row.try_get("waiting_reason")?,
    })
}

/// What a job's check run and its run need to know when the job changes.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCheck {
    pub check_run_id: i64,
    /// The newest state queued for the check run.
    pub state: CheckRunState,
}

impl Store {
    /// The runs with a job in `status` (queued: not waiting for approval; in progress:
    /// leased to a host, for a restart), oldest first.
    pub async fn runs_with_jobs(&self, status: JobStatus) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT run_id FROM jobs WHERE status = $1 ORDER BY run_id")
            .bind(status.as_str())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| r.try_get("run_id")).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    /// Every job of a run, in the order the plan stored them.
    pub async fn scheduling_jobs(&self, run_id: i64) -> Result<Vec<SchedulingJob>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULING_COLUMNS} FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.run_id = $1 ORDER BY j.id"
        ))
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(scheduling_job).collect::<Result<_, _>>().map_err(StoreError::from)
    }
}

impl Store {
    /// A job's status and conclusion; `None` when there is no such job.
    pub async fn job_state(&self, job_id: i64) -> Result<Option<(JobStatus, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT status, conclusion FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        let status = JobStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job status `{status}`").into()))?;
        Ok(Some((status, row.try_get("conclusion")?)))
    }

    /// The run a job belongs to.
    pub async fn job_run(&self, job_id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT run_id FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("run_id")).transpose()?)
    }
}

impl Tx {
    /// Records the workflow's concurrency group, which the whole run holds.
    pub async fn set_run_concurrency(
        &mut self,
        run_id: i64,
        group: &str,
        cancel_in_progress: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET concurrency = $1, cancel_in_progress = $2 WHERE id = $3")
            .bind(group)
            .bind(i64::from(cancel_in_progress))
            .bind(run_id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// A host holds a lease for a job the store still calls queued (a crash came
    /// between the two writes): the job is under way there. False when it was not queued.
    pub async fn start_queued_job(&mut self, job_id: i64, host: &str) -> Result<bool, StoreError> {
        let queued = sqlx::query("SELECT id FROM jobs WHERE id = $1 AND status = $2")
            .bind(job_id)
            .bind(JobStatus::Queued.as_str())
            .fetch_optional(self.conn().await?)
            .await?
            .is_some();
        if queued {
            self.start_job(job_id, host).await?;
        }
        Ok(queued)
    }

    /// The job's check run and its newest state, when it has one.
    pub async fn job_check(&mut self, job_id: i64) -> Result<Option<JobCheck>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id, (SELECT o.payload FROM outbox o WHERE o.check_run_id = c.id ORDER BY o.id DESC LIMIT 1) \
             AS payload FROM check_runs c WHERE c.job_id = $1 ORDER BY c.id DESC LIMIT 1",
        )
        .bind(job_id)
        .fetch_optional(self.conn().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload")?;
        Ok(Some(JobCheck {
            check_run_id: row.try_get("id")?,
            state: serde_json::from_str(&payload).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        }))
    }

    /// Queues a new state of the job's check run, when it has one: `status`, `conclusion`,
    /// `title` and `summary` replace the newest state's, and its buttons go.
    pub async fn show_on_job_check(
        &mut self,
        job_id: i64,
        status: &str,
        conclusion: Option<&str>,
        title: &str,
        summary: &str,
    ) -> Result<(), StoreError> {
        if let Some(check) = self.job_check(job_id).await? {
            let mut state = check.state;
            state.status = status.to_owned();
            state.conclusion = conclusion.map(str::to_owned);
            state.title = title.to_owned();
            state.summary = summary.to_owned();
            state.actions.clear();
            self.queue_check_run_state(check.check_run_id, &state).await?;
        }
        Ok(())
    }

    /// The job is under way on `host`.
    pub async fn start_job(&mut self, job_id: i64, host: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = $1, host = $2, started_at = $3, waiting_reason = NULL WHERE id = $4",
        )
        .bind(JobStatus::InProgress.as_str())
        .bind(host)
        .bind(now_ms())
        .bind(job_id)
        .execute(self.conn().await?)
        .await?;
        sqlx::query("UPDATE runs SET status = $1 WHERE id = (SELECT run_id FROM jobs WHERE id = $2)")
            .bind(JobStatus::InProgress.as_str())
            .bind(job_id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// A job lost its host before it ended: queued again.
    pub async fn requeue_job(&mut self, job_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = $1, host = NULL, started_at = NULL WHERE id = $2 AND status = $3",
        )
        .bind(JobStatus::Queued.as_str())
        .bind(job_id)
        .bind(JobStatus::InProgress.as_str())
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// The job ended with `conclusion`; false when it had ended before.
    pub async fn complete_job(&mut self, job_id: i64, conclusion: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = $1, conclusion = $2, completed_at = $3, waiting_reason = NULL \
             WHERE id = $4 AND status <> $1",
        )
        .bind(JobStatus::Completed.as_str())
        .bind(conclusion)
        .bind(now_ms())
        .bind(job_id)
        .execute(self.conn().await?)
        .await?
        .rows_affected()
            == 1;
        Ok(done)
    }

    /// Records what the job's check run now says it waits for.
    pub async fn set_waiting_reason(&mut self, job_id: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET waiting_reason = $1 WHERE id = $2")
            .bind(reason)
            .bind(job_id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Completes the run when none of its jobs is left, with GitHub's conclusion: a
    /// failed job fails the run, else a cancelled one cancels it, else it succeeded.
    /// Returns the conclusion when it completed the run.
    pub async fn complete_run_if_done(&mut self, run_id: i64) -> Result<Option<String>, StoreError> {
        let rows = sqlx::query("SELECT status, conclusion FROM jobs WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(self.conn().await?)
            .await?;
        let mut conclusions = Vec::new();
        for row in &rows {
            if row.try_get::<String, _>("status")? != JobStatus::Completed.as_str() {
                return Ok(None);
            }
            conclusions.push(row.try_get::<Option<String>, _>("conclusion")?.unwrap_or_default());
        }
        let has = |c: &str| conclusions.iter().any(|x| x == c);
        let conclusion = if has("failure") {
            "failure"
        } else if has("cancelled") {
            "cancelled"
        } else {
            "success"
        };
        let completed =
            sqlx::query("UPDATE runs SET status = $1, conclusion = $2 WHERE id = $3 AND status <> $1")
                .bind(JobStatus::Completed.as_str())
                .bind(conclusion)
                .bind(run_id)
                .execute(self.conn().await?)
                .await?
                .rows_affected()
                == 1;
        Ok(completed.then(|| conclusion.to_owned()))
    }
}
