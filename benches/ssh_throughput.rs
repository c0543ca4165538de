//! Streaming one command's output over one SSH session: metalfarm's path
//! (`Session::exec`, src/exec/ssh.rs) against the OpenSSH client, to the same test
//! host (a real `sshd`, tests/common/testhost.rs) in the same run. The command is
//! `head -c SIZE /dev/zero`; our side counts the bytes as the runner receives them,
//! OpenSSH's goes to /dev/null.
//!
//! Target (issue 5): at least 0.8 of OpenSSH's throughput.
//! Run as root with openssh-server installed (`scripts/test.sh` installs it):
//! `cargo bench --bench ssh_throughput`. `METALFARM_BENCH_SSH_BYTES` sets the size
//! (default 1 GiB; e.g. 16777216 for a smoke run).

#[allow(dead_code)] // the benchmark uses part of the harness
#[path = "../tests/common/testhost.rs"]
mod testhost;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metalfarm::exec::keys;
use metalfarm::exec::ssh::{ExecEvent, HostKeyPolicy, Session, SshOptions};
use testhost::{openssh_command, TestHost, TestHosts};

const DEFAULT_BYTES: u64 = 1 << 30;
/// Each side runs this often; the best run counts (the machine is shared).
const ROUNDS: usize = 3;

fn main() {
    let bytes: u64 = match std::env::var("METALFARM_BENCH_SSH_BYTES") {
        Ok(text) => text.parse().expect("METALFARM_BENCH_SSH_BYTES is a number of bytes"),
        Err(_) => DEFAULT_BYTES,
    };
    let hosts = TestHosts::start(1);
    let host = hosts.host(0);
    let command = format!("head -c {bytes} /dev/zero");

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let ours = runtime.block_on(metalfarm_rounds(&hosts, host, &command, bytes));
    let openssh = openssh_rounds(&hosts, host, &command);

    let rate = |wall: Duration| bytes as f64 / wall.as_secs_f64() / 1e6;
    println!("ssh_throughput: {} MiB of output over one session, best of {ROUNDS}", bytes >> 20);
    println!("  metalfarm (russh Session::exec)  {:8.1} MB/s  ({:.2} s)", rate(ours), ours.as_secs_f64());
    println!(
        "  OpenSSH client (ssh)             {:8.1} MB/s  ({:.2} s)",
        rate(openssh),
        openssh.as_secs_f64()
    );
    let ratio = rate(ours) / rate(openssh);
    println!("  ratio {ratio:.2} (target ≥ 0.80): {}", if ratio >= 0.8 { "met" } else { "NOT met" });
}

async fn metalfarm_rounds(hosts: &TestHosts, host: &TestHost, command: &str, bytes: u64) -> Duration {
    let key = keys::load_or_generate_farm_key(hosts.farm_key_path()).expect("the harness's farm key");
    let options = SshOptions {
        user: "root".into(),
        key: Arc::new(key),
        connect_timeout: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(5),
        keepalive_max: 3,
    };
    let session =
        Session::connect(&host.address(), host.port(), &options, HostKeyPolicy::Pinned(host.host_key()))
            .await
            .expect("connect to the test host");
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut execution = session.exec(command).await.expect("exec");
        let mut received = 0u64;
        loop {
            match execution.next().await.expect("the stream") {
                ExecEvent::Stdout(data) => received += data.len() as u64,
                ExecEvent::Stderr(data) => panic!("stderr: {}", String::from_utf8_lossy(&data)),
                ExecEvent::Exit(status) => {
                    assert!(status.success(), "{status:?}");
                    break;
                }
            }
        }
        best = best.min(started.elapsed());
        assert_eq!(received, bytes, "every byte arrives");
    }
    best
}

/// The same command through `ssh`. Each `ssh` connects anew while our side reuses
/// its session, so the connection set-up (timed as `ssh … true` just before) is
/// subtracted.
fn openssh_rounds(hosts: &TestHosts, host: &TestHost, command: &str) -> Duration {
    let run = |command: &str| {
        let started = Instant::now();
        let status = openssh_command(hosts, host, command).stdout(Stdio::null()).status().expect("ssh");
        assert!(status.success(), "ssh {command}: {status}");
        started.elapsed()
    };
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let handshake = run("true");
        best = best.min(run(command).saturating_sub(handshake));
    }
    best
}
