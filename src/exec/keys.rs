//! The farm's SSH key (`[ssh] private_key_file`) and host keys as OpenSSH writes them.
//!
//! The farm logs in to every host with one ed25519 key. It is created on first use
//! (mode 0600) so a new farm needs no `ssh-keygen` step; its public key is what an
//! admin puts in the hosts' `authorized_keys`.

use std::io::Write;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg};
pub use russh::keys::{PrivateKey, PublicKey};

/// The comment a generated farm key carries (shown in the hosts' `authorized_keys`).
const FARM_KEY_COMMENT: &str = "metalfarm";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not an OpenSSH private key: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: the farm key must be ed25519, this one is {algorithm}", path.display())]
    NotEd25519 { path: PathBuf, algorithm: String },
    #[error("{}: the farm key is protected by a passphrase; metalfarm needs it without one", path.display())]
    Encrypted { path: PathBuf },
    #[error("not an OpenSSH public key (`ssh-ed25519 AAAA…`): {text:?}")]
    PublicKey { text: String },
}

/// Reads the farm's private key at `path`, or generates one and saves it there
/// (OpenSSH format, mode 0600, parent folders created) when the file does not exist.
pub fn load_or_generate_farm_key(path: &Path) -> Result<PrivateKey, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_farm_key(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_farm_key(path)?;
            tracing::info!(path = %path.display(), fingerprint = %fingerprint(key.public_key()), "generated the farm's SSH key");
            Ok(key)
        }
        Err(source) => Err(KeyError::Io { path: path.to_path_buf(), source }),
    }
}

/// Reads an existing ed25519 private key (OpenSSH format, no passphrase): a user's
/// `--identity` for `metalfarm run`. Unlike the farm key it is never generated.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
    parse_farm_key(path, &text)
}

fn parse_farm_key(path: &Path, text: &str) -> Result<PrivateKey, KeyError> {
    let key = PrivateKey::from_openssh(text)
        .map_err(|e| KeyError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    if key.is_encrypted() {
        return Err(KeyError::Encrypted { path: path.to_path_buf() });
    }
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(KeyError::NotEd25519 {
            path: path.to_path_buf(),
            algorithm: key.algorithm().to_string(),
        });
    }
    Ok(key)
}

fn generate_farm_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let keypair = KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed));
    let key = PrivateKey::new(keypair, FARM_KEY_COMMENT).expect("an ed25519 keypair is a valid private key");
    let text = key.to_openssh(LineEnding::LF).expect("an unencrypted ed25519 key encodes");
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // create_new: never overwrite a key another process wrote meanwhile.
    let mut file = open_private(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// A public key as one line of `authorized_keys`: `ssh-ed25519 AAAA… comment`.
pub fn openssh_public_key(key: &PublicKey) -> String {
    key.to_openssh().expect("a public key encodes")
}

/// A public key as OpenSSH text without comment (`ssh-ed25519 AAAA…`): how host
/// keys are pinned and compared.
pub fn host_key_text(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh().expect("a public key encodes")
}

/// Parses OpenSSH public key text (`ssh-ed25519 AAAA… [comment]`).
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    PublicKey::from_openssh(text.trim()).map_err(|_| KeyError::PublicKey { text: text.to_string() })
}

/// The SHA256 fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The keys an OpenSSH `known_hosts` text lists for `address` on `port`, as OpenSSH
/// text (`ssh-ed25519 AAAA…`), ed25519 first: entries name the host plainly (`host`
/// for port 22, `[host]:port` for another port), comma-separated. Hashed entries
/// (`|1|…`), wildcard and negated patterns, `@cert-authority` and `@revoked` lines are
/// skipped: the host must be listed by name.
pub fn known_host_keys(known_hosts: &str, address: &str, port: u16) -> Vec<String> {
    let wanted = if port == 22 { address.to_owned() } else { format!("[{address}]:{port}") };
    let mut keys: Vec<String> = known_hosts
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('@'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (hosts, kind, data) = (fields.next()?, fields.next()?, fields.next()?);
            hosts
                .split(',')
                .any(|pattern| pattern.eq_ignore_ascii_case(&wanted))
                .then(|| format!("{kind} {data}"))
        })
        .collect();
    // A stable sort: the file's order among keys of one type.
    keys.sort_by_key(|key| !key.starts_with("ssh-ed25519 "));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/farm_ed25519");
        let generated = load_or_generate_farm_key(&path).unwrap();
        let loaded = load_or_generate_farm_key(&path).unwrap();
        assert_eq!(generated.public_key(), loaded.public_key());
        assert_eq!(loaded.algorithm(), Algorithm::Ed25519);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let public = openssh_public_key(generated.public_key());
        assert!(public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"), "{public}");
        assert!(public.ends_with(" metalfarm"), "{public}");
    }

    #[test]
    fn two_farms_get_different_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate_farm_key(&dir.path().join("a")).unwrap();
        let b = load_or_generate_farm_key(&dir.path().join("b")).unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn a_key_that_is_not_an_openssh_private_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farm_key");
        std::fs::write(&path, "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
            .unwrap();
        let err = load_or_generate_farm_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Parse { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        // The bad file is left alone, not replaced by a new key.
        assert!(std::fs::read_to_string(&path).unwrap().contains("RSA"));
    }

    // A fixed key and what `ssh-keygen -l -E sha256 -f` prints for it.
    const KNOWN_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSR04boqN99vyFHrRF7Zp25IR/gyR0ncjyWYg9zCTVj user@example";

    #[test]
    fn fingerprints_and_texts_as_openssh_prints_them() {
        let key = parse_public_key(KNOWN_KEY).unwrap();
        assert_eq!(fingerprint(&key), "SHA256:0eBB/AMp8oxY/gSHLxhy2bNUnmGd9GjWtdWm/bc6YO8");
        assert_eq!(host_key_text(&key), KNOWN_KEY.rsplit_once(' ').unwrap().0);
        assert_eq!(openssh_public_key(&key), KNOWN_KEY);
        assert!(matches!(parse_public_key("ssh-ed25519 not-base64"), Err(KeyError::PublicKey { .. })));
    }

    #[test]
    fn known_hosts_entries_by_name_and_port_ed25519_first() {
        let text = "\
# a comment
|1|hashed= ssh-ed25519 AAAAhashed
@cert-authority * ssh-ed25519 AAAAca
10.0.0.1,lab-1 ecdsa-sha2-nistp256 AAAAecdsa
lab-1 ssh-ed25519 AAAAplain comment
[10.0.0.1]:2222 ssh-ed25519 AAAAport
*.lab ssh-ed25519 AAAAwild
";
        assert_eq!(known_host_keys(text, "10.0.0.1", 22), ["ecdsa-sha2-nistp256 AAAAecdsa"]);
        assert_eq!(
            known_host_keys(text, "LAB-1", 22),
            ["ssh-ed25519 AAAAplain", "ecdsa-sha2-nistp256 AAAAecdsa"]
        );
        assert_eq!(known_host_keys(text, "10.0.0.1", 2222), ["ssh-ed25519 AAAAport"]);
        assert!(known_host_keys(text, "lab-1", 2222).is_empty());
        assert!(known_host_keys(text, "x.lab", 22).is_empty());
    }
}
