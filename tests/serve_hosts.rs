//! The inventory end to end: a real `metalfarm serve` with hosts in its config, the
//! admin CLI (the built binary) against it, and the REST API's answers.

mod common;

use common::cli::{admin_token, cli, ok};
use common::farm::{get, FarmServer};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

const HOSTS: &str = r#"
[[host]]
name = "foo-amd.example.com"
labels = ["amd64", "hostprovisioning"]

[[host]]
name = "bar-arm"
address = "bar-arm.lab.example.com"
port = 2222
arch = "arm64"
labels = ["KVM"]
"#;

/// Times change from run to run; snapshots show where they are.
fn without_times(text: &str) -> String {
    regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap().replace_all(text, "<time>").into_owned()
}

/// A raw API call: status, `WWW-Authenticate`, body as JSON (`null` when empty).
async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Option<String>, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default().to_owned()))).unwrap();
    let response = client.request(request).await.expect("HTTP request");
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
    (status, challenge, json)
}

#[tokio::test]
async fn admins_manage_the_inventory_from_the_cli() {
    let mut server = FarmServer::start(HOSTS);
    let token = admin_token(&server);

    insta::assert_snapshot!("config_hosts", ok(&server, &token, &["host", "list"]));

    let added = ok(
        &server,
        &token,
        &["host", "add", "lab-7", "--label", "intel64", "--label", "HostProvisioning", "--port", "2200"],
    );
    assert_eq!(
        added,
        "added host lab-7 (ready; labels: self-hosted, linux, x64, intel64, hostprovisioning)\n"
    );
    let locked = ok(&server, &token, &["host", "lock", "foo-amd.example.com", "--reason", "firmware update"]);
    assert_eq!(locked, "locked host foo-amd.example.com: maintenance (firmware update)\n");

    insta::assert_snapshot!("hosts_after_changes", ok(&server, &token, &["host", "list"]));
    insta::assert_snapshot!("labels", ok(&server, &token, &["label", "list"]));

    // Where could a job with `runs-on: [self-hosted, HostProvisioning]` run now?
    let names = |json: &str| -> Vec<String> {
        let hosts: Vec<Value> = serde_json::from_str(json).unwrap();
        hosts.iter().map(|h| h["name"].as_str().unwrap().to_owned()).collect()
    };
    let list = ["host", "list", "--json", "--label", "self-hosted,HostProvisioning"];
    assert_eq!(names(&ok(&server, &token, &list)), ["foo-amd.example.com", "lab-7"]);
    assert_eq!(names(&ok(&server, &token, &[&list[..], &["--state", "ready"]].concat())), ["lab-7"]);
    let bad = cli(&server, Some(&token), &["host", "list", "--state", "idle"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("`idle` is not a host state"), "{}", bad.stderr);
    insta::assert_snapshot!(
        "locked_host",
        without_times(&ok(&server, &token, &["host", "show", "foo-amd.example.com"]))
    );

    // The history, as a script reads it.
    let shown: Value =
        serde_json::from_str(&ok(&server, &token, &["host", "show", "foo-amd.example.com", "--json"]))
            .unwrap();
    let history: Vec<_> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone(), e["by"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(
        history,
        [
            (Value::Null, json!("ready"), json!("config"), json!("added from the config file")),
            (json!("ready"), json!("maintenance"), json!("admin"), json!("firmware update")),
        ]
    );
    assert_eq!(shown["all_labels"], json!(["self-hosted", "linux", "x64", "amd64", "hostprovisioning"]));

    // A config host is edited and removed in the config file.
    let refused = cli(&server, Some(&token), &["host", "remove", "foo-amd.example.com"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr,
        "metalfarm host remove: host `foo-amd.example.com` is defined in the config file: remove its [[host]] \
         entry there (the config is applied at every start)\n"
    );
    let (status, _, body) =
        call("DELETE", &server.url("/api/v1/hosts/foo-amd.example.com"), Some(&token), None).await;
    assert_eq!(status, 409, "{body}");

    // Only an unlock returns it, and the history says who did what.
    assert_eq!(
        ok(&server, &token, &["host", "unlock", "foo-amd.example.com"]),
        "unlocked host foo-amd.example.com: ready\n"
    );
    let again = cli(&server, Some(&token), &["host", "unlock", "foo-amd.example.com"]);
    assert_eq!(
        (again.code, again.stderr.as_str()),
        (1, "metalfarm host unlock: host `foo-amd.example.com`: the host is already ready\n")
    );
    let shown: Value =
        serde_json::from_str(&ok(&server, &token, &["host", "show", "foo-amd.example.com", "--json"]))
            .unwrap();
    assert_eq!(shown["history"].as_array().unwrap().len(), 3);
    assert_eq!(shown["history"][2]["to"], "ready");

    // States and API hosts outlive a restart; the config is applied again.
    ok(&server, &token, &["host", "lock", "bar-arm", "--reason", "new disk"]);
    server.kill_and_restart();
    let hosts: Value = serde_json::from_str(&ok(&server, &token, &["host", "list", "--json"])).unwrap();
    let states: Vec<_> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["name"].as_str().unwrap(), h["state"].as_str().unwrap(), h["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("bar-arm", "maintenance", "config"),
            ("foo-amd.example.com", "ready", "config"),
            ("lab-7", "ready", "api")
        ]
    );

    assert_eq!(ok(&server, &token, &["host", "remove", "lab-7"]), "removed host lab-7\n");
    let gone = cli(&server, Some(&token), &["host", "show", "lab-7"]);
    assert_eq!((gone.code, gone.stderr.as_str()), (1, "metalfarm host show: no host named `lab-7`\n"));
}

#[tokio::test]
async fn changes_need_the_admin_token() {
    let mut server = FarmServer::start(HOSTS);
    let token = admin_token(&server);
    let host = server.url("/api/v1/hosts/bar-arm");
    let lock = r#"{"lock": {"reason": "x"}}"#;

    let anonymous = cli(&server, None, &["host", "lock", "bar-arm", "--reason", "x"]);
    assert_eq!(anonymous.code, 1, "{anonymous:?}");
    assert!(anonymous.stderr.contains("set METALFARM_TOKEN to the admin token"), "{}", anonymous.stderr);
    let wrong = cli(&server, Some("guess"), &["host", "add", "x"]);
    assert!(wrong.stderr.contains("METALFARM_TOKEN is not this server's admin token"), "{}", wrong.stderr);

    let (status, challenge, body) = call("PATCH", &host, None, Some(lock)).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    let (status, _, _) = call("PATCH", &host, Some(&format!("{token}x")), Some(lock)).await;
    assert_eq!(status, 401);
    // Reading needs no token.
    let (status, _, body) = call("GET", &host, None, None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("ready")));
    assert_eq!(body["all_labels"], json!(["self-hosted", "linux", "arm64", "kvm"]));

    // Errors are JSON with fitting statuses.
    let hosts = server.url("/api/v1/hosts");
    let too_many_labels =
        json!({"name": "x", "labels": (0..=100).map(|i| format!("l{i}")).collect::<Vec<_>>()});
    let too_many_labels = too_many_labels.to_string();
    let cases = [
        ("POST", hosts.as_str(), "{not json", 400, "Failed to parse the request body as JSON"),
        ("POST", hosts.as_str(), r#"{"name": "x", "colour": "red"}"#, 422, "unknown field `colour`"),
        ("POST", hosts.as_str(), r#"{"name": "a b"}"#, 422, "is not a host name"),
        ("POST", hosts.as_str(), r#"{"name": "x", "labels": ["arm64"]}"#, 422, "architecture label"),
        ("POST", hosts.as_str(), too_many_labels.as_str(), 422, "at most 100 labels"),
        ("POST", hosts.as_str(), r#"{"name": "bar-arm"}"#, 409, "exists already"),
        ("PATCH", host.as_str(), "{}", 422, "nothing to change"),
        ("PATCH", host.as_str(), r#"{"lock": {"reason": "x"}, "unlock": true}"#, 422, "choose one"),
        ("PATCH", host.as_str(), r#"{"port": 2200}"#, 409, "defined in the config file"),
        ("PATCH", &server.url("/api/v1/hosts/nope"), lock, 404, "no host named `nope`"),
        ("DELETE", &server.url("/api/v1/hosts/nope"), "", 404, "no host named `nope`"),
        ("POST", &server.url("/api/v1/nothing-here"), "{}", 404, "no such API endpoint"),
        ("PUT", hosts.as_str(), "{}", 405, "does not take that method"),
    ];
    for (method, url, body, want_status, want_text) in cases {
        let (status, _, answer) = call(method, url, Some(&token), Some(body)).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, want_status, "{method} {url} {body}: {answer}");
        assert!(error.contains(want_text), "{method} {url} {body}: {error}");
    }
    let (status, _, body) =
        call("POST", &hosts, Some(&token), Some(r#"{"name": "lab-9", "arch": "arm64"}"#)).await;
    assert_eq!((status, body["address"].as_str(), body["port"].as_u64()), (201, Some("lab-9"), Some(22)));

    // An empty token file: no admin token, so changes are refused outright.
    std::fs::write(server.dir.path().join("data/admin-token"), "").unwrap();
    server.kill_and_restart();
    let host = server.url("/api/v1/hosts/bar-arm");
    let (status, _, body) = call("PATCH", &host, Some(&token), Some(lock)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("server.admin_token_file"), "{body}");
    assert_eq!(call("GET", &server.url("/api/v1/hosts"), None, None).await.0, 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let server = FarmServer::start("");
    let answer = get(&server.url("/api/v1/openapi.json")).await;
    assert_eq!(answer.status, 200);
    let doc: Value = serde_json::from_str(&answer.body).expect("openapi.json is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], "/api/v1");

    let operations: Vec<(String, String, bool)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().iter().map(move |(method, op)| {
                let secured = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("admin_token").is_some()));
                (method.clone(), path.clone(), secured)
            })
        })
        .collect();
    let expected = [
        ("get", "/hosts", false),
        ("post", "/hosts", true),
        ("get", "/hosts/{name}", false),
        ("patch", "/hosts/{name}", true),
        ("delete", "/hosts/{name}", true),
        ("get", "/labels", false),
    ];
    for (method, path, secured) in expected {
        assert!(
            operations.contains(&(method.to_owned(), path.to_owned(), secured)),
            "{method} {path} (secured: {secured}) missing from {operations:?}"
        );
    }
    assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values().map(|op| op["operationId"].as_str().unwrap()))
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");

    // Every reference points at a schema the document defines.
    let text = answer.body.as_str();
    let refs = regex::Regex::new(r##""\$ref":\s*"#/components/schemas/([^"]+)""##).unwrap();
    let mut seen = 0;
    for found in refs.captures_iter(text) {
        let name = &found[1];
        assert!(doc["components"]["schemas"][name].is_object(), "a $ref to the undefined schema {name}");
        seen += 1;
    }
    assert!(seen >= 5, "{seen} references");
    assert_eq!(
        doc["components"]["schemas"]["HostState"]["enum"],
        json!(["ready", "leased", "repairing", "broken", "maintenance"])
    );
}

/// The same SQL on PostgreSQL: config sync, compare-and-set changes, history, leases.
#[tokio::test]
async fn the_inventory_works_the_same_on_postgres() {
    use metalfarm::config::{Arch, HostConfig};
    use metalfarm::farm::hosts::{HostSpec, HostState, Inventory};
    use metalfarm::store::{NewJob, NewRun, Store};

    let pg = common::postgres::Postgres::start();
    let store = Store::open(&pg.url()).await.expect("open on PostgreSQL");
    let inventory = Inventory::new(store.clone());
    let config = HostConfig {
        name: "foo-amd.example.com".into(),
        labels: vec!["amd64".into()],
        address: None,
        port: 22,
        cobbler_system: None,
        arch: Arch::X64,
    };
    inventory.sync_config(std::slice::from_ref(&config)).await.unwrap();
    inventory.add(&HostSpec { name: "lab-7".into(), ..HostSpec::default() }).await.unwrap();
    assert_eq!(inventory.lock("foo-amd.example.com", "disk").await.unwrap().state, HostState::Maintenance);
    assert_eq!(inventory.unlock("foo-amd.example.com").await.unwrap().state, HostState::Ready);

    let mut tx = store.begin().await.unwrap();
    let run = tx
        .insert_run(&NewRun {
            repo: "lab/qemu",
            workflow: "workflows/ci.yml",
            workflow_name: "CI",
            event: "push",
            head_sha: "abc",
            check_sha: "abc",
            git_ref: "refs/heads/master",
            ..Default::default()
        })
        .await
        .unwrap();
    let job =
        NewJob { job_key: "build", name: "build", runs_on: &["amd64".to_owned()], ..Default::default() };
    let job = tx.insert_job(run.run_id, &job).await.unwrap();
    tx.commit().await.unwrap();
    let host = inventory.lease("foo-amd.example.com", job, 5_000).await.unwrap();
    assert_eq!((host.state, host.job_id), (HostState::Leased, Some(job)));
    assert_eq!(inventory.expired_leases(6_000).await.unwrap().len(), 1);
    assert_eq!(inventory.release("foo-amd.example.com", job).await.unwrap().state, HostState::Ready);
    let history = inventory.history("foo-amd.example.com", 10).await.unwrap();
    assert_eq!(history.len(), 5, "{history:?}");

    // The config is applied again at the next start; a host that left it goes.
    let hosts = inventory.sync_config(&[]).await.unwrap();
    assert_eq!(hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["lab-7"]);
    inventory.remove("lab-7").await.unwrap();
    assert!(inventory.list().await.unwrap().is_empty());
    store.close().await;
}

/// An admin token file other users can read is refused at start, with what to do.
#[test]
fn an_admin_token_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\nadmin_token_file = \"{}\"\n",
        token.display()
    );
    std::fs::write(dir.path().join("farm.toml"), config).unwrap();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .args(["serve", "--config"])
        .arg(dir.path().join("farm.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve started with an admin token file other users can read");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let expected = format!(
        "server.admin_token_file {} is open to other users (mode 0644): make it private with `chmod 600 {}`",
        token.display(),
        token.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

/// `serve --log-format json`: each log event is one JSON object on its line, for a log
/// collector; the one plain line is the address it listens on, which scripts read.
#[test]
fn serve_logs_json_lines_when_asked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("farm.toml"), "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n")
        .unwrap();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(dir.path().join("farm.toml"))
        .env("RUST_LOG", "metalfarm=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(serve.stderr.take().unwrap());
    let mut events = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.starts_with("metalfarm: listening on http://") {
            break;
        }
        events.push(line);
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(events.len() >= 2, "the start logs its warnings: {events:?}");
    for line in &events {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["level"].is_string() && event["fields"]["message"].is_string(), "{event}");
    }
    assert!(events.iter().any(|l| l.contains("no forge.webhook_secret_file")), "{events:?}");

    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_metalfarm"))
        .args(["serve", "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("possible values: text, json"));
}
