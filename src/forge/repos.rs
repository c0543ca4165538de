//! Repository reads through the forge's API: what a ref points at, the head of the
//! default branch, and the workflow files a commit carries.

use base64::Engine;
use http::Method;
use octocrab::Octocrab;
use serde_json::Value as Json;

use super::api::{send, ForgeError};

/// Where a repository keeps its workflows.
pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// The `*.yml`/`*.yaml` files of `.github/workflows` at commit `sha`, as (path, text),
/// sorted by path; none when the folder does not exist there.
pub async fn workflow_files_at(
    client: &Octocrab,
    repo: &str,
    sha: &str,
) -> Result<Vec<(String, String)>, ForgeError> {
    let listing =
        match send(client, Method::GET, &format!("/repos/{repo}/contents/{WORKFLOWS_DIR}?ref={sha}"), None)
            .await
        {
            Ok(listing) => listing,
            Err(ForgeError::NotFound(_)) => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
    let mut paths: Vec<String> = listing
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry.get("type").and_then(Json::as_str) == Some("file"))
        .filter_map(|entry| entry.get("path").and_then(Json::as_str))
        .filter(|path| path.ends_with(".yml") || path.ends_with(".yaml"))
        .map(str::to_owned)
        .collect();
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file =
            send(client, Method::GET, &format!("/repos/{repo}/contents/{path}?ref={sha}"), None).await?;
        let encoded = file.get("content").and_then(Json::as_str).unwrap_or_default();
        // The forge wraps base64 at 60 columns.
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| ForgeError::Permanent(format!("{repo}/{path}: content is not base64: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ForgeError::Permanent(format!("{repo}/{path}: not UTF-8 text")))?;
        files.push((path, text));
    }
    Ok(files)
}

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

/// The head of a repository's default branch, where scheduled runs run.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultBranchHead {
    /// The repository as the forge describes it: what event payloads carry as `repository`.
    pub repository: Json,
    /// The branch's short name (`master`).
    pub branch: String,
    pub sha: String,
}

/// The default branch of `repo` and the commit it points at now.
pub async fn default_branch_head(client: &Octocrab, repo: &str) -> Result<DefaultBranchHead, ForgeError> {
    let repository = send(client, Method::GET, &format!("/repos/{repo}"), None).await?;
    let branch = repository
        .get("default_branch")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ForgeError::Permanent(format!("{repo}: the forge names no default branch")))?;
    let sha = resolve_commit(client, repo, &branch).await?;
    Ok(DefaultBranchHead { repository, branch, sha })
}
