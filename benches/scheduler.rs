//! Placement at lab scale: 10,000 hosts over 40 label sets, 100,000 queued jobs whose
//! `runs-on` sets are drawn from those hosts' labels (a few hundred distinct sets,
//! some only a handful of hosts can run), every job placed as hosts free up: the
//! first placement fills every host, then a random running job finishes and the
//! freed host is placed again, until the queue is empty.
//!
//! Target (issue 4): under 20 µs per placement decision on average, and under 300 MB
//! peak resident memory for the whole benchmark process (VmHWM). Run with
//! `cargo bench --bench scheduler`.

use std::time::{Duration, Instant};

use metalfarm::farm::scheduler::{Conclusion, Condition, Decision, HostSpec, JobId, JobSpec, Scheduler};

const HOSTS: usize = 10_000;
const HOST_LABEL_SETS: usize = 40;
const JOBS: i64 = 100_000;

/// The features a host may have besides its CPU (one bit of the set's number each).
const FEATURES: [&str; 5] = ["hostprovisioning", "kvm-nested", "sriov", "nvme", "numa"];

/// splitmix64: repeatable numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Host label set `i`: the implicit labels, a CPU (amd64, intel64 or arm64) and the
/// features of the bits of `i / 3`; 40 distinct sets.
fn host_labels(i: usize) -> Vec<String> {
    let (arch, cpu) = [("x64", "amd64"), ("x64", "intel64"), ("arm64", "arm64")][i % 3];
    let mut labels = vec!["self-hosted".to_string(), "linux".to_string(), arch.to_string(), cpu.to_string()];
    let bits = i / 3;
    labels.extend(
        FEATURES.iter().enumerate().filter(|(b, _)| bits & (1 << b) != 0).map(|(_, f)| f.to_string()),
    );
    labels
}

/// How many of the hosts have set `i`: uneven, so that some sets are rare.
fn hosts_per_set() -> Vec<usize> {
    let weights: Vec<usize> =
        (0..HOST_LABEL_SETS).map(|i| if i % 9 == 8 { 1 } else { 4 + i % 7 * 6 }).collect();
    let total: usize = weights.iter().sum();
    let mut counts: Vec<usize> = weights.iter().map(|w| (w * HOSTS / total).max(5)).collect();
    let assigned: usize = counts.iter().sum();
    counts[0] = counts[0] + HOSTS - assigned;
    counts
}

/// A job runnable on hosts of set `set`: `self-hosted`, the CPU label (or `linux`
/// for a job that runs anywhere) and up to two of the set's features.
fn job_labels(rng: &mut Rng, set: &[String]) -> Vec<String> {
    let mut labels = vec!["self-hosted".to_string()];
    labels.push(if rng.below(10) == 0 { "linux".to_string() } else { set[3].clone() });
    let features = &set[4..];
    for _ in 0..rng.below(3).min(features.len()) {
        let feature = &features[rng.below(features.len())];
        if !labels.contains(feature) {
            labels.push(feature.clone());
        }
    }
    labels
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn leases(decisions: Vec<Decision>, running: &mut Vec<JobId>) -> usize {
    let before = running.len();
    running.extend(decisions.into_iter().map(|d| match d {
        Decision::Lease { job, .. } => job,
        other => panic!("only leases expected, got {other:?}"),
    }));
    running.len() - before
}

fn main() {
    let mut rng = Rng(0x6d65_7461_6c66_6172);
    let mut s = Scheduler::new();
    let sets: Vec<Vec<String>> = (0..HOST_LABEL_SETS).map(host_labels).collect();
    let counts = hosts_per_set();
    let mut host = 0;
    for (set, &count) in sets.iter().zip(&counts) {
        for _ in 0..count {
            s.add_host(HostSpec { name: format!("host{host:05}.lab.example.com"), labels: set.clone() });
            host += 1;
        }
    }

    // Jobs pick a host set in proportion to its hosts, so the queue drains evenly.
    let mut weighted: Vec<usize> = Vec::with_capacity(HOSTS);
    for (set, &count) in counts.iter().enumerate() {
        weighted.extend(std::iter::repeat_n(set, count));
    }
    let started = Instant::now();
    for id in 1..=JOBS {
        let set = &sets[weighted[rng.below(weighted.len())]];
        let spec = JobSpec {
            id,
            run_id: id,
            job_key: "test".to_string(),
            labels: job_labels(&mut rng, set),
            priority: if rng.below(10) == 0 { 1 + rng.below(5) as i32 } else { 0 },
            queued_at: id,
            needs: Vec::new(),
            condition: Condition::default(),
            concurrency: None,
            matrix: None,
        };
        assert!(s.enqueue(spec).is_empty());
    }
    let enqueue_time = started.elapsed();
    let job_sets = s.queue_lengths().len();

    let mut running: Vec<JobId> = Vec::with_capacity(HOSTS);
    let started = Instant::now();
    let first = leases(s.place(), &mut running);
    let first_time = started.elapsed();

    let mut placed = first;
    let mut place_time = first_time;
    let mut finish_time = Duration::ZERO;
    let mut calls: Vec<Duration> = Vec::with_capacity(JOBS as usize);
    while !running.is_empty() {
        let job = running.swap_remove(rng.below(running.len()));
        let t = Instant::now();
        assert!(s.finish(job, Conclusion::Success).is_empty());
        let t2 = Instant::now();
        let decisions = s.place();
        let t3 = Instant::now();
        finish_time += t2 - t;
        place_time += t3 - t2;
        calls.push(t3 - t2);
        placed += leases(decisions, &mut running);
    }
    assert_eq!(placed, JOBS as usize, "every job placed");
    calls.sort();
    let pct = |p: f64| calls[((calls.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;

    let us = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    println!("scheduler: {HOSTS} hosts over {HOST_LABEL_SETS} label sets, {JOBS} jobs over {job_sets} runs-on sets");
    println!("  enqueue              {:>8.2} µs per job", us(enqueue_time, JOBS as usize));
    println!(
        "  first placement      {:>8.2} µs per lease ({first} leases in {:.1} ms)",
        us(first_time, first),
        first_time.as_secs_f64() * 1e3
    );
    println!(
        "  placement decisions  {:>8.2} µs per lease on average over {placed} (target < 20 µs)",
        us(place_time, placed)
    );
    println!(
        "  place() as a host frees up: p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!("  finish               {:>8.2} µs per job", us(finish_time, calls.len()));
    println!("  finish + place       {:>8.2} µs per lease", us(place_time + finish_time, placed));
    println!("  peak RSS (VmHWM)     {:>8.1} MiB (target < 300 MB)", peak_rss_mib());
}
