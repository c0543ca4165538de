//! Check runs as the forge's REST API wants them: the bodies of the create and update
//! requests for a wanted state, annotations in batches of at most 50, and texts cut to
//! the 65,535-character limits with a note instead of being refused; and a check run
//! found by its `external_id`, for a creation whose answer never came.

use http::Method;
use octocrab::Octocrab;
use serde_json::{json, Map, Value as Json};

use super::api::{send, ForgeError};

use crate::store::{Annotation, CheckRunState, RequestedAction};

/// GitHub takes at most 50 annotations per request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;
/// GitHub's limit on `output.summary`, `output.text` and an annotation's message.
pub const TEXT_LIMIT: usize = 65_535;

/// Where the check run links to and what it is called on the farm's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunLinks {
    pub external_id: String,
    pub details_url: String,
}

/// The request bodies that bring a check run to `state`: the first creates it (when
/// `create`) or updates it; each later one adds the next batch of annotations.
pub fn request_bodies(
    state: &CheckRunState,
    annotations: &[Annotation],
    links: &CheckRunLinks,
    create: bool,
) -> Vec<Json> {
    let mut bodies = Vec::new();
    let mut batches = annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let first_batch = batches.next().unwrap_or(&[]);

    let mut first = Map::new();
    if create {
        first.insert("name".into(), json!(cut(&state.name, 255)));
        first.insert("head_sha".into(), json!(state.head_sha));
    }
    first.insert("status".into(), json!(state.status));
    if let Some(conclusion) = &state.conclusion {
        first.insert("conclusion".into(), json!(conclusion));
    }
    first.insert("external_id".into(), json!(links.external_id));
    first.insert("details_url".into(), json!(links.details_url));
    first.insert("output".into(), output(state, first_batch));
    // Actions replace the forge's list, so an update always sends them: an empty list
    // takes the buttons away.
    if !create || !state.actions.is_empty() {
        first.insert("actions".into(), state.actions.iter().map(action).collect());
    }
    bodies.push(Json::Object(first));

    for batch in batches {
        bodies.push(json!({ "output": output(state, batch) }));
    }
    bodies
}

/// Check runs listed per page (GitHub's maximum).
const LIST_PAGE: usize = 100;

/// The id of the check run with `external_id` that App `app_id` created on commit
/// `head_sha` of `repo`, if there is one: after a creation request whose answer was
/// lost, it tells whether the forge made it. All pages are read (names can change
/// between states, so the name is no filter); the newest match wins.
pub async fn find_check_run(
    client: &Octocrab,
    repo: &str,
    head_sha: &str,
    app_id: u64,
    external_id: &str,
) -> Result<Option<i64>, ForgeError> {
    let mut found = None;
    for page in 1.. {
        let route = format!(
            "/repos/{repo}/commits/{head_sha}/check-runs?app_id={app_id}&filter=all&per_page={LIST_PAGE}&page={page}"
        );
        let answer = send(client, Method::GET, &route, None).await?;
        let runs = answer.get("check_runs").and_then(Json::as_array).cloned().unwrap_or_default();
        for run in &runs {
            if run.get("external_id").and_then(Json::as_str) == Some(external_id) {
                let id = run.get("id").and_then(Json::as_i64);
                found = found.max(id);
            }
        }
        let total = answer.get("total_count").and_then(Json::as_u64).unwrap_or(0) as usize;
        if runs.len() < LIST_PAGE || page * LIST_PAGE >= total {
            break;
        }
    }
    Ok(found)
}

fn output(state: &CheckRunState, annotations: &[Annotation]) -> Json {
    let mut output = json!({
        "title": cut(&state.title, 1024),
        "summary": cut(&state.summary, TEXT_LIMIT),
    });
    if !annotations.is_empty() {
        output["annotations"] = annotations.iter().map(annotation).collect();
    }
    output
}

fn annotation(a: &Annotation) -> Json {
    let mut body = json!({
        "path": a.path,
        "start_line": a.start_line.max(1),
        "end_line": a.end_line.max(a.start_line).max(1),
        "annotation_level": a.level,
        "message": cut(&a.message, TEXT_LIMIT),
    });
    // Columns are only allowed on single-line annotations.
    if let (Some(col), true) = (a.start_column, a.start_line == a.end_line) {
        body["start_column"] = json!(col.max(1));
        body["end_column"] = json!(col.max(1));
    }
    if let Some(title) = &a.title {
        body["title"] = json!(cut(title, 255));
    }
    body
}

fn action(a: &RequestedAction) -> Json {
    json!({
        "label": cut_short(&a.label, 20),
        "description": cut_short(&a.description, 40),
        "identifier": cut_short(&a.identifier, 20),
    })
}

/// Short fields are cut without a note: it would not fit.
fn cut_short(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// `text` within `limit` characters: cut, with a note saying so.
pub fn cut(text: &str, limit: usize) -> String {
    let total = text.chars().count();
    if total <= limit {
        return text.to_owned();
    }
    let note = |more: usize| format!("\n\n… cut here: {more} more characters are on the farm.");
    // The note for `total` is at least as long as the one finally written.
    let keep = limit.saturating_sub(note(total).chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&note(total - keep));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(annotations: usize) -> (CheckRunState, Vec<Annotation>) {
        let list: Vec<Annotation> = (0..annotations as u32)
            .map(|i| Annotation {
                path: "workflows/ci.yml".into(),
                start_line: i + 1,
                end_line: i + 1,
                start_column: Some(3),
                level: "failure".into(),
                message: format!("error {i}"),
                title: None,
            })
            .collect();
        let state = CheckRunState {
            name: "CI / build".into(),
            head_sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
            status: "completed".into(),
            conclusion: Some("failure".into()),
            title: "Invalid workflow file".into(),
            summary: "x".repeat(70_000),
            annotations: list.clone(),
            actions: Vec::new(),
        };
        (state, list)
    }

    #[test]
    fn annotations_go_in_batches_of_fifty() {
        let (state, annotations) = state(120);
        let links = CheckRunLinks { external_id: "7".into(), details_url: "http://farm/jobs/7".into() };
        let bodies = request_bodies(&state, &annotations, &links, true);
        let sizes: Vec<_> =
            bodies.iter().map(|b| b["output"]["annotations"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, [50, 50, 20]);
        assert_eq!(bodies[0]["name"], "CI / build");
        assert_eq!(bodies[0]["conclusion"], "failure");
        assert!(bodies[1].get("name").is_none() && bodies[1].get("status").is_none());
        assert!(bodies[0].get("actions").is_none(), "a new check run without buttons names none");
    }

    #[test]
    fn actions_are_sent_within_limits_and_an_update_can_clear_them() {
        let (mut state, _) = state(0);
        state.actions = vec![RequestedAction {
            label: "Approve and run this please".into(),
            description: "d".repeat(50),
            identifier: "approve".into(),
        }];
        let links = CheckRunLinks { external_id: "7".into(), details_url: "http://farm/jobs/7".into() };
        let body = &request_bodies(&state, &[], &links, true)[0];
        assert_eq!(body["actions"][0]["label"], "Approve and run this");
        assert_eq!(body["actions"][0]["description"].as_str().unwrap().len(), 40);
        assert_eq!(body["actions"][0]["identifier"], "approve");
        state.actions.clear();
        let body = &request_bodies(&state, &[], &links, false)[0];
        assert_eq!(body["actions"], json!([]));
    }

    #[test]
    fn long_texts_are_cut_with_a_note() {
        let (state, _) = state(0);
        let links = CheckRunLinks { external_id: "7".into(), details_url: "http://farm/jobs/7".into() };
        let body = &request_bodies(&state, &[], &links, false)[0];
        let summary = body["output"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= TEXT_LIMIT);
        assert!(summary.ends_with("more characters are on the farm."), "{}", &summary[summary.len() - 80..]);
        assert!(body.get("name").is_none(), "an update does not rename");
        assert_eq!(cut("short", 10), "short");
    }
}
