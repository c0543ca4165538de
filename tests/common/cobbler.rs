//! A real Cobbler server for the tests, and a power lab that makes its systems the
//! test hosts.
//!
//! [`TestCobbler`] is the machine-wide Cobbler 3.3.10 that `tests/cobbler/cobbler.sh`
//! runs on loopback (one instance shared by every test process; needs root). The
//! harness's own XML-RPC calls go through the venv's python (`tests/cobbler/cobbler_rpc.py`):
//! the product's client lives in `src/provision/`, and the tests must not share its bugs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::testhost::{Machine, TestHosts};

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

/// The `COBBLER_*` lines of `cobbler.sh start`. The script runs once per test
/// process, and again only if cobblerd stopped answering since.
fn started() -> Vec<(String, String)> {
    static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    // A test that panicked while starting it leaves the lines as they were.
    let mut lines = LINES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let answers = || {
        [25151, 25152].iter().all(|&port| {
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1))
                .is_ok()
        })
    };
    if lines.is_empty() || !answers() {
        *lines = run_start_script();
    }
    lines.clone()
}

fn run_start_script() -> Vec<(String, String)> {
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
        self.svc_get_from(None, path)
    }

    /// [`TestCobbler::svc_get`] from a given loopback address, as a host would call it
    /// (Cobbler's install status is keyed by the caller's address).
    pub fn svc_get_from(&self, from: Option<Ipv4Addr>, path: &str) -> Result<String, String> {
        match http_request_from(from, "GET", &format!("{}{path}", self.svc_url), None)? {
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
    http_request_from(None, method, url, body)
}

/// [`http_request`] from the local address `from` (a test host's, say).
pub fn http_request_from(
    from: Option<Ipv4Addr>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream = match from {
        Some(local) => connect_from(local, addr),
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5)),
    }
    .map_err(|e| format!("{url}: {e}"))?;
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

impl Clone for TestCobbler {
    fn clone(&self) -> TestCobbler {
        TestCobbler {
            url: self.url.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            svc_url: self.svc_url.clone(),
            token: Mutex::new(self.token.lock().unwrap().clone()),
        }
    }
}

/// What the "installer" does when a host powers on with netboot on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// After the host's install delay: wiped, new keys, announced, nopxe, booted.
    Normal,
    /// Starts (the host stays down) and never finishes: no announce, no nopxe.
    Hangs,
}

/// The default time an install takes.
pub const INSTALL_DELAY: Duration = Duration::from_secs(1);
/// Where the fence agent keeps its power states and `.fail` files.
const FENCE_STATE: &str = "/var/lib/cobbler/fence_farmtest";

/// One Cobbler system per test host, whose power type (`farmtest`) powers that host:
/// `power_system` makes Cobbler run `/usr/sbin/fence_farmtest`, which tells the lab's
/// listener `off <system>` (the host is killed) or `on <system>` (with netboot on,
/// the host is "reinstalled" on a thread, as a kickstart would: wiped, new host keys,
/// announced to the farm, nopxe and the post trigger through the svc, booted; with
/// netboot off it just boots). Dropping the lab removes its systems.
///
/// System names are unique on the machine (`mf<pid>-<n>-<host>`): tests in parallel
/// share the one Cobbler.
pub struct PowerLab {
    lab: Arc<Lab>,
    port: u16,
    listener: Option<JoinHandle<()>>,
}

struct Lab {
    cobbler: TestCobbler,
    started: Instant,
    hosts: Vec<LabHost>,
    closed: AtomicBool,
    /// Installers and boots in flight, joined on Drop.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct LabHost {
    system: String,
    machine: Arc<Machine>,
    install: Mutex<Install>,
    install_delay: Mutex<Duration>,
    installs: AtomicUsize,
    /// Everything that happened to the host: when (since the lab started), what.
    events: Mutex<Vec<(Duration, String)>>,
    /// Bumped by every power action; an installer or boot whose generation is no
    /// longer current (the host was powered off or on since) does nothing.
    generation: AtomicU64,
    /// Serialises what changes the machine (kill, wipe, boot).
    power: Mutex<()>,
}

impl PowerLab {
    /// Registers one Cobbler system per test host (profile `metalfarm-test`, power
    /// type `farmtest`, netboot off, interface eth0 with the host's address and a
    /// random MAC) and starts the listener the fence agent notifies.
    pub fn start(cobbler: &TestCobbler, hosts: &TestHosts) -> PowerLab {
        remove_stale_systems(cobbler);
        static LABS: AtomicUsize = AtomicUsize::new(0);
        let n = LABS.fetch_add(1, Ordering::Relaxed) + 1;
        let listener = TcpListener::bind("127.0.0.1:0").expect("the power lab's listener");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("the listener's address").port();
        let lab_hosts: Vec<LabHost> = hosts
            .hosts()
            .iter()
            .map(|host| LabHost {
                system: format!("mf{}-{n}-{}", std::process::id(), host.name()),
                machine: host.machine(),
                install: Mutex::new(Install::Normal),
                install_delay: Mutex::new(INSTALL_DELAY),
                installs: AtomicUsize::new(0),
                events: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                power: Mutex::new(()),
            })
            .collect();
        for host in &lab_hosts {
            let attrs = json!({
                "name": host.system,
                "profile": TEST_PROFILE,
                "hostname": host.system,
                "netboot_enabled": false,
                "power_type": "farmtest",
                "power_id": host.system,
                "power_options": format!("notify=127.0.0.1:{port}"),
                "interface": "eth0",
                "mac_address": random_mac(),
                "ip_address": host.machine.address(),
            });
            cobbler
                .call_with_token(
                    "xapi_object_edit",
                    &[json!("system"), json!(host.system), json!("add"), attrs],
                )
                .unwrap_or_else(|e| panic!("adding Cobbler system {}: {e}", host.system));
        }
        let lab = Arc::new(Lab {
            cobbler: cobbler.clone(),
            started: Instant::now(),
            hosts: lab_hosts,
            closed: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        let listener = {
            let lab = Arc::clone(&lab);
            std::thread::spawn(move || lab.listen(listener))
        };
        PowerLab { lab, port, listener: Some(listener) }
    }

    /// The Cobbler system of the `i`th test host (from 0).
    pub fn system_name(&self, i: usize) -> &str {
        &self.lab.hosts[i].system
    }

    /// The port the fence agent notifies (`power_options` `notify=127.0.0.1:<port>`).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_install(&self, i: usize, install: Install) {
        *self.lab.hosts[i].install.lock().unwrap() = install;
    }

    /// How long the `i`th host's install takes (default [`INSTALL_DELAY`]).
    pub fn set_install_delay(&self, i: usize, delay: Duration) {
        *self.lab.hosts[i].install_delay.lock().unwrap() = delay;
    }

    /// Makes the fence agent fail on/off for the `i`th host (rc 1; Cobbler retries
    /// three times, then `power_system` faults).
    pub fn set_power_fails(&self, i: usize, fails: bool) {
        let path = Path::new(FENCE_STATE).join(format!("{}.fail", self.system_name(i)));
        if fails {
            std::fs::create_dir_all(FENCE_STATE).expect("the fence agent's folder");
            std::fs::write(&path, "").expect("the .fail file");
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// How many installs started on the `i`th host (power on with netboot on).
    pub fn install_count(&self, i: usize) -> usize {
        self.lab.hosts[i].installs.load(Ordering::SeqCst)
    }

    /// What happened to the `i`th host, in order: the fence agent's `off` and `on`,
    /// and what the installer and boots did (`install started`, `install hangs`,
    /// `announced: HTTP 204`, `nopxe: True`, `trig/mode/post: True`, `booted`, …).
    pub fn events(&self, i: usize) -> Vec<String> {
        self.lab.hosts[i].events.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    /// Only the fence agent's power actions for the `i`th host: `off`, `on`.
    pub fn power_actions(&self, i: usize) -> Vec<String> {
        self.events(i).into_iter().filter(|e| e == "on" || e == "off").collect()
    }

    /// [`PowerLab::events`] as text for an assertion message, one line each, with
    /// the time since the lab started.
    pub fn power_log(&self, i: usize) -> String {
        let events = self.lab.hosts[i].events.lock().unwrap();
        events.iter().map(|(at, event)| format!("{:8.3}s {event}\n", at.as_secs_f64())).collect()
    }
}

impl Drop for PowerLab {
    fn drop(&mut self) {
        self.lab.closed.store(true, Ordering::SeqCst);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        // Workers stop at their next check; a boot in flight ends within the boot timeout.
        let workers: Vec<_> = self.lab.workers.lock().unwrap().drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
        for host in &self.lab.hosts {
            if let Err(e) = self.lab.cobbler.call_with_token("remove_system", &[json!(host.system)]) {
                eprintln!("power lab: removing Cobbler system {}: {e}", host.system);
            }
            let _ = std::fs::remove_file(Path::new(FENCE_STATE).join(&host.system));
            let _ = std::fs::remove_file(Path::new(FENCE_STATE).join(format!("{}.fail", host.system)));
        }
    }
}

impl Lab {
    fn listen(self: Arc<Lab>, listener: TcpListener) {
        while !self.closed.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => self.answer(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => eprintln!("power lab: accept: {e}"),
            }
        }
    }

    /// One request of the fence agent, `<on|off> <system>`, answered at once with
    /// `ok` or `error …`; what takes time runs on a worker thread.
    fn answer(self: &Arc<Lab>, stream: TcpStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return;
        }
        let reply = match line.split_whitespace().collect::<Vec<_>>()[..] {
            [action @ ("on" | "off"), system] => match self.hosts.iter().position(|h| h.system == system) {
                Some(i) => {
                    self.power(i, action);
                    "ok".to_owned()
                }
                None => format!("error: no system {system} in this lab"),
            },
            _ => format!("error: cannot read {:?}", line.trim()),
        };
        let _ = (&stream).write_all(format!("{reply}\n").as_bytes());
    }

    fn power(self: &Arc<Lab>, i: usize, action: &str) {
        let host = &self.hosts[i];
        self.note(i, action.to_owned());
        let generation = host.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if action == "off" {
            let _power = host.power.lock().unwrap();
            host.machine.kill();
            return;
        }
        let install = self.netboot_enabled(&host.system);
        if install {
            host.installs.fetch_add(1, Ordering::SeqCst);
        }
        let lab = Arc::clone(self);
        let worker =
            std::thread::spawn(
                move || {
                    if install {
                        lab.install(i, generation)
                    } else {
                        lab.boot(i, generation)
                    }
                },
            );
        self.workers.lock().unwrap().push(worker);
    }

    /// netboot_enabled as saved (what a PXE boot would see), from Cobbler's own file.
    fn netboot_enabled(&self, system: &str) -> bool {
        let path = format!("/var/lib/cobbler/collections/systems/{system}.json");
        match std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            Some(saved) => saved["netboot_enabled"].as_bool().unwrap_or(false),
            None => self.cobbler.get_system(system).is_some_and(|s| s["netboot_enabled"] == json!(true)),
        }
    }

    fn note(&self, i: usize, event: String) {
        self.hosts[i].events.lock().unwrap().push((self.started.elapsed(), event));
    }

    /// Whether the power action that started this worker is still the latest one.
    fn current(&self, i: usize, generation: u64) -> bool {
        !self.closed.load(Ordering::SeqCst) && self.hosts[i].generation.load(Ordering::SeqCst) == generation
    }

    /// Power on without netboot: the same OS boots (same keys, new boot id).
    fn boot(&self, i: usize, generation: u64) {
        let host = &self.hosts[i];
        let _power = host.power.lock().unwrap();
        if !self.current(i, generation) || host.machine.is_running() {
            return;
        }
        host.machine.start();
        self.note(i, "booted".into());
    }

    /// Power on with netboot: what the installer and the kickstart's %post do.
    fn install(&self, i: usize, generation: u64) {
        let host = &self.hosts[i];
        self.note(i, "install started".into());
        {
            // The installer runs: the OS is down meanwhile.
            let _power = host.power.lock().unwrap();
            host.machine.kill();
        }
        // The kickstart's %pre: Cobbler's install status now says "installing".
        self.svc(i, "trig/mode/pre");
        let deadline = Instant::now() + *host.install_delay.lock().unwrap();
        while Instant::now() < deadline {
            if !self.current(i, generation) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if *host.install.lock().unwrap() == Install::Hangs {
            self.note(i, "install hangs".into());
            return;
        }
        let _power = host.power.lock().unwrap();
        if !self.current(i, generation) {
            return;
        }
        host.machine.wipe_and_rekey();
        self.announce(i);
        self.svc(i, "nopxe");
        self.svc(i, "trig/mode/post");
        host.machine.start();
        self.note(i, "booted".into());
    }

    /// A kickstart's call to Cobbler's svc for this system, from the host's address.
    fn svc(&self, i: usize, op: &str) {
        let host = &self.hosts[i];
        let from = host.machine.address().parse().ok();
        let event =
            match self.cobbler.svc_get_from(from, &format!("/cblr/svc/op/{op}/system/{}", host.system)) {
                Ok(body) => format!("{op}: {body}"),
                Err(e) => format!("{op} failed: {e}"),
            };
        self.note(i, event);
    }

    /// The kickstart's announcement: the new host key to the farm, with the token the
    /// farm put in the system's autoinstall_meta. Logged, never fatal.
    fn announce(&self, i: usize) {
        let host = &self.hosts[i];
        let meta = match self.cobbler.call("get_system", &[json!(host.system), json!(false), json!(true)]) {
            Ok(system) => system["autoinstall_meta"].clone(),
            Err(e) => {
                self.note(i, format!("announce skipped: get_system: {e}"));
                return;
            }
        };
        let field = |key: &str| {
            meta[key].as_str().map(str::to_owned).or_else(|| meta[key].as_i64().map(|n| n.to_string()))
        };
        let Some(url) = field("metalfarm_url").filter(|u| !u.is_empty()) else {
            self.note(i, "announce skipped: no metalfarm_url".into());
            return;
        };
        let name = field("metalfarm_host").unwrap_or_else(|| host.system.clone());
        let body = json!({"token": field("metalfarm_token").unwrap_or_default(), "host_key": host.machine.host_key()});
        let target = format!("{}/api/v1/hosts/{name}/installed", url.trim_end_matches('/'));
        let from = host.machine.address().parse().ok();
        let event = match http_request_from(from, "POST", &target, Some(&body.to_string())) {
            Ok((status, _)) if (200..300).contains(&status) => format!("announced: HTTP {status}"),
            Ok((status, reply)) => format!("announce refused: HTTP {status}: {}", reply.trim()),
            Err(e) => format!("announce failed: {e}"),
        };
        if !event.starts_with("announced") {
            eprintln!("power lab: {}: {event}", host.system);
        }
        self.note(i, event);
    }
}

/// A locally administered MAC, random enough that labs never collide.
fn random_mac() -> String {
    let uuid =
        std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("a random uuid").replace('-', "");
    format!("52:54:{}:{}:{}:{}", &uuid[0..2], &uuid[2..4], &uuid[4..6], &uuid[6..8])
}

/// Systems that labs of test processes now gone left behind (a panic in Drop, a kill).
fn remove_stale_systems(cobbler: &TestCobbler) {
    let Ok(Value::Array(names)) = cobbler.call("get_item_names", &[json!("system")]) else {
        return;
    };
    for name in names.iter().filter_map(Value::as_str) {
        let pid = name
            .strip_prefix("mf")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = cobbler.call_with_token("remove_system", &[json!(name)]);
            eprintln!("power lab: removed Cobbler system {name} of the gone process {pid}");
        }
    }
}

/// A TCP forwarder on `127.0.0.1:<random>` to the test Cobbler's XML-RPC, which a
/// test can stop and start again: "Cobbler stopped mid-job" without stopping the
/// machine-wide cobblerd that other tests use. Stopped, it refuses connections and
/// has cut the open ones.
pub struct CobblerProxy {
    port: u16,
    proxy: Arc<Proxy>,
    acceptor: Option<JoinHandle<()>>,
}

struct Proxy {
    upstream: std::net::SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    /// Both ends of every forwarded connection, cut on stop.
    open: Mutex<Vec<TcpStream>>,
    closed: AtomicBool,
}

impl CobblerProxy {
    pub fn start(cobbler: &TestCobbler) -> CobblerProxy {
        let authority = cobbler.url().trim_start_matches("http://").trim_end_matches('/');
        let upstream = authority.parse().expect("the test Cobbler's URL is http://IP:PORT/");
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy's listener");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("the proxy's address").port();
        let proxy = Arc::new(Proxy {
            upstream,
            listener: Mutex::new(Some(listener)),
            open: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let acceptor = {
            let proxy = Arc::clone(&proxy);
            std::thread::spawn(move || proxy.accept_loop())
        };
        CobblerProxy { port, proxy, acceptor: Some(acceptor) }
    }

    /// The XML-RPC URL through the proxy, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cobbler "goes away": new connections are refused, open ones are cut.
    pub fn stop(&self) {
        drop(self.proxy.listener.lock().unwrap().take());
        for stream in self.proxy.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Cobbler is back, on the same port.
    pub fn start_again(&self) {
        let mut listener = self.proxy.listener.lock().unwrap();
        if listener.is_none() {
            let fresh = TcpListener::bind(("127.0.0.1", self.port)).expect("the proxy's port again");
            fresh.set_nonblocking(true).expect("a non-blocking listener");
            *listener = Some(fresh);
        }
    }
}

impl Drop for CobblerProxy {
    fn drop(&mut self) {
        self.stop();
        self.proxy.closed.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Proxy {
    fn accept_loop(self: Arc<Proxy>) {
        while !self.closed.load(Ordering::SeqCst) {
            let accepted = match self.listener.lock().unwrap().as_ref() {
                Some(listener) => listener.accept().map(|(stream, _)| stream),
                None => Err(std::io::ErrorKind::WouldBlock.into()),
            };
            match accepted {
                Ok(client) => self.forward(client),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => eprintln!("cobbler proxy: accept: {e}"),
            }
        }
    }

    fn forward(&self, client: TcpStream) {
        let _ = client.set_nonblocking(false);
        let Ok(server) = TcpStream::connect_timeout(&self.upstream, Duration::from_secs(5)) else {
            return; // the client sees the connection close, as with a dead server
        };
        let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        {
            let mut open = self.open.lock().unwrap();
            open.retain(|s| s.peer_addr().is_ok());
            open.extend([client.try_clone(), server.try_clone()].into_iter().flatten());
        }
        // Copies end when either side closes (or stop cuts both).
        for (mut from, mut to) in [(client, server), (server2, client2)] {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Write);
            });
        }
    }
}

/// A TCP connection from `local` (any port) to `to`: std cannot bind before connecting.
/// Only for loopback, where connect answers at once.
fn connect_from(local: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned here; on success the TcpStream
    // owns it, on failure it is closed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let here = sockaddr(local, 0);
        if libc::bind(fd, (&here as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let there = sockaddr(*to.ip(), to.port());
        if libc::connect(fd, (&there as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}
