//! The REST API under `/api/v1` (JSON), and its OpenAPI description at
//! `/api/v1/openapi.json`, generated from the handlers (utoipa).
//!
//! One file per resource (`hosts.rs`, `labels.rs`, …), each with a `routes()` that
//! lists its handlers. To add an endpoint:
//! - write the handler with a `#[utoipa::path(...)]` attribute: method, path relative
//!   to `/api/v1`, a unique `operation_id`, a `tag`, its responses (errors with
//!   `body = ErrorBody`), and `security(("admin_token" = []))` when it changes anything;
//! - add it to its file's `routes()` with `routes!(…)` (the handlers of one path share
//!   one `routes!`); a new resource file is merged in [`router`] and given a tag in
//!   [`ApiDoc`].
//!
//! Handlers return `Result<_, ApiError>`, read bodies with [`JsonBody`] (never axum's
//! `Json`, whose rejections are not JSON), and turn library errors into [`ApiError`]
//! with `From`. Every method but GET and HEAD needs the admin token: the layer in
//! `auth.rs` checks it before any handler runs, so a handler cannot forget it; with
//! `[server] read_access = "token"` it checks reads too.

mod artifacts;
mod auth;
pub mod dispatch;
mod error;
pub mod hosts;
pub mod installs;
pub mod jobs;
pub mod labels;
pub mod logs;
pub mod runs;

pub(crate) use auth::require_admin_token;
pub use auth::AdminToken;
pub use error::{ApiError, ErrorBody, JsonBody};

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "metalfarm",
        description = "The REST API of a metalfarm server: the inventory of bare-metal hosts, \
                       their labels, runs and jobs. Calls that change anything need \
                       `Authorization: Bearer <admin token>`."
    ),
    servers((url = "/api/v1")),
    modifiers(&AdminTokenScheme),
    tags(
        (name = "hosts", description = "The inventory: hosts, their states and locks"),
        (name = "labels", description = "The labels jobs' `runs-on` match against"),
        (name = "runs", description = "Workflow runs, re-runs and manual runs (`workflow_dispatch`)"),
        (name = "jobs", description = "The jobs of runs, their hosts, steps and check runs"),
    )
)]
struct ApiDoc;

/// Declares the `admin_token` security scheme the mutating operations name.
struct AdminTokenScheme;

impl utoipa::Modify for AdminTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The content of the server's `server.admin_token_file`."))
                    .build(),
            ),
        );
    }
}

/// The API's routes, relative to [`PREFIX`], and its OpenAPI document.
pub fn router(state: AppState) -> Router<AppState> {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        // One line per resource file.
        .merge(hosts::routes())
        .merge(installs::routes())
        .merge(labels::routes())
        .merge(runs::routes())
        .merge(jobs::routes())
        .merge(dispatch::routes())
        .merge(logs::routes())
        .merge(artifacts::routes())
        .split_for_parts();
    let document: Arc<str> = openapi.to_pretty_json().expect("the OpenAPI document serialises").into();
    routes
        .route(
            "/openapi.json",
            get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], document.to_string()).into_response()
            }),
        )
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state, auth::require_admin_token))
}

/// Unix milliseconds as the API writes times: RFC 3339, UTC, to the second.
pub fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
