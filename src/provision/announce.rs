//! Where a fresh install tells the farm its new SSH host key.
//!
//! Before a reinstall the farm [`Announcements::expect`]s the host with a new one-time
//! token, which goes to the install through the back end's metadata; the kickstart's
//! `%post` posts the token and the key it generated (`POST /api/v1/hosts/{name}/installed`),
//! and [`Announcements::announce`] hands the key to whoever waits for that install. A
//! key is only ever accepted with the token of the install being waited for, so a host
//! cannot announce a key outside a reinstall.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The installs waited for, by host name.
#[derive(Debug, Default)]
pub struct Announcements {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

#[derive(Debug)]
struct Pending {
    token: String,
    key: watch::Sender<Option<String>>,
}

/// One install being waited for. Dropping it forgets the install.
#[derive(Debug)]
pub struct Expected {
    host: String,
    token: String,
    key: watch::Receiver<Option<String>>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("no install of host `{0}` is being waited for")]
    NotExpected(String),
    #[error("the token does not belong to the install of host `{0}` being waited for")]
    WrongToken(String),
    #[error("`{0}` is not an OpenSSH public key (`ssh-ed25519 AAAA…`)")]
    BadKey(String),
}

impl Announcements {
    /// Waits for a new install of `host`, with a new token (an earlier install of the
    /// same host is forgotten).
    pub fn expect(&self, host: &str) -> Expected {
        let token = new_token();
        let (sender, receiver) = watch::channel(None);
        self.pending
            .lock()
            .expect("announcements")
            .insert(host.to_owned(), Pending { token: token.clone(), key: sender });
        Expected { host: host.to_owned(), token, key: receiver, pending: self.pending.clone() }
    }

    /// The install of `host` with `token` announces `host_key` (OpenSSH text; a comment
    /// after the key is dropped).
    pub fn announce(&self, host: &str, token: &str, host_key: &str) -> Result<(), AnnounceError> {
        let key = public_key_text(host_key).ok_or_else(|| AnnounceError::BadKey(host_key.to_owned()))?;
        let pending = self.pending.lock().expect("announcements");
        let Some(entry) = pending.get(host) else {
            return Err(AnnounceError::NotExpected(host.to_owned()));
        };
        // Constant time: the token is the only credential of the announcement.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(entry.token.as_bytes(), token.as_bytes())) {
            return Err(AnnounceError::WrongToken(host.to_owned()));
        }
        entry.key.send_replace(Some(key));
        Ok(())
    }
}

impl Expected {
    /// The token the install must announce itself with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The key announced so far, if any.
    pub fn key(&self) -> Option<String> {
        self.key.borrow().clone()
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        let mut pending = self.pending.lock().expect("announcements");
        if pending.get(&self.host).is_some_and(|p| p.token == self.token) {
            pending.remove(&self.host);
        }
    }
}

/// `type base64` of an OpenSSH public key line, if it looks like one.
fn public_key_text(line: &str) -> Option<String> {
    let mut fields = line.split_whitespace();
    let (kind, data) = (fields.next()?, fields.next()?);
    let plausible = (kind.starts_with("ssh-") || kind.starts_with("ecdsa-"))
        && data.len() >= 16
        && data.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    plausible.then(|| format!("{kind} {data}"))
}

/// 32 random bytes as hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1c3RpZ2VyLWtleS1mb3ItdGVzdHM root@host-1";

    #[test]
    fn only_the_awaited_install_can_announce_a_key() {
        let announcements = Announcements::default();
        assert_eq!(
            announcements.announce("host-1", "x", KEY),
            Err(AnnounceError::NotExpected("host-1".into()))
        );
        let expected = announcements.expect("host-1");
        assert_eq!(expected.token().len(), 64);
        assert_eq!(
            announcements.announce("host-1", "not-the-token", KEY),
            Err(AnnounceError::WrongToken("host-1".into()))
        );
        assert!(matches!(
            announcements.announce("host-1", expected.token(), "hello"),
            Err(AnnounceError::BadKey(_))
        ));
        assert_eq!(expected.key(), None);
        announcements.announce("host-1", expected.token(), KEY).unwrap();
        assert_eq!(
            expected.key().as_deref(),
            Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1c3RpZ2VyLWtleS1mb3ItdGVzdHM")
        );
    }

    #[test]
    fn a_new_install_replaces_the_old_one_and_a_finished_wait_is_forgotten() {
        let announcements = Announcements::default();
        let first = announcements.expect("host-1");
        let second = announcements.expect("host-1");
        assert_ne!(first.token(), second.token());
        assert!(announcements.announce("host-1", first.token(), KEY).is_err());
        drop(first); // must not forget the second
        announcements.announce("host-1", second.token(), KEY).unwrap();
        let token = second.token().to_owned();
        drop(second);
        assert_eq!(
            announcements.announce("host-1", &token, KEY),
            Err(AnnounceError::NotExpected("host-1".into()))
        );
    }
}
