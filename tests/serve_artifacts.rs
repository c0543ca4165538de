//! Artifacts reach the user: a job on a real `metalfarm serve` and a real OpenSSH test
//! host uploads with `actions/upload-artifact`; the run's artifacts are listed and their
//! files served under `/api/v1/runs/{id}/artifacts`, and the check run links them. Odd
//! file names, a file that cannot be uploaded and the farm's own full disk fail no host.

mod common;

use common::farm::{get, host_json};
use common::lab::{run_one_job, OneHostFarm, UPLOADING};
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
    // The harness starts `serve` under umask 000: its database, logs, artifacts and keys
    // are its own all the same; and its log, a pipe here, has no colour codes.
    common::farm::assert_private(&server.dir.path().join("data"));
    assert!(server.log_lines().iter().all(|l| !l.contains('\u{1b}')), "colour codes in the server's log");
}

const HOSTILE: &str = r###"
name: Hostile
on: push
jobs:
  build:
    runs-on: [self-hosted, kvm]
    steps:
      - run: |
          mkdir -p out pipe big
          printf 'data\n' > "out/a
          b.txt"
          mkfifo pipe/fifo
          head -c 1048576 /dev/zero > big/big.bin
      - uses: actions/upload-artifact@v4
        with: {name: odd, path: out/}
      - continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: pipe, path: pipe/}
      - uses: actions/upload-artifact@v4
        with: {name: big, path: big/}
"###;

/// The attacks of issue 11 on a real server: a file named with a newline is uploaded
/// as data, a FIFO is the step's error, and the farm's own full disk (its artifact
/// folder on a 64 KiB file system) is the farm's failure. None of them sends the host
/// to repair or retries the job, and no step is left `in_progress`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_and_a_full_farm_disk_fail_no_host() {
    let farm = OneHostFarm::start("").await;
    let server = &farm.server;
    let artifacts = server.dir.path().join("data/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _tiny = common::TinyDisk::mount(&artifacts);
    let check = farm.push_and_finish(HOSTILE, "Hostile / build").await;
    let job = farm.job(&check).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert!(check.title.starts_with("Farm failure at step 4"), "{check:#?}");
    assert!(
        check.summary.contains("The farm failed the job:** The farm could not store artifact `big`"),
        "{}",
        check.summary
    );
    let messages: Vec<String> =
        check.annotations.iter().map(|a| a["message"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(messages.iter().any(|m| m.contains("pipe/fifo: it is not a regular file")), "{messages:?}");

    let host = host_json(server, "kvm-a").await;
    assert_eq!(host["state"], "ready", "the host failed nothing: {host:#}");
    let steps = job["steps"].as_array().expect("the job's steps");
    assert_eq!(steps.len(), 4, "{job:#}");
    for step in steps {
        assert_eq!(step["status"], "completed", "{step:#}");
    }
    let run = job["run_id"].as_i64().expect("the job's run");
    let listed = get(&server.url(&format!("/api/v1/runs/{run}/artifacts/odd"))).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let odd: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(odd["files"], json!([{"path": "a\nb.txt", "size": 5}]), "{odd:#}");
    let file = get(&server.url(&format!("/api/v1/runs/{run}/artifacts/odd/a%0Ab.txt"))).await;
    assert_eq!((file.status, file.body.as_str()), (200, "data\n"));
    assert_eq!(get(&server.url(&format!("/api/v1/runs/{run}/artifacts/big"))).await.status, 404);
}
