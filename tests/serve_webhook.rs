//! `POST /webhook` of a real `metalfarm serve`: signatures, idempotent redeliveries,
//! limits, and durability across SIGKILL.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::farm::{deliver, example_payload, post, try_deliver, FarmServer};

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";
const CI: &str =
    "name: CI\non: push\njobs:\n  build:\n    runs-on: [self-hosted, amd64]\n    steps:\n      - run: make\n";

async fn stored_deliveries(server: &FarmServer) -> i64 {
    let store = server.store().await;
    let n = store.delivery_count().await.expect("count");
    store.close().await;
    n
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_refused_and_nothing_is_stored() {
    let server = FarmServer::start("");
    let body = serde_json::to_vec(&example_payload("push", |p| p["ref"] == "refs/heads/master")).unwrap();
    let forged = metalfarm::forge::webhook::sign(b"not the secret", &body);
    let answer = post(
        &server.url("/webhook"),
        &[("x-github-event", "push"), ("x-github-delivery", "d-forged"), ("x-hub-signature-256", &forged)],
        body.clone(),
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.body.contains("does not match"), "{}", answer.body);

    let answer = post(
        &server.url("/webhook"),
        &[("x-github-event", "push"), ("x-github-delivery", "d-unsigned")],
        body,
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(stored_deliveries(&server).await, 0);
}

#[tokio::test]
async fn a_redelivery_is_stored_once() {
    let server = FarmServer::start("");
    let body = serde_json::to_vec(&example_payload("push", |p| p["ref"] == "refs/heads/master")).unwrap();
    let first = deliver(&server, "push", "d-1", &body).await;
    let again = deliver(&server, "push", "d-1", &body).await;
    assert_eq!((first.status, again.status), (200, 200));
    assert!(first.body.contains("\"duplicate\":false"), "{}", first.body);
    assert!(again.body.contains("\"duplicate\":true"), "{}", again.body);
    assert_eq!(stored_deliveries(&server).await, 1);
}

#[tokio::test]
async fn bad_bodies_and_unhandled_events_get_their_status() {
    let server = FarmServer::start("");
    assert_eq!(
        deliver(&server, "ping", "d-ping", br#"{"zen":"Keep it logically awesome."}"#).await.status,
        200
    );
    assert_eq!(deliver(&server, "push", "d-bad", b"{not json").await.status, 400);
    let star = serde_json::to_vec(&example_payload("star", |_| true)).unwrap();
    assert_eq!(deliver(&server, "star", "d-star", &star).await.status, 202);
    // Over GitHub's 25 MB cap.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    assert_eq!(deliver(&server, "push", "d-huge", &huge).await.status, 413);
    // Only the ping was worth storing.
    assert_eq!(stored_deliveries(&server).await, 1);
}

/// Deliveries keep coming from concurrent senders while the server is killed with
/// SIGKILL and restarted: every delivery that got a 2xx is in the store afterwards and
/// is processed, once; the others failed visibly (no answer), as the forge would see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_delivery_survives_a_sigkill() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 125;
    let mut server = FarmServer::start(REPO);
    server.write("workflows/ci.yml", CI);
    let addr = Arc::new(Mutex::new(server.addr));
    let body =
        Arc::new(serde_json::to_vec(&example_payload("push", |p| p["ref"] == "refs/heads/master")).unwrap());
    let acked = Arc::new(AtomicUsize::new(0));

    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (addr, body, acked) = (addr.clone(), body.clone(), acked.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..PER_SENDER {
                    let id = format!("d-{sender}-{i}");
                    let target = *addr.lock().unwrap();
                    match try_deliver(target, "push", &id, &body).await {
                        Ok(answer) if (200..300).contains(&answer.status) => {
                            acknowledged.push(id);
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        // The server is down: this delivery failed; the next waits a little.
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Kill in the middle of the stream, with requests in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < SENDERS * PER_SENDER / 3 {
        assert!(Instant::now() < deadline, "deliveries are not being acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill_and_restart();
    *addr.lock().unwrap() = server.addr;
    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(acknowledged.len() > SENDERS * PER_SENDER / 2, "only {} acknowledged", acknowledged.len());
    server.kill_and_restart();

    // The restarted server works through the backlog.
    server.processed().await;
    let store = server.store().await;
    let mut runs_per_delivery = std::collections::HashMap::new();
    for run in store.runs().await.unwrap() {
        *runs_per_delivery.entry(run.delivery_id.unwrap()).or_insert(0) += 1;
    }
    for id in &acknowledged {
        assert_eq!(
            runs_per_delivery.get(id),
            Some(&1),
            "acknowledged delivery {id} did not make exactly one run"
        );
    }
    store.close().await;
}
