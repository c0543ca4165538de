//! `POST /webhook`: verify, store, answer. Nothing slow happens before the answer:
//! the delivery is committed to the store, the processor is woken, and the forge gets
//! its 2xx well inside its 10-second limit whatever the forge API is doing.
//!
//! A delivery is refused before its body is read when its headers already tell: no
//! signature (401), no `Content-Length` (411) or one over GitHub's 25 MB (413). The body
//! is then hashed as it arrives, into a buffer of its announced size reserved from
//! `[server] webhook_memory`, so bodies received at once never take more memory than
//! that; a delivery that cannot get its share before its body's deadline gets 503.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;

use super::api::ApiError;
use super::guards::{BodyDeadline, BodyTimedOut};
use super::{error_response, AppState, MAX_WEBHOOK_BYTES};
use crate::forge::webhook::{is_handled, SignatureCheck};
use crate::store::DeliveryInsert;

pub(super) async fn receive(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(secret) = &state.webhook_secret else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "no webhook secret is configured (forge.webhook_secret_file)",
        );
    };
    let check = match SignatureCheck::new(secret, header("x-hub-signature-256")) {
        Ok(check) => check,
        Err(err) => return refused(err).into_response(),
    };
    let Some(event) = header("x-github-event") else {
        return error_response(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header");
    };
    let Some(delivery) = header("x-github-delivery").filter(|d| !d.is_empty()) else {
        return error_response(StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery header");
    };
    let length = match content_length(headers) {
        Ok(length) => length,
        Err(refusal) => return refusal.into_response(),
    };
    let deadline = parts.extensions.get::<BodyDeadline>().map(|d| d.0);
    let text = match receive_body(&state, body, length, deadline, check).await {
        Ok(text) => text,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        return error_response(StatusCode::BAD_REQUEST, format!("the body is not JSON: {err}"));
    }
    if !is_handled(event) {
        tracing::info!(event, delivery, "ignored a webhook event the farm does not act on");
        return (StatusCode::ACCEPTED, Json(serde_json::json!({ "delivery": delivery, "ignored": event })))
            .into_response();
    }
    match state.store.insert_delivery(delivery, event, &text).await {
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

fn refused(err: crate::forge::webhook::SignatureError) -> ApiError {
    tracing::warn!(%err, "refused a webhook delivery");
    ApiError::new(StatusCode::UNAUTHORIZED, err.to_string())
}

/// The body's announced length, refused when missing or over the cap.
fn content_length(headers: &HeaderMap) -> Result<usize, ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Err(ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "a webhook delivery needs a Content-Length header",
        ));
    };
    let length =
        value.to_str().ok().and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "the Content-Length header is not a number")
        })?;
    if length > MAX_WEBHOOK_BYTES as u64 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body has {length} bytes; a webhook delivery has at most {MAX_WEBHOOK_BYTES}"),
        ));
    }
    Ok(length as usize)
}

/// The body, once its share of `webhook_memory` is reserved, it has arrived whole and
/// its signature matches; UTF-8 text.
async fn receive_body(
    state: &AppState,
    body: Body,
    length: usize,
    deadline: Option<tokio::time::Instant>,
    mut check: SignatureCheck,
) -> Result<String, ApiError> {
    // `length` is at most MAX_WEBHOOK_BYTES, which fits in u32.
    let share = state.webhook_memory.acquire_many(length as u32);
    let share = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, share).await.ok(),
        None => Some(share.await),
    };
    let Some(Ok(_share)) = share else {
        tracing::warn!(
            length,
            "refused a webhook delivery: server.webhook_memory is taken by other deliveries"
        );
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the farm is receiving too many webhook bodies at once (server.webhook_memory); deliver again later",
        ));
    };
    let mut buffer = Vec::with_capacity(length);
    let mut pieces = body.into_data_stream();
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(|err| match BodyTimedOut::find(&err) {
            Some(timed_out) => ApiError::new(StatusCode::REQUEST_TIMEOUT, timed_out.to_string()),
            None => ApiError::new(StatusCode::BAD_REQUEST, format!("the body could not be read: {err}")),
        })?;
        // hyper stops a body at its Content-Length; this is only a guard.
        if buffer.len() + piece.len() > length {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "the body is longer than its Content-Length"));
        }
        check.update(&piece);
        buffer.extend_from_slice(&piece);
    }
    check.verify().map_err(refused)?;
    String::from_utf8(buffer).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
}
