//! What the admin commands (`host`, `label`, `job`, …) share: the flags that name the
//! server, an HTTP client for its REST API, the errors a person can act on, and
//! plain-text tables.
//!
//! The client is hyper's (the one octocrab already builds), plain HTTP: the server
//! listens on loopback by default, and a remote one sits behind a TLS proxy.

use std::future::Future;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::web::api::{ErrorBody, PREFIX};

/// The environment variable the admin token is read from.
pub const TOKEN_ENV: &str = "METALFARM_TOKEN";

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a followed event stream may stay silent: the server sends a keep-alive
/// comment every 15 s.
const EVENTS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broken event stream is tried again (a server restart), and how often.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(30);
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// The flags of every command that talks to a server.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The metalfarm server.
    #[arg(long, global = true, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Machine-readable output: the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the metalfarm server at {server}: {reason} (is `metalfarm serve` running there? --server URL names another)")]
    Unreachable { server: String, reason: String },
    /// The server answered with an error.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the server at {server} answered something that is not metalfarm's API ({status}): {detail}")]
    Unexpected { server: String, status: u16, detail: String },
    /// What the command waited for ended badly (a dispatched run failed).
    #[error("{0}")]
    Unsuccessful(String),
}

impl ClientError {
    /// 1 when the server refused the request, 2 for usage and connection problems.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ClientError::Refused { .. } | ClientError::Unsuccessful(_) => ExitCode::FAILURE,
            _ => ExitCode::from(super::EXIT_USAGE),
        }
    }
}

/// A client of one server's REST API.
pub struct ApiClient {
    /// `http://host:port`, without a trailing slash.
    server: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// A client of `--server`, with the token of `METALFARM_TOKEN` when it is set.
    pub fn new(args: &ApiArgs) -> Result<ApiClient, ClientError> {
        let token = std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        ApiClient::with_token(&args.server, token)
    }

    pub fn with_token(server: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let server = server.trim_end_matches('/');
        if server.starts_with("https://") {
            return Err(ClientError::Usage(format!(
                "--server {server}: this client speaks plain HTTP; reach a remote server through an SSH tunnel or its loopback address"
            )));
        }
        let rest = server.strip_prefix("http://").ok_or_else(|| {
            ClientError::Usage(format!("--server {server}: not an http:// URL (e.g. http://127.0.0.1:8080)"))
        })?;
        if rest.is_empty() || rest.contains('/') {
            return Err(ClientError::Usage(format!(
                "--server {server}: give the server's root URL, like http://127.0.0.1:8080"
            )));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(ApiClient { server: server.to_owned(), token, http })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.request(Method::GET, path, None).await?;
        self.parse(&body)
    }

    /// A POST, PATCH or PUT with a JSON body; the answer parsed as `T`.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).expect("request bodies serialise");
        let answer = self.request(method, path, Some(json)).await?;
        self.parse(&answer)
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, path, None).await.map(drop)
    }

    /// A GET whose answer is text, not JSON (a job's log).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let body = self.request(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// A GET answered with server-sent events: `on_event` is called with each event as
    /// it arrives, until it says to stop. When the stream breaks or ends (the server
    /// restarts), it is opened again with `Last-Event-ID`, as browsers do, for up to
    /// [`RECONNECT_GRACE`] without a connection.
    pub async fn follow_events(
        &self,
        path: &str,
        mut on_event: impl FnMut(ServerEvent) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        let mut last_id = None;
        let mut lost_since = None;
        loop {
            let err = match self.read_events(path, &mut last_id, &mut lost_since, &mut on_event).await {
                Ok(()) => return Ok(()),
                Err(err @ ClientError::Unreachable { .. }) => err,
                Err(err) => return Err(err),
            };
            let since = *lost_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= RECONNECT_GRACE {
                return Err(err);
            }
            tracing::debug!(%err, "the event stream broke; reconnecting");
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Reads one connection's events; `Ok` once `on_event` says to stop.
    async fn read_events(
        &self,
        path: &str,
        last_id: &mut Option<String>,
        lost_since: &mut Option<std::time::Instant>,
        on_event: &mut impl FnMut(ServerEvent) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        let resume = last_id.as_deref().map(|id| ("last-event-id", id));
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.start(Method::GET, path, None, resume))
            .await
            .map_err(|_| self.unreachable(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))??;
        *lost_since = None;
        let mut body = response.into_body();
        let mut parser = EventParser::default();
        loop {
            let frame = tokio::time::timeout(EVENTS_IDLE_TIMEOUT, body.frame()).await.map_err(|_| {
                self.unreachable(format!(
                    "the event stream was silent for {} s",
                    EVENTS_IDLE_TIMEOUT.as_secs()
                ))
            })?;
            let Some(frame) = frame else {
                return Err(self.unreachable("the server ended the event stream".into()));
            };
            let frame = frame.map_err(|e| self.unreachable(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            for event in parser.feed(&data) {
                if let Some(id) = &event.id {
                    *last_id = Some(id.clone());
                }
                if on_event(event).is_break() {
                    return Ok(());
                }
            }
        }
    }

    /// One request to `{PREFIX}{path}`; the body of a 2xx answer, or what went wrong.
    async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes, ClientError> {
        let exchange = async {
            let response = self.start(method, path, body, None).await?;
            let body = response.into_body().collect().await.map_err(|e| self.unreachable(e.to_string()))?;
            Ok::<_, ClientError>(body.to_bytes())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| self.unreachable(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))?
    }

    /// Sends a request; a 2xx answer with its body still to read, or what went wrong.
    async fn start(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        header: Option<(&str, &str)>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let url = format!("{}{PREFIX}{path}", self.server);
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Usage(format!("{url}: {e}")))?;
        let response = self.http.request(request).await.map_err(|e| self.unreachable(connect_reason(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body =
            response.into_body().collect().await.map_err(|e| self.unreachable(e.to_string()))?.to_bytes();
        let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&body) else {
            return Err(ClientError::Unexpected {
                server: self.server.clone(),
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        };
        let message = match (status, &self.token) {
            (StatusCode::UNAUTHORIZED, None) => {
                format!("{error}; set {TOKEN_ENV} to the admin token (the content of the server's admin_token_file)")
            }
            (StatusCode::UNAUTHORIZED, Some(_)) => {
                format!("{error} ({TOKEN_ENV} is not this server's admin token)")
            }
            _ => error,
        };
        Err(ClientError::Refused { status: status.as_u16(), message })
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable { server: self.server.clone(), reason }
    }

    fn parse<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Unexpected {
            server: self.server.clone(),
            status: 200,
            detail: e.to_string(),
        })
    }
}

/// One server-sent event: its name (`message` unless the server named it) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub name: String,
    /// Its `id:` field, when it has one.
    pub id: Option<String>,
    pub data: String,
}

/// Server-sent events from a byte stream, as the HTML standard parses them: `event:`
/// and `data:` fields (several `data:` lines joined by line breaks), comments and
/// other fields ignored, an event dispatched at a blank line.
#[derive(Debug, Default)]
struct EventParser {
    /// The start of a line not yet complete.
    partial: Vec<u8>,
    name: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl EventParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<ServerEvent> {
        self.partial.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start += end + 1;
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    let name = self.name.take().unwrap_or_else(|| "message".into());
                    events.push(ServerEvent { name, id: self.id.take(), data });
                }
                self.name = None;
                self.id = None;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.name = Some(value.to_owned()),
                "id" => self.id = Some(value.to_owned()),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        self.partial.drain(..start);
        events
    }
}

/// The innermost cause of a failed connection ("Connection refused (os error 111)").
fn connect_reason(err: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

/// A path segment as a URL carries it.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs one admin command: prints what it returns, or its error as
/// `metalfarm <command>: <error>`, and exits 0, 1 (refused) or 2 (usage, connection).
pub fn run_command<F: Future<Output = Result<String, ClientError>>>(command: &str, work: F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("metalfarm {command}: cannot start the async runtime: {err}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    match runtime.block_on(work) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("metalfarm {command}: {err}");
            err.exit_code()
        }
    }
}

/// JSON output: pretty, with a final newline.
pub fn json_text<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("API values serialise");
    text.push('\n');
    text
}

/// A plain-text table: a header line, then one line per row, columns two spaces apart,
/// no trailing spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["a".to_owned(), "ready".to_owned(), String::new()],
            vec!["longer-name".to_owned(), "maintenance".to_owned(), "disk".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "STATE", "NOTE"], &rows),
            "NAME         STATE        NOTE\na            ready\nlonger-name  maintenance  disk\n"
        );
    }

    #[test]
    fn server_urls_are_checked() {
        assert!(ApiClient::with_token("http://127.0.0.1:8080/", None).is_ok());
        for bad in ["127.0.0.1:8080", "https://farm", "http://farm/api", "http://"] {
            assert!(matches!(ApiClient::with_token(bad, None), Err(ClientError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn server_sent_events_are_parsed_across_chunks() {
        let mut parser = EventParser::default();
        let event = |name: &str, id: Option<&str>, data: &str| ServerEvent {
            name: name.into(),
            id: id.map(Into::into),
            data: data.into(),
        };
        assert!(parser.feed(b": keep-alive\n\nid: 31\ndata: one").is_empty());
        assert_eq!(
            parser.feed(b"\n\ndata:two\r\ndata:  three\n\nevent: end\ndata: success\n"),
            [event("message", Some("31"), "one"), event("message", None, "two\n three")]
        );
        assert_eq!(parser.feed(b"\n"), [event("end", None, "success")]);
        assert!(parser.feed(b"event: nothing\n\n").is_empty(), "an event without data is not dispatched");
        assert_eq!(parser.feed(b"data\n\n"), [event("message", None, "")]);
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("foo-amd.example.com"), "foo-amd.example.com");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
