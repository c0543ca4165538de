//! `POST /dispatch`: a manual run, as GitHub's "Run workflow" (`workflow_dispatch`).
//!
//! As GitHub's API does it: the ref is resolved to a commit through the forge, the
//! workflow must declare `on: workflow_dispatch`, and the inputs are checked against
//! the declared ones before anything is recorded. The event is then stored as an
//! already-processed delivery (so a re-run finds it) and its runs recorded in the same
//! transaction, as the cron does for `schedule`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as JsonValue};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::RunView;
use super::{ApiError, ErrorBody, JsonBody};
use crate::farm::events::HandlerError;
use crate::farm::start::{start_runs, EventOrigin};
use crate::farm::workflows::{event_workflows, WorkflowFile};
use crate::forge::api::ForgeError;
use crate::store::{now_ms, DeliveryInsert, DISPATCH_ID_PREFIX};
use crate::web::AppState;
use crate::workflow::event::Event;
use crate::workflow::load::{load, LoadOptions};
use crate::workflow::model::{Input, InputType};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dispatch))
}

/// A manual run of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    /// `owner/name`.
    pub repo: String,
    /// The workflow file: its path, or its file name.
    pub workflow: String,
    /// A branch name, or a full ref (`refs/heads/main`, `refs/tags/v1`): a bare name is
    /// taken as a branch for `github.ref`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Values of the inputs the workflow declares (`on.workflow_dispatch.inputs`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, JsonValue>,
    /// The runs' priority (default 0): higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// Starts a `workflow_dispatch` run.
#[utoipa::path(
    post, path = "/dispatch", tag = "runs", operation_id = "dispatch_workflow", request_body = DispatchRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, body = [RunView], description = "The run(s) started, with their jobs"),
        (status = 409, body = ErrorBody, description = "The farm has no forge to resolve the ref with"),
        (status = 422, body = ErrorBody, description = "Unknown repository, ref or workflow, no `workflow_dispatch` trigger, or inputs that do not fit"),
        (status = 503, body = ErrorBody, description = "The forge cannot be reached now"),
    )
)]
async fn dispatch(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<DispatchRequest>,
) -> Result<(StatusCode, Json<Vec<RunView>>), ApiError> {
    let farm = &state.farm;
    let repo = request.repo.trim();
    let Some(app) = &farm.forge else {
        return Err(ApiError::conflict(
            "this farm has no forge.app_id: a dispatch needs the forge to resolve the ref",
        ));
    };
    let git_ref = if request.git_ref.starts_with("refs/") {
        request.git_ref.clone()
    } else {
        format!("refs/heads/{}", request.git_ref)
    };
    let forge_error = |err: ForgeError| match err {
        ForgeError::Transient(_) | ForgeError::RateLimited(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
        other => ApiError::unprocessable(format!("{repo}: {other}")),
    };
    let installation_id = app.installation_for_repo(repo).await.map_err(forge_error)?;
    let client = app.installation(installation_id).await.map_err(forge_error)?;
    let repository = crate::forge::api::send(&client, http::Method::GET, &format!("/repos/{repo}"), None)
        .await
        .map_err(forge_error)?;
    // The forge's spelling of the name, as its webhooks would carry it.
    let repo = repository.get("full_name").and_then(JsonValue::as_str).unwrap_or(repo);
    let sha =
        crate::forge::repos::resolve_commit(&client, repo, &request.git_ref).await.map_err(
            |err| match err {
                ForgeError::NotFound(_) | ForgeError::Permanent(_) => {
                    ApiError::unprocessable(format!("{repo}: no commit for ref `{}`", request.git_ref))
                }
                other => forge_error(other),
            },
        )?;
    let files = event_workflows(farm, repo, Some(installation_id), &sha).await.map_err(|err| match err {
        HandlerError::ForgeUnavailable(err) => forge_error(err),
        other => ApiError::internal(&other),
    })?;
    let file = find_workflow(&files, repo, &request.workflow)?;
    let inputs = checked_inputs(file, &request.inputs)?;

    let delivery_id = new_delivery_id(repo);
    let payload = json!({
        "inputs": inputs,
        "installation": { "id": installation_id },
        "ref": git_ref,
        "repository": repository,
        "workflow": file.path,
    });
    let origin = EventOrigin {
        repo,
        installation_id: Some(installation_id),
        delivery_id: Some(&delivery_id),
        check_sha: &sha,
        attempt_of: None,
        priority: request.priority.unwrap_or(0),
    };
    let mut tx = state.store.begin().await?;
    if tx.insert_own_event(&delivery_id, "workflow_dispatch", &payload).await? == DeliveryInsert::Duplicate {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "a dispatch id collided: try again"));
    }
    let event = Event::new("workflow_dispatch", payload);
    let started = start_runs(&mut tx, &event, &origin, std::slice::from_ref(file)).await?;
    tx.mark_delivery_processed(&delivery_id, &started.describe()).await?;
    tx.commit().await?;
    tracing::info!(
        repo, workflow = %file.path, git_ref = %git_ref, sha = %sha, delivery = %delivery_id,
        "dispatched through the API: {}", started.describe()
    );
    farm.outbox_waiting.notify_one();
    farm.dispatcher.wake();

    let mut runs = Vec::new();
    for run in state.store.runs_of_delivery(&delivery_id).await? {
        runs.push(RunView::with_jobs(&state, &run).await?);
    }
    Ok((StatusCode::CREATED, Json(runs)))
}

/// The workflow a dispatch names: by path, or by file name when that is unambiguous.
fn find_workflow<'a>(
    files: &'a [WorkflowFile],
    repo: &str,
    named: &str,
) -> Result<&'a WorkflowFile, ApiError> {
    let named = named.trim_start_matches("./");
    let file_name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    if let Some(exact) = files.iter().find(|f| f.path.trim_start_matches("./") == named) {
        return Ok(exact);
    }
    let by_name: Vec<&WorkflowFile> =
        files.iter().filter(|f| file_name(&f.path) == file_name(named)).collect();
    match by_name.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            Err(ApiError::unprocessable(if known.is_empty() {
                format!("{repo} has no workflows on this farm")
            } else {
                format!("{repo} has no workflow `{named}` (its workflows: {})", known.join(", "))
            }))
        }
        many => {
            let paths: Vec<&str> = many.iter().map(|f| f.path.as_str()).collect();
            Err(ApiError::unprocessable(format!(
                "`{named}` names more than one workflow of {repo}: give its path ({})",
                paths.join(", ")
            )))
        }
    }
}

/// The inputs, checked against those `file` declares for `workflow_dispatch` as GitHub
/// checks them: no undeclared input, every required one without a default given,
/// booleans, numbers and choices of their type. Values keep the spelling given.
fn checked_inputs(
    file: &WorkflowFile,
    given: &Map<String, JsonValue>,
) -> Result<Map<String, JsonValue>, ApiError> {
    let loaded = load(&file.text, &LoadOptions { syntax_only: false });
    let Some(workflow) = loaded.workflow.filter(|_| loaded.diagnostics.is_empty()) else {
        let first = loaded.diagnostics.first().map(|d| d.render(&file.path)).unwrap_or_default();
        return Err(ApiError::unprocessable(format!("{} is not a valid workflow: {first}", file.path)));
    };
    let Some(trigger) = workflow.on.events.get("workflow_dispatch") else {
        return Err(ApiError::unprocessable(format!(
            "{} does not run on `workflow_dispatch`: add `on: workflow_dispatch` to dispatch it",
            file.path
        )));
    };
    let declared = &trigger.inputs;
    let mut problems = Vec::new();
    for (name, value) in given {
        let Some((_, input)) = declared.iter().find(|(d, _)| d.eq_ignore_ascii_case(name)) else {
            problems.push(format!("unexpected input `{name}`"));
            continue;
        };
        if let Err(why) = check_value(input, value) {
            problems.push(format!("input `{name}`: {why}"));
        }
    }
    for (name, input) in declared {
        let provided = given.keys().any(|g| g.eq_ignore_ascii_case(name));
        if input.required && input.default.is_none() && !provided {
            problems.push(format!("input `{name}` is required"));
        }
    }
    if !problems.is_empty() {
        let names: Vec<&str> = declared.keys().map(String::as_str).collect();
        let declared_text = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
        return Err(ApiError::unprocessable(format!(
            "{}: {} (declared inputs: {declared_text})",
            file.path,
            problems.join("; ")
        )));
    }
    Ok(given.clone())
}

fn check_value(input: &Input, value: &JsonValue) -> Result<(), String> {
    let text = match value {
        JsonValue::String(s) => s.clone(),
        JsonValue::Bool(b) => b.to_string(),
        JsonValue::Number(n) => n.to_string(),
        _ => return Err("give a string, a boolean or a number".into()),
    };
    match input.kind {
        InputType::Boolean if !matches!(text.as_str(), "true" | "false") => {
            Err(format!("`{text}` is not a boolean (true or false)"))
        }
        InputType::Number if text.trim().parse::<f64>().is_err() => Err(format!("`{text}` is not a number")),
        InputType::Choice if !input.options.iter().any(|o| o.value == text) => {
            let options: Vec<&str> = input.options.iter().map(|o| o.value.as_str()).collect();
            Err(format!("`{text}` is not one of its options ({})", options.join(", ")))
        }
        _ => Ok(()),
    }
}

/// A delivery id for a dispatch: unique in this process and across restarts.
fn new_delivery_id(repo: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    format!("{DISPATCH_ID_PREFIX}{repo}@{}-{}", now_ms(), COUNT.fetch_add(1, Ordering::Relaxed))
}
