//! Placement at lab scale: 10,000 hosts over 40 label sets, 100,000 queued jobs whose
//! `runs-on` sets are drawn from those hosts' labels (a few hundred distinct sets,
//! some only a handful of hosts can run), every job placed as hosts free up: the
//! first placement fills every host, then a random running job finishes and the
//! freed host is placed again, until the queue is empty.
//!
//! A second scenario places the same number of jobs as workflows make them (matrix
//! with max-parallel and fail-fast, needs, `always()`, concurrency groups, failures),
//! to show what releases, skips and cancellations add.
//!
//! Target (issue 4): under 20 µs per placement decision on average, and under 300 MB
//! peak resident memory for the whole benchmark process (VmHWM). Run with
//! `cargo bench --bench scheduler`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use metalfarm::farm::scheduler::{
    Conclusion, Concurrency, Condition, Decision, HostSpec, JobId, JobSpec, MatrixGroup, Scheduler,
};

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

/// Adds the hosts; returns the host label sets and how many hosts have each.
fn inventory(s: &mut Scheduler) -> (Vec<Vec<String>>, Vec<usize>) {
    let sets: Vec<Vec<String>> = (0..HOST_LABEL_SETS).map(host_labels).collect();
    let counts = hosts_per_set();
    let mut host = 0;
    for (set, &count) in sets.iter().zip(&counts) {
        for _ in 0..count {
            s.add_host(HostSpec { name: format!("host{host:05}.lab.example.com"), labels: set.clone() });
            host += 1;
        }
    }
    (sets, counts)
}

/// Host set numbers, each as often as it has hosts: jobs drawn from it drain evenly.
fn weighted(counts: &[usize]) -> Vec<usize> {
    counts.iter().enumerate().flat_map(|(set, &count)| std::iter::repeat_n(set, count)).collect()
}

fn us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// The brief's scenario: independent jobs.
fn independent_jobs(rng: &mut Rng) {
    let mut s = Scheduler::new();
    let (sets, counts) = inventory(&mut s);
    let weighted = weighted(&counts);
    let started = Instant::now();
    for id in 1..=JOBS {
        let set = &sets[weighted[rng.below(weighted.len())]];
        let spec = JobSpec {
            id,
            run_id: id,
            job_key: "test".to_string(),
            labels: job_labels(rng, set),
            priority: if rng.below(10) == 0 { 1 + rng.below(5) as i32 } else { 0 },
            queued_at: id,
            needs: Vec::new(),
            condition: Condition::default(),
            concurrency: None,
            run_concurrency: None,
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

    println!("independent jobs: {HOSTS} hosts over {HOST_LABEL_SETS} label sets, {JOBS} jobs over {job_sets} runs-on sets");
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
}

/// Runs as workflows make them: a `build` matrix of 3 (max-parallel 2, fail-fast),
/// `test` needing it (one run in ten in one of 100 concurrency groups), `report`
/// needing `test` with `always()`; 2% of builds fail.
fn workflow_runs(rng: &mut Rng) {
    const JOBS_PER_RUN: i64 = 5;
    let mut s = Scheduler::new();
    let (sets, counts) = inventory(&mut s);
    let weighted = weighted(&counts);
    let mut other = 0;
    let started = Instant::now();
    for run in 0..JOBS / JOBS_PER_RUN {
        let set = &sets[weighted[rng.below(weighted.len())]];
        let labels = job_labels(rng, set);
        let priority = if rng.below(10) == 0 { 1 + rng.below(5) as i32 } else { 0 };
        let first = run * JOBS_PER_RUN + 1;
        let job = |id: JobId, key: &str| JobSpec {
            id,
            run_id: run,
            job_key: key.to_string(),
            labels: labels.clone(),
            priority,
            queued_at: run,
            needs: Vec::new(),
            condition: Condition::default(),
            concurrency: None,
            run_concurrency: None,
            matrix: None,
        };
        let matrix = MatrixGroup { key: "build".to_string(), max_parallel: Some(2), fail_fast: true };
        let builds = [first, first + 1, first + 2];
        for id in builds {
            other += s.enqueue(JobSpec { matrix: Some(matrix.clone()), ..job(id, "build") }).len();
        }
        let concurrency = (rng.below(10) == 0)
            .then(|| Concurrency { group: format!("deploy-{}", rng.below(100)), cancel_in_progress: false });
        other += s.enqueue(JobSpec { needs: builds.to_vec(), concurrency, ..job(first + 3, "test") }).len();
        let always = Condition::new("always()", Default::default());
        other += s
            .enqueue(JobSpec { needs: vec![first + 3], condition: always, ..job(first + 4, "report") })
            .len();
    }
    let enqueue_time = started.elapsed();

    let mut running: Vec<JobId> = Vec::with_capacity(HOSTS);
    let mut stopping: HashSet<JobId> = HashSet::new();
    let (mut placed, mut cancels, mut skips) = (0, 0, 0);
    let mut handle = |decisions: Vec<Decision>, running: &mut Vec<JobId>, stopping: &mut HashSet<JobId>| {
        for d in decisions {
            match d {
                Decision::Lease { job, .. } => {
                    running.push(job);
                    placed += 1;
                }
                Decision::Cancel { job, .. } => {
                    stopping.insert(job);
                    cancels += 1;
                }
                Decision::Skip { .. } => skips += 1,
                Decision::Fail { .. } => panic!("no `if` here fails"),
            }
        }
    };
    let started = Instant::now();
    handle(s.place(), &mut running, &mut stopping);
    while !running.is_empty() {
        let job = running.swap_remove(rng.below(running.len()));
        let conclusion = if stopping.remove(&job) {
            Conclusion::Cancelled
        } else if (job - 1) % JOBS_PER_RUN < 3 && rng.below(50) == 0 {
            Conclusion::Failure
        } else {
            Conclusion::Success
        };
        handle(s.finish(job, conclusion), &mut running, &mut stopping);
        handle(s.place(), &mut running, &mut stopping);
    }
    let loop_time = started.elapsed();
    assert_eq!(other, 0, "enqueueing decides nothing here");
    assert!(s.queue_lengths().is_empty(), "every job placed, skipped or cancelled");

    println!(
        "workflow runs: {} runs of {JOBS_PER_RUN} jobs (matrix, needs, always(), concurrency groups)",
        JOBS / JOBS_PER_RUN
    );
    println!("  enqueue              {:>8.2} µs per job", us(enqueue_time, JOBS as usize));
    println!(
        "  finish + place       {:>8.2} µs per lease ({placed} leases, {skips} skips, {cancels} cancels in {:.0} ms)",
        us(loop_time, placed),
        loop_time.as_secs_f64() * 1e3
    );
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
    independent_jobs(&mut rng);
    workflow_runs(&mut rng);
    println!("peak RSS (VmHWM) of the process: {:.1} MiB (target < 300 MB)", peak_rss_mib());
}
