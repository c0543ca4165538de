//! The control plane: the only module that ties the store, the forge, the workflow
//! language and (later) the hosts together.

pub mod cron;
pub mod deliveries;
pub mod dispatch;
pub mod events;
pub mod hosts;
pub mod reporter;
pub mod rerun;
pub mod scheduler;
pub mod start;
pub mod workflows;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::forge::app::GithubApp;
use crate::store::Store;
use dispatch::Dispatcher;
use hosts::Inventory;

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
}

impl Farm {
    /// A farm on `store`, reporting as `forge` when there is one.
    pub fn new(config: Config, store: Store, forge: Option<Arc<GithubApp>>) -> Farm {
        Farm {
            config: Arc::new(config),
            store: store.clone(),
            deliveries_waiting: Arc::new(Notify::new()),
            outbox_waiting: Arc::new(Notify::new()),
            forge,
            inventory: Inventory::new(store.clone()),
            dispatcher: Dispatcher::default(),
        }
    }
}
