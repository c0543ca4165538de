//! Requests to the forge's REST API through octocrab, and what their failures mean for
//! the caller: try again soon, wait as the forge asks, or give up on this request.

use std::time::Duration;

use http::{Method, StatusCode};
use octocrab::Octocrab;
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// The farm's forge settings are wrong (key, URL): nothing to retry.
    #[error("forge configuration: {0}")]
    Config(String),
    /// A network error or a 5xx: worth retrying with backoff.
    #[error("forge unavailable: {0}")]
    Transient(String),
    /// Rate limited (primary or secondary, or `Retry-After`): retry after this long.
    #[error("rate limited by the forge for {0:?}")]
    RateLimited(Duration),
    /// No such thing on the forge (404).
    #[error("not found on the forge: {0}")]
    NotFound(String),
    /// The forge refused the request itself (4xx): retrying the same cannot help.
    #[error("refused by the forge: {0}")]
    Permanent(String),
}

/// GitHub asks for at least a minute after a secondary rate limit without a header.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Sends `body` to `route` (relative to `api_url`) and returns the JSON answer.
pub async fn send(
    client: &Octocrab,
    method: Method,
    route: &str,
    body: Option<&Json>,
) -> Result<Json, ForgeError> {
    let response = match method {
        Method::POST => client._post(route, body).await,
        Method::PATCH => client._patch(route, body).await,
        Method::GET => client._get(route).await,
        other => return Err(ForgeError::Config(format!("unsupported method {other}"))),
    }
    .map_err(|e| ForgeError::Transient(format!("{method} {route}: {e}")))?;
    let status = response.status();
    let retry = retry_wait(status, response.headers());
    let text = client
        .body_to_string(response)
        .await
        .map_err(|e| ForgeError::Transient(format!("{method} {route}: reading the answer: {e}")))?;
    if status.is_success() {
        return if text.trim().is_empty() {
            Ok(Json::Null)
        } else {
            serde_json::from_str(&text)
                .map_err(|e| ForgeError::Permanent(format!("{method} {route}: answer is not JSON: {e}")))
        };
    }
    if let Some(wait) = retry {
        return Err(ForgeError::RateLimited(wait));
    }
    let what = format!("{method} {route}: {status}: {}", text.chars().take(500).collect::<String>());
    if status == StatusCode::NOT_FOUND {
        Err(ForgeError::NotFound(what))
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Err(ForgeError::Transient(what))
    } else if (status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS)
        && text.to_ascii_lowercase().contains("rate limit")
    {
        Err(ForgeError::RateLimited(SECONDARY_LIMIT_WAIT))
    } else {
        Err(ForgeError::Permanent(what))
    }
}

/// How long a rate-limit answer asks us to wait: `Retry-After` (seconds), or a spent
/// primary limit's `x-ratelimit-reset` (epoch seconds).
fn retry_wait(status: StatusCode, headers: &http::HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(seconds) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset")?.parse::<u64>().ok()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_answers_say_how_long_to_wait() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_wait(StatusCode::FORBIDDEN, &headers), Some(Duration::from_secs(7)));
        assert_eq!(retry_wait(StatusCode::BAD_GATEWAY, &headers), None);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1".parse().unwrap());
        assert_eq!(retry_wait(StatusCode::FORBIDDEN, &headers), Some(Duration::from_secs(1)));
        headers.insert("x-ratelimit-remaining", "10".parse().unwrap());
        assert_eq!(retry_wait(StatusCode::FORBIDDEN, &headers), None);
    }
}
