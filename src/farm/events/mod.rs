//! One handler per kind of forge event, as bors has them. The delivery processor reads
//! a stored delivery as its typed event ([`Delivered::read`]) and opens the
//! transaction; a handler reads what it needs from the typed event, records what the
//! event causes in the transaction and returns the outcome text kept with the
//! delivery. A handler may ask the forge first (a dispatch's commit, a user's
//! permission): if the forge is unavailable the transaction is dropped and the
//! delivery stays unprocessed, to be tried again.

mod check_run;
mod check_suite;
mod installation;
mod pull_request;
mod push;
mod workflow_dispatch;

use octocrab::models::webhook_events::{WebhookEvent, WebhookEventPayload};
use serde_json::Value as Json;

use super::Farm;
use crate::forge::api::ForgeError;
use crate::forge::webhook::{parse_event, PayloadError};
use crate::store::{Delivery, StoreError, Tx};
use crate::workflow::event::Event;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event asks for nothing (the text says why): the delivery is done.
    #[error("{0}")]
    Nothing(String),
    /// The forge could not answer now: process the delivery again later.
    #[error("the forge is unavailable: {0}")]
    ForgeUnavailable(ForgeError),
}

/// A stored delivery, read: what the handlers get.
pub struct Delivered<'a> {
    pub id: &'a str,
    /// `X-GitHub-Event`.
    pub event: &'a str,
    /// The payload exactly as the forge sent it: what a workflow sees as `github.event`
    /// (never rebuilt from the typed event, which drops what octocrab does not model).
    pub payload: Json,
    /// The same payload as octocrab's typed event: what the handlers read.
    pub webhook: WebhookEvent,
}

impl<'a> Delivered<'a> {
    /// Reads `delivery` both ways; an error says why it cannot be acted on.
    pub fn read(delivery: &'a Delivery) -> Result<Delivered<'a>, PayloadError> {
        let webhook = parse_event(&delivery.event, &delivery.body)?;
        let payload = serde_json::from_str(&delivery.body).map_err(PayloadError::NotJson)?;
        Ok(Delivered { id: &delivery.id, event: &delivery.event, payload, webhook })
    }

    /// `repository.full_name`.
    fn repo(&self) -> Result<&str, HandlerError> {
        self.webhook
            .repository
            .as_ref()
            .and_then(|repo| repo.full_name.as_deref())
            .ok_or_else(|| HandlerError::Nothing("payload without repository.full_name".to_owned()))
    }

    /// `installation.id`, when the forge sent one.
    fn installation_id(&self) -> Option<i64> {
        self.webhook.installation.as_ref().and_then(|installation| i64::try_from(installation.id().0).ok())
    }

    /// `sender.login`, or "" when the forge named no sender.
    fn sender(&self) -> &str {
        self.webhook.sender.as_ref().map_or("", |sender| sender.login.as_str())
    }

    /// The payload as the workflow language sees an event.
    fn event(&self) -> Event {
        Event::new(self.event, self.payload.clone())
    }
}

pub async fn handle(farm: &Farm, tx: &mut Tx, delivery: Delivered<'_>) -> Result<String, HandlerError> {
    match &delivery.webhook.specific {
        WebhookEventPayload::Ping(_) => Ok("pong".to_owned()),
        WebhookEventPayload::Push(push) => push::handle(farm, tx, &delivery, push).await,
        WebhookEventPayload::PullRequest(pull) => pull_request::handle(farm, tx, &delivery, pull).await,
        WebhookEventPayload::WorkflowDispatch(dispatch) => {
            workflow_dispatch::handle(farm, tx, &delivery, dispatch).await
        }
        WebhookEventPayload::CheckRun(check_run) => check_run::handle(farm, tx, &delivery, check_run).await,
        WebhookEventPayload::CheckSuite(suite) => check_suite::handle(farm, tx, &delivery, suite).await,
        WebhookEventPayload::Installation(installation) => {
            Ok(installation::installation(&delivery, &installation.action))
        }
        WebhookEventPayload::InstallationRepositories(repositories) => {
            Ok(installation::installation(&delivery, &repositories.action))
        }
        _ => Ok(format!("{}: nothing to do", delivery.event)),
    }
}

/// An action as the forge spells it (`rerequested`, `new_permissions_accepted`):
/// octocrab's action enums serialize to their wire names.
fn action_name(action: &impl serde::Serialize) -> String {
    match serde_json::to_value(action) {
        Ok(Json::String(name)) => name,
        _ => "?".to_owned(),
    }
}
