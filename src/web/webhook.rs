//! `POST /webhook`: verify, store, answer. Nothing slow happens before the answer:
//! the delivery is committed to the store, the processor is woken, and the forge gets
//! its 2xx well inside its 10-second limit whatever the forge API is doing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{error_response, AppState};
use crate::forge::webhook::{is_handled, verify_signature};
use crate::store::DeliveryInsert;

pub(super) async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(secret) = &state.webhook_secret else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "no webhook secret is configured (forge.webhook_secret_file)",
        );
    };
    if let Err(err) = verify_signature(secret, &body, header("x-hub-signature-256")) {
        tracing::warn!(%err, "refused a webhook delivery");
        return error_response(StatusCode::UNAUTHORIZED, err.to_string());
    }
    let Some(event) = header("x-github-event") else {
        return error_response(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header");
    };
    let Some(delivery) = header("x-github-delivery").filter(|d| !d.is_empty()) else {
        return error_response(StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery header");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return error_response(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return error_response(StatusCode::BAD_REQUEST, format!("the body is not JSON: {err}"));
    }
    if !is_handled(event) {
        tracing::info!(event, delivery, "ignored a webhook event the farm does not act on");
        return (StatusCode::ACCEPTED, Json(serde_json::json!({ "delivery": delivery, "ignored": event })))
            .into_response();
    }
    match state.store.insert_delivery(delivery, event, text).await {
        Ok(outcome) => {
            state.deliveries_waiting.notify_one();
            let duplicate = outcome == DeliveryInsert::Duplicate;
            tracing::info!(event, delivery, duplicate, "stored a webhook delivery");
            Json(serde_json::json!({ "delivery": delivery, "duplicate": duplicate })).into_response()
        }
        Err(err) => {
            // No 2xx: the forge keeps the delivery and it can be redelivered.
            tracing::error!(%err, delivery, "could not store a webhook delivery");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "the delivery could not be stored")
        }
    }
}
