//! Planning and loading at scale: the time per job must stay flat as workflows grow
//! (issue 11: 10,000 jobs planned in 0.8 s, 20,000 in 2.7 s, 50,000 in 16 s — quadratic).
//!
//! - `plan_jobs`: `plan` of a chain of 10,000 / 20,000 / 50,000 jobs, each needing the one
//!   before. The loader refuses more than 256 jobs (GitHub's limit), so the workflow is
//!   built from a loaded one-job workflow; this is the planner alone.
//! - `plan_matrix`: 40 / 80 / 200 jobs in a chain, each a matrix of 250 combinations:
//!   10,000 / 20,000 / 50,000 planned jobs, within GitHub's limits.
//! - `load_refused`: loading 2,000 / 4,000 / 8,000 jobs (as many as fit in GitHub's 500 KB)
//!   that the job limit refuses: the refusal must be as linear as everything before it.
//!
//! Criterion reports throughput in jobs per second: flat across sizes means linear.
//! Run with `cargo bench --bench plan`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use metalfarm::workflow::diag::Pos;
use metalfarm::workflow::event::Event;
use metalfarm::workflow::load::{load, LoadOptions};
use metalfarm::workflow::model::{Spanned, Workflow};
use metalfarm::workflow::plan::{plan, PlanOptions};

/// `jobs` jobs on one line each, each needing the one before; with a matrix of
/// `combinations` values when that is not zero.
fn chain_text(jobs: usize, combinations: usize) -> String {
    let matrix = if combinations > 0 {
        let values: Vec<String> = (0..combinations).map(|v| v.to_string()).collect();
        format!("strategy: {{matrix: {{n: [{}]}}}}, ", values.join(", "))
    } else {
        String::new()
    };
    let mut text = String::from("on: push\njobs:\n");
    for i in 0..jobs {
        let needs = if i > 0 { format!("needs: j{}, ", i - 1) } else { String::new() };
        text.push_str(&format!("  j{i}: {{runs-on: x, {needs}{matrix}steps: [{{run: make}}]}}\n"));
    }
    text
}

fn loaded(text: &str) -> Workflow {
    let loaded = load(text, &LoadOptions::default());
    loaded.workflow.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// A chain of `jobs` jobs as the model, past the loader's limit.
fn chain_model(jobs: usize) -> Workflow {
    let mut workflow = loaded(&chain_text(2, 0));
    let first = workflow.jobs["j0"].clone();
    let second = workflow.jobs["j1"].clone();
    workflow.jobs.clear();
    for i in 0..jobs {
        let mut job = if i == 0 { first.clone() } else { second.clone() };
        job.id = Spanned::new(Pos::new(i as u32 + 3, 3), format!("j{i}"));
        if i > 0 {
            job.needs = vec![Spanned::new(job.needs[0].pos, format!("j{}", i - 1))];
        }
        workflow.jobs.insert(format!("j{i}"), job);
    }
    workflow
}

fn main() {
    let event = Event::new("push", serde_json::json!({"ref": "refs/heads/main", "after": "abc"}));
    let options = PlanOptions { path: "chain.yml".into(), ..PlanOptions::default() };
    let mut c = Criterion::default().sample_size(10).configure_from_args();

    let mut group = c.benchmark_group("plan_jobs");
    for jobs in [10_000, 20_000, 50_000] {
        let workflow = chain_model(jobs);
        assert_eq!(plan(&workflow, &event, &options).expect("plans").jobs.len(), jobs);
        group.throughput(Throughput::Elements(jobs as u64));
        group.bench_with_input(BenchmarkId::from_parameter(jobs), &workflow, |b, workflow| {
            b.iter(|| plan(black_box(workflow), &event, &options))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("plan_matrix");
    for jobs in [40, 80, 200] {
        let workflow = loaded(&chain_text(jobs, 250));
        assert_eq!(plan(&workflow, &event, &options).expect("plans").jobs.len(), jobs * 250);
        group.throughput(Throughput::Elements(jobs as u64 * 250));
        group.bench_with_input(BenchmarkId::from_parameter(jobs * 250), &workflow, |b, workflow| {
            b.iter(|| plan(black_box(workflow), &event, &options))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("load_refused");
    for jobs in [2_000, 4_000, 8_000] {
        let text = chain_text(jobs, 0);
        let refused = load(&text, &LoadOptions::default());
        assert!(refused.workflow.is_none() && refused.diagnostics.len() == 1, "{:?}", refused.diagnostics);
        group.throughput(Throughput::Elements(jobs as u64));
        group.bench_with_input(BenchmarkId::from_parameter(jobs), &text, |b, text| {
            b.iter(|| load(black_box(text), &LoadOptions::default()))
        });
    }
    group.finish();
    c.final_summary();
}
