//! The HTTP face of the farm (axum): the forge's webhook, health, and later the REST
//! API, metrics and the dashboard. Handlers are thin: they check input, call the store
//! or the farm, and answer.

pub mod api;
mod metrics;
mod webhook;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

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
    Router::new()
        .route("/webhook", post(webhook::receive).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES)))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::scrape))
        .nest(api::PREFIX, api::router(state.clone()))
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
