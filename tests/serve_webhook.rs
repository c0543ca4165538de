//! `POST /webhook` of a real `metalfarm serve`: signatures, idempotent redeliveries,
//! limits (bodies refused before they are read, the memory of big bodies received at
//! once), and durability across SIGKILL.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::farm::{
    answer_to_partial_body, deliver, deliver_at_once, example_payload, post, raw_json_error, try_deliver,
    FarmServer,
};

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
    // Over GitHub's 25 MB cap: a_body_is_refused_by_its_headers_before_it_is_read.
    // Only the ping was worth storing.
    assert_eq!(stored_deliveries(&server).await, 1);
}

#[tokio::test]
async fn a_body_is_refused_by_its_headers_before_it_is_read() {
    let server = FarmServer::start("");
    let start =
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-github-event: push\r\nx-github-delivery: d-1\r\n";
    let signed = format!("x-hub-signature-256: sha256={}\r\n", "0".repeat(64));
    // 24 MB announced, 64 KiB sent: an unsigned one is refused without the rest.
    let head = format!("{start}content-length: {}\r\n\r\n", 24 << 20);
    let error = raw_json_error(answer_to_partial_body(server.addr, &head, 64 << 10).await, "401");
    assert!(error.contains("missing X-Hub-Signature-256"), "{error}");
    let head = format!("{start}x-hub-signature-256: md5=abc\r\ncontent-length: {}\r\n\r\n", 24 << 20);
    let error = raw_json_error(answer_to_partial_body(server.addr, &head, 64 << 10).await, "401");
    assert!(error.contains("malformed"), "{error}");
    // Over 25 MB announced: refused by its length.
    let head = format!("{start}{signed}content-length: {}\r\n\r\n", 26 << 20);
    let error = raw_json_error(answer_to_partial_body(server.addr, &head, 64 << 10).await, "413");
    assert!(error.contains("at most"), "{error}");
    // No length announced (chunked): refused before the first chunk is read.
    let head = format!("{start}{signed}transfer-encoding: chunked\r\n\r\n");
    let error = raw_json_error(answer_to_partial_body(server.addr, &head, 0).await, "411");
    assert!(error.contains("Content-Length"), "{error}");
    // A body that stops short is given up at server.body_timeout.
    let server = FarmServer::start_with_server_keys("body_timeout = \"1s\"", "");
    let head = format!("{start}{signed}content-length: 1000\r\n\r\n");
    let error = raw_json_error(answer_to_partial_body(server.addr, &head, 10).await, "408");
    assert!(error.contains("server.body_timeout"), "{error}");
    assert_eq!(stored_deliveries(&server).await, 0);
}

/// 48 bodies of 24 MB at once, unsigned and then wrongly signed: all refused, and the
/// server's peak memory stays far below the bodies' 1.1 GB (the figure against its
/// target is `cargo bench --bench webhook_memory`'s; this bound is generous).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_bodies_received_at_once_take_bounded_memory() {
    const BOUND_MIB: u64 = 300;
    let server = FarmServer::start("");
    let body = serde_json::to_vec(&example_payload("push", |p| p["ref"] == "refs/heads/master")).unwrap();
    assert_eq!(deliver(&server, "push", "d-warm", &body).await.status, 200);
    let idle = server.status_kib("VmRSS");
    server.reset_peak_memory();
    let big = hyper::body::Bytes::from(vec![b' '; 24 << 20]);
    for status in deliver_at_once(server.addr, 48, big.clone(), None).await {
        // The connection may break while the refused body is still being sent.
        assert!(matches!(status, Ok(401) | Err(_)), "{status:?}");
    }
    let wrong = format!("sha256={}", "0".repeat(64));
    for status in deliver_at_once(server.addr, 48, big, Some(&wrong)).await {
        // Read whole to be checked, or refused when its share of webhook_memory never came.
        assert!(matches!(status, Ok(401) | Ok(503)), "{status:?}");
    }
    let peak_above_idle = (server.status_kib("VmHWM").saturating_sub(idle)) / 1024;
    assert!(peak_above_idle < BOUND_MIB, "peak {peak_above_idle} MiB above idle (bound {BOUND_MIB} MiB)");
    // It still takes deliveries.
    assert_eq!(deliver(&server, "push", "d-after", &body).await.status, 200);
    assert_eq!(stored_deliveries(&server).await, 1 + 1);
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
