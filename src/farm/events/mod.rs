//! One handler per kind of forge event, as bors has them. The delivery processor opens
//! the transaction; a handler records what its event causes in it and returns the
//! outcome text kept with the delivery. A handler may ask the forge first (a dispatch's
//! commit, a user's permission): if the forge is unavailable the transaction is dropped
//! and the delivery stays unprocessed, to be tried again.

mod check_run;
mod check_suite;
mod installation;
mod pull_request;
mod push;
mod workflow_dispatch;

use serde_json::Value as Json;

use super::Farm;
use crate::forge::api::ForgeError;
use crate::store::{StoreError, Tx};
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

/// What a handler needs besides the store.
pub struct Delivered<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub payload: Json,
}

pub async fn handle(farm: &Farm, tx: &mut Tx, delivery: Delivered<'_>) -> Result<String, HandlerError> {
    match delivery.event {
        "ping" => Ok("pong".to_owned()),
        "push" => push::handle(farm, tx, &delivery).await,
        "pull_request" => pull_request::handle(farm, tx, &delivery).await,
        "workflow_dispatch" => workflow_dispatch::handle(farm, tx, &delivery).await,
        "check_run" => check_run::handle(farm, tx, &delivery).await,
        "check_suite" => check_suite::handle(farm, tx, &delivery).await,
        "installation" | "installation_repositories" => installation::handle(&delivery),
        other => Ok(format!("{other}: nothing to do")),
    }
}

/// `repository.full_name` of a payload.
fn repo_of(payload: &Json) -> Result<&str, HandlerError> {
    payload
        .pointer("/repository/full_name")
        .and_then(Json::as_str)
        .ok_or_else(|| HandlerError::Nothing("payload without repository.full_name".to_owned()))
}

/// `installation.id` of a payload, when the forge sent one.
fn installation_of(payload: &Json) -> Option<i64> {
    payload.pointer("/installation/id").and_then(Json::as_i64)
}

/// The payload as the workflow language sees an event.
fn event_of(delivery: &Delivered<'_>) -> Event {
    Event::new(delivery.event, delivery.payload.clone())
}
