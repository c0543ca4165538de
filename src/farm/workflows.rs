//! The workflow files a repository runs: the farm's own (`[[repo]] workflows`, glob
//! patterns). Files are read fresh for every event, so an edited suite applies to the
//! next push without a restart.

use std::path::PathBuf;

use crate::config::Config;
use crate::farm::events::HandlerError;
use crate::farm::Farm;
use crate::forge::api::ForgeError;
use crate::forge::repos::workflow_files_at;

/// A workflow file as read: its path as shown to users, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowFile {
    pub path: String,
    pub text: String,
}

/// The farm-side workflow files of `repo`, sorted by path. A repository without a
/// `[[repo]]` entry uses `workflows/*.yml` beside the config (the embedded default)
/// only when no repository is configured at all; otherwise it runs nothing.
pub fn farm_workflows(config: &Config, repo: &str) -> Vec<WorkflowFile> {
    let patterns: Vec<String> = match config.repos.iter().find(|r| r.name.eq_ignore_ascii_case(repo)) {
        Some(entry) => entry.workflows.clone(),
        None if config.repos.is_empty() => config.default_workflow_patterns(),
        None => Vec::new(),
    };
    let mut paths: Vec<PathBuf> = patterns
        .iter()
        .filter_map(|pattern| match glob::glob(pattern) {
            Ok(paths) => Some(paths.filter_map(Result::ok)),
            Err(err) => {
                tracing::warn!(pattern, %err, "bad workflow pattern in the config");
                None
            }
        })
        .flatten()
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Some(WorkflowFile { path: display_path(config, &path), text }),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot read a workflow file");
                None
            }
        })
        .collect()
}

/// The workflows an event on commit `sha` of `repo` may start: the farm's, and with
/// `repo_workflows` on, the repository's own `.github/workflows` at that commit.
pub async fn event_workflows(
    farm: &Farm,
    repo: &str,
    installation_id: Option<i64>,
    sha: &str,
) -> Result<Vec<WorkflowFile>, HandlerError> {
    let mut files = farm_workflows(&farm.config, repo);
    let wants_repo_files =
        farm.config.repos.iter().any(|r| r.name.eq_ignore_ascii_case(repo) && r.repo_workflows);
    if let (true, Some(app), Some(installation)) = (wants_repo_files, &farm.forge, installation_id) {
        let fetched =
            async { workflow_files_at(&app.installation(installation).await?, repo, sha).await }.await;
        match fetched {
            Ok(found) => files.extend(found.into_iter().map(|(path, text)| WorkflowFile { path, text })),
            Err(err @ (ForgeError::Transient(_) | ForgeError::RateLimited(_))) => {
                return Err(HandlerError::ForgeUnavailable(err))
            }
            Err(err) => tracing::warn!(%err, repo, sha, "cannot read the repository's workflows"),
        }
    }
    Ok(files)
}

/// Paths relative to the config's folder read as they are written in the config.
fn display_path(config: &Config, path: &std::path::Path) -> String {
    path.strip_prefix(&config.base_dir).unwrap_or(path).display().to_string()
}
