//! `/jobs/{id}/log`: a job's log as plain text, or followed live as server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::store::{JobStatus, LogFollower, LogLine, Store};
use crate::web::{AppState, Stopping};

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

/// A job's log: one line per line of output, `<UTC time with milliseconds> <text>`,
/// secrets masked. When the log outgrew the farm's cap, its first line says how many
/// bytes of earlier output were dropped. Empty for a job that has not started.
///
/// With `follow=true`, server-sent events instead: one event per line (`data: <line>`),
/// the log so far first, then new lines as they are written, and when the job has
/// completed a last `event: end` whose data is its conclusion. Each event's `id` is the
/// log's offset after it: a client that reconnects with `Last-Event-ID` (as browsers'
/// `EventSource` does) gets the lines after that one.
#[utoipa::path(
    get, path = "/jobs/{id}/log", tag = "jobs", operation_id = "job_log",
    params(
        ("id" = i64, Path, description = "The job's id"),
        LogParams,
        ("Last-Event-ID" = Option<u64>, Header,
         description = "With `follow=true`: the id of the last event received; the stream resumes after it"),
    ),
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
    headers: HeaderMap,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::unprocessable(e.body_text()))?;
    if state.store.job_record(id).await?.is_none() {
        return Err(ApiError::not_found(format!("no job {id}")));
    }
    let logs = state.farm.logs.clone();
    if params.follow.unwrap_or(false) {
        let from = match headers.get("last-event-id") {
            None => 0,
            Some(value) => value.to_str().ok().and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
                ApiError::unprocessable("Last-Event-ID: not an event id of this log (an offset)")
            })?,
        };
        let events = follow(state.store.clone(), state.stopping.clone(), id, logs.follow(id, from));
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
    stopping: Stopping,
    job: i64,
    follower: LogFollower,
    /// Lines read, not yet sent.
    lines: VecDeque<LogLine>,
    /// The job's conclusion once it completed and its last lines were read.
    end: Option<String>,
    ended: bool,
}

/// The events of a followed log. Reads run on the blocking pool (files); the stream ends
/// after the end event, when the client goes away (axum drops it), or when the server
/// stops.
fn follow(
    store: Store,
    stopping: Stopping,
    job: i64,
    follower: LogFollower,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let following =
        Following { store, stopping, job, follower, lines: VecDeque::new(), end: None, ended: false };
    futures_util::stream::unfold(following, |mut f| async move {
        loop {
            if let Some(line) = f.lines.pop_front() {
                return Some((Ok(Event::default().id(line.end.to_string()).data(line.text)), f));
            }
            if let Some(conclusion) = f.end.take() {
                f.ended = true;
                let end = Event::default().event("end").id(f.follower.offset().to_string()).data(conclusion);
                return Some((Ok(end), f));
            }
            if f.ended {
                return None;
            }
            // The reader panicked: end the stream; the client sees no `end`.
            let lines = read_lines(&mut f.follower).await?;
            if !lines.is_empty() {
                f.lines.extend(lines);
                continue;
            }
            // Nothing new: has the job ended? Its last lines were flushed before it
            // completed, so one more read after seeing it completed gets them all.
            let completed = match f.store.job_state(f.job).await {
                Ok(Some((JobStatus::Completed, conclusion))) => {
                    Some(conclusion.unwrap_or_else(|| "completed".into()))
                }
                Ok(Some(_)) => None,
                Ok(None) => Some("removed".into()),
                Err(err) => {
                    tracing::warn!(job = f.job, %err, "following a job log: cannot read the job");
                    None
                }
            };
            if let Some(conclusion) = completed {
                loop {
                    let lines = read_lines(&mut f.follower).await?;
                    if lines.is_empty() {
                        break;
                    }
                    f.lines.extend(lines);
                }
                f.end = Some(conclusion);
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                // Ends without `end`: the client may reconnect (`Last-Event-ID`) once
                // the server is back.
                _ = f.stopping.stopped() => return None,
            }
        }
    })
}

/// The next lines of a followed log, read on the blocking pool; empty after an error
/// (logged: the next poll tries again); `None` when the reader panicked.
async fn read_lines(follower: &mut LogFollower) -> Option<Vec<LogLine>> {
    let mut moved = follower.clone();
    let (moved, read) = tokio::task::spawn_blocking(move || {
        let read = moved.next_lines();
        (moved, read)
    })
    .await
    .ok()?;
    *follower = moved;
    Some(read.unwrap_or_else(|err| {
        tracing::warn!(%err, "following a job log");
        Vec::new()
    }))
}
