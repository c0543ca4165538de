//! Signed webhook deliveries per second through `POST /webhook` of a real
//! `metalfarm serve` (release build), each answered 2xx only once it is committed to
//! SQLite with `synchronous = FULL`. The load generator runs in this process on
//! loopback: keep-alive HTTP/1.1 connections, each sending one delivery at a time, all
//! the same real push payload from `@octokit/webhooks-examples` with distinct
//! `X-GitHub-Delivery` ids. Afterwards every acknowledged delivery is looked up in the
//! store (and must have been processed).
//!
//! Two farms are measured: one with no `[[repo]]` (each push is stored, then processed
//! as "not a configured repository" — the cost of taking deliveries in), and one whose
//! repository has a workflow, so every push also plans a run with a check run in the
//! outbox while deliveries keep arriving.
//!
//! Target (issue 3): ≥ 3,000 deliveries per second, p99 answer time under 20 ms.
//! Run with `cargo bench --bench webhook` after `scripts/test.sh` has installed the npm
//! packages.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::farm::{example_payload, FarmServer, WEBHOOK_SECRET};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Deliveries per measured farm (after a warm-up), unless the time bound ends it first.
const DELIVERIES: usize = 20_000;
const WARM_UP: usize = 500;
const TIME_BOUND: Duration = Duration::from_secs(60);
/// Concurrent keep-alive connections (each one delivery at a time), as a busy forge's
/// delivery workers would open; each farm is measured at each of these.
const CONNECTIONS: [usize; 2] = [32, 64];

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";
const CI: &str =
    "name: CI\non: push\njobs:\n  build:\n    runs-on: [self-hosted, amd64]\n    steps:\n      - run: make\n";

/// What one load run saw.
struct Load {
    acknowledged: Vec<String>,
    failed: usize,
    latencies: Vec<Duration>,
    wall: Duration,
}

/// Sends `count` deliveries (ids `{prefix}-{n}`) over `connections` connections.
async fn load(addr: SocketAddr, body: Bytes, prefix: &str, count: usize, connections: usize) -> Load {
    let signature: Arc<str> = metalfarm::forge::webhook::sign(WEBHOOK_SECRET.as_bytes(), &body).into();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + TIME_BOUND;
    let senders: Vec<_> = (0..connections)
        .map(|_| {
            let (body, signature, next, prefix) =
                (body.clone(), signature.clone(), next.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::spawn(connection);
                let (mut acknowledged, mut failed, mut latencies) = (Vec::new(), 0, Vec::new());
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count || Instant::now() >= deadline {
                        break;
                    }
                    let id = format!("{prefix}-{n:06}");
                    let request = hyper::Request::post("/webhook")
                        .header("host", addr.to_string())
                        .header("content-type", "application/json")
                        .header("user-agent", "GitHub-Hookshot/bench")
                        .header("x-github-event", "push")
                        .header("x-github-delivery", &id)
                        .header("x-hub-signature-256", &*signature)
                        .body(Full::new(body.clone()))
                        .expect("request");
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.expect("answer");
                    let status = response.status();
                    response.into_body().collect().await.expect("answer body");
                    latencies.push(sent.elapsed());
                    if status.is_success() {
                        acknowledged.push(id);
                    } else {
                        failed += 1;
                    }
                }
                (acknowledged, failed, latencies)
            })
        })
        .collect();
    let mut all = Load { acknowledged: Vec::new(), failed: 0, latencies: Vec::new(), wall: Duration::ZERO };
    for sender in senders {
        let (acknowledged, failed, latencies) = sender.await.expect("connection task");
        all.acknowledged.extend(acknowledged);
        all.failed += failed;
        all.latencies.extend(latencies);
    }
    all.wall = start.elapsed();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Measures one farm; returns (deliveries per second, p99).
async fn measure(name: &str, server: &FarmServer, body: &Bytes, connections: usize) -> (f64, Duration) {
    let warm_up = load(server.addr, body.clone(), "warm-up", WARM_UP, connections).await;
    assert_eq!(warm_up.failed, 0, "warm-up deliveries were refused");
    let mut run = load(server.addr, body.clone(), "bench", DELIVERIES, connections).await;
    let acked = run.acknowledged.len();
    assert!(acked > 0, "no delivery was acknowledged");
    run.latencies.sort();
    let per_second = acked as f64 / run.wall.as_secs_f64();
    let p99 = percentile(&run.latencies, 0.99);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    // Every acknowledged delivery is stored; wait (bounded) for the processor to finish.
    let processing = Instant::now();
    server.processed().await;
    let processing = processing.elapsed();
    let store = server.store().await;
    for id in &run.acknowledged {
        assert!(
            store.delivery_processed(id).await.expect("query"),
            "acknowledged delivery {id} is not stored"
        );
    }
    let stored = store.delivery_count().await.expect("count") as usize - warm_up.acknowledged.len();
    store.close().await;

    println!("{name}, {connections} connections");
    println!(
        "  {acked} deliveries acknowledged ({} refused) in {:.2} s: {per_second:.0}/s",
        run.failed,
        run.wall.as_secs_f64()
    );
    println!(
        "  answer time p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(percentile(&run.latencies, 0.5)),
        ms(percentile(&run.latencies, 0.9)),
        ms(p99),
        ms(*run.latencies.last().expect("latencies"))
    );
    println!(
        "  all {acked} acknowledged deliveries found in the store ({stored} stored); processing finished {:.2} s after the last answer",
        processing.as_secs_f64()
    );
    (per_second, p99)
}

fn main() {
    let body: Bytes = serde_json::to_vec(&example_payload("push", |p| p["ref"] == "refs/heads/master"))
        .expect("json")
        .into();
    // The generator gets one thread; the server has the machine's cores.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!(
        "metalfarm serve (release, RUST_LOG=metalfarm=info), {} byte push payload, {DELIVERIES} deliveries after {WARM_UP} warm-up, 2xx only after the commit (SQLite WAL, synchronous = FULL):",
        body.len()
    );

    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut verdicts = Vec::new();
    for connections in CONNECTIONS {
        let intake = FarmServer::start("");
        let (per_second, p99) = runtime.block_on(measure(
            "farm without repositories (store, then process as unconfigured)",
            &intake,
            &body,
            connections,
        ));
        verdicts.push(format!(
            "intake, {connections} connections: {per_second:.0} deliveries/s (target >= 3,000: {}), p99 {:.2} ms (target < 20 ms: {})",
            met(per_second >= 3000.0),
            p99.as_secs_f64() * 1e3,
            met(p99 < Duration::from_millis(20))
        ));
        drop(intake);

        let planning = FarmServer::start(REPO);
        planning.write("workflows/ci.yml", CI);
        runtime.block_on(measure(
            "farm with a workflow (store, then plan a run and its check run per push)",
            &planning,
            &body,
            connections,
        ));
        drop(planning);
    }
    for verdict in verdicts {
        println!("{verdict}");
    }
}
