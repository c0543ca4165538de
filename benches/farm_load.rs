//! A farm under load: one real `metalfarm serve` (release build) with 200 real OpenSSH
//! test hosts (tests/common/testhost.rs) as its lab and no forge. One signed push
//! starts one workflow whose matrix makes a job per host; each job prints 10 MiB of
//! text (`yes … | head -c 10M`), which the farm streams over SSH, masks, parses for
//! workflow commands and writes to the job's log. The benchmark waits (bounded) until
//! `GET /api/v1/jobs` shows every job completed.
//!
//! Reported: wall time from the push to the last completion, the most jobs seen in
//! progress at once, the serve process's CPU time (utime + stime, /proc/PID/stat) and
//! peak resident memory (VmHWM, /proc/PID/status), the bytes of job logs written, and
//! whether every job succeeded.
//!
//! Target (issue 5): 200 concurrent jobs with `serve` under 300 MB resident.
//! Run as root after `scripts/test.sh` (openssh-server, the npm packages whose push
//! payload is sent): `cargo bench --bench farm_load`. `METALFARM_BENCH_HOSTS` (default
//! 200) and `METALFARM_BENCH_MB` (MiB per job, default 10) set the size, e.g. 5 and 1
//! for a smoke run; `METALFARM_BENCH_TIMEOUT_SECS` (default 1800) bounds the wait. The
//! logs take about twice the output on disk (each line gets a timestamp): 4 GiB at the
//! default size, under the system's temporary folder.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::farm::{deliver, example_payload, get, FarmServer};
use common::lab::lab_toml;
use common::testhost::TestHosts;
use serde_json::Value;

const REPO: &str = "[[repo]]\nname = \"Codertocat/Hello-World\"\nworkflows = [\"workflows/*.yml\"]\n";
/// A matrix makes at most 256 jobs (GitHub's limit, src/workflow/matrix.rs): more hosts
/// get more jobs of this many combinations each.
const JOBS_PER_MATRIX: usize = 200;
/// `GET /api/v1/jobs` lists at most this many (its `limit` maximum).
const MAX_JOBS: usize = 500;
const POLL: Duration = Duration::from_millis(250);
/// Resident memory the serve process should stay under.
const RSS_TARGET_MB: f64 = 300.0;

fn main() {
    let hosts = env_number("METALFARM_BENCH_HOSTS", 200);
    let mib = env_number("METALFARM_BENCH_MB", 10);
    let timeout = Duration::from_secs(env_number("METALFARM_BENCH_TIMEOUT_SECS", 1800) as u64);
    assert!((1..=MAX_JOBS).contains(&hosts), "METALFARM_BENCH_HOSTS: give 1 to {MAX_JOBS}");
    raise_open_files_limit();

    let booting = Instant::now();
    let lab = TestHosts::start(hosts);
    println!("farm_load: {hosts} test hosts up in {:.1} s", booting.elapsed().as_secs_f64());

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let passed = runtime.block_on(measure(&lab, hosts, mib, timeout));
    assert!(passed, "not every job succeeded (see above)");
}

async fn measure(lab: &TestHosts, hosts: usize, mib: usize, timeout: Duration) -> bool {
    let names: Vec<String> = (1..=hosts).map(|i| format!("load-{i}")).collect();
    let labels: &[&str] = &["load"];
    let farm_hosts: Vec<(&str, &[&str])> = names.iter().map(|name| (name.as_str(), labels)).collect();
    // The farm's default SSH timeouts, not the tests' quick ones: 200 handshakes at once
    // on a busy machine are slower than one.
    let ssh = lab_toml(lab, &farm_hosts)
        .replacen("connect_timeout = \"5s\"", "connect_timeout = \"10s\"", 1)
        .replacen("keepalive_interval = \"1s\"", "keepalive_interval = \"5s\"", 1);
    // Room for the whole log of a job (about twice its output) in one segment.
    let log_limit = format!("job_log_limit = \"{}MiB\"", 4 * mib + 64);
    let server = FarmServer::start_with_server_keys(&log_limit, &format!("{REPO}\n{ssh}"));
    server.write("workflows/load.yml", &workflow(hosts, mib));
    let before = cpu_seconds(server.pid());

    let push = example_payload("push", |p| p["ref"] == "refs/heads/master" && p["installation"]["id"] == 1);
    let started = Instant::now();
    let answer = deliver(&server, "push", "farm-load", push.to_string().as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let mut most_in_progress = 0;
    let jobs = loop {
        let answer = get(&server.url(&format!("/api/v1/jobs?limit={MAX_JOBS}"))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let jobs: Vec<Value> = serde_json::from_str(&answer.body).expect("jobs as JSON");
        most_in_progress = most_in_progress.max(jobs.iter().filter(|j| j["status"] == "in_progress").count());
        if jobs.len() == hosts && jobs.iter().all(|j| j["status"] == "completed") {
            break jobs;
        }
        if started.elapsed() > timeout {
            let statuses = count(jobs.iter().map(|j| j["status"].as_str().unwrap_or("?")));
            panic!("after {timeout:?}: {} of {hosts} jobs, by status {statuses:?}", jobs.len());
        }
        tokio::time::sleep(POLL).await;
    };
    let wall = started.elapsed();
    let cpu = cpu_seconds(server.pid());
    let peak_mb = server.status_kib("VmHWM") as f64 / 1024.0;
    let now_mb = server.status_kib("VmRSS") as f64 / 1024.0;
    let conclusions = count(jobs.iter().map(|j| j["conclusion"].as_str().unwrap_or("none")));
    let hosts_used = count(jobs.iter().map(|j| j["host"].as_str().unwrap_or("none"))).len();
    let (log_bytes, dropped) = log_sizes(&server.dir.path().join("data/logs"));
    let output = (hosts * mib) as f64;

    println!("farm_load: {hosts} jobs × {mib} MiB of output on {hosts} hosts, one push");
    println!(
        "  wall {:.1} s from the push to the last completion (polled every {} ms); {most_in_progress} seen \
         in progress at once, on {hosts_used} hosts",
        wall.as_secs_f64(),
        POLL.as_millis()
    );
    println!("  output {:.0} MiB through the farm: {:.1} MiB/s", output, output / wall.as_secs_f64());
    println!(
        "  serve CPU {:.1} s during the load ({:.1} s since it started): {:.0} % of one core",
        cpu - before,
        cpu,
        (cpu - before) / wall.as_secs_f64() * 100.0
    );
    println!(
        "  serve peak resident {peak_mb:.1} MB (now {now_mb:.1} MB); target < {RSS_TARGET_MB:.0} MB: {}",
        if peak_mb < RSS_TARGET_MB { "met" } else { "NOT met" }
    );
    println!(
        "  job logs {:.1} MiB on disk ({:.2}× the output), {dropped} logs cut to their tail",
        log_bytes as f64 / f64::from(1 << 20),
        log_bytes as f64 / f64::from(1 << 20) / output
    );
    println!("  conclusions {conclusions:?}");
    let succeeded = conclusions.get("success") == Some(&hosts);
    println!("  every job succeeded: {}", if succeeded { "yes" } else { "NO" });
    succeeded && dropped == 0
}

/// One workflow, a job per host: matrices of up to [`JOBS_PER_MATRIX`] combinations, each
/// job printing `mib` MiB of 25-byte lines.
fn workflow(hosts: usize, mib: usize) -> String {
    let mut text = String::from("name: Load\non: push\njobs:\n");
    let numbers: Vec<String> = (1..=hosts).map(|n| n.to_string()).collect();
    for (i, chunk) in numbers.chunks(JOBS_PER_MATRIX).enumerate() {
        text.push_str(&format!(
            "  load-{i}:\n    runs-on: [self-hosted, load]\n    strategy:\n      fail-fast: false\n      \
             matrix:\n        n: [{}]\n    steps:\n      - run: yes \"some line of test output\" | head -c {mib}M\n",
            chunk.join(", ")
        ));
    }
    text
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}: `{text}` is not a number")),
        Err(_) => default,
    }
}

/// The serve process and its test hosts' harness need a few descriptors per host (SSH
/// connections, log files, pipes): the soft limit goes up to the hard one, and the
/// server inherits it.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second as f64
}

/// Bytes in the job logs (one folder per job, segments named by their first byte's
/// offset), and how many logs lost their head to the cap.
fn log_sizes(root: &Path) -> (u64, usize) {
    let (mut bytes, mut dropped) = (0, 0);
    for job in std::fs::read_dir(root).expect("the logs folder").flatten() {
        let mut first_offset = u64::MAX;
        for segment in std::fs::read_dir(job.path()).expect("a job's log folder").flatten() {
            bytes += segment.metadata().expect("a segment's size").len();
            let name = segment.file_name().to_string_lossy().into_owned();
            let offset = name.trim_end_matches(".log").parse().unwrap_or(u64::MAX);
            first_offset = first_offset.min(offset);
        }
        if first_offset != 0 {
            dropped += 1;
        }
    }
    (bytes, dropped)
}

fn count<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_insert(0) += 1;
    }
    counts
}
