//! Read queries for the REST API: runs with filters, a run's jobs, jobs with filters,
//! one job with its steps and check run. Writes live with the code that owns the state
//! (`runs.rs`, the farm's dispatcher); nothing here changes anything.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

/// Which runs [`Store::list_runs`] returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// `owner/name`, compared case-insensitively.
    pub repo: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
}

/// Which jobs [`Store::list_jobs`] returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub status: Option<String>,
    pub run_id: Option<i64>,
    pub host: Option<String>,
    /// Only jobs whose `runs-on` has this label (case-insensitive).
    pub label: Option<String>,
    pub limit: i64,
}

/// A run as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub repo: String,
    pub workflow: String,
    pub workflow_name: String,
    pub run_number: i64,
    pub run_attempt: i64,
    pub event: String,
    pub head_sha: String,
    pub git_ref: String,
    pub run_name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub priority: i64,
    pub created_at: i64,
}

/// A job as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: i64,
    pub run_id: i64,
    pub job_key: String,
    pub name: String,
    pub runs_on: Vec<String>,
    pub needs: Vec<String>,
    pub matrix: Option<serde_json::Value>,
    pub status: String,
    pub conclusion: Option<String>,
    pub host: Option<String>,
    /// What its check run last said it waits for.
    pub waiting_reason: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub number: i64,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// A job's check run: the farm's record and the newest state queued for the forge.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCheckRunRecord {
    pub id: i64,
    /// The forge's id, once created there.
    pub forge_id: Option<i64>,
    pub state: Option<super::CheckRunState>,
    /// Whether that newest state has reached the forge.
    pub delivered: bool,
}

const RUN_COLUMNS: &str = "id, repo, workflow, workflow_name, run_number, run_attempt, event, head_sha, \
                           git_ref, run_name, status, conclusion, priority, created_at";

const JOB_COLUMNS: &str = "id, run_id, job_key, name, runs_on, needs, matrix, status, conclusion, host, \
                           waiting_reason, created_at, started_at, completed_at";

impl Store {
    pub async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ($1 IS NULL OR LOWER(repo) = LOWER($1)) \
             AND ($2 IS NULL OR status = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(query.repo.as_deref())
        .bind(query.status.as_deref())
        .bind(query.limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_record).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    pub async fn run_record(&self, id: i64) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(run_record).transpose()?)
    }

    /// The runs one event (a stored delivery, or a dispatch) started, oldest first.
    pub async fn runs_of_delivery(&self, delivery_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE delivery_id = $1 ORDER BY id"))
            .bind(delivery_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(run_record).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    /// The newest attempt of the run with `run_number` of `repo`'s `workflow`.
    pub async fn latest_attempt(
        &self,
        repo: &str,
        workflow: &str,
        run_number: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE repo = $1 AND workflow = $2 AND run_number = $3 \
             ORDER BY run_attempt DESC LIMIT 1"
        ))
        .bind(repo)
        .bind(workflow)
        .bind(run_number)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(run_record).transpose()?)
    }

    pub async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        // `runs_on` is a JSON array of strings: a label matches as `"label"` in it, with
        // LIKE's wildcards taken literally.
        let label = query.label.as_deref().map(|l| {
            let quoted = json_string(&l.to_lowercase());
            format!("%{}%", quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
        });
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR run_id = $2) \
             AND ($3 IS NULL OR host = $3) AND ($4 IS NULL OR LOWER(runs_on) LIKE $4 ESCAPE '\\') ORDER BY id DESC LIMIT $5"
        ))
        .bind(query.status.as_deref())
        .bind(query.run_id)
        .bind(query.host.as_deref())
        .bind(label)
        .bind(query.limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_record).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    /// A run's jobs, in the order they were planned.
    pub async fn jobs_of_run(&self, run_id: i64) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = $1 ORDER BY id"))
            .bind(run_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(job_record).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    pub async fn job_record(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(job_record).transpose()?)
    }

    pub async fn job_steps(&self, job_id: i64) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, name, status, conclusion, started_at, completed_at FROM steps \
             WHERE job_id = $1 ORDER BY number",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StepRecord {
                    number: row.try_get("number")?,
                    name: row.try_get("name")?,
                    status: row.try_get("status")?,
                    conclusion: row.try_get("conclusion")?,
                    started_at: row.try_get("started_at")?,
                    completed_at: row.try_get("completed_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn job_check_run(&self, job_id: i64) -> Result<Option<JobCheckRunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id, c.forge_id, o.payload, o.delivered_at FROM check_runs c \
             LEFT JOIN outbox o ON o.id = (SELECT MAX(n.id) FROM outbox n WHERE n.check_run_id = c.id) \
             WHERE c.job_id = $1 ORDER BY c.id DESC LIMIT 1",
        )
        .bind(job_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: Option<String> = row.try_get("payload")?;
        let state = payload
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Some(JobCheckRunRecord {
            id: row.try_get("id")?,
            forge_id: row.try_get("forge_id")?,
            state,
            delivered: row.try_get::<Option<i64>, _>("delivered_at")?.is_some(),
        }))
    }
}

/// `text` as a JSON string literal, as it appears in a stored JSON array.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn run_record(row: &AnyRow) -> Result<RunRecord, sqlx::Error> {
    Ok(RunRecord {
        id: row.try_get("id")?,
        repo: row.try_get("repo")?,
        workflow: row.try_get("workflow")?,
        workflow_name: row.try_get("workflow_name")?,
        run_number: row.try_get("run_number")?,
        run_attempt: row.try_get("run_attempt")?,
        event: row.try_get("event")?,
        head_sha: row.try_get("head_sha")?,
        git_ref: row.try_get("git_ref")?,
        run_name: row.try_get("run_name")?,
        status: row.try_get("status")?,
        conclusion: row.try_get("conclusion")?,
        priority: row.try_get("priority")?,
        created_at: row.try_get("created_at")?,
    })
}

fn job_record(row: &AnyRow) -> Result<JobRecord, sqlx::Error> {
    let decode = |column: &str| -> Result<Vec<String>, sqlx::Error> {
        serde_json::from_str(&row.try_get::<String, _>(column)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let matrix: Option<String> = row.try_get("matrix")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        job_key: row.try_get("job_key")?,
        name: row.try_get("name")?,
        runs_on: decode("runs_on")?,
        needs: decode("needs")?,
        matrix: matrix
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        status: row.try_get("status")?,
        conclusion: row.try_get("conclusion")?,
        host: row.try_get("host")?,
        waiting_reason: row.try_get("waiting_reason")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}
