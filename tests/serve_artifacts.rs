//! Artifacts reach the user: a job on a real `metalfarm serve` and a real OpenSSH test
//! host uploads with `actions/upload-artifact`; the run's artifacts are listed and their
//! files served under `/api/v1/runs/{id}/artifacts`, and the check run links them.

mod common;

use common::farm::get;
use common::lab::{run_one_job, UPLOADING};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_artifacts_are_listed_served_and_linked_from_its_check_run() {
    let farm = run_one_job("", UPLOADING, "Artifacts / build").await;
    let (server, check) = (&farm.server, &farm.check);
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
}
