//! The control plane: the only module that ties the store, the forge, the workflow
//! language and (later) the hosts together.

pub mod cron;
pub mod deliveries;
pub mod dispatch;
pub mod events;
pub mod hosts;
pub mod repair;
pub mod report;
pub mod reporter;
pub mod rerun;
pub mod runner;
pub mod scheduler;
pub mod start;
pub mod workflows;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::config::Config;
use crate::exec::keys::{load_or_generate_farm_key, openssh_public_key, KeyError, PrivateKey};
use crate::forge::app::GithubApp;
use crate::provision::{Announcements, HostProvisioning, Provisioner};
use crate::store::JobLogs;
use crate::store::Store;
use dispatch::Dispatcher;
use hosts::Inventory;
use runner::RunningJobs;

/// What the farm's tasks share.
pub struct Farm {
    pub config: Arc<Config>,
    pub store: Store,
    /// Woken when a delivery is stored.
    pub deliveries_waiting: Arc<Notify>,
    /// Woken when check-run states are queued.
    pub outbox_waiting: Arc<Notify>,
    /// The GitHub App the farm acts as, when configured.
    pub forge: Option<Arc<GithubApp>>,
    /// The hosts; clones share its stream of changes.
    pub inventory: Inventory,
    /// The way to the scheduler's driver task ([`dispatch::run_forever`]).
    pub dispatcher: Dispatcher,
    /// The jobs this process runs on hosts.
    pub running: RunningJobs,
    /// The jobs' log files.
    pub logs: JobLogs,
    /// The key the farm logs in to hosts with, loaded (or generated) at first use.
    ssh_key: tokio::sync::OnceCell<Arc<PrivateKey>>,
    /// What reinstalls hosts (`[cobbler]`), when the lab has it.
    pub provisioner: Option<Arc<dyn Provisioner>>,
    /// The installs waiting for their new system to announce its host key.
    pub announcements: Arc<Announcements>,
    /// Reinstalls asked for by an admin, and the repair loop's backoff.
    pub repairs: repair::Repairs,
    /// The address `serve` listens on, once bound.
    listen_addr: OnceLock<SocketAddr>,
}

impl Farm {
    /// A farm on `store`, reporting as `forge` when there is one.
    pub fn new(config: Config, store: Store, forge: Option<Arc<GithubApp>>) -> Farm {
        let logs = JobLogs::in_data_dir(&config.server.data_dir, config.server.job_log_limit);
        let inventory = Inventory::new(store.clone()).with_broken_after(config.server.broken_after);
        Farm {
            config: Arc::new(config),
            store: store.clone(),
            deliveries_waiting: Arc::new(Notify::new()),
            outbox_waiting: Arc::new(Notify::new()),
            forge,
            inventory,
            dispatcher: Dispatcher::default(),
            running: RunningJobs::default(),
            logs,
            ssh_key: tokio::sync::OnceCell::new(),
            provisioner: None,
            announcements: Arc::new(Announcements::default()),
            repairs: repair::Repairs::default(),
            listen_addr: OnceLock::new(),
        }
    }

    /// The farm reinstalls its hosts through `provisioner`.
    pub fn with_provisioner(mut self, provisioner: Arc<dyn Provisioner>) -> Farm {
        self.provisioner = Some(provisioner);
        self
    }

    /// Where `serve` listens (the default base of the install announcements).
    pub fn set_listen_addr(&self, addr: SocketAddr) {
        let _ = self.listen_addr.set(addr);
    }

    /// How `host` is reinstalled, when the farm has a provisioner.
    pub fn host_provisioning(&self, host: &hosts::Host) -> Option<HostProvisioning> {
        let provisioner = self.provisioner.clone()?;
        let cobbler = self.config.cobbler.as_ref()?;
        Some(HostProvisioning {
            provisioner,
            announcements: self.announcements.clone(),
            system: host.cobbler_system.clone(),
            default_profile: cobbler.default_profile.clone(),
            install_timeout: cobbler.install_timeout,
            announce_url: self.announce_url(),
            poll_interval: std::time::Duration::from_secs(1),
        })
    }

    /// The farm's base URL as hosts reach it: `[cobbler] announce_url`, else the
    /// address `serve` listens on (unless that is a wildcard), else `[server] public_url`.
    fn announce_url(&self) -> String {
        if let Some(url) = self.config.cobbler.as_ref().and_then(|c| c.announce_url.clone()) {
            return url.trim_end_matches('/').to_owned();
        }
        match self.listen_addr.get() {
            Some(addr) if !addr.ip().is_unspecified() => format!("http://{addr}"),
            _ => self.config.server.public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The farm's SSH key: `[ssh] private_key_file`, by default `farm_ed25519` in the
    /// data folder, generated there when it does not exist (once, even when many jobs
    /// start at the same time).
    pub async fn ssh_key(&self) -> Result<Arc<PrivateKey>, KeyError> {
        let key = self
            .ssh_key
            .get_or_try_init(|| async {
                let path = self.ssh_key_path();
                let path_shown = path.display().to_string();
                let key =
                    tokio::task::spawn_blocking(move || load_or_generate_farm_key(&path)).await.map_err(
                        |e| KeyError::Io { path: path_shown.into(), source: std::io::Error::other(e) },
                    )??;
                tracing::info!(public_key = %openssh_public_key(key.public_key()), "the farm's SSH key");
                Ok::<_, KeyError>(Arc::new(key))
            })
            .await?;
        Ok(key.clone())
    }

    /// Where the farm's SSH key lives.
    pub fn ssh_key_path(&self) -> PathBuf {
        self.config
            .ssh
            .private_key_file
            .clone()
            .unwrap_or_else(|| self.config.server.data_dir.join("farm_ed25519"))
    }
}
