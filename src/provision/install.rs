//! One reinstall from start to finish, with the lab's rules for installs that hang:
//! start it, wait until the back end saw it finish and the new system announced its
//! SSH host key; past the install timeout, power-cycle the machine once more and wait
//! as long again; then give up. Every attempt and its timing goes to `log`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{HostProvisioning, InstallRequest, InstallStatus, PowerAction, ProvisionError};

/// A finished reinstall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The SSH host key the new system announced (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    /// Installs started: 1, or 2 after a power cycle more.
    pub attempts: u32,
    pub took: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Provisioner(#[from] ProvisionError),
    #[error("the install of {host} did not finish within {} (twice: after a second power cycle too)", humantime::format_duration(*.timeout))]
    TimedOut { host: String, timeout: Duration },
    #[error("the install of {host} finished (network boot is off) but it announced no SSH host key within {}: does the profile's kickstart end with the metalfarm_announce snippet?", humantime::format_duration(*.timeout))]
    NoAnnouncement { host: String, timeout: Duration },
}

/// Reinstalls `host` with `profile`, waiting at most `timeout` per attempt.
pub async fn install(
    provisioning: &HostProvisioning,
    host: &str,
    profile: &str,
    timeout: Duration,
    log: &(dyn Fn(String) + Send + Sync),
) -> Result<Installed, InstallError> {
    let started = Instant::now();
    let expected = provisioning.announcements.expect(host);
    let request = InstallRequest {
        system: provisioning.system.clone(),
        profile: profile.to_owned(),
        meta: BTreeMap::from([
            ("metalfarm_url".to_owned(), provisioning.announce_url.clone()),
            ("metalfarm_host".to_owned(), host.to_owned()),
            ("metalfarm_token".to_owned(), expected.token().to_owned()),
        ]),
    };
    let provisioner = &provisioning.provisioner;
    log(format!(
        "Reinstalling {host} with profile {profile} through {} (system {}), waiting up to {} per attempt",
        provisioner.describe(),
        provisioning.system,
        humantime::format_duration(timeout)
    ));
    provisioner.start_install(&request).await?;
    log(format!("Attempt 1: network boot on, power-cycled ({:.1} s)", started.elapsed().as_secs_f64()));
    for attempt in 1..=2 {
        let attempt_started = Instant::now();
        if attempt == 2 {
            log(format!(
                "Attempt 1 did not finish within {}: power-cycling {host} once more",
                humantime::format_duration(timeout)
            ));
            provisioner.power(&provisioning.system, PowerAction::Cycle).await?;
            log(format!("Attempt 2: power-cycled ({:.1} s)", started.elapsed().as_secs_f64()));
        }
        let deadline = attempt_started + timeout;
        let mut finished_seen = false;
        loop {
            let status = provisioner.install_status(&provisioning.system).await?;
            if status == InstallStatus::Finished {
                if !finished_seen {
                    log(format!(
                        "Attempt {attempt}: the install finished, network boot is off ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    ));
                }
                finished_seen = true;
                if let Some(host_key) = expected.key() {
                    log(format!(
                        "Attempt {attempt}: {host} announced its new host key {} ({:.1} s)",
                        short_key(&host_key),
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(Installed { host_key, attempts: attempt, took: started.elapsed() });
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(provisioning.poll_interval.min(deadline - Instant::now())).await;
        }
        if finished_seen {
            // Another power cycle would only boot the installed system again.
            return Err(InstallError::NoAnnouncement { host: host.to_owned(), timeout });
        }
    }
    Err(InstallError::TimedOut { host: host.to_owned(), timeout })
}

/// The key's type and the end of its data: enough to tell two keys apart in a log.
fn short_key(key: &str) -> String {
    let mut fields = key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let data = fields.next().unwrap_or_default();
    format!("{kind} …{}", &data[data.len().saturating_sub(12)..])
}
