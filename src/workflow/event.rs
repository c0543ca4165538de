//! A forge event (its name and webhook payload, as GitHub sends it) as the workflow
//! language sees it: the `github` context, the ref and commit it runs on, the files it
//! changed, and the `inputs` context of a manual dispatch.
//!
//! What the payload does not say (run ids, the commit at the head of the default
//! branch for `schedule`/`repository_dispatch`, the server's URLs on GitHub Enterprise)
//! comes from the caller in [`RunInfo`].

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::workflow::expr::Value;

/// An event: its name (`push`, `pull_request`, …) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub payload: Json,
}

/// Facts about the run that the payload does not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub run_number: String,
    pub run_attempt: String,
    /// The commit to run on when the payload has none (`workflow_dispatch`,
    /// `schedule`, `repository_dispatch`: the head of the ref).
    pub sha: Option<String>,
    /// Overrides of the URLs otherwise derived from the payload's repository.
    pub server_url: Option<String>,
    pub api_url: Option<String>,
    pub graphql_url: Option<String>,
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo {
            run_id: "1".to_string(),
            run_number: "1".to_string(),
            run_attempt: "1".to_string(),
            sha: None,
            server_url: None,
            api_url: None,
            graphql_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }
}

/// The Git ref a run uses: `refs/heads/main` → name `main`, kind branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub full: String,
    pub name: String,
    pub kind: RefKind,
}

impl EventRef {
    pub fn parse(full: &str) -> EventRef {
        let (name, kind) = if let Some(tag) = full.strip_prefix("refs/tags/") {
            (tag, RefKind::Tag)
        } else if let Some(branch) = full.strip_prefix("refs/heads/") {
            (branch, RefKind::Branch)
        } else if let Some(pull) = full.strip_prefix("refs/pull/") {
            (pull, RefKind::Branch)
        } else {
            (full, RefKind::Branch)
        };
        EventRef { full: full.to_string(), name: name.to_string(), kind }
    }
}

impl Event {
    pub fn new(name: impl Into<String>, payload: Json) -> Event {
        Event { name: name.into(), payload }
    }

    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.payload.pointer(pointer).and_then(Json::as_str)
    }

    /// The `action` of the payload (`opened`, `closed`, …), or for
    /// `repository_dispatch` its `event_type`.
    pub fn activity_type(&self) -> Option<&str> {
        if self.name == "repository_dispatch" {
            return self.str_at("/action").or_else(|| self.str_at("/event_type"));
        }
        self.str_at("/action")
    }

    fn default_branch_ref(&self) -> Option<String> {
        self.str_at("/repository/default_branch").map(|b| format!("refs/heads/{b}"))
    }

    /// The ref the run uses (`GITHUB_REF`), as GitHub sets it for each event.
    pub fn git_ref(&self) -> Option<EventRef> {
        let full = match self.name.as_str() {
            "push" | "workflow_dispatch" => self.str_at("/ref").map(str::to_string),
            "create" | "delete" => {
                let kind = if self.str_at("/ref_type")? == "tag" { "tags" } else { "heads" };
                Some(format!("refs/{kind}/{}", self.str_at("/ref")?))
            }
            "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
                let number =
                    self.payload.pointer("/pull_request/number").or_else(|| self.payload.get("number"))?;
                let number = match number {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some(format!("refs/pull/{number}/merge"))
            }
            "pull_request_target" => self.str_at("/pull_request/base/ref").map(|b| format!("refs/heads/{b}")),
            "release" => self.str_at("/release/tag_name").map(|t| format!("refs/tags/{t}")),
            _ => self.default_branch_ref(),
        }?;
        Some(EventRef::parse(&full))
    }

    /// The commit the run uses (`GITHUB_SHA`) when the payload says it.
    pub fn sha(&self) -> Option<&str> {
        match self.name.as_str() {
            "push" => self.str_at("/after"),
            "pull_request" | "pull_request_review" | "pull_request_review_comment" => self
                .str_at("/pull_request/merge_commit_sha")
                .or_else(|| self.str_at("/pull_request/head/sha")),
            "pull_request_target" => self.str_at("/pull_request/base/sha"),
            _ => None,
        }
    }

    /// For a pull request: the branch it targets (`github.base_ref`).
    pub fn base_ref(&self) -> Option<&str> {
        match self.name.as_str() {
            "pull_request"
            | "pull_request_target"
            | "pull_request_review"
            | "pull_request_review_comment" => self.str_at("/pull_request/base/ref"),
            "push" => self.str_at("/base_ref"),
            _ => None,
        }
    }

    /// For a pull request: its source branch (`github.head_ref`).
    pub fn head_ref(&self) -> Option<&str> {
        match self.name.as_str() {
            "pull_request"
            | "pull_request_target"
            | "pull_request_review"
            | "pull_request_review_comment" => self.str_at("/pull_request/head/ref"),
            _ => None,
        }
    }

    /// The files a push changed, from its commits' `added`, `modified` and `removed`
    /// lists (first appearance order, no repeats); `None` when the payload lists no
    /// commits with file lists.
    pub fn changed_paths(&self) -> Option<Vec<String>> {
        let commits = self.payload.get("commits")?.as_array()?;
        let mut seen = indexmap::IndexSet::new();
        let mut any_lists = false;
        for commit in commits {
            for key in ["added", "modified", "removed"] {
                if let Some(files) = commit.get(key).and_then(Json::as_array) {
                    any_lists = true;
                    seen.extend(files.iter().filter_map(Json::as_str).map(str::to_string));
                }
            }
        }
        any_lists.then(|| seen.into_iter().collect())
    }

    /// The `github` context for a run of `workflow` (its `name:`, or its path when it
    /// has none) started by this event.
    pub fn github_context(&self, workflow: &str, run: &RunInfo) -> Value {
        let git_ref = self.git_ref();
        let sha = self.sha().map(str::to_string).or_else(|| run.sha.clone()).unwrap_or_default();
        let repository = self.str_at("/repository/full_name").unwrap_or_default();
        let owner = self
            .str_at("/repository/owner/login")
            .or_else(|| repository.split('/').next())
            .unwrap_or_default();
        let actor = self.str_at("/sender/login").unwrap_or_default();
        let id_string = |pointer: &str| match self.payload.pointer(pointer) {
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::String(s)) => s.clone(),
            _ => String::new(),
        };
        let (server_url, api_url, graphql_url) = self.urls(run);
        let workflow_ref = match (&git_ref, self.workflow_path()) {
            (Some(r), Some(path)) => format!("{repository}/{path}@{}", r.full),
            _ => String::new(),
        };

        let mut cx: IndexMap<String, Value> = IndexMap::new();
        let mut set = |key: &str, value: Value| {
            cx.insert(key.to_string(), value);
        };
        let s = |text: &str| Value::String(text.to_string());
        set("action", s(""));
        set("actor", s(actor));
        set("actor_id", s(&id_string("/sender/id")));
        set("api_url", s(&api_url));
        set("base_ref", s(self.base_ref().unwrap_or_default()));
        set("event", Value::from_json(&self.payload));
        set("event_name", s(&self.name));
        set("graphql_url", s(&graphql_url));
        set("head_ref", s(self.head_ref().unwrap_or_default()));
        set("ref", s(git_ref.as_ref().map_or("", |r| r.full.as_str())));
        set("ref_name", s(git_ref.as_ref().map_or("", |r| r.name.as_str())));
        set("ref_protected", Value::Bool(false));
        set("ref_type", s(git_ref.as_ref().map_or("", |r| r.kind.as_str())));
        set("repository", s(repository));
        set("repository_id", s(&id_string("/repository/id")));
        set("repository_owner", s(owner));
        set("repository_owner_id", s(&id_string("/repository/owner/id")));
        set("repositoryUrl", s(&format!("git://{}/{repository}.git", host_of(&server_url))));
        set("retention_days", s("90"));
        set("run_attempt", s(&run.run_attempt));
        set("run_id", s(&run.run_id));
        set("run_number", s(&run.run_number));
        set("secret_source", s("Actions"));
        set("server_url", s(&server_url));
        set("sha", s(&sha));
        set("triggering_actor", s(actor));
        set("workflow", s(workflow));
        set("workflow_ref", s(&workflow_ref));
        set("workflow_sha", s(&sha));
        Value::Object(cx)
    }

    /// `workflow_dispatch` names its workflow file; other events do not.
    fn workflow_path(&self) -> Option<&str> {
        self.str_at("/workflow")
    }

    /// server, API and GraphQL URLs: the caller's, else derived from the repository's
    /// `html_url` and `url` (so GitHub Enterprise payloads give their own host).
    fn urls(&self, run: &RunInfo) -> (String, String, String) {
        let server = run.server_url.clone().unwrap_or_else(|| {
            self.str_at("/repository/html_url")
                .and_then(origin_of)
                .unwrap_or_else(|| "https://github.com".to_string())
        });
        let api = run.api_url.clone().unwrap_or_else(|| {
            self.str_at("/repository/url")
                .and_then(|u| u.find("/repos/").map(|i| u[..i].to_string()))
                .unwrap_or_else(|| "https://api.github.com".to_string())
        });
        let graphql = run.graphql_url.clone().unwrap_or_else(|| match api.strip_suffix("/v3") {
            Some(base) => format!("{base}/graphql"),
            None => format!("{api}/graphql"),
        });
        (server, api, graphql)
    }
}

/// `https://host/path` → `https://host`.
fn origin_of(url: &str) -> Option<String> {
    let scheme_end = url.find("://")? + 3;
    let host_end = url[scheme_end..].find('/').map_or(url.len(), |i| scheme_end + i);
    Some(url[..host_end].to_string())
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The declared type of a `workflow_dispatch` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    String,
    Boolean,
    Number,
    Choice,
    Environment,
}

/// One declared input: its name, type and `default:` (as written, if any).
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredInput {
    pub name: String,
    pub kind: InputKind,
    pub default: Option<Value>,
}

/// The `inputs` context of a `workflow_dispatch` run: every declared input, in
/// declaration order, with the value the payload gives (`inputs` of the payload,
/// matched case-insensitively) or else its default, typed as declared (booleans as
/// booleans, numbers as numbers, the rest as strings). An input with neither is
/// `false`, `0` or `""` by type. Payload inputs the workflow does not declare are
/// left out, as GitHub leaves them out.
pub fn inputs_context(declared: &[DeclaredInput], payload: &Json) -> Value {
    let provided = payload.get("inputs").and_then(Json::as_object);
    let mut out = IndexMap::new();
    for input in declared {
        let given = provided
            .and_then(|p| p.iter().find(|(k, _)| k.eq_ignore_ascii_case(&input.name)))
            .map(|(_, v)| Value::from_json(v));
        let raw = given.or_else(|| input.default.clone());
        out.insert(input.name.clone(), typed_input(input.kind, raw));
    }
    Value::Object(out)
}

fn typed_input(kind: InputKind, raw: Option<Value>) -> Value {
    match kind {
        InputKind::Boolean => Value::Bool(match raw {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
            Some(Value::Number(n)) => n != 0.0,
            _ => false,
        }),
        InputKind::Number => Value::Number(match raw {
            Some(Value::Number(n)) => n,
            Some(Value::String(s)) => {
                let t = s.trim();
                if t.is_empty() {
                    0.0
                } else {
                    t.parse::<f64>().unwrap_or(f64::NAN)
                }
            }
            Some(Value::Bool(b)) => f64::from(u8::from(b)),
            _ => 0.0,
        }),
        InputKind::String | InputKind::Choice | InputKind::Environment => Value::String(match raw {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other @ Value::Number(_)) => match other.to_json() {
                Json::Number(n) => n.to_string(),
                _ => String::new(),
            },
            Some(other) => other.to_json().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn repo() -> Json {
        json!({
            "id": 17273051,
            "full_name": "octo-org/octo-repo",
            "default_branch": "main",
            "owner": {"login": "octo-org", "id": 6811672},
            "html_url": "https://github.com/octo-org/octo-repo",
            "url": "https://api.github.com/repos/octo-org/octo-repo"
        })
    }

    fn get<'a>(cx: &'a Value, key: &str) -> &'a Value {
        cx.get(key).unwrap_or_else(|| panic!("github.{key} missing"))
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    #[test]
    fn push_to_a_tag() {
        let event = Event::new(
            "push",
            json!({"ref": "refs/tags/v1.2", "after": "abc", "base_ref": "refs/heads/main",
                   "repository": repo(), "sender": {"login": "mona", "id": 7}}),
        );
        let cx = event.github_context("CI", &RunInfo::default());
        assert_eq!(get(&cx, "ref"), &s("refs/tags/v1.2"));
        assert_eq!(get(&cx, "ref_name"), &s("v1.2"));
        assert_eq!(get(&cx, "ref_type"), &s("tag"));
        assert_eq!(get(&cx, "sha"), &s("abc"));
        assert_eq!(get(&cx, "base_ref"), &s("refs/heads/main"));
        assert_eq!(get(&cx, "repository_owner"), &s("octo-org"));
        assert_eq!(get(&cx, "repository_id"), &s("17273051"));
        assert_eq!(get(&cx, "actor_id"), &s("7"));
        assert_eq!(get(&cx, "graphql_url"), &s("https://api.github.com/graphql"));
        assert_eq!(get(&cx, "event").get("after"), Some(&s("abc")));
    }

    #[test]
    fn pull_request_runs_on_the_merge_ref() {
        let event = Event::new(
            "pull_request",
            json!({"action": "opened", "number": 2, "repository": repo(), "pull_request": {
                "number": 2, "merge_commit_sha": null,
                "base": {"ref": "main", "sha": "b1"}, "head": {"ref": "feature/x", "sha": "h1"}}}),
        );
        let cx = event.github_context("CI", &RunInfo::default());
        assert_eq!(get(&cx, "ref"), &s("refs/pull/2/merge"));
        assert_eq!(get(&cx, "ref_name"), &s("2/merge"));
        assert_eq!(get(&cx, "ref_type"), &s("branch"));
        assert_eq!(get(&cx, "base_ref"), &s("main"));
        assert_eq!(get(&cx, "head_ref"), &s("feature/x"));
        assert_eq!(get(&cx, "sha"), &s("h1"));
        assert_eq!(event.activity_type(), Some("opened"));
        let target = Event { name: "pull_request_target".into(), ..event };
        assert_eq!(target.git_ref().map(|r| r.full), Some("refs/heads/main".to_string()));
        assert_eq!(target.sha(), Some("b1"));
    }

    #[test]
    fn enterprise_urls_come_from_the_payload() {
        let event = Event::new(
            "schedule",
            json!({"schedule": "0 0 * * *", "repository": {
                "full_name": "lab/qemu", "default_branch": "master",
                "html_url": "https://ghe.lab/lab/qemu", "url": "https://ghe.lab/api/v3/repos/lab/qemu"}}),
        );
        let run = RunInfo { sha: Some("f00".into()), ..RunInfo::default() };
        let cx = event.github_context(".github/workflows/nightly.yml", &run);
        assert_eq!(get(&cx, "server_url"), &s("https://ghe.lab"));
        assert_eq!(get(&cx, "api_url"), &s("https://ghe.lab/api/v3"));
        assert_eq!(get(&cx, "graphql_url"), &s("https://ghe.lab/api/graphql"));
        assert_eq!(get(&cx, "ref"), &s("refs/heads/master"));
        assert_eq!(get(&cx, "sha"), &s("f00"));
        assert_eq!(get(&cx, "repository_owner"), &s("lab"));
        assert_eq!(get(&cx, "workflow"), &s(".github/workflows/nightly.yml"));
    }

    #[test]
    fn changed_paths_union_in_order() {
        let event = Event::new(
            "push",
            json!({"commits": [
                {"added": ["a"], "modified": ["b"], "removed": []},
                {"added": [], "modified": ["a", "c"], "removed": ["d"]}
            ]}),
        );
        assert_eq!(event.changed_paths(), Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]));
        assert_eq!(Event::new("push", json!({"commits": []})).changed_paths(), None);
    }

    #[test]
    fn dispatch_inputs_are_typed_with_defaults() {
        let declared = vec![
            DeclaredInput { name: "level".into(), kind: InputKind::Choice, default: Some(s("warning")) },
            DeclaredInput { name: "dry".into(), kind: InputKind::Boolean, default: Some(Value::Bool(true)) },
            DeclaredInput { name: "count".into(), kind: InputKind::Number, default: None },
            DeclaredInput { name: "tag".into(), kind: InputKind::String, default: None },
            DeclaredInput { name: "verbose".into(), kind: InputKind::Boolean, default: None },
        ];
        let payload = json!({"inputs": {"Level": "debug", "dry": "false", "count": "3", "extra": "x"}});
        let inputs = inputs_context(&declared, &payload).to_json();
        assert_eq!(inputs.to_string(), r#"{"level":"debug","dry":false,"count":3,"tag":"","verbose":false}"#);
        let defaults = inputs_context(&declared, &json!({"inputs": {}})).to_json();
        assert_eq!(
            defaults.to_string(),
            r#"{"level":"warning","dry":true,"count":0,"tag":"","verbose":false}"#
        );
    }
}
