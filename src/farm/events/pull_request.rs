//! `pull_request`: opened, synchronize, reopened, closed… Runs the workflows whose
//! `on.pull_request` types and filters match, reporting on the pull request's head commit.
//!
//! A pull request from a fork runs code its author wrote on the farm's hosts, so the
//! farm asks the forge whether the author has write access. Without it the runs are
//! recorded but wait: their check runs ask for "Approve and run" (see `check_run`).
//! Fork runs never get secrets, approved or not.

use http::Method;
use octocrab::models::webhook_events::payload::PullRequestWebhookEventPayload;
use serde_json::Value as Json;

use super::{Delivered, HandlerError};
use crate::farm::start::{start_runs_with, EventOrigin, Trust};
use crate::farm::workflows::event_workflows;
use crate::farm::Farm;
use crate::forge::api::{send, ForgeError};
use crate::store::{Approval, Tx};

pub(super) async fn handle(
    farm: &Farm,
    tx: &mut Tx,
    delivery: &Delivered<'_>,
    pull: &PullRequestWebhookEventPayload,
) -> Result<String, HandlerError> {
    let repo = delivery.repo()?;
    let head = &pull.pull_request.head;
    let origin = EventOrigin {
        repo,
        installation_id: delivery.installation_id(),
        delivery_id: Some(delivery.id),
        check_sha: &head.sha,
        attempt_of: None,
        priority: 0,
    };
    // The forge is asked before anything is written, so a postponed delivery holds no lock.
    let head_repo = head.repo.as_ref().and_then(|head_repo| head_repo.full_name.as_deref());
    let (trust, gate) = if is_from_fork(head_repo, repo) {
        let author = pull.pull_request.user.as_ref().map_or("", |user| user.login.as_str());
        let access = write_access(farm, origin.installation_id, repo, author).await?;
        let approval = if access.write { Approval::None } else { Approval::Required };
        let gate = match approval {
            Approval::Required => {
                format!("; from a fork by @{author} ({}): waiting for approval", access.said)
            }
            _ => format!("; from a fork by @{author} ({})", access.said),
        };
        (Trust { fork: true, approval }, gate)
    } else {
        (Trust::default(), String::new())
    };
    let files = event_workflows(farm, repo, origin.installation_id, &head.sha).await?;
    let started = start_runs_with(tx, &delivery.event(), &origin, &files, trust).await?;
    Ok(format!("{}{gate}", started.describe()))
}

/// A pull request is from a fork when its head (`head_repo`, the full name) is in
/// another repository, or in one that no longer exists (a deleted fork).
fn is_from_fork(head_repo: Option<&str>, repo: &str) -> bool {
    match head_repo {
        Some(head_repo) => !head_repo.eq_ignore_ascii_case(repo),
        None => true,
    }
}

/// What the forge said about a user's access to a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Access {
    pub write: bool,
    /// The forge's answer (or why there was none), for the delivery's outcome.
    pub said: String,
}

/// Whether `login` has write access to `repo` (`admin`, `maintain` and `write` count),
/// asked from the forge as the App's installation. A forge that cannot answer now
/// postpones the delivery; one that cannot answer at all (no forge configured, no
/// installation, a refusal such as an unknown user) means no write access, so nothing
/// runs unapproved.
pub(super) async fn write_access(
    farm: &Farm,
    installation_id: Option<i64>,
    repo: &str,
    login: &str,
) -> Result<Access, HandlerError> {
    let no = |said: String| Ok(Access { write: false, said });
    let Some(app) = farm.forge.as_ref() else {
        return no("no forge configured to ask".into());
    };
    let Some(installation_id) = installation_id else {
        return no("the event named no App installation to ask as".into());
    };
    if login.is_empty() {
        return no("no user named".into());
    }
    let asked = async {
        let client = app.installation(installation_id).await?;
        let route = format!("/repos/{repo}/collaborators/{}/permission", path_segment(login));
        send(&client, Method::GET, &route, None).await
    };
    match asked.await {
        Ok(answer) => {
            let permission = answer.get("permission").and_then(Json::as_str).unwrap_or("none");
            let write = matches!(permission, "admin" | "maintain" | "write");
            Ok(Access { write, said: permission.to_owned() })
        }
        Err(err @ (ForgeError::Transient(_) | ForgeError::RateLimited(_))) => {
            Err(HandlerError::ForgeUnavailable(err))
        }
        Err(err @ (ForgeError::NotFound(_) | ForgeError::Permanent(_) | ForgeError::Config(_))) => {
            tracing::warn!(%err, login, repo, "the forge did not tell a user's permission; taken as none");
            no(format!("unknown: {err}"))
        }
    }
}

/// `text` as one URL path segment (bot logins such as `dependabot[bot]` have brackets).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_is_another_or_a_deleted_head_repository() {
        assert!(!is_from_fork(Some("lab/qemu"), "lab/qemu"));
        assert!(!is_from_fork(Some("Lab/QEMU"), "lab/qemu"));
        assert!(is_from_fork(Some("someone/qemu"), "lab/qemu"));
        assert!(is_from_fork(None, "lab/qemu"));
    }

    #[test]
    fn logins_are_escaped_in_paths() {
        assert_eq!(path_segment("octo-cat_1.x"), "octo-cat_1.x");
        assert_eq!(path_segment("dependabot[bot]"), "dependabot%5Bbot%5D");
    }
}
