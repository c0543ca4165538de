//! A job's hold on its host: the SSH session (reconnected after a planned reboot), what
//! the host is (home, boot id, whether it has bash), and running one process there in
//! its own process group so that a timeout or a cancellation kills all of it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shell::shell_quote;
use super::ssh::{ExecEvent, ExitStatus, HostKeyPolicy, Session, SshError, SshOptions};

/// Where a job runs and how to reach it.
#[derive(Clone)]
pub struct HostTarget {
    /// The host's name in the farm (`runner.name`).
    pub name: String,
    pub address: String,
    pub port: u16,
    /// `runner.arch`: `X64` or `ARM64`.
    pub arch: String,
    pub ssh: SshOptions,
    /// The key pinned for the host, or trust on first use.
    pub host_key: HostKeyPolicy,
    /// How long a lost connection may take to come back before the host counts as
    /// unreachable.
    pub reconnect_grace: Duration,
}

/// Less free space than this in the runner's directory (KiB) is a full disk: an
/// infrastructure failure, not the job's.
const MIN_FREE_KIB: u64 = 64 * 1024;
/// After SIGINT, then SIGTERM, how long a step's processes get before the next signal.
const KILL_GRACE: Duration = Duration::from_millis(2500);

/// Why a job could not go on on its host: the host's fault, not the job's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InfraFailure {
    pub reason: String,
}

impl InfraFailure {
    pub fn new(reason: impl Into<String>) -> InfraFailure {
        InfraFailure { reason: reason.into() }
    }
}

impl From<SshError> for InfraFailure {
    fn from(err: SshError) -> InfraFailure {
        InfraFailure::new(err.to_string())
    }
}

/// An open session to the job's host and what it told about itself.
pub struct HostSession {
    pub target: HostTarget,
    session: Session,
    /// The key the host showed (pinned from now on).
    pub host_key: String,
    pub home: String,
    pub boot_id: String,
    pub has_bash: bool,
}

/// How a process on the host ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEnd {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

impl HostSession {
    /// Connects and asks the host what it is; a full disk is refused here.
    pub async fn open(target: &HostTarget) -> Result<HostSession, InfraFailure> {
        let session = Session::connect(&target.address, target.port, &target.ssh, target.host_key.clone())
            .await
            .map_err(|e| InfraFailure::new(format!("host {}: {e}", target.name)))?;
        let host_key = session.host_key().to_owned();
        HostSession::probed(target.clone(), session, host_key).await
    }

    /// The session to the host `target` names, once the host said what it is.
    async fn probed(
        target: HostTarget,
        session: Session,
        host_key: String,
    ) -> Result<HostSession, InfraFailure> {
        let mut host = HostSession {
            target,
            session,
            host_key,
            home: String::new(),
            boot_id: String::new(),
            has_bash: false,
        };
        host.probe().await?;
        Ok(host)
    }

    /// The host after a reinstall: it must show `host_key` (the key the install
    /// announced, pinned from now on) and, when `old_boot` is known, a newer boot;
    /// waits at most `within` for it to answer.
    pub async fn open_reinstalled(
        target: &HostTarget,
        host_key: &str,
        old_boot: Option<&str>,
        within: Duration,
    ) -> Result<HostSession, InfraFailure> {
        let mut target = target.clone();
        target.host_key = HostKeyPolicy::Pinned(host_key.to_owned());
        let (session, _) = Session::connect_after_reboot(
            &target.address,
            target.port,
            &target.ssh,
            target.host_key.clone(),
            old_boot.unwrap_or(""),
            within,
        )
        .await
        .map_err(|e| {
            InfraFailure::new(format!(
                "host {} did not answer with its new system within {} s: {e}",
                target.name,
                within.as_secs()
            ))
        })?;
        HostSession::probed(target, session, host_key.to_owned()).await
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Home, boot id, bash and free space, in one round trip.
    async fn probe(&mut self) -> Result<(), InfraFailure> {
        let out = self
            .session
            .output(
                "printf '%s\\n' \"$HOME\"; cat /proc/sys/kernel/random/boot_id; \
                 if command -v bash >/dev/null 2>&1; then echo bash; else echo nobash; fi; \
                 df -Pk \"$HOME\" | awk 'NR==2 {print $4}'",
            )
            .await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let (Some(home), Some(boot_id), Some(bash)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(InfraFailure::new(format!(
                "host {} did not say what it is (home, boot id): {}",
                self.target.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        };
        self.home = home.trim().to_owned();
        self.boot_id = boot_id.trim().to_owned();
        self.has_bash = bash.trim() == "bash";
        if let Some(free) = lines.next().and_then(|l| l.trim().parse::<u64>().ok()) {
            if free < MIN_FREE_KIB {
                return Err(InfraFailure::new(format!(
                    "the disk of host {} is full: {} KiB free in {}",
                    self.target.name, free, self.home
                )));
            }
        }
        Ok(())
    }

    /// Connects again (same pinned key) once the host answers, waiting at most
    /// `within`; with `new_boot_than`, only a host that booted since counts.
    pub async fn reconnect(
        &mut self,
        within: Duration,
        new_boot_than: Option<&str>,
    ) -> Result<(), InfraFailure> {
        let target = &self.target;
        let policy = HostKeyPolicy::Pinned(self.host_key.clone());
        // Any boot id differs from none: after a lost connection, the host as it comes back.
        let old_boot = new_boot_than.unwrap_or("");
        let (session, _) = Session::connect_after_reboot(
            &target.address,
            target.port,
            &target.ssh,
            policy,
            old_boot,
            within,
        )
        .await
        .map_err(|e| {
            InfraFailure::new(format!(
                "host {} did not come back within {} s: {e}",
                target.name,
                within.as_secs()
            ))
        })?;
        self.session = session;
        self.probe().await
    }

    /// Runs `command` with its output going to `output` (read no faster than it is
    /// taken from there), until it ends, `deadline` passes or `cancel` fires — then its
    /// whole process group is killed. The command must start with
    /// `echo $$ > PIDFILE; exec …` (see [`process_command`]).
    pub async fn run_process(
        &self,
        command: &str,
        pid_file: &str,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
        output: mpsc::Sender<ExecEvent>,
    ) -> Result<ProcessEnd, SshError> {
        let mut execution = self.session.exec(command).await?;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let deadline = deadline.unwrap_or(far);
        let mut stop: Option<ProcessEnd> = None;
        let mut signals = ["INT", "TERM", "KILL"].into_iter();
        let mut next_signal_at = far;
        // A signal goes over the same connection, which stalls while this command's
        // output is not taken: the output is read on while a signal is on its way.
        let mut signalling: Option<SignalOnItsWay<'_>> = None;
        loop {
            tokio::select! {
                event = execution.next() => {
                    let event = event?;
                    if let ExecEvent::Exit(status) = &event {
                        return Ok(stop.unwrap_or_else(|| ProcessEnd::Exited(status.clone())));
                    }
                    // The reader went away: nobody wants the rest.
                    let _ = output.send(event).await;
                }
                _ = tokio::time::sleep_until(deadline), if stop.is_none() => {
                    stop = Some(ProcessEnd::TimedOut);
                    next_signal_at = Instant::now();
                }
                _ = cancel.cancelled(), if stop.is_none() => {
                    stop = Some(ProcessEnd::Cancelled);
                    next_signal_at = Instant::now();
                }
                sent = async { signalling.as_mut().expect("a signal on its way").await }, if signalling.is_some() => {
                    signalling = None;
                    sent?;
                    next_signal_at = Instant::now() + KILL_GRACE;
                }
                _ = tokio::time::sleep_until(next_signal_at), if stop.is_some() && signalling.is_none() => {
                    match signals.next() {
                        Some(signal) => signalling = Some(Box::pin(self.signal_group(pid_file, signal))),
                        // Killed and still no exit: the channel is stuck; give up on it.
                        None => return Ok(stop.clone().unwrap_or(ProcessEnd::Cancelled)),
                    }
                }
            }
        }
    }

    /// Sends `signal` to the process group whose leader wrote `pid_file`.
    async fn signal_group(&self, pid_file: &str, signal: &str) -> Result<(), SshError> {
        let command = format!(
            "pid=$(cat {file} 2>/dev/null) && [ -n \"$pid\" ] && kill -s {signal} -- -\"$pid\" 2>/dev/null; true",
            file = shell_quote(pid_file)
        );
        self.session.output(&command).await.map(|_| ())
    }
}

/// [`HostSession::signal_group`] under way.
type SignalOnItsWay<'a> = Pin<Box<dyn Future<Output = Result<(), SshError>> + Send + 'a>>;

/// The command line that runs `program` (a shell command line) as the leader of its
/// own process group: sshd starts each command in a new session, and `exec` keeps
/// that process, so its pid — written to `pid_file` — is the group to kill.
pub fn process_command(pid_file: &str, program: &str) -> String {
    format!("echo $$ > {}; exec {program}", shell_quote(pid_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_leads_its_group() {
        assert_eq!(process_command("/t/p", "sh x"), "echo $$ > /t/p; exec sh x");
    }
}
