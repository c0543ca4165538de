//! `/hosts`: the inventory. Hosts of the config file are listed with the others but
//! are edited and removed in the config; locks and unlocks work on every host.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{time_text, ApiError, ErrorBody, JsonBody};
use crate::config::Arch;
use crate::farm::hosts::{Host, HostEdit, HostHistoryEntry, HostSource, HostSpec, HostState};
use crate::web::AppState;

/// How many history entries `GET /hosts/{name}` shows.
const HISTORY_SHOWN: i64 = 50;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, add)).routes(routes!(show, edit, remove))
}

/// A host as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    pub name: String,
    pub address: String,
    /// Its SSH port.
    pub port: u16,
    /// Its system name in Cobbler.
    pub cobbler_system: String,
    pub arch: Arch,
    /// Its own labels (lowercase).
    pub labels: Vec<String>,
    /// What jobs' `runs-on` is matched against: `self-hosted`, `linux`, the
    /// architecture, then its own labels.
    pub all_labels: Vec<String>,
    /// `config`: defined in the config file, edited and removed there.
    pub source: HostSource,
    pub state: HostState,
    /// Why it is in its state.
    pub state_reason: String,
    /// A lock asked for while the host was leased: it goes to maintenance with this
    /// reason when its job ends.
    pub pending_lock: Option<String>,
    pub consecutive_failures: i64,
    /// The job it is leased to.
    pub job_id: Option<i64>,
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Its latest changes of state, oldest first (only in `GET /hosts/{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
    /// What an admin should look at now (only when adding a host): e.g. its system is
    /// missing in Cobbler, so it cannot be reinstalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One change of a host's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    #[schema(format = DateTime)]
    pub at: String,
    /// `null` when the host was added.
    pub from: Option<HostState>,
    pub to: HostState,
    pub reason: String,
    /// `admin` (through the API), `config` (the config file) or `farm`.
    pub by: String,
}

impl HostView {
    pub fn new(host: &Host) -> HostView {
        HostView {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            cobbler_system: host.cobbler_system.clone(),
            arch: host.arch,
            labels: host.labels.clone(),
            all_labels: host.all_labels(),
            source: host.source,
            state: host.state,
            state_reason: host.state_reason.clone(),
            pending_lock: host.pending_lock.clone(),
            consecutive_failures: host.consecutive_failures,
            job_id: host.job_id,
            lease_expires_at: host.lease_expires_at.map(time_text),
            updated_at: time_text(host.updated_at),
            history: None,
            warnings: Vec::new(),
        }
    }
}

impl HistoryView {
    fn new(entry: &HostHistoryEntry) -> HistoryView {
        HistoryView {
            at: time_text(entry.at),
            from: entry.from,
            to: entry.to,
            reason: entry.reason.clone(),
            by: entry.actor.clone(),
        }
    }
}

/// A host to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHost {
    pub name: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Default: the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Default: 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Default: the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cobbler_system: Option<String>,
    /// Default: `x64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
}

/// Changes to a host: any of its description (hosts added through the API only), and
/// a lock or an unlock. Applied in that order: a refused lock leaves the new
/// description in place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostPatch {
    /// Its own labels, replacing the ones it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cobbler_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    /// Locks the host for maintenance. A leased host finishes its job first: the lock
    /// shows as `pending_lock` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    /// `true`: returns a broken host or one in maintenance to ready, or withdraws a
    /// pending lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Why, for the other admins and the history.
    pub reason: String,
}

/// Which hosts `GET /hosts` lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostFilter {
    /// Only hosts in this state.
    pub state: Option<String>,
    /// Only hosts with every one of these labels (comma-separated; implicit labels
    /// count): the hosts a job with this `runs-on` could run on.
    pub labels: Option<String>,
}

/// Lists the hosts, by name.
#[utoipa::path(
    get, path = "/hosts", tag = "hosts", operation_id = "list_hosts", params(HostFilter),
    responses(
        (status = 200, body = [HostView], description = "The hosts"),
        (status = 422, body = ErrorBody, description = "Not a state"),
    )
)]
async fn list(
    State(state): State<AppState>,
    filter: Result<Query<HostFilter>, QueryRejection>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    let Query(filter) = filter.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let wanted_state = match filter.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(HostState::parse(text).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "`{text}` is not a host state (ready, leased, repairing, broken, maintenance)"
            ))
        })?),
    };
    let labels: Vec<String> = filter
        .labels
        .iter()
        .flat_map(|l| l.split(','))
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    let hosts = state.inventory.list().await?;
    let shown = hosts
        .iter()
        .filter(|h| wanted_state.is_none_or(|s| h.state == s))
        .filter(|h| {
            let all = h.all_labels();
            labels.iter().all(|l| all.contains(l))
        })
        .map(HostView::new)
        .collect();
    Ok(Json(shown))
}

/// Adds a host, ready.
#[utoipa::path(
    post, path = "/hosts", tag = "hosts", operation_id = "add_host", request_body = NewHost,
    security(("admin_token" = [])),
    responses(
        (status = 201, body = HostView, description = "Added"),
        (status = 409, body = ErrorBody, description = "A host has that name"),
        (status = 422, body = ErrorBody, description = "A field is not valid"),
    )
)]
async fn add(
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewHost>,
) -> Result<(StatusCode, Json<HostView>), ApiError> {
    let spec = HostSpec {
        name: new.name,
        labels: new.labels,
        address: new.address,
        port: new.port,
        cobbler_system: new.cobbler_system,
        arch: new.arch,
    };
    let host = state.inventory.add(&spec).await?;
    tracing::info!(host = %host.name, "added a host through the API");
    crate::farm::runner::learn_host_key(state.farm.clone(), host.name.clone());
    let warnings = crate::farm::repair::check_provisioning(&state.farm, &host).await.into_iter().collect();
    Ok((StatusCode::CREATED, Json(HostView { warnings, ..HostView::new(&host) })))
}

/// One host, with its latest history.
#[utoipa::path(
    get, path = "/hosts/{name}", tag = "hosts", operation_id = "show_host",
    params(("name" = String, Path, description = "The host's name")),
    responses(
        (status = 200, body = HostView, description = "The host and its latest history"),
        (status = 404, body = ErrorBody, description = "No such host"),
    )
)]
async fn show(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<HostView>, ApiError> {
    let host = state.inventory.get(&name).await?;
    let history = state.inventory.history(&name, HISTORY_SHOWN).await?;
    Ok(Json(HostView {
        history: Some(history.iter().map(HistoryView::new).collect()),
        ..HostView::new(&host)
    }))
}

/// Changes a host's description, or locks or unlocks it.
#[utoipa::path(
    patch, path = "/hosts/{name}", tag = "hosts", operation_id = "edit_host", request_body = HostPatch,
    params(("name" = String, Path, description = "The host's name")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = HostView, description = "The host as it now is"),
        (status = 404, body = ErrorBody, description = "No such host"),
        (status = 409, body = ErrorBody, description = "Not allowed in its state, or a host of the config file"),
        (status = 422, body = ErrorBody, description = "A field is not valid, or nothing to change"),
    )
)]
async fn edit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(patch): JsonBody<HostPatch>,
) -> Result<Json<HostView>, ApiError> {
    let edit = HostEdit {
        labels: patch.labels,
        address: patch.address,
        port: patch.port,
        cobbler_system: patch.cobbler_system,
        arch: patch.arch,
    };
    let unlock = patch.unlock.unwrap_or(false);
    if patch.lock.is_some() && unlock {
        return Err(ApiError::unprocessable("`lock` and `unlock` together: choose one"));
    }
    if edit.is_empty() && patch.lock.is_none() && !unlock {
        return Err(ApiError::unprocessable(
            "nothing to change: give labels, address, port, cobbler_system, arch, lock or unlock",
        ));
    }
    let mut host = state.inventory.get(&name).await?;
    if !edit.is_empty() {
        host = state.inventory.edit(&name, &edit).await?;
    }
    if let Some(lock) = patch.lock {
        host = state.inventory.lock(&name, &lock.reason).await?;
        tracing::info!(host = %name, reason = %lock.reason, state = %host.state, "locked a host");
    } else if unlock {
        host = state.inventory.unlock(&name).await?;
        tracing::info!(host = %name, state = %host.state, "unlocked a host");
    }
    Ok(Json(HostView::new(&host)))
}

/// Removes a host added through the API; it must not be leased or being repaired.
#[utoipa::path(
    delete, path = "/hosts/{name}", tag = "hosts", operation_id = "remove_host",
    params(("name" = String, Path, description = "The host's name")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ErrorBody, description = "No such host"),
        (status = 409, body = ErrorBody, description = "A host of the config file, or busy"),
    )
)]
async fn remove(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.inventory.remove(&name).await?;
    tracing::info!(host = %name, "removed a host through the API");
    Ok(StatusCode::NO_CONTENT)
}
