//! Runs, their jobs, and the check runs that show them on the forge.
//!
//! Everything a delivery causes is written in one [`Tx`]: the runs, their jobs, the
//! check runs' first wanted state in the outbox, and the delivery marked processed. A
//! crash before the commit leaves the delivery unprocessed, to be processed again at the
//! next start; a crash after it leaves nothing to redo. Either way: exactly one run.

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use super::{now_ms, Store, StoreError};

/// A run to record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewRun<'a> {
    pub repo: &'a str,
    /// The workflow file's path.
    pub workflow: &'a str,
    pub workflow_name: &'a str,
    pub event: &'a str,
    pub delivery_id: Option<&'a str>,
    pub installation_id: Option<i64>,
    pub head_sha: &'a str,
    /// The commit its check runs are on (a pull request's head, not its merge commit).
    pub check_sha: &'a str,
    pub git_ref: &'a str,
    /// `Some(n)`: a re-run, the next attempt of run number `n`; `None`: a new run with
    /// the next run number.
    pub attempt_of: Option<i64>,
    /// From a fork: its jobs never get secrets.
    pub fork: bool,
    pub approval: Approval,
    /// Higher runs first (dispatch and re-runs may raise it); 0 normally.
    pub priority: i32,
    /// The workflow file's text, which the run's jobs run.
    pub workflow_source: &'a str,
}

/// Whether a run may reach a host: a fork's run whose author lacks write access waits
/// until someone with write access approves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Approval {
    /// Nothing to approve.
    #[default]
    None,
    /// Waiting for a maintainer; its jobs are [`JobStatus::Waiting`].
    Required,
    Approved,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::None => "none",
            Approval::Required => "required",
            Approval::Approved => "approved",
        }
    }

    fn parse(text: &str) -> Result<Approval, sqlx::Error> {
        match text {
            "none" => Ok(Approval::None),
            "required" => Ok(Approval::Required),
            "approved" => Ok(Approval::Approved),
            other => Err(sqlx::Error::Decode(format!("unknown run approval `{other}`").into())),
        }
    }
}

/// A run as recorded: the numbers the workflow's `github` context shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIds {
    pub run_id: i64,
    pub run_number: i64,
    pub run_attempt: i64,
}

/// One planned job to record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewJob<'a> {
    pub job_key: &'a str,
    pub name: &'a str,
    pub runs_on: &'a [String],
    pub needs: &'a [String],
    pub matrix: Option<&'a serde_json::Value>,
    pub condition: &'a str,
    pub concurrency: Option<&'a str>,
    pub status: JobStatus,
    /// Its concurrency group's `cancel-in-progress`.
    pub cancel_in_progress: bool,
    /// For one combination of a matrix: the matrix's strategy.
    pub strategy: Option<crate::workflow::plan::StrategyPlan>,
}

/// Where a job is in its life. Hosts and execution add the states between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Its run waits for approval: no host may take it.
    Waiting,
    #[default]
    Queued,
    InProgress,
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        [JobStatus::Waiting, JobStatus::Queued, JobStatus::InProgress, JobStatus::Completed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a check run should show: the forge-neutral whole state. The reporter turns it
/// into the forge's request; a later state supersedes an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRunState {
    pub name: String,
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// With `completed`: `success`, `failure`, `action_required`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    pub title: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// Buttons the forge shows with the check run; pressing one sends a
    /// `check_run` `requested_action` event with its identifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<RequestedAction>,
}

/// A button on a check run (GitHub's limits: label 20, description 40, identifier 20
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedAction {
    pub label: String,
    pub description: String,
    pub identifier: String,
}

/// A note on a line of a file, shown on the forge beside the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u32>,
    /// `notice`, `warning` or `failure`, as the forge names them.
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A write transaction over runs, jobs, check runs and deliveries. It begins at its
/// first statement, not at [`Store::begin`]: an event handler asks the forge before it
/// writes, and must not hold the database's one writer while it waits for the forge.
pub struct Tx {
    writes: AnyPool,
    tx: Option<Transaction<'static, Any>>,
}

impl Store {
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx { writes: self.writes().clone(), tx: None })
    }
}

impl Tx {
    /// Commits what was written; a transaction that wrote nothing has nothing to commit.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            Some(tx) => Ok(tx.commit().await?),
            None => Ok(()),
        }
    }

    /// The transaction's connection, beginning the transaction on first use.
    pub(super) async fn conn(&mut self) -> Result<&mut AnyConnection, StoreError> {
        let tx = match &mut self.tx {
            Some(tx) => tx,
            none => none.insert(self.writes.begin().await?),
        };
        Ok(&mut **tx)
    }

    /// Records a run with the next run number of its repository and workflow, or the
    /// next attempt of a run number.
    pub async fn insert_run(&mut self, run: &NewRun<'_>) -> Result<RunIds, StoreError> {
        let (run_number, run_attempt) = match run.attempt_of {
            None => {
                let row = sqlx::query(
                    "INSERT INTO run_numbers (repo, workflow, last) VALUES ($1, $2, 1) \
                     ON CONFLICT (repo, workflow) DO UPDATE SET last = run_numbers.last + 1 RETURNING last",
                )
                .bind(run.repo)
                .bind(run.workflow)
                .fetch_one(self.conn().await?)
                .await?;
                (row.try_get::<i64, _>("last")?, 1)
            }
            Some(number) => {
                let row = sqlx::query(
                    "SELECT COALESCE(MAX(run_attempt), 0) + 1 AS next FROM runs \
                     WHERE repo = $1 AND workflow = $2 AND run_number = $3",
                )
                .bind(run.repo)
                .bind(run.workflow)
                .bind(number)
                .fetch_one(self.conn().await?)
                .await?;
                (number, row.try_get::<i64, _>("next")?)
            }
        };
        let row = sqlx::query(
            "INSERT INTO runs (repo, workflow, workflow_name, run_number, run_attempt, event, delivery_id, \
             installation_id, head_sha, check_sha, git_ref, run_name, status, fork, approval, priority, created_at, \
             workflow_source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued', $13, $14, $15, $16, $17) RETURNING id",
        )
        .bind(run.repo)
        .bind(run.workflow)
        .bind(run.workflow_name)
        .bind(run_number)
        .bind(run_attempt)
        .bind(run.event)
        .bind(run.delivery_id)
        .bind(run.installation_id)
        .bind(run.head_sha)
        .bind(run.check_sha)
        .bind(run.git_ref)
        .bind(run.workflow_name)
        .bind(i64::from(run.fork))
        .bind(run.approval.as_str())
        .bind(i64::from(run.priority))
        .bind(now_ms())
        .bind(run.workflow_source)
        .fetch_one(self.conn().await?)
        .await?;
        Ok(RunIds { run_id: row.try_get("id")?, run_number, run_attempt })
    }

    /// Sets what the run shows as its name (`run-name`, evaluated) and, when it ended
    /// before it started (a broken workflow), its outcome.
    pub async fn finish_run_setup(
        &mut self,
        run_id: i64,
        run_name: &str,
        conclusion: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = if conclusion.is_some() { "completed" } else { "queued" };
        sqlx::query("UPDATE runs SET run_name = $1, status = $2, conclusion = $3 WHERE id = $4")
            .bind(run_name)
            .bind(status)
            .bind(conclusion)
            .bind(run_id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    pub async fn insert_job(&mut self, run_id: i64, job: &NewJob<'_>) -> Result<i64, StoreError> {
        let json = |labels: &[String]| serde_json::to_string(labels).expect("string lists serialise");
        let row = sqlx::query(
            "INSERT INTO jobs (run_id, job_key, name, runs_on, needs, matrix, condition, concurrency, status, \
             cancel_in_progress, fail_fast, max_parallel, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(run_id)
        .bind(job.job_key)
        .bind(job.name)
        .bind(json(job.runs_on))
        .bind(json(job.needs))
        .bind(job.matrix.map(|m| m.to_string()))
        .bind(job.condition)
        .bind(job.concurrency)
        .bind(job.status.as_str())
        .bind(i64::from(job.cancel_in_progress))
        .bind(job.strategy.map(|s| i64::from(s.fail_fast)))
        .bind(job.strategy.and_then(|s| s.max_parallel).map(i64::from))
        .bind(now_ms())
        .fetch_one(self.conn().await?)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Creates the record of a check run (for a job, or for a run without jobs) and
    /// queues its first state for the forge.
    pub async fn insert_check_run(
        &mut self,
        run_id: i64,
        job_id: Option<i64>,
        repo: &str,
        installation_id: Option<i64>,
        state: &CheckRunState,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO check_runs (run_id, job_id, repo, installation_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(run_id)
        .bind(job_id)
        .bind(repo)
        .bind(installation_id)
        .bind(now_ms())
        .fetch_one(self.conn().await?)
        .await?;
        let check_run_id: i64 = row.try_get("id")?;
        self.queue_check_run_state(check_run_id, state).await?;
        Ok(check_run_id)
    }

    /// Queues a new wanted state of a check run; it supersedes undelivered earlier ones.
    pub async fn queue_check_run_state(
        &mut self,
        check_run_id: i64,
        state: &CheckRunState,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO outbox (check_run_id, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(check_run_id)
        .bind(serde_json::to_string(state).expect("check run states serialise"))
        .bind(now)
        .bind(now)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Approves a run that waits for approval: its waiting jobs are queued. False when
    /// the run was not waiting (already approved, or never needed it).
    pub async fn approve_run(&mut self, run_id: i64) -> Result<bool, StoreError> {
        let approved = sqlx::query("UPDATE runs SET approval = $1 WHERE id = $2 AND approval = $3")
            .bind(Approval::Approved.as_str())
            .bind(run_id)
            .bind(Approval::Required.as_str())
            .execute(self.conn().await?)
            .await?
            .rows_affected()
            == 1;
        if approved {
            sqlx::query("UPDATE jobs SET status = $1 WHERE run_id = $2 AND status = $3")
                .bind(JobStatus::Queued.as_str())
                .bind(run_id)
                .bind(JobStatus::Waiting.as_str())
                .execute(self.conn().await?)
                .await?;
        }
        Ok(approved)
    }

    /// The check runs of a run's jobs, each with its newest wanted state and its job's
    /// labels and needs.
    pub async fn job_check_runs(&mut self, run_id: i64) -> Result<Vec<JobCheckRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, j.runs_on, j.needs, \
             (SELECT o.payload FROM outbox o WHERE o.check_run_id = c.id ORDER BY o.id DESC LIMIT 1) AS payload \
             FROM check_runs c JOIN jobs j ON j.id = c.job_id WHERE c.run_id = $1 ORDER BY c.id",
        )
        .bind(run_id)
        .fetch_all(self.conn().await?)
        .await?;
        let decode = |text: String| -> Result<Vec<String>, sqlx::Error> {
            serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        };
        rows.iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                Ok(JobCheckRun {
                    check_run_id: row.try_get("id")?,
                    state: serde_json::from_str(&payload).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    runs_on: decode(row.try_get("runs_on")?)?,
                    needs: decode(row.try_get("needs")?)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn mark_delivery_processed(&mut self, id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET processed_at = $1, outcome = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(outcome)
            .bind(id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }
}

/// A job's check run as [`Tx::job_check_runs`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCheckRun {
    pub check_run_id: i64,
    /// The newest state queued for it, delivered or not.
    pub state: CheckRunState,
    pub runs_on: Vec<String>,
    pub needs: Vec<String>,
}

/// A recorded run, for the API and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub repo: String,
    pub workflow: String,
    pub run_number: i64,
    pub run_attempt: i64,
    pub event: String,
    pub delivery_id: Option<String>,
    pub installation_id: Option<i64>,
    pub head_sha: String,
    pub run_name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub fork: bool,
    pub approval: Approval,
}

const RUN_COLUMNS: &str =
    "id, repo, workflow, run_number, run_attempt, event, delivery_id, installation_id, \
                           head_sha, run_name, status, conclusion, fork, approval";

impl Store {
    pub async fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(run_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(run_row).transpose()?)
    }

    /// The newest attempt of every run of `repo` whose check runs are on `check_sha`.
    pub async fn latest_runs_for_commit(
        &self,
        repo: &str,
        check_sha: &str,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE repo = $1 AND check_sha = $2 AND run_attempt = \
             (SELECT MAX(run_attempt) FROM runs o WHERE o.repo = r.repo AND o.workflow = r.workflow \
              AND o.run_number = r.run_number) ORDER BY id"
        ))
        .bind(repo)
        .bind(check_sha)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// The run a check run on the forge (by the forge's id) belongs to.
    pub async fn run_of_forge_check_run(&self, repo: &str, forge_id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT run_id FROM check_runs WHERE repo = $1 AND forge_id = $2")
            .bind(repo)
            .bind(forge_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("run_id")).transpose()?)
    }

    /// The run job `job_id` (a check run's `external_id`) of `repo` belongs to.
    pub async fn run_of_job(&self, repo: &str, job_id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT run_id FROM check_runs WHERE repo = $1 AND job_id = $2")
            .bind(repo)
            .bind(job_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("run_id")).transpose()?)
    }
}

fn run_row(row: &sqlx::any::AnyRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: row.try_get("id")?,
        repo: row.try_get("repo")?,
        workflow: row.try_get("workflow")?,
        run_number: row.try_get("run_number")?,
        run_attempt: row.try_get("run_attempt")?,
        event: row.try_get("event")?,
        delivery_id: row.try_get("delivery_id")?,
        installation_id: row.try_get("installation_id")?,
        head_sha: row.try_get("head_sha")?,
        run_name: row.try_get("run_name")?,
        status: row.try_get("status")?,
        conclusion: row.try_get("conclusion")?,
        fork: row.try_get::<i64, _>("fork")? != 0,
        approval: Approval::parse(&row.try_get::<String, _>("approval")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str, status: &str) -> CheckRunState {
        CheckRunState {
            name: name.into(),
            head_sha: "a".repeat(40),
            status: status.into(),
            conclusion: None,
            title: status.into(),
            summary: String::new(),
            annotations: Vec::new(),
            actions: Vec::new(),
        }
    }

    async fn job_statuses(store: &Store, run_id: i64) -> Vec<String> {
        sqlx::query("SELECT status FROM jobs WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get("status").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_fork_run_waits_until_approved_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("f.db").display())).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let ids = tx
            .insert_run(&NewRun {
                repo: "lab/qemu",
                workflow: "workflows/ci.yml",
                workflow_name: "CI",
                event: "pull_request",
                installation_id: Some(7),
                head_sha: "abc",
                check_sha: "def",
                git_ref: "refs/pull/1/merge",
                fork: true,
                approval: Approval::Required,
                ..Default::default()
            })
            .await
            .unwrap();
        let labels = ["amd64".to_owned()];
        let needs = ["build".to_owned()];
        let job = |key| NewJob {
            job_key: key,
            name: key,
            runs_on: &labels,
            needs: &needs,
            status: JobStatus::Waiting,
            ..Default::default()
        };
        let build = tx.insert_job(ids.run_id, &job("build")).await.unwrap();
        let check = tx
            .insert_check_run(ids.run_id, Some(build), "lab/qemu", Some(7), &state("CI / build", "queued"))
            .await
            .unwrap();
        tx.queue_check_run_state(check, &state("CI / build", "completed")).await.unwrap();
        tx.commit().await.unwrap();
        store.set_check_run_forge_id(check, 99).await.unwrap();

        let runs = store.runs().await.unwrap();
        assert_eq!((runs[0].fork, runs[0].approval), (true, Approval::Required));
        assert_eq!(store.run_of_forge_check_run("lab/qemu", 99).await.unwrap(), Some(ids.run_id));
        assert_eq!(store.run_of_job("lab/qemu", build).await.unwrap(), Some(ids.run_id));
        assert_eq!(store.run_of_job("other/repo", build).await.unwrap(), None);
        assert_eq!(job_statuses(&store, ids.run_id).await, ["waiting"]);

        let mut tx = store.begin().await.unwrap();
        assert!(tx.approve_run(ids.run_id).await.unwrap());
        let found = tx.job_check_runs(ids.run_id).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].state.status, "completed", "the newest state");
        assert_eq!((found[0].runs_on.as_slice(), found[0].needs.as_slice()), (&labels[..], &needs[..]));
        assert!(!tx.approve_run(ids.run_id).await.unwrap(), "a second approval changes nothing");
        tx.commit().await.unwrap();
        assert_eq!(job_statuses(&store, ids.run_id).await, ["queued"]);
        assert_eq!(store.runs().await.unwrap()[0].approval, Approval::Approved);
    }
}
