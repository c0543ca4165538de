//! What the job runner reads and writes in the store, the same on SQLite and
//! PostgreSQL: the job to run with its workflow text, steps as they go, outputs for the
//! jobs that need it, retries after infrastructure failures, pinned host keys.

mod common;

use common::postgres::Postgres;
use metalfarm::farm::hosts::{HostSpec, Inventory};
use metalfarm::store::{NewJob, NewRun, StepState, Store};

async fn runner_store_on(store: &Store) {
    let run = NewRun {
        repo: "lab/qemu",
        workflow: "workflows/sanity.yml",
        workflow_name: "sanity",
        event: "push",
        head_sha: "abc",
        check_sha: "abc",
        git_ref: "refs/heads/master",
        workflow_source: "on: push\njobs: {}\n",
        ..Default::default()
    };
    let labels = ["kvm".to_owned()];
    let needs = ["build".to_owned()];
    let mut tx = store.begin().await.unwrap();
    let ids = tx.insert_run(&run).await.unwrap();
    let matrix = serde_json::json!({"os": "f18"});
    let build = NewJob {
        job_key: "build",
        name: "build (f18)",
        runs_on: &labels,
        matrix: Some(&matrix),
        ..Default::default()
    };
    let build_id = tx.insert_job(ids.run_id, &build).await.unwrap();
    let test =
        NewJob { job_key: "test", name: "test", runs_on: &labels, needs: &needs, ..Default::default() };
    let test_id = tx.insert_job(ids.run_id, &test).await.unwrap();
    tx.commit().await.unwrap();

    let job = store.job_to_run(build_id).await.unwrap().expect("the job");
    assert_eq!(job.workflow_source.as_deref(), Some("on: push\njobs: {}\n"));
    assert_eq!((job.job_key.as_str(), job.matrix.as_ref()), ("build", Some(&matrix)));
    assert_eq!((job.run_number, job.fork, job.infra_attempts), (1, false, 0));
    assert_eq!(store.job_to_run(test_id).await.unwrap().unwrap().needs, ["build"]);
    assert!(store.job_to_run(9999).await.unwrap().is_none());

    // Steps: inserted when they start, updated when they end.
    let mut tx = store.begin().await.unwrap();
    let started =
        StepState { number: 1, name: "make", status: "in_progress", outcome: None, conclusion: None };
    tx.record_step(build_id, &started).await.unwrap();
    let ended =
        StepState { status: "completed", outcome: Some("failure"), conclusion: Some("success"), ..started };
    tx.record_step(build_id, &ended).await.unwrap();
    let outputs = serde_json::json!({"version": "9.2"}).as_object().cloned().unwrap();
    tx.set_job_outputs(build_id, &outputs).await.unwrap();
    tx.complete_job(build_id, "success").await.unwrap();
    assert_eq!(tx.count_infra_attempt(test_id).await.unwrap(), 1);
    assert_eq!(tx.count_infra_attempt(test_id).await.unwrap(), 2);
    tx.commit().await.unwrap();
    let steps = store.job_steps(build_id).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!((steps[0].status.as_str(), steps[0].conclusion.as_deref()), ("completed", Some("success")));
    assert!(steps[0].completed_at.is_some());

    let needed = store.needed_jobs(ids.run_id, &needs).await.unwrap();
    assert_eq!(needed.len(), 1);
    assert_eq!((needed[0].conclusion.as_deref(), &needed[0].outputs), (Some("success"), &outputs));
    assert_eq!(store.job_to_run(test_id).await.unwrap().unwrap().infra_attempts, 2);

    let mut tx = store.begin().await.unwrap();
    tx.clear_steps(build_id).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.job_steps(build_id).await.unwrap().is_empty());

    // Host keys: the first one pinned sticks; a reinstall replaces it.
    let inventory = Inventory::new(store.clone());
    let spec = HostSpec { name: "kvm-1".into(), labels: labels.to_vec(), ..Default::default() };
    inventory.add(&spec).await.unwrap();
    assert_eq!(store.host_key("kvm-1").await.unwrap(), None);
    assert!(store.pin_first_host_key("kvm-1", "ssh-ed25519 AAAA first").await.unwrap());
    assert!(!store.pin_first_host_key("kvm-1", "ssh-ed25519 AAAA other").await.unwrap());
    assert_eq!(store.host_key("kvm-1").await.unwrap().as_deref(), Some("ssh-ed25519 AAAA first"));
    let mut tx = store.begin().await.unwrap();
    tx.pin_host_key("kvm-1", "ssh-ed25519 AAAA reinstalled").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.host_key("kvm-1").await.unwrap().as_deref(), Some("ssh-ed25519 AAAA reinstalled"));
}

#[tokio::test]
async fn the_runner_store_works_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}", dir.path().join("farm.db").display())).await.unwrap();
    runner_store_on(&sqlite).await;
    let pg = Postgres::start();
    let postgres = Store::open(&pg.url()).await.expect("open on PostgreSQL");
    runner_store_on(&postgres).await;
}
