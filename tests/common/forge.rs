//! The test forge: a stateful stand-in for the parts of GitHub's REST API the farm
//! uses, on loopback. It records every request, checks each one against GitHub's
//! official OpenAPI description (npm `@octokit/openapi`) — the operation must exist and
//! the body must validate against its schema — and keeps the check runs it was told
//! about, so a test can follow one from `queued` to `completed`, and the repository
//! permission of each user the test names (anyone else can only read). Scripted failures
//! (a 502, a 403 with `Retry-After`) answer the next requests before normal service;
//! scripted creation faults make a check run whose creation answer is lost or held.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

/// One request as the forge saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Json,
    pub status: u16,
}

/// A check run as the forge holds it after every request so far.
#[derive(Debug, Clone, Default)]
pub struct ForgeCheckRun {
    pub id: i64,
    pub repo: String,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: String,
    pub details_url: String,
    pub title: String,
    pub summary: String,
    pub annotations: Vec<Json>,
    /// The buttons it shows (`actions`), as last set.
    pub actions: Vec<Json>,
    /// The statuses it went through, in order.
    pub history: Vec<String>,
}

/// The App every check run of this forge belongs to (the farm's test config says 4242).
pub const APP_ID: i64 = 4242;

/// What happens to a check-run creation (`POST …/check-runs`) instead of normal service.
#[derive(Debug, Clone)]
pub enum CreateFault {
    /// The check run is created, then this answer goes back instead: the farm never
    /// hears of the creation.
    CreateThenFail(Failure),
    /// Nothing is created and this answer goes back.
    FailWithoutCreating(Failure),
    /// The check run is created and no answer ever comes.
    CreateThenHold,
    /// Nothing is created and no answer ever comes (a request lost on the way).
    Hold,
}

/// An answer given instead of normal service.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Json,
}

#[derive(Default)]
struct ForgeState {
    requests: Vec<Recorded>,
    /// Requests GitHub would have refused: method, path and why.
    violations: Vec<String>,
    check_runs: Vec<ForgeCheckRun>,
    tokens: HashMap<String, i64>,
    failures: VecDeque<Failure>,
    /// Faults of the next check-run creations, in order.
    create_faults: VecDeque<CreateFault>,
    /// Branch and tag heads: (repo, short name) → sha.
    refs: HashMap<(String, String), String>,
    /// Repositories the forge describes (`GET /repos/{owner}/{repo}`): full name → default branch.
    default_branches: HashMap<String, String>,
    /// Files in commits: (repo, sha, path) → text.
    files: HashMap<(String, String, String), String>,
    /// Repository roles by login (`admin`, `maintain`, `write`, `triage`, `read`).
    roles: HashMap<String, String>,
    /// The App's public key, to check its JWTs.
    app_public_key: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct TestForge {
    pub addr: SocketAddr,
    state: Arc<Mutex<ForgeState>>,
}

impl TestForge {
    /// Starts the forge on a loopback port; `app_public_key` (PEM) checks the App's JWTs.
    pub async fn start(app_public_key: Vec<u8>) -> TestForge {
        let state =
            Arc::new(Mutex::new(ForgeState { app_public_key: Some(app_public_key), ..Default::default() }));
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the test forge");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("test forge") });
        TestForge { addr, state }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `name` (a branch or tag of `repo`) points at `sha`.
    pub fn set_ref(&self, repo: &str, name: &str, sha: &str) {
        self.state.lock().unwrap().refs.insert((repo.to_owned(), name.to_owned()), sha.to_owned());
    }

    /// `repo` exists, with `branch` as its default branch.
    pub fn set_default_branch(&self, repo: &str, branch: &str) {
        self.state.lock().unwrap().default_branches.insert(repo.to_owned(), branch.to_owned());
    }

    /// Commit `sha` of `repo` holds `path` with `text`.
    pub fn add_file(&self, repo: &str, sha: &str, path: &str, text: &str) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert((repo.to_owned(), sha.to_owned(), path.to_owned()), text.to_owned());
    }

    /// The next requests get these answers, in order, before normal service resumes.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.state.lock().unwrap().failures.extend(failures);
    }

    /// The next check-run creations meet these faults, in order (see [`CreateFault`]).
    pub fn fault_next_creations(&self, faults: impl IntoIterator<Item = CreateFault>) {
        self.state.lock().unwrap().create_faults.extend(faults);
    }

    /// `login`'s role on every repository: `admin`, `maintain`, `write`, `triage` or `read`.
    pub fn set_permission(&self, login: &str, role: &str) {
        self.state.lock().unwrap().roles.insert(login.to_owned(), role.to_owned());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn check_runs(&self) -> Vec<ForgeCheckRun> {
        self.state.lock().unwrap().check_runs.clone()
    }

    /// Every request GitHub would have refused. A test ends by asserting this is empty.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Waits (bounded) until `done` holds for the check runs.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[ForgeCheckRun]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if done(&self.check_runs()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}",
                self.check_runs()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    State(state): State<Arc<Mutex<ForgeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let body: Json =
        if body.is_empty() { Json::Null } else { serde_json::from_slice(&body).unwrap_or(Json::Null) };
    let answered = {
        let mut state = state.lock().unwrap();
        let creation = method == Method::POST && path.ends_with("/check-runs");
        let fault = if creation { state.create_faults.pop_front() } else { None };
        let failed = |failure: Failure| {
            Some((StatusCode::from_u16(failure.status).unwrap(), failure.headers, failure.body))
        };
        let answered = match fault {
            Some(CreateFault::Hold) => None,
            Some(CreateFault::FailWithoutCreating(failure)) => failed(failure),
            _ => {
                let served = serve(&mut state, &method, &path, &query, &headers, &body);
                match fault {
                    Some(CreateFault::CreateThenFail(failure)) => failed(failure),
                    Some(CreateFault::CreateThenHold) => None,
                    _ => Some(served),
                }
            }
        };
        let status = answered.as_ref().map_or(0, |(status, _, _)| status.as_u16());
        // Status 0: no answer was given.
        state.requests.push(Recorded { method: method.to_string(), path, body, status });
        answered
    };
    let Some((status, answer_headers, answer)) = answered else {
        // A held request is never answered (the connection stays open).
        return std::future::pending().await;
    };
    let mut response = (status, axum::Json(answer)).into_response();
    for (name, value) in answer_headers {
        response
            .headers_mut()
            .insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    response
}

type Answer = (StatusCode, Vec<(String, String)>, Json);

fn serve(
    state: &mut ForgeState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Json,
) -> Answer {
    if let Err(why) = validate_request(method, path, body) {
        state.violations.push(format!("{method} {path}: {why}"));
        return (StatusCode::UNPROCESSABLE_ENTITY, vec![], json!({ "message": why }));
    }
    if let Some(failure) = state.failures.pop_front() {
        return (StatusCode::from_u16(failure.status).unwrap(), failure.headers, failure.body);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")))
        .unwrap_or_default()
        .to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            if let Err(why) = check_app_jwt(state, &bearer) {
                state.violations.push(format!("POST {path}: {why}"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": why }));
            }
            let installation: i64 = id.parse().unwrap_or(0);
            let token = format!("ghs_test{}x{installation}", state.tokens.len());
            state.tokens.insert(token.clone(), installation);
            let expires = chrono::Utc::now() + chrono::Duration::hours(1);
            let answer = json!({ "token": token, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "permissions": {"checks": "write"}, "repository_selection": "all" });
            (StatusCode::CREATED, vec![], answer)
        }
        ("GET", ["repos", owner, repo, "installation"]) => {
            if let Err(why) = check_app_jwt(state, &bearer) {
                state.violations.push(format!("GET {path}: {why}"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": why }));
            }
            let _ = (owner, repo);
            (StatusCode::OK, vec![], json!({ "id": 1, "app_id": 4242 }))
        }
        ("GET", ["repos", owner, repo]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("GET {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let full_name = format!("{owner}/{repo}");
            match state.default_branches.get(&full_name) {
                // The fields of GitHub's `full-repository` that payloads and the farm read.
                Some(branch) => {
                    let answer = json!({
                        "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": repo,
                        "full_name": full_name, "private": false, "fork": false, "visibility": "public",
                        "owner": { "login": owner, "id": 1, "type": "Organization", "site_admin": false },
                        "html_url": format!("https://github.com/{full_name}"),
                        "url": format!("https://api.github.com/repos/{full_name}"),
                        "default_branch": branch,
                    });
                    (StatusCode::OK, vec![], answer)
                }
                None => (StatusCode::NOT_FOUND, vec![], json!({ "message": "Not Found" })),
            }
        }
        ("GET", ["repos", owner, repo, "commits", name]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("GET {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let name = name.replace("%2F", "/").replace("%25", "%");
            match state.refs.get(&(format!("{owner}/{repo}"), name)) {
                Some(sha) => (StatusCode::OK, vec![], json!({ "sha": sha })),
                None => (StatusCode::NOT_FOUND, vec![], json!({ "message": "No commit found for SHA" })),
            }
        }
        ("GET", ["repos", owner, repo, "commits", sha, "check-runs"]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("GET {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let param = |name: &str| {
                query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            };
            let repo_name = format!("{owner}/{repo}");
            let app_id = param("app_id").map(|v| v.parse::<i64>().unwrap_or(-1));
            let check_name = param("check_name").map(|v| v.replace("%20", " ").replace("%2F", "/"));
            let matching: Vec<&ForgeCheckRun> = state
                .check_runs
                .iter()
                .filter(|r| r.repo == repo_name && r.head_sha == *sha)
                .filter(|_| app_id.is_none_or(|id| id == APP_ID))
                .filter(|r| check_name.as_ref().is_none_or(|name| *name == r.name))
                .collect();
            // GitHub's pages: `per_page` (at most 100, default 30) from `page` 1.
            let per_page = param("per_page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(30).min(100);
            let page = param("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
            let listed: Vec<Json> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| check_run_json(r))
                .collect();
            (StatusCode::OK, vec![], json!({ "total_count": matching.len(), "check_runs": listed }))
        }
        ("GET", ["repos", owner, repo, "contents", rest @ ..]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("GET {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let repo_name = format!("{owner}/{repo}");
            let wanted = rest.join("/");
            let sha = query.split('&').find_map(|kv| kv.strip_prefix("ref=")).unwrap_or_default().to_owned();
            let in_commit: Vec<(&String, &String)> = state
                .files
                .iter()
                .filter(|((r, s, _), _)| *r == repo_name && *s == sha)
                .map(|((_, _, p), text)| (p, text))
                .collect();
            if let Some((_, text)) = in_commit.iter().find(|(p, _)| **p == wanted) {
                use base64::Engine;
                let content = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                // The forge wraps base64 at 60 columns.
                let wrapped: Vec<String> =
                    content.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                let answer = json!({ "type": "file", "path": wanted, "encoding": "base64", "content": wrapped.join("\n") });
                return (StatusCode::OK, vec![], answer);
            }
            let prefix = format!("{wanted}/");
            let listing: Vec<Json> = in_commit
                .iter()
                .filter_map(|(p, _)| {
                    p.strip_prefix(&prefix).filter(|name| !name.contains('/')).map(|name| (p, name))
                })
                .map(|(p, name)| json!({ "type": "file", "name": name, "path": p }))
                .collect();
            if listing.is_empty() {
                (StatusCode::NOT_FOUND, vec![], json!({ "message": "Not Found" }))
            } else {
                (StatusCode::OK, vec![], Json::Array(listing))
            }
        }
        ("POST", ["repos", owner, repo, "check-runs"]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("POST {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let id = state.check_runs.len() as i64 + 1;
            let mut run = ForgeCheckRun { id, repo: format!("{owner}/{repo}"), ..Default::default() };
            apply(&mut run, body);
            let answer = check_run_json(&run);
            state.check_runs.push(run);
            (StatusCode::CREATED, vec![], answer)
        }
        ("PATCH", ["repos", owner, repo, "check-runs", id]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("PATCH {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let repo_name = format!("{owner}/{repo}");
            let id: i64 = id.parse().unwrap_or(0);
            match state.check_runs.iter_mut().find(|r| r.id == id && r.repo == repo_name) {
                Some(run) => {
                    apply(run, body);
                    (StatusCode::OK, vec![], check_run_json(run))
                }
                None => (StatusCode::NOT_FOUND, vec![], json!({ "message": "Not Found" })),
            }
        }
        ("GET", ["repos", _, _, "collaborators", login, "permission"]) => {
            if !state.tokens.contains_key(&bearer) {
                state.violations.push(format!("GET {path}: not an installation token"));
                return (StatusCode::UNAUTHORIZED, vec![], json!({ "message": "Bad credentials" }));
            }
            let role = state.roles.get(*login).cloned().unwrap_or_else(|| "read".into());
            // GitHub's legacy `permission` folds `maintain` into write and `triage` into read.
            let permission = match role.as_str() {
                "maintain" => "write",
                "triage" => "read",
                other => other,
            };
            let user = json!({ "login": login, "id": 1, "type": "User", "site_admin": false });
            (StatusCode::OK, vec![], json!({ "permission": permission, "role_name": role, "user": user }))
        }
        _ => {
            state.violations.push(format!("{method} {path}: the test forge does not serve this operation"));
            (StatusCode::NOT_FOUND, vec![], json!({ "message": "Not Found" }))
        }
    }
}

/// A check-run body applied as GitHub does: fields replace, annotations append.
fn apply(run: &mut ForgeCheckRun, body: &Json) {
    let text = |key: &str| body.get(key).and_then(Json::as_str).map(str::to_owned);
    if let Some(v) = text("name") {
        run.name = v;
    }
    if let Some(v) = text("head_sha") {
        run.head_sha = v;
    }
    if let Some(v) = text("external_id") {
        run.external_id = v;
    }
    if let Some(v) = text("details_url") {
        run.details_url = v;
    }
    if let Some(v) = text("conclusion") {
        run.conclusion = Some(v);
        run.status = "completed".into();
    } else if let Some(v) = text("status") {
        // Back to queued or in progress: no conclusion yet.
        if v != "completed" {
            run.conclusion = None;
        }
        run.status = v;
    } else if run.status.is_empty() {
        run.status = "queued".into();
    }
    if let Some(list) = body.get("actions").and_then(Json::as_array) {
        run.actions = list.clone();
    }
    if run.history.last() != Some(&run.status) {
        run.history.push(run.status.clone());
    }
    if let Some(output) = body.get("output") {
        if let Some(v) = output.get("title").and_then(Json::as_str) {
            run.title = v.to_owned();
        }
        if let Some(v) = output.get("summary").and_then(Json::as_str) {
            run.summary = v.to_owned();
        }
        if let Some(list) = output.get("annotations").and_then(Json::as_array) {
            run.annotations.extend(list.iter().cloned());
        }
    }
}

fn check_run_json(run: &ForgeCheckRun) -> Json {
    json!({
        "id": run.id, "name": run.name, "head_sha": run.head_sha, "status": run.status,
        "conclusion": run.conclusion, "external_id": run.external_id, "details_url": run.details_url,
        "actions": run.actions, "app": { "id": APP_ID },
    })
}

/// The App's JWT: RS256, signed by the App's key, `iat` in the past, `exp` at most 10
/// minutes ahead — what GitHub checks.
fn check_app_jwt(state: &ForgeState, token: &str) -> Result<(), String> {
    let key = state.app_public_key.as_ref().ok_or("no App key")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(key).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let data =
        jsonwebtoken::decode::<Json>(token, &key, &validation).map_err(|e| format!("bad App JWT: {e}"))?;
    let now = chrono::Utc::now().timestamp();
    let iat = data.claims["iat"].as_i64().ok_or("iat is not a number")?;
    let exp = data.claims["exp"].as_i64().ok_or("exp is not a number")?;
    if iat > now || exp - iat > 600 || exp <= now {
        return Err(format!("JWT times out of GitHub's bounds: iat {iat}, exp {exp}, now {now}"));
    }
    Ok(())
}

/// GitHub's REST description, loaded once.
fn openapi() -> &'static Json {
    static SPEC: OnceLock<Json> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path: PathBuf =
            super::oracle_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).expect("GitHub's OpenAPI description is JSON")
    })
}

/// Is this a request GitHub would accept: a documented operation, with a body valid
/// against its schema, and the rules the schema cannot say?
pub fn validate_request(method: &Method, path: &str, body: &Json) -> Result<(), String> {
    let spec = openapi();
    let (template, operation) = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(template, _)| template_matches(template, path))
        .find_map(|(template, item)| item.get(method.as_str().to_ascii_lowercase()).map(|op| (template, op)))
        .ok_or_else(|| format!("no operation {method} {path} in GitHub's REST API"))?;
    if *method == Method::GET && !body.is_null() {
        return Err("a GET request has no body".into());
    }
    let body_required = operation.pointer("/requestBody/required") == Some(&Json::Bool(true));
    if body.is_null() && body_required {
        return Err(format!("{template} needs a request body"));
    }
    let schema =
        operation.pointer("/requestBody/content/application~1json/schema").filter(|_| !body.is_null());
    if let Some(schema) = schema {
        let mut root = openapi_to_json_schema(schema.clone());
        root["components"] = openapi_to_json_schema(spec["components"].clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .map_err(|e| format!("cannot compile the schema of {template}: {e}"))?;
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect();
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
    }
    // GitHub requires a conclusion with status completed, though the schema does not say so.
    let is_check_run = template.ends_with("/check-runs") || template.ends_with("/check-runs/{check_run_id}");
    if is_check_run
        && body.get("status").and_then(Json::as_str) == Some("completed")
        && body.get("conclusion").is_none()
    {
        return Err("status `completed` without a conclusion".into());
    }
    Ok(())
}

fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // A trailing `{path}` (a file path in a repository) spans the remaining segments.
    let rest_is_path = t.last() == Some(&"{path}") && p.len() >= t.len();
    (t.len() == p.len() || rest_is_path)
        && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// OpenAPI 3.0 schemas as JSON Schema: `nullable: true` becomes a `null` type.
fn openapi_to_json_schema(mut value: Json) -> Json {
    fn walk(value: &mut Json) {
        match value {
            Json::Object(map) => {
                if map.get("nullable") == Some(&Json::Bool(true)) {
                    if let Some(Json::String(t)) = map.get("type").cloned() {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                }
                map.remove("nullable");
                map.values_mut().for_each(walk);
            }
            Json::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}
