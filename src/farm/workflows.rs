//! The workflow files a repository runs: the farm's own (`[[repo]] workflows`, glob
//! patterns). Files are read fresh for every event, so an edited suite applies to the
//! next push without a restart.

use std::path::PathBuf;

use crate::config::Config;

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

/// Paths relative to the config's folder read as they are written in the config.
fn display_path(config: &Config, path: &std::path::Path) -> String {
    path.strip_prefix(&config.base_dir).unwrap_or(path).display().to_string()
}
