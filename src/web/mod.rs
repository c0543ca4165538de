//! The HTTP face of the farm (axum): the forge's webhook, health, and later the REST
//! API, metrics and the dashboard. Handlers are thin: they check input, call the store
//! or the farm, and answer.

pub mod api;
pub mod guards;
mod metrics;
pub mod server;
mod webhook;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{Notify, Semaphore};

use crate::farm::hosts::Inventory;
use crate::store::Store;

/// GitHub caps webhook payloads at 25 MB; anything larger is refused with 413.
pub const MAX_WEBHOOK_BYTES: usize = 25 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The webhook secret; without one every delivery is refused (nothing to verify with).
    pub webhook_secret: Option<Arc<[u8]>>,
    /// Woken after a delivery is stored, so processing starts at once.
    pub deliveries_waiting: Arc<Notify>,
    /// The hosts, for the REST API.
    pub inventory: Inventory,
    /// The token of mutating API calls; without one they are refused (403).
    pub admin_token: Option<api::AdminToken>,
    /// The control plane, for the runs, jobs and dispatch endpoints.
    pub farm: Arc<crate::farm::Farm>,
    /// Set when the server stops: endless responses (followed logs) end, as graceful
    /// shutdown waits for every response to finish.
    pub stopping: Stopping,
    /// The names a request's `Host` may carry.
    pub allowed_hosts: Arc<guards::AllowedHosts>,
    /// `[server] webhook_memory`, in bytes: webhook bodies being received reserve their
    /// length here first.
    pub webhook_memory: Arc<Semaphore>,
}

/// Whether the server is stopping; clones share it.
#[derive(Debug, Clone)]
pub struct Stopping(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Stopping {
    fn default() -> Self {
        Stopping(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Stopping {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Returns once [`Stopping::stop`] has been called.
    pub async fn stopped(&self) {
        let mut stopping = self.0.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

pub fn router(state: AppState) -> Router {
    let metrics = Router::new()
        .route("/metrics", get(metrics::scrape))
        .route_layer(from_fn_with_state(state.clone(), api::require_admin_token));
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(metrics)
        .nest(api::PREFIX, api::router(state.clone()))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "this endpoint does not take that method")
        })
        // The last layer is the first a request meets.
        .layer(from_fn_with_state(state.clone(), guards::body_deadline))
        .layer(from_fn(guards::refuse_nul))
        .layer(from_fn_with_state(state.clone(), guards::check_host))
        .layer(from_fn(guards::json_errors))
        .with_state(state)
}

/// `{"error": "..."}` with a status: how every error of the HTTP API looks.
pub(crate) fn error_response(
    status: axum::http::StatusCode,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::Json(serde_json::json!({ "error": message.into() }))).into_response()
}
