//! The store on PostgreSQL: the same operations as on SQLite, through the same `Store`.

mod common;

use common::postgres::Postgres;
use metalfarm::store::{Approval, CheckRunState, DeliveryInsert, NewRun, Store};

#[tokio::test]
async fn the_store_works_the_same_on_postgres() {
    let pg = Postgres::start();
    let store = Store::open(&pg.url()).await.expect("open on PostgreSQL");
    assert_eq!(store.backend(), metalfarm::store::Backend::Postgres);

    assert_eq!(store.insert_delivery("d1", "push", "{}").await.unwrap(), DeliveryInsert::Stored);
    assert_eq!(store.insert_delivery("d1", "push", "{}").await.unwrap(), DeliveryInsert::Duplicate);

    let run = NewRun {
        repo: "lab/qemu",
        workflow: "workflows/qemu-sanity.yml",
        workflow_name: "qemu sanity",
        event: "push",
        delivery_id: Some("d1"),
        head_sha: "abc",
        check_sha: "abc",
        git_ref: "refs/heads/master",
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let first = tx.insert_run(&run).await.unwrap();
    let second = tx.insert_run(&run).await.unwrap();
    let retry = tx.insert_run(&NewRun { attempt_of: Some(first.run_number), ..run.clone() }).await.unwrap();
    let state = CheckRunState {
        name: "qemu sanity / sanity".into(),
        head_sha: "abc".into(),
        status: "queued".into(),
        conclusion: None,
        title: "Queued".into(),
        summary: "Waiting for a host".into(),
        annotations: vec![],
        actions: vec![],
    };
    let check = tx.insert_check_run(first.run_id, None, "lab/qemu", None, &state).await.unwrap();
    tx.mark_delivery_processed("d1", "1 run").await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!((first.run_number, second.run_number), (1, 2));
    assert_eq!((retry.run_number, retry.run_attempt), (1, 2));
    assert!(store.unprocessed_deliveries(10).await.unwrap().is_empty());
    let due = store.due_check_runs(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].items[0].state, state);
    // The intent to create it on the forge is recorded before the request leaves.
    assert_eq!(due[0].creation_sent_item, None);
    store.mark_creation_sent(check, due[0].items[0].id).await.unwrap();
    assert_eq!(
        store.due_check_runs(i64::MAX, 10).await.unwrap()[0].creation_sent_item,
        Some(due[0].items[0].id)
    );
    store.mark_delivered(check, due[0].items[0].id).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert_eq!(store.latest_runs_for_commit("lab/qemu", "abc").await.unwrap().len(), 2);

    // A fork's run waiting for approval is approved once.
    let mut tx = store.begin().await.unwrap();
    let fork =
        tx.insert_run(&NewRun { fork: true, approval: Approval::Required, ..run.clone() }).await.unwrap();
    assert!(tx.approve_run(fork.run_id).await.unwrap());
    assert!(!tx.approve_run(fork.run_id).await.unwrap());
    assert!(tx.job_check_runs(fork.run_id).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    let fork = store.run(fork.run_id).await.unwrap().expect("the fork's run");
    assert_eq!((fork.fork, fork.approval), (true, Approval::Approved));
    store.close().await;

    // A second start finds its schema and keeps its data.
    let store = Store::open(&pg.url()).await.unwrap();
    assert_eq!(store.runs().await.unwrap().len(), 4);
    store.close().await;
}
