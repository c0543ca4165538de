//! Reinstalls: an admin asks for one (`POST /hosts/{name}/provision`, what
//! `metalfarm provision` calls), and a fresh install announces its new SSH host key
//! (`POST /hosts/{name}/installed`, what the kickstart's `%post` calls). The
//! announcement carries the one-time token the farm gave that install instead of the
//! admin token (`auth.rs` lets it through).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::hosts::HostView;
use super::{ApiError, ErrorBody, JsonBody};
use crate::provision::announce::AnnounceError;
use crate::web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(provision))
        .routes(routes!(installed))
        // The announcement needs no admin token: anyone may send one, so it is kept small.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// The most a reinstall request or an announcement may be (a host key is under 1 KiB).
const BODY_LIMIT: usize = 64 << 10;

/// The last path segment of the announcement: `auth.rs` exempts it from the admin token.
pub(super) const INSTALLED_SEGMENT: &str = "installed";

/// A reinstall an admin asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// The profile to install; default: `[cobbler] default_profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// What a fresh install announces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// The one-time token the farm gave this install (Cobbler's `metalfarm_token`).
    pub token: String,
    /// The new system's SSH host key, OpenSSH text (`ssh-ed25519 AAAA…`).
    pub host_key: String,
}

/// Reinstalls a host: it goes to `repairing`, is reinstalled with the profile and
/// health-checked, and returns to `ready` (or `broken` after too many failures).
#[utoipa::path(
    post, path = "/hosts/{name}/provision", tag = "hosts", operation_id = "provision_host",
    request_body = ProvisionRequest,
    params(("name" = String, Path, description = "The host's name")),
    security(("admin_token" = [])),
    responses(
        (status = 202, body = HostView, description = "The reinstall is on its way: the host is repairing"),
        (status = 404, body = ErrorBody, description = "No such host"),
        (status = 409, body = ErrorBody, description = "The host is leased: it finishes its job first"),
        (status = 422, body = ErrorBody, description = "The farm has no provisioner (`[cobbler]`)"),
    )
)]
async fn provision(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<ProvisionRequest>,
) -> Result<(StatusCode, Json<HostView>), ApiError> {
    let farm = &state.farm;
    let Some(cobbler) = farm.config.cobbler.as_ref().filter(|_| farm.provisioner.is_some()) else {
        return Err(ApiError::unprocessable(
            "this farm cannot reinstall hosts: its config has no `[cobbler]`",
        ));
    };
    let profile = request.profile.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
    let Some(shown) = profile.clone().or_else(|| cobbler.default_profile.clone()) else {
        return Err(ApiError::unprocessable("no profile given and no `[cobbler] default_profile`"));
    };
    farm.repairs.request(&name, profile);
    let host = state
        .inventory
        .request_reinstall(&name, &format!("reinstall with profile {shown} asked for"))
        .await?;
    tracing::info!(host = %name, profile = %shown, "an admin asked for a reinstall");
    Ok((StatusCode::ACCEPTED, Json(HostView::new(&host))))
}

/// A fresh install announces its new SSH host key (the kickstart's `%post`). Accepted
/// only with the token of the install the farm waits for.
#[utoipa::path(
    post, path = "/hosts/{name}/installed", tag = "hosts", operation_id = "host_installed",
    request_body = Installed,
    params(("name" = String, Path, description = "The host's name")),
    responses(
        (status = 204, description = "Accepted: the farm goes on with the new key"),
        (status = 403, body = ErrorBody, description = "Not the token of the install waited for"),
        (status = 404, body = ErrorBody, description = "No install of this host is waited for"),
        (status = 422, body = ErrorBody, description = "Not an SSH public key"),
    )
)]
async fn installed(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(installed): JsonBody<Installed>,
) -> Result<StatusCode, ApiError> {
    match state.farm.announcements.announce(&name, installed.token.trim(), &installed.host_key) {
        Ok(()) => {
            tracing::info!(host = %name, "a fresh install announced its host key");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(err @ AnnounceError::NotExpected(_)) => Err(ApiError::not_found(err.to_string())),
        Err(err @ AnnounceError::WrongToken(_)) => {
            tracing::warn!(host = %name, "an install announcement with a wrong token was refused");
            Err(ApiError::new(StatusCode::FORBIDDEN, err.to_string()))
        }
        Err(err @ AnnounceError::BadKey(_)) => Err(ApiError::unprocessable(err.to_string())),
    }
}
