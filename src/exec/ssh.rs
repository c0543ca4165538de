//! SSH sessions to hosts: commands on exec channels, files over SFTP (russh,
//! russh-sftp).
//!
//! One [`Session`] per host connection, shared by reference: every method takes
//! `&self`, each command gets its own channel. Keepalives notice a host that went
//! silent within about `keepalive_interval × keepalive_max`; a command whose channel
//! then ends without an exit status is [`SshError::Lost`]. Every error names the
//! host's address, and [`SshError::is_infrastructure`] tells a host problem (retry
//! elsewhere) from a job's own failure.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::keys::{self, PrivateKey, PublicKey};
use crate::config::SshConfig;

/// AES-GCM first: ring's implementation uses the CPU's AES instructions and streams
/// several times faster than the portable ChaCha20-Poly1305 russh prefers.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_CTR,
];

/// How the farm logs in: user, key, and how long it waits.
#[derive(Clone)]
pub struct SshOptions {
    pub user: String,
    pub key: Arc<PrivateKey>,
    /// TCP connect, handshake and login together.
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
}

impl SshOptions {
    /// The `[ssh]` section's settings with the loaded farm key.
    pub fn from_config(config: &SshConfig, key: Arc<PrivateKey>) -> SshOptions {
        SshOptions {
            user: config.user.clone(),
            key,
            connect_timeout: config.connect_timeout,
            keepalive_interval: config.keepalive_interval,
            keepalive_max: config.keepalive_max,
        }
    }
}

/// Which host key to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only this key (OpenSSH text, `ssh-ed25519 AAAA…`); any other is refused with
    /// [`SshError::HostKeyChanged`].
    Pinned(String),
    /// Any key: for a host being added or just reinstalled. The caller stores
    /// [`Session::host_key`] and pins it from then on.
    TrustOnFirstUse,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{address}: cannot connect: {message}")]
    Connect { address: String, message: String },
    #[error("{address}: no answer within {}", humantime::format_duration(*after))]
    Timeout { address: String, after: Duration },
    #[error("{address}: the host key changed: expected {expected}, the host offered {got}")]
    HostKeyChanged { address: String, expected: String, got: String },
    #[error("{address}: login as {user} with the farm key refused")]
    Auth { address: String, user: String },
    #[error("{address}: connection lost: {message}")]
    Lost { address: String, message: String },
    #[error("{address}: {path}: no such file or folder")]
    NotFound { address: String, path: String },
    #[error("{address}: {path}: no space left on the host")]
    NoSpace { address: String, path: String },
    #[error("{address}: SFTP {path}: {message}")]
    Sftp { address: String, path: String, message: String },
    #[error("{address}: {message}")]
    Protocol { address: String, message: String },
}

impl SshError {
    /// A problem of the host or the link, not of the job: the job may be retried on
    /// another host. Missing files and other SFTP refusals are the job's.
    pub fn is_infrastructure(&self) -> bool {
        match self {
            SshError::Connect { .. }
            | SshError::Timeout { .. }
            | SshError::HostKeyChanged { .. }
            | SshError::Auth { .. }
            | SshError::Lost { .. }
            | SshError::NoSpace { .. }
            | SshError::Protocol { .. } => true,
            SshError::NotFound { .. } | SshError::Sftp { .. } => false,
        }
    }

    /// The host's `address:port`, as every message starts with it.
    pub fn address(&self) -> &str {
        match self {
            SshError::Connect { address, .. }
            | SshError::Timeout { address, .. }
            | SshError::HostKeyChanged { address, .. }
            | SshError::Auth { address, .. }
            | SshError::Lost { address, .. }
            | SshError::NotFound { address, .. }
            | SshError::NoSpace { address, .. }
            | SshError::Sftp { address, .. }
            | SshError::Protocol { address, .. } => address,
        }
    }
}

/// Why [`Session::download`] failed: on the host's side, or on this one.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Reading the host's file failed; [`SshError::is_infrastructure`] says whose fault it is.
    #[error(transparent)]
    Remote(#[from] SshError),
    /// The local copy could not be written (this machine's disk is full): neither the
    /// host's fault nor the file's.
    #[error("writing the local copy {}: {source}", path.display())]
    Local { path: PathBuf, source: std::io::Error },
    /// The file holds more than the bytes allowed.
    #[error("{remote} holds more than {at_most} bytes")]
    TooLarge { remote: String, at_most: u64 },
}

/// How a command ended: its exit code, or the signal that killed it (`KILL`, `TERM`,
/// … as OpenSSH names them, without `SIG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<u32>,
    pub signal: Option<String>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What a running command produced next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The last event: the command ended and its output is complete.
    Exit(ExitStatus),
}

/// A command's collected result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A file or folder on the host, below the path given to [`Session::list_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Relative to the listed path, `/`-separated.
    pub relative_path: String,
    pub size: u64,
    pub mode: u32,
}

/// What [`Session::stat`] tells about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteStat {
    pub size: u64,
    /// Permission bits (`0o755`).
    pub mode: u32,
    pub is_dir: bool,
}

/// One SSH connection to a host, logged in.
pub struct Session {
    /// `address:port`, for messages and spans.
    address: String,
    host_key: String,
    handle: client::Handle<Client>,
    /// Opened on first use, then shared by every file operation.
    sftp: OnceCell<SftpSession>,
    /// How long an SFTP request may wait for its answer: past the keepalives'
    /// verdict, so a silent host is reported as lost, not as a slow request.
    sftp_timeout: Duration,
}

impl Session {
    /// Connects, checks the host key under `policy` and logs in with the farm key,
    /// all within `options.connect_timeout`.
    pub async fn connect(
        address: &str,
        port: u16,
        options: &SshOptions,
        policy: HostKeyPolicy,
    ) -> Result<Session, SshError> {
        let target =
            if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") };
        let span = tracing::debug_span!("ssh_connect", address = %target);
        let pinned = match &policy {
            HostKeyPolicy::Pinned(text) => {
                Some(keys::parse_public_key(text).map_err(|e| SshError::Protocol {
                    address: target.clone(),
                    message: format!("the pinned host key is unusable: {e}"),
                })?)
            }
            HostKeyPolicy::TrustOnFirstUse => None,
        };
        let offered = Arc::new(Mutex::new(None));
        let client = Client { pinned: pinned.clone(), offered: offered.clone() };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(options.keepalive_interval),
            keepalive_max: options.keepalive_max,
            // Throughput: a larger window than the default 2 MiB keeps a fast stream
            // from waiting on window adjustments.
            window_size: 16 * 1024 * 1024,
            nodelay: true,
            maximum_packet_size: 256 * 1024,
            // Messages (up to a packet each) queued per channel while the runner is
            // busy; russh's 100 cost up to 25 MiB per streaming job.
            channel_buffer_size: 8,
            preferred: russh::Preferred { cipher: Cow::Borrowed(CIPHERS), ..russh::Preferred::DEFAULT },
            ..Default::default()
        });
        let login = async {
            let stream = tokio::net::TcpStream::connect((address, port))
                .await
                .map_err(|e| SshError::Connect { address: target.clone(), message: e.to_string() })?;
            let mut handle = client::connect_stream(config, stream, client).await.map_err(|e| match e {
                russh::Error::UnknownKey => match (offered.lock().unwrap().as_ref(), &pinned) {
                    (Some(got), Some(expected)) => SshError::HostKeyChanged {
                        address: target.clone(),
                        expected: keys::fingerprint(expected),
                        got: keys::fingerprint(got),
                    },
                    _ => SshError::Connect {
                        address: target.clone(),
                        message: "the host offered a host certificate; the farm pins plain host keys".into(),
                    },
                },
                e => SshError::Connect { address: target.clone(), message: e.to_string() },
            })?;
            let key = PrivateKeyWithHashAlg::new(options.key.clone(), None);
            let auth = handle
                .authenticate_publickey(options.user.clone(), key)
                .await
                .map_err(|e| SshError::Connect { address: target.clone(), message: e.to_string() })?;
            if !auth.success() {
                return Err(SshError::Auth { address: target.clone(), user: options.user.clone() });
            }
            Ok(handle)
        };
        let handle = match tokio::time::timeout(options.connect_timeout, login).instrument(span).await {
            Ok(result) => result?,
            Err(_) => return Err(SshError::Timeout { address: target, after: options.connect_timeout }),
        };
        let host_key =
            offered.lock().unwrap().as_ref().map(keys::host_key_text).expect("the handshake saw a host key");
        tracing::debug!(address = %target, "ssh session open");
        let sftp_timeout = options.keepalive_interval * (options.keepalive_max as u32 + 2);
        Ok(Session { address: target, host_key, handle, sftp: OnceCell::new(), sftp_timeout })
    }

    /// Connects to a host that is rebooting: retries until it answers with a boot id
    /// other than `old_boot_id`, for at most `timeout`. Returns the session and the
    /// new boot id. A changed host key or a refused login ends the wait at once (a
    /// reboot changes neither); otherwise the last error, or [`SshError::Timeout`]
    /// when the host kept answering with the old boot id.
    pub async fn connect_after_reboot(
        address: &str,
        port: u16,
        options: &SshOptions,
        policy: HostKeyPolicy,
        old_boot_id: &str,
        timeout: Duration,
    ) -> Result<(Session, String), SshError> {
        const RETRY_EVERY: Duration = Duration::from_millis(500);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_error = None;
        loop {
            let attempt = async {
                let session = Session::connect(address, port, options, policy.clone()).await?;
                let boot_id = session.boot_id().await?;
                Ok::<_, SshError>((session, boot_id))
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok((session, boot_id))) if boot_id != old_boot_id => return Ok((session, boot_id)),
                Ok(Ok((session, _))) => {
                    // Not down yet: the reboot is still on its way.
                    session.close().await;
                    last_error = None;
                }
                Ok(Err(e @ (SshError::HostKeyChanged { .. } | SshError::Auth { .. }))) => return Err(e),
                Ok(Err(e)) => last_error = Some(e),
                Err(_) => break,
            }
            if tokio::time::Instant::now() + RETRY_EVERY >= deadline {
                break;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        Err(last_error.unwrap_or(SshError::Timeout { address: host_port(address, port), after: timeout }))
    }

    /// The host's boot id (`/proc/sys/kernel/random/boot_id`): new at every boot.
    pub async fn boot_id(&self) -> Result<String, SshError> {
        let out = self.output("cat /proc/sys/kernel/random/boot_id").await?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || id.is_empty() {
            return Err(SshError::Protocol {
                address: self.address.clone(),
                message: format!("no boot id: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(id)
    }

    /// The host's key as it offered it, OpenSSH text (`ssh-ed25519 AAAA…`).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// `address:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The connection ended (closed, or the host stopped answering keepalives).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Starts `command` (run by the login shell) on its own channel.
    pub async fn exec(&self, command: &str) -> Result<Execution, SshError> {
        let channel = self.handle.channel_open_session().await.map_err(|e| self.channel_error(e))?;
        channel.exec(true, command).await.map_err(|e| self.channel_error(e))?;
        Ok(Execution {
            channel: Some(channel),
            address: self.address.clone(),
            status: None,
            draining: None,
            ended: false,
            closed: false,
        })
    }

    /// Runs `command` and collects its output.
    pub async fn output(&self, command: &str) -> Result<Output, SshError> {
        let mut execution = self.exec(command).await?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        loop {
            match execution.next().await? {
                ExecEvent::Stdout(data) => stdout.extend_from_slice(&data),
                ExecEvent::Stderr(data) => stderr.extend_from_slice(&data),
                ExecEvent::Exit(status) => return Ok(Output { status, stdout, stderr }),
            }
        }
    }

    /// Writes `contents` to `path` on the host (created or truncated) with `mode`.
    pub async fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), SshError> {
        let sftp = self.sftp().await?;
        let attributes = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let mut file = sftp
            .open_with_flags_and_attributes(path, flags, attributes)
            .await
            .map_err(|e| self.sftp_error(path, e))?;
        let written = async {
            file.write_all(contents).await?;
            file.shutdown().await
        }
        .await;
        if let Err(e) = written {
            return Err(self.write_error(sftp, path, contents.len() as u64, e.to_string()).await);
        }
        // The mode given at creation passes through the host's umask and leaves an
        // existing file's mode alone: set it explicitly.
        let attributes = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
        sftp.set_metadata(path, attributes).await.map_err(|e| self.sftp_error(path, e))
    }

    /// The whole file at `path`; [`SshError::NotFound`] when there is none.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SshError> {
        let sftp = self.sftp().await?;
        sftp.read(path).await.map_err(|e| self.sftp_error(path, e))
    }

    /// Copies the file at `remote` to `local` (created or truncated) in chunks,
    /// never holding it whole, refusing past `at_most` bytes; returns the bytes copied.
    pub async fn download(&self, remote: &str, local: &Path, at_most: u64) -> Result<u64, DownloadError> {
        let sftp = self.sftp().await?;
        let mut file = sftp.open(remote).await.map_err(|e| self.sftp_error(remote, e))?;
        let local_error = |source| DownloadError::Local { path: local.to_owned(), source };
        let mut out = tokio::fs::File::create(local).await.map_err(local_error)?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut copied = 0u64;
        loop {
            let n = file.read(&mut buffer).await.map_err(|e| self.io_error(remote, e))?;
            if n == 0 {
                break;
            }
            if copied + n as u64 > at_most {
                return Err(DownloadError::TooLarge { remote: remote.to_owned(), at_most });
            }
            out.write_all(&buffer[..n]).await.map_err(local_error)?;
            copied += n as u64;
        }
        out.flush().await.map_err(local_error)?;
        Ok(copied)
    }

    /// Size, mode and kind of `path` (symlinks followed).
    pub async fn stat(&self, path: &str) -> Result<RemoteStat, SshError> {
        let sftp = self.sftp().await?;
        let metadata = sftp.metadata(path).await.map_err(|e| self.sftp_error(path, e))?;
        Ok(RemoteStat {
            size: metadata.size.unwrap_or(0),
            mode: metadata.permissions.unwrap_or(0) & 0o7777,
            is_dir: metadata.is_dir(),
        })
    }

    /// Every regular file below the folder `path`, recursively (symlinks to files
    /// followed, to folders not), sorted by relative path. A file `path` lists
    /// itself under its own name.
    pub async fn list_files(&self, path: &str) -> Result<Vec<RemoteFile>, SshError> {
        let sftp = self.sftp().await?;
        let top = self.stat(path).await?;
        if !top.is_dir {
            let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path).to_string();
            return Ok(vec![RemoteFile { relative_path: name, size: top.size, mode: top.mode }]);
        }
        let mut files = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let full = if folder.is_empty() {
                path.to_string()
            } else {
                format!("{}/{folder}", path.trim_end_matches('/'))
            };
            let entries = sftp.read_dir(full.as_str()).await.map_err(|e| self.sftp_error(&full, e))?;
            for entry in entries {
                let name = entry.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let relative = if folder.is_empty() { name } else { format!("{folder}/{name}") };
                let mut metadata = entry.metadata();
                if metadata.is_symlink() {
                    let target = format!("{}/{relative}", path.trim_end_matches('/'));
                    match sftp.metadata(target.as_str()).await {
                        Ok(followed) if followed.is_regular() => metadata = followed,
                        _ => continue, // dangling, or a folder: not followed
                    }
                }
                if metadata.is_dir() {
                    folders.push(relative);
                } else if metadata.is_regular() {
                    files.push(RemoteFile {
                        relative_path: relative,
                        size: metadata.size.unwrap_or(0),
                        mode: metadata.permissions.unwrap_or(0) & 0o7777,
                    });
                }
            }
        }
        files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
        Ok(files)
    }

    /// Ends the connection politely.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    async fn sftp(&self) -> Result<&SftpSession, SshError> {
        self.sftp
            .get_or_try_init(|| async {
                let channel = self.handle.channel_open_session().await.map_err(|e| self.channel_error(e))?;
                channel.request_subsystem(true, "sftp").await.map_err(|e| self.channel_error(e))?;
                let config = russh_sftp::client::Config {
                    request_timeout_secs: self.sftp_timeout.as_secs().max(1),
                    ..Default::default()
                };
                SftpSession::new_with_config(channel.into_stream(), config).await.map_err(|e| {
                    SshError::Protocol {
                        address: self.address.clone(),
                        message: format!("SFTP did not start: {e}"),
                    }
                })
            })
            .await
    }

    /// A channel request failed: the connection is gone, or the host refused.
    fn channel_error(&self, e: russh::Error) -> SshError {
        if self.handle.is_closed() {
            SshError::Lost { address: self.address.clone(), message: e.to_string() }
        } else {
            SshError::Protocol { address: self.address.clone(), message: e.to_string() }
        }
    }

    fn sftp_error(&self, path: &str, e: russh_sftp::client::error::Error) -> SshError {
        use russh_sftp::client::error::Error;
        let address = self.address.clone();
        let path = path.to_string();
        match e {
            Error::Status(status) if status.status_code == StatusCode::NoSuchFile => {
                SshError::NotFound { address, path }
            }
            Error::Status(status) => SshError::Sftp { address, path, message: status.error_message },
            e if self.handle.is_closed() => SshError::Lost { address, message: format!("{path}: {e}") },
            Error::Timeout => SshError::Timeout { address, after: self.sftp_timeout },
            e => SshError::Sftp { address, path, message: e.to_string() },
        }
    }

    fn io_error(&self, path: &str, e: std::io::Error) -> SshError {
        if self.handle.is_closed() {
            SshError::Lost { address: self.address.clone(), message: format!("{path}: {e}") }
        } else {
            SshError::Sftp { address: self.address.clone(), path: path.to_string(), message: e.to_string() }
        }
    }

    /// A write failed. OpenSSH's SFTP server reports a full disk as a bare
    /// "Failure", so the free space of the file's file system decides.
    async fn write_error(&self, sftp: &SftpSession, path: &str, wanted: u64, message: String) -> SshError {
        if self.handle.is_closed() {
            return SshError::Lost { address: self.address.clone(), message: format!("{path}: {message}") };
        }
        if let Ok(Some(fs)) = sftp.fs_info(path).await {
            // `blocks == 0`: a pseudo file system (/proc), never "full".
            let available = fs.blocks_avail.saturating_mul(fs.fragment_size.max(1));
            if fs.blocks > 0 && available < wanted.max(1) {
                return SshError::NoSpace { address: self.address.clone(), path: path.to_string() };
            }
        }
        SshError::Sftp { address: self.address.clone(), path: path.to_string(), message }
    }
}

/// After the exit status, how long a pause in the output ends the command, and how
/// long at most the runner waits for more (time spent waiting, not reading: a backlog
/// held back by a slow reader is read whole).
const DRAIN_QUIET: Duration = Duration::from_millis(250);
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// A command running on its own channel. Dropping it before the exit closes the
/// channel, but the command goes on running (without a terminal the host does not
/// signal it) and OpenSSH counts it against `MaxSessions` (10 per connection by
/// default) until it ends: kill what you abandon.
pub struct Execution {
    /// `None` only while dropping.
    channel: Option<russh::Channel<client::Msg>>,
    address: String,
    status: Option<ExitStatus>,
    /// Since the exit status: how long the runner waited for more output.
    draining: Option<Duration>,
    /// `next` returned the exit (or an error): there is nothing more.
    ended: bool,
    /// The host closed the channel.
    closed: bool,
}

impl Execution {
    /// The next chunk of output, or the exit once the output is in. After `Exit`
    /// there is nothing more: calling again is an error. A connection that ends
    /// before an exit status is [`SshError::Lost`].
    ///
    /// The command ends when its own process exits, as GitHub's runner ends a step
    /// when its shell exits: OpenSSH sends the exit status then, but closes the
    /// channel only once every holder of the output pipe closed it — a background
    /// child may hold it for hours. So after the exit status the output already on its
    /// way is read until the channel closes, or output pauses for [`DRAIN_QUIET`], or
    /// [`DRAIN_MAX`] of waiting passed; then the channel is closed from this side.
    pub async fn next(&mut self) -> Result<ExecEvent, SshError> {
        if self.ended {
            return Err(SshError::Protocol {
                address: self.address.clone(),
                message: "the command already ended".into(),
            });
        }
        let channel = self.channel.as_mut().expect("the channel is there until dropped");
        loop {
            let message = match self.draining {
                None => channel.wait().await,
                Some(waited) => {
                    let started = tokio::time::Instant::now();
                    let budget = DRAIN_MAX.saturating_sub(waited).min(DRAIN_QUIET);
                    let message = tokio::time::timeout(budget, channel.wait()).await;
                    self.draining = Some(waited + started.elapsed());
                    match message {
                        Ok(message) => message,
                        Err(_) => {
                            self.ended = true;
                            let status = self.status.take().expect("draining after the exit status");
                            return Ok(ExecEvent::Exit(status));
                        }
                    }
                }
            };
            match message {
                Some(ChannelMsg::Data { data }) => return Ok(ExecEvent::Stdout(data.to_vec())),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    return Ok(ExecEvent::Stderr(data.to_vec()))
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.status = Some(ExitStatus { code: Some(exit_status), signal: None });
                    self.draining = Some(Duration::ZERO);
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.status = Some(ExitStatus { code: None, signal: Some(signal_text(&signal_name)) });
                    self.draining = Some(Duration::ZERO);
                }
                Some(ChannelMsg::Failure) => {
                    self.ended = true;
                    return Err(SshError::Protocol {
                        address: self.address.clone(),
                        message: "the host refused to run the command".into(),
                    });
                }
                Some(ChannelMsg::Close) | None => {
                    self.ended = true;
                    self.closed = true;
                    return match self.status.take() {
                        Some(status) => Ok(ExecEvent::Exit(status)),
                        None => Err(SshError::Lost {
                            address: self.address.clone(),
                            message: "the command's channel ended without an exit status".into(),
                        }),
                    };
                }
                Some(_) => {} // Eof, window adjustments, replies
            }
        }
    }
}

/// `address:port`, with brackets around an IPv6 address.
fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        let Some(channel) = self.channel.take() else { return };
        if self.closed {
            return;
        }
        // Closing is a message to the session's task; without a runtime (at exit)
        // the connection is going away anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close().await;
            });
        }
    }
}

fn signal_text(signal: &Sig) -> String {
    match signal {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
    .to_string()
}

/// russh's per-connection handler: checks and remembers the host key.
struct Client {
    pinned: Option<PublicKey>,
    /// The key the host offered, for [`Session::host_key`] and a refusal's message.
    offered: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false); // host certificates are not used by the farm
        };
        *self.offered.lock().unwrap() = Some(key.clone());
        Ok(match &self.pinned {
            Some(pinned) => pinned.key_data() == key.key_data(),
            None => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_shared_across_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<Session>();
        fn sent<T: Send>() {}
        sent::<Execution>();
    }

    #[test]
    fn errors_name_the_host_and_say_whose_fault_they_are() {
        let address = "127.0.0.9:22".to_string();
        let changed = SshError::HostKeyChanged {
            address: address.clone(),
            expected: "SHA256:aaa".into(),
            got: "SHA256:bbb".into(),
        };
        assert_eq!(
            changed.to_string(),
            "127.0.0.9:22: the host key changed: expected SHA256:aaa, the host offered SHA256:bbb"
        );
        assert!(changed.is_infrastructure());
        let lost = SshError::Lost { address: address.clone(), message: "x".into() };
        assert!(lost.is_infrastructure());
        let missing = SshError::NotFound { address: address.clone(), path: "/tmp/a".into() };
        assert!(!missing.is_infrastructure());
        assert_eq!(missing.address(), "127.0.0.9:22");
        let timeout = SshError::Timeout { address, after: Duration::from_secs(10) };
        assert_eq!(timeout.to_string(), "127.0.0.9:22: no answer within 10s");
    }
}
