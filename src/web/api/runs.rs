//! `/runs`: workflow runs, newest first, each with its jobs; and re-runs.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::jobs::JobView;
use super::{time_text, ApiError, ErrorBody, JsonBody};
use crate::store::{RunQuery, RunRecord, StoreError};
use crate::web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show)).routes(routes!(rerun))
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    /// `owner/name`.
    pub repo: String,
    /// The workflow file's path.
    pub workflow: String,
    pub workflow_name: String,
    /// What the run shows as its name (`run-name`).
    pub run_name: String,
    pub run_number: i64,
    pub run_attempt: i64,
    /// The event that started it (`push`, `workflow_dispatch`, `schedule`, …).
    pub event: String,
    pub head_sha: String,
    /// `github.ref`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    /// Higher runs first.
    pub priority: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Its jobs in plan order (only in `GET /runs/{id}`, `POST /runs/{id}/rerun` and
    /// `POST /dispatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<JobView>>,
}

impl RunView {
    pub fn new(run: &RunRecord) -> RunView {
        RunView {
            id: run.id,
            repo: run.repo.clone(),
            workflow: run.workflow.clone(),
            workflow_name: run.workflow_name.clone(),
            run_name: run.run_name.clone(),
            run_number: run.run_number,
            run_attempt: run.run_attempt,
            event: run.event.clone(),
            head_sha: run.head_sha.clone(),
            git_ref: run.git_ref.clone(),
            status: run.status.clone(),
            conclusion: run.conclusion.clone(),
            priority: run.priority,
            created_at: time_text(run.created_at),
            jobs: None,
        }
    }

    /// The run with its jobs.
    pub async fn with_jobs(state: &AppState, run: &RunRecord) -> Result<RunView, StoreError> {
        let jobs = state.store.jobs_of_run(run.id).await?;
        Ok(RunView { jobs: Some(jobs.iter().map(JobView::new).collect()), ..RunView::new(run) })
    }
}

/// Which runs `GET /runs` lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this repository (`owner/name`).
    pub repo: Option<String>,
    /// Only runs with this status (queued, in_progress, completed).
    pub status: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

/// A re-run's options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// The new attempt's priority (default 0): higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// Lists runs, newest first.
#[utoipa::path(
    get, path = "/runs", tag = "runs", operation_id = "list_runs", params(RunFilter),
    responses(
        (status = 200, body = [RunView], description = "The runs, newest first"),
        (status = 422, body = ErrorBody, description = "A filter is not valid"),
    )
)]
async fn list(
    State(state): State<AppState>,
    filter: Result<Query<RunFilter>, QueryRejection>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let Query(filter) = filter.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let status = match filter.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("queued" | "in_progress" | "completed")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "`{other}` is not a run status (queued, in_progress, completed)"
            )))
        }
    };
    let query = RunQuery {
        repo: filter.repo.filter(|r| !r.is_empty()),
        status,
        limit: super::jobs::limit(filter.limit)?,
    };
    let runs = state.store.list_runs(&query).await?;
    Ok(Json(runs.iter().map(RunView::new).collect()))
}

/// One run, with its jobs.
#[utoipa::path(
    get, path = "/runs/{id}", tag = "runs", operation_id = "show_run",
    params(("id" = i64, Path, description = "The run's id")),
    responses(
        (status = 200, body = RunView, description = "The run and its jobs"),
        (status = 404, body = ErrorBody, description = "No such run"),
    )
)]
async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<RunView>, ApiError> {
    let run = find_run(&state, id).await?;
    Ok(Json(RunView::with_jobs(&state, &run).await?))
}

/// Re-runs a finished run: its next attempt, planned anew from the workflow file as
/// it is now, for the event that started the first attempt.
#[utoipa::path(
    post, path = "/runs/{id}/rerun", tag = "runs", operation_id = "rerun_run",
    params(("id" = i64, Path, description = "The run's id (any attempt)")),
    request_body(content = Option<RerunRequest>, description = "Optional: the new attempt's priority"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = RunView, description = "The new attempt, with its jobs"),
        (status = 404, body = ErrorBody, description = "No such run"),
        (status = 409, body = ErrorBody, description = "The run has unfinished jobs, or cannot be re-run"),
    )
)]
async fn rerun(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Option<JsonBody<RerunRequest>>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let priority = body.and_then(|JsonBody(b)| b.priority).unwrap_or(0);
    let Some(run) = state.store.run(id).await? else {
        return Err(ApiError::not_found(format!("no run {id}")));
    };
    let unfinished = state
        .store
        .jobs_of_run(id)
        .await?
        .into_iter()
        .filter(|job| job.status == "queued" || job.status == "in_progress")
        .count();
    if unfinished > 0 {
        return Err(ApiError::conflict(format!(
            "run {id} has {unfinished} unfinished job(s): cancel them or let them end first"
        )));
    }
    let before = state.store.latest_attempt(&run.repo, &run.workflow, run.run_number).await?;
    let mut tx = state.store.begin().await?;
    let outcome = crate::farm::rerun::rerun_with_priority(&state.farm, &mut tx, &run, priority).await?;
    tx.commit().await?;
    let after = state.store.latest_attempt(&run.repo, &run.workflow, run.run_number).await?;
    let new = match (before, after) {
        (Some(before), Some(after)) if after.id != before.id => after,
        _ => return Err(ApiError::conflict(format!("cannot re-run: {outcome}"))),
    };
    tracing::info!(run = id, new_run = new.id, attempt = new.run_attempt, priority, "re-run through the API");
    state.farm.outbox_waiting.notify_one();
    state.farm.dispatcher.wake();
    Ok((StatusCode::CREATED, Json(RunView::with_jobs(&state, &new).await?)))
}

pub(super) async fn find_run(state: &AppState, id: i64) -> Result<RunRecord, ApiError> {
    state.store.run_record(id).await?.ok_or_else(|| ApiError::not_found(format!("no run {id}")))
}
