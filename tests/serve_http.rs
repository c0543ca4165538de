//! The HTTP face of a real `metalfarm serve` under attack: slow and idle connections, a
//! connection cap, error answers, `Host` headers of other names (DNS rebinding), CORS,
//! and who may read the API.

mod common;

use std::time::Duration;

use common::cli::{admin_token, cli};
use common::farm::{
    answer_to_partial_body, example_payload, raw_json_error, read_raw_answer, try_request, Answer, FarmServer,
};
use common::lab::{run_one_job, UPLOADING};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Sends a request; panics when the connection fails.
async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    try_request(method, url, headers, Vec::new()).await.expect("HTTP request")
}

/// Asserts an error answer: its status, and `{"error": "…"}` as JSON.
fn assert_json_error(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"), "{what}: {answer:?}");
    assert!(answer.json()["error"].is_string(), "{what}: {answer:?}");
}

/// Whether the server closes `stream` within `within` (reading and dropping what it sends).
async fn closed_within(stream: &mut tokio::net::tcp::OwnedReadHalf, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_and_idle_connections_are_closed() {
    let server = FarmServer::start_with_server_keys("header_timeout = \"1s\"", "");
    // 20 connections sending their headers a byte at a time, never finishing them.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let (reader, mut writer) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let trickle = tokio::spawn(async move {
            writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await?;
            loop {
                writer.write_all(b"X").await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
        slow.push((reader, trickle));
    }
    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let answer = read_raw_answer(&mut idle, Duration::from_secs(10)).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{answer}");
    let (mut idle, _idle_writer) = idle.into_split();

    // Closed after about `header_timeout` (1 s); 10 s is the bound, not the measure.
    for (mut reader, trickle) in slow {
        assert!(closed_within(&mut reader, Duration::from_secs(10)).await, "a slow sender was not closed");
        trickle.abort();
    }
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await, "an idle connection was not closed");
    // And the server answers as before.
    assert_eq!(request("GET", &server.url("/healthz"), &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_connections_wait_for_a_place() {
    let server = FarmServer::start_with_server_keys("max_connections = 4\nheader_timeout = \"60s\"", "");
    // Four silent connections take every place.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fifth = TcpStream::connect(server.addr).await.unwrap();
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert!(
        read_raw_answer(&mut fifth, Duration::from_secs(1)).await.is_none(),
        "a fifth connection was served beyond max_connections = 4"
    );
    // One place freed: the waiting connection is served.
    drop(held.pop());
    let answer =
        read_raw_answer(&mut fifth, Duration::from_secs(10)).await.expect("served once a place was free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    drop(fifth);
    for _ in 0..10 {
        assert_eq!(request("GET", &server.url("/healthz"), &[]).await.status, 200);
    }
}

#[tokio::test]
async fn every_error_answer_is_json_and_a_nul_is_bad_input() {
    let server = FarmServer::start("");
    let cases = [
        ("GET", "/nope", 404),
        ("GET", "/api/v1/nope", 404),
        ("GET", "/webhook", 405),
        ("DELETE", "/healthz", 405),
        ("GET", "/api/v1/jobs/abc", 400),
        ("GET", "/api/v1/runs/1x/artifacts", 400),
        ("GET", "/api/v1/hosts/a%00b", 400),
        ("GET", "/api/v1/runs/1/artifacts/a%00/b", 400),
        ("GET", "/api/v1/runs/1/artifacts/a/b%00", 400),
        ("GET", "/api/v1/jobs/1/log%00", 400),
        ("GET", "/api/v1/hosts?label=%00", 400),
    ];
    for (method, path, status) in cases {
        let answer = request(method, &server.url(path), &[]).await;
        assert_json_error(&answer, status, &format!("{method} {path}"));
    }
    // A body over the API's 2 MiB limit: 2.5 MiB of 3 sent.
    let token = admin_token(&server);
    let head = format!(
        "POST /api/v1/hosts HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        3 << 20
    );
    raw_json_error(answer_to_partial_body(server.addr, &head, 5 << 19).await, "413");
    // An install's announcement needs no admin token: it is capped at 64 KiB.
    let head = format!(
        "POST /api/v1/hosts/lab-1/installed HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        1 << 20
    );
    raw_json_error(answer_to_partial_body(server.addr, &head, 128 << 10).await, "413");
}

#[tokio::test]
async fn another_hosts_name_is_refused_and_nothing_is_shared_across_origins() {
    let server = FarmServer::start("[[host]]\nname = \"lab-1\"\nlabels = [\"kvm\"]\n");
    let port = server.addr.port();
    let hosts = server.url("/api/v1/hosts");
    // What a page of evil.example sends once it has rebound its name to this farm.
    for host in
        [format!("evil.example:{port}"), "evil.example".into(), "farm.example.com.evil.example".into()]
    {
        let answer = request("GET", &hosts, &[("host", &host)]).await;
        assert_json_error(&answer, 421, &host);
        assert!(!answer.body.contains("lab-1"), "{}", answer.body);
    }
    // This farm's names: the listen address, localhost, and public_url's host.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "farm.example.com".into()] {
        let answer = request("GET", &hosts, &[("host", &host)]).await;
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
        assert!(answer.body.contains("lab-1"), "{}", answer.body);
    }
    // The forge reaches the webhook through whatever proxy: its signature is checked.
    let payload = serde_json::to_vec(&example_payload("ping", |_| true)).unwrap();
    let answer = try_request(
        "POST",
        &server.url("/webhook"),
        &[("host", "hooks.example.net"), ("x-github-event", "ping"), ("x-github-delivery", "d-1")],
        payload,
    )
    .await
    .unwrap();
    assert_json_error(&answer, 401, "an unsigned delivery through a proxy");

    // No CORS allowance, to a preflight or to a request with an Origin.
    let origin = [
        ("origin", "http://evil.example"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "authorization"),
    ];
    for (method, path) in
        [("OPTIONS", "/api/v1/hosts"), ("GET", "/api/v1/hosts"), ("GET", "/metrics"), ("OPTIONS", "/webhook")]
    {
        let answer = request(method, &server.url(path), &origin).await;
        let allowances: Vec<_> =
            answer.headers.keys().filter(|name| name.as_str().starts_with("access-control-")).collect();
        assert!(allowances.is_empty(), "{method} {path}: {answer:?}");
    }
}

#[tokio::test]
async fn reads_are_open_on_loopback_and_need_the_token_beyond_it() {
    let loopback = FarmServer::start("");
    assert_eq!(request("GET", &loopback.url("/api/v1/hosts"), &[]).await.status, 200);
    assert_eq!(request("GET", &loopback.url("/metrics"), &[]).await.status, 200);

    // Listening on every address (reached here through loopback): reads need the token.
    let wide = FarmServer::start_with_server_keys("listen = \"0.0.0.0:0\"", "");
    let token = admin_token(&wide);
    for path in ["/api/v1/hosts", "/api/v1/jobs", "/metrics", "/api/v1/openapi.json"] {
        let answer = request("GET", &wide.url(path), &[]).await;
        assert_json_error(&answer, 401, path);
        assert_eq!(answer.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
        let wrong = request("GET", &wide.url(path), &[("authorization", "Bearer guess")]).await;
        assert_json_error(&wrong, 401, path);
        let answer = request("GET", &wide.url(path), &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    assert_eq!(request("GET", &wide.url("/healthz"), &[]).await.status, 200);
    // The CLI sends METALFARM_TOKEN on reads too.
    let listed = cli(&wide, Some(&token), &["host", "list"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    let anonymous = cli(&wide, None, &["host", "list"]);
    assert_eq!(anonymous.code, 1, "{anonymous:?}");
    assert!(anonymous.stderr.contains("set METALFARM_TOKEN"), "{}", anonymous.stderr);

    // Set explicitly, either way.
    let open = FarmServer::start_with_server_keys("listen = \"0.0.0.0:0\"\nread_access = \"open\"", "");
    assert_eq!(request("GET", &open.url("/api/v1/hosts"), &[]).await.status, 200);
}

/// A job on a real test host leaves its log and an artifact; with `read_access =
/// "token"` neither they nor the inventory nor the metrics are readable without the
/// admin token, and with it they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_read_access_token_logs_artifacts_and_hosts_need_the_token() {
    let farm = run_one_job("read_access = \"token\"", UPLOADING, "Artifacts / build").await;
    let (server, check) = (&farm.server, &farm.check);
    let token = admin_token(server);
    let bearer = format!("Bearer {token}");
    assert_eq!(check.conclusion.as_deref(), Some("success"), "{check:#?}");
    let job = &check.external_id;
    let answer =
        request("GET", &server.url(&format!("/api/v1/jobs/{job}")), &[("authorization", &bearer)]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let run = answer.json()["run_id"].as_i64().expect("the job's run");

    let reads = [
        (format!("/api/v1/jobs/{job}/log"), "the kernel booted"),
        (format!("/api/v1/jobs/{job}/log?follow=true"), "the kernel booted"),
        (format!("/api/v1/runs/{run}/artifacts"), "result.txt"),
        (format!("/api/v1/runs/{run}/artifacts/test-results/result.txt"), "result: pass"),
        ("/api/v1/hosts".into(), "kvm-a"),
        (format!("/api/v1/jobs/{job}"), "kvm-a"),
        ("/metrics".into(), "metalfarm_hosts"),
    ];
    for (path, text) in &reads {
        let anonymous = request("GET", &server.url(path), &[]).await;
        assert_json_error(&anonymous, 401, path);
        assert!(!anonymous.body.contains(text), "{path}: {anonymous:?}");
        let answer = request("GET", &server.url(path), &[("authorization", &bearer)]).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert!(answer.body.contains(text), "{path}: {answer:?}");
    }
    // Nor through another name rebound to the farm's address, token or not.
    let port = server.addr.port();
    let log = format!("/api/v1/jobs/{job}/log");
    for headers in [
        vec![("host", format!("evil.example:{port}"))],
        vec![("host", "evil.example".into()), ("authorization", bearer.clone())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = request("GET", &server.url(&log), &headers).await;
        assert_json_error(&answer, 421, "a rebound name");
        assert!(!answer.body.contains("the kernel booted"), "{answer:?}");
    }
    // The CLI reads with METALFARM_TOKEN.
    let log = cli(server, Some(&token), &["job", "logs", job.as_str()]);
    assert_eq!(log.code, 0, "{log:?}");
    assert!(log.stdout.contains("the kernel booted"), "{log:?}");
    let anonymous = cli(server, None, &["job", "logs", job.as_str()]);
    assert_eq!(anonymous.code, 1, "{anonymous:?}");
}
