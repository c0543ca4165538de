//! SSH against real OpenSSH test hosts (tests/common/testhost.rs): first the test
//! hosts themselves, checked with the OpenSSH client, then metalfarm's SSH client.

mod common;

use std::time::Duration;

use common::testhost::{openssh, TestHosts};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "command failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Waits (bounded) until `command` on `host` prints `expected`: a process started in
/// the background over SSH may not have exec'd yet when the session returns.
fn eventually(host: &common::testhost::TestHost, command: &str, expected: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = stdout(&host.run(command));
        if seen == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{command}: {seen:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn test_hosts_are_separate_machines() {
    let hosts = TestHosts::start(2);
    let (a, b) = (hosts.host(0), hosts.host(1));
    assert_ne!(a.address(), b.address());
    assert_ne!(a.host_key(), b.host_key());
    assert!(a.host_key().starts_with("ssh-ed25519 AAAA"), "{}", a.host_key());

    // Hostname, boot id, /root and PATH as the farm sees them over SSH.
    let seen = stdout(&openssh(
        &hosts,
        a,
        "hostname; cat /proc/sys/kernel/random/boot_id; echo $HOME; command -v reboot; id -u",
    ));
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0], "host-1");
    assert_eq!(lines[1], a.boot_id());
    assert_ne!(a.boot_id(), b.boot_id());
    assert_eq!(lines[2], "/root");
    assert!(lines[3].ends_with("/host-1/bin/reboot"), "{}", lines[3]);
    assert_eq!(lines[4], "0");

    // /root is the state folder; /tmp is the host's own.
    stdout(&openssh(&hosts, a, "echo kept > /root/mark; echo a > /tmp/only-a"));
    assert_eq!(std::fs::read_to_string(a.state_dir().join("mark")).unwrap(), "kept\n");
    assert!(!b.state_dir().join("mark").exists());
    assert_eq!(stdout(&b.run("cat /tmp/only-a 2>/dev/null || echo absent")), "absent");

    // Its own process list: a process started on one host is not seen from the other.
    stdout(&openssh(&hosts, a, "setsid sleep 1000 >/dev/null 2>&1 < /dev/null &"));
    eventually(a, "pgrep -x sleep | wc -l", "1");
    assert_eq!(stdout(&b.run("pgrep -x sleep | wc -l")), "0");
}

#[test]
fn reboot_kills_everything_and_comes_back_with_a_new_boot_id() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let first_boot = host.boot_id();
    stdout(&openssh(
        &hosts,
        host,
        "setsid sleep 1000 >/dev/null 2>&1 < /dev/null &  echo x > /tmp/x; echo y > /root/y",
    ));
    eventually(host, "pgrep -x sleep | wc -l", "1");
    let key = host.host_key();

    stdout(&openssh(&hosts, host, "reboot"));
    // Down: the boot id changes when the host comes back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while host.boot_id() == first_boot {
        assert!(std::time::Instant::now() < deadline, "the host never rebooted");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.wait_until_up();

    let seen = stdout(&openssh(&hosts, host, "cat /proc/sys/kernel/random/boot_id; ls /tmp; cat /root/y"));
    assert_eq!(seen, format!("{}\ny", host.boot_id()));
    assert_eq!(stdout(&host.run("pgrep -x sleep | wc -l")), "0");
    assert_eq!(host.host_key(), key);
}

#[test]
fn kill_start_and_reinstall() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let first_boot = host.boot_id();
    let first_key = host.host_key();
    stdout(&openssh(&hosts, host, "echo y > /root/y"));

    host.kill();
    assert!(!host.is_running());
    assert!(std::net::TcpStream::connect_timeout(&host.socket_addr(), Duration::from_secs(1)).is_err());

    host.start();
    assert_ne!(host.boot_id(), first_boot);
    assert_eq!(host.host_key(), first_key);
    assert_eq!(stdout(&openssh(&hosts, host, "cat /root/y")), "y");

    host.reinstall();
    assert_ne!(host.host_key(), first_key);
    assert!(!host.state_dir().join("y").exists());
    assert_eq!(stdout(&openssh(&hosts, host, "ls /root | wc -l")), "0");
}

// metalfarm's SSH client (src/exec/ssh.rs) against the test hosts.

use std::sync::Arc;
use std::time::Instant;

use common::testhost::TestHost;
use metalfarm::exec::keys;
use metalfarm::exec::ssh::{
    DownloadError, ExecEvent, ExitStatus, HostKeyPolicy, Session, SshError, SshOptions,
};

fn options(hosts: &TestHosts) -> SshOptions {
    let key = keys::load_or_generate_farm_key(hosts.farm_key_path()).expect("the harness's farm key");
    SshOptions {
        user: "root".into(),
        key: Arc::new(key),
        connect_timeout: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 3,
    }
}

async fn connect(hosts: &TestHosts, host: &TestHost) -> Session {
    Session::connect(&host.address(), host.port(), &options(hosts), HostKeyPolicy::Pinned(host.host_key()))
        .await
        .expect("connect with the pinned key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_output_streams_apart_and_how_the_command_ended() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let session =
        Session::connect(&host.address(), host.port(), &options(&hosts), HostKeyPolicy::TrustOnFirstUse)
            .await
            .expect("connect");
    // Trust on first use learns the key the host really has.
    assert_eq!(session.host_key(), host.host_key());
    assert_eq!(session.address(), format!("{}:{}", host.address(), host.port()));

    let out = session.output("echo out; echo err >&2; hostname; exit 3").await.unwrap();
    assert_eq!(out.status, ExitStatus { code: Some(3), signal: None });
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nhost-1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert!(session.output("true").await.unwrap().status.success());

    let killed = session.output("echo before; kill -KILL $$").await.unwrap();
    assert_eq!(killed.status, ExitStatus { code: None, signal: Some("KILL".into()) });
    assert_eq!(killed.stdout, b"before\n");

    // Streamed: output arrives as it is written, the exit comes last and only once.
    let mut execution =
        session.exec("echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three").await.unwrap();
    let mut events = Vec::new();
    loop {
        let event = execution.next().await.unwrap();
        let last = matches!(event, ExecEvent::Exit(_));
        events.push(event);
        if last {
            break;
        }
    }
    assert_eq!(
        events,
        vec![
            ExecEvent::Stdout(b"one\n".to_vec()),
            ExecEvent::Stderr(b"two\n".to_vec()),
            ExecEvent::Stdout(b"three\n".to_vec()),
            ExecEvent::Exit(ExitStatus { code: Some(0), signal: None }),
        ]
    );
    assert!(execution.next().await.is_err(), "nothing after the exit");

    // Channels of one session run side by side.
    let (a, b) = tokio::join!(session.output("sleep 0.5; echo a"), session.output("sleep 0.5; echo b"));
    assert_eq!(a.unwrap().stdout, b"a\n");
    assert_eq!(b.unwrap().stdout, b"b\n");

    // Commands dropped before their exit was read give their channel back: more
    // than the host's MaxSessions (100 on the test hosts) leave the session usable.
    for _ in 0..120 {
        let mut execution = session.exec("echo x").await.unwrap();
        assert_eq!(execution.next().await.unwrap(), ExecEvent::Stdout(b"x\n".to_vec()));
    }
    assert!(session.output("true").await.unwrap().status.success());
    assert!(!session.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_key_is_accepted_until_the_host_is_reinstalled() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let old_key = host.host_key();
    let session = connect(&hosts, host).await;
    assert_eq!(session.host_key(), old_key);
    session.close().await;

    host.reinstall();
    let err = Session::connect(
        &host.address(),
        host.port(),
        &options(&hosts),
        HostKeyPolicy::Pinned(old_key.clone()),
    )
    .await
    .err()
    .expect("the old pin is refused");
    let fingerprint = |text: &str| keys::fingerprint(&keys::parse_public_key(text).unwrap());
    match &err {
        SshError::HostKeyChanged { expected, got, .. } => {
            assert_eq!(expected, &fingerprint(&old_key));
            assert_eq!(got, &fingerprint(&host.host_key()));
        }
        other => panic!("expected HostKeyChanged, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!("{}:{}: the host key changed", host.address(), host.port())),
        "{err}"
    );
    assert!(err.is_infrastructure());

    // After a reinstall the farm learns the new key.
    let session =
        Session::connect(&host.address(), host.port(), &options(&hosts), HostKeyPolicy::TrustOnFirstUse)
            .await
            .unwrap();
    assert_eq!(session.host_key(), host.host_key());
    assert_ne!(session.host_key(), old_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_unreachable_hosts_are_infrastructure_errors() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);

    // A key the host does not know.
    let dir = tempfile::tempdir().unwrap();
    let stranger = keys::load_or_generate_farm_key(&dir.path().join("other")).unwrap();
    let other = SshOptions { key: Arc::new(stranger), ..options(&hosts) };
    let err = Session::connect(&host.address(), host.port(), &other, HostKeyPolicy::Pinned(host.host_key()))
        .await
        .err()
        .expect("an unknown key is refused");
    assert!(matches!(err, SshError::Auth { .. }), "{err:?}");
    assert!(err.is_infrastructure());

    // A host that does not answer the handshake: the connect timeout.
    host.freeze();
    let quick = SshOptions { connect_timeout: Duration::from_millis(700), ..options(&hosts) };
    let started = Instant::now();
    let err = Session::connect(&host.address(), host.port(), &quick, HostKeyPolicy::TrustOnFirstUse)
        .await
        .err()
        .expect("a frozen host times out");
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    host.thaw();

    // A host that is down.
    host.kill();
    let err = Session::connect(
        &host.address(),
        host.port(),
        &options(&hosts),
        HostKeyPolicy::Pinned(host.host_key()),
    )
    .await
    .err()
    .expect("a dead host is unreachable");
    assert!(matches!(err, SshError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("{}:{}: cannot connect", host.address(), host.port())),
        "{err}"
    );
    assert!(err.is_infrastructure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_over_sftp() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let session = connect(&hosts, host).await;

    let script = b"#!/bin/sh\necho from the script\n";
    session.write_file("/tmp/step.sh", script, 0o750).await.unwrap();
    assert_eq!(stdout(&host.run("stat -c %a /tmp/step.sh")), "750");
    assert_eq!(session.output("/tmp/step.sh").await.unwrap().stdout, b"from the script\n");
    // Rewritten: truncated, and the new mode applies to the existing file.
    session.write_file("/tmp/step.sh", b"short", 0o600).await.unwrap();
    assert_eq!(session.read_file("/tmp/step.sh").await.unwrap(), b"short");
    assert_eq!(stdout(&host.run("stat -c %a /tmp/step.sh")), "600");

    let err = session.read_file("/tmp/absent").await.unwrap_err();
    assert!(matches!(&err, SshError::NotFound { path, .. } if path == "/tmp/absent"), "{err:?}");
    assert!(!err.is_infrastructure());

    // A download bigger than any one read, streamed to a local file.
    stdout(&host.run("mkdir -p /tmp/out/sub && head -c 3000000 /dev/urandom > /tmp/out/big && echo hi > /tmp/out/sub/small && ln -s big /tmp/out/link && ln -s sub /tmp/out/dirlink"));
    let local = tempfile::tempdir().unwrap();
    let copied = session.download("/tmp/out/big", &local.path().join("big"), u64::MAX).await.unwrap();
    assert_eq!(copied, 3_000_000);
    let expected = stdout(&host.run("sha256sum /tmp/out/big | cut -d' ' -f1"));
    let got = std::process::Command::new("sha256sum").arg(local.path().join("big")).output().unwrap();
    assert!(String::from_utf8_lossy(&got.stdout).starts_with(&expected));
    let err = session.download("/tmp/out/none", &local.path().join("none"), u64::MAX).await.unwrap_err();
    assert!(matches!(err, DownloadError::Remote(SshError::NotFound { .. })), "{err:?}");
    let err = session.download("/tmp/out/big", &local.path().join("cut"), 2_999_999).await.unwrap_err();
    assert!(matches!(&err, DownloadError::TooLarge { at_most: 2_999_999, .. }), "{err:?}");
    // This side's disk full is told apart from the host's file.
    let full = tempfile::tempdir().unwrap();
    let tiny = common::TinyDisk::mount(full.path());
    let err = session.download("/tmp/out/big", &full.path().join("big"), u64::MAX).await;
    drop(tiny);
    assert!(matches!(&err, Err(DownloadError::Local { .. })), "{err:?}");

    let stat = session.stat("/tmp/out/sub").await.unwrap();
    assert!(stat.is_dir);
    let listed: Vec<(String, u64)> = session
        .list_files("/tmp/out")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.relative_path, f.size))
        .collect();
    assert_eq!(
        listed,
        vec![("big".to_string(), 3_000_000), ("link".to_string(), 3_000_000), ("sub/small".to_string(), 3)]
    );
    let one = session.list_files("/tmp/out/sub/small").await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].relative_path, "small");
    assert!(matches!(session.list_files("/tmp/nothing").await, Err(SshError::NotFound { .. })));

    // A full disk is told apart from other refusals.
    stdout(&host.run("mkdir /tmp/small && mount -t tmpfs -o size=64k tmpfs /tmp/small"));
    let err = session.write_file("/tmp/small/big", &vec![7u8; 1024 * 1024], 0o644).await.unwrap_err();
    assert!(matches!(&err, SshError::NoSpace { path, .. } if path == "/tmp/small/big"), "{err:?}");
    assert!(err.is_infrastructure());
    let err = session.write_file("/proc/version", b"x", 0o644).await.unwrap_err();
    assert!(matches!(err, SshError::Sftp { .. }), "{err:?}");
    assert!(!err.is_infrastructure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_dies_mid_command_is_lost() {
    let hosts = TestHosts::start(2);

    // Killed: the connection closes at once.
    let host = hosts.host(0);
    let session = connect(&hosts, host).await;
    let mut execution = session.exec("echo started; sleep 60").await.unwrap();
    assert_eq!(execution.next().await.unwrap(), ExecEvent::Stdout(b"started\n".to_vec()));
    let started = Instant::now();
    host.kill();
    let err = execution.next().await.unwrap_err();
    assert!(matches!(err, SshError::Lost { .. }), "{err:?}");
    assert!(err.is_infrastructure());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Silent (nothing answers, the connection stays open): keepalives notice it
    // within about interval × max = 3 s.
    let host = hosts.host(1);
    let session = connect(&hosts, host).await;
    let mut execution = session.exec("echo started; sleep 60").await.unwrap();
    assert_eq!(execution.next().await.unwrap(), ExecEvent::Stdout(b"started\n".to_vec()));
    let started = Instant::now();
    host.freeze();
    let result = tokio::time::timeout(Duration::from_secs(20), execution.next()).await;
    let elapsed = started.elapsed();
    host.thaw();
    let err = result.expect("keepalives end the command").unwrap_err();
    assert!(matches!(err, SshError::Lost { .. }), "{err:?}");
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(session.is_closed());
    assert!(matches!(session.output("true").await, Err(SshError::Lost { .. })));
    let err = session.read_file("/etc/hostname").await.unwrap_err();
    assert!(matches!(err, SshError::Lost { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_reboot_the_host_answers_with_a_new_boot_id() {
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let session = connect(&hosts, host).await;
    let first = session.boot_id().await.unwrap();
    assert_eq!(first, host.boot_id());

    // `reboot` returns, then the host goes down (the session ends) and comes back.
    assert!(session.output("reboot").await.unwrap().status.success());
    let pin = HostKeyPolicy::Pinned(host.host_key());
    let (session, second) = Session::connect_after_reboot(
        &host.address(),
        host.port(),
        &options(&hosts),
        pin,
        &first,
        Duration::from_secs(30),
    )
    .await
    .expect("the host comes back");
    assert_ne!(second, first);
    assert_eq!(second, host.boot_id());
    assert_eq!(session.output("ls /tmp | wc -l").await.unwrap().stdout, b"0\n", "a fresh /tmp");

    // A host that never reboots: the wait ends with a timeout that names it.
    let started = Instant::now();
    let err = Session::connect_after_reboot(
        &host.address(),
        host.port(),
        &options(&hosts),
        HostKeyPolicy::Pinned(host.host_key()),
        &second,
        Duration::from_secs(2),
    )
    .await
    .err()
    .expect("no reboot happened");
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn a_generated_farm_key_is_one_openssh_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("farm_ed25519");
    let key = keys::load_or_generate_farm_key(&path).unwrap();
    let public = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path).output().unwrap();
    assert_eq!(stdout(&public), keys::openssh_public_key(key.public_key()));
    let listed = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let listed = stdout(&listed);
    assert_eq!(listed.split_whitespace().nth(1), Some(keys::fingerprint(key.public_key()).as_str()));
}
