//! The repair loop: every host in `repairing` is reinstalled (the profile an admin asked
//! for with `metalfarm provision`, else `[cobbler] default_profile`) and health-checked
//! over SSH (the announced key, a new boot, a home with free space); it returns to
//! `ready` when it passes. A failed repair counts as an infrastructure failure: the
//! host is tried again after a pause that doubles each time, and is `broken` after
//! `[server] broken_after` failures in a row. Without a provisioner, repairing hosts
//! wait for an admin, as before.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::hosts::{Host, HostState};
use super::Farm;
use crate::exec::host::HostSession;
use crate::provision::install::install;

/// How often the loop looks for hosts to repair besides hearing of changes.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// The longest pause between two repairs of a host.
const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

/// What the repair loop remembers between its passes.
#[derive(Debug, Default)]
pub struct Repairs {
    inner: Mutex<RepairsInner>,
}

#[derive(Debug, Default)]
struct RepairsInner {
    /// Profiles an admin asked for, by host.
    requested: HashMap<String, String>,
    /// Hosts being repaired now.
    running: HashSet<String>,
    /// When a host that failed its repair may be tried again.
    not_before: HashMap<String, Instant>,
}

impl Repairs {
    /// An admin wants `host` reinstalled with `profile` (default profile when none).
    pub fn request(&self, host: &str, profile: Option<String>) {
        let mut inner = self.inner.lock().expect("repairs");
        match profile {
            Some(profile) => inner.requested.insert(host.to_owned(), profile),
            None => inner.requested.remove(host),
        };
        // An admin's request does not wait out the backoff.
        inner.not_before.remove(host);
    }

    /// Claims `host` for a repair now, unless one runs or it must wait.
    fn claim(&self, host: &str) -> bool {
        let mut inner = self.inner.lock().expect("repairs");
        if inner.running.contains(host) || inner.not_before.get(host).is_some_and(|t| Instant::now() < *t) {
            return false;
        }
        inner.running.insert(host.to_owned())
    }

    fn profile(&self, host: &str) -> Option<String> {
        self.inner.lock().expect("repairs").requested.get(host).cloned()
    }

    fn finished(&self, host: &str, retry_after: Option<Duration>) {
        let mut inner = self.inner.lock().expect("repairs");
        inner.running.remove(host);
        match retry_after {
            Some(pause) => {
                inner.not_before.insert(host.to_owned(), Instant::now() + pause);
            }
            None => {
                inner.not_before.remove(host);
                inner.requested.remove(host);
            }
        }
    }
}

/// Repairs hosts until the process ends.
pub async fn run_forever(farm: Arc<Farm>) {
    if farm.provisioner.is_none() {
        return;
    }
    let mut changes = farm.inventory.subscribe();
    let mut scan = tokio::time::interval(SCAN_EVERY);
    loop {
        tokio::select! {
            _ = scan.tick() => {}
            // Any change may be a host that just went to `repairing`; a lag re-reads all.
            _ = changes.recv() => {}
        }
        let hosts = match farm.inventory.list().await {
            Ok(hosts) => hosts,
            Err(err) => {
                tracing::warn!(%err, "the repair loop cannot read the inventory");
                continue;
            }
        };
        for host in hosts.into_iter().filter(|h| h.state == HostState::Repairing) {
            if farm.repairs.claim(&host.name) {
                let span = tracing::info_span!("repair", host = %host.name);
                tokio::spawn(repair(farm.clone(), host).instrument(span));
            }
        }
    }
}

async fn repair(farm: Arc<Farm>, host: Host) {
    let name = host.name.clone();
    let result = reinstall_and_check(&farm, &host).await;
    let retry_after = match result {
        Ok(note) => {
            tracing::info!("{note}");
            let done = async {
                farm.inventory.note(&name, &format!("repair: {note}")).await?;
                farm.inventory.repaired(&name).await
            };
            if let Err(err) = done.await {
                tracing::warn!(%err, "the repaired host cannot return to ready");
            }
            None
        }
        Err(reason) => {
            tracing::warn!(%reason, "the repair failed");
            match farm.inventory.repair_failed(&name, &reason).await {
                Ok(host) if host.state == HostState::Repairing => {
                    Some(pause_after(&farm, host.consecutive_failures))
                }
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(%err, "cannot record the failed repair");
                    Some(SCAN_EVERY)
                }
            }
        }
    };
    farm.repairs.finished(&name, retry_after);
}

/// Reinstalls the host and checks it answers with its new system; how it went, or why not.
async fn reinstall_and_check(farm: &Farm, host: &Host) -> Result<String, String> {
    let provisioning = farm.host_provisioning(host).ok_or("the farm has no provisioner")?;
    let profile = farm.repairs.profile(&host.name).or_else(|| provisioning.default_profile.clone()).ok_or(
        "no profile to reinstall with: set `[cobbler] default_profile` or `metalfarm provision --profile`",
    )?;
    let target = super::runner::host_target(farm, host, None).await.map_err(|e| e.to_string())?;
    let _ = farm.inventory.note(&host.name, &format!("repair: reinstalling with profile {profile}")).await;
    let log = |line: String| tracing::info!("{line}");
    let installed = install(&provisioning, &host.name, &profile, provisioning.install_timeout, &log)
        .await
        .map_err(|e| e.to_string())?;
    let session =
        HostSession::open_reinstalled(&target, &installed.host_key, None, provisioning.install_timeout)
            .await
            .map_err(|e| e.to_string())?;
    session.session().close().await;
    super::runner::pin_host_key(&farm.store, &host.name, &installed.host_key)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "reinstalled with profile {profile} in {:.0} s ({} attempt{}), boot id {}, new host key pinned",
        installed.took.as_secs_f64(),
        installed.attempts,
        if installed.attempts == 1 { "" } else { "s" },
        session.boot_id
    ))
}

/// The pause before the next repair of a host that failed `failures` times in a row:
/// doubling from the install timeout (at most a minute), up to [`MAX_PAUSE`].
fn pause_after(farm: &Farm, failures: i64) -> Duration {
    let base =
        farm.config.cobbler.as_ref().map_or(SCAN_EVERY, |c| c.install_timeout).min(Duration::from_secs(60));
    let doublings = failures.clamp(1, 10) as u32 - 1;
    (base * 2u32.pow(doublings)).min(MAX_PAUSE)
}

/// What is wrong with `host`'s system in the provisioner, loudly: the classic failure
/// of a lab is a host whose system is missing or named differently there. `None` when
/// all is well or the farm has no provisioner.
pub async fn check_provisioning(farm: &Farm, host: &Host) -> Option<String> {
    let provisioner = farm.provisioner.as_ref()?;
    let warning = match provisioner.system_exists(&host.cobbler_system).await {
        Ok(true) => return None,
        Ok(false) => format!(
            "host {}: {} has no system named `{}`: the farm cannot reinstall it (add the system there, \
             or give the host its name with --cobbler-system)",
            host.name,
            provisioner.describe(),
            host.cobbler_system
        ),
        Err(err) => format!("host {}: cannot check its system `{}`: {err}", host.name, host.cobbler_system),
    };
    tracing::warn!("{warning}");
    Some(warning)
}
