//! The scheduler's driver: feeds the placement engine ([`super::scheduler`]) from the
//! store and the inventory, and carries its decisions out — a lease on the host (in
//! the inventory) and the job under way (in the store, with its check run), jobs
//! skipped, failed or cancelled, runs completed. It also keeps each waiting job's
//! check run saying what the job waits for, renews the leases this process holds and
//! recovers the ones whose holder stopped renewing them.
//!
//! One task owns the engine; everything else talks to it through [`Dispatcher`]. The
//! store stays the truth: at start (and after any store error) the engine is rebuilt
//! from it, so a crash between two writes loses nothing — a host leased to a job the
//! store still calls queued gets its lease back at the next start, or has it
//! recovered when it lapses.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::hosts::InventoryError;
use super::report::{steps_table, JobReport};
use super::runner::{self, Finished};
use super::scheduler::{
    Conclusion, Concurrency, Condition, Decision, JobId, JobSpec, MatrixGroup, Scheduler, WaitReason,
};
use super::Farm;
use crate::exec::job::JobOutcome;
use crate::store::{now_ms, JobStatus, SchedulingJob, StoreError};
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::expr::Value;
use crate::workflow::plan::{DEFAULT_IF, SKIPPED_IF};

/// How long a failed pass waits before the engine is rebuilt from the store.
const RETRY: Duration = Duration::from_secs(2);
/// How long [`Dispatcher::cancel`] waits for the driver's answer.
const CANCEL_ANSWER: Duration = Duration::from_secs(30);

/// The handle the rest of the farm uses to reach the driver task.
#[derive(Debug)]
pub struct Dispatcher {
    commands: mpsc::UnboundedSender<Command>,
    /// Taken by [`run_forever`].
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
}

#[derive(Debug)]
enum Command {
    Wake,
    Cancel { job: JobId, answer: oneshot::Sender<Result<(), CancelError>> },
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("job {0} does not exist")]
    NotFound(JobId),
    #[error("job {job} has already completed ({conclusion})")]
    Completed { job: JobId, conclusion: String },
    #[error("the scheduler cannot take the cancellation now: {0}")]
    Unavailable(String),
}

impl Default for Dispatcher {
    fn default() -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        Dispatcher { commands, inbox: Mutex::new(Some(inbox)) }
    }
}

impl Dispatcher {
    /// New runs were stored or approved: the driver takes their jobs in.
    pub fn wake(&self) {
        let _ = self.commands.send(Command::Wake);
    }

    /// Cancels a job, as GitHub does: a queued job concludes `cancelled` at once, a
    /// running one is stopped and then concludes `cancelled`; the jobs that need it
    /// follow their `if`.
    pub async fn cancel(&self, job: JobId) -> Result<(), CancelError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || CancelError::Unavailable("the scheduler is not running".into());
        self.commands.send(Command::Cancel { job, answer }).map_err(|_| stopped())?;
        match tokio::time::timeout(CANCEL_ANSWER, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(CancelError::Unavailable("no answer within 30 s".into())),
        }
    }
}

/// Runs the driver until the farm's dispatcher is dropped.
pub async fn run_forever(farm: Arc<Farm>) {
    let Some(mut inbox) = farm.dispatcher.inbox.lock().expect("dispatcher inbox").take() else {
        tracing::error!("the scheduler's driver is already running");
        return;
    };
    let mut host_events = farm.inventory.subscribe();
    let ttl = farm.config.server.lease_timeout;
    // Renew well before a lease lapses; look for lapsed ones as often.
    let mut sweep =
        tokio::time::interval((ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(60)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut driver = Driver::new(farm.clone());
    let mut healthy = false;
    loop {
        if !healthy {
            match driver.load().await {
                Ok(()) => healthy = true,
                Err(err) => {
                    tracing::error!(%err, "cannot load the scheduler's state from the store; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        if let Err(err) = driver.pass().await {
            tracing::error!(%err, "scheduling pass failed; rebuilding from the store");
            healthy = false;
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let step = tokio::select! {
            Some(finished) = driver.finished.recv() => driver.job_finished(finished).await,
            command = inbox.recv() => match command {
                None => return,
                Some(command) => driver.command(command).await,
            },
            event = host_events.recv() => {
                match event {
                    Ok(event) => event.apply_to(&mut driver.scheduler),
                    // Missed changes: the store has them all.
                    Err(RecvError::Lagged(_)) => healthy = false,
                    Err(RecvError::Closed) => {}
                }
                Ok(())
            }
            _ = sweep.tick() => driver.sweep_leases().await,
        };
        if let Err(err) = step {
            tracing::error!(%err, "scheduling failed; rebuilding from the store");
            healthy = false;
            tokio::time::sleep(RETRY).await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

/// What a job's check run shows when it concludes without running to its end.
struct Ending<'a> {
    conclusion: &'a str,
    title: &'a str,
    summary: String,
}

struct Driver {
    farm: Arc<Farm>,
    scheduler: Scheduler,
    /// Runs whose jobs the engine has.
    runs: HashSet<i64>,
    /// The run of each job the engine has.
    run_of: HashMap<JobId, i64>,
    /// Jobs waiting (for a host, their needs, a group, …), with what their check run
    /// last said they wait for.
    waiting: BTreeSet<JobId>,
    told: HashMap<JobId, String>,
    /// Leases this process holds, renewed by the sweep: job → host.
    held: HashMap<JobId, String>,
    /// The `runs-on` of each job the engine has, for its check run.
    labels_of: HashMap<JobId, Vec<String>>,
    /// Why running jobs are being stopped, for their check runs.
    stopping: HashMap<JobId, String>,
    /// The infrastructure failures each job met before, for its final check run.
    retried: HashMap<JobId, Vec<String>>,
    /// Job runners report their end here.
    finished: mpsc::UnboundedReceiver<Finished>,
    report_finished: mpsc::UnboundedSender<Finished>,
}

impl Driver {
    fn new(farm: Arc<Farm>) -> Driver {
        let (report_finished, finished) = mpsc::unbounded_channel();
        Driver {
            stopping: HashMap::new(),
            retried: HashMap::new(),
            finished,
            report_finished,
            farm,
            scheduler: Scheduler::new(),
            runs: HashSet::new(),
            run_of: HashMap::new(),
            waiting: BTreeSet::new(),
            told: HashMap::new(),
            held: HashMap::new(),
            labels_of: HashMap::new(),
        }
    }

    /// Rebuilds the engine from the inventory and the store.
    async fn load(&mut self) -> Result<(), DriveError> {
        // Everything but the leases held and the runners' way back.
        self.scheduler = Scheduler::new();
        self.runs.clear();
        self.run_of.clear();
        self.waiting.clear();
        self.told.clear();
        self.labels_of.clear();
        for host in self.farm.inventory.list().await? {
            self.scheduler.add_host(host.placement_spec());
            self.scheduler.set_host_available(&host.name, host.is_available());
            // A lease the store has and the job does not know yet (a crash between
            // the two writes): the job is under way on that host.
            if let Some(job) = host.job_id {
                let mut tx = self.farm.store.begin().await?;
                if tx.start_queued_job(job, &host.name).await? {
                    tracing::info!(job, host = %host.name, "restored a lease the job had not recorded");
                }
                tx.commit().await?;
            }
        }
        let mut runs = self.farm.store.runs_with_jobs(JobStatus::InProgress).await?;
        runs.extend(self.farm.store.runs_with_jobs(JobStatus::Queued).await?);
        runs.sort_unstable();
        runs.dedup();
        for run in runs {
            self.take_run(run).await?;
        }
        // Leases held before a reload stay held only if the engine still has them.
        let running: HashSet<JobId> = self.run_of.keys().copied().collect();
        self.held.retain(|job, _| running.contains(job));
        tracing::info!(runs = self.runs.len(), waiting = self.waiting.len(), "scheduler loaded");
        Ok(())
    }

    /// Takes in the jobs of runs the engine does not have yet.
    async fn take_new_runs(&mut self) -> Result<(), DriveError> {
        for run in self.farm.store.runs_with_jobs(JobStatus::Queued).await? {
            if !self.runs.contains(&run) {
                self.take_run(run).await?;
            }
        }
        Ok(())
    }

    /// Gives the engine every job of a run, as the store has them.
    async fn take_run(&mut self, run_id: i64) -> Result<(), DriveError> {
        let jobs = self.farm.store.scheduling_jobs(run_id).await?;
        if jobs.iter().any(|j| j.status == JobStatus::Waiting) {
            return Ok(()); // not approved yet
        }
        let contexts = if jobs.iter().any(|j| !is_trivial(&j.condition)) {
            self.condition_contexts(run_id).await?
        } else {
            Arc::default()
        };
        let mut ids_of: HashMap<&str, Vec<JobId>> = HashMap::new();
        for job in &jobs {
            ids_of.entry(job.job_key.as_str()).or_default().push(job.id);
        }
        self.runs.insert(run_id);
        let mut decisions = Vec::new();
        for job in &jobs {
            let spec = job_spec(job, &ids_of, &contexts);
            self.run_of.insert(job.id, run_id);
            self.labels_of.insert(job.id, job.runs_on.clone());
            match job.status {
                JobStatus::Completed => {
                    let conclusion = conclusion_of(job.conclusion.as_deref());
                    decisions.extend(self.scheduler.completed(spec, conclusion));
                }
                JobStatus::InProgress => match &job.host {
                    Some(host) => self.scheduler.leased(spec, host),
                    None => decisions.extend(self.scheduler.enqueue(spec)),
                },
                JobStatus::Queued | JobStatus::Waiting => {
                    if let Some(reason) = &job.waiting_reason {
                        self.told.insert(job.id, reason.clone());
                    }
                    self.waiting.insert(job.id);
                    decisions.extend(self.scheduler.enqueue(spec));
                }
            }
        }
        self.apply_all(decisions).await
    }

    /// The `github` and `inputs` contexts a run's job conditions read.
    async fn condition_contexts(&self, run_id: i64) -> Result<Arc<IndexMap<String, Value>>, DriveError> {
        let Some(run) = self.farm.store.run(run_id).await? else { return Ok(Arc::default()) };
        let payload = match &run.delivery_id {
            Some(id) => self.farm.store.delivery(id).await?.and_then(|d| serde_json::from_str(&d.body).ok()),
            None => None,
        };
        let event = Event::new(run.event.clone(), payload.unwrap_or_else(|| serde_json::json!({})));
        let info = RunInfo {
            run_id: run.id.to_string(),
            run_number: run.run_number.to_string(),
            run_attempt: run.run_attempt.to_string(),
            sha: Some(run.head_sha.clone()),
            ..RunInfo::default()
        };
        let mut contexts = IndexMap::new();
        contexts.insert("github".to_string(), event.github_context(&run.workflow, &info));
        let inputs =
            event.payload.get("inputs").map(Value::from_json).unwrap_or(Value::Object(IndexMap::new()));
        contexts.insert("inputs".to_string(), inputs);
        Ok(Arc::new(contexts))
    }

    async fn command(&mut self, command: Command) -> Result<(), DriveError> {
        match command {
            Command::Wake => self.take_new_runs().await,
            Command::Cancel { job, answer } => match self.cancel(job).await {
                Ok(answered) => {
                    let _ = answer.send(answered);
                    Ok(())
                }
                Err(err) => {
                    let _ = answer.send(Err(CancelError::Unavailable(err.to_string())));
                    Err(err)
                }
            },
        }
    }

    async fn cancel(&mut self, job: JobId) -> Result<Result<(), CancelError>, DriveError> {
        if !self.run_of.contains_key(&job) {
            // A run the engine does not have: waiting for approval, or ended.
            return match self.farm.store.job_state(job).await? {
                None => Ok(Err(CancelError::NotFound(job))),
                Some((JobStatus::Completed, conclusion)) => {
                    Ok(Err(CancelError::Completed { job, conclusion: conclusion.unwrap_or_default() }))
                }
                Some(_) => {
                    let run = self.farm.store.job_run(job).await?;
                    self.conclude(job, run, &cancelled("The job was cancelled.".into())).await?;
                    Ok(Ok(()))
                }
            };
        }
        if let Some((JobStatus::Completed, conclusion)) = self.farm.store.job_state(job).await? {
            return Ok(Err(CancelError::Completed { job, conclusion: conclusion.unwrap_or_default() }));
        }
        let decisions = self.scheduler.cancel(job);
        self.apply_all(decisions).await?;
        Ok(Ok(()))
    }

    /// Leases every free host it can, then tells waiting jobs' check runs why they wait.
    async fn pass(&mut self) -> Result<(), DriveError> {
        let decisions = self.scheduler.place();
        self.apply_all(decisions).await?;
        self.tell_waiting().await
    }

    async fn apply_all(&mut self, decisions: Vec<Decision>) -> Result<(), DriveError> {
        let mut queue: std::collections::VecDeque<Decision> = decisions.into();
        while let Some(decision) = queue.pop_front() {
            queue.extend(self.apply(decision).await?);
        }
        Ok(())
    }

    /// Carries out one decision; returns what the engine decided in consequence.
    async fn apply(&mut self, decision: Decision) -> Result<Vec<Decision>, DriveError> {
        match decision {
            Decision::Lease { job, host } => {
                let span = tracing::info_span!("lease", job, %host);
                self.lease(job, &host).instrument(span).await
            }
            Decision::Skip { job } => {
                let ending = Ending {
                    conclusion: "skipped",
                    title: "Skipped",
                    summary: "The job's `if` condition was false, or a job it needs did not succeed.".into(),
                };
                self.conclude(job, self.run_of.get(&job).copied(), &ending).await?;
                Ok(Vec::new())
            }
            Decision::Fail { job, reason } => {
                let ending = Ending { conclusion: "failure", title: "Failed before it ran", summary: reason };
                self.conclude(job, self.run_of.get(&job).copied(), &ending).await?;
                Ok(Vec::new())
            }
            Decision::Cancel { job, reason } => {
                let mut next = Vec::new();
                if self.farm.running.cancel(job) {
                    // Its runner stops it, then reports the end (`job_finished`).
                    tracing::info!(job, %reason, "stopping a running job");
                    self.stopping.insert(job, reason);
                    return Ok(next);
                }
                if let Some(host) = self.scheduler.host_of(job).map(str::to_owned) {
                    // Leased but not run by this process: nothing to stop.
                    next = self.scheduler.finish(job, Conclusion::Cancelled);
                    self.held.remove(&job);
                    self.release(job, &host).await?;
                }
                self.conclude(job, self.run_of.get(&job).copied(), &cancelled(reason)).await?;
                Ok(next)
            }
        }
    }

    async fn lease(&mut self, job: JobId, host: &str) -> Result<Vec<Decision>, DriveError> {
        let expires = now_ms() + self.ttl_ms();
        match self.farm.inventory.lease(host, job, expires).await {
            Ok(_) => {}
            Err(err @ (InventoryError::Refused { .. } | InventoryError::NotFound(_))) => {
                // The host changed under the engine (locked, removed): the job waits on.
                tracing::info!(%err, "host not leasable; the job waits for another");
                self.scheduler.set_host_available(host, false);
                return Ok(self.scheduler.requeue(job));
            }
            Err(err) => return Err(err.into()),
        }
        let mut tx = self.farm.store.begin().await?;
        tx.start_job(job, host).await?;
        let (title, summary) = (format!("Running on {host}"), format!("Host `{host}` has the job."));
        tx.show_on_job_check(job, "in_progress", None, &title, &summary).await?;
        tx.commit().await?;
        tracing::info!("job leased");
        self.farm.outbox_waiting.notify_one();
        self.forget_waiting(job);
        self.held.insert(job, host.to_owned());
        runner::spawn(self.farm.clone(), job, host.to_owned(), self.report_finished.clone());
        Ok(Vec::new())
    }

    /// A job's runner ended: the outcome recorded and shown on the check run, the host
    /// released — or, after an infrastructure failure, sent to repair and the job
    /// retried on another host (up to `server.infra_retries` times).
    async fn job_finished(&mut self, finished: Finished) -> Result<(), DriveError> {
        let Finished { job, host, outcome } = finished;
        let span = tracing::info_span!("job finished", job, %host);
        let _entered = span.enter();
        self.held.remove(&job);
        if outcome.infra.is_some() {
            self.stopping.remove(&job);
        }
        if let Some(failure) = &outcome.infra {
            return self.infra_failure(job, &host, &failure.reason, &outcome).await;
        }
        let run = self.run_of.get(&job).copied();
        let artifacts_url = run.map(|run| {
            let base = self.farm.config.server.public_url.trim_end_matches('/');
            format!("{base}/api/v1/runs/{run}/artifacts")
        });
        let mut report = JobReport::new(&host, &outcome, artifacts_url.as_deref());
        if let Some(failures) = self.retried.remove(&job) {
            let lines: Vec<String> = failures.iter().map(|f| format!("- {f}")).collect();
            report.summary = format!(
                "{}\n\nRetried after infrastructure failures (not test failures):\n{}\n",
                report.summary.trim_end(),
                lines.join("\n")
            );
        }
        if let Some(reason) =
            self.stopping.remove(&job).filter(|_| outcome.conclusion == Conclusion::Cancelled)
        {
            report.summary = format!("{}\n\n{}", cancelled(reason).summary, report.summary);
        }
        let mut tx = self.farm.store.begin().await?;
        let outputs: serde_json::Map<String, serde_json::Value> =
            outcome.outputs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        tx.set_job_outputs(job, &outputs).await?;
        if tx.complete_job(job, outcome.conclusion.as_str()).await? {
            report.show(&mut tx, job).await?;
        }
        let run_done = match run {
            Some(run) => tx.complete_run_if_done(run).await?.map(|c| (run, c)),
            None => None,
        };
        tx.commit().await?;
        self.farm.outbox_waiting.notify_one();
        tracing::info!(conclusion = outcome.conclusion.as_str(), "job completed");
        match &outcome.host_unfit {
            Some(reason) => self.release_to_repair(job, &host, reason).await?,
            None => self.release(job, &host).await?,
        }
        self.scheduler.set_outputs(job, outcome.outputs.clone());
        let decisions = self.scheduler.finish(job, outcome.conclusion);
        if let Some((run, conclusion)) = run_done {
            self.run_completed(run, &conclusion);
        }
        self.apply_all(decisions).await
    }

    /// The host failed the job: it goes to repair; the job is retried elsewhere while
    /// retries are left, else it fails saying why.
    async fn infra_failure(
        &mut self,
        job: JobId,
        host: &str,
        reason: &str,
        outcome: &JobOutcome,
    ) -> Result<(), DriveError> {
        tracing::warn!(%reason, "infrastructure failure");
        match self.farm.inventory.infra_failure(host, reason).await {
            Ok(_) | Err(InventoryError::NotFound(_)) => {}
            Err(err @ InventoryError::Refused { .. }) => {
                tracing::warn!(%err, "cannot send the host to repair")
            }
            Err(err) => return Err(err.into()),
        }
        let retries = i64::from(self.farm.config.server.infra_retries);
        let mut tx = self.farm.store.begin().await?;
        let attempts = tx.count_infra_attempt(job).await?;
        self.retried.entry(job).or_default().push(format!("host `{host}`: {reason}"));
        if attempts <= retries {
            tx.requeue_job(job).await?;
            tx.clear_steps(job).await?;
            let summary = format!(
                "Host `{host}` failed the job: {reason}\n\nThis is an infrastructure failure, not a test failure: \
                 the job is retried on another host (retry {attempts} of {retries}) and `{host}` goes to repair."
            );
            tx.show_on_job_check(job, "queued", None, "Retrying on another host", &summary).await?;
            tx.commit().await?;
            self.farm.outbox_waiting.notify_one();
            let decisions = self.scheduler.requeue(job);
            self.waiting.insert(job);
            self.told.remove(&job);
            return self.apply_all(decisions).await;
        }
        tx.commit().await?;
        let failures = self.retried.remove(&job).unwrap_or_default();
        let summary = format!(
            "This is an infrastructure failure, not a test failure: the job was tried on {attempts} host(s) \
             and gave up.\n\n{}",
            failures.iter().map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
        );
        let mut ending = Ending { conclusion: "failure", title: "Infrastructure failure", summary };
        if !outcome.steps.is_empty() {
            ending.summary.push_str(&format!("\n\n{}", steps_table(outcome)));
        }
        self.conclude(job, self.run_of.get(&job).copied(), &ending).await?;
        let decisions = self.scheduler.finish(job, Conclusion::Failure);
        self.apply_all(decisions).await
    }

    /// Ends the lease of a host the job left unfit: to repair, without counting a failure.
    async fn release_to_repair(&mut self, job: JobId, host: &str, reason: &str) -> Result<(), DriveError> {
        tracing::info!(%reason, "the host goes to repair after its job");
        match self.farm.inventory.release_to_repair(host, job, reason).await {
            Ok(_) | Err(InventoryError::NotFound(_) | InventoryError::NotLeasedTo { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn release(&mut self, job: JobId, host: &str) -> Result<(), DriveError> {
        match self.farm.inventory.release(host, job).await {
            Ok(_) | Err(InventoryError::NotFound(_) | InventoryError::NotLeasedTo { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Records that a job ended before running to its end, and its run if that was
    /// the last of it.
    async fn conclude(
        &mut self,
        job: JobId,
        run: Option<i64>,
        ending: &Ending<'_>,
    ) -> Result<(), DriveError> {
        let mut tx = self.farm.store.begin().await?;
        if tx.complete_job(job, ending.conclusion).await? {
            tx.show_on_job_check(job, "completed", Some(ending.conclusion), ending.title, &ending.summary)
                .await?;
        }
        let run_done = match run {
            Some(run) => tx.complete_run_if_done(run).await?.map(|c| (run, c)),
            None => None,
        };
        tx.commit().await?;
        tracing::info!(job, conclusion = ending.conclusion, "job concluded");
        self.farm.outbox_waiting.notify_one();
        self.forget_waiting(job);
        if let Some((run, conclusion)) = run_done {
            self.run_completed(run, &conclusion);
        }
        Ok(())
    }

    /// Forgets a completed run's jobs.
    fn run_completed(&mut self, run: i64, conclusion: &str) {
        tracing::info!(run, %conclusion, "run completed");
        self.runs.remove(&run);
        let labels_of = &mut self.labels_of;
        self.run_of.retain(|job, r| {
            let keep = *r != run;
            if !keep {
                labels_of.remove(job);
            }
            keep
        });
    }

    /// Tells each waiting job's check run what it waits for, when that changed.
    async fn tell_waiting(&mut self) -> Result<(), DriveError> {
        let mut changes = Vec::new();
        for &job in &self.waiting {
            let Some(reason) = self.scheduler.waiting_reason(job) else { continue };
            if matches!(reason, WaitReason::HostFree { .. }) {
                continue; // the next placement takes it
            }
            let text = reason.to_string();
            if self.told.get(&job) != Some(&text) {
                changes.push((job, text));
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.farm.store.begin().await?;
        for (job, text) in &changes {
            tx.set_waiting_reason(*job, text).await?;
            if let Some(check) = tx.job_check(*job).await? {
                let mut state = check.state;
                if state.status != "queued" {
                    continue;
                }
                let labels = self.labels_of.get(job).map_or(&[][..], Vec::as_slice);
                state.summary = waiting_summary(text, labels);
                tx.queue_check_run_state(check.check_run_id, &state).await?;
            }
        }
        tx.commit().await?;
        self.farm.outbox_waiting.notify_one();
        self.told.extend(changes);
        Ok(())
    }

    /// Renews the leases this process holds, and recovers the lapsed ones: their jobs
    /// are retried elsewhere, their hosts go to repair.
    async fn sweep_leases(&mut self) -> Result<(), DriveError> {
        let expires = now_ms() + self.ttl_ms();
        for (job, host) in self.held.clone() {
            if let Err(err) = self.farm.inventory.renew_lease(&host, job, expires).await {
                tracing::warn!(job, %host, %err, "cannot renew a lease; it is no longer this farm's");
                self.held.remove(&job);
            }
        }
        let now = now_ms();
        for host in self.farm.inventory.expired_leases(now).await? {
            let Some(job) = host.job_id else { continue };
            if self.held.contains_key(&job) {
                continue;
            }
            let span = tracing::warn_span!("lapsed lease", job, host = %host.name);
            let _entered = span.enter();
            match self.farm.inventory.recover_lease(&host.name, job, now).await {
                Ok(_) => {}
                Err(InventoryError::NotLeasedTo { .. } | InventoryError::NotFound(_)) => continue,
                Err(err) => return Err(err.into()),
            }
            tracing::warn!("the lease lapsed: the job is retried on another host");
            let mut tx = self.farm.store.begin().await?;
            tx.requeue_job(job).await?;
            let summary = format!(
                "Host `{}` stopped answering for the job (its lease lapsed): an infrastructure \
                 failure, not a test failure. The job is retried on another host.",
                host.name
            );
            tx.show_on_job_check(job, "queued", None, "Queued again", &summary).await?;
            tx.commit().await?;
            self.farm.outbox_waiting.notify_one();
            if self.run_of.contains_key(&job) {
                let decisions = self.scheduler.requeue(job);
                self.waiting.insert(job);
                self.told.remove(&job);
                self.apply_all(decisions).await?;
            } else {
                self.take_new_runs().await?;
            }
        }
        Ok(())
    }

    fn forget_waiting(&mut self, job: JobId) {
        self.waiting.remove(&job);
        self.told.remove(&job);
    }

    fn ttl_ms(&self) -> i64 {
        self.farm.config.server.lease_timeout.as_millis() as i64
    }
}

/// The queued check run's summary while a job waits.
fn waiting_summary(reason: &str, labels: &[String]) -> String {
    format!("{}.\n\nRuns on a host with labels [{}].", capitalised(reason), labels.join(", "))
}

fn cancelled(reason: String) -> Ending<'static> {
    let summary = if reason.ends_with('.') { reason } else { format!("{reason}.") };
    Ending { conclusion: "cancelled", title: "Cancelled", summary: capitalised(&summary) }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// Conditions the engine decides without contexts.
fn is_trivial(condition: &str) -> bool {
    matches!(condition.trim(), DEFAULT_IF | SKIPPED_IF | "")
}

fn conclusion_of(text: Option<&str>) -> Conclusion {
    match text {
        Some("success") => Conclusion::Success,
        Some("skipped") => Conclusion::Skipped,
        Some("cancelled") => Conclusion::Cancelled,
        _ => Conclusion::Failure,
    }
}

fn job_spec(
    job: &SchedulingJob,
    ids_of: &HashMap<&str, Vec<JobId>>,
    contexts: &Arc<IndexMap<String, Value>>,
) -> JobSpec {
    JobSpec {
        id: job.id,
        run_id: job.run_id,
        job_key: job.job_key.clone(),
        labels: job.runs_on.clone(),
        priority: job.priority,
        queued_at: job.created_at,
        needs: job
            .needs
            .iter()
            .flat_map(|key| ids_of.get(key.as_str()).into_iter().flatten().copied())
            .collect(),
        condition: Condition::new(job.condition.clone(), contexts.clone()),
        // GitHub's concurrency groups are per repository.
        concurrency: job.concurrency.as_ref().map(|group| Concurrency {
            group: format!("{}:{group}", job.repo),
            cancel_in_progress: job.cancel_in_progress,
        }),
        run_concurrency: job.run_concurrency.as_ref().map(|(group, cancel_in_progress)| Concurrency {
            group: format!("{}:{group}", job.repo),
            cancel_in_progress: *cancel_in_progress,
        }),
        matrix: job.strategy.map(|(fail_fast, max_parallel)| MatrixGroup {
            key: job.job_key.clone(),
            max_parallel,
            fail_fast,
        }),
    }
}
