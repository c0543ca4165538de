//! `installation` and `installation_repositories`: the App was installed, removed or
//! given other repositories. Installation ids come with every event, so there is
//! nothing to keep; the outcome records what happened, for the logs.

use octocrab::models::webhook_events::EventInstallation;

use super::{action_name, Delivered};

/// The outcome of either event, whose `action` is `action`.
pub(super) fn installation(delivery: &Delivered<'_>, action: &impl serde::Serialize) -> String {
    let id = delivery.installation_id().map_or("?".to_owned(), |id| id.to_string());
    // These events carry the full installation, with its account.
    let account = match &delivery.webhook.installation {
        Some(EventInstallation::Full(installation)) => installation.account.login.as_str(),
        _ => "?",
    };
    format!("{} {}: installation {id} of {account}", delivery.event, action_name(action))
}
