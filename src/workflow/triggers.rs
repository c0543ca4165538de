//! Which workflows an event starts: the `on:` rules of GitHub Actions.
//!
//! - The event's name must be a key of `on:`.
//! - `push`: a branch push is filtered by `branches`/`branches-ignore`, a tag push by
//!   `tags`/`tags-ignore`. When only one kind of filter is written, pushes of the other
//!   kind of ref do not run the workflow; with neither, both run. `paths`/`paths-ignore`
//!   apply to branch pushes only and must hold as well. Deleting a ref runs nothing.
//! - `pull_request`/`pull_request_target`: `types` (default `opened`, `synchronize`,
//!   `reopened`), `branches`/`branches-ignore` against the base branch, `paths`.
//! - Paths are the files the push's commits list (`added`, `modified`, `removed`) or
//!   those the caller knows. When nothing is known of the diff (a pull request payload
//!   lists no files), the workflow runs, as GitHub runs it when it has no diff; when
//!   the diff is known and empty, it does not.
//! - `workflow_dispatch`: the payload's `workflow` names the one file it starts.
//! - `schedule`: the payload's `schedule` names the cron that fired; [`due_schedules`]
//!   tells which entries fire at a given minute.
//! - A push whose head commit's message says `[skip ci]`, `[ci skip]`, `[no ci]`,
//!   `[skip actions]` or `[actions skip]`, or ends with a `skip-checks: true` trailer,
//!   starts no `push` workflow. (For a pull request the head commit's message is not in
//!   the payload.)
//! - `workflow_run`: `types`, `workflows` (the finished workflow's name) and
//!   `branches`/`branches-ignore` against its head branch.
//! - Any other event (`repository_dispatch`, `issues`, …): its `types`, if written,
//!   must list the payload's `action` (for `repository_dispatch`, its event type).

use crate::workflow::cron::Schedule;
use crate::workflow::diag::Pos;
use crate::workflow::event::{Event, RefKind};
use crate::workflow::filters::{Filter, FilterError};
use crate::workflow::model::{EventConfig, Text, Workflow};

/// Why a workflow runs for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The key of `on:` that matched.
    pub event: String,
    /// For `schedule`: the cron entry that fired.
    pub schedule: Option<String>,
}

/// A filter list in the workflow that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {error}")]
pub struct TriggerError {
    pub pos: Pos,
    pub error: FilterError,
}

/// The activity types `pull_request` and `pull_request_target` run for by default.
pub const DEFAULT_PULL_REQUEST_TYPES: &[&str] = &["opened", "synchronize", "reopened"];

/// What the caller knows beyond the payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggerContext<'a> {
    /// The workflow file's path (as `workflow_dispatch` payloads name it).
    pub workflow_path: &'a str,
    /// The files the event changed, when known from outside the payload (e.g. a pull
    /// request's diff). Otherwise a push's commit lists are used.
    pub changed_files: Option<&'a [String]>,
}

/// Whether `workflow` runs for `event`, and why.
pub fn triggers(
    workflow: &Workflow,
    event: &Event,
    cx: &TriggerContext<'_>,
) -> Result<Option<Trigger>, TriggerError> {
    let Some(config) = workflow.on.events.get(&event.name) else {
        return Ok(None);
    };
    let runs = match event.name.as_str() {
        "push" => push_runs(config, event, cx)?,
        "pull_request" | "pull_request_target" => pull_request_runs(config, event, cx)?,
        "workflow_dispatch" => dispatch_targets(event, cx.workflow_path),
        "workflow_run" => workflow_run_runs(config, event)?,
        "schedule" => {
            let fired = event.payload.get("schedule").and_then(|s| s.as_str());
            let entry = config.schedule.iter().find(|e| fired.is_none_or(|f| e.cron.value == f));
            return Ok(
                entry.map(|e| Trigger { event: event.name.clone(), schedule: Some(e.cron.value.clone()) })
            );
        }
        _ => types_allow(config.types.as_deref(), event.activity_type(), &[]),
    };
    Ok(runs.then(|| Trigger { event: event.name.clone(), schedule: None }))
}

/// The `schedule` entries of `workflow` that fire in the minute containing
/// `unix_seconds`, read in UTC as DESIGN.md fixes it (an entry's `timezone:`, which
/// GitHub's parser accepts, is not applied). Entries whose cron does not parse never
/// fire.
pub fn due_schedules(workflow: &Workflow, unix_seconds: i64) -> Vec<String> {
    let Some(config) = workflow.on.events.get("schedule") else {
        return Vec::new();
    };
    config
        .schedule
        .iter()
        .filter(|e| Schedule::parse(&e.cron.value).is_ok_and(|s| s.matches_unix(unix_seconds)))
        .map(|e| e.cron.value.clone())
        .collect()
}

fn push_runs(config: &EventConfig, event: &Event, cx: &TriggerContext<'_>) -> Result<bool, TriggerError> {
    if event.payload.get("deleted").and_then(|d| d.as_bool()) == Some(true) {
        return Ok(false);
    }
    let head_message = event.payload.pointer("/head_commit/message").and_then(|m| m.as_str());
    if head_message.is_some_and(skip_requested) {
        return Ok(false);
    }
    let Some(git_ref) = event.git_ref() else {
        return Ok(false);
    };
    let has_branch_filter = config.branches.is_some() || config.branches_ignore.is_some();
    let has_tag_filter = config.tags.is_some() || config.tags_ignore.is_some();
    let (include, ignore, other_kind_filtered) = match git_ref.kind {
        RefKind::Branch => (&config.branches, &config.branches_ignore, has_tag_filter),
        RefKind::Tag => (&config.tags, &config.tags_ignore, has_branch_filter),
    };
    let ref_ok = if include.is_some() || ignore.is_some() {
        list_allows(include.as_deref(), ignore.as_deref(), std::slice::from_ref(&git_ref.name))?
    } else {
        // Only the other kind is filtered: this kind does not run.
        !other_kind_filtered
    };
    if !ref_ok {
        return Ok(false);
    }
    // "Path filters are not evaluated for pushes of tags."
    if git_ref.kind == RefKind::Tag {
        return Ok(true);
    }
    paths_allow(config, event, cx)
}

fn pull_request_runs(
    config: &EventConfig,
    event: &Event,
    cx: &TriggerContext<'_>,
) -> Result<bool, TriggerError> {
    if !types_allow(config.types.as_deref(), event.activity_type(), DEFAULT_PULL_REQUEST_TYPES) {
        return Ok(false);
    }
    if config.branches.is_some() || config.branches_ignore.is_some() {
        let Some(base) = event.base_ref() else {
            return Ok(false);
        };
        if !list_allows(config.branches.as_deref(), config.branches_ignore.as_deref(), &[base.to_string()])? {
            return Ok(false);
        }
    }
    paths_allow(config, event, cx)
}

fn workflow_run_runs(config: &EventConfig, event: &Event) -> Result<bool, TriggerError> {
    if !types_allow(config.types.as_deref(), event.activity_type(), &[]) {
        return Ok(false);
    }
    let run = event.payload.get("workflow_run");
    let field = |key: &str| run.and_then(|r| r.get(key)).and_then(|v| v.as_str());
    if let Some(workflows) = &config.workflows {
        if !field("name").is_some_and(|name| workflows.iter().any(|w| w.value == name)) {
            return Ok(false);
        }
    }
    if config.branches.is_some() || config.branches_ignore.is_some() {
        let Some(branch) = field("head_branch") else {
            return Ok(false);
        };
        return list_allows(
            config.branches.as_deref(),
            config.branches_ignore.as_deref(),
            &[branch.to_string()],
        );
    }
    Ok(true)
}

fn paths_allow(config: &EventConfig, event: &Event, cx: &TriggerContext<'_>) -> Result<bool, TriggerError> {
    if config.paths.is_none() && config.paths_ignore.is_none() {
        return Ok(true);
    }
    let from_payload;
    let changed: &[String] = match cx.changed_files {
        Some(files) => files,
        None => match event.changed_paths() {
            Some(files) => {
                from_payload = files;
                &from_payload
            }
            // No diff known: GitHub runs the workflow.
            None => return Ok(true),
        },
    };
    if changed.is_empty() {
        return Ok(false);
    }
    list_allows(config.paths.as_deref(), config.paths_ignore.as_deref(), changed)
}

/// An include list selects if any name is selected; an ignore list rejects if every
/// name is ignored. (GitHub forbids writing both; if both are present, both apply.)
fn list_allows(
    include: Option<&[Text]>,
    ignore: Option<&[Text]>,
    names: &[String],
) -> Result<bool, TriggerError> {
    if let Some(patterns) = include {
        if !compile(patterns)?.includes_any(names) {
            return Ok(false);
        }
    }
    if let Some(patterns) = ignore {
        if compile(patterns)?.ignores_all(names) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn compile(patterns: &[Text]) -> Result<Filter, TriggerError> {
    let sources: Vec<&str> = patterns.iter().map(|p| p.value.as_str()).collect();
    Filter::new(&sources).map_err(|error| {
        let pos = patterns.iter().find(|p| p.value == error.pattern).map_or(Pos::default(), |p| p.pos);
        TriggerError { pos, error }
    })
}

fn types_allow(types: Option<&[Text]>, activity: Option<&str>, default: &[&str]) -> bool {
    match (types, activity) {
        (Some(types), Some(activity)) => types.iter().any(|t| t.value == activity),
        // An event without activity types (or a payload without `action`) runs.
        (Some(_), None) => true,
        (None, Some(activity)) if !default.is_empty() => default.contains(&activity),
        (None, _) => true,
    }
}

/// The commit-message commands that skip `push` and `pull_request` workflows.
pub const SKIP_COMMANDS: &[&str] = &["[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]"];

/// Whether a commit message asks to skip workflows: one of [`SKIP_COMMANDS`], or a
/// `skip-checks: true` (or `skip-checks:true`) trailer, last in the trailer block that
/// ends the message after an empty line.
pub fn skip_requested(message: &str) -> bool {
    if SKIP_COMMANDS.iter().any(|c| message.contains(c)) {
        return true;
    }
    let trimmed = message.trim_end();
    let Some(blank) = trimmed.rfind("\n\n") else {
        return false;
    };
    let last_line = trimmed[blank..].lines().last().unwrap_or_default().trim();
    last_line == "skip-checks: true" || last_line == "skip-checks:true"
}

/// `workflow_dispatch` starts the one workflow its payload names (by path from the
/// repository root); a payload naming none starts every dispatchable workflow.
fn dispatch_targets(event: &Event, workflow_path: &str) -> bool {
    let Some(named) = event.payload.get("workflow").and_then(|w| w.as_str()) else {
        return true;
    };
    let named = named.trim_start_matches("./");
    let path = workflow_path.trim_start_matches("./");
    let file_name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    path == named || path.ends_with(&format!("/{named}")) || file_name(path) == file_name(named)
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;
    use serde_json::json;

    use super::*;
    use crate::workflow::model::{CronEntry, Env, On};

    fn texts(items: &[&str]) -> Option<Vec<Text>> {
        Some(items.iter().map(|s| Text::new(Pos::new(1, 1), s.to_string())).collect())
    }

    fn workflow(events: Vec<(&str, EventConfig)>) -> Workflow {
        Workflow {
            name: None,
            run_name: None,
            on: On {
                pos: Pos::new(1, 1),
                events: events.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            },
            env: Env::default(),
            defaults: None,
            concurrency: None,
            permissions: None,
            jobs: IndexMap::new(),
        }
    }

    fn runs(workflow: &Workflow, name: &str, payload: serde_json::Value) -> bool {
        let event = Event::new(name, payload);
        let cx = TriggerContext { workflow_path: ".github/workflows/ci.yml", changed_files: None };
        triggers(workflow, &event, &cx).expect("filters compile").is_some()
    }

    fn push(git_ref: &str, files: &[&str]) -> serde_json::Value {
        json!({"ref": git_ref, "deleted": false, "commits": [{"added": files, "modified": [], "removed": []}]})
    }

    #[test]
    fn push_without_filters_runs_for_branches_and_tags() {
        let w = workflow(vec![("push", EventConfig::default())]);
        assert!(runs(&w, "push", push("refs/heads/main", &["a"])));
        assert!(runs(&w, "push", push("refs/tags/v1", &[])));
        assert!(!runs(&w, "pull_request", json!({"action": "opened"})));
        assert!(!runs(&w, "push", json!({"ref": "refs/heads/main", "deleted": true})));
    }

    #[test]
    fn commit_message_commands_skip_pushes() {
        assert!(skip_requested("Fix typo [skip ci]"));
        assert!(skip_requested("[actions skip] docs"));
        assert!(skip_requested("Subject\n\nBody.\n\nSigned-off-by: A <a@b>\nskip-checks: true\n"));
        assert!(skip_requested("Subject\n\nskip-checks:true"));
        assert!(!skip_requested("skip-checks: true"), "a trailer needs an empty line before it");
        assert!(!skip_requested("Subject\n\nskip-checks: true\nSigned-off-by: A <a@b>"), "not last");
        assert!(!skip_requested("Subject [skip-ci]"));
        let w = workflow(vec![("push", EventConfig::default())]);
        let mut payload = push("refs/heads/main", &["a"]);
        payload["head_commit"] = json!({"message": "WIP [ci skip]"});
        assert!(!runs(&w, "push", payload));
    }

    #[test]
    fn only_branch_filters_skip_tags_and_vice_versa() {
        let branches =
            workflow(vec![("push", EventConfig { branches: texts(&["main"]), ..Default::default() })]);
        assert!(runs(&branches, "push", push("refs/heads/main", &["a"])));
        assert!(!runs(&branches, "push", push("refs/heads/dev", &["a"])));
        assert!(!runs(&branches, "push", push("refs/tags/v1", &[])));
        let tags =
            workflow(vec![("push", EventConfig { tags_ignore: texts(&["v1.*"]), ..Default::default() })]);
        assert!(!runs(&tags, "push", push("refs/heads/main", &["a"])));
        assert!(!runs(&tags, "push", push("refs/tags/v1.2", &[])));
        assert!(runs(&tags, "push", push("refs/tags/v2", &[])));
    }

    #[test]
    fn paths_must_hold_with_branches_and_are_ignored_for_tags() {
        let w = workflow(vec![(
            "push",
            EventConfig {
                branches: texts(&["main"]),
                tags: texts(&["v*"]),
                paths: texts(&["src/**"]),
                ..Default::default()
            },
        )]);
        assert!(runs(&w, "push", push("refs/heads/main", &["src/lib.rs", "README.md"])));
        assert!(!runs(&w, "push", push("refs/heads/main", &["README.md"])));
        assert!(runs(&w, "push", push("refs/tags/v1", &[])));
        // A known, empty diff runs nothing; an unknown diff runs.
        assert!(!runs(&w, "push", push("refs/heads/main", &[])));
        assert!(runs(&w, "push", json!({"ref": "refs/heads/main", "commits": []})));
    }

    #[test]
    fn paths_ignore_needs_one_file_outside() {
        let w =
            workflow(vec![("push", EventConfig { paths_ignore: texts(&["docs/**"]), ..Default::default() })]);
        assert!(!runs(&w, "push", push("refs/heads/main", &["docs/a.md"])));
        assert!(runs(&w, "push", push("refs/heads/main", &["docs/a.md", "src/x"])));
    }

    #[test]
    fn pull_request_types_default_and_base_branch() {
        let w = workflow(vec![(
            "pull_request",
            EventConfig { branches: texts(&["main"]), ..Default::default() },
        )]);
        let pr = |action: &str, base: &str| json!({"action": action, "number": 1, "pull_request": {"number": 1, "base": {"ref": base}, "head": {"ref": "x"}}});
        assert!(runs(&w, "pull_request", pr("opened", "main")));
        assert!(runs(&w, "pull_request", pr("synchronize", "main")));
        assert!(runs(&w, "pull_request", pr("reopened", "main")));
        assert!(!runs(&w, "pull_request", pr("closed", "main")));
        assert!(!runs(&w, "pull_request", pr("opened", "dev")));
        let labeled = workflow(vec![(
            "pull_request",
            EventConfig { types: texts(&["labeled"]), ..Default::default() },
        )]);
        assert!(runs(&labeled, "pull_request", pr("labeled", "dev")));
        assert!(!runs(&labeled, "pull_request", pr("opened", "dev")));
    }

    #[test]
    fn dispatch_schedule_and_repository_dispatch() {
        let cron = |c: &str| CronEntry { cron: Text::new(Pos::new(1, 1), c.to_string()), timezone: None };
        let w = workflow(vec![
            ("workflow_dispatch", EventConfig::default()),
            (
                "schedule",
                EventConfig { schedule: vec![cron("0 2 * * *"), cron("30 4 * * 1")], ..Default::default() },
            ),
            ("repository_dispatch", EventConfig { types: texts(&["deploy"]), ..Default::default() }),
        ]);
        assert!(runs(
            &w,
            "workflow_dispatch",
            json!({"workflow": ".github/workflows/ci.yml", "ref": "refs/heads/main"})
        ));
        assert!(!runs(&w, "workflow_dispatch", json!({"workflow": ".github/workflows/other.yml"})));
        let event = Event::new("schedule", json!({"schedule": "30 4 * * 1"}));
        let trigger = triggers(&w, &event, &TriggerContext::default()).unwrap();
        assert_eq!(trigger.and_then(|t| t.schedule), Some("30 4 * * 1".to_string()));
        assert!(!runs(&w, "schedule", json!({"schedule": "0 3 * * *"})));
        assert!(runs(&w, "repository_dispatch", json!({"action": "deploy"})));
        assert!(!runs(&w, "repository_dispatch", json!({"action": "test"})));
        // 2024-03-04 (a Monday) 04:30 UTC
        assert_eq!(due_schedules(&w, 1_709_526_600), vec!["30 4 * * 1".to_string()]);
        assert!(due_schedules(&w, 1_709_526_660).is_empty());
    }

    #[test]
    fn workflow_run_names_and_branches() {
        let w = workflow(vec![(
            "workflow_run",
            EventConfig {
                types: texts(&["completed"]),
                workflows: texts(&["CI"]),
                branches: texts(&["main"]),
                ..Default::default()
            },
        )]);
        let run = |action: &str, name: &str, branch: &str| json!({"action": action, "workflow_run": {"name": name, "head_branch": branch}});
        assert!(runs(&w, "workflow_run", run("completed", "CI", "main")));
        assert!(!runs(&w, "workflow_run", run("requested", "CI", "main")));
        assert!(!runs(&w, "workflow_run", run("completed", "Deploy", "main")));
        assert!(!runs(&w, "workflow_run", run("completed", "CI", "dev")));
    }

    #[test]
    fn invalid_pattern_is_an_error_at_its_position() {
        let w = workflow(vec![("push", EventConfig { branches: texts(&["[z-a]"]), ..Default::default() })]);
        let event = Event::new("push", push("refs/heads/main", &["a"]));
        let err = triggers(&w, &event, &TriggerContext::default()).unwrap_err();
        assert_eq!(err.pos, Pos::new(1, 1));
        assert!(err.to_string().contains("[z-a]"), "{err}");
    }
}
