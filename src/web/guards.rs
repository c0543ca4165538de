//! What every request passes on its way to a handler, and every answer on its way back:
//! the `Host` check (against DNS rebinding), NULs refused, the body's deadline, and
//! error answers made JSON whoever produced them.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

use super::server::AcceptedOn;
use super::{error_response, AppState};
use crate::config::Config;

/// The host names a request's `Host` may carry: those of `[server] public_url` and
/// `[cobbler] announce_url`, the listen address, `localhost`, and the address the
/// connection reached. A page elsewhere that rebinds its own name to this farm sends
/// its own name, and is refused.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn from_config(config: &Config) -> AllowedHosts {
        let mut names = vec!["localhost".to_owned()];
        let urls = std::iter::once(&config.server.public_url)
            .chain(config.cobbler.as_ref().and_then(|c| c.announce_url.as_ref()));
        for url in urls {
            if let Some(host) = url.parse::<axum::http::Uri>().ok().as_ref().and_then(|u| u.host()) {
                names.push(normalise(host));
            }
        }
        let listen = config.server.listen.ip();
        if !listen.is_unspecified() {
            names.push(listen.to_string());
        }
        AllowedHosts { names }
    }

    /// Whether `host` (a `Host` header's host, without the port) names this farm for a
    /// connection accepted on `accepted_on`.
    fn allows(&self, host: &str, accepted_on: Option<IpAddr>) -> bool {
        let host = normalise(host);
        if self.names.contains(&host) {
            return true;
        }
        // An address literal cannot be rebound: accept the one the client connected to.
        matches!((host.parse::<IpAddr>(), accepted_on), (Ok(ip), Some(on)) if ip == on || ip.to_canonical() == on.to_canonical())
    }
}

/// Lowercase, without IPv6 brackets or the root's trailing dot.
fn normalise(host: &str) -> String {
    let host = host.trim_end_matches('.');
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Refuses (421) a request whose `Host` is not this farm's; `POST /webhook` is exempt
/// (the forge may reach it through any proxy, and its signature is its proof).
pub(super) async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST && request.uri().path() == "/webhook" {
        return next.run(request).await;
    }
    let given = request.uri().authority().map(|a| a.host().to_owned()).or_else(|| {
        let value = request.headers().get(header::HOST)?.to_str().ok()?;
        Some(value.parse::<axum::http::uri::Authority>().ok()?.host().to_owned())
    });
    let Some(host) = given else {
        return error_response(StatusCode::BAD_REQUEST, "the request has no valid Host header");
    };
    let accepted_on = request.extensions().get::<AcceptedOn>().map(|a| a.0.ip());
    if !state.allowed_hosts.allows(&host, accepted_on) {
        tracing::warn!(host, "refused a request for another host");
        return error_response(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "`{host}` is not this farm: use the name of server.public_url or the address the farm listens on"
            ),
        );
    }
    next.run(request).await
}

/// A NUL (`%00`) in the path or query is bad input (400), before any handler sees it.
pub(super) async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        return error_response(StatusCode::BAD_REQUEST, "the URL contains a NUL character (%00)");
    }
    next.run(request).await
}

/// When a request's body must have arrived: `[server] body_timeout` after its headers.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// A body that did not arrive by its [`BodyDeadline`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (server.body_timeout)")]
pub struct BodyTimedOut(pub Duration);

impl BodyTimedOut {
    /// The timeout among `err` and its sources, however deep the body's layers wrapped it.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimedOut> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(timed_out) = err.downcast_ref::<BodyTimedOut>() {
                return Some(timed_out);
            }
            next = err.source();
        }
        None
    }
}

/// Gives the request its [`BodyDeadline`]; reading the body past it fails with
/// [`BodyTimedOut`], so a slow sender cannot hold a handler.
pub(super) async fn body_deadline(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let timeout = state.farm.config.server.body_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    request.extensions_mut().insert(BodyDeadline(deadline));
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let request = request.map(|body| {
        let pieces = futures_util::stream::unfold(Some(body.into_data_stream()), move |pieces| async move {
            let mut pieces = pieces?;
            match tokio::time::timeout_at(deadline, pieces.next()).await {
                Ok(Some(Ok(piece))) => Some((Ok(piece), Some(pieces))),
                Ok(Some(Err(err))) => Some((Err(axum::BoxError::from(err)), None)),
                Ok(None) => None,
                Err(_) => Some((Err(BodyTimedOut(timeout).into()), None)),
            }
        });
        Body::from_stream(pieces)
    });
    next.run(request).await
}

/// The most of a non-JSON error answer's text kept as its message.
const ERROR_TEXT_LIMIT: usize = 4096;

/// Every error answer as `{"error": …}`: those axum and its extractors make (a path
/// that does not parse, a body over its limit, an unknown path) are plain text.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_LIMIT).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        text => text.to_owned(),
    };
    let mut answer = error_response(status, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_this_farms_names_and_addresses() {
        let config = Config::from_toml(
            "[server]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"https://Farm.Example.com:8443/x\"\n\
             [cobbler]\nurl = \"http://c\"\nannounce_url = \"http://farm.lab:8080\"\n",
            "f.toml",
            std::path::Path::new("."),
        )
        .unwrap();
        let allowed = AllowedHosts::from_config(&config);
        let on: Option<IpAddr> = Some("10.0.0.5".parse().unwrap());
        for host in ["farm.example.com", "FARM.example.com.", "farm.lab", "localhost", "10.0.0.5"] {
            assert!(allowed.allows(host, on), "{host}");
        }
        for host in ["evil.example", "farm.example.com.evil.example", "10.0.0.6", "0.0.0.0", ""] {
            assert!(!allowed.allows(host, on), "{host}");
        }
        let config =
            Config::from_toml("[server]\nlisten = \"[::1]:8080\"\n", "f.toml", std::path::Path::new("."))
                .unwrap();
        let allowed = AllowedHosts::from_config(&config);
        assert!(allowed.allows("[::1]", None));
        assert!(allowed.allows("127.0.0.1", None), "the default public_url");
        assert!(!allowed.allows("evil.example", None));
    }
}
