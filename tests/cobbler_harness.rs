//! The test Cobbler and its power lab (`tests/common/cobbler.rs`) against the real
//! Cobbler 3.3.10 that `tests/cobbler/cobbler.sh` runs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cobbler::{CobblerProxy, Install, PowerLab, TestCobbler, TEST_PROFILE};
use common::testhost::TestHosts;
use serde_json::json;

#[test]
fn cobbler_answers_and_logs_in() {
    let cobbler = TestCobbler::start();
    let version = cobbler.call("extended_version", &[]).expect("extended_version");
    assert_eq!(version["version"], "3.3.10");
    let token = cobbler.call("login", &[json!(cobbler.user()), json!(cobbler.password())]).expect("login");
    assert_eq!(token.as_str().map(str::len), Some(36), "a 36-character token: {token}");
    assert_eq!(cobbler.call("token_check", &[token]).expect("token_check"), json!(true));
    let fault = cobbler.call("login", &[json!(cobbler.user()), json!("wrong")]).unwrap_err();
    assert!(fault.contains("login failed"), "{fault}");
    assert_eq!(cobbler.call("has_item", &[json!("profile"), json!(TEST_PROFILE)]).unwrap(), json!(true));
    // The svc answers too (True/False as plain text, even for an unknown system).
    let body = cobbler.svc_get("/cblr/svc/op/nopxe/system/no-such-system").expect("the svc server");
    assert!(body == "True" || body == "False", "{body}");
}

/// A stand-in for the farm's `POST /api/v1/hosts/{name}/installed`: records each
/// request (request line and body) and answers 204.
struct Announcements {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Announcements {
    fn start() -> Announcements {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                let mut length = 0;
                let _ = reader.read_line(&mut request_line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock()
                    .unwrap()
                    .push((request_line.trim().to_owned(), String::from_utf8_lossy(&body).into_owned()));
                let _ = (&stream).write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            }
        });
        Announcements { url, requests }
    }
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reboot_with_netboot_reinstalls_the_host() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let farm = Announcements::start();
    let host = hosts.host(0);
    let system = lab.system_name(0);
    let (old_key, old_boot) = (host.host_key(), host.boot_id());
    std::fs::write(host.state_dir().join("left-over"), "from the old OS").unwrap();

    // What the farm does before a reinstall: its metadata, netboot on, reboot.
    let meta = format!("metalfarm_url={} metalfarm_host=farm-host-1 metalfarm_token=t0k3n", farm.url);
    cobbler
        .call_with_token(
            "xapi_object_edit",
            &[json!("system"), json!(system), json!("edit"), json!({"autoinstall_meta": meta})],
        )
        .expect("autoinstall_meta");
    cobbler.set_netboot(system, true);
    assert!(cobbler.netboot_enabled(system));
    cobbler.power_system(system, "reboot").expect("power_system reboot");

    eventually("the reinstall", Duration::from_secs(30), || lab.events(0).iter().any(|e| e == "booted"));
    assert_eq!(lab.power_actions(0), ["off", "on"]);
    assert_eq!(lab.install_count(0), 1);
    assert!(host.is_running());
    let new_key = host.host_key();
    assert_ne!(new_key, old_key);
    assert_ne!(host.boot_id(), old_boot);
    assert!(!host.state_dir().join("left-over").exists(), "the reinstall wipes /root");
    assert!(!cobbler.netboot_enabled(system), "the install's nopxe turns netboot off");
    let events = lab.events(0);
    assert!(events.contains(&"nopxe: True".to_owned()), "{}", lab.power_log(0));
    assert!(events.contains(&"announced: HTTP 204".to_owned()), "{}", lab.power_log(0));
    assert!(events.contains(&"trig/mode/post: True".to_owned()), "{}", lab.power_log(0));

    // Cobbler's install status, keyed by the address the install called from.
    let status = cobbler.call_with_token("get_status", &[json!("normal")]).expect("get_status");
    let entry = &status[host.address()];
    assert_eq!(entry[2], format!("system:{system}"), "{status:#}");
    assert!(entry[1].as_f64().unwrap_or(-1.0) >= entry[0].as_f64().unwrap(), "{status:#}");

    let requests = farm.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0, "POST /api/v1/hosts/farm-host-1/installed HTTP/1.0");
    let body: serde_json::Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(body, json!({"token": "t0k3n", "host_key": new_key}));
    // SSH answers with the announced key.
    let out = common::testhost::openssh(&hosts, host, "echo up");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up\n", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn reboot_without_netboot_boots_the_same_os() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let host = hosts.host(0);
    let (old_key, old_boot) = (host.host_key(), host.boot_id());
    std::fs::write(host.state_dir().join("kept"), "state").unwrap();
    assert!(!cobbler.netboot_enabled(lab.system_name(0)));
    cobbler.power_system(lab.system_name(0), "reboot").expect("power_system reboot");

    eventually("the boot", Duration::from_secs(30), || lab.events(0).iter().any(|e| e == "booted"));
    assert_eq!(lab.power_actions(0), ["off", "on"]);
    assert_eq!(lab.install_count(0), 0);
    assert_eq!(host.host_key(), old_key);
    assert_ne!(host.boot_id(), old_boot);
    assert!(host.state_dir().join("kept").exists());
    assert_eq!(cobbler.power_system(lab.system_name(0), "status").unwrap(), json!(true));
}

#[test]
fn a_hanging_install_keeps_the_host_down_and_netboot_on() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    let system = lab.system_name(0);
    lab.set_install(0, Install::Hangs);
    lab.set_install_delay(0, Duration::from_millis(200));
    cobbler.set_netboot(system, true);
    cobbler.power_system(system, "reboot").expect("power_system reboot");
    eventually("the install to hang", Duration::from_secs(10), || {
        lab.events(0).iter().any(|e| e == "install hangs")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!hosts.host(0).is_running());
    assert!(cobbler.netboot_enabled(system));
    assert_eq!(lab.install_count(0), 1);
    // Started (the %pre called in), never finished.
    let status = cobbler.call_with_token("get_status", &[json!("normal")]).expect("get_status");
    let entry = &status[hosts.host(0).address()];
    assert_eq!(entry[2], format!("system:{system}"), "{status:#}");
    // Keyed by address over the whole install log: an earlier run may have stopped.
    assert!(entry[1].as_f64().unwrap() < entry[0].as_f64().unwrap(), "no stop since: {status:#}");

    // Powered on again with netboot still on: it hangs again.
    cobbler.power_system(system, "on").expect("power_system on");
    eventually("the second install", Duration::from_secs(10), || lab.install_count(0) == 2);
    eventually("the second hang", Duration::from_secs(10), || {
        lab.events(0).iter().filter(|e| *e == "install hangs").count() == 2
    });
    assert!(!hosts.host(0).is_running());

    // Fixed, the next power-on installs.
    lab.set_install(0, Install::Normal);
    cobbler.power_system(system, "on").expect("power_system on");
    eventually("the reinstall", Duration::from_secs(30), || lab.events(0).iter().any(|e| e == "booted"));
    assert!(hosts.host(0).is_running());
    assert!(!cobbler.netboot_enabled(system));
}

#[test]
fn a_failing_fence_agent_makes_power_system_fault() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(1);
    let lab = PowerLab::start(&cobbler, &hosts);
    lab.set_power_fails(0, true);
    let fault = cobbler.power_system(lab.system_name(0), "off").unwrap_err();
    assert!(fault.contains("command failed"), "{fault}");
    assert!(hosts.host(0).is_running());
    assert!(lab.power_actions(0).is_empty(), "{}", lab.power_log(0));
    lab.set_power_fails(0, false);
    cobbler.power_system(lab.system_name(0), "off").expect("power_system off");
    assert!(!hosts.host(0).is_running());
    assert_eq!(cobbler.power_system(lab.system_name(0), "status").unwrap(), json!(false));
}

#[test]
fn the_proxy_refuses_when_stopped() {
    let cobbler = TestCobbler::start();
    let proxy = CobblerProxy::start(&cobbler);
    let version = TestCobbler::call_at(&proxy.url(), "extended_version", &[]).expect("through the proxy");
    assert_eq!(version["version"], "3.3.10");
    proxy.stop();
    let err = TestCobbler::call_at(&proxy.url(), "extended_version", &[]).unwrap_err();
    assert!(err.contains("cannot reach") || err.contains("refused"), "{err}");
    proxy.start_again();
    TestCobbler::call_at(&proxy.url(), "ping", &[]).expect("back through the proxy");
}

#[test]
fn a_lab_removes_its_systems() {
    let cobbler = TestCobbler::start();
    let hosts = TestHosts::start(2);
    let lab = PowerLab::start(&cobbler, &hosts);
    let names = [lab.system_name(0).to_owned(), lab.system_name(1).to_owned()];
    assert_ne!(names[0], names[1]);
    for (i, name) in names.iter().enumerate() {
        let system = cobbler.get_system(name).expect("the lab's system");
        assert_eq!(system["profile"], TEST_PROFILE);
        assert_eq!(system["power_type"], "farmtest");
        assert_eq!(system["interfaces"]["eth0"]["ip_address"], hosts.host(i).address());
    }
    drop(lab);
    for name in &names {
        assert!(cobbler.get_system(name).is_none(), "{name} is removed");
    }
}
