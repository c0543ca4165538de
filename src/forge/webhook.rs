//! Webhook deliveries: is this one really from the forge, what kind is it, and what
//! does it say, as octocrab's typed event.
//!
//! Verification is all this module does at receive time; reading a delivery as its
//! event and turning it into runs happen later, from the store (see
//! `farm::deliveries`), so the forge gets its answer fast and a crash after the answer
//! loses nothing.

use hmac::{Hmac, KeyInit, Mac};
use octocrab::models::webhook_events::WebhookEvent;
use serde_json::error::Category;
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body keyed
/// with the webhook secret, in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let mut check = SignatureCheck::new(secret, header)?;
    check.update(body);
    check.verify()
}

/// [`verify_signature`] for a body that arrives in pieces: the header is checked before
/// any of the body is read, the pieces are hashed as they come.
pub struct SignatureCheck {
    mac: Hmac<Sha256>,
    expected: Vec<u8>,
}

impl SignatureCheck {
    /// Fails at once when the header is missing or malformed.
    pub fn new(secret: &[u8], header: Option<&str>) -> Result<SignatureCheck, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex = header.strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
        let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        Ok(SignatureCheck { mac, expected })
    }

    pub fn update(&mut self, piece: &[u8]) {
        self.mac.update(piece);
    }

    /// Whether the whole body, as fed to [`SignatureCheck::update`], matches the header.
    pub fn verify(self) -> Result<(), SignatureError> {
        self.mac.verify_slice(&self.expected).map_err(|_| SignatureError::Mismatch)
    }
}

/// The header value a forge would send for `body`: for tests and load generators.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// The events the farm acts on; every other `X-GitHub-Event` is acknowledged and dropped.
pub const HANDLED_EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "workflow_dispatch",
    "check_run",
    "check_suite",
    "installation",
    "installation_repositories",
    "ping",
];

pub fn is_handled(event: &str) -> bool {
    HANDLED_EVENTS.contains(&event)
}

/// Why a stored delivery cannot be read as the event it says it is.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not what octocrab's model of the event expects (a missing or
    /// mistyped field, an action it does not know).
    #[error("not a `{event}` event as octocrab reads it: {source}")]
    Unexpected {
        event: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a stored delivery, its `X-GitHub-Event` name and its raw body, as octocrab's
/// typed event. The raw body stays the event's truth for workflows (`github.event`
/// holds it as sent); the typed event is what the farm's handlers read.
pub fn parse_event(event: &str, body: &str) -> Result<WebhookEvent, PayloadError> {
    WebhookEvent::try_from_header_and_body(event, body).map_err(|source| match source.classify() {
        Category::Data => PayloadError::Unexpected { event: event.to_owned(), source },
        Category::Syntax | Category::Eof | Category::Io => PayloadError::NotJson(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from GitHub's "Validating webhook deliveries" documentation.
    #[test]
    fn githubs_documented_example_verifies() {
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(b"It's a Secret to Everybody", b"Hello, World!"), header);
        assert_eq!(verify_signature(b"It's a Secret to Everybody", b"Hello, World!", Some(header)), Ok(()));
        // The same body in pieces, as it arrives from the network.
        let mut check = SignatureCheck::new(b"It's a Secret to Everybody", Some(header)).unwrap();
        for piece in [&b"Hello"[..], b", ", b"World!"] {
            check.update(piece);
        }
        assert_eq!(check.verify(), Ok(()));
        let mut check = SignatureCheck::new(b"It's a Secret to Everybody", Some(header)).unwrap();
        check.update(b"Hello, World");
        assert_eq!(check.verify(), Err(SignatureError::Mismatch));
    }

    #[test]
    fn wrong_missing_and_malformed_signatures_are_refused() {
        let good = sign(b"s3cret", b"{}");
        assert_eq!(verify_signature(b"other", b"{}", Some(&good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"s3cret", b"{ }", Some(&good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"s3cret", b"{}", None), Err(SignatureError::Missing));
        assert_eq!(verify_signature(b"s3cret", b"{}", Some("sha1=abc")), Err(SignatureError::Malformed));
        assert_eq!(
            verify_signature(b"s3cret", b"{}", Some(&good[..good.len() - 2])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(b"s3cret", b"{}", Some(&format!("{}zz", &good[..good.len() - 2]))),
            Err(SignatureError::Malformed)
        );
    }
}
