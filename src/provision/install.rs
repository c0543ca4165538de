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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::provision::{Announcements, PowerState, ProvisionFuture, Provisioner};

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1c3RpZ2VyLWtleS1mb3ItdGVzdHM";

    /// A back end whose installs finish at the `finish_at`th power-on into the installer
    /// (never with 0), announcing the key when `announces`.
    #[derive(Debug)]
    struct Scripted {
        announcements: Arc<Announcements>,
        finish_at: usize,
        announces: bool,
        state: Mutex<(Vec<String>, usize, bool, String)>,
    }

    impl Scripted {
        fn powered_into_installer(&self, call: String) {
            let mut state = self.state.lock().unwrap();
            state.0.push(call);
            state.1 += 1;
            if state.1 == self.finish_at {
                state.2 = true;
                if self.announces {
                    self.announcements.announce("kvm-1", &state.3, KEY).unwrap();
                }
            }
        }

        fn calls(&self) -> Vec<String> {
            self.state.lock().unwrap().0.clone()
        }
    }

    impl Provisioner for Scripted {
        fn describe(&self) -> String {
            "the script".into()
        }
        fn system_exists<'a>(&'a self, _: &'a str) -> ProvisionFuture<'a, bool> {
            Box::pin(async { Ok(true) })
        }
        fn start_install<'a>(&'a self, request: &'a InstallRequest) -> ProvisionFuture<'a, ()> {
            self.state.lock().unwrap().3 = request.meta["metalfarm_token"].clone();
            assert_eq!(request.meta["metalfarm_host"], "kvm-1");
            assert_eq!(request.meta["metalfarm_url"], "http://farm.lab:8080");
            self.powered_into_installer(format!("install {} on {}", request.profile, request.system));
            Box::pin(async { Ok(()) })
        }
        fn install_status<'a>(&'a self, _: &'a str) -> ProvisionFuture<'a, InstallStatus> {
            let done = self.state.lock().unwrap().2;
            Box::pin(
                async move { Ok(if done { InstallStatus::Finished } else { InstallStatus::Installing }) },
            )
        }
        fn power<'a>(&'a self, system: &'a str, action: PowerAction) -> ProvisionFuture<'a, ()> {
            self.powered_into_installer(format!("power {action:?} {system}"));
            Box::pin(async { Ok(()) })
        }
        fn power_status<'a>(&'a self, _: &'a str) -> ProvisionFuture<'a, PowerState> {
            Box::pin(async { Ok(PowerState::On) })
        }
    }

    async fn reinstall(
        finish_at: usize,
        announces: bool,
    ) -> (Result<Installed, InstallError>, Vec<String>, Vec<String>) {
        let announcements = Arc::new(Announcements::default());
        let scripted = Arc::new(Scripted {
            announcements: announcements.clone(),
            finish_at,
            announces,
            state: Mutex::new(Default::default()),
        });
        let provisioning = HostProvisioning {
            provisioner: scripted.clone(),
            announcements,
            system: "lab-kvm-1".into(),
            default_profile: None,
            install_timeout: Duration::from_secs(600),
            announce_url: "http://farm.lab:8080".into(),
            poll_interval: Duration::from_secs(5),
        };
        let lines = Mutex::new(Vec::new());
        let log = |line: String| lines.lock().unwrap().push(line);
        let result = install(&provisioning, "kvm-1", "f18-autotest-kvm", Duration::from_secs(60), &log).await;
        let logged = lines.into_inner().unwrap();
        (result, scripted.calls(), logged)
    }

    #[tokio::test(start_paused = true)]
    async fn an_install_that_finishes_and_announces_its_key_is_done() {
        let (result, calls, log) = reinstall(1, true).await;
        let installed = result.unwrap();
        assert_eq!((installed.host_key.as_str(), installed.attempts), (KEY, 1));
        assert_eq!(calls, ["install f18-autotest-kvm on lab-kvm-1"]);
        assert!(
            log[0].starts_with(
                "Reinstalling kvm-1 with profile f18-autotest-kvm through the script (system lab-kvm-1)"
            ),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with("Attempt 1: kvm-1 announced its new host key ssh-ed25519 …")),
            "{log:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_install_gets_one_more_power_cycle() {
        let (result, calls, log) = reinstall(2, true).await;
        assert_eq!(result.unwrap().attempts, 2);
        assert_eq!(calls, ["install f18-autotest-kvm on lab-kvm-1", "power Cycle lab-kvm-1"]);
        assert!(
            log.iter().any(|l| l == "Attempt 1 did not finish within 1m: power-cycling kvm-1 once more"),
            "{log:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_install_that_never_finishes_fails_after_the_second_cycle() {
        let started = Instant::now();
        let (result, calls, _) = reinstall(0, true).await;
        assert_eq!(
            result,
            Err(InstallError::TimedOut { host: "kvm-1".into(), timeout: Duration::from_secs(60) })
        );
        assert_eq!(calls.len(), 2, "{calls:?}");
        // Twice the timeout, each from its own power cycle.
        assert!(
            started.elapsed() >= Duration::from_secs(120) && started.elapsed() < Duration::from_secs(130)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_install_without_its_key_is_not_power_cycled_again() {
        let (result, calls, _) = reinstall(1, false).await;
        assert!(matches!(result, Err(InstallError::NoAnnouncement { .. })), "{result:?}");
        assert_eq!(calls.len(), 1, "{calls:?}");
    }
}
