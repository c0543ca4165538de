//! A real `metalfarm serve` process for end-to-end tests: its own data folder, a config
//! on loopback with port 0, and an HTTP client to talk to it. Dropping it kills it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub const WEBHOOK_SECRET: &str = "It's a Secret to Everybody";

pub struct FarmServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Child,
    /// Every line the server logged (stderr), across restarts.
    log: Arc<Mutex<Vec<String>>>,
}

impl FarmServer {
    /// Starts `serve` with the test config plus `extra_toml` (more sections), reporting
    /// to no forge.
    pub fn start(extra_toml: &str) -> FarmServer {
        FarmServer::start_with(None, "", extra_toml)
    }

    /// Starts `serve` reporting as a GitHub App (`app_key`: its private key, PEM) to the
    /// forge at `api_url`.
    pub fn start_reporting(api_url: &str, app_key: &[u8], extra_toml: &str) -> FarmServer {
        FarmServer::start_with(Some((api_url, app_key)), "", extra_toml)
    }

    /// Starts `serve` reporting to the forge at `api_url`, with `server_keys` added to
    /// the config's `[server]` section (e.g. `lease_timeout = "1s"`).
    pub fn start_reporting_with(
        api_url: &str,
        app_key: &[u8],
        server_keys: &str,
        extra_toml: &str,
    ) -> FarmServer {
        FarmServer::start_with(Some((api_url, app_key)), server_keys, extra_toml)
    }

    /// Starts `serve` reporting to no forge, with `server_keys` added to the config's
    /// `[server]` section (e.g. `job_log_limit = "64MiB"`).
    pub fn start_with_server_keys(server_keys: &str, extra_toml: &str) -> FarmServer {
        FarmServer::start_with(None, server_keys, extra_toml)
    }

    fn start_with(forge: Option<(&str, &[u8])>, server_keys: &str, extra_toml: &str) -> FarmServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("webhook-secret"), format!("{WEBHOOK_SECRET}\n")).expect("secret");
        let mut forge_keys = String::new();
        if let Some((api_url, key)) = forge {
            std::fs::write(dir.path().join("app.pem"), key).expect("app key");
            forge_keys = format!("api_url = \"{api_url}\"\napp_id = 4242\nprivate_key_file = \"app.pem\"\n");
        }
        // `server_keys` may name another listen address (e.g. 0.0.0.0:0).
        let listen = if server_keys.lines().any(|l| l.trim_start().starts_with("listen")) {
            ""
        } else {
            "listen = \"127.0.0.1:0\"\n"
        };
        let config = format!(
            "[server]\n{listen}data_dir = \"data\"\npublic_url = \"https://farm.example.com\"\n{server_keys}\n\
             [forge]\nwebhook_secret_file = \"webhook-secret\"\n{forge_keys}\n{extra_toml}"
        );
        std::fs::write(dir.path().join("farm.toml"), config).expect("config");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (child, addr) = spawn(&dir.path().join("farm.toml"), log.clone());
        FarmServer { dir, addr, child, log }
    }

    /// Kills the server at once (SIGKILL: no shutdown code runs) and starts it again
    /// on the same data folder.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        let (child, addr) = spawn(&self.dir.path().join("farm.toml"), self.log.clone());
        self.child = child;
        self.addr = addr;
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server as `systemctl stop` does (SIGTERM); whether it exited within
    /// `within`. It is killed either way.
    pub fn terminate(&mut self, within: Duration) -> bool {
        // SAFETY: kill(2) on our own child's pid; it has not been waited for yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// Starts the stopped (or killed) server again on the same data folder and address,
    /// as a restarted service comes back for its clients.
    pub fn restart_at_same_address(&mut self) {
        self.kill();
        let path = self.dir.path().join("farm.toml");
        let config = std::fs::read_to_string(&path).expect("config");
        let config = config.replacen("listen = \"127.0.0.1:0\"", &format!("listen = \"{}\"", self.addr), 1);
        std::fs::write(&path, config).expect("config");
        let (child, addr) = spawn(&path, self.log.clone());
        self.child = child;
        assert_eq!(addr, self.addr);
    }

    /// Waits (at most `within`) until the server has logged a line containing `text`; that line.
    pub fn wait_for_log(&self, text: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server never logged `{text}`:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line the server logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Writes a file under the server's folder (the config's folder), e.g. a workflow.
    pub fn write(&self, path: &str, text: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub async fn store(&self) -> metalfarm::store::Store {
        metalfarm::store::Store::open(&self.database_url()).await.expect("open the farm's database")
    }

    /// Waits (bounded) until every stored delivery is processed.
    pub async fn processed(&self) {
        let store = self.store().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !store.unprocessed_deliveries(1).await.expect("query").is_empty() {
            assert!(std::time::Instant::now() < deadline, "deliveries left unprocessed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("data/metalfarm.db").display())
    }

    /// The server process's id, e.g. to read its CPU time and memory from /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A `kB` line of the server's /proc/PID/status (`VmHWM`, `VmRSS`), in KiB.
    pub fn status_kib(&self, key: &str) -> u64 {
        let pid = self.pid();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
    }

    /// Sets the server's peak resident memory (VmHWM) back to what it holds now.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("reset VmHWM (clear_refs)");
    }
}

impl Drop for FarmServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `serve` under umask 000, the most permissive: a file the farm forgets to
/// make private shows (see [`assert_private`]).
fn spawn(config: &Path, log: Arc<Mutex<Vec<String>>>) -> (Child, SocketAddr) {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_metalfarm"));
    // SAFETY: umask(2) is async-signal-safe and only changes the child's mask.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = command
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "metalfarm=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start metalfarm serve");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Reads the whole log so the server never blocks on a full pipe; the first
    // "listening on" line tells the port.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(addr) = line.strip_prefix("metalfarm: listening on http://") {
                    let mut addr = addr.parse::<SocketAddr>().expect("address");
                    // A wildcard listener is reached through loopback.
                    if addr.ip().is_unspecified() {
                        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
            if std::env::var_os("METALFARM_TEST_LOG").is_some() {
                eprintln!("[serve] {line}");
            }
            log.lock().unwrap().push(line);
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("metalfarm serve did not start listening");
    (child, addr)
}

/// Every folder under `dir` (and itself) is 0700 and every file 0600 or stricter: no
/// other user reads the farm's database, logs, artifacts or keys.
pub fn assert_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = 0;
    let mut todo = vec![dir.to_owned()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat under the data folder");
        let mode = meta.permissions().mode() & 0o7777;
        assert_eq!(mode & 0o077, 0, "{} is open to other users (mode {mode:04o})", path.display());
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).expect("list").map(|e| e.expect("entry").path()));
        }
        seen += 1;
    }
    assert!(seen > 1, "{} is empty", dir.display());
}

/// An answer: status, body text and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: hyper::HeaderMap,
}

impl Answer {
    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// POSTs `body` with `headers`.
pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    try_post(url, headers, body).await.expect("HTTP request")
}

/// POSTs `body` with `headers`; a connection that fails or breaks is an error.
pub async fn try_post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Answer, String> {
    try_request("POST", url, headers, body).await
}

/// Any request; a connection that fails or breaks is an error.
pub async fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Answer, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned(), headers })
}

pub async fn get(url: &str) -> Answer {
    try_request("GET", url, &[], Vec::new()).await.expect("HTTP request")
}

/// `count` webhook deliveries of `body` sent at once, each on its own connection,
/// signed with `signature` (none when `None`): each one's status, or why its connection
/// broke (a server that refuses a body before reading it may close the connection while
/// the body is still being sent).
pub async fn deliver_at_once(
    addr: SocketAddr,
    count: usize,
    body: Bytes,
    signature: Option<&str>,
) -> Vec<Result<u16, String>> {
    let senders: Vec<_> = (0..count)
        .map(|n| {
            let (body, signature) = (body.clone(), signature.map(str::to_owned));
            tokio::spawn(async move {
                let delivery = format!("d-at-once-{n}");
                let mut headers = vec![("x-github-event", "push"), ("x-github-delivery", delivery.as_str())];
                if let Some(signature) = &signature {
                    headers.push(("x-hub-signature-256", signature));
                }
                try_request("POST", &format!("http://{addr}/webhook"), &headers, body).await.map(|a| a.status)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for sender in senders {
        statuses.push(sender.await.expect("sender task"));
    }
    statuses
}

/// Sends a request's `head` (request line and headers) and `sent` bytes of its body on a
/// raw connection, and waits (10 s at most) for the answer without sending more.
pub async fn answer_to_partial_body(addr: SocketAddr, head: &str, sent: usize) -> Option<String> {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send the head");
    stream.write_all(&vec![b' '; sent]).await.expect("send part of the body");
    read_raw_answer(&mut stream, Duration::from_secs(10)).await
}

/// The JSON error of a raw answer, after checking its status line.
pub fn raw_json_error(answer: Option<String>, status: &str) -> String {
    let answer = answer.expect("an answer before the body was sent");
    assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    body["error"].as_str().expect("an error text").to_owned()
}

/// Reads one answer (head, and body as long as its Content-Length) off a raw
/// connection; `None` when no whole answer came within `within`.
pub async fn read_raw_answer(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Some(text);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    }
}

/// A push to `refs/heads/master` (the real example payload of installation 1),
/// delivered and acknowledged.
pub async fn push_master(server: &FarmServer, delivery: &str) {
    let payload =
        example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    let answer = deliver(server, "push", delivery, payload.to_string().as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// `GET /api/v1/hosts/{name}`: the host and its latest history, as JSON.
pub async fn host_json(server: &FarmServer, name: &str) -> serde_json::Value {
    let answer = get(&server.url(&format!("/api/v1/hosts/{name}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("a host as JSON")
}

/// Waits (at most `within`) until host `name` is in `state`; the host as it then is.
pub async fn wait_for_host_state(
    server: &FarmServer,
    name: &str,
    state: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let found = host_json(server, name).await;
        if found["state"] == state {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "host {name} never became {state}: {found:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/v1/jobs/{id}/log`: the job's log as text.
pub async fn job_log(server: &FarmServer, job_id: &str) -> String {
    let answer = get(&server.url(&format!("/api/v1/jobs/{job_id}/log"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// Sends a delivery as the forge does: signed with the test secret.
pub async fn deliver(server: &FarmServer, event: &str, delivery: &str, body: &[u8]) -> Answer {
    try_deliver(server.addr, event, delivery, body).await.expect("HTTP request")
}

/// Sends a delivery to `addr`; a connection that fails or breaks is an error.
pub async fn try_deliver(
    addr: SocketAddr,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Result<Answer, String> {
    let signature = metalfarm::forge::webhook::sign(WEBHOOK_SECRET.as_bytes(), body);
    try_post(
        &format!("http://{addr}/webhook"),
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &signature),
        ],
        body.to_vec(),
    )
    .await
}

/// The workflow the forge scenarios run: two jobs, the second needing the first and a
/// rarer label set.
pub const TWO_JOB_CI: &str = "\
name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: [self-hosted, amd64]
    steps:
      - run: make
  kvm:
    needs: build
    runs-on: [self-hosted, intel64, hostprovisioning]
    steps:
      - run: make check
";

/// A test forge, and a farm reporting to it as a GitHub App with `repos_toml` (its
/// `[[repo]]` entries) and `workflows/ci.yml` = [`TWO_JOB_CI`].
pub async fn farm_and_forge(repos_toml: &str) -> (FarmServer, super::forge::TestForge) {
    let (private, public) = app_key_pair();
    let forge = super::forge::TestForge::start(public).await;
    let server = FarmServer::start_reporting(&forge.api_url(), &private, repos_toml);
    server.write("workflows/ci.yml", TWO_JOB_CI);
    (server, forge)
}

/// A throwaway GitHub App key pair (private, public; PEM), made with `openssl`.
pub fn app_key_pair() -> (Vec<u8>, Vec<u8>) {
    let run = |args: &[&str], input: Option<&[u8]>| {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl is installed (scripts/test.sh installs it)");
        let mut stdin = child.stdin.take().expect("piped");
        if let Some(input) = input {
            std::io::Write::write_all(&mut stdin, input).expect("write to openssl");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("openssl ran");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let private = run(&["genrsa", "-traditional", "2048"], None);
    let public = run(&["rsa", "-pubout"], Some(&private));
    (private, public)
}

/// A real webhook payload from `@octokit/webhooks-examples`: the first example of `event`
/// for which `matches` holds.
pub fn example_payload(event: &str, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let index: PathBuf =
        super::oracle_dir().join("node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|e| panic!("reading {}: {e}", index.display()));
    let all: serde_json::Value = serde_json::from_str(&text).expect("webhooks-examples index is JSON");
    all.as_array()
        .expect("index is a list")
        .iter()
        .filter(|entry| entry["name"] == event)
        .flat_map(|entry| entry["examples"].as_array().cloned().unwrap_or_default())
        .find(|example| matches(example))
        .unwrap_or_else(|| panic!("no such {event} example in @octokit/webhooks-examples"))
}
