//! The GitHub App: its JWT (RS256, jsonwebtoken) and installation access tokens,
//! fetched through octocrab and cached per installation until shortly before they
//! expire. `api_url` points the same code at GitHub.com, GitHub Enterprise Server or
//! the test forge.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::api::{send, ForgeError};

/// A token is renewed this long before the forge says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

#[derive(Debug, Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

struct CachedClient {
    client: Octocrab,
    /// The installation access token itself, for what is not an API call (a git clone).
    token: String,
    renew_at: SystemTime,
}

/// The App's identity and a cache of per-installation API clients.
pub struct GithubApp {
    api_url: String,
    app_id: u64,
    key: EncodingKey,
    installations: Mutex<HashMap<i64, CachedClient>>,
    /// How long a request may wait for the forge (see [`GithubApp::with_request_timeout`]).
    request_timeout: Duration,
}

/// `[forge] request_timeout`'s default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting never waits longer than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl GithubApp {
    pub fn new(api_url: &str, app_id: u64, private_key_pem: &[u8]) -> Result<GithubApp, ForgeError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem)
            .map_err(|e| ForgeError::Config(format!("the App's private key is not an RSA PEM key: {e}")))?;
        Ok(GithubApp {
            api_url: api_url.trim_end_matches('/').to_owned(),
            app_id,
            key,
            installations: Mutex::new(HashMap::new()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Requests wait at most `timeout` to connect (10 s at most) and then for each read
    /// of the answer: a forge (or a proxy) that accepts a request and never answers is a
    /// transient failure to retry, not a reporter stuck until a restart.
    pub fn with_request_timeout(mut self, timeout: Duration) -> GithubApp {
        self.request_timeout = timeout;
        self
    }

    /// The App's id: the check runs it created carry it as `app.id`.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The App's JWT: issued 60 s in the past (clock drift), valid 9 minutes (GitHub's
    /// limit is 10).
    pub fn jwt(&self, now: SystemTime) -> Result<String, ForgeError> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims { iat: now - 60, exp: now + 9 * 60, iss: self.app_id.to_string() };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ForgeError::Config(format!("cannot sign the App's JWT: {e}")))
    }

    /// An API client acting as the installation, from the cache while its token is fresh.
    pub async fn installation(&self, installation_id: i64) -> Result<Octocrab, ForgeError> {
        self.installation_with_token(installation_id).await.map(|(client, _)| client)
    }

    /// The installation's access token (e.g. for cloning a private repository), fresh.
    pub async fn installation_token(&self, installation_id: i64) -> Result<String, ForgeError> {
        self.installation_with_token(installation_id).await.map(|(_, token)| token)
    }

    async fn installation_with_token(&self, installation_id: i64) -> Result<(Octocrab, String), ForgeError> {
        let mut cache = self.installations.lock().await;
        if let Some(cached) = cache.get(&installation_id) {
            if SystemTime::now() < cached.renew_at {
                return Ok((cached.client.clone(), cached.token.clone()));
            }
        }
        let app_client = self.client_with_token(&self.jwt(SystemTime::now())?)?;
        // Routes stay relative: octocrab adds `api_url` and sends credentials only then.
        let route = format!("/app/installations/{installation_id}/access_tokens");
        let body = send(&app_client, http::Method::POST, &route, None).await?;
        let token: InstallationToken = serde_json::from_value(body)
            .map_err(|e| ForgeError::Permanent(format!("unexpected installation token answer: {e}")))?;
        let expires = SystemTime::from(token.expires_at);
        let client = self.client_with_token(&token.token)?;
        cache.insert(
            installation_id,
            CachedClient {
                client: client.clone(),
                token: token.token.clone(),
                renew_at: expires - RENEW_BEFORE,
            },
        );
        tracing::info!(installation_id, "fetched an installation access token");
        Ok((client, token.token))
    }

    /// The installation of the App on `repo` (`owner/name`), for events that do not name
    /// one (a manual dispatch).
    pub async fn installation_for_repo(&self, repo: &str) -> Result<i64, ForgeError> {
        let app_client = self.client_with_token(&self.jwt(SystemTime::now())?)?;
        let answer =
            send(&app_client, http::Method::GET, &format!("/repos/{repo}/installation"), None).await?;
        answer
            .get("id")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| ForgeError::Permanent(format!("no installation id for {repo}")))
    }

    fn client_with_token(&self, token: &str) -> Result<Octocrab, ForgeError> {
        Octocrab::builder()
            .base_uri(self.api_url.as_str())
            .map_err(|e| ForgeError::Config(format!("bad forge.api_url `{}`: {e}", self.api_url)))?
            .personal_token(token.to_owned())
            .set_connect_timeout(Some(self.request_timeout.min(MAX_CONNECT_TIMEOUT)))
            .set_read_timeout(Some(self.request_timeout))
            .build()
            .map_err(|e| ForgeError::Config(format!("cannot build the forge client: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway RSA key, made with `openssl genrsa` (no key is kept in the repository).
    fn throwaway_key() -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .output()
            .expect("openssl is installed (scripts/test.sh installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    #[test]
    fn the_jwt_is_rs256_issued_in_the_past_and_short_lived() {
        let app = GithubApp::new("https://api.github.com", 12345, &throwaway_key()).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app.jwt(now).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let payload = jwt.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "12345");
        assert_eq!(claims["iat"], 1_700_000_000u64 - 60);
        let lifetime = claims["exp"].as_u64().unwrap() - 1_700_000_000;
        assert!(lifetime <= 600, "exp must be at most 10 minutes ahead: {lifetime}");
    }
}
