//! `/jobs`: the jobs of every run, newest first; one job with its steps, host and check
//! run.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{time_text, ApiError, ErrorBody};
use crate::farm::dispatch::CancelError;
use crate::store::{JobQuery, JobRecord, StepRecord};
use crate::web::AppState;

/// How many runs or jobs a list shows unless `limit` says otherwise, and at most.
pub const LIMIT_DEFAULT: i64 = 50;
pub const LIMIT_MAX: i64 = 500;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show)).routes(routes!(cancel))
}

/// A job of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub run_id: i64,
    /// The workflow's job id.
    pub job_key: String,
    /// Its display name, matrix values included.
    pub name: String,
    /// `waiting` (its run awaits approval), `queued`, `in_progress` or `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    /// Its `runs-on` labels.
    pub runs_on: Vec<String>,
    /// The jobs it runs after.
    pub needs: Vec<String>,
    /// Its matrix combination.
    #[schema(value_type = Option<Object>)]
    pub matrix: Option<serde_json::Value>,
    /// The host it runs or ran on.
    pub host: Option<String>,
    /// What it waits for, as its check run says (while queued).
    pub waiting_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// Its steps (only in `GET /jobs/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
    /// Its check run on the forge (only in `GET /jobs/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_run: Option<CheckRunView>,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub number: i64,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// A job's check run: what the farm last asked the forge to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckRunView {
    /// The farm's id of the check run.
    pub id: i64,
    /// The forge's id, once created there.
    pub forge_id: Option<i64>,
    /// `queued`, `in_progress` or `completed`.
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    /// Whether the forge has been told this state yet.
    pub delivered: bool,
}

impl JobView {
    pub fn new(job: &JobRecord) -> JobView {
        JobView {
            id: job.id,
            run_id: job.run_id,
            job_key: job.job_key.clone(),
            name: job.name.clone(),
            status: job.status.clone(),
            conclusion: job.conclusion.clone(),
            runs_on: job.runs_on.clone(),
            needs: job.needs.clone(),
            matrix: job.matrix.clone(),
            host: job.host.clone(),
            waiting_reason: job.waiting_reason.clone(),
            created_at: time_text(job.created_at),
            started_at: job.started_at.map(time_text),
            completed_at: job.completed_at.map(time_text),
            steps: None,
            check_run: None,
        }
    }
}

impl StepView {
    fn new(step: &StepRecord) -> StepView {
        StepView {
            number: step.number,
            name: step.name.clone(),
            status: step.status.clone(),
            conclusion: step.conclusion.clone(),
            started_at: step.started_at.map(time_text),
            completed_at: step.completed_at.map(time_text),
        }
    }
}

/// Which jobs `GET /jobs` lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only jobs with this status (waiting, queued, in_progress, completed).
    pub status: Option<String>,
    /// Only jobs of this run.
    pub run: Option<i64>,
    /// Only jobs on this host.
    pub host: Option<String>,
    /// Only jobs whose `runs-on` has this label.
    pub label: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

/// A list's `limit`: the default when absent, refused outside 1..=[`LIMIT_MAX`].
pub(super) fn limit(given: Option<i64>) -> Result<i64, ApiError> {
    match given {
        None => Ok(LIMIT_DEFAULT),
        Some(n @ 1..=LIMIT_MAX) => Ok(n),
        Some(n) => Err(ApiError::unprocessable(format!("limit {n}: give 1 to {LIMIT_MAX}"))),
    }
}

/// Lists jobs, newest first.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs", operation_id = "list_jobs", params(JobFilter),
    responses(
        (status = 200, body = [JobView], description = "The jobs, newest first"),
        (status = 422, body = ErrorBody, description = "A filter is not valid"),
    )
)]
async fn list(
    State(state): State<AppState>,
    filter: Result<Query<JobFilter>, QueryRejection>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let Query(filter) = filter.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let status = match filter.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("waiting" | "queued" | "in_progress" | "completed")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "`{other}` is not a job status (waiting, queued, in_progress, completed)"
            )))
        }
    };
    let query = JobQuery {
        status,
        run_id: filter.run,
        host: filter.host.filter(|h| !h.is_empty()),
        label: filter.label.filter(|l| !l.is_empty()),
        limit: limit(filter.limit)?,
    };
    let jobs = state.store.list_jobs(&query).await?;
    Ok(Json(jobs.iter().map(JobView::new).collect()))
}

/// One job, with its steps and check run.
#[utoipa::path(
    get, path = "/jobs/{id}", tag = "jobs", operation_id = "show_job",
    params(("id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, body = JobView, description = "The job, its steps and check run"),
        (status = 404, body = ErrorBody, description = "No such job"),
    )
)]
async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<JobView>, ApiError> {
    Ok(Json(job_in_full(&state, id).await?))
}

/// Cancels a queued or running job, as GitHub does: a queued job concludes `cancelled`
/// at once; a running one is stopped, then concludes `cancelled`. The jobs that need
/// it follow their `if`.
#[utoipa::path(
    post, path = "/jobs/{id}/cancel", tag = "jobs", operation_id = "cancel_job",
    params(("id" = i64, Path, description = "The job's id")),
    security(("admin_token" = [])),
    responses(
        (status = 202, body = JobView, description = "Cancelled (`completed`), or being stopped"),
        (status = 404, body = ErrorBody, description = "No such job"),
        (status = 409, body = ErrorBody, description = "The job has already completed"),
        (status = 503, body = ErrorBody, description = "The scheduler cannot take it now"),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    match state.farm.dispatcher.cancel(id).await {
        Ok(()) => {}
        Err(CancelError::NotFound(_)) => return Err(ApiError::not_found(format!("no job {id}"))),
        Err(CancelError::Completed { conclusion, .. }) => {
            return Err(ApiError::conflict(format!("job {id} has already completed: {conclusion}")))
        }
        Err(err @ CancelError::Unavailable(_)) => {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()))
        }
    }
    tracing::info!(job = id, "cancelled a job through the API");
    Ok((StatusCode::ACCEPTED, Json(job_in_full(&state, id).await?)))
}

/// A job with its steps and check run.
pub(super) async fn job_in_full(state: &AppState, id: i64) -> Result<JobView, ApiError> {
    let job = state.store.job_record(id).await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let steps = state.store.job_steps(id).await?;
    let check_run = state.store.job_check_run(id).await?.map(|c| CheckRunView {
        id: c.id,
        forge_id: c.forge_id,
        status: c.state.as_ref().map(|s| s.status.clone()),
        conclusion: c.state.as_ref().and_then(|s| s.conclusion.clone()),
        title: c.state.as_ref().map(|s| s.title.clone()),
        delivered: c.delivered,
    });
    Ok(JobView { steps: Some(steps.iter().map(StepView::new).collect()), check_run, ..JobView::new(&job) })
}
