//! `installation` and `installation_repositories`: the App was installed, removed or
//! given other repositories. Installation ids come with every event, so there is
//! nothing to keep; the outcome records what happened, for the logs.

use serde_json::Value as Json;

use super::{installation_of, Delivered, HandlerError};

pub(super) fn handle(delivery: &Delivered<'_>) -> Result<String, HandlerError> {
    let action = delivery.payload.get("action").and_then(Json::as_str).unwrap_or("?");
    let account =
        delivery.payload.pointer("/installation/account/login").and_then(Json::as_str).unwrap_or("?");
    let id = installation_of(&delivery.payload).map_or("?".to_owned(), |i| i.to_string());
    Ok(format!("{} {action}: installation {id} of {account}", delivery.event))
}
