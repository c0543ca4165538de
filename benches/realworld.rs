//! Whole process against whole process: metalfarm loading, validating and planning the
//! 1,503 real-world workflows of `../shared/corpus/realworld/`, beside GitHub's own
//! parser (`@actions/workflow-parser` under node) on the same files, in the same run.
//!
//! Target (issue 2): metalfarm at least 10× faster in wall time than GitHub's parser,
//! with under a quarter of its peak memory. Run with `cargo bench --bench realworld`
//! after `scripts/test.sh` has installed the npm packages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

/// One finished process: wall time, CPU time (user + system) and peak resident memory.
#[derive(Clone, Copy)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: i64,
}

// The child is reaped by wait4 below (which also reports its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Usage {
    let start = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    let code = libc::WEXITSTATUS(status);
    // 0: all valid; 1: some file invalid (the corpus has files GitHub rejects too).
    assert!(libc::WIFEXITED(status) && code <= 1, "{cmd:?} failed with status {status}");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage { wall, cpu: tv(usage.ru_utime) + tv(usage.ru_stime), peak_rss_kib: usage.ru_maxrss }
}

fn median(mut samples: Vec<Usage>) -> Usage {
    samples.sort_by_key(|u| u.wall);
    let mid = samples[samples.len() / 2];
    Usage { peak_rss_kib: samples.iter().map(|u| u.peak_rss_kib).max().unwrap_or(0), ..mid }
}

fn report(name: &str, u: Usage) {
    println!(
        "{name:<44} wall {:>8.1} ms   cpu {:>8.1} ms   peak rss {:>7.1} MiB",
        u.wall.as_secs_f64() * 1e3,
        u.cpu.as_secs_f64() * 1e3,
        u.peak_rss_kib as f64 / 1024.0
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var_os("METALFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/corpus"))
        .join("realworld");
    assert!(corpus.is_dir(), "{} is missing", corpus.display());
    let oracle = root.join("tests/oracle");
    assert!(oracle.join("node_modules/@actions/workflow-parser").is_dir(), "run scripts/test.sh first");
    let metalfarm = env!("CARGO_BIN_EXE_metalfarm");

    // A push to the default branch touching a source file: the event most of these
    // workflows are written for.
    let payload = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        payload.path(),
        serde_json::json!({
            "ref": "refs/heads/main", "before": "0".repeat(40), "after": "a".repeat(40),
            "created": false, "deleted": false, "forced": false,
            "repository": {"full_name": "lab/qemu", "name": "qemu", "owner": {"login": "lab"},
                           "default_branch": "main"},
            "pusher": {"name": "dev"}, "sender": {"login": "dev"},
            "head_commit": {"id": "a".repeat(40), "message": "Fix the build"},
            "commits": [{"id": "a".repeat(40), "message": "Fix the build",
                         "added": [], "removed": [], "modified": ["src/main.c", "README.md"]}]
        })
        .to_string(),
    )
    .expect("write payload");

    let files = std::fs::read_dir(&corpus).expect("read corpus").count();
    println!("{files} workflow files in {}, {ROUNDS} rounds, median wall time:", corpus.display());

    let (mut check, mut plan, mut node) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        check.push(measure(Command::new(metalfarm).arg("check").arg("--syntax-only").arg(&corpus)));
        plan.push(measure(
            Command::new(metalfarm)
                .args(["plan", "--event", "push", "--payload"])
                .arg(payload.path())
                .arg("--workflows")
                .arg(&corpus),
        ));
        node.push(measure(Command::new("node").arg(oracle.join("bench-parser.mjs")).arg(&corpus)));
    }
    let (check, plan, node) = (median(check), median(plan), median(node));
    report("metalfarm check --syntax-only", check);
    report("metalfarm plan --event push (load+check+plan)", plan);
    report("GitHub @actions/workflow-parser (node)", node);

    let speedup = node.wall.as_secs_f64() / plan.wall.as_secs_f64();
    let memory = plan.peak_rss_kib as f64 / node.peak_rss_kib as f64;
    println!(
        "plan vs GitHub's parser: {speedup:.1}x faster wall (target >= 10x: {}), {:.1}% of its memory (target < 25%: {})",
        if speedup >= 10.0 { "met" } else { "NOT met" },
        memory * 100.0,
        if memory < 0.25 { "met" } else { "NOT met" }
    );
}
