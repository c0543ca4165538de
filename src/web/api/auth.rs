//! The admin token: every mutating call (anything but GET and HEAD) needs
//! `Authorization: Bearer <token>`, the content of `server.admin_token_file`; with
//! `[server] read_access = "token"`, reads (the API and `/metrics`) need it too.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::ReadAccess;
use crate::web::AppState;

/// The admin token, kept as its digest: comparing digests in constant time tells an
/// attacker neither the token's bytes nor its length.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

impl AdminToken {
    /// The token a token file holds (surrounding whitespace ignored); `None` when empty.
    pub fn new(text: &str) -> Option<AdminToken> {
        let text = text.trim();
        (!text.is_empty()).then(|| AdminToken { digest: Sha256::digest(text.as_bytes()).into() })
    }

    pub fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.digest.ct_eq(&given).into()
    }
}

/// The layer in front of every API route and `/metrics`.
pub(crate) async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let open = read && state.farm.config.server.read_access() == ReadAccess::Open;
    if open || is_install_announcement(&request) {
        return next.run(request).await;
    }
    let Some(token) = &state.admin_token else {
        let what = if read { "reads are" } else { "changes through the API are" };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{what} disabled: no admin token is configured \
                 (write one to the file `server.admin_token_file` names and restart the server)"
            ),
        )
        .into_response();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let refusal = match given {
        Some(given) if token.matches(given.trim()) => return next.run(request).await,
        Some(_) => "the bearer token is not the admin token",
        None => {
            "this call needs `Authorization: Bearer <admin token>` (the content of server.admin_token_file)"
        }
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, refusal).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `POST …/hosts/{name}/installed`: a fresh install has no admin token; its handler
/// checks the install's own one-time token.
fn is_install_announcement(request: &Request) -> bool {
    let segments: Vec<&str> = request.uri().path().trim_end_matches('/').rsplit('/').take(3).collect();
    request.method() == Method::POST
        && matches!(segments.as_slice(), [last, name, "hosts"] if *last == super::installs::INSTALLED_SEGMENT && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let token = AdminToken::new("s3cret\n").unwrap();
        assert!(token.matches("s3cret"));
        for other in ["s3cre", "s3cret ", "S3CRET", ""] {
            assert!(!token.matches(other), "{other:?}");
        }
        assert!(AdminToken::new(" \n").is_none());
    }
}
