//! How the API fails: `{"error": "..."}` with a fitting status, from every handler and
//! from request bodies that do not parse.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::farm::hosts::InventoryError;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// A failure of the farm itself: logged in full, answered briefly.
    pub fn internal(err: &dyn std::error::Error) -> ApiError {
        tracing::error!(%err, "an API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {err}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        super::super::error_response(self.status, self.message)
    }
}

impl From<InventoryError> for ApiError {
    fn from(err: InventoryError) -> ApiError {
        let status = match &err {
            InventoryError::NotFound(_) => StatusCode::NOT_FOUND,
            InventoryError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            InventoryError::Exists(_)
            | InventoryError::Refused { .. }
            | InventoryError::ConfigHost { .. }
            | InventoryError::Busy { .. }
            | InventoryError::NotLeasedTo { .. } => StatusCode::CONFLICT,
            InventoryError::Contended(_) => StatusCode::SERVICE_UNAVAILABLE,
            InventoryError::Store(store) => return ApiError::internal(store),
        };
        ApiError::new(status, err.to_string())
    }
}

/// A JSON request body whose failures are [`ApiError`]s: 400 for bad JSON, 415 for
/// another content type, 422 for JSON of the wrong shape.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

fn rejection_error(rejection: JsonRejection) -> ApiError {
    ApiError::new(rejection.status(), rejection.body_text())
}

/// An optional JSON body: none when the request has no `Content-Type`, otherwise as
/// [`JsonBody`].
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        match <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state).await {
            Ok(value) => Ok(value.map(|axum::Json(value)| JsonBody(value))),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

/// The store failing is the farm failing: 500.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        ApiError::internal(&err)
    }
}
