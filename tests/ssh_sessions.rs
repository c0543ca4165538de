//! SSH against real OpenSSH test hosts (tests/common/testhost.rs): the test hosts
//! themselves, checked with the OpenSSH client.

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
    assert!(lines[3].ends_with("tests/testhost/bin/reboot"), "{}", lines[3]);
    assert_eq!(lines[4], "0");

    // /root is the state folder; /tmp is the host's own.
    stdout(&openssh(&hosts, a, "echo kept > /root/mark; echo a > /tmp/only-a"));
    assert_eq!(std::fs::read_to_string(a.state_dir().join("mark")).unwrap(), "kept\n");
    assert!(!b.state_dir().join("mark").exists());
    assert_eq!(stdout(&b.run("cat /tmp/only-a 2>/dev/null || echo absent")), "absent");

    // Its own process list: a process started on one host is not seen from the other.
    stdout(&openssh(&hosts, a, "setsid sleep 1000 >/dev/null 2>&1 < /dev/null &"));
    assert_eq!(stdout(&a.run("pgrep -x sleep | wc -l")), "1");
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
    assert_eq!(stdout(&host.run("pgrep -x sleep | wc -l")), "1");
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
