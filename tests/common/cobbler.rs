//! A real Cobbler server for the tests, and a power lab that makes its systems the
//! test hosts.
//!
//! [`TestCobbler`] is the machine-wide Cobbler 3.3.10 that `tests/cobbler/cobbler.sh`
//! runs on loopback (one instance shared by every test process; needs root). The
//! harness's own XML-RPC calls go through the venv's python (`tests/cobbler/cobbler_rpc.py`):
//! the product's client lives in `src/provision/`, and the tests must not share its bugs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

/// The venv that `cobbler.sh install` makes.
const VENV_PYTHON: &str = "/var/lib/metalfarm-test/cobbler-venv/bin/python3";
/// The test profile and distro that `cobbler.sh start` creates.
pub const TEST_PROFILE: &str = "metalfarm-test";
pub const TEST_DISTRO: &str = "metalfarm-test-distro";

/// The running test Cobbler, as `cobbler.sh start` describes it.
pub struct TestCobbler {
    url: String,
    user: String,
    password_file: PathBuf,
    svc_url: String,
    token: Mutex<Option<String>>,
}

/// The `COBBLER_*` lines of `cobbler.sh start`, once per test process.
fn started() -> &'static [(String, String)] {
    static LINES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    LINES.get_or_init(|| {
        let script = cobbler_dir().join("cobbler.sh");
        let out = Command::new(&script)
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} start failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("cobbler.sh prints UTF-8")
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

impl TestCobbler {
    /// Starts the machine's test Cobbler unless it runs already (idempotent, safe in
    /// parallel) and waits until its XML-RPC answers.
    pub fn start() -> TestCobbler {
        let lines = started();
        let get = |key: &str| {
            lines
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("cobbler.sh start printed no {key}"))
        };
        TestCobbler {
            url: get("COBBLER_URL"),
            user: get("COBBLER_USER"),
            password_file: PathBuf::from(get("COBBLER_PASSWORD_FILE")),
            svc_url: get("COBBLER_SVC"),
            token: Mutex::new(None),
        }
    }

    /// The XML-RPC endpoint, `http://127.0.0.1:25151/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// A file holding the password (one line), as the farm's `[cobbler] password_file`.
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    pub fn password(&self) -> String {
        std::fs::read_to_string(&self.password_file).expect("the Cobbler password file").trim().to_owned()
    }

    /// The `/cblr/svc` server's base, `http://127.0.0.1:25152` (no trailing slash).
    pub fn svc_url(&self) -> &str {
        &self.svc_url
    }

    /// The farm's `[cobbler]` section for this server (`url`, `username`, `password_file`).
    pub fn config_toml(&self) -> String {
        format!(
            "[cobbler]\nurl = \"{}\"\nusername = \"{}\"\npassword_file = \"{}\"\n",
            self.url,
            self.user,
            self.password_file.display()
        )
    }

    /// One XML-RPC call at `url`; the fault's string on a fault.
    pub fn call_at(url: &str, method: &str, args: &[Value]) -> Result<Value, String> {
        let out = Command::new(VENV_PYTHON)
            .arg(cobbler_dir().join("cobbler_rpc.py"))
            .arg(url)
            .arg(method)
            .args(args.iter().map(|a| a.to_string()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("running {VENV_PYTHON} (tests/cobbler/cobbler.sh install makes it): {e}")
            });
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(serde_json::from_slice(&out.stdout).expect("cobbler_rpc.py prints JSON"))
    }

    /// One XML-RPC call to this Cobbler; the fault's string on a fault.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value, String> {
        TestCobbler::call_at(&self.url, method, args)
    }

    /// A login token, reused while Cobbler accepts it.
    pub fn token(&self) -> String {
        let mut token = self.token.lock().unwrap();
        if let Some(t) = token.as_ref() {
            return t.clone();
        }
        let fresh = self
            .call("login", &[json!(self.user), json!(self.password())])
            .expect("login to the test Cobbler")
            .as_str()
            .expect("a token string")
            .to_owned();
        *token = Some(fresh.clone());
        fresh
    }

    /// A call whose last argument is the token; logs in again once if Cobbler
    /// forgot the token (it keeps them in memory only).
    pub fn call_with_token(&self, method: &str, args: &[Value]) -> Result<Value, String> {
        let with = |token: String| {
            let mut all = args.to_vec();
            all.push(json!(token));
            self.call(method, &all)
        };
        match with(self.token()) {
            Err(fault) if fault.contains("invalid token") => {
                *self.token.lock().unwrap() = None;
                with(self.token())
            }
            other => other,
        }
    }

    /// The system as Cobbler has it, or `None` when there is no such system.
    pub fn get_system(&self, name: &str) -> Option<Value> {
        let system = self.call("get_system", &[json!(name)]).expect("get_system");
        // Cobbler sends None as "~".
        (system != json!("~")).then_some(system)
    }

    /// Whether netboot is on for the system (panics when it does not exist).
    pub fn netboot_enabled(&self, name: &str) -> bool {
        let system = self.get_system(name).unwrap_or_else(|| panic!("no Cobbler system {name}"));
        system["netboot_enabled"].as_bool().expect("netboot_enabled is a bool")
    }

    /// Turns netboot on or off for the system, saved.
    pub fn set_netboot(&self, name: &str, enabled: bool) {
        self.call_with_token(
            "xapi_object_edit",
            &[json!("system"), json!(name), json!("edit"), json!({"netboot_enabled": enabled})],
        )
        .unwrap_or_else(|e| panic!("netboot {enabled} for {name}: {e}"));
    }

    /// `power_system(handle, power)`: `on`, `off`, `reboot` (off, 5 s, on) or `status`.
    pub fn power_system(&self, name: &str, power: &str) -> Result<Value, String> {
        let handle = self.call_with_token("get_system_handle", &[json!(name)])?;
        self.call_with_token("power_system", &[handle, json!(power)])
    }

    /// `GET {svc}{path}` (e.g. `/cblr/svc/op/nopxe/system/NAME`): the body.
    pub fn svc_get(&self, path: &str) -> Result<String, String> {
        match http_request("GET", &format!("{}{path}", self.svc_url), None)? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("{path}: HTTP {status}: {body}")),
        }
    }
}

/// `tests/cobbler`.
pub fn cobbler_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cobbler")
}

/// A plain HTTP/1.0 request (`http://` only), bounded in time: status and body.
/// `body` is sent as JSON.
pub fn http_request(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{url}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(15))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| format!("{url}: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP response: {head}"))?;
    Ok((status, body.to_owned()))
}
