//! Placement through the scheduler's public API: labels, priorities, no starvation of
//! rare labels, `needs` with `if` and skips, concurrency groups, `max-parallel`,
//! `fail-fast`, cancellation, and leases restored at start.

use std::sync::Arc;

use indexmap::IndexMap;
use metalfarm::farm::scheduler::{
    Conclusion, Concurrency, Condition, Decision, HostSpec, JobId, JobSpec, MatrixGroup, Scheduler,
};
use metalfarm::workflow::expr::Value;

fn host(name: &str, labels: &[&str]) -> HostSpec {
    let mut all = vec!["self-hosted".to_string(), "linux".to_string(), "x64".to_string()];
    all.extend(labels.iter().map(|l| l.to_string()));
    HostSpec { name: name.to_string(), labels: all }
}

/// A job of its own run, queued at `id` seconds.
fn job(id: JobId, labels: &[&str]) -> JobSpec {
    JobSpec {
        id,
        run_id: id,
        job_key: format!("job{id}"),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        priority: 0,
        queued_at: id * 1000,
        needs: Vec::new(),
        condition: Condition::default(),
        concurrency: None,
        run_concurrency: None,
        matrix: None,
    }
}

/// Job `id` of run 1, workflow job `key`, needing `needs`, with the `if` `condition`.
fn run_job(id: JobId, key: &str, needs: &[JobId], condition: &str) -> JobSpec {
    JobSpec {
        run_id: 1,
        job_key: key.to_string(),
        needs: needs.to_vec(),
        condition: Condition::new(condition, Arc::default()),
        ..job(id, &["x64"])
    }
}

fn in_group(spec: JobSpec, group: &str, cancel_in_progress: bool) -> JobSpec {
    JobSpec { concurrency: Some(Concurrency { group: group.to_string(), cancel_in_progress }), ..spec }
}

/// Job `id` of run `run` (`needs` within it), under the workflow concurrency group `group`.
fn in_run_group(id: JobId, run: i64, needs: &[JobId], group: &str, cancel_in_progress: bool) -> JobSpec {
    JobSpec {
        run_id: run,
        needs: needs.to_vec(),
        run_concurrency: Some(Concurrency { group: group.to_string(), cancel_in_progress }),
        ..job(id, &["linux"])
    }
}

fn in_matrix(spec: JobSpec, max_parallel: Option<u32>, fail_fast: bool) -> JobSpec {
    JobSpec {
        run_id: 7,
        job_key: "test".to_string(),
        matrix: Some(MatrixGroup { key: "test".to_string(), max_parallel, fail_fast }),
        ..spec
    }
}

fn lease(job: JobId, host: &str) -> Decision {
    Decision::Lease { job, host: host.to_string() }
}

fn reason(s: &Scheduler, job: JobId) -> String {
    s.waiting_reason(job).map(|r| r.to_string()).unwrap_or_else(|| "not waiting".to_string())
}

/// The jobs of `decisions` that were cancelled.
fn cancelled(decisions: &[Decision]) -> Vec<JobId> {
    let mut jobs: Vec<JobId> =
        decisions.iter().filter_map(|d| matches!(d, Decision::Cancel { .. }).then_some(job_of(d))).collect();
    jobs.sort();
    jobs
}

fn skipped(decisions: &[Decision]) -> Vec<JobId> {
    let mut jobs: Vec<JobId> =
        decisions.iter().filter_map(|d| matches!(d, Decision::Skip { .. }).then_some(job_of(d))).collect();
    jobs.sort();
    jobs
}

fn job_of(decision: &Decision) -> JobId {
    match decision {
        Decision::Lease { job, .. }
        | Decision::Skip { job }
        | Decision::Cancel { job, .. }
        | Decision::Fail { job, .. } => *job,
    }
}

fn enqueue_all(s: &mut Scheduler, jobs: impl IntoIterator<Item = JobSpec>) -> Vec<Decision> {
    jobs.into_iter().flat_map(|j| s.enqueue(j)).collect()
}

#[test]
fn a_job_runs_only_where_every_label_is_case_insensitively() {
    let mut s = Scheduler::new();
    s.add_host(host("foo-amd", &["amd64", "hostprovisioning"]));
    s.add_host(host("bar-intel", &["intel64", "hostprovisioning"]));
    enqueue_all(
        &mut s,
        [
            job(1, &["self-hosted", "HostProvisioning", "INTEL64"]),
            job(2, &["arm64"]),
            job(3, &["Self-Hosted", "amd64", "linux", "x64"]),
            job(4, &["intel64", "amd64"]),
        ],
    );
    assert_eq!(s.place(), [lease(1, "bar-intel"), lease(3, "foo-amd")]);
    assert_eq!(reason(&s, 2), "no host has labels [arm64]");
    assert_eq!(reason(&s, 4), "no host has labels [intel64, amd64]");
    assert_eq!(s.host_of(1), Some("bar-intel"));
    assert_eq!(reason(&s, 1), "not waiting");

    // A host with the labels arrives: the job that no host could run takes it.
    s.add_host(host("arm", &["arm64"]));
    assert_eq!(s.place(), [lease(2, "arm")]);
}

#[test]
fn higher_priority_first_then_older() {
    let mut s = Scheduler::new();
    s.add_host(host("h", &[]));
    enqueue_all(
        &mut s,
        [
            JobSpec { queued_at: 5_000, ..job(1, &["linux"]) },
            JobSpec { queued_at: 1_000, ..job(2, &["linux"]) },
            JobSpec { priority: 10, queued_at: 9_000, ..job(3, &["linux"]) },
            JobSpec { queued_at: 1_000, ..job(4, &["linux"]) },
        ],
    );
    let mut order = Vec::new();
    loop {
        let placed = s.place();
        let Some(Decision::Lease { job, .. }) = placed.first() else { break };
        order.push(*job);
        assert!(s.finish(*job, Conclusion::Success).is_empty());
    }
    // Equal priority and age: the lower id first.
    assert_eq!(order, [3, 2, 4, 1]);
}

#[test]
fn rare_labels_never_wait_behind_jobs_they_could_not_share_a_host_with() {
    let mut s = Scheduler::new();
    s.add_host(host("intel", &["intel64"]));
    for n in 0..3 {
        s.add_host(host(&format!("amd{n}"), &["amd64"]));
    }
    // A long queue of older amd64 jobs, then one intel64 job.
    enqueue_all(&mut s, (1..=100).map(|id| job(id, &["amd64"])));
    enqueue_all(&mut s, [job(101, &["intel64"])]);
    let placed = s.place();
    assert!(placed.contains(&lease(101, "intel")), "{placed:?}");
    assert_eq!(placed.len(), 4);
    assert_eq!(reason(&s, 4), "all 3 hosts with labels [amd64] are busy");

    // The intel host frees up: it takes the next intel64 job, however young.
    enqueue_all(&mut s, [job(102, &["intel64"])]);
    assert_eq!(reason(&s, 102), "the only host with labels [intel64] is busy");
    s.finish(101, Conclusion::Success);
    assert_eq!(s.place(), [lease(102, "intel")]);

    // An amd64 host frees up: the oldest amd64 job.
    s.finish(2, Conclusion::Success);
    assert_eq!(s.place(), [lease(4, "amd1")]);
}

#[test]
fn a_job_that_can_run_anywhere_leaves_rare_hosts_to_the_jobs_that_need_them() {
    let mut s = Scheduler::new();
    s.add_host(host("special", &["intel64"]));
    s.add_host(host("plain", &[]));
    // The older job runs anywhere; the special host is the only one for the younger.
    enqueue_all(&mut s, [job(1, &["linux"]), job(2, &["intel64"])]);
    assert_eq!(s.place(), [lease(1, "plain"), lease(2, "special")]);
}

#[test]
fn hosts_that_are_not_ready_take_no_job() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &["amd64"]));
    s.add_host(host("b", &["amd64"]));
    s.set_host_available("a", false);
    enqueue_all(&mut s, [job(1, &["amd64"]), job(2, &["amd64"])]);
    assert_eq!(s.place(), [lease(1, "b")]);
    assert_eq!(reason(&s, 2), "all 2 hosts with labels [amd64] are busy or not ready (1 busy, 1 not ready)");
    // A leased host locked meanwhile keeps its job but takes no new one.
    s.set_host_available("b", false);
    s.finish(1, Conclusion::Success);
    assert!(s.place().is_empty());
    assert_eq!(reason(&s, 2), "all 2 hosts with labels [amd64] are not ready");
    s.remove_host("b");
    assert_eq!(reason(&s, 2), "the only host with labels [amd64] is not ready");
    s.set_host_available("a", true);
    assert_eq!(reason(&s, 2), "queued for a host with labels [amd64]");
    assert_eq!(s.place(), [lease(2, "a")]);
    assert_eq!(s.queue_lengths(), []);
}

#[test]
fn needs_release_a_job_when_its_dependencies_finish() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.add_host(host("b", &[]));
    // build is a matrix of two; test needs both.
    let decisions = enqueue_all(
        &mut s,
        [
            run_job(1, "build", &[], "success()"),
            run_job(2, "build", &[], "success()"),
            run_job(3, "test", &[1, 2], ""),
        ],
    );
    assert!(decisions.is_empty());
    assert_eq!(reason(&s, 3), "waiting for build");
    assert_eq!(s.place(), [lease(1, "a"), lease(2, "b")]);
    assert!(s.finish(1, Conclusion::Success).is_empty());
    assert!(s.place().is_empty());
    assert_eq!(reason(&s, 3), "waiting for build");
    assert!(s.finish(2, Conclusion::Success).is_empty());
    assert_eq!(s.place(), [lease(3, "a")]);
}

#[test]
fn a_failed_or_skipped_need_skips_what_implies_success_and_if_decides_the_rest() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let decisions = enqueue_all(
        &mut s,
        [
            run_job(1, "build", &[], "success()"),
            run_job(2, "test", &[1], "success()"),
            run_job(3, "deploy", &[2], "success()"),
            run_job(4, "report", &[2], "always()"),
            run_job(5, "notify", &[1], "failure()"),
            run_job(6, "cleanup", &[1], "cancelled()"),
            run_job(7, "triage", &[1], "${{ needs.build.result == 'failure' }}"),
            run_job(8, "retry", &[1], "always() && needs.build.result == 'failure'"),
        ],
    );
    assert!(decisions.is_empty());
    assert_eq!(reason(&s, 3), "waiting for test");
    assert_eq!(s.place(), [lease(1, "a")]);
    let decisions = s.finish(1, Conclusion::Failure);
    // test and deploy skipped (in chain), cleanup (not cancelled), triage (implies success());
    // report runs (always), notify (failure()), retry (always and the result).
    assert_eq!(skipped(&decisions), [2, 3, 6, 7]);
    assert_eq!(decisions.len(), 4);
    let mut placed = Vec::new();
    for _ in 0..3 {
        let Some(Decision::Lease { job, .. }) = s.place().pop() else { panic!("nothing placed") };
        s.finish(job, Conclusion::Success);
        placed.push(job);
    }
    placed.sort();
    assert_eq!(placed, [4, 5, 8]);
}

#[test]
fn a_skipped_job_skips_its_dependents_down_the_chain_unless_they_say_otherwise() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    // As on GitHub (actions/runner#2205): C needs B, which ran with always() after A
    // was skipped; success() for C still sees the skipped A.
    let decisions = enqueue_all(
        &mut s,
        [
            run_job(1, "a", &[], "false"),
            run_job(2, "b", &[1], "always()"),
            run_job(3, "c", &[2], "success()"),
            run_job(4, "d", &[2], "!failure() && !cancelled()"),
            run_job(5, "e", &[1], "needs.a.result == 'skipped'"),
        ],
    );
    assert_eq!(skipped(&decisions), [1, 5]);
    assert_eq!(s.place(), [lease(2, "a")]);
    let decisions = s.finish(2, Conclusion::Success);
    assert_eq!(skipped(&decisions), [3]);
    assert_eq!(s.place(), [lease(4, "a")]);
}

#[test]
fn job_outputs_reach_the_if_of_the_jobs_that_need_them() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let mut github = IndexMap::new();
    github.insert("ref".to_string(), Value::String("refs/heads/main".to_string()));
    let mut contexts = IndexMap::new();
    contexts.insert("github".to_string(), Value::Object(github));
    let contexts = Arc::new(contexts);
    let cond = |expr: &str| Condition::new(expr, contexts.clone());
    enqueue_all(
        &mut s,
        [
            run_job(1, "probe", &[], "success()"),
            JobSpec {
                condition: cond("needs.probe.outputs.hw == 'kvm' && github.ref == 'refs/heads/main'"),
                ..run_job(2, "kvm", &[1], "")
            },
            JobSpec { condition: cond("needs.probe.outputs.hw == 'xen'"), ..run_job(3, "xen", &[1], "") },
        ],
    );
    s.place();
    s.set_outputs(1, [("hw".to_string(), "kvm".to_string())].into());
    assert_eq!(skipped(&s.finish(1, Conclusion::Success)), [3]);
    assert_eq!(s.place(), [lease(2, "a")]);
}

#[test]
fn an_if_that_cannot_be_evaluated_fails_the_job() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let decisions = enqueue_all(
        &mut s,
        [
            run_job(1, "bad", &[], "fromJSON('{')"),
            run_job(2, "after", &[1], ""),
            run_job(3, "always", &[1], "always()"),
        ],
    );
    assert!(
        matches!(&decisions[0], Decision::Fail { job: 1, reason } if reason.starts_with("the job's `if` failed")),
        "{decisions:?}"
    );
    assert_eq!(skipped(&decisions), [2]);
    assert_eq!(s.place(), [lease(3, "a")]);
}

#[test]
fn a_concurrency_group_runs_one_job_and_keeps_the_newest_waiting() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.add_host(host("b", &[]));
    let deploy = |id| in_group(job(id, &["linux"]), "deploy", false);
    assert!(
        s.enqueue(in_group(job(1, &["linux"]), "Deploy", false)).is_empty(),
        "the same group, in any case"
    );
    assert!(s.enqueue(deploy(2)).is_empty());
    assert_eq!(s.place(), [lease(1, "a")], "one job of the group at a time, though a host is free");
    assert_eq!(reason(&s, 2), "waiting for concurrency group `deploy`");
    // A newer job cancels the waiting one and waits in its place.
    let decisions = s.enqueue(deploy(3));
    assert_eq!(
        decisions,
        [Decision::Cancel {
            job: 2,
            reason: "Canceling since a higher priority waiting request for 'deploy' exists".into()
        }]
    );
    assert_eq!(reason(&s, 2), "not waiting");
    // Other groups are not held up.
    s.enqueue(in_group(job(4, &["linux"]), "other", false));
    assert_eq!(s.place(), [lease(4, "b")]);
    assert!(s.finish(1, Conclusion::Success).is_empty());
    assert_eq!(s.place(), [lease(3, "a")]);
}

#[test]
fn cancel_in_progress_cancels_the_running_job_of_the_group() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let deploy = |id| in_group(job(id, &["linux"]), "deploy", true);
    s.enqueue(deploy(1));
    assert_eq!(s.place(), [lease(1, "a")]);
    let decisions = s.enqueue(deploy(2));
    assert_eq!(cancelled(&decisions), [1]);
    // The running job keeps its host until the farm has stopped it.
    assert_eq!(s.host_of(1), Some("a"));
    assert!(s.place().is_empty());
    assert_eq!(reason(&s, 2), "waiting for concurrency group `deploy`");
    // Cancelled again (a third job) is not said twice; the waiting one goes.
    let decisions = s.enqueue(deploy(3));
    assert_eq!(cancelled(&decisions), [2]);
    assert!(s.finish(1, Conclusion::Cancelled).is_empty());
    assert_eq!(s.place(), [lease(3, "a")]);

    // A holder still queued for a host is cancelled at once and the new job takes its place.
    s.enqueue(in_group(job(4, &["arm64"]), "build", true));
    let decisions = s.enqueue(in_group(job(5, &["linux"]), "build", true));
    assert_eq!(cancelled(&decisions), [4]);
    assert_eq!(reason(&s, 5), "the only host with labels [linux] is busy");
}

#[test]
fn an_older_job_arriving_late_does_not_replace_a_newer_waiting_one() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let deploy = |id, at| in_group(JobSpec { queued_at: at, ..job(id, &["linux"]) }, "deploy", false);
    s.enqueue(deploy(1, 1_000));
    s.enqueue(deploy(3, 3_000));
    assert_eq!(cancelled(&s.enqueue(deploy(2, 2_000))), [2]);
    assert_eq!(reason(&s, 3), "waiting for concurrency group `deploy`");
}

#[test]
fn a_workflow_concurrency_group_holds_whole_runs() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.add_host(host("b", &[]));
    s.add_host(host("c", &[]));
    let ci = |id, run, needs: &[JobId]| in_run_group(id, run, needs, "ci", false);
    // Run 1: jobs 1 and 2 in parallel, 3 after 1. Run 2 waits as a whole.
    let decisions =
        enqueue_all(&mut s, [ci(1, 1, &[]), ci(2, 1, &[]), ci(3, 1, &[1]), ci(4, 2, &[]), ci(5, 2, &[4])]);
    assert!(decisions.is_empty());
    assert_eq!(s.place(), [lease(1, "a"), lease(2, "b")], "the jobs of one run do not exclude each other");
    assert_eq!(reason(&s, 4), "waiting for concurrency group `ci`");
    // Run 3 arrives: the waiting run 2 is cancelled, all of it.
    let decisions = enqueue_all(&mut s, [ci(6, 3, &[])]);
    assert_eq!(cancelled(&decisions), [4, 5]);
    // An older run arriving late is cancelled as it comes, whatever its `if`.
    let late = JobSpec { condition: Condition::new("false", Arc::default()), ..ci(7, 2, &[]) };
    let late_run = JobSpec { run_id: 0, ..late };
    assert_eq!(
        s.enqueue(late_run),
        [Decision::Cancel {
            job: 7,
            reason: "Canceling since a higher priority waiting request for 'ci' exists".into()
        }]
    );
    s.finish(1, Conclusion::Success);
    assert_eq!(s.place(), [lease(3, "a")]);
    s.finish(2, Conclusion::Success);
    s.finish(3, Conclusion::Success);
    assert_eq!(s.place(), [lease(6, "a")], "run 1 has ended: run 3 holds the group");
}

#[test]
fn a_workflow_cancel_in_progress_cancels_the_running_run() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    enqueue_all(&mut s, [in_run_group(1, 1, &[], "ci", true), in_run_group(2, 1, &[1], "ci", true)]);
    assert_eq!(s.place(), [lease(1, "a")]);
    let decisions = s.enqueue(in_run_group(3, 2, &[], "CI", true));
    assert_eq!(cancelled(&decisions), [1, 2]);
    assert_eq!(s.place(), [], "the cancelled job still has its host");
    assert_eq!(reason(&s, 3), "waiting for concurrency group `CI`");
    assert_eq!(s.finish(1, Conclusion::Cancelled), []);
    assert_eq!(s.place(), [lease(3, "a")]);
}

#[test]
fn a_run_whose_first_job_is_skipped_keeps_its_group_for_the_others() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    let skipped_first = JobSpec {
        condition: Condition::new("false", Arc::default()),
        ..in_run_group(1, 1, &[], "ci", false)
    };
    let decisions = enqueue_all(
        &mut s,
        [skipped_first, in_run_group(2, 1, &[], "ci", false), in_run_group(3, 2, &[], "ci", false)],
    );
    assert_eq!(skipped(&decisions), [1]);
    assert_eq!(s.place(), [lease(2, "a")]);
    assert_eq!(reason(&s, 3), "waiting for concurrency group `ci`");
    s.finish(2, Conclusion::Success);
    assert_eq!(s.place(), [lease(3, "a")]);
}

#[test]
fn max_parallel_limits_the_running_jobs_of_a_matrix() {
    let mut s = Scheduler::new();
    for n in 0..4 {
        s.add_host(host(&format!("h{n}"), &[]));
    }
    enqueue_all(&mut s, (1..=4).map(|id| in_matrix(job(id, &["linux"]), Some(2), true)));
    assert_eq!(s.place(), [lease(1, "h0"), lease(2, "h1")]);
    assert_eq!(reason(&s, 3), "max-parallel 2 reached");
    s.finish(2, Conclusion::Success);
    assert_eq!(s.place(), [lease(3, "h1")]);
    s.finish(1, Conclusion::Success);
    assert_eq!(s.place(), [lease(4, "h0")]);
}

#[test]
fn fail_fast_cancels_the_queued_and_running_jobs_of_the_matrix() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.add_host(host("b", &[]));
    let mut jobs: Vec<JobSpec> = (1..=4).map(|id| in_matrix(job(id, &["linux"]), None, true)).collect();
    jobs.push(JobSpec { run_id: 7, needs: vec![1, 2, 3, 4], ..job(5, &["linux"]) });
    jobs.push(JobSpec {
        run_id: 7,
        needs: vec![1, 2, 3, 4],
        condition: Condition::new("failure()", Arc::default()),
        ..job(6, &["linux"])
    });
    enqueue_all(&mut s, jobs);
    assert_eq!(s.place(), [lease(1, "a"), lease(2, "b")]);
    let decisions = s.finish(1, Conclusion::Failure);
    assert_eq!(cancelled(&decisions), [2, 3, 4]);
    assert_eq!(s.host_of(2), Some("b"), "the running sibling keeps its host until stopped");
    assert_eq!(s.place(), [], "the failed job's host takes no sibling");
    let decisions = s.finish(2, Conclusion::Cancelled);
    assert_eq!(skipped(&decisions), [5]);
    assert_eq!(s.place(), [lease(6, "a")]);
}

#[test]
fn without_fail_fast_a_failure_cancels_nothing() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    enqueue_all(&mut s, (1..=2).map(|id| in_matrix(job(id, &["linux"]), Some(1), false)));
    s.place();
    assert!(s.finish(1, Conclusion::Failure).is_empty());
    assert_eq!(s.place(), [lease(2, "a")]);
}

#[test]
fn cancel_ends_a_queued_job_at_once_and_asks_a_running_one_to_stop() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    enqueue_all(
        &mut s,
        [run_job(1, "build", &[], ""), run_job(2, "test", &[1], ""), run_job(3, "lint", &[], "")],
    );
    assert_eq!(s.place(), [lease(1, "a")]);

    let decisions = s.cancel(3);
    assert_eq!(decisions, [Decision::Cancel { job: 3, reason: "cancelled on request".into() }]);
    assert_eq!(s.cancel(3), [], "cancelling twice says nothing");

    assert_eq!(cancelled(&s.cancel(1)), [1]);
    assert_eq!(s.cancel(1), []);
    assert_eq!(s.host_of(1), Some("a"));
    let decisions = s.finish(1, Conclusion::Cancelled);
    assert_eq!(skipped(&decisions), [2]);
    assert_eq!(s.place(), []);
    assert_eq!(s.finish(1, Conclusion::Success), [], "a finished job stays finished");
}

#[test]
fn leases_and_results_found_in_the_store_are_restored() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &["amd64"]));
    s.add_host(host("b", &["amd64"]));
    // Run 1 as the store has it after a restart: build done, test running on a,
    // deploy queued behind test, a matrix with max-parallel 1 whose first job runs on b.
    let deploy = run_job(3, "deploy", &[2], "");
    assert!(s.enqueue(deploy).is_empty(), "its need is not known yet");
    assert_eq!(s.completed(run_job(1, "build", &[], ""), Conclusion::Success), []);
    s.leased(in_group(run_job(2, "test", &[1], ""), "test", false), "a");
    s.leased(in_matrix(job(10, &["amd64"]), Some(1), true), "b");
    enqueue_all(
        &mut s,
        [in_matrix(job(11, &["amd64"]), Some(1), true), in_group(job(20, &["amd64"]), "test", false)],
    );
    assert_eq!(s.place(), []);
    assert_eq!(reason(&s, 3), "waiting for test");
    assert_eq!(reason(&s, 11), "max-parallel 1 reached");
    assert_eq!(reason(&s, 20), "waiting for concurrency group `test`");
    assert_eq!(s.host_of(2), Some("a"));

    s.finish(2, Conclusion::Success);
    assert_eq!(s.place(), [lease(3, "a")], "deploy is older than job 20");
    s.finish(10, Conclusion::Success);
    assert_eq!(s.place(), [lease(11, "b")]);
    s.finish(3, Conclusion::Success);
    assert_eq!(s.place(), [lease(20, "a")]);

    // A dependent enqueued before its need's result is restored is released then.
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.enqueue(run_job(2, "test", &[1], ""));
    assert_eq!(skipped(&s.completed(run_job(1, "build", &[], ""), Conclusion::Failure)), [2]);
}

#[test]
fn a_requeued_job_keeps_its_place_in_the_queue() {
    let mut s = Scheduler::new();
    s.add_host(host("a", &[]));
    s.add_host(host("b", &[]));
    enqueue_all(&mut s, [job(1, &["linux"]), job(2, &["linux"])]);
    assert_eq!(s.place(), [lease(1, "a"), lease(2, "b")]);
    enqueue_all(&mut s, [job(3, &["linux"])]);
    // Host a fails under job 1: it goes to repair, job 1 back to the queue, ahead of 3.
    s.set_host_available("a", false);
    assert_eq!(s.requeue(1), []);
    assert_eq!(reason(&s, 1), "all 2 hosts with labels [linux] are busy or not ready (1 busy, 1 not ready)");
    s.finish(2, Conclusion::Success);
    assert_eq!(s.place(), [lease(1, "b")]);
}
