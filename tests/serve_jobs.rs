//! Runs and jobs end to end: a real `metalfarm serve` reporting to the test forge, the
//! admin CLI (the built binary) against its REST API: listing, showing, cancelling and
//! re-running, and manual runs (`dispatch`).

mod common;

use std::process::Stdio;

use common::cli::{admin_token, cli, cli_command, ok};
use common::farm::{deliver, example_payload, farm_and_forge, get, post, FarmServer};
use common::lab::lab_toml;
use common::testhost::TestHosts;
use serde_json::{json, Value};

const REPO: &str = "Codertocat/Hello-World";

const REPO_TOML: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";

/// A manual deployment with typed inputs, its run and job named after them.
const DEPLOY: &str = "\
name: Deploy
run-name: Deploy ${{ inputs.target }}
on:
  workflow_dispatch:
    inputs:
      target:
        type: choice
        options: [staging, production]
        required: true
      dry-run:
        type: boolean
        default: false
jobs:
  deploy:
    name: deploy to ${{ github.event.inputs.target }}
    runs-on: [self-hosted, amd64]
    steps:
      - run: ./deploy
";

/// The commit `main` points at on the test forge.
const MAIN_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Times change from run to run; snapshots show where they are.
fn without_times(text: &str) -> String {
    regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap().replace_all(text, "<time>").into_owned()
}

/// `metalfarm dispatch` of deploy.yml on main, with `extra` flags.
fn dispatch<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["dispatch", "--repo", REPO, "--workflow", "deploy.yml", "--ref", "main"];
    args.extend_from_slice(extra);
    args
}

/// Runs a command the server must refuse; its stderr.
fn refused(server: &FarmServer, token: &str, args: &[&str]) -> String {
    let ran = cli(server, Some(token), args);
    assert_eq!(ran.code, 1, "metalfarm {args:?}: {ran:?}");
    ran.stderr
}

/// A push to master: one run of the two-job CI.
async fn pushed() -> (FarmServer, common::forge::TestForge) {
    let (server, forge) = farm_and_forge(REPO_TOML).await;
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    assert_eq!(deliver(&server, "push", "push-1", push.to_string().as_bytes()).await.status, 200);
    server.processed().await;
    (server, forge)
}

// The test forge answers on this runtime while the CLI runs: more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_of_a_push_are_listed_and_shown() {
    let (server, forge) = pushed().await;
    let token = admin_token(&server);

    // The scheduler has looked at them: nothing in the inventory can run them.
    let waiting =
        wait_for_jobs(&server, "/api/v1/jobs", |jobs| jobs.iter().all(|j| j["waiting_reason"].is_string()))
            .await;
    assert_eq!(waiting.len(), 2);
    insta::assert_snapshot!("jobs_queued", ok(&server, &token, &["job", "list"]));
    let queued: Vec<Value> = serde_json::from_str(&ok(
        &server,
        &token,
        &["job", "list", "--status", "queued", "--run", "1", "--json"],
    ))
    .unwrap();
    let names: Vec<_> =
        queued.iter().map(|j| (j["id"].as_i64().unwrap(), j["job_key"].as_str().unwrap())).collect();
    assert_eq!(names, [(2, "kvm"), (1, "build")], "newest first");
    let by_label: Vec<Value> =
        serde_json::from_str(&ok(&server, &token, &["job", "list", "--label", "HostProvisioning", "--json"]))
            .unwrap();
    assert_eq!(by_label.len(), 1);
    assert_eq!(by_label[0]["job_key"], "kvm");
    assert_eq!(ok(&server, &token, &["job", "list", "--status", "completed"]), "no jobs\n");

    insta::assert_snapshot!("job_shown", without_times(&ok(&server, &token, &["job", "show", "2"])));
    let shown: Value = serde_json::from_str(&ok(&server, &token, &["job", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["runs_on"], json!(["self-hosted", "amd64"]));
    assert_eq!(shown["check_run"]["status"], "queued");
    assert_eq!(shown["steps"], json!([]));

    // The run, with its jobs, as a script reads it.
    let run: Value = serde_json::from_str(&get(&server.url("/api/v1/runs/1")).await.body).unwrap();
    assert_eq!((run["event"].as_str(), run["ref"].as_str()), (Some("push"), Some("refs/heads/master")));
    assert_eq!(run["jobs"].as_array().unwrap().len(), 2);
    let runs: Value =
        serde_json::from_str(&get(&server.url("/api/v1/runs?repo=codertocat/hello-world")).await.body)
            .unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let runs: Value =
        serde_json::from_str(&get(&server.url("/api/v1/runs?status=completed")).await.body).unwrap();
    assert_eq!(runs, json!([]));

    // Unknown ids and bad filters.
    assert_eq!(refused(&server, &token, &["job", "show", "99"]), "metalfarm job show: no job 99\n");
    assert_eq!(get(&server.url("/api/v1/runs/99")).await.status, 404);
    let bad = refused(&server, &token, &["job", "list", "--status", "running"]);
    assert!(bad.contains("`running` is not a job status"), "{bad}");
    assert_eq!(get(&server.url("/api/v1/jobs?limit=0")).await.status, 422);

    // A run still going is not re-run.
    let busy = refused(&server, &token, &["run", "rerun", "1"]);
    assert_eq!(
        busy,
        "metalfarm run rerun: run 1 has 2 unfinished job(s): cancel them or let them end first\n"
    );

    // Cancelling the queued build ends it at once; kvm, which needs it, is skipped.
    assert_eq!(ok(&server, &token, &["job", "cancel", "1"]), "cancelled job 1 (build)\n");
    forge
        .wait_for("build cancelled on the forge", |runs| {
            runs.iter().any(|c| c.name == "CI / build" && c.conclusion.as_deref() == Some("cancelled"))
        })
        .await;
    assert_eq!(
        refused(&server, &token, &["job", "cancel", "1"]),
        "metalfarm job cancel: job 1 has already completed: cancelled\n"
    );
    assert_eq!(refused(&server, &token, &["job", "cancel", "99"]), "metalfarm job cancel: no job 99\n");
    let unauthorised = cli(&server, None, &["job", "cancel", "2"]);
    assert_eq!(unauthorised.code, 1, "{unauthorised:?}");
    assert!(unauthorised.stderr.contains("METALFARM_TOKEN"), "{}", unauthorised.stderr);
    let ended =
        wait_for_jobs(&server, "/api/v1/jobs?run=1", |jobs| jobs.iter().all(|j| j["status"] == "completed"))
            .await;
    let outcomes: Vec<_> = ended.iter().map(|j| (j["job_key"].clone(), j["conclusion"].clone())).collect();
    assert_eq!(outcomes, [(json!("kvm"), json!("skipped")), (json!("build"), json!("cancelled"))]);

    // Now it can be re-run: attempt 2, with its own jobs, at a higher priority.
    let rerun: Value =
        serde_json::from_str(&ok(&server, &token, &["run", "rerun", "1", "--priority", "3", "--json"]))
            .unwrap();
    let ids = (rerun["id"].as_i64(), rerun["run_number"].as_i64(), rerun["run_attempt"].as_i64());
    assert_eq!(ids, (Some(2), Some(1), Some(2)));
    assert_eq!(rerun["priority"], 3);
    let jobs: Vec<_> = rerun["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job_key"].clone(), j["status"].clone()))
        .collect();
    assert_eq!(jobs, [(json!("build"), json!("queued")), (json!("kvm"), json!("queued"))]);
    assert_eq!(refused(&server, &token, &["run", "rerun", "99"]), "metalfarm run rerun: no run 99\n");
    forge.wait_for("the re-run's check runs", |runs| runs.len() == 4).await;
    assert!(forge.violations().is_empty(), "{:?}", forge.violations());
}

/// Waits (bounded) until the jobs `path` lists satisfy `done`; them.
async fn wait_for_jobs(server: &FarmServer, path: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = get(&server.url(path)).await;
        let jobs: Vec<Value> = serde_json::from_str(&answer.body).expect("jobs as JSON");
        if done(&jobs) {
            return jobs;
        }
        assert!(std::time::Instant::now() < deadline, "{path} never got there: {jobs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `dispatch --wait` follows the run's jobs and ends, failing, when they are cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_wait_follows_the_run_until_it_ends() {
    let (server, forge) = farm_and_forge(REPO_TOML).await;
    server.write("workflows/deploy.yml", DEPLOY);
    forge.set_default_branch(REPO, "main");
    forge.set_ref(REPO, "main", MAIN_SHA);
    let token = admin_token(&server);
    let mut waiting = cli_command(&server, Some(&token), &dispatch(&["--input", "target=staging", "--wait"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start metalfarm dispatch --wait");
    wait_for_jobs(&server, "/api/v1/jobs", |jobs| jobs.len() == 1).await;
    assert_eq!(ok(&server, &token, &["job", "cancel", "1"]), "cancelled job 1 (deploy to staging)\n");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while waiting.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = waiting.kill();
            panic!("dispatch --wait did not end when its run did");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = waiting.wait_with_output().expect("its output");
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("started run 1 (Deploy #1, attempt 1)"), "{stdout}");
    let end = "job 1 (deploy to staging): queued -> completed: cancelled\nrun 1 ended: cancelled\n";
    assert!(stdout.ends_with(end), "{stdout}");
    assert_eq!(stderr, "metalfarm dispatch: run 1 ended cancelled\n");
}

// The test forge answers on this runtime while the CLI runs: more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_starts_a_run_with_checked_inputs() {
    let (server, forge) = farm_and_forge(REPO_TOML).await;
    server.write("workflows/deploy.yml", DEPLOY);
    forge.set_default_branch(REPO, "main");
    forge.set_ref(REPO, "main", MAIN_SHA);
    let token = admin_token(&server);
    // Inputs are checked against the declared ones before anything is recorded.
    let cases: [(&[&str], &str); 4] = [
        (
            &["--input", "target=moon"],
            "input `target`: `moon` is not one of its options (staging, production)",
        ),
        (&["--input", "target=staging", "--input", "colour=red"], "unexpected input `colour`"),
        (&[], "input `target` is required"),
        (&["--input", "target=staging", "--input", "dry-run=maybe"], "`maybe` is not a boolean"),
    ];
    for (extra, why) in cases {
        let stderr = refused(&server, &token, &dispatch(extra));
        assert!(stderr.contains(why), "{extra:?}: {stderr}");
        assert!(stderr.contains("declared inputs: target, dry-run"), "{stderr}");
    }
    let not_dispatchable =
        refused(&server, &token, &["dispatch", "--repo", REPO, "--workflow", "ci.yml", "--ref", "main"]);
    assert_eq!(
        not_dispatchable,
        "metalfarm dispatch: workflows/ci.yml does not run on `workflow_dispatch`: add `on: workflow_dispatch` \
         to dispatch it\n"
    );
    let unknown =
        refused(&server, &token, &["dispatch", "--repo", REPO, "--workflow", "nope.yml", "--ref", "main"]);
    assert!(
        unknown
            .contains("has no workflow `nope.yml` (its workflows: workflows/ci.yml, workflows/deploy.yml)"),
        "{unknown}"
    );
    let no_ref =
        refused(&server, &token, &["dispatch", "--repo", REPO, "--workflow", "deploy.yml", "--ref", "gone"]);
    assert_eq!(no_ref, "metalfarm dispatch: Codertocat/Hello-World: no commit for ref `gone`\n");
    let (status, body) = {
        let answer = post(
            &server.url("/api/v1/dispatch"),
            &[("content-type", "application/json")],
            json!({"repo": REPO, "workflow": "deploy.yml", "ref": "main", "inputs": {"target": "staging"}})
                .to_string()
                .into_bytes(),
        )
        .await;
        (answer.status, answer.body)
    };
    assert_eq!(status, 401, "no token: {body}");
    assert_eq!(get(&server.url("/api/v1/runs")).await.body, "[]", "nothing was recorded");

    // A good one: the run is on main's commit, its inputs reach the workflow.
    let started = ok(&server, &token, &dispatch(&["--input", "target=staging", "--priority", "5"]));
    insta::assert_snapshot!("dispatched", started);
    let runs: Value = serde_json::from_str(&ok(
        &server,
        &token,
        &dispatch(&["--input", "TARGET=production", "--input", "dry-run=true", "--json"]),
    ))
    .unwrap();
    let run = &runs[0];
    assert_eq!(run["event"], "workflow_dispatch");
    assert_eq!((run["ref"].as_str(), run["head_sha"].as_str()), (Some("refs/heads/main"), Some(MAIN_SHA)));
    assert_eq!((run["run_name"].as_str(), run["run_number"].as_i64()), (Some("Deploy production"), Some(2)));
    assert_eq!(run["jobs"][0]["name"], "deploy to production");
    let listed: Value =
        serde_json::from_str(&get(&server.url("/api/v1/runs?repo=Codertocat/Hello-World")).await.body)
            .unwrap();
    let priorities: Vec<_> =
        listed.as_array().unwrap().iter().map(|r| (r["id"].as_i64(), r["priority"].as_i64())).collect();
    assert_eq!(priorities, [(Some(2), Some(0)), (Some(1), Some(5))]);

    // The check runs appear on the forge, on main's commit.
    forge
        .wait_for("the dispatched runs' check runs", |runs| {
            runs.len() == 2 && runs.iter().all(|c| c.head_sha == MAIN_SHA)
        })
        .await;

    // A tag, given as a full ref, is `github.ref` as it is.
    let tag_sha = "fedcba9876543210fedcba9876543210fedcba98";
    forge.set_ref(REPO, "v1.0", tag_sha);
    let tagged = [
        "dispatch",
        "--repo",
        REPO,
        "--workflow",
        "workflows/deploy.yml",
        "--ref",
        "refs/tags/v1.0",
        "--input",
        "target=staging",
        "--json",
    ];
    let runs: Value = serde_json::from_str(&ok(&server, &token, &tagged)).unwrap();
    assert_eq!(
        (runs[0]["ref"].as_str(), runs[0]["head_sha"].as_str()),
        (Some("refs/tags/v1.0"), Some(tag_sha))
    );
    assert!(forge.violations().is_empty(), "{:?}", forge.violations());
}

#[tokio::test]
async fn the_openapi_document_describes_runs_jobs_and_dispatch() {
    let server = FarmServer::start("");
    let answer = get(&server.url("/api/v1/openapi.json")).await;
    assert_eq!(answer.status, 200);
    let doc: Value = serde_json::from_str(&answer.body).expect("openapi.json is JSON");
    let secured = |method: &str, path: &str| -> Option<bool> {
        let op = doc["paths"][path].get(method)?;
        Some(op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("admin_token").is_some())))
    };
    let expected = [
        ("get", "/runs", false),
        ("get", "/runs/{id}", false),
        ("post", "/runs/{id}/rerun", true),
        ("get", "/jobs", false),
        ("get", "/jobs/{id}", false),
        ("post", "/jobs/{id}/cancel", true),
        ("post", "/dispatch", true),
    ];
    for (method, path, wants_token) in expected {
        assert_eq!(secured(method, path), Some(wants_token), "{method} {path}");
    }
    let refs = regex::Regex::new(r##""\$ref":\s*"#/components/schemas/([^"]+)""##).unwrap();
    for found in refs.captures_iter(&answer.body) {
        assert!(
            doc["components"]["schemas"][&found[1]].is_object(),
            "a $ref to the undefined schema {}",
            &found[1]
        );
    }
    for schema in ["RunView", "JobView", "StepView", "CheckRunView", "DispatchRequest", "RerunRequest"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} is described");
    }

    // A farm without a forge App cannot resolve a ref: it says so.
    let token = admin_token(&server);
    let stderr = refused(&server, &token, &dispatch(&["--input", "target=staging"]));
    assert_eq!(
        stderr,
        "metalfarm dispatch: this farm has no forge.app_id: a dispatch needs the forge to resolve the ref\n"
    );
}

/// The API's read queries and a dispatch's event, the same on both back ends.
async fn reads_on(store: &metalfarm::store::Store) {
    use metalfarm::store::{CheckRunState, DeliveryInsert, JobQuery, NewJob, NewRun, RunQuery};

    let mut tx = store.begin().await.unwrap();
    let payload = json!({"inputs": {"target": "staging"}});
    assert_eq!(
        tx.insert_own_event("dispatch:1", "workflow_dispatch", &payload).await.unwrap(),
        DeliveryInsert::Stored
    );
    let run = |attempt_of| NewRun {
        repo: "Lab/QEMU",
        workflow: "workflows/deploy.yml",
        workflow_name: "Deploy",
        event: "workflow_dispatch",
        delivery_id: Some("dispatch:1"),
        head_sha: MAIN_SHA,
        check_sha: MAIN_SHA,
        git_ref: "refs/heads/main",
        attempt_of,
        priority: 2,
        ..Default::default()
    };
    let first = tx.insert_run(&run(None)).await.unwrap();
    let second = tx.insert_run(&run(Some(first.run_number))).await.unwrap();
    let labels = ["self-hosted".to_owned(), "HostProvisioning".to_owned()];
    let job = NewJob { job_key: "deploy", name: "deploy", runs_on: &labels, ..Default::default() };
    let job_id = tx.insert_job(first.run_id, &job).await.unwrap();
    let state = CheckRunState {
        name: "Deploy / deploy".into(),
        head_sha: MAIN_SHA.into(),
        status: "queued".into(),
        conclusion: None,
        title: "Queued".into(),
        summary: String::new(),
        annotations: Vec::new(),
        actions: Vec::new(),
    };
    tx.insert_check_run(first.run_id, Some(job_id), "Lab/QEMU", None, &state).await.unwrap();
    tx.commit().await.unwrap();

    let runs = |repo: Option<&str>, status: Option<&str>| RunQuery {
        repo: repo.map(str::to_owned),
        status: status.map(str::to_owned),
        limit: 10,
    };
    let ids = |found: Vec<metalfarm::store::RunRecord>| found.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_runs(&runs(None, None)).await.unwrap()), [second.run_id, first.run_id]);
    assert_eq!(ids(store.list_runs(&runs(Some("lab/qemu"), Some("queued"))).await.unwrap()).len(), 2);
    assert!(store.list_runs(&runs(Some("lab/kvm"), None)).await.unwrap().is_empty());
    assert!(store.list_runs(&runs(None, Some("completed"))).await.unwrap().is_empty());
    assert_eq!(store.run_record(first.run_id).await.unwrap().unwrap().priority, 2);
    assert_eq!(ids(store.runs_of_delivery("dispatch:1").await.unwrap()), [first.run_id, second.run_id]);
    let latest = store.latest_attempt("Lab/QEMU", "workflows/deploy.yml", first.run_number).await.unwrap();
    assert_eq!(latest.map(|r| r.run_attempt), Some(2));

    let jobs = |label: Option<&str>, host: Option<&str>| JobQuery {
        status: Some("queued".into()),
        run_id: Some(first.run_id),
        host: host.map(str::to_owned),
        label: label.map(str::to_owned),
        limit: 10,
    };
    assert_eq!(store.list_jobs(&jobs(Some("hostprovisioning"), None)).await.unwrap().len(), 1);
    assert!(store.list_jobs(&jobs(Some("host"), None)).await.unwrap().is_empty(), "whole labels only");
    let wildcard = store.list_jobs(&jobs(Some("hostprovisionin_"), None)).await.unwrap();
    assert!(wildcard.is_empty(), "LIKE's wildcards are taken literally");
    assert!(store.list_jobs(&jobs(None, Some("foo-amd"))).await.unwrap().is_empty());
    let found = store.job_record(job_id).await.unwrap().unwrap();
    assert_eq!((found.runs_on, found.host), (labels.to_vec(), None));
    assert!(store.job_steps(job_id).await.unwrap().is_empty());
    let check = store.job_check_run(job_id).await.unwrap().unwrap();
    assert_eq!((check.state.map(|s| s.status), check.delivered), (Some("queued".to_owned()), false));
    assert_eq!(store.jobs_of_run(second.run_id).await.unwrap(), []);
}

#[tokio::test]
async fn the_api_reads_work_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = metalfarm::store::Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display()))
        .await
        .unwrap();
    reads_on(&sqlite).await;
    let pg = common::postgres::Postgres::start();
    let postgres = metalfarm::store::Store::open(&pg.url()).await.expect("open on PostgreSQL");
    reads_on(&postgres).await;
}

/// A leased job is listed by its host, and cancelling it stops it and frees the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_frees_its_host() {
    let hosts = TestHosts::start(1);
    let config = format!("{REPO_TOML}\n{}", lab_toml(&hosts, &[("foo-amd", &["amd64"])]));
    let (server, forge) = farm_and_forge(&config).await;
    server.write(
        "workflows/ci.yml",
        "name: CI\non: push\njobs:\n  build:\n    runs-on: [self-hosted, amd64]\n    steps:\n      - run: sleep 600\n",
    );
    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    assert_eq!(deliver(&server, "push", "push-1", push.to_string().as_bytes()).await.status, 200);
    let token = admin_token(&server);

    let running = wait_for_jobs(&server, "/api/v1/jobs?host=foo-amd", |jobs| {
        jobs.len() == 1 && jobs[0]["status"] == "in_progress"
    })
    .await;
    assert_eq!(running[0]["job_key"], "build");
    let listed: Vec<Value> =
        serde_json::from_str(&ok(&server, &token, &["job", "list", "--status", "in_progress", "--json"]))
            .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["host"], "foo-amd");

    assert_eq!(
        ok(&server, &token, &["job", "cancel", "1"]),
        "cancelling job 1 (build) on foo-amd: it concludes cancelled once stopped\n"
    );
    forge
        .wait_for("build cancelled on the forge", |runs| {
            runs.iter().any(|c| c.name == "CI / build" && c.conclusion.as_deref() == Some("cancelled"))
        })
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let host: Value =
            serde_json::from_str(&get(&server.url("/api/v1/hosts/foo-amd")).await.body).unwrap();
        if (host["state"].as_str(), host["job_id"].as_i64()) == (Some("ready"), None) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the host is not freed: {host:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!hosts.host(0).run("pgrep -x sleep").status.success(), "the job's sleep was killed");
    assert!(forge.violations().is_empty(), "{:?}", forge.violations());
}
