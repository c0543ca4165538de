//! `/jobs/{id}/log`: a job's log as plain text, or followed live as server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::store::{JobLogs, LogFollower, Store};
use crate::web::AppState;

/// How often a followed log is looked at for new lines, and its job for its end.
pub const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

/// How `GET /jobs/{id}/log` answers.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Stream the log as server-sent events: the lines so far, then each new line as it
    /// is written, until the job completes.
    pub follow: Option<bool>,
}

/// The job logs of the server's data folder.
fn job_logs(state: &AppState) -> JobLogs {
    let server = &state.farm.config.server;
    JobLogs::in_data_dir(&server.data_dir, server.job_log_limit)
}

/// A job's log: one line per line of output, `<UTC time with milliseconds> <text>`,
/// secrets masked. When the log outgrew the farm's cap, its first line says how many
/// bytes of earlier output were dropped. Empty for a job that has not started.
///
/// With `follow=true`, server-sent events instead: one event per line (`data: <line>`),
/// the log so far first, then new lines as they are written, and when the job has
/// completed a last `event: end` whose data is its conclusion.
#[utoipa::path(
    get, path = "/jobs/{id}/log", tag = "jobs", operation_id = "job_log",
    params(("id" = i64, Path, description = "The job's id"), LogParams),
    responses(
        (status = 200, description = "The log (`text/plain`), or with `follow=true` its lines as \
                                      server-sent events (`text/event-stream`) ending with `event: end`",
         content((String = "text/plain"), (String = "text/event-stream"))),
        (status = 404, body = ErrorBody, description = "No such job"),
        (status = 422, body = ErrorBody, description = "`follow` is not true or false"),
    )
)]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    if state.store.job_record(id).await?.is_none() {
        return Err(ApiError::not_found(format!("no job {id}")));
    }
    let logs = job_logs(&state);
    if params.follow.unwrap_or(false) {
        let events = follow(state.store.clone(), id, logs.follow(id, 0));
        return Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response());
    }
    let text = tokio::task::spawn_blocking(move || logs.read_all(id))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Where a followed log is.
struct Following {
    store: Store,
    job: i64,
    follower: LogFollower,
    /// Lines read, not yet sent.
    lines: VecDeque<String>,
    /// The job's conclusion once it completed and its last lines were read.
    end: Option<String>,
    ended: bool,
}

/// The events of a followed log. Reads run on the blocking pool (files); the stream ends
/// after the end event, or when the client goes away (axum drops it).
fn follow(
    store: Store,
    job: i64,
    follower: LogFollower,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let following = Following { store, job, follower, lines: VecDeque::new(), end: None, ended: false };
    futures_util::stream::unfold(following, |mut f| async move {
        loop {
            if let Some(line) = f.lines.pop_front() {
                return Some((Ok(Event::default().data(line)), f));
            }
            if let Some(conclusion) = f.end.take() {
                f.ended = true;
                return Some((Ok(Event::default().event("end").data(conclusion)), f));
            }
            if f.ended {
                return None;
            }
            // The job's state before its lines: what it wrote before completing is read
            // after seeing it completed.
            let completed = match f.store.job_record(f.job).await {
                Ok(Some(job)) if job.status == "completed" => {
                    Some(job.conclusion.unwrap_or_else(|| "completed".into()))
                }
                Ok(Some(_)) => None,
                Ok(None) => Some("removed".into()),
                Err(err) => {
                    tracing::warn!(job = f.job, %err, "following a job log: cannot read the job");
                    None
                }
            };
            let follower = f.follower;
            let read = tokio::task::spawn_blocking(move || {
                let mut follower = follower;
                let read = follower.next_lines();
                (follower, read)
            })
            .await;
            // The reader panicked: end the stream, the client sees it end without `end`.
            let Ok((follower, read)) = read else { return None };
            f.follower = follower;
            match read {
                Ok(lines) if !lines.is_empty() => {
                    f.lines.extend(lines);
                    // More may be waiting; look at the end only once all is read.
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(job = f.job, %err, "following a job log"),
            }
            if completed.is_some() {
                f.end = completed;
                continue;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    })
}
