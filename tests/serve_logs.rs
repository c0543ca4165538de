//! Job logs end to end: a real `metalfarm serve`, a job's log written through
//! `JobLogs` on the server's data folder (as the job runner writes it), read back with
//! `GET /api/v1/jobs/{id}/log`, followed as server-sent events and by
//! `metalfarm job logs --follow`, until the job completes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cli::{admin_token, cli, cli_command, ok};
use common::farm::{get, FarmServer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metalfarm::store::{JobLogs, NewJob, NewRun, Store};

/// How long anything here may take to show up.
const PATIENCE: Duration = Duration::from_secs(20);

/// A run with one job, recorded straight in the server's database; the job's id.
async fn a_job(store: &Store) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let run = tx
        .insert_run(&NewRun {
            repo: "lab/qemu",
            workflow: "workflows/ci.yml",
            workflow_name: "CI",
            event: "push",
            head_sha: "abc",
            check_sha: "abc",
            git_ref: "refs/heads/master",
            ..Default::default()
        })
        .await
        .unwrap();
    let job = NewJob { job_key: "build", name: "build", runs_on: &["kvm".to_owned()], ..Default::default() };
    let job = tx.insert_job(run.run_id, &job).await.unwrap();
    tx.commit().await.unwrap();
    job
}

async fn set_job(store: &Store, job: i64, conclusion: Option<&str>) {
    let mut tx = store.begin().await.unwrap();
    match conclusion {
        None => tx.start_job(job, "lab-1").await.unwrap(),
        Some(conclusion) => assert!(tx.complete_job(job, conclusion).await.unwrap()),
    }
    tx.commit().await.unwrap();
}

/// The server's job logs, as its runner writes them.
fn job_logs(server: &FarmServer, limit: u64) -> JobLogs {
    JobLogs::in_data_dir(&server.dir.path().join("data"), limit)
}

/// The text after a log line's timestamp.
fn text_of(line: &str) -> &str {
    let (stamp, text) = line.split_once(' ').unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{line:?}");
    text
}

/// `metalfarm job logs ID --follow`, running; its stdout lines come through a channel.
/// Killed when dropped.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(server: &FarmServer, job: i64) -> Follower {
        let mut child = cli_command(server, None, &["job", "logs", &job.to_string(), "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start metalfarm job logs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next `n` lines it prints.
    fn next(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("line {i} of {n} not printed: {e}"))
            })
            .collect()
    }

    /// Waits (bounded) for it to exit; its exit code and stderr.
    fn exit(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
                assert!(self.lines.recv_timeout(Duration::from_secs(5)).is_err(), "printed more lines");
                return (status.code().expect("exited"), stderr);
            }
            assert!(Instant::now() < deadline, "job logs --follow did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `?follow=true` request read as it streams: the raw text of its body so far.
struct EventStream {
    text: tokio::sync::watch::Receiver<String>,
    reader: tokio::task::JoinHandle<()>,
    content_type: String,
}

impl EventStream {
    async fn open(url: &str) -> EventStream {
        EventStream::resume(url, None).await
    }

    /// Opens the stream as a client reconnecting after the event with id `last_id`.
    async fn resume(url: &str, last_id: Option<&str>) -> EventStream {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let mut request = hyper::Request::get(url);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = client.request(request.body(Empty::new()).unwrap()).await.expect("HTTP request");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let (tx, text) = tokio::sync::watch::channel(String::new());
        let mut body = response.into_body();
        let reader = tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    tx.send_modify(|text| text.push_str(&String::from_utf8_lossy(&data)));
                }
            }
        });
        EventStream { text, reader, content_type }
    }

    /// Waits (bounded) until the stream's text holds `what`; the text.
    async fn until(&mut self, what: &str) -> String {
        let found = tokio::time::timeout(PATIENCE, self.text.wait_for(|text| text.contains(what)))
            .await
            .is_ok_and(|r| r.is_ok());
        let text = self.text.borrow().clone();
        assert!(found, "the event stream never said {what:?}: {text:?}");
        text
    }

    /// Waits (bounded) for the server to end the stream.
    async fn ended(self) -> String {
        tokio::time::timeout(PATIENCE, self.reader).await.expect("the event stream did not end").unwrap();
        let text = self.text.borrow().clone();
        text
    }
}

/// The data of a stream's events, by name: `(event, data)`.
fn events_of(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_owned();
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(value.to_owned());
                }
            }
            Some((name, data?))
        })
        .collect()
}

/// The ids of a stream's events, in order.
fn event_ids(text: &str) -> Vec<String> {
    text.lines().filter_map(|line| line.strip_prefix("id: ")).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_log_is_served_and_followed_until_the_job_completes() {
    let server = FarmServer::start("");
    let store = server.store().await;
    let job = a_job(&store).await;
    let log_url = server.url(&format!("/api/v1/jobs/{job}/log"));

    // Not started: an empty log.
    let answer = get(&log_url).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    let logs = job_logs(&server, 64 << 20);

    set_job(&store, job, None).await;
    let mut log = logs.open(job).unwrap();
    log.append("Run make").unwrap();
    log.append("cc -o farm farm.c").unwrap();
    log.flush().unwrap();

    let answer = get(&log_url).await;
    assert_eq!(answer.status, 200);
    let lines: Vec<&str> = answer.body.lines().map(text_of).collect();
    assert_eq!(lines, ["Run make", "cc -o farm farm.c"]);
    assert_eq!(ok(&server, &admin_token(&server), &["job", "logs", &job.to_string()]), answer.body);

    // Two followers: the CLI and a raw event stream. Both get the log so far at once.
    let cli_follower = Follower::start(&server, job);
    let mut stream = EventStream::open(&format!("{log_url}?follow=true")).await;
    assert!(stream.content_type.starts_with("text/event-stream"), "{}", stream.content_type);
    assert_eq!(cli_follower.next(2).iter().map(|l| text_of(l).to_owned()).collect::<Vec<_>>(), lines);
    stream.until("cc -o farm farm.c").await;

    // New lines reach both as they are written, one event per line.
    log.append("make check").unwrap();
    log.flush().unwrap();
    assert_eq!(text_of(&cli_follower.next(1)[0]), "make check");
    stream.until("make check").await;
    log.append("PASS: 12").unwrap();
    log.append("FAIL: 0").unwrap();
    log.flush().unwrap();
    assert_eq!(
        cli_follower.next(2).iter().map(|l| text_of(l).to_owned()).collect::<Vec<_>>(),
        ["PASS: 12", "FAIL: 0"]
    );
    let text = stream.until("FAIL: 0").await;
    assert!(!text.contains("event: end"), "the job has not completed: {text}");

    // Completing the job ends both, the last lines first.
    log.append("Post job cleanup").unwrap();
    drop(log);
    set_job(&store, job, Some("success")).await;
    let text = stream.ended().await;
    let events = events_of(&text);
    let data: Vec<&str> =
        events.iter().filter(|(name, _)| name == "message").map(|(_, d)| text_of(d)).collect();
    assert_eq!(
        data,
        ["Run make", "cc -o farm farm.c", "make check", "PASS: 12", "FAIL: 0", "Post job cleanup"]
    );
    assert_eq!(events.last(), Some(&("end".to_owned(), "success".to_owned())), "{text}");
    assert_eq!(text_of(&cli_follower.next(1)[0]), "Post job cleanup");
    let (code, stderr) = cli_follower.exit();
    assert_eq!((code, stderr.as_str()), (0, ""));

    // Each event's id is where the log continues after it: a client that reconnects
    // gets what it missed, and only that.
    let ids = event_ids(&text);
    assert_eq!(ids.len(), 7, "{text}");
    let missed = EventStream::resume(&format!("{log_url}?follow=true"), Some(&ids[2])).await.ended().await;
    let missed = events_of(&missed);
    let data: Vec<&str> = missed.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        data[..3].iter().map(|d| text_of(d)).collect::<Vec<_>>(),
        ["PASS: 12", "FAIL: 0", "Post job cleanup"]
    );
    assert_eq!(missed[3], ("end".to_owned(), "success".to_owned()));
    let answer = {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let request = hyper::Request::get(format!("{log_url}?follow=true")).header("last-event-id", "soon");
        client.request(request.body(Empty::new()).unwrap()).await.unwrap().status()
    };
    assert_eq!(answer, 422, "an id that is no offset");

    // A completed job's log is followed to its end at once.
    let stream = EventStream::open(&format!("{log_url}?follow=true")).await;
    let events = events_of(&stream.ended().await);
    assert_eq!(events.len(), 7);
    assert_eq!(events[6], ("end".to_owned(), "success".to_owned()));
    let follower = Follower::start(&server, job);
    assert_eq!(text_of(&follower.next(6)[5]), "Post job cleanup");
    assert_eq!(follower.exit().0, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_log_keeps_its_tail() {
    let server = FarmServer::start("");
    let store = server.store().await;
    let job = a_job(&store).await;
    set_job(&store, job, None).await;
    let limit = 8192;
    let mut log = job_logs(&server, limit).open(job).unwrap();
    for n in 0..2000 {
        log.append(&format!("iteration {n}")).unwrap();
    }
    drop(log);

    let answer = get(&server.url(&format!("/api/v1/jobs/{job}/log"))).await;
    assert_eq!(answer.status, 200);
    let mut lines = answer.body.lines();
    let note = lines.next().unwrap();
    let dropped: u64 = note
        .strip_prefix("[… ")
        .and_then(|rest| rest.strip_suffix(" bytes of earlier output dropped …]"))
        .unwrap_or_else(|| panic!("no note of dropped output: {note:?}"))
        .parse()
        .unwrap();
    let kept: Vec<&str> = lines.map(text_of).collect();
    assert_eq!(kept.last(), Some(&"iteration 1999"));
    let first: usize = kept[0].strip_prefix("iteration ").unwrap().parse().unwrap();
    assert_eq!(kept, (first..2000).map(|n| format!("iteration {n}")).collect::<Vec<_>>(), "the tail, whole");
    let kept_bytes = (answer.body.len() - note.len() - 1) as u64;
    assert!(kept_bytes <= limit && kept_bytes >= limit / 4, "{kept_bytes} bytes kept of a {limit}-byte cap");
    let written: u64 = (0..2000).map(|n| format!("iteration {n}").len() as u64 + 26).sum();
    assert_eq!(dropped + kept_bytes, written);

    // A follower is told the same.
    set_job(&store, job, Some("failure")).await;
    let text =
        EventStream::open(&server.url(&format!("/api/v1/jobs/{job}/log?follow=true"))).await.ended().await;
    let events = events_of(&text);
    assert_eq!(events[0].1, note);
    assert_eq!(events.len(), kept.len() + 2);
    assert_eq!(events.last().unwrap(), &("end".to_owned(), "failure".to_owned()));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_of_an_unknown_job_is_not_found() {
    let server = FarmServer::start("");
    for path in ["/api/v1/jobs/99/log", "/api/v1/jobs/99/log?follow=true"] {
        let answer = get(&server.url(path)).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.body, r#"{"error":"no job 99"}"#);
    }
    let answer = get(&server.url("/api/v1/jobs/99/log?follow=maybe")).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    for args in [&["job", "logs", "99"][..], &["job", "logs", "99", "--follow"]] {
        let ran = cli(&server, None, args);
        assert_eq!((ran.code, ran.stderr.as_str()), (1, "metalfarm job logs: no job 99\n"), "{args:?}");
    }

    // Described in the API's document, readable without a token.
    let doc: serde_json::Value =
        serde_json::from_str(&get(&server.url("/api/v1/openapi.json")).await.body).unwrap();
    let operation = &doc["paths"]["/jobs/{id}/log"]["get"];
    assert_eq!(operation["operationId"], "job_log");
    assert!(operation.get("security").is_none(), "{operation}");
    let content = &operation["responses"]["200"]["content"];
    assert!(content["text/plain"].is_object() && content["text/event-stream"].is_object(), "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_its_streams_and_the_cli_follows_on_after_its_restart() {
    let mut server = FarmServer::start("");
    let store = server.store().await;
    let job = a_job(&store).await;
    set_job(&store, job, None).await;
    store.close().await;
    let mut log = job_logs(&server, 1 << 20).open(job).unwrap();
    log.append("before the restart").unwrap();
    log.flush().unwrap();
    let cli_follower = Follower::start(&server, job);
    assert_eq!(text_of(&cli_follower.next(1)[0]), "before the restart");
    let mut stream = EventStream::open(&server.url(&format!("/api/v1/jobs/{job}/log?follow=true"))).await;
    stream.until("before the restart").await;

    // The job goes on, and the server still stops at once, ending the streams.
    assert!(server.terminate(Duration::from_secs(10)), "a followed log kept the server from stopping");
    let text = stream.ended().await;
    assert!(!text.contains("event: end"), "the job did not end: {text}");
    log.append("while the server was away").unwrap();
    log.flush().unwrap();

    // Back again: the CLI reconnects where it was, misses nothing and repeats nothing.
    server.restart_at_same_address();
    log.append("after the restart").unwrap();
    drop(log);
    let lines = cli_follower.next(2);
    assert_eq!(
        lines.iter().map(|l| text_of(l)).collect::<Vec<_>>(),
        ["while the server was away", "after the restart"]
    );
    let store = server.store().await;
    set_job(&store, job, Some("cancelled")).await;
    store.close().await;
    let (code, stderr) = cli_follower.exit();
    assert_eq!((code, stderr.as_str()), (0, ""));
}

/// A step's output may carry terminal control sequences (a window title, a clipboard
/// write, cursor moves that hide a line): `metalfarm job logs` on a terminal keeps only
/// colours; into a pipe it prints the log as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_logs_on_a_terminal_keep_colours_and_drop_control_sequences() {
    let server = FarmServer::start("");
    let store = server.store().await;
    let job = a_job(&store).await;
    set_job(&store, job, None).await;
    let mut log = job_logs(&server, 64 << 20).open(job).unwrap();
    log.append("\u{1b}]0;owned\u{7}\u{1b}]52;c;cm0gLXJmIH4=\u{1b}\\title and clipboard").unwrap();
    log.append("\u{1b}[31mred\u{1b}[0m stays\u{1b}[2A\u{1b}[2K").unwrap();
    log.flush().unwrap();
    set_job(&store, job, Some("success")).await;
    let token = admin_token(&server);

    let piped = ok(&server, &token, &["job", "logs", &job.to_string()]);
    assert!(piped.contains("\u{1b}]52;"), "into a pipe the log is as written: {piped:?}");

    for follow in [false, true] {
        // `script` gives the command a terminal (util-linux, on every Debian).
        let mut command =
            format!("{} job logs {job} --server {}", env!("CARGO_BIN_EXE_metalfarm"), server.url(""));
        if follow {
            command.push_str(" --follow");
        }
        let out = std::process::Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .env("METALFARM_TOKEN", &token)
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        let shown = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        assert!(out.status.success(), "{shown}");
        assert!(shown.contains("title and clipboard\n"), "{shown:?}");
        assert!(shown.contains("\u{1b}[31mred\u{1b}[0m stays\n"), "colours stay: {shown:?}");
        for sequence in ["\u{1b}]", "\u{1b}[2A", "\u{1b}[2K", "\u{7}"] {
            assert!(!shown.contains(sequence), "{sequence:?} reached the terminal: {shown:?}");
        }
    }
}
