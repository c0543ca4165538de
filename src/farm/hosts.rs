//! The inventory: the farm's hosts, their states and the rules between the states.
//!
//! [`HostState::transition`] is the state machine of DESIGN.md, pure: `ready` → `leased`
//! (to one job) → `ready`; an infrastructure failure → `repairing` → `ready`, or after
//! `[server] broken_after` failures in a row → `broken` (quarantined until an admin
//! unlocks it); `maintenance` is an admin lock with a reason. An admin's reinstall
//! (`metalfarm provision`) sends a host to `repairing`, where the farm's repair loop
//! (`super::repair`) reinstalls it.
//!
//! Locking a leased host lets its job finish, as labs and GitHub's runners do: the lock
//! is kept as the host's `pending_lock` and the host goes to `maintenance` when the
//! job ends, whichever way it ends. Everything else takes effect at once.
//!
//! [`Inventory`] is the service over the store: every method that changes a host
//! returns it as it now is, and [`Inventory::subscribe`] hears of every change, so the
//! scheduler's driver learns whether a host is available (`ready`), whoever changed
//! it (the API, the config, the farm). Changes are compare-and-set on the
//! host's version, so two controllers (PostgreSQL) or two requests never overwrite
//! each other's change; each state change is recorded in the host's history in the
//! same transaction.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::scheduler::{self, Scheduler};
use crate::config::{Arch, HostConfig};
use crate::store::{now_ms, Store, StoreError};

/// After this many infrastructure failures in a row (jobs or repairs), a host is
/// quarantined as `broken`, unless `[server] broken_after` says otherwise. A job that
/// ends normally resets the count.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 3;

/// The labels every host has, before its architecture and its own.
pub const IMPLICIT_LABELS: [&str; 2] = ["self-hosted", "linux"];

/// A host's own labels at most: the placement engine keeps a class per label set, and
/// the API lists them all.
pub const MAX_HOST_LABELS: usize = 100;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Unlocked and idle: the scheduler may lease it.
    Ready,
    /// Running one job.
    Leased,
    /// Being reinstalled and checked after an infrastructure failure.
    Repairing,
    /// Quarantined after too many failures in a row, until an admin unlocks it.
    Broken,
    /// Locked by an admin, with a reason.
    Maintenance,
}

impl HostState {
    pub const ALL: [HostState; 5] = [
        HostState::Ready,
        HostState::Leased,
        HostState::Repairing,
        HostState::Broken,
        HostState::Maintenance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Ready => "ready",
            HostState::Leased => "leased",
            HostState::Repairing => "repairing",
            HostState::Broken => "broken",
            HostState::Maintenance => "maintenance",
        }
    }

    pub fn parse(text: &str) -> Option<HostState> {
        HostState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// How a sentence says a host is in this state: "the host is {…}".
    pub fn phrase(self) -> &'static str {
        match self {
            HostState::Repairing => "being repaired",
            HostState::Maintenance => "in maintenance",
            other => other.as_str(),
        }
    }

    /// Whether `cause` may take a host from this state to `to`. Returns `to`.
    pub fn transition(self, to: HostState, cause: Cause) -> Result<HostState, Refused> {
        use Cause::*;
        use HostState::*;
        let allowed = matches!(
            (self, to, cause),
            (Ready, Leased, Lease)
                | (Leased, Ready, Release)
                // A lock asked for during the job takes effect when the job ends.
                | (Leased, Maintenance, Release | InfraFailure)
                | (Ready | Leased, Repairing, InfraFailure)
                | (Ready | Leased | Repairing, Broken, Quarantine)
                | (Repairing, Ready, Repaired)
                | (Ready | Repairing | Broken, Maintenance, Lock)
                | (Broken | Maintenance, Ready, Unlock)
                | (Ready | Broken | Maintenance, Repairing, Reinstall)
        );
        if allowed {
            Ok(to)
        } else {
            Err(Refused { from: self, to, cause })
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a host from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The scheduler placed a job on it.
    Lease,
    /// Its job ended and the host is fine.
    Release,
    /// The install timed out, SSH was lost, the host is unreachable.
    InfraFailure,
    /// The reinstall and the health check passed.
    Repaired,
    /// Too many infrastructure failures in a row.
    Quarantine,
    /// An admin locked it for maintenance.
    Lock,
    /// An admin unlocked it.
    Unlock,
    /// An admin asked for a reinstall (`metalfarm provision`).
    Reinstall,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Lease,
        Cause::Release,
        Cause::InfraFailure,
        Cause::Repaired,
        Cause::Quarantine,
        Cause::Lock,
        Cause::Unlock,
        Cause::Reinstall,
    ];

    fn describe(self) -> &'static str {
        match self {
            Cause::Lease => "a lease",
            Cause::Release => "the end of a job",
            Cause::InfraFailure => "an infrastructure failure",
            Cause::Repaired => "a finished repair",
            Cause::Quarantine => "a quarantine",
            Cause::Lock => "a lock",
            Cause::Unlock => "an unlock",
            Cause::Reinstall => "a reinstall",
        }
    }
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub from: HostState,
    pub to: HostState,
    pub cause: Cause,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HostState::*;
        let Refused { from, to, cause } = *self;
        match (from, cause) {
            _ if from == to => write!(f, "the host is already {}", to.phrase()),
            (Broken, _) if cause != Cause::Lock => {
                f.write_str("the host is broken (quarantined): only an admin unlock returns it to ready")
            }
            (Maintenance, _) => {
                f.write_str("the host is in maintenance: only an admin unlock returns it to ready")
            }
            (_, Cause::Unlock) => write!(
                f,
                "the host is {}, not locked: only broken hosts and hosts in maintenance are unlocked",
                from.phrase()
            ),
            (Leased, Cause::Lock) => f.write_str("the host is leased: a lock takes effect when its job ends"),
            _ if to == Leased => write!(f, "the host is {}: only a ready host can be leased", from.phrase()),
            _ => write!(f, "{} does not take a {from} host to {to}", cause.describe()),
        }
    }
}

impl std::error::Error for Refused {}

/// Where a host is defined: the config file wins over the API for its own hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostSource {
    /// A `[[host]]` of the config file (inventory as code): edited and removed there.
    Config,
    /// Added through the API or the CLI.
    Api,
}

impl HostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HostSource::Config => "config",
            HostSource::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<HostSource> {
        [HostSource::Config, HostSource::Api].into_iter().find(|s| s.as_str() == text)
    }
}

/// Who changed a host, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Through the API (the admin token).
    Admin,
    /// The config file, at start.
    Config,
    /// The farm itself: scheduler, job runner, repair.
    Farm,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Admin => "admin",
            Actor::Config => "config",
            Actor::Farm => "farm",
        }
    }
}

/// A host as the inventory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// Its system name in Cobbler.
    pub cobbler_system: String,
    pub arch: Arch,
    /// Its own labels, lowercase, without the implicit ones (see [`Host::all_labels`]).
    pub labels: Vec<String>,
    pub source: HostSource,
    pub state: HostState,
    /// Why it is in its state (the lock's reason, the failure, the job).
    pub state_reason: String,
    /// A lock asked for while leased: the host goes to maintenance with this reason
    /// when its job ends.
    pub pending_lock: Option<String>,
    pub consecutive_failures: i64,
    /// The job it is leased to.
    pub job_id: Option<i64>,
    /// When the lease lapses unless its holder renews it (unix ms).
    pub lease_expires_at: Option<i64>,
    /// Bumped by every change; a change is written only over the version it was made from.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Host {
    /// Every label a job's `runs-on` is matched against: `self-hosted`, `linux`, the
    /// architecture, then its own.
    pub fn all_labels(&self) -> Vec<String> {
        IMPLICIT_LABELS
            .iter()
            .map(|l| l.to_string())
            .chain([self.arch.label().to_owned()])
            .chain(self.labels.iter().cloned())
            .collect()
    }

    /// Whether the scheduler may lease it now.
    pub fn is_available(&self) -> bool {
        self.state == HostState::Ready
    }

    /// The host as placement sees it.
    pub fn placement_spec(&self) -> scheduler::HostSpec {
        scheduler::HostSpec { name: self.name.clone(), labels: self.all_labels() }
    }
}

/// One recorded change of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHistoryEntry {
    /// Unix ms.
    pub at: i64,
    /// `None`: the host was added.
    pub from: Option<HostState>,
    pub to: HostState,
    pub reason: String,
    pub actor: String,
}

/// The parts of a host an admin describes (the API's and the config's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub labels: Vec<String>,
    /// Default: the name.
    pub address: Option<String>,
    /// Default: 22.
    pub port: Option<u16>,
    /// Default: the name.
    pub cobbler_system: Option<String>,
    /// Default: x64.
    pub arch: Option<Arch>,
}

impl From<&HostConfig> for HostSpec {
    fn from(config: &HostConfig) -> HostSpec {
        HostSpec {
            name: config.name.clone(),
            labels: config.labels.clone(),
            address: config.address.clone(),
            port: Some(config.port),
            cobbler_system: config.cobbler_system.clone(),
            arch: Some(config.arch),
        }
    }
}

/// A change to a host's description; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostEdit {
    pub labels: Option<Vec<String>>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub cobbler_system: Option<String>,
    pub arch: Option<Arch>,
}

impl HostEdit {
    pub fn is_empty(&self) -> bool {
        *self == HostEdit::default()
    }
}

/// How many hosts carry a label, by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCount {
    pub label: String,
    pub hosts: usize,
    pub by_state: BTreeMap<HostState, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("no host named `{0}`")]
    NotFound(String),
    #[error("a host named `{0}` exists already")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("host `{host}`: {refused}")]
    Refused { host: String, refused: Refused },
    /// A host of the config file cannot be changed or removed through the API.
    #[error("host `{host}` is defined in the config file: {what} its [[host]] entry there (the config is applied at every start)")]
    ConfigHost { host: String, what: &'static str },
    #[error("host `{host}` is {}{}: lock it and remove it once it is idle", state.phrase(), job.map(|j| format!(" (job {j})")).unwrap_or_default())]
    Busy { host: String, state: HostState, job: Option<i64> },
    #[error("host `{host}` is not leased to job {job}")]
    NotLeasedTo { host: String, job: i64 },
    #[error("host `{0}` kept changing under this change; try again")]
    Contended(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the scheduler hears about: a host as it now is after a change, or its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    Changed(Host),
    Removed(String),
}

impl HostEvent {
    /// Tells placement: a host's labels and whether it takes jobs (only when `ready`),
    /// or that it is gone. The farm's own leases come back as events too: applying
    /// them is harmless, a leased host takes no new job until its release makes it
    /// `ready` again.
    pub fn apply_to(&self, placement: &mut Scheduler) {
        match self {
            HostEvent::Changed(host) => {
                placement.add_host(host.placement_spec());
                placement.set_host_available(&host.name, host.is_available());
            }
            HostEvent::Removed(name) => placement.remove_host(name),
        }
    }
}

/// The inventory service: hosts in the store and the rules for changing them. Make
/// one and clone it: the clones share the stream of [`HostEvent`]s.
#[derive(Debug, Clone)]
pub struct Inventory {
    store: Store,
    events: broadcast::Sender<HostEvent>,
    /// Infrastructure failures in a row that make a host `broken`.
    broken_after: i64,
}

/// Events a slow subscriber may fall behind by before it is told it lagged.
const EVENTS_BUFFERED: usize = 1024;

/// Tries of a compare-and-set change before giving up.
const CHANGE_TRIES: usize = 8;

impl Inventory {
    pub fn new(store: Store) -> Inventory {
        Inventory {
            store,
            events: broadcast::channel(EVENTS_BUFFERED).0,
            broken_after: MAX_CONSECUTIVE_FAILURES,
        }
    }

    /// Quarantines a host after `failures` infrastructure failures in a row.
    pub fn with_broken_after(mut self, failures: u32) -> Inventory {
        self.broken_after = i64::from(failures.max(1));
        self
    }

    /// Every change made through this inventory (or a clone) from now on, whoever made
    /// it: the API, the config, the farm. A receiver that lagged re-reads [`Inventory::list`].
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    pub async fn list(&self) -> Result<Vec<Host>, InventoryError> {
        Ok(self.store.hosts().await?)
    }

    pub async fn get(&self, name: &str) -> Result<Host, InventoryError> {
        self.store.host(name).await?.ok_or_else(|| InventoryError::NotFound(name.to_owned()))
    }

    /// Its newest `limit` history entries, oldest first.
    pub async fn history(&self, name: &str, limit: i64) -> Result<Vec<HostHistoryEntry>, InventoryError> {
        Ok(self.store.host_history(name, limit).await?)
    }

    /// Hosts whose lease lapsed before `now_ms`: their job's holder stopped renewing it.
    pub async fn expired_leases(&self, now_ms: i64) -> Result<Vec<Host>, InventoryError> {
        Ok(self.store.hosts_with_expired_leases(now_ms).await?)
    }

    /// Makes the store's hosts match the config's `[[host]]` entries (inventory as code):
    /// new ones are added `ready`, known ones take the config's description and keep
    /// their state. A config host no longer in the config is removed, unless it is
    /// leased or being repaired: then it stays, as an API host, and a warning says so.
    /// Returns the whole inventory.
    pub async fn sync_config(&self, hosts: &[HostConfig]) -> Result<Vec<Host>, InventoryError> {
        let mut names = HashSet::new();
        for config in hosts {
            let spec = HostSpec::from(config);
            let wanted = describe(&spec).map_err(|e| match e {
                InventoryError::Invalid(msg) => {
                    InventoryError::Invalid(format!("[[host]] `{}`: {msg}", config.name))
                }
                other => other,
            })?;
            names.insert(wanted.name.clone());
            self.change(&wanted.name, Actor::Config, Some(&wanted), |current| {
                let Some(current) = current else {
                    return Ok(Change::Insert("added from the config file".into()));
                };
                let mut host = current.clone();
                apply_description(&mut host, &wanted);
                host.source = HostSource::Config;
                if host == *current {
                    return Ok(Change::Nothing);
                }
                Ok(Change::Update { host, history: None })
            })
            .await?;
        }
        for host in self.store.hosts().await? {
            if host.source != HostSource::Config || names.contains(&host.name) {
                continue;
            }
            self.change(&host.name, Actor::Config, None, |current| {
                let Some(current) = current else { return Ok(Change::Nothing) };
                if matches!(current.state, HostState::Leased | HostState::Repairing) {
                    tracing::warn!(
                        host = %current.name,
                        state = %current.state,
                        "a host removed from the config file is busy: it stays, as an API host; remove it with `metalfarm host remove` once idle"
                    );
                    let mut host = current.clone();
                    host.source = HostSource::Api;
                    Ok(Change::Update { host, history: None })
                } else {
                    tracing::info!(host = %current.name, "removed a host that left the config file");
                    Ok(Change::Delete)
                }
            })
            .await?;
        }
        self.list().await
    }

    /// Adds a host through the API, `ready`.
    pub async fn add(&self, spec: &HostSpec) -> Result<Host, InventoryError> {
        let host = Host { source: HostSource::Api, ..describe(spec)? };
        self.change(&host.name, Actor::Admin, Some(&host), |current| match current {
            Some(_) => Err(InventoryError::Exists(host.name.clone())),
            None => Ok(Change::Insert("added".into())),
        })
        .await?
        .ok_or_else(|| InventoryError::NotFound(host.name.clone()))
    }

    /// Changes an API host's description; a config host's is edited in the config file.
    pub async fn edit(&self, name: &str, edit: &HostEdit) -> Result<Host, InventoryError> {
        self.change(name, Actor::Admin, None, |current| {
            let current = current.ok_or_else(|| InventoryError::NotFound(name.to_owned()))?;
            if current.source == HostSource::Config {
                return Err(InventoryError::ConfigHost { host: name.to_owned(), what: "edit" });
            }
            let spec = HostSpec {
                name: current.name.clone(),
                labels: edit.labels.clone().unwrap_or_else(|| current.labels.clone()),
                address: Some(edit.address.clone().unwrap_or_else(|| current.address.clone())),
                port: Some(edit.port.unwrap_or(current.port)),
                cobbler_system: Some(
                    edit.cobbler_system.clone().unwrap_or_else(|| current.cobbler_system.clone()),
                ),
                arch: Some(edit.arch.unwrap_or(current.arch)),
            };
            let mut host = current.clone();
            apply_description(&mut host, &describe(&spec)?);
            Ok(Change::Update { host, history: None })
        })
        .await
        .and_then(|h| h.ok_or_else(|| InventoryError::NotFound(name.to_owned())))
    }

    /// Removes an idle API host (not leased, not being repaired).
    pub async fn remove(&self, name: &str) -> Result<(), InventoryError> {
        self.change(name, Actor::Admin, None, |current| {
            let current = current.ok_or_else(|| InventoryError::NotFound(name.to_owned()))?;
            if current.source == HostSource::Config {
                return Err(InventoryError::ConfigHost { host: name.to_owned(), what: "remove" });
            }
            if matches!(current.state, HostState::Leased | HostState::Repairing) {
                return Err(InventoryError::Busy {
                    host: name.to_owned(),
                    state: current.state,
                    job: current.job_id,
                });
            }
            Ok(Change::Delete)
        })
        .await?;
        Ok(())
    }

    /// Locks a host for maintenance. A leased host finishes its job first: the lock is
    /// kept as `pending_lock` and takes effect when the job ends.
    pub async fn lock(&self, name: &str, reason: &str) -> Result<Host, InventoryError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(InventoryError::Invalid("a lock needs a reason".into()));
        }
        self.change_existing(name, Actor::Admin, |current| {
            let mut host = current.clone();
            if current.state == HostState::Leased {
                host.pending_lock = Some(reason.to_owned());
                return Ok(Change::Update { host, history: None });
            }
            host.move_to(HostState::Maintenance, Cause::Lock, reason)
        })
        .await
    }

    /// Unlocks a broken host or one in maintenance (back to `ready`, failures
    /// forgotten), or withdraws the pending lock of a leased host.
    pub async fn unlock(&self, name: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Admin, |current| {
            let mut host = current.clone();
            if current.state == HostState::Leased && current.pending_lock.is_some() {
                host.pending_lock = None;
                return Ok(Change::Update { host, history: None });
            }
            host.consecutive_failures = 0;
            host.move_to(HostState::Ready, Cause::Unlock, "unlocked")
        })
        .await
    }

    /// Leases a ready host to `job_id` until `expires_at` (unix ms).
    pub async fn lease(&self, name: &str, job_id: i64, expires_at: i64) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            let mut host = current.clone();
            host.job_id = Some(job_id);
            host.lease_expires_at = Some(expires_at);
            host.move_to(HostState::Leased, Cause::Lease, &format!("job {job_id}"))
        })
        .await
    }

    /// The lease's heartbeat: extends it to `expires_at`.
    pub async fn renew_lease(
        &self,
        name: &str,
        job_id: i64,
        expires_at: i64,
    ) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            current.check_leased_to(job_id)?;
            let mut host = current.clone();
            host.lease_expires_at = Some(expires_at);
            Ok(Change::Update { host, history: None })
        })
        .await
    }

    /// Job `job_id` ended and the host is fine: `ready` again, or `maintenance` when a
    /// lock waited for the job.
    pub async fn release(&self, name: &str, job_id: i64) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            current.check_leased_to(job_id)?;
            let mut host = current.clone();
            host.end_lease();
            host.consecutive_failures = 0;
            match host.pending_lock.take() {
                Some(lock) => host.move_to(HostState::Maintenance, Cause::Release, &lock),
                None => host.move_to(HostState::Ready, Cause::Release, &format!("job {job_id} ended")),
            }
        })
        .await
    }

    /// Job `job_id` ended normally but left the host unfit for the next job (a
    /// reinstall cut short): it is repaired first, without counting against it; a
    /// pending lock takes effect instead.
    pub async fn release_to_repair(
        &self,
        name: &str,
        job_id: i64,
        reason: &str,
    ) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            current.check_leased_to(job_id)?;
            let mut host = current.clone();
            host.end_lease();
            match host.pending_lock.take() {
                Some(lock) => {
                    host.move_to(HostState::Maintenance, Cause::Release, &format!("{lock} ({reason})"))
                }
                None => host.move_to(
                    HostState::Repairing,
                    Cause::InfraFailure,
                    &format!("job {job_id}: {reason}"),
                ),
            }
        })
        .await
    }

    /// Job `job_id`'s lease lapsed at `now_ms` (its holder stopped renewing it): what
    /// ran on the host is unknown, so it is repaired (reinstalled) before another job,
    /// without counting against the host; a pending lock takes effect instead. Refused
    /// when the lease was renewed or ended meanwhile.
    pub async fn recover_lease(&self, name: &str, job_id: i64, now_ms: i64) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            current.check_leased_to(job_id)?;
            if current.lease_expires_at.is_none_or(|t| t >= now_ms) {
                return Err(InventoryError::NotLeasedTo { host: name.to_owned(), job: job_id });
            }
            let mut host = current.clone();
            host.end_lease();
            let why = format!("the lease of job {job_id} lapsed");
            match host.pending_lock.take() {
                Some(lock) => {
                    host.move_to(HostState::Maintenance, Cause::InfraFailure, &format!("{lock} ({why})"))
                }
                None => host.move_to(HostState::Repairing, Cause::InfraFailure, &why),
            }
        })
        .await
    }

    /// An infrastructure failure (install timed out, SSH lost, unreachable) on a ready
    /// or leased host: `repairing`, or `broken` after `broken_after` in a
    /// row; a leased host with a pending lock goes to `maintenance` instead.
    pub async fn infra_failure(&self, name: &str, reason: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            let mut host = current.clone();
            host.end_lease();
            host.consecutive_failures += 1;
            if let Some(lock) = host.pending_lock.take().filter(|_| current.state == HostState::Leased) {
                let why = format!("{lock} (the job ended with an infrastructure failure: {reason})");
                return host.move_to(HostState::Maintenance, Cause::InfraFailure, &why);
            }
            host.repair_or_quarantine(Cause::InfraFailure, reason, self.broken_after)
        })
        .await
    }

    /// The repair passed: `ready` again.
    pub async fn repaired(&self, name: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            current.clone().move_to(HostState::Ready, Cause::Repaired, "repaired")
        })
        .await
    }

    /// The repair failed: tried again (still `repairing`), or `broken` after
    /// `broken_after` in a row.
    pub async fn repair_failed(&self, name: &str, reason: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            if current.state != HostState::Repairing {
                return Err(InventoryError::Refused {
                    host: name.to_owned(),
                    refused: Refused {
                        from: current.state,
                        to: HostState::Repairing,
                        cause: Cause::InfraFailure,
                    },
                });
            }
            let mut host = current.clone();
            host.consecutive_failures += 1;
            host.repair_or_quarantine(Cause::InfraFailure, reason, self.broken_after)
        })
        .await
    }

    /// An admin asks for a reinstall: the host goes to `repairing`, where the repair
    /// loop reinstalls it (a leased host first finishes its job: refused now).
    pub async fn request_reinstall(&self, name: &str, reason: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Admin, |current| {
            let mut host = current.clone();
            if current.state == HostState::Repairing {
                host.state_reason = reason.to_owned();
                return Ok(Change::Update { host, history: Some((current.state, reason.to_owned())) });
            }
            host.pending_lock = None;
            host.move_to(HostState::Repairing, Cause::Reinstall, reason)
        })
        .await
    }

    /// Writes `note` in the host's history without changing its state (a reinstall
    /// done by a job, a repair attempt begun).
    pub async fn note(&self, name: &str, note: &str) -> Result<Host, InventoryError> {
        self.change_existing(name, Actor::Farm, |current| {
            Ok(Change::Update { host: current.clone(), history: Some((current.state, note.to_owned())) })
        })
        .await
    }

    /// Every label in the inventory (implicit ones included), with its hosts by state.
    pub async fn label_counts(&self) -> Result<Vec<LabelCount>, InventoryError> {
        let mut counts: BTreeMap<String, LabelCount> = BTreeMap::new();
        for host in self.store.hosts().await? {
            for label in host.all_labels() {
                let count = counts.entry(label.clone()).or_insert_with(|| LabelCount {
                    label,
                    hosts: 0,
                    by_state: HostState::ALL.iter().map(|s| (*s, 0)).collect(),
                });
                count.hosts += 1;
                *count.by_state.entry(host.state).or_default() += 1;
            }
        }
        Ok(counts.into_values().collect())
    }

    /// A change to an existing host.
    async fn change_existing(
        &self,
        name: &str,
        actor: Actor,
        decide: impl Fn(&Host) -> Result<Change, InventoryError>,
    ) -> Result<Host, InventoryError> {
        self.change(name, actor, None, |current| {
            decide(current.ok_or_else(|| InventoryError::NotFound(name.to_owned()))?)
        })
        .await?
        .ok_or_else(|| InventoryError::NotFound(name.to_owned()))
    }

    /// Reads the host, lets `decide` say what to do, and writes that over the version
    /// it was decided from; when another change came first, decides again. `insert`
    /// is the host an `Insert` adds. Returns the host as it now is.
    async fn change(
        &self,
        name: &str,
        actor: Actor,
        insert: Option<&Host>,
        decide: impl Fn(Option<&Host>) -> Result<Change, InventoryError>,
    ) -> Result<Option<Host>, InventoryError> {
        for _ in 0..CHANGE_TRIES {
            let current = self.store.host(name).await?;
            let now = now_ms();
            let written = match decide(current.as_ref())? {
                Change::Nothing => return Ok(current),
                Change::Insert(reason) => {
                    let mut host = insert.expect("an Insert decision comes with the host to insert").clone();
                    host.created_at = now;
                    host.updated_at = now;
                    let entry = HostHistoryEntry {
                        at: now,
                        from: None,
                        to: host.state,
                        reason,
                        actor: actor.as_str().into(),
                    };
                    self.store.insert_host(&host, &entry).await?
                }
                Change::Update { mut host, history } => {
                    host.updated_at = now;
                    let entry = history.map(|(from, reason)| HostHistoryEntry {
                        at: now,
                        from: Some(from),
                        to: host.state,
                        reason,
                        actor: actor.as_str().into(),
                    });
                    self.store.update_host(&host, entry.as_ref()).await?
                }
                Change::Delete => {
                    let version = current.as_ref().map_or(0, |h| h.version);
                    if self.store.delete_host(name, version).await? {
                        tracing::debug!(host = name, actor = actor.as_str(), "host removed");
                        // No subscriber is fine: nothing to tell.
                        let _ = self.events.send(HostEvent::Removed(name.to_owned()));
                        return Ok(None);
                    }
                    false
                }
            };
            if written {
                let host = self.store.host(name).await?;
                if let Some(host) = &host {
                    tracing::debug!(host = %host.name, state = %host.state, actor = actor.as_str(), "host changed");
                    let _ = self.events.send(HostEvent::Changed(host.clone()));
                }
                return Ok(host);
            }
        }
        Err(InventoryError::Contended(name.to_owned()))
    }
}

/// What a change does to one host.
#[allow(clippy::large_enum_variant)] // one short-lived value per change
enum Change {
    Nothing,
    /// Adds the host, with this reason in its history.
    Insert(String),
    /// Writes `host` (over the version it carries); `history`: the state it left and why.
    Update {
        host: Host,
        history: Option<(HostState, String)>,
    },
    Delete,
}

impl Host {
    /// The change that takes this host to `to` by `cause`, if the state machine allows it.
    fn move_to(mut self, to: HostState, cause: Cause, reason: &str) -> Result<Change, InventoryError> {
        let from = self.state;
        self.state = from
            .transition(to, cause)
            .map_err(|refused| InventoryError::Refused { host: self.name.clone(), refused })?;
        self.state_reason = reason.to_owned();
        Ok(Change::Update { host: self, history: Some((from, reason.to_owned())) })
    }

    fn repair_or_quarantine(
        self,
        cause: Cause,
        reason: &str,
        broken_after: i64,
    ) -> Result<Change, InventoryError> {
        if self.consecutive_failures >= broken_after {
            let why =
                format!("{} infrastructure failures in a row, the last: {reason}", self.consecutive_failures);
            return self.move_to(HostState::Broken, Cause::Quarantine, &why);
        }
        if self.state == HostState::Repairing {
            // Another repair attempt: no new state, only the reason and the count.
            let mut host = self;
            host.state_reason = format!("repair failed: {reason}");
            return Ok(Change::Update { host, history: None });
        }
        self.move_to(HostState::Repairing, cause, reason)
    }

    fn check_leased_to(&self, job_id: i64) -> Result<(), InventoryError> {
        if self.state == HostState::Leased && self.job_id == Some(job_id) {
            Ok(())
        } else {
            Err(InventoryError::NotLeasedTo { host: self.name.clone(), job: job_id })
        }
    }

    fn end_lease(&mut self) {
        self.job_id = None;
        self.lease_expires_at = None;
    }
}

/// Copies the described fields of `from` onto `host`, leaving its state alone.
fn apply_description(host: &mut Host, from: &Host) {
    host.address.clone_from(&from.address);
    host.port = from.port;
    host.cobbler_system.clone_from(&from.cobbler_system);
    host.arch = from.arch;
    host.labels.clone_from(&from.labels);
}

/// A new `ready` host from a spec, its fields checked and defaulted.
fn describe(spec: &HostSpec) -> Result<Host, InventoryError> {
    let invalid = |msg: String| Err(InventoryError::Invalid(msg));
    let name = spec.name.trim();
    if !is_host_name(name) {
        return invalid(format!(
            "`{name}` is not a host name (1 to 253 letters, digits, `.`, `-` or `_`, starting with a letter or digit)"
        ));
    }
    let arch = spec.arch.unwrap_or_default();
    let address = spec.address.as_deref().map(str::trim).unwrap_or(name);
    if address.is_empty() || address.chars().any(char::is_whitespace) {
        return invalid(format!("`{address}` is not an address"));
    }
    let port = spec.port.unwrap_or(22);
    if port == 0 {
        return invalid("the SSH port must be between 1 and 65535".into());
    }
    let cobbler_system = spec.cobbler_system.as_deref().map(str::trim).unwrap_or(name);
    if cobbler_system.is_empty() {
        return invalid("the Cobbler system name must not be empty".into());
    }
    Ok(Host {
        name: name.to_owned(),
        address: address.to_owned(),
        port,
        cobbler_system: cobbler_system.to_owned(),
        arch,
        labels: normalize_labels(&spec.labels, arch)?,
        source: HostSource::Config,
        state: HostState::Ready,
        state_reason: String::new(),
        pending_lock: None,
        consecutive_failures: 0,
        job_id: None,
        lease_expires_at: None,
        version: 0,
        created_at: 0,
        updated_at: 0,
    })
}

fn is_host_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A host's own labels: lowercase (labels match case-insensitively, as on GitHub),
/// each once, without the implicit ones. An architecture label other than the host's
/// own is refused: `arch` says it.
pub fn normalize_labels(labels: &[String], arch: Arch) -> Result<Vec<String>, InventoryError> {
    let mut out: Vec<String> = Vec::new();
    for label in labels {
        let label = label.trim().to_lowercase();
        if label.is_empty()
            || label.len() > 256
            || label.contains(',')
            || label.chars().any(char::is_whitespace)
        {
            return Err(InventoryError::Invalid(format!(
                "`{label}` is not a label (1 to 256 characters, no spaces or commas)"
            )));
        }
        if IMPLICIT_LABELS.contains(&label.as_str()) || label == arch.label() {
            continue;
        }
        if [Arch::X64, Arch::Arm64].iter().any(|a| a.label() == label) {
            return Err(InventoryError::Invalid(format!(
                "`{label}` is an architecture label: set the host's arch to `{label}` instead"
            )));
        }
        if !out.contains(&label) {
            if out.len() == MAX_HOST_LABELS {
                return Err(InventoryError::Invalid(format!(
                    "a host has at most {MAX_HOST_LABELS} labels of its own"
                )));
            }
            out.push(label);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Cause::*;
    use super::HostState::*;
    use super::*;

    /// The allowed transitions, written out: everything else is refused.
    const ALLOWED: &[(HostState, HostState, Cause)] = &[
        (Ready, Leased, Lease),
        (Ready, Repairing, InfraFailure),
        (Ready, Broken, Quarantine),
        (Ready, Maintenance, Lock),
        (Leased, Ready, Release),
        (Leased, Maintenance, Release),
        (Leased, Maintenance, InfraFailure),
        (Leased, Repairing, InfraFailure),
        (Leased, Broken, Quarantine),
        (Repairing, Ready, Repaired),
        (Repairing, Broken, Quarantine),
        (Repairing, Maintenance, Lock),
        (Broken, Maintenance, Lock),
        (Broken, Ready, Unlock),
        (Maintenance, Ready, Unlock),
        (Ready, Repairing, Reinstall),
        (Broken, Repairing, Reinstall),
        (Maintenance, Repairing, Reinstall),
    ];

    #[test]
    fn every_transition_is_allowed_or_refused_as_designed() {
        let mut checked = 0;
        for from in HostState::ALL {
            for to in HostState::ALL {
                for cause in Cause::ALL {
                    let expected = ALLOWED.contains(&(from, to, cause));
                    let got = from.transition(to, cause);
                    match got {
                        Ok(state) => {
                            assert!(expected, "{from} → {to} by {cause:?} should be refused");
                            assert_eq!(state, to);
                        }
                        Err(refused) => {
                            assert!(!expected, "{from} → {to} by {cause:?} should be allowed: {refused}");
                            assert_eq!(refused, Refused { from, to, cause });
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 5 * 5 * 8);
    }

    #[test]
    fn a_broken_host_is_never_leased_and_only_an_unlock_makes_it_ready() {
        for cause in Cause::ALL {
            assert!(Broken.transition(Leased, cause).is_err(), "{cause:?}");
            assert_eq!(Broken.transition(Ready, cause).is_ok(), cause == Unlock, "{cause:?}");
            assert_eq!(Maintenance.transition(Ready, cause).is_ok(), cause == Unlock, "{cause:?}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let says = |from: HostState, to, cause| from.transition(to, cause).unwrap_err().to_string();
        assert_eq!(
            says(Broken, Leased, Lease),
            "the host is broken (quarantined): only an admin unlock returns it to ready"
        );
        assert_eq!(
            says(Maintenance, Leased, Lease),
            "the host is in maintenance: only an admin unlock returns it to ready"
        );
        assert_eq!(says(Ready, Ready, Unlock), "the host is already ready");
        assert_eq!(
            says(Leased, Ready, Unlock),
            "the host is leased, not locked: only broken hosts and hosts in maintenance are unlocked"
        );
        assert_eq!(
            says(Leased, Maintenance, Lock),
            "the host is leased: a lock takes effect when its job ends"
        );
        assert_eq!(
            says(Repairing, Leased, Lease),
            "the host is being repaired: only a ready host can be leased"
        );
        assert_eq!(says(Maintenance, Maintenance, Lock), "the host is already in maintenance");
        assert_eq!(says(Ready, Ready, Repaired), "the host is already ready");
        assert_eq!(says(Leased, Ready, Repaired), "a finished repair does not take a leased host to ready");
    }

    #[test]
    fn labels_are_lowercase_once_without_the_implicit_ones() {
        let labels =
            |l: &[&str], arch| normalize_labels(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>(), arch);
        assert_eq!(
            labels(&["AMD64", "self-hosted", "hostprovisioning", "amd64", "Linux", "x64"], Arch::X64)
                .unwrap(),
            ["amd64", "hostprovisioning"]
        );
        assert_eq!(labels(&["arm64"], Arch::Arm64).unwrap(), Vec::<String>::new());
        let err = labels(&["arm64"], Arch::X64).unwrap_err().to_string();
        assert_eq!(err, "`arm64` is an architecture label: set the host's arch to `arm64` instead");
        assert!(labels(&["two words"], Arch::X64).is_err());
        assert!(labels(&[""], Arch::X64).is_err());
        let many: Vec<String> = (0..=MAX_HOST_LABELS).map(|i| format!("l{i}")).collect();
        let err = normalize_labels(&many, Arch::X64).unwrap_err().to_string();
        assert_eq!(err, "a host has at most 100 labels of its own");
        assert_eq!(normalize_labels(&many[1..], Arch::X64).unwrap().len(), MAX_HOST_LABELS);
        let repeated: Vec<String> = (0..1000).map(|i| format!("l{}", i % 3)).collect();
        assert_eq!(normalize_labels(&repeated, Arch::X64).unwrap(), ["l0", "l1", "l2"]);
    }

    #[test]
    fn host_names_are_safe_in_urls_and_cobbler() {
        assert!(is_host_name("foo-amd.example.com"));
        assert!(is_host_name("node_7"));
        for bad in ["", "-x", ".x", "a/b", "a b", "ä", &"x".repeat(254)] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }

    async fn inventory() -> (tempfile::TempDir, Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
        (dir, Inventory::new(store))
    }

    fn config_host(name: &str, labels: &[&str]) -> HostConfig {
        HostConfig {
            name: name.into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            address: None,
            port: 22,
            cobbler_system: None,
            arch: Arch::X64,
        }
    }

    /// A job to lease hosts to (leases reference jobs).
    async fn job(store: &Store) -> i64 {
        use crate::store::{NewJob, NewRun};
        let mut tx = store.begin().await.unwrap();
        let run = tx
            .insert_run(&NewRun {
                repo: "lab/qemu",
                workflow: "workflows/ci.yml",
                workflow_name: "CI",
                event: "push",
                head_sha: "abc",
                check_sha: "abc",
                git_ref: "refs/heads/master",
                ..Default::default()
            })
            .await
            .unwrap();
        let job = tx
            .insert_job(
                run.run_id,
                &NewJob {
                    job_key: "build",
                    name: "build",
                    runs_on: &["amd64".to_owned()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        job
    }

    #[tokio::test]
    async fn the_config_is_applied_at_every_start() {
        let (_dir, inventory) = inventory().await;
        let hosts = inventory
            .sync_config(&[config_host("a", &["amd64"]), config_host("b", &["intel64"])])
            .await
            .unwrap();
        assert_eq!(
            hosts.iter().map(|h| (h.name.as_str(), h.source)).collect::<Vec<_>>(),
            [("a", HostSource::Config), ("b", HostSource::Config)]
        );
        assert_eq!(hosts[0].all_labels(), ["self-hosted", "linux", "x64", "amd64"]);
        inventory.lock("b", "new disk").await.unwrap();
        inventory.add(&HostSpec { name: "c".into(), ..HostSpec::default() }).await.unwrap();

        // Next start: `a` has a new label, `b` left the config, `c` is the API's.
        let hosts = inventory.sync_config(&[config_host("a", &["amd64", "hostprovisioning"])]).await.unwrap();
        let names: Vec<_> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(hosts[0].labels, ["amd64", "hostprovisioning"]);
        let history = inventory.history("a", 10).await.unwrap();
        assert_eq!(history.len(), 1, "a description change is no transition: {history:?}");
        assert_eq!((history[0].from, history[0].to, history[0].actor.as_str()), (None, Ready, "config"));

        // A busy host that left the config stays until it is idle, as an API host.
        let job = job(&inventory.store).await;
        inventory.lease("a", job, 1_000).await.unwrap();
        let hosts = inventory.sync_config(&[]).await.unwrap();
        let kept: Vec<_> = hosts.iter().map(|h| (h.name.as_str(), h.source, h.state)).collect();
        assert_eq!(kept, [("a", HostSource::Api, Leased), ("c", HostSource::Api, Ready)]);

        let err = inventory.sync_config(&[config_host("bad name", &[])]).await.unwrap_err();
        assert!(err.to_string().starts_with("[[host]] `bad name`: "), "{err}");
    }

    #[tokio::test]
    async fn config_hosts_are_not_edited_or_removed_through_the_api() {
        let (_dir, inventory) = inventory().await;
        inventory.sync_config(&[config_host("a", &["amd64"])]).await.unwrap();
        let err = inventory.remove("a").await.unwrap_err();
        assert!(matches!(err, InventoryError::ConfigHost { what: "remove", .. }), "{err}");
        let edit = HostEdit { port: Some(2222), ..HostEdit::default() };
        assert!(matches!(inventory.edit("a", &edit).await, Err(InventoryError::ConfigHost { .. })));
        // Locks are for every host.
        assert_eq!(inventory.lock("a", "bios update").await.unwrap().state, Maintenance);
        assert!(matches!(inventory.remove("nope").await, Err(InventoryError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_lease_ends_ready_or_in_the_lock_that_waited_for_it() {
        let (_dir, inventory) = inventory().await;
        inventory
            .add(&HostSpec { name: "h".into(), labels: vec!["amd64".into()], ..HostSpec::default() })
            .await
            .unwrap();
        let job = job(&inventory.store).await;
        let mut events = inventory.clone().subscribe();
        let host = inventory.lease("h", job, 1_000).await.unwrap();
        assert_eq!(events.try_recv().unwrap(), HostEvent::Changed(host.clone()));
        assert_eq!((host.state, host.job_id, host.lease_expires_at), (Leased, Some(job), Some(1_000)));
        assert!(matches!(inventory.lease("h", job, 2_000).await, Err(InventoryError::Refused { .. })));
        assert_eq!(inventory.expired_leases(999).await.unwrap().len(), 0);
        assert_eq!(inventory.expired_leases(1_001).await.unwrap()[0].name, "h");
        assert_eq!(inventory.renew_lease("h", job, 5_000).await.unwrap().lease_expires_at, Some(5_000));
        assert!(matches!(
            inventory.renew_lease("h", job + 1, 5_000).await,
            Err(InventoryError::NotLeasedTo { .. })
        ));
        assert!(matches!(inventory.remove("h").await, Err(InventoryError::Busy { state: Leased, .. })));

        // Locked during the job: the job goes on, the lock waits for its end.
        let host = inventory.lock("h", "firmware update").await.unwrap();
        assert_eq!((host.state, host.pending_lock.as_deref()), (Leased, Some("firmware update")));
        let host = inventory.release("h", job).await.unwrap();
        assert_eq!(
            (host.state, host.state_reason.as_str(), host.job_id),
            (Maintenance, "firmware update", None)
        );
        assert_eq!(host.pending_lock, None);
        let host = inventory.unlock("h").await.unwrap();
        assert_eq!(host.state, Ready);

        inventory.lease("h", job, 1_000).await.unwrap();
        assert_eq!(inventory.release("h", job).await.unwrap().state, Ready);
        let history: Vec<_> = inventory
            .history("h", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.from.map(HostState::as_str), e.to.as_str(), e.reason, e.actor))
            .collect();
        let owned =
            |f: Option<&'static str>, t: &'static str, r: &str, a: &str| (f, t, r.to_owned(), a.to_owned());
        assert_eq!(
            history,
            [
                owned(None, "ready", "added", "admin"),
                owned(Some("ready"), "leased", &format!("job {job}"), "farm"),
                owned(Some("leased"), "maintenance", "firmware update", "farm"),
                owned(Some("maintenance"), "ready", "unlocked", "admin"),
                owned(Some("ready"), "leased", &format!("job {job}"), "farm"),
                owned(Some("leased"), "ready", &format!("job {job} ended"), "farm"),
            ]
        );
        inventory.remove("h").await.unwrap();
        assert!(inventory.list().await.unwrap().is_empty());
        let mut last = None;
        while let Ok(event) = events.try_recv() {
            last = Some(event);
        }
        assert_eq!(last, Some(HostEvent::Removed("h".into())));
    }

    #[tokio::test]
    async fn failures_in_a_row_quarantine_a_host_until_unlocked() {
        let (_dir, inventory) = inventory().await;
        inventory.add(&HostSpec { name: "h".into(), ..HostSpec::default() }).await.unwrap();
        let job = job(&inventory.store).await;
        inventory.lease("h", job, 1_000).await.unwrap();
        let host = inventory.infra_failure("h", "SSH connection lost").await.unwrap();
        assert_eq!((host.state, host.consecutive_failures, host.job_id), (Repairing, 1, None));
        let host = inventory.repair_failed("h", "install timed out").await.unwrap();
        assert_eq!((host.state, host.consecutive_failures), (Repairing, 2));
        let host = inventory.repair_failed("h", "install timed out").await.unwrap();
        assert_eq!(host.state, Broken);
        assert_eq!(host.state_reason, "3 infrastructure failures in a row, the last: install timed out");
        assert!(matches!(inventory.lease("h", job, 1).await, Err(InventoryError::Refused { .. })));
        assert!(matches!(inventory.repaired("h").await, Err(InventoryError::Refused { .. })));
        let host = inventory.unlock("h").await.unwrap();
        assert_eq!((host.state, host.consecutive_failures), (Ready, 0));
        let err = inventory.unlock("h").await.unwrap_err().to_string();
        assert_eq!(err, "host `h`: the host is already ready");

        // Repaired: ready, the count kept until a job ends well.
        inventory.infra_failure("h", "unreachable").await.unwrap();
        let host = inventory.repaired("h").await.unwrap();
        assert_eq!((host.state, host.consecutive_failures), (Ready, 1));
        inventory.lease("h", job, 1_000).await.unwrap();
        assert_eq!(inventory.release("h", job).await.unwrap().consecutive_failures, 0);

        // A lapsed lease: repaired before the next job, not counted against the host.
        inventory.lease("h", job, 1_000).await.unwrap();
        assert!(matches!(
            inventory.recover_lease("h", job, 1_000).await,
            Err(InventoryError::NotLeasedTo { .. })
        ));
        let host = inventory.recover_lease("h", job, 1_001).await.unwrap();
        assert_eq!((host.state, host.job_id, host.consecutive_failures), (Repairing, None, 0));
        assert_eq!(host.state_reason, format!("the lease of job {job} lapsed"));
        assert!(matches!(
            inventory.recover_lease("h", job, 1_001).await,
            Err(InventoryError::NotLeasedTo { .. })
        ));
    }

    #[tokio::test]
    async fn placement_hears_of_every_change() {
        use crate::farm::scheduler::{Condition, Decision, JobSpec};
        let (_dir, inventory) = inventory().await;
        let mut events = inventory.subscribe();
        let mut placement = Scheduler::new();
        let mut apply = |placement: &mut Scheduler| {
            while let Ok(event) = events.try_recv() {
                event.apply_to(placement);
            }
        };
        let job = JobSpec {
            id: 1,
            run_id: 1,
            job_key: "build".into(),
            labels: vec!["self-hosted".into(), "amd64".into()],
            priority: 0,
            queued_at: 0,
            needs: Vec::new(),
            condition: Condition::default(),
            concurrency: None,
            run_concurrency: None,
            matrix: None,
        };
        assert!(placement.enqueue(job).is_empty());

        inventory.sync_config(&[config_host("a", &["AMD64"])]).await.unwrap();
        inventory.lock("a", "cabling").await.unwrap();
        apply(&mut placement);
        assert!(placement.place().is_empty(), "a host in maintenance takes no job");
        inventory.unlock("a").await.unwrap();
        apply(&mut placement);
        assert_eq!(placement.place(), [Decision::Lease { job: 1, host: "a".into() }]);
    }

    #[tokio::test]
    async fn labels_are_counted_by_state() {
        let (_dir, inventory) = inventory().await;
        inventory
            .sync_config(&[config_host("a", &["amd64"]), config_host("b", &["amd64", "intel64"])])
            .await
            .unwrap();
        inventory.lock("b", "x").await.unwrap();
        let counts = inventory.label_counts().await.unwrap();
        let amd64 = counts.iter().find(|c| c.label == "amd64").unwrap();
        assert_eq!((amd64.hosts, amd64.by_state[&Ready], amd64.by_state[&Maintenance]), (2, 1, 1));
        let labels: Vec<_> = counts.iter().map(|c| (c.label.as_str(), c.hosts)).collect();
        assert_eq!(labels, [("amd64", 2), ("intel64", 1), ("linux", 2), ("self-hosted", 2), ("x64", 2)]);
    }
}
