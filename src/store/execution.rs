//! What the job runner reads and writes: the job to run with its run and workflow
//! text, the results and outputs of the jobs it needs, its steps as they go, and the
//! host keys pinned for SSH.

use sqlx::Row;

use super::{now_ms, Store, StoreError, Tx};

/// One job as its runner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobToRun {
    pub job_id: i64,
    pub run_id: i64,
    /// The workflow job id.
    pub job_key: String,
    pub name: String,
    pub matrix: Option<serde_json::Value>,
    pub needs: Vec<String>,
    pub host: Option<String>,
    /// Retries on another host so far after infrastructure failures.
    pub infra_attempts: i64,
    pub repo: String,
    /// The workflow file's path and name.
    pub workflow: String,
    pub workflow_name: String,
    /// The workflow text when the run started; `None` for runs recorded before it was kept.
    pub workflow_source: Option<String>,
    pub event: String,
    /// The raw webhook payload (or the synthetic event of a dispatch or a schedule).
    pub payload: Option<String>,
    pub head_sha: String,
    pub git_ref: String,
    pub run_number: i64,
    pub run_attempt: i64,
    /// From a fork: no secrets.
    pub fork: bool,
    pub installation_id: Option<i64>,
}

/// A finished job that a later job needs: `needs.<id>.result` and `.outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct NeededJob {
    pub job_key: String,
    pub conclusion: Option<String>,
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

/// A step's state as the runner records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepState<'a> {
    pub number: i64,
    pub name: &'a str,
    /// `in_progress` or `completed`.
    pub status: &'a str,
    /// Before `continue-on-error`: `success`, `failure`, `cancelled`, `skipped`.
    pub outcome: Option<&'a str>,
    pub conclusion: Option<&'a str>,
}

impl Store {
    pub async fn job_to_run(&self, job_id: i64) -> Result<Option<JobToRun>, StoreError> {
        let row = sqlx::query(
            "SELECT j.id, j.run_id, j.job_key, j.name, j.matrix, j.needs, j.host, j.infra_attempts, \
             r.repo, r.workflow, r.workflow_name, r.workflow_source, r.event, d.body, r.head_sha, r.git_ref, \
             r.run_number, r.run_attempt, r.fork, r.installation_id \
             FROM jobs j JOIN runs r ON r.id = j.run_id LEFT JOIN deliveries d ON d.id = r.delivery_id \
             WHERE j.id = $1",
        )
        .bind(job_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let json = |text: Option<String>| -> Result<Option<serde_json::Value>, sqlx::Error> {
            text.map(|t| serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
        };
        let needs: Vec<String> = match json(Some(row.try_get("needs")?))? {
            Some(serde_json::Value::Array(keys)) => {
                keys.into_iter().filter_map(|k| k.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        Ok(Some(JobToRun {
            job_id: row.try_get("id")?,
            run_id: row.try_get("run_id")?,
            job_key: row.try_get("job_key")?,
            name: row.try_get("name")?,
            matrix: json(row.try_get("matrix")?)?,
            needs,
            host: row.try_get("host")?,
            infra_attempts: row.try_get("infra_attempts")?,
            repo: row.try_get("repo")?,
            workflow: row.try_get("workflow")?,
            workflow_name: row.try_get("workflow_name")?,
            workflow_source: row.try_get("workflow_source")?,
            event: row.try_get("event")?,
            payload: row.try_get("body")?,
            head_sha: row.try_get("head_sha")?,
            git_ref: row.try_get("git_ref")?,
            run_number: row.try_get("run_number")?,
            run_attempt: row.try_get("run_attempt")?,
            fork: row.try_get::<i64, _>("fork")? != 0,
            installation_id: row.try_get("installation_id")?,
        }))
    }

    /// The jobs of `run_id` named `keys` (every combination of a matrix), in id order.
    pub async fn needed_jobs(&self, run_id: i64, keys: &[String]) -> Result<Vec<NeededJob>, StoreError> {
        let rows = sqlx::query("SELECT job_key, conclusion, outputs FROM jobs WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(self.pool())
            .await?;
        let mut needed = Vec::new();
        for row in rows {
            let job_key: String = row.try_get("job_key")?;
            if !keys.contains(&job_key) {
                continue;
            }
            let outputs = match row.try_get::<Option<String>, _>("outputs")? {
                Some(text) => serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                None => serde_json::Map::new(),
            };
            needed.push(NeededJob { job_key, conclusion: row.try_get("conclusion")?, outputs });
        }
        Ok(needed)
    }

    /// The SSH host key pinned for `host`, if one is.
    pub async fn host_key(&self, host: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT host_key FROM hosts WHERE name = $1")
            .bind(host)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("host_key")).transpose()?.flatten())
    }

    /// Pins `key` for `host` when none is pinned yet; true when this call pinned it.
    pub async fn pin_first_host_key(&self, host: &str, key: &str) -> Result<bool, StoreError> {
        let pinned = sqlx::query("UPDATE hosts SET host_key = $1 WHERE name = $2 AND host_key IS NULL")
            .bind(key)
            .bind(host)
            .execute(self.writes())
            .await?
            .rows_affected()
            == 1;
        Ok(pinned)
    }
}

impl Tx {
    /// Records a step's state (inserted at its start, updated at its end).
    pub async fn record_step(&mut self, job_id: i64, step: &StepState<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        let completed_at = (step.status == "completed").then_some(now);
        sqlx::query(
            "INSERT INTO steps (job_id, number, name, status, outcome, conclusion, started_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (job_id, number) DO UPDATE SET name = excluded.name, status = excluded.status, \
             outcome = excluded.outcome, conclusion = excluded.conclusion, completed_at = excluded.completed_at",
        )
        .bind(job_id)
        .bind(step.number)
        .bind(step.name)
        .bind(step.status)
        .bind(step.outcome)
        .bind(step.conclusion)
        .bind(now)
        .bind(completed_at)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Forgets the steps of an attempt that ended in an infrastructure failure.
    pub async fn clear_steps(&mut self, job_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM steps WHERE job_id = $1").bind(job_id).execute(self.conn().await?).await?;
        Ok(())
    }

    /// A finished job's `outputs`, for the jobs that need it.
    pub async fn set_job_outputs(
        &mut self,
        job_id: i64,
        outputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let text = serde_json::Value::Object(outputs.clone()).to_string();
        sqlx::query("UPDATE jobs SET outputs = $1 WHERE id = $2")
            .bind(text)
            .bind(job_id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Counts one more retry of the job after an infrastructure failure; the new count.
    pub async fn count_infra_attempt(&mut self, job_id: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE jobs SET infra_attempts = infra_attempts + 1 WHERE id = $1 RETURNING infra_attempts",
        )
        .bind(job_id)
        .fetch_one(self.conn().await?)
        .await?;
        Ok(row.try_get("infra_attempts")?)
    }

    /// Pins `key` for `host`, replacing any key pinned before (a reinstall).
    pub async fn pin_host_key(&mut self, host: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET host_key = $1 WHERE name = $2")
            .bind(key)
            .bind(host)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }
}
