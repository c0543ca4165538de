//! The placement engine: which host runs which job, and what happens to the jobs
//! that wait on others. Pure and in memory: no I/O, no clock (times are arguments),
//! no store. The farm feeds it from the store, writes its [`Decision`]s back, and
//! rebuilds it from the store at start ([`Scheduler::leased`], [`Scheduler::completed`]).
//!
//! The rules are GitHub Actions' and a well-run lab's:
//! - a job runs on an available host whose labels include every `runs-on` label
//!   (case-insensitively); higher priority first, then older;
//! - a job never waits behind jobs it could not share a host with: queued jobs are
//!   grouped by label set and a free host only looks at the sets it can serve
//!   ([`classes`]), and a job takes the least versatile free host that fits, leaving
//!   rare hosts to the jobs that need them;
//! - `needs`: a job is released when every job it needs has finished; its `if`
//!   decides whether it runs or is skipped ([`condition`]);
//! - concurrency groups: one job holds a group (from when it may take a host until it
//!   finishes) and one waits; a newer job cancels the waiting one, and with
//!   `cancel-in-progress` the holder too. A workflow's group is held the same way by
//!   a whole run, from its first job until its last has finished;
//! - matrices: at most `max-parallel` of a matrix's jobs hold a place (queued for a
//!   host or running); with `fail-fast` a failure cancels the others.
//!
//! Mutating calls return what the farm must do besides leasing (skip, cancel, fail
//! jobs); leases come only from [`Scheduler::place`], which the farm calls after
//! anything that may have freed a host or released a job.

mod classes;
mod condition;
mod wait;

pub use condition::Condition;
pub use wait::WaitReason;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use indexmap::IndexMap;

use classes::{ClassIdx, Classes};
use condition::{need_value, Chain, Compiled, Verdict};

/// The store's job id.
pub type JobId = i64;

/// Index of a host in [`Scheduler::hosts`].
type HostIdx = u32;

/// The results and outputs of a needed workflow job's jobs (its matrix).
type NeedResults<'a> = (Vec<Conclusion>, Option<&'a IndexMap<String, String>>);

/// A job's place in a queue: higher priority first, then older, then lower id.
type QueueKey = (Reverse<i32>, i64, JobId);

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    /// All its labels, the implicit `self-hosted`, `linux` and architecture included.
    pub labels: Vec<String>,
}

/// A job as placement sees it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: JobId,
    pub run_id: i64,
    /// The workflow job id (`build`), shared by a matrix's jobs: the key of `needs.<id>`.
    pub job_key: String,
    /// `runs-on`.
    pub labels: Vec<String>,
    /// Higher runs first.
    pub priority: i32,
    /// When it was queued, in milliseconds; older runs first among equal priorities.
    pub queued_at: i64,
    /// Jobs of the same run it waits for.
    pub needs: Vec<JobId>,
    /// The job's `if`.
    pub condition: Condition,
    /// The job's own concurrency group (`jobs.<id>.concurrency`).
    pub concurrency: Option<Concurrency>,
    /// The workflow's concurrency group (top-level `concurrency`), the same for every
    /// job of the run: the whole run holds it or waits for it.
    pub run_concurrency: Option<Concurrency>,
    pub matrix: Option<MatrixGroup>,
}

/// A job's concurrency group (GitHub's `concurrency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    /// The evaluated group name; names that differ only in case are one group, as on
    /// GitHub. GitHub's groups are per repository: when the farm serves several, the
    /// caller makes the name unique to the repository.
    pub group: String,
    pub cancel_in_progress: bool,
}

impl Concurrency {
    fn key(&self) -> String {
        self.group.to_lowercase()
    }
}

/// The matrix a job is one combination of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixGroup {
    /// Names the matrix within its run (the workflow job id will do).
    pub key: String,
    /// At most this many of the matrix's jobs at once (0 counts as 1); `None`: no limit.
    pub max_parallel: Option<u32>,
    /// A failure cancels the matrix's other jobs (GitHub's default: true).
    pub fail_fast: bool,
}

/// How a job ended, as `needs.<id>.result` says it: the runner's conclusion.
pub use crate::exec::job::Conclusion;

/// What the farm must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run `job` on `host` (the host is the scheduler's until [`Scheduler::finish`]).
    Lease { job: JobId, host: String },
    /// The job's `if` is false: it concluded `skipped`.
    Skip { job: JobId },
    /// Cancel the job. A job that was not running has concluded `cancelled`; a
    /// running one must be stopped, and keeps its host until [`Scheduler::finish`].
    Cancel { job: JobId, reason: String },
    /// The job's `if` could not be evaluated: it concluded `failure`.
    Fail { job: JobId, reason: String },
}

struct Host {
    name: String,
    class: ClassIdx,
    available: bool,
    job: Option<JobId>,
}

struct Job {
    run_id: i64,
    job_key: String,
    class: ClassIdx,
    key: QueueKey,
    needs: Vec<JobId>,
    condition: Compiled,
    concurrency: Option<Concurrency>,
    matrix: Option<String>,
    outputs: Option<Box<IndexMap<String, String>>>,
    state: State,
}

enum State {
    /// Jobs it needs have not finished.
    Blocked {
        needs_left: usize,
    },
    /// Its run waits for the workflow's concurrency group.
    RunWaiting,
    /// Its matrix is at `max-parallel`.
    Held,
    /// Waiting for its concurrency group.
    Pending,
    /// Waiting for a host, in its class's queue.
    Queued,
    /// `host` is `None` when the host was removed from the inventory meanwhile.
    Running {
        host: Option<HostIdx>,
        cancelling: bool,
    },
    Finished {
        conclusion: Conclusion,
        chain: Chain,
    },
}

#[derive(Default)]
struct Group {
    /// May take a host, or has one.
    holder: Option<JobId>,
    pending: Option<JobId>,
}

struct Matrix {
    max_parallel: Option<u32>,
    fail_fast: bool,
    /// Members pending in a concurrency group, queued or running.
    admitted: u32,
    held: BTreeSet<QueueKey>,
    members: Vec<JobId>,
    /// A member failed with fail-fast on: no other may start.
    failed: bool,
}

#[derive(Default)]
struct Run {
    jobs: Vec<JobId>,
    unfinished: usize,
    matrices: Vec<String>,
    /// The workflow's concurrency group, from the run's first job.
    group: Option<Concurrency>,
    /// Whether the run has taken its place in `group` (held or waiting).
    joined: bool,
    /// While the run waits for its group: its released jobs, admitted when it has it.
    waiting: Option<Vec<JobId>>,
    /// Why the run was cancelled as a whole: jobs it gets later are cancelled too.
    cancelled: Option<String>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Scheduler {
    classes: Classes,
    hosts: Vec<Option<Host>>,
    host_index: HashMap<String, HostIdx>,
    free_slots: Vec<HostIdx>,
    jobs: HashMap<JobId, Job>,
    /// Who waits for a job (also for jobs not enqueued yet).
    dependents: HashMap<JobId, Vec<JobId>>,
    groups: HashMap<String, Group>,
    /// Workflow concurrency groups: holder and pending are run ids.
    run_groups: HashMap<String, Group>,
    matrices: HashMap<(i64, String), Matrix>,
    runs: HashMap<i64, Run>,
    /// Runs whose jobs all finished: forgotten at the next placement.
    done_runs: Vec<i64>,
    /// Finished jobs whose dependents have not been looked at yet.
    to_notify: Vec<JobId>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Adds a host, available; adding a known name again replaces its labels. Call
    /// [`Scheduler::set_host_available`] for a host that is not `ready`.
    pub fn add_host(&mut self, host: HostSpec) {
        let class = self.classes.host_class(&host.labels);
        if let Some(&idx) = self.host_index.get(&host.name) {
            self.detach_host(idx);
            self.host_mut(idx).class = class;
            self.attach_host(idx);
            return;
        }
        let entry = Host { name: host.name.clone(), class, available: true, job: None };
        let idx = match self.free_slots.pop() {
            Some(idx) => {
                self.hosts[idx as usize] = Some(entry);
                idx
            }
            None => {
                self.hosts.push(Some(entry));
                (self.hosts.len() - 1) as HostIdx
            }
        };
        self.host_index.insert(host.name, idx);
        self.attach_host(idx);
    }

    /// Removes a host. A job running on it stays running (without a host) until it
    /// is finished or requeued.
    pub fn remove_host(&mut self, name: &str) {
        let Some(idx) = self.host_index.remove(name) else { return };
        self.detach_host(idx);
        if let Some(host) = self.hosts[idx as usize].take() {
            if let Some(State::Running { host, .. }) =
                host.job.and_then(|j| self.jobs.get_mut(&j)).map(|j| &mut j.state)
            {
                *host = None;
            }
        }
        self.free_slots.push(idx);
    }

    /// Only `ready` hosts are available; a host that is not stays leased to its job
    /// (if any) until the job finishes, and takes no new one.
    pub fn set_host_available(&mut self, name: &str, available: bool) {
        let Some(&idx) = self.host_index.get(name) else { return };
        self.detach_host(idx);
        self.host_mut(idx).available = available;
        self.attach_host(idx);
    }

    /// Adds a queued job. It may be skipped (or fail) at once when the jobs it needs
    /// have finished, and may cancel others of its concurrency group. Enqueue all
    /// the jobs of a run before the next [`Scheduler::place`]: a run whose jobs have
    /// all finished is forgotten there. A known id is ignored.
    pub fn enqueue(&mut self, job: JobSpec) -> Vec<Decision> {
        let mut out = Vec::new();
        if self.jobs.contains_key(&job.id) {
            return out;
        }
        let id = job.id;
        let mut needs_left = 0;
        for need in &job.needs {
            if !matches!(self.jobs.get(need), Some(Job { state: State::Finished { .. }, .. })) {
                needs_left += 1;
                self.dependents.entry(*need).or_default().push(id);
            }
        }
        let run_id = job.run_id;
        self.insert(job, State::Blocked { needs_left });
        self.join_run_group(run_id, &mut out);
        if needs_left == 0 {
            self.release(id, &mut out);
        }
        self.notify_dependents(&mut out);
        out
    }

    /// Restores a lease found in the store at start: `job` runs on `host`.
    pub fn leased(&mut self, job: JobSpec, host: &str) {
        if self.jobs.contains_key(&job.id) {
            return;
        }
        let id = job.id;
        let run_id = job.run_id;
        let idx = self.host_index.get(host).copied();
        self.insert(job, State::Running { host: idx, cancelling: false });
        let run = self.runs.get_mut(&run_id).expect("just inserted");
        if let (Some(c), false) = (&run.group, run.joined) {
            run.joined = true;
            self.run_groups.entry(c.key()).or_default().holder.get_or_insert(run_id);
        }
        if let Some(idx) = idx {
            self.detach_host(idx);
            self.host_mut(idx).job = Some(id);
            self.attach_host(idx);
        }
        let job = &self.jobs[&id];
        if let Some(key) = &job.matrix {
            if let Some(m) = self.matrices.get_mut(&(job.run_id, key.clone())) {
                m.admitted += 1;
            }
        }
        if let Some(c) = &job.concurrency {
            self.groups.entry(c.key()).or_default().holder.get_or_insert(id);
        }
    }

    /// Restores a job found completed in the store at start, so that the jobs that
    /// need it see its result. Jobs waiting for it may be released (and skipped).
    pub fn completed(&mut self, job: JobSpec, conclusion: Conclusion) -> Vec<Decision> {
        let mut out = Vec::new();
        if self.jobs.contains_key(&job.id) {
            return out;
        }
        let id = job.id;
        self.insert(job, State::Blocked { needs_left: usize::MAX });
        self.conclude(id, conclusion, &mut out);
        self.notify_dependents(&mut out);
        out
    }

    /// A job ended: its host is free again (for [`Scheduler::place`]), the jobs
    /// needing it may be released or skipped, and a failure with fail-fast cancels
    /// its matrix. A job that is not running may be finished too (e.g. failed
    /// before it was leased).
    pub fn finish(&mut self, job: JobId, conclusion: Conclusion) -> Vec<Decision> {
        let mut out = Vec::new();
        self.conclude(job, conclusion, &mut out);
        self.notify_dependents(&mut out);
        out
    }

    /// Cancels a job: one not running concludes at once (its [`Decision::Cancel`]
    /// says so); a running one gets a [`Decision::Cancel`] and is finished by the
    /// farm when it has stopped.
    pub fn cancel(&mut self, job: JobId) -> Vec<Decision> {
        let mut out = Vec::new();
        self.cancel_job(job, "cancelled on request", &mut out);
        self.notify_dependents(&mut out);
        out
    }

    /// A running job lost its host before it could finish (the host failed; the
    /// lease expired): it goes back to the queue keeping its place (priority and
    /// age), its host is no longer its. A job being cancelled concludes `cancelled`.
    pub fn requeue(&mut self, job: JobId) -> Vec<Decision> {
        let mut out = Vec::new();
        match self.jobs.get(&job).map(|j| &j.state) {
            Some(State::Running { cancelling: true, .. }) => {
                self.conclude(job, Conclusion::Cancelled, &mut out)
            }
            Some(State::Running { host, .. }) => {
                if let Some(idx) = *host {
                    self.release_host(idx);
                }
                self.make_queued(job);
            }
            _ => {}
        }
        self.notify_dependents(&mut out);
        out
    }

    /// The job's outputs, for the `needs.<id>.outputs` of the jobs that need it.
    /// Call before [`Scheduler::finish`].
    pub fn set_outputs(&mut self, job: JobId, outputs: IndexMap<String, String>) {
        if let Some(job) = self.jobs.get_mut(&job) {
            job.outputs = Some(Box::new(outputs));
        }
    }

    /// Every lease possible now, best job first: the best queued job that a free
    /// host can run gets the least versatile such host, until no free host can run
    /// any queued job. Runs whose jobs have all finished are forgotten first; one
    /// that held a workflow concurrency group passes it on, and what the next run's
    /// jobs cause then (cancelling others of their job groups) comes before the leases.
    pub fn place(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        self.forget_done_runs(&mut out);
        let mut heads: BinaryHeap<Reverse<(QueueKey, ClassIdx)>> = self
            .classes
            .candidates()
            .into_iter()
            .filter_map(|class| self.classes.job(class).queue.first().map(|&key| Reverse((key, class))))
            .collect();
        while let Some(Reverse((key, class))) = heads.pop() {
            // Leases only take hosts: a class with no free host now gets none later.
            let Some(host) = self.classes.free_host_for(class) else { continue };
            let queue = &mut self.classes.job_mut(class).queue;
            queue.pop_first();
            if let Some(&next) = queue.first() {
                heads.push(Reverse((next, class)));
            }
            let job = key.2;
            self.detach_host(host);
            self.host_mut(host).job = Some(job);
            self.attach_host(host);
            if let Some(j) = self.jobs.get_mut(&job) {
                j.state = State::Running { host: Some(host), cancelling: false };
            }
            out.push(Decision::Lease { job, host: self.host(host).name.clone() });
        }
        out
    }

    /// Why a job waits, or `None` when it does not (running, finished, unknown).
    pub fn waiting_reason(&self, job: JobId) -> Option<WaitReason> {
        let job = self.jobs.get(&job)?;
        match &job.state {
            State::Blocked { .. } => {
                let mut jobs: Vec<String> = Vec::new();
                for need in &job.needs {
                    let name = match self.jobs.get(need) {
                        Some(Job { state: State::Finished { .. }, .. }) => continue,
                        Some(n) => n.job_key.clone(),
                        None => format!("job {need}"),
                    };
                    if !jobs.contains(&name) {
                        jobs.push(name);
                    }
                }
                Some(WaitReason::Needs { jobs })
            }
            State::RunWaiting => {
                let group = self.runs.get(&job.run_id)?.group.as_ref()?;
                Some(WaitReason::ConcurrencyGroup { group: group.group.clone() })
            }
            State::Held => {
                let m = job.matrix.as_ref().and_then(|k| self.matrices.get(&(job.run_id, k.clone())))?;
                Some(WaitReason::MaxParallel { max: m.max_parallel.unwrap_or_default().max(1) })
            }
            State::Pending => {
                Some(WaitReason::ConcurrencyGroup { group: job.concurrency.as_ref()?.group.clone() })
            }
            State::Queued => {
                let labels = self.classes.job(job.class).display.clone();
                let (hosts, busy, not_ready, free) = self.classes.capacity(job.class);
                Some(if hosts == 0 {
                    WaitReason::NoHost { labels }
                } else if free > 0 {
                    WaitReason::HostFree { labels }
                } else {
                    WaitReason::HostsBusy { labels, busy, not_ready }
                })
            }
            State::Running { .. } | State::Finished { .. } => None,
        }
    }

    /// The host a job runs on, if it runs.
    pub fn host_of(&self, job: JobId) -> Option<&str> {
        match self.jobs.get(&job)?.state {
            State::Running { host: Some(idx), .. } => Some(&self.host(idx).name),
            _ => None,
        }
    }

    /// Jobs waiting for a host (their other waits are over), per `runs-on` label set.
    pub fn queue_lengths(&self) -> Vec<(Vec<String>, usize)> {
        self.classes
            .job_classes()
            .filter(|c| !c.queue.is_empty())
            .map(|c| (c.display.clone(), c.queue.len()))
            .collect()
    }

    // Jobs.

    fn insert(&mut self, spec: JobSpec, state: State) {
        let class = self.classes.job_class(&spec.labels);
        let run = self.runs.entry(spec.run_id).or_default();
        if run.jobs.is_empty() {
            run.group = spec.run_concurrency;
        }
        run.jobs.push(spec.id);
        run.unfinished += 1;
        let matrix = spec.matrix.map(|m| {
            let member = self.matrices.entry((spec.run_id, m.key.clone())).or_insert_with(|| {
                run.matrices.push(m.key.clone());
                Matrix {
                    max_parallel: m.max_parallel.map(|n| n.max(1)),
                    fail_fast: m.fail_fast,
                    admitted: 0,
                    held: BTreeSet::new(),
                    members: Vec::new(),
                    failed: false,
                }
            });
            member.members.push(spec.id);
            m.key
        });
        let job = Job {
            run_id: spec.run_id,
            job_key: spec.job_key,
            class,
            key: (Reverse(spec.priority), spec.queued_at, spec.id),
            needs: spec.needs,
            condition: Compiled::new(spec.condition),
            concurrency: spec.concurrency,
            matrix,
            outputs: None,
            state,
        };
        self.jobs.insert(spec.id, job);
    }

    /// Every job `id` needs has finished: its `if` decides.
    fn release(&mut self, id: JobId, out: &mut Vec<Decision>) {
        // Not when it ended meanwhile (its run was cancelled as it arrived).
        let Some(job @ Job { state: State::Blocked { .. }, .. }) = self.jobs.get(&id) else { return };
        let chain = self.needs_chain(job);
        let verdict = job.condition.decide(chain, || self.needs_context(job));
        match verdict {
            Verdict::Run => self.admit(id, out),
            Verdict::Skip => {
                out.push(Decision::Skip { job: id });
                self.conclude(id, Conclusion::Skipped, out);
            }
            Verdict::Fail(reason) => {
                out.push(Decision::Fail { job: id, reason });
                self.conclude(id, Conclusion::Failure, out);
            }
        }
    }

    /// A released job takes a place in its matrix, then in its concurrency group.
    fn admit(&mut self, id: JobId, out: &mut Vec<Decision>) {
        let job = &self.jobs[&id];
        let run = self.runs.get_mut(&job.run_id).expect("a job's run lives as long as the job");
        if let Some(reason) = run.cancelled.clone() {
            return self.cancel_job(id, &reason, out);
        }
        if let Some(waiting) = &mut run.waiting {
            waiting.push(id);
            self.jobs.get_mut(&id).expect("known").state = State::RunWaiting;
            return;
        }
        if let Some(key) = &job.matrix {
            let job_key = job.key;
            let m = self
                .matrices
                .get_mut(&(job.run_id, key.clone()))
                .expect("a job's matrix lives as long as its run");
            if m.failed {
                let reason = format!("the matrix `{key}` failed and fail-fast cancels the rest");
                return self.cancel_job(id, &reason, out);
            }
            if m.max_parallel.is_some_and(|max| m.admitted >= max) {
                m.held.insert(job_key);
                self.jobs.get_mut(&id).expect("known").state = State::Held;
                return;
            }
            m.admitted += 1;
        }
        self.join_group(id, out);
    }

    /// An admitted job (it counts in its matrix from here on) joins its concurrency group.
    fn join_group(&mut self, id: JobId, out: &mut Vec<Decision>) {
        self.jobs.get_mut(&id).expect("known").state = State::Pending;
        let Some(concurrency) = self.jobs[&id].concurrency.clone() else {
            return self.make_queued(id);
        };
        let key = concurrency.key();
        let group = self.groups.entry(key.clone()).or_default();
        let Some(holder) = group.holder else {
            group.holder = Some(id);
            return self.make_queued(id);
        };
        let superseded =
            format!("Canceling since a higher priority waiting request for '{}' exists", concurrency.group);
        // The newer of the waiting job and this one waits; the other is cancelled.
        let pending = group.pending.take();
        if let Some(pending) = pending {
            let newer = |j: JobId| self.jobs.get(&j).map(|j| (j.key.1, j.key.2));
            if newer(pending) > newer(id) {
                self.groups.get_mut(&key).expect("just used").pending = Some(pending);
                return self.cancel_job(id, &superseded, out);
            }
        }
        self.groups.get_mut(&key).expect("just used").pending = Some(id);
        if let Some(pending) = pending {
            self.cancel_job(pending, &superseded, out);
        }
        if concurrency.cancel_in_progress {
            self.cancel_job(holder, &superseded, out);
        }
    }

    fn make_queued(&mut self, id: JobId) {
        let job = self.jobs.get_mut(&id).expect("known");
        job.state = State::Queued;
        self.classes.job_mut(job.class).queue.insert(job.key);
    }

    fn cancel_job(&mut self, id: JobId, reason: &str, out: &mut Vec<Decision>) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        match &mut job.state {
            State::Finished { .. } | State::Running { cancelling: true, .. } => {}
            State::Running { cancelling, .. } => {
                *cancelling = true;
                out.push(Decision::Cancel { job: id, reason: reason.to_string() });
            }
            _ => {
                out.push(Decision::Cancel { job: id, reason: reason.to_string() });
                self.conclude(id, Conclusion::Cancelled, out);
            }
        }
    }

    /// Ends a job wherever it was: its place in queues, groups and matrix goes to the
    /// next in line; its dependents are looked at by [`Scheduler::notify_dependents`].
    fn conclude(&mut self, id: JobId, conclusion: Conclusion, out: &mut Vec<Decision>) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let placeholder = State::Finished { conclusion, chain: Chain::from(conclusion) };
        let before = std::mem::replace(&mut job.state, placeholder);
        let admitted = matches!(before, State::Pending | State::Queued | State::Running { .. });
        match before {
            State::Finished { .. } => {
                job.state = before;
                return;
            }
            State::Blocked { .. } => {}
            State::RunWaiting => {
                if let Some(waiting) = self.runs.get_mut(&job.run_id).and_then(|r| r.waiting.as_mut()) {
                    waiting.retain(|&j| j != id);
                }
            }
            State::Held => {
                let key = job.key;
                if let Some(m) =
                    job.matrix.as_ref().and_then(|k| self.matrices.get_mut(&(job.run_id, k.clone())))
                {
                    m.held.remove(&key);
                }
            }
            State::Pending => {}
            State::Queued => {
                self.classes.job_mut(job.class).queue.remove(&job.key);
            }
            State::Running { host, .. } => {
                if let Some(idx) = host {
                    self.release_host(idx);
                }
            }
        }

        let job = &self.jobs[&id];
        let chain = self.needs_chain(job).max(Chain::from(conclusion));
        let (run_id, matrix, concurrency) = (job.run_id, job.matrix.clone(), job.concurrency.clone());
        self.jobs.get_mut(&id).expect("known").state = State::Finished { conclusion, chain };
        let run = self.runs.get_mut(&run_id).expect("a job's run lives as long as the job");
        run.unfinished -= 1;
        if run.unfinished == 0 {
            self.done_runs.push(run_id);
        }
        self.to_notify.push(id);

        if let Some(c) = concurrency {
            self.leave_group(&c.key(), id);
        }
        if let Some(key) = matrix {
            self.leave_matrix(run_id, key, id, conclusion, admitted, out);
        }
    }

    /// A run takes its place in the workflow's concurrency group (once, with its
    /// first job): it holds the group, or waits for it in place of the run waiting
    /// so far (the older of the two is cancelled), cancelling the holder with
    /// `cancel-in-progress`.
    fn join_run_group(&mut self, run_id: i64, out: &mut Vec<Decision>) {
        let Some(run) = self.runs.get_mut(&run_id) else { return };
        if run.joined {
            return;
        }
        run.joined = true;
        let Some(c) = run.group.clone() else { return };
        let key = c.key();
        let group = self.run_groups.entry(key.clone()).or_default();
        let Some(holder) = group.holder else {
            group.holder = Some(run_id);
            return;
        };
        let superseded =
            format!("Canceling since a higher priority waiting request for '{}' exists", c.group);
        let pending = group.pending;
        if pending.is_some_and(|p| p > run_id) {
            return self.cancel_run(run_id, &superseded, out);
        }
        group.pending = Some(run_id);
        self.runs.get_mut(&run_id).expect("looked up above").waiting = Some(Vec::new());
        if let Some(pending) = pending {
            self.cancel_run(pending, &superseded, out);
        }
        if c.cancel_in_progress {
            self.cancel_run(holder, &superseded, out);
        }
    }

    fn leave_run_group(&mut self, key: &str, run_id: i64, out: &mut Vec<Decision>) {
        let Some(group) = self.run_groups.get_mut(key) else { return };
        if group.pending == Some(run_id) {
            group.pending = None;
        }
        let mut next = None;
        if group.holder == Some(run_id) {
            group.holder = group.pending.take();
            next = group.holder;
        }
        if group.holder.is_none() && group.pending.is_none() {
            self.run_groups.remove(key);
        }
        let waiting = next.and_then(|n| self.runs.get_mut(&n)).and_then(|r| r.waiting.take());
        for id in waiting.unwrap_or_default() {
            self.admit(id, out);
        }
    }

    /// Cancels every job of a run, and those it gets later.
    fn cancel_run(&mut self, run_id: i64, reason: &str, out: &mut Vec<Decision>) {
        let Some(run) = self.runs.get_mut(&run_id) else { return };
        if run.cancelled.is_some() {
            return;
        }
        run.cancelled = Some(reason.to_string());
        for id in run.jobs.clone() {
            self.cancel_job(id, reason, out);
        }
    }

    fn leave_group(&mut self, name: &str, id: JobId) {
        let Some(group) = self.groups.get_mut(name) else { return };
        if group.pending == Some(id) {
            group.pending = None;
        }
        let mut next = None;
        if group.holder == Some(id) {
            group.holder = group.pending.take();
            next = group.holder;
        }
        if group.holder.is_none() && group.pending.is_none() {
            self.groups.remove(name);
        }
        if let Some(next) = next {
            self.make_queued(next);
        }
    }

    fn leave_matrix(
        &mut self,
        run_id: i64,
        key: String,
        id: JobId,
        conclusion: Conclusion,
        admitted: bool,
        out: &mut Vec<Decision>,
    ) {
        let Some(m) = self.matrices.get_mut(&(run_id, key.clone())) else { return };
        if admitted {
            m.admitted -= 1;
        }
        if conclusion == Conclusion::Failure && m.fail_fast && !m.failed {
            m.failed = true;
            let siblings: Vec<JobId> = m.members.iter().copied().filter(|&j| j != id).collect();
            let job_key = self.jobs[&id].job_key.clone();
            let reason = format!("fail-fast: a job of the matrix `{job_key}` failed");
            for sibling in siblings {
                self.cancel_job(sibling, &reason, out);
            }
            return;
        }
        if m.failed {
            return;
        }
        if let Some(next) = m.held.pop_first() {
            m.admitted += 1;
            self.join_group(next.2, out);
        }
    }

    /// Looks at the dependents of the jobs that finished, releasing those whose
    /// needs are all done; their own ends are looked at in turn.
    fn notify_dependents(&mut self, out: &mut Vec<Decision>) {
        while let Some(id) = self.to_notify.pop() {
            for dependent in self.dependents.remove(&id).unwrap_or_default() {
                let Some(Job { state: State::Blocked { needs_left }, .. }) = self.jobs.get_mut(&dependent)
                else {
                    continue;
                };
                *needs_left -= 1;
                if *needs_left == 0 {
                    self.release(dependent, out);
                }
            }
        }
    }

    /// The worst outcome up the job's dependency chain (over the needs known).
    fn needs_chain(&self, job: &Job) -> Chain {
        job.needs
            .iter()
            .filter_map(|n| match self.jobs.get(n)?.state {
                State::Finished { chain, .. } => Some(chain),
                _ => None,
            })
            .max()
            .unwrap_or(Chain::Success)
    }

    /// The `needs` context: each needed workflow job's result and outputs.
    fn needs_context(&self, job: &Job) -> crate::workflow::expr::Value {
        let mut by_key: IndexMap<&str, NeedResults<'_>> = IndexMap::new();
        for need in &job.needs {
            let Some(n) = self.jobs.get(need) else { continue };
            let State::Finished { conclusion, .. } = n.state else { continue };
            let entry = by_key.entry(n.job_key.as_str()).or_default();
            entry.0.push(conclusion);
            if let Some(outputs) = &n.outputs {
                entry.1 = Some(outputs);
            }
        }
        crate::workflow::expr::Value::Object(
            by_key
                .into_iter()
                .map(|(k, (results, outputs))| (k.to_string(), need_value(&results, outputs)))
                .collect(),
        )
    }

    /// Forgets the runs whose jobs have all finished; each passes its workflow
    /// concurrency group on.
    fn forget_done_runs(&mut self, out: &mut Vec<Decision>) {
        for run_id in std::mem::take(&mut self.done_runs) {
            if self.runs.get(&run_id).is_none_or(|r| r.unfinished > 0) {
                continue;
            }
            let run = self.runs.remove(&run_id).expect("just looked up");
            if let (Some(c), true) = (&run.group, run.joined) {
                self.leave_run_group(&c.key(), run_id, out);
            }
            for id in run.jobs {
                self.jobs.remove(&id);
                self.dependents.remove(&id);
            }
            for key in run.matrices {
                self.matrices.remove(&(run_id, key));
            }
        }
    }

    // Hosts.

    fn host(&self, idx: HostIdx) -> &Host {
        self.hosts[idx as usize].as_ref().expect("a host index names a host")
    }

    fn host_mut(&mut self, idx: HostIdx) -> &mut Host {
        self.hosts[idx as usize].as_mut().expect("a host index names a host")
    }

    fn detach_host(&mut self, idx: HostIdx) {
        let h = self.host(idx);
        let (class, available, busy) = (h.class, h.available, h.job.is_some());
        self.classes.detach(class, idx, available, busy);
    }

    fn attach_host(&mut self, idx: HostIdx) {
        let h = self.host(idx);
        let (class, available, busy) = (h.class, h.available, h.job.is_some());
        self.classes.attach(class, idx, available, busy);
    }

    fn release_host(&mut self, idx: HostIdx) {
        if self.hosts.get(idx as usize).is_some_and(Option::is_some) {
            self.detach_host(idx);
            self.host_mut(idx).job = None;
            self.attach_host(idx);
        }
    }
}
