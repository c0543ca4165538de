//! Reinstalling hosts: the [`Provisioner`] trait (a back end that can put a profile on a
//! machine, power it and tell when the install finished), its first back end
//! [`cobbler::CobblerClient`] (Cobbler's XML-RPC API), the registry where a fresh install
//! announces its new SSH host key ([`announce::Announcements`]), and [`install::install`],
//! which drives one reinstall to its end with the lab's failure rules (a second power
//! cycle, then give up).
//!
//! Nothing here knows the forge, the store or SSH: the job runner (`exec`) and the farm's
//! repair loop (`farm`) call [`install::install`] and then check the host over SSH
//! themselves. Another back end (Foreman, MAAS, IPMI + PXE) is one more implementation
//! of [`Provisioner`].

pub mod announce;
pub mod cobbler;
pub mod install;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use announce::Announcements;

/// What the back ends' methods return: boxed, so that the trait is object safe and the
/// runner holds any back end as `Arc<dyn Provisioner>`.
pub type ProvisionFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProvisionError>> + Send + 'a>>;

/// A provisioning back end: reinstall a machine with a profile, power it, and say
/// whether the install it started has finished.
pub trait Provisioner: Send + Sync + fmt::Debug {
    /// For logs: which back end, where (`Cobbler at http://…`).
    fn describe(&self) -> String;

    /// Whether the back end knows `system` (a host added without its system is the
    /// classic misconfiguration of a lab).
    fn system_exists<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, bool>;

    /// Starts a reinstall: the profile and the install's metadata set on the system,
    /// network boot on, and the machine power-cycled into the installer.
    fn start_install<'a>(&'a self, request: &'a InstallRequest) -> ProvisionFuture<'a, ()>;

    /// Whether the install last started on `system` has finished (for Cobbler: the
    /// kickstart's `%post` turned network boot off).
    fn install_status<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, InstallStatus>;

    /// Powers the machine on, off, or off and on again.
    fn power<'a>(&'a self, system: &'a str, action: PowerAction) -> ProvisionFuture<'a, ()>;

    /// Whether the machine is powered on.
    fn power_status<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, PowerState>;
}

/// One reinstall to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRequest {
    /// The machine's name in the back end (Cobbler's system name).
    pub system: String,
    pub profile: String,
    /// Variables the install's templates read (Cobbler's `autoinstall_meta`): where and
    /// how to announce the new host key. Merged into what the system already has.
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStatus {
    Installing,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Cycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
}

/// Why the back end could not do what was asked. Every one of them is the lab's
/// trouble, never the job's: the runner reports it as an infrastructure failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// It did not answer, after the retries.
    #[error("{backend} is unreachable after {attempts} attempts: {reason}")]
    Unreachable { backend: String, attempts: u32, reason: String },
    /// It answered with an error, after the retries.
    #[error("{backend} refused `{call}` after {attempts} attempts: {message}")]
    Refused { backend: String, call: String, attempts: u32, message: String },
    /// The machine is not known there: a lab's configuration error.
    #[error("{backend} has no system named `{system}`: add it there (its name must be the host's name, or the host's `cobbler_system`)")]
    NoSuchSystem { backend: String, system: String },
    #[error("{backend}: {message}")]
    Protocol { backend: String, message: String },
}

/// How a host is reinstalled, as the job runner and the repair loop need it: the back
/// end, the host's system there, and the defaults of `metalfarm/provision`.
#[derive(Clone)]
pub struct HostProvisioning {
    pub provisioner: Arc<dyn Provisioner>,
    pub announcements: Arc<Announcements>,
    /// The host's system name in the back end.
    pub system: String,
    /// The profile when the step names none.
    pub default_profile: Option<String>,
    /// How long an install may take before the machine is power-cycled once more, and
    /// then as long again before the reinstall fails.
    pub install_timeout: Duration,
    /// Where the install announces itself: the farm's base URL as the hosts reach it.
    pub announce_url: String,
    /// How often the install's progress is asked for.
    pub poll_interval: Duration,
}

impl fmt::Debug for HostProvisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostProvisioning")
            .field("provisioner", &self.provisioner.describe())
            .field("system", &self.system)
            .field("default_profile", &self.default_profile)
            .field("install_timeout", &self.install_timeout)
            .finish_non_exhaustive()
    }
}
