//! `provision/`: the KVM host kickstart, set up by `provision/setup-cobbler.sh` in the real
//! test Cobbler and rendered by it for a test system, as an installer would fetch it. The
//! rendered announcement and nopxe are run too: against a stand-in farm and Cobbler's svc.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use common::cobbler::{http_request, TestCobbler};
use serde_json::{json, Value};

/// The farm's public key as the profile carries it (only its text matters here).
const FARM_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHprlQujEHuHypkeO31yOO8ZRP+Xs0kCREeNOSmSdcKM metalfarm@test";

/// The objects one test made in the machine-wide Cobbler, removed when it ends, pass or fail.
struct Made<'a> {
    cobbler: &'a TestCobbler,
    systems: Vec<String>,
    profiles: Vec<String>,
    distros: Vec<String>,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        // Children first: Cobbler refuses to leave a profile without its distro.
        for (kind, names) in
            [("system", &self.systems), ("profile", &self.profiles), ("distro", &self.distros)]
        {
            for name in names {
                if let Err(e) = self.cobbler.call_with_token(&format!("remove_{kind}"), &[json!(name)]) {
                    eprintln!("removing the {kind} {name}: {e}");
                }
            }
        }
    }
}

fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("provision/setup-cobbler.sh")
}

/// Runs `provision/setup-cobbler.sh ARGS` against the test Cobbler.
fn setup_cobbler(cobbler: &TestCobbler, args: &[&str]) -> Output {
    Command::new(setup_script())
        .args(args)
        .env("COBBLER_URL", cobbler.url())
        .env("COBBLER_USER", cobbler.user())
        .env("COBBLER_PASSWORD_FILE", cobbler.password_file())
        .output()
        .expect("run provision/setup-cobbler.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Names unique on this machine: tests in parallel share one Cobbler.
fn unique(what: &str) -> String {
    format!("mf{}-ks-{what}", std::process::id())
}

/// A locally administered MAC no other test process picks (Cobbler refuses duplicates).
fn unique_mac() -> String {
    let pid = std::process::id();
    format!("52:54:01:{:02x}:{:02x}:{:02x}", (pid >> 16) & 0xff, (pid >> 8) & 0xff, pid & 0xff)
}

/// The `$name` and `${name}` placeholders of a Cheetah source, outside `#raw` blocks (which
/// Cobbler passes through as shell).
fn cheetah_placeholders(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut raw = false;
    for line in source.lines() {
        match line.trim() {
            "#raw" => raw = true,
            "#end raw" => raw = false,
            _ if raw || line.trim_start().starts_with("##") => {}
            _ => {
                for part in line.split('$').skip(1) {
                    let name: String = part
                        .trim_start_matches('{')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
    }
    names
}

/// What the kickstart must never show: Cobbler's and Cheetah's marks of a broken render,
/// and any placeholder of ours left as it was.
fn assert_rendered_cleanly(rendered: &str) {
    for marker in [
        "This automatic OS installation file had errors",
        "This kickstart had errors",
        "# Error: no snippet data",
        "# ERROR",
        "EXCEPTION OCCURRED",
        "Error templating",
    ] {
        assert!(!rendered.contains(marker), "the kickstart has `{marker}`:\n{rendered}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("provision");
    let mut sources = vec![root.join("kickstart/metalfarm-kvm.ks")];
    for entry in std::fs::read_dir(root.join("snippets")).expect("provision/snippets") {
        sources.push(entry.expect("snippet").path());
    }
    for source in sources {
        let source_text = std::fs::read_to_string(&source).expect("read a provision source");
        for name in cheetah_placeholders(&source_text) {
            for left in [format!("${name}"), format!("${{{name}}}")] {
                let unresolved = rendered.match_indices(&left).any(|(at, _)| {
                    let next = rendered[at + left.len()..].chars().next();
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                assert!(!unresolved, "`{left}` of {} is left unresolved:\n{rendered}", source.display());
            }
        }
    }
    assert!(!rendered.contains("$metalfarm_"), "an autoinstall_meta variable is left:\n{rendered}");
}

/// `scripts/test.sh` installs pykickstart (pinned) here.
const KSVALIDATOR: &str = "/var/lib/metalfarm-test/pykickstart-venv/bin/ksvalidator";

/// pykickstart's `ksvalidator` accepts the kickstart for the installer `version` (`F18`, `RHEL9`).
fn assert_valid_kickstart(rendered: &str, version: &str) {
    assert!(Path::new(KSVALIDATOR).exists(), "{KSVALIDATOR} is missing: run scripts/test.sh");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), rendered).expect("write the kickstart");
    let out =
        Command::new(KSVALIDATOR).args(["-v", version]).arg(file.path()).output().expect("run ksvalidator");
    assert!(
        out.status.success(),
        "ksvalidator -v {version} refuses the kickstart: {}{}\n{rendered}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The `%post` section that runs in the installed system (not `%post --nochroot`).
fn post_section(rendered: &str) -> &str {
    let start = rendered.find("\n%post\n").expect("a %post section") + "\n%post\n".len();
    let end = rendered[start..].find("\n%end").expect("%post ends") + start;
    &rendered[start..end]
}

/// A stand-in farm: answers the requests that come, one connection each, with `statuses`
/// in turn, and hands over each request's line and body.
fn stand_in_farm(statuses: &[&str]) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in farm");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let (stream, _) = listener.accept().expect("the announcement connects");
            stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("header");
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("a length");
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .expect("answer");
            if tx.send((request_line.trim().to_owned(), text(&body))).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// Runs a rendered announcement as the installed system would, its `/etc/ssh` in `etc_ssh`.
fn run_announcement(script: &str, etc_ssh: &Path) -> Output {
    let script = script.replace("/etc/ssh/", &format!("{}/", etc_ssh.display()));
    let ran = Command::new("bash").arg("-c").arg(&script).output().expect("run bash");
    assert!(
        ran.status.success(),
        "the announcement failed the install: {}{}",
        text(&ran.stdout),
        text(&ran.stderr)
    );
    ran
}

#[test]
fn the_kickstart_renders_for_a_test_system() {
    let cobbler = TestCobbler::start();
    let (distro, profile, system) = (unique("distro"), unique("profile"), unique("host-1"));
    let mut made = Made { cobbler: &cobbler, systems: vec![], profiles: vec![], distros: vec![] };

    // A distro of this test's own (the shared test distro keeps no install tree).
    let dir = tempfile::tempdir().expect("temp dir");
    let (kernel, initrd) = (dir.path().join("vmlinuz"), dir.path().join("initrd.img"));
    std::fs::write(&kernel, "not a kernel").unwrap();
    std::fs::write(&initrd, "not an initrd").unwrap();
    let key_file = dir.path().join("farm_ed25519.pub");
    std::fs::write(&key_file, format!("{FARM_KEY}\n")).unwrap();
    let tree = format!("http://192.0.2.1/cblr/links/{distro}");
    let args = [
        "--profile",
        &profile,
        "--distro",
        &distro,
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--tree",
        &tree,
        "--ssh-key-file",
        key_file.to_str().unwrap(),
        "--ntp-server",
        "ntp.lab.test",
        "--nfs-server",
        "nfs.lab.test",
        "--nfs-isos",
        "/export/isos",
        "--nfs-steps",
        "/export/steps",
        "--nfs-archive",
        "/export/images",
    ];
    made.distros.push(distro.clone());
    made.profiles.push(profile.clone());
    let first = setup_cobbler(&cobbler, &args);
    assert!(first.status.success(), "setup-cobbler.sh: {}{}", text(&first.stdout), text(&first.stderr));
    assert!(text(&first.stdout).contains(&format!("profile {profile} created")), "{}", text(&first.stdout));
    // Idempotent: a second run updates what the first made.
    let second = setup_cobbler(&cobbler, &args);
    assert!(second.status.success(), "setup-cobbler.sh again: {}", text(&second.stderr));
    assert!(text(&second.stdout).contains(&format!("profile {profile} updated")), "{}", text(&second.stdout));

    // The system as the farm leaves it before a reinstall: named like the host, with the
    // announcement's settings in its autoinstall_meta.
    // The farm is busy at first: the install asks again.
    let (farm_url, farm_requests) = stand_in_farm(&["503 Service Unavailable", "204 No Content"]);
    let token = format!("token-{}", std::process::id());
    let handle = cobbler.call_with_token("new_system", &[]).expect("new_system");
    let meta = json!({"metalfarm_url": farm_url, "metalfarm_host": "host-1", "metalfarm_token": token});
    for (attribute, value) in [
        ("name", json!(system)),
        ("profile", json!(profile)),
        ("hostname", json!(format!("{system}.farm.test"))),
        ("modify_interface", json!({"macaddress-eth0": unique_mac()})),
        ("autoinstall_meta", meta),
    ] {
        let set = cobbler.call_with_token("modify_system", &[handle.clone(), json!(attribute), value]);
        assert_eq!(set, Ok(json!(true)), "modify_system {attribute}");
    }
    made.systems.push(system.clone());
    cobbler.call_with_token("save_system", &[handle]).expect("save_system");

    let rendered =
        cobbler.call("generate_autoinstall", &[json!(""), json!(system)]).expect("generate_autoinstall");
    let rendered = rendered.as_str().expect("the kickstart is text").to_owned();
    assert_rendered_cleanly(&rendered);

    // A kickstart the installers of the design's profile (Fedora 18) and of today take.
    assert_valid_kickstart(&rendered, "F18");
    assert_valid_kickstart(&rendered, "RHEL9");

    // A text install that reboots, from the distro's tree.
    for line in ["text", "reboot", &format!("url --url={tree}")] {
        assert!(rendered.lines().any(|l| l.trim() == line), "no `{line}` line:\n{rendered}");
    }
    // What a virt test host needs, and what the kickstart itself uses.
    let packages = &rendered[rendered.find("%packages").expect("a %packages section")..];
    let packages: Vec<&str> = packages[..packages.find("%end").expect("%packages ends")].lines().collect();
    for package in
        ["qemu-kvm", "libvirt", "bridge-utils", "nfs-utils", "chrony", "curl", "openssh-server", "tcpdump"]
    {
        assert!(packages.contains(&package), "{package} is not installed: {packages:?}");
    }
    // The farm's key for root, and no DSA anywhere.
    assert!(rendered
        .contains(&format!("/root/.ssh/authorized_keys <<'METALFARM_KEY'\n{FARM_KEY}\nMETALFARM_KEY\n")));
    assert!(!rendered.contains("ssh-dss"));
    // NFS: the shared exports, and this system's own directory of the image archive.
    for mount in [
        "nfs.lab.test:/export/isos /var/lib/metalfarm/isos nfs ro".to_owned(),
        "nfs.lab.test:/export/steps /var/lib/metalfarm/steps nfs ro".to_owned(),
        format!("nfs.lab.test:/export/images/{system} /var/lib/metalfarm/images nfs rw"),
    ] {
        assert!(rendered.contains(&mount), "no mount `{mount}`:\n{rendered}");
    }

    // Time first: before the clock is synced, %post only starts its log.
    let post = post_section(&rendered);
    let sync =
        post.find("chronyd -q \"server ntp.lab.test iburst\"").expect("chrony syncs with the lab's server");
    let before: Vec<&str> =
        post[..sync].lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(before, ["set -x -v", "exec 1>/root/ks-post.log 2>&1"], "%post work before the time sync");
    assert!(post.lines().any(|l| l.trim() == "systemctl mask tmp.mount"), "tmp.mount is not masked:\n{post}");
    assert!(post.contains("echo \"server ntp.lab.test iburst\" >> /etc/chrony.conf"), "chrony.conf: {post}");

    // The announcement, then nopxe and the post trigger for this system, in that order.
    let svc = format!("{}/cblr/svc/op", cobbler.svc_url());
    let announce = post.find("# Start metalfarm_announce").expect("the announcement is in %post");
    let nopxe_url = format!("{svc}/nopxe/system/{system}");
    let nopxe = post.find(&format!("curl \"{nopxe_url}\"")).expect("nopxe for this system");
    let trigger =
        post.find(&format!("curl \"{svc}/trig/mode/post/system/{system}\"")).expect("the post trigger");
    assert!(announce < nopxe && nopxe < trigger, "announce, nopxe, trigger out of order:\n{post}");

    // Run the rendered announcement as the installed system would, its /etc/ssh in a temp dir.
    let etc_ssh = dir.path().join("etc-ssh");
    std::fs::create_dir(&etc_ssh).unwrap();
    let end = post.find("# End metalfarm_announce").expect("the announcement ends");
    let script = &post[announce..end];
    let ran = run_announcement(script, &etc_ssh);
    let host_key = std::fs::read_to_string(etc_ssh.join("ssh_host_ed25519_key.pub")).expect("a new host key");
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    for _ in 0..2 {
        let (request_line, body) =
            farm_requests.recv_timeout(Duration::from_secs(30)).expect("the farm heard the host");
        assert_eq!(request_line, "POST /api/v1/hosts/host-1/installed HTTP/1.1");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        assert_eq!(body, json!({"token": token, "host_key": host_key.join(" ")}));
    }
    let log = text(&ran.stdout);
    assert!(log.contains("attempt 1: HTTP 503") && log.contains("attempt 2: HTTP 204"), "{log}");
    assert!(!log.contains("attempt 3"), "asked again after the farm accepted: {log}");

    // A farm that refuses (not this install's token) is not asked again, and the install
    // goes on: the farm times it out.
    let (refusing_url, refused) = stand_in_farm(&["403 Forbidden", "204 No Content"]);
    let ran = run_announcement(&script.replace(&farm_url, &refusing_url), &etc_ssh);
    refused.recv_timeout(Duration::from_secs(30)).expect("the refusing farm heard the host");
    let log = text(&ran.stdout);
    assert!(log.contains("attempt 1: HTTP 403") && !log.contains("attempt 2"), "{log}");

    // The rendered nopxe reaches Cobbler and turns this system's netboot off.
    cobbler.set_netboot(&system, true);
    let (status, _) = http_request("GET", &nopxe_url, None).expect("the svc answers");
    assert_eq!(status, 200);
    assert!(!cobbler.netboot_enabled(&system), "nopxe left netboot on");

    // The profile alone renders too (no system: no announcement, no nopxe).
    let rendered =
        cobbler.call("generate_autoinstall", &[json!(profile), json!("")]).expect("generate_autoinstall");
    let rendered = rendered.as_str().expect("the kickstart is text");
    assert_rendered_cleanly(rendered);
    assert!(!rendered.contains("metalfarm_announce") && !rendered.contains("/nopxe/"), "{rendered}");

    // A profile without the farm's ed25519 key gives no kickstart at all: the farm could
    // not log in to what it installed.
    let handle = cobbler.call_with_token("get_profile_handle", &[json!(profile)]).expect("the profile");
    let old_key = json!({"metalfarm_ssh_key": "ssh-dss AAAAB3NzaC1kc3MAAACBAP farm@old"});
    let set =
        cobbler.call_with_token("modify_profile", &[handle.clone(), json!("autoinstall_meta"), old_key]);
    assert_eq!(set, Ok(json!(true)));
    cobbler.call_with_token("save_profile", &[handle]).expect("save_profile");
    let rendered =
        cobbler.call("generate_autoinstall", &[json!(""), json!(system)]).expect("generate_autoinstall");
    let rendered = rendered.as_str().expect("the kickstart is text");
    assert!(
        rendered.contains("had errors") && !rendered.contains("%post"),
        "rendered with a DSA key:\n{rendered}"
    );
}

#[test]
fn a_farm_key_that_is_not_ed25519_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("farm_dsa.pub");
    std::fs::write(&key_file, "ssh-dss AAAAB3NzaC1kc3MAAACBAP farm@old\n").unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "unused\n").unwrap();
    // Refused before it talks to any Cobbler: the URL leads nowhere.
    let out = Command::new(setup_script())
        .args(["--url", "http://127.0.0.1:9/", "--password-file", password_file.to_str().unwrap()])
        .args(["--ssh-key-file", key_file.to_str().unwrap(), "--profile", &unique("dsa")])
        .output()
        .expect("run provision/setup-cobbler.sh");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not an ssh-ed25519 public key"), "{}", text(&out.stderr));
}

#[test]
fn setup_cobbler_documents_its_flags() {
    let out = Command::new(setup_script()).arg("--help").output().expect("run provision/setup-cobbler.sh");
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--url",
        "--user",
        "--password-file",
        "--profile",
        "--template",
        "--distro",
        "--kernel",
        "--initrd",
        "--tree",
        "--ssh-key-file",
        "--ntp-server",
        "--nfs-server",
        "--nfs-isos",
        "--nfs-steps",
        "--nfs-archive",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
    assert!(help.contains("f18-autotest-kvm"), "the default profile is the design's");
}
