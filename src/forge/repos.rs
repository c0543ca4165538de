//! Repository reads through the forge's API: what a ref points at.

use http::Method;
use octocrab::Octocrab;

use super::api::{send, ForgeError};

/// The commit `git_ref` (`refs/heads/main`, `refs/tags/v1`, a branch name) points at.
pub async fn resolve_commit(client: &Octocrab, repo: &str, git_ref: &str) -> Result<String, ForgeError> {
    let name =
        git_ref.strip_prefix("refs/heads/").or_else(|| git_ref.strip_prefix("refs/tags/")).unwrap_or(git_ref);
    // One path segment: a branch like `feature/x` travels as `feature%2Fx`.
    let name = name.replace('%', "%25").replace('/', "%2F");
    let answer = send(client, Method::GET, &format!("/repos/{repo}/commits/{name}"), None).await?;
    answer
        .get("sha")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ForgeError::Permanent(format!("{repo}: no commit for {git_ref}")))
}
