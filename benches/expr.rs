//! Expression evaluation: a typical job `if:` condition, parsed once and evaluated
//! many times over a realistic `github` context (a push event's payload).
//!
//! Target (issue 2): at least 1,000,000 evaluations per second on one core. Run with
//! `cargo bench --bench expr`; it prints criterion's timings and then evals/s.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use indexmap::IndexMap;
use metalfarm::workflow::expr::{Allowed, EvalContext, Expr, Value, STATUS_FUNCTIONS};

const CONDITION: &str = "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/') && !cancelled()";

/// A `github` context as a push of a tag fills it, payload included.
fn contexts() -> IndexMap<String, Value> {
    let github = serde_json::json!({
        "event_name": "push",
        "ref": "refs/tags/v2.3.1",
        "ref_name": "v2.3.1",
        "ref_type": "tag",
        "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "repository": "lab/qemu",
        "repository_owner": "lab",
        "actor": "octocat",
        "run_id": "1658821493",
        "run_number": "42",
        "run_attempt": "1",
        "workflow": "qemu-sanity",
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "workspace": "/home/runner/work/qemu/qemu",
        "event": {
            "ref": "refs/tags/v2.3.1",
            "before": "0000000000000000000000000000000000000000",
            "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "created": true, "deleted": false, "forced": false,
            "base_ref": "refs/heads/master",
            "compare": "https://github.com/lab/qemu/compare/v2.3.1",
            "commits": [],
            "head_commit": {
                "id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "message": "Release 2.3.1",
                "timestamp": "2026-11-25T12:00:00Z",
                "author": {"name": "Mona", "email": "mona@example.com", "username": "mona"},
                "added": [], "removed": [], "modified": ["VERSION"]
            },
            "pusher": {"name": "mona", "email": "mona@example.com"},
            "repository": {
                "id": 186853002, "name": "qemu", "full_name": "lab/qemu", "private": false,
                "owner": {"login": "lab", "id": 21031067, "type": "Organization"},
                "default_branch": "master", "topics": ["kvm", "virtualization"],
                "stargazers_count": 0, "forks_count": 0, "archived": false
            },
            "sender": {"login": "mona", "id": 21031067, "type": "User", "site_admin": false}
        }
    });
    let mut contexts = IndexMap::new();
    contexts.insert("github".to_string(), Value::from_json(&github));
    contexts.insert("env".to_string(), Value::from_json(&serde_json::json!({"CI": "true"})));
    contexts
}

fn main() {
    let contexts = contexts();
    let allowed =
        Allowed { contexts: &["github", "env", "needs", "vars", "inputs"], functions: STATUS_FUNCTIONS };
    let expr = Expr::parse(CONDITION, &allowed).expect("the condition parses");
    let cx = EvalContext::new(&contexts);
    assert_eq!(expr.eval(&cx), Ok(Value::Bool(true)));

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("expr");
    group.throughput(Throughput::Elements(1));
    group.bench_function("if_condition_eval", |b| b.iter(|| black_box(&expr).eval(black_box(&cx))));
    group.bench_function("if_condition_truthy", |b| b.iter(|| black_box(&expr).eval_truthy(black_box(&cx))));
    group.bench_function("if_condition_parse", |b| b.iter(|| Expr::parse(black_box(CONDITION), &allowed)));
    group.finish();
    c.final_summary();

    // The number issue 2 asks for, on one core: per second of this thread's CPU time
    // (on a shared machine wall time also counts the time other processes ran).
    let n = 3_000_000u32;
    let (start, cpu_start) = (Instant::now(), thread_cpu_secs());
    for _ in 0..n {
        black_box(black_box(&expr).eval(black_box(&cx)).ok());
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), thread_cpu_secs() - cpu_start);
    println!(
        "expr: {:.0} evals per CPU-second ({:.0} per wall-second) of `{CONDITION}` (target 1,000,000)",
        f64::from(n) / cpu,
        f64::from(n) / wall
    );
}

fn thread_cpu_secs() -> f64 {
    // SAFETY: an all-zero timespec is valid for clock_gettime to fill in.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
