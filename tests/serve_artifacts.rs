//! Artifacts reach the user: a job on a real `metalfarm serve` and a real OpenSSH test
//! host uploads with `actions/upload-artifact`; the run's artifacts are listed and their
//! files served under `/api/v1/runs/{id}/artifacts`, and the check run links them.

mod common;

use common::farm::{app_key_pair, deliver, example_payload, get, FarmServer};
use common::forge::TestForge;
use common::lab::lab_toml;
use common::testhost::TestHosts;
use serde_json::{json, Value};

const UPLOADING: &str = r###"
name: Artifacts
on: push
jobs:
  build:
    runs-on: [self-hosted, kvm]
    steps:
      - run: |
          mkdir -p out/logs
          printf 'kernel log\n' > out/logs/kernel.log
          printf 'result: pass\n' > out/result.txt
      - uses: actions/upload-artifact@v4
        with: {name: test-results, path: out/}
"###;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_artifacts_are_listed_served_and_linked_from_its_check_run() {
    let hosts = TestHosts::start(1);
    let (private, public) = app_key_pair();
    let forge = TestForge::start(public).await;
    let config = format!(
        "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n\n{}",
        lab_toml(&hosts, &[("kvm-a", &["kvm"])])
    );
    let server = FarmServer::start_reporting_with(&forge.api_url(), &private, "", &config);
    server.write("workflows/artifacts.yml", UPLOADING);
    let payload =
        example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    let answer = deliver(&server, "push", "d-artifacts", payload.to_string().as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    forge
        .wait_for("the job completed", |runs| {
            runs.iter().any(|r| r.name == "Artifacts / build" && r.status == "completed")
        })
        .await;
    let check = forge.check_runs().into_iter().find(|r| r.name == "Artifacts / build").unwrap();
    assert_eq!(check.conclusion.as_deref(), Some("success"), "{check:#?}");
    let job: Value =
        serde_json::from_str(&get(&server.url(&format!("/api/v1/jobs/{}", check.external_id))).await.body)
            .unwrap();
    let run = job["run_id"].as_i64().expect("the job's run");

    let link = format!("https://farm.example.com/api/v1/runs/{run}/artifacts/test-results");
    assert!(check.summary.contains(&format!("[`test-results`]({link})")), "{}", check.summary);

    let listed = get(&server.url(&format!("/api/v1/runs/{run}/artifacts"))).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let expected = json!({
        "name": "test-results",
        "size": 24,
        "files": [{"path": "logs/kernel.log", "size": 11}, {"path": "result.txt", "size": 13}],
    });
    assert_eq!(serde_json::from_str::<Value>(&listed.body).unwrap(), json!([expected.clone()]));
    let one = get(&server.url(&format!("/api/v1/runs/{run}/artifacts/test-results"))).await;
    assert_eq!(serde_json::from_str::<Value>(&one.body).unwrap(), expected);

    let file = get(&server.url(&format!("/api/v1/runs/{run}/artifacts/test-results/logs/kernel.log"))).await;
    assert_eq!((file.status, file.body.as_str()), (200, "kernel log\n"));
    for missing in [
        format!("/api/v1/runs/{run}/artifacts/test-results/nope.txt"),
        format!("/api/v1/runs/{run}/artifacts/test-results/logs"),
        format!("/api/v1/runs/{run}/artifacts/test-results/..%2F..%2Fartifacts"),
        format!("/api/v1/runs/{run}/artifacts/other"),
        format!("/api/v1/runs/{}/artifacts", run + 1000),
    ] {
        assert_eq!(get(&server.url(&missing)).await.status, 404, "{missing}");
    }

    let document: Value = serde_json::from_str(&get(&server.url("/api/v1/openapi.json")).await.body).unwrap();
    for path in ["/runs/{id}/artifacts", "/runs/{id}/artifacts/{name}", "/runs/{id}/artifacts/{name}/{path}"]
    {
        assert!(document["paths"][path]["get"].is_object(), "{path} in the OpenAPI document");
    }
    // The harness starts `serve` under umask 000: its database, logs, artifacts and keys
    // are its own all the same; and its log, a pipe here, has no colour codes.
    common::farm::assert_private(&server.dir.path().join("data"));
    assert!(server.log_lines().iter().all(|l| !l.contains('\u{1b}')), "colour codes in the server's log");
}
