//! Runs one job's steps on its host, as GitHub's runner does: each step's `if` with the
//! status functions, its environment (workflow → job → step, plus `GITHUB_*`/`RUNNER_*`
//! and what earlier steps wrote to `GITHUB_ENV`/`GITHUB_PATH`), a `run:` script in the
//! step's shell, outputs through `GITHUB_OUTPUT`, timeouts and cancellation, and the
//! built-in actions. The caller gets the job's outcome and, while it runs, its log
//! lines and step states through a channel.
//!
//! Failures of the host (SSH lost, unreachable, disk full) end the job with
//! [`JobOutcome::infra`] set: not a test failure, the caller retries it elsewhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::actions::{self, BuiltIn};
use super::commands::{Annotation, AnnotationLevel};
use super::composite::{self, ActionScope};
use super::envfiles;
use super::host::{process_command, HostSession, HostTarget, InfraFailure, ProcessEnd};
use super::job_processes::{JobProcesses, TRACKING_VARIABLE};
use super::mask::Masker;
use super::output::OutputFilter;
use super::shell::{shell_quote, Shell};
use super::ssh::{ExecEvent, SshError};
use crate::config::ArtifactLimit;
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::expr::{
    Allowed, EvalContext, Expr, JobStatus, Template, Value, HASH_FILES, STATUS_FUNCTIONS,
};
use crate::workflow::model::{Env, Job, RunDefaults, Step, Workflow};

/// GitHub's default job timeout: 360 minutes.
const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(360 * 60);
/// How long ending the job's processes on its host may take.
const END_PROCESSES_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a job needs besides its host.
#[derive(Clone)]
pub struct JobDefinition {
    pub workflow: Arc<Workflow>,
    /// The job's id under `jobs:`.
    pub job_key: String,
    /// `github`, `inputs`, `vars`, `secrets`, `matrix`, `strategy` and `needs`; the runner
    /// adds `env`, `job`, `steps` and `runner`.
    pub contexts: IndexMap<String, Value>,
    /// Values masked from the first line on (secrets, tokens).
    pub masked: Vec<String>,
    /// The event's payload, for `$GITHUB_EVENT_PATH`.
    pub event_payload: String,
    /// Where `actions/checkout` clones from.
    pub checkout: Option<CheckoutSource>,
    /// Where `actions/upload-artifact` puts files, on the controller.
    pub artifacts_dir: Option<PathBuf>,
    /// How much `actions/upload-artifact` may put there.
    pub artifact_limit: ArtifactLimit,
    /// How `metalfarm/provision` reinstalls the host; none outside a farm with a
    /// provisioner (`[cobbler]`).
    pub provisioning: Option<crate::provision::HostProvisioning>,
}

impl JobDefinition {
    /// Job `job_key` of `workflow` for `event`: the `github` and `inputs` contexts, and
    /// empty `vars`, `secrets`, `needs` and `matrix` for the caller to fill in.
    pub fn new(
        workflow: Arc<Workflow>,
        job_key: &str,
        event: &Event,
        info: &RunInfo,
        path: &str,
    ) -> JobDefinition {
        let mut github = event.github_context(path, info);
        if let (Value::Object(map), Some(name)) = (&mut github, &workflow.name) {
            map.insert("workflow".into(), Value::String(name.value.clone()));
        }
        let inputs =
            event.payload.get("inputs").map(Value::from_json).unwrap_or(Value::Object(IndexMap::new()));
        let empty = || Value::Object(IndexMap::new());
        let contexts = IndexMap::from([
            ("github".to_owned(), github),
            ("inputs".to_owned(), inputs),
            ("vars".to_owned(), empty()),
            ("secrets".to_owned(), empty()),
            ("needs".to_owned(), empty()),
            ("matrix".to_owned(), Value::Null),
        ]);
        let clone_url =
            event.payload.pointer("/repository/clone_url").and_then(|u| u.as_str()).map(str::to_owned);
        JobDefinition {
            workflow,
            job_key: job_key.to_owned(),
            contexts,
            masked: Vec::new(),
            event_payload: event.payload.to_string(),
            checkout: clone_url.map(|clone_url| CheckoutSource {
                clone_url,
                token: None,
                sha: event.sha().map(str::to_owned).or_else(|| info.sha.clone()).unwrap_or_default(),
                git_ref: event.git_ref().map(|r| r.full).unwrap_or_default(),
            }),
            artifacts_dir: None,
            artifact_limit: ArtifactLimit::default(),
            provisioning: None,
        }
    }

    /// The `secrets` context; every value is masked.
    pub fn set_secrets(&mut self, secrets: IndexMap<String, String>) {
        self.masked.extend(secrets.values().cloned());
        let values = secrets.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        self.contexts.insert("secrets".to_owned(), Value::Object(values));
    }
}

/// The triggering repository, for `actions/checkout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutSource {
    pub clone_url: String,
    /// A token for a private repository (sent as an HTTP header, masked).
    pub token: Option<String>,
    pub sha: String,
    pub git_ref: String,
}

/// How a job or step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }
}

/// What the job's observer hears while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    /// Log lines, masked, without timestamps.
    Log(Vec<String>),
    StepStarted {
        number: i64,
        name: String,
    },
    StepCompleted {
        number: i64,
        name: String,
        outcome: Conclusion,
        conclusion: Conclusion,
    },
    /// The host showed this key at first contact (trust on first use): pin it.
    HostKeyLearned(String),
    /// `metalfarm/provision` reinstalled the host, which now shows this key: pin it
    /// in place of the old one. `note` says how the reinstall went, for the host's history.
    HostReinstalled {
        host_key: String,
        note: String,
    },
}

/// One step as it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub number: i64,
    pub name: String,
    pub outcome: Conclusion,
    pub conclusion: Conclusion,
    pub duration: Duration,
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    pub conclusion: Conclusion,
    pub steps: Vec<StepReport>,
    /// The job's `outputs`, evaluated at its end.
    pub outputs: IndexMap<String, String>,
    pub annotations: Vec<Annotation>,
    /// What the steps wrote to `$GITHUB_STEP_SUMMARY` (markdown), masked.
    pub summary: String,
    /// Set when the host failed the job: the job did not get to run to its end.
    pub infra: Option<InfraFailure>,
    /// The key the host showed, for pinning.
    pub host_key: Option<String>,
    /// Names of the artifacts the job uploaded.
    pub artifacts: Vec<String>,
    /// Set when the job ended normally but left its host unfit for the next one (a
    /// reinstall cut short by a cancellation or the job's timeout): the host must be
    /// repaired first. Not the host's fault: no failure is counted.
    pub host_unfit: Option<String>,
    /// Set when the farm itself failed the job (it could not store an artifact: its
    /// own disk full): neither the job's fault nor the host's, which stays in service.
    pub farm_failure: Option<String>,
}

/// Runs the job `definition` describes on `target`; never fails: how it ended is in
/// the outcome.
pub async fn run_job(
    definition: &JobDefinition,
    target: &HostTarget,
    events: mpsc::Sender<RunnerEvent>,
    cancel: CancellationToken,
) -> JobOutcome {
    let Some(job) = definition.workflow.jobs.values().find(|j| j.id.value.as_str() == definition.job_key)
    else {
        return failed_before_start(format!("the workflow has no job `{}`", definition.job_key));
    };
    let mut masker = Masker::default();
    for value in &definition.masked {
        masker.add(value);
    }
    let mut run = JobRun {
        definition,
        job,
        events,
        cancel,
        filter: OutputFilter::new(masker),
        host: None,
        dirs: Dirs::default(),
        env: IndexMap::new(),
        path: Vec::new(),
        steps: IndexMap::new(),
        status: JobStatus::Success,
        timed_out: false,
        reports: Vec::new(),
        summary: String::new(),
        artifacts: Vec::new(),
        action: None,
        host_unfit: None,
        farm_failure: None,
        processes: JobProcesses::new(),
    };
    let result = run.run(target).await;
    run.finish(result).await
}

fn failed_before_start(reason: String) -> JobOutcome {
    JobOutcome {
        conclusion: Conclusion::Failure,
        steps: Vec::new(),
        outputs: IndexMap::new(),
        annotations: vec![error_annotation(&reason)],
        summary: String::new(),
        infra: None,
        host_key: None,
        artifacts: Vec::new(),
        host_unfit: None,
        farm_failure: None,
    }
}

pub(super) fn error_annotation(message: &str) -> Annotation {
    Annotation::new(AnnotationLevel::Error, message)
}

/// The runner's directories on the host (absolute).
#[derive(Debug, Clone, Default)]
pub struct Dirs {
    pub root: String,
    pub temp: String,
    pub workspace: String,
    pub tool_cache: String,
    pub event_path: String,
}

pub(super) struct JobRun<'a> {
    pub(super) definition: &'a JobDefinition,
    job: &'a Job,
    events: mpsc::Sender<RunnerEvent>,
    pub(super) cancel: CancellationToken,
    pub(super) filter: OutputFilter,
    pub(super) host: Option<HostSession>,
    pub(super) dirs: Dirs,
    /// Workflow and job `env`, then what steps added through `GITHUB_ENV`.
    env: IndexMap<String, String>,
    /// `GITHUB_PATH` entries, newest first.
    path: Vec<String>,
    /// `steps.<id>`: outputs, outcome, conclusion.
    pub(super) steps: IndexMap<String, Value>,
    pub(super) status: JobStatus,
    timed_out: bool,
    reports: Vec<StepReport>,
    summary: String,
    /// Names of the artifacts uploaded.
    pub(super) artifacts: Vec<String>,
    /// Set while a composite action's steps run (composite.rs).
    pub(super) action: Option<ActionScope>,
    /// Why the host can take no more steps (a reinstall cut short): the steps left are
    /// skipped and the host goes to repair after the job.
    pub(super) host_unfit: Option<String>,
    /// The first failure of the farm's own (see [`JobOutcome::farm_failure`]).
    farm_failure: Option<String>,
    /// What the job started on its host, ended with the job.
    processes: JobProcesses,
}

/// A step ended: how, and what it set.
pub(super) struct StepEnd {
    pub(super) outcome: Conclusion,
    pub(super) outputs: IndexMap<String, String>,
}

impl<'a> JobRun<'a> {
    async fn run(&mut self, target: &HostTarget) -> Result<(), InfraFailure> {
        let started = Instant::now();
        self.log(&format!("Runner host: {} ({}:{})", target.name, target.address, target.port));
        let host = HostSession::open(target).await?;
        if matches!(target.host_key, super::ssh::HostKeyPolicy::TrustOnFirstUse) {
            let _ = self.events.send(RunnerEvent::HostKeyLearned(host.host_key.clone())).await;
        }
        self.log(&format!("Boot id: {}", host.boot_id));
        self.dirs = dirs_under(&host.home, &self.repo_name());
        self.host = Some(host);
        self.prepare_host().await?;
        let timeout = self.job_timeout();
        let deadline = started + timeout;
        match self.job_env() {
            Ok(env) => self.env = env,
            // A bad expression in `env` fails the job, as on GitHub; no step runs.
            Err(message) => {
                self.filter
                    .annotate(error_annotation(&format!("cannot evaluate the job's `env`: {message}")));
                self.status = JobStatus::Failure;
            }
        }
        self.flush().await;

        for (index, step) in self.job.steps.iter().enumerate() {
            let number = index as i64 + 1;
            if self.cancel.is_cancelled() && self.status != JobStatus::Cancelled {
                self.status = JobStatus::Cancelled;
            }
            if Instant::now() >= deadline && !self.timed_out {
                self.job_timed_out(timeout);
            }
            let name = self.step_name(step, number);
            if let Some(why) = &self.host_unfit {
                let line = format!("Skipped \"{name}\": {why}");
                self.log(&line);
                self.skip_step(step, number, &name).await;
                continue;
            }
            match self.step_condition(step) {
                Ok(true) => {}
                Ok(false) => {
                    self.skip_step(step, number, &name).await;
                    continue;
                }
                Err(message) => {
                    self.filter.annotate(error_annotation(&message));
                    self.status = JobStatus::Failure;
                    self.skip_step(step, number, &name).await;
                    continue;
                }
            }
            let _ = self.events.send(RunnerEvent::StepStarted { number, name: name.clone() }).await;
            let step_started = Instant::now();
            self.log(&format!("##[group]{name}"));
            let end = match self.run_step(step, number, deadline).await {
                Ok(end) => end,
                Err(StepError::Infra(failure)) => {
                    // The job ends here; the step's state is final all the same.
                    let (failed, duration) = (Conclusion::Failure, step_started.elapsed());
                    self.step_completed(number, name, failed, failed, duration).await;
                    return Err(failure);
                }
                Err(StepError::Failed(message)) => {
                    self.filter.annotate(error_annotation(&message));
                    StepEnd { outcome: Conclusion::Failure, outputs: IndexMap::new() }
                }
                Err(StepError::Farm(message)) => {
                    tracing::error!(%message, "the farm failed the job");
                    self.filter.annotate(error_annotation(&message));
                    self.farm_failure.get_or_insert(message);
                    StepEnd { outcome: Conclusion::Failure, outputs: IndexMap::new() }
                }
            };
            if !self.timed_out && Instant::now() >= deadline {
                self.job_timed_out(timeout);
            }
            let continue_on_error = end.outcome == Conclusion::Failure && self.step_continues_on_error(step);
            let conclusion = if continue_on_error { Conclusion::Success } else { end.outcome };
            match conclusion {
                Conclusion::Failure if self.status == JobStatus::Success => self.status = JobStatus::Failure,
                Conclusion::Cancelled => self.status = JobStatus::Cancelled,
                _ => {}
            }
            let outputs: IndexMap<String, Value> =
                end.outputs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let record = Value::Object(IndexMap::from([
                ("outputs".to_owned(), Value::Object(outputs)),
                ("outcome".to_owned(), Value::String(end.outcome.as_str().into())),
                ("conclusion".to_owned(), Value::String(conclusion.as_str().into())),
            ]));
            self.steps.insert(step_id(step, number), record);
            self.flush().await;
            self.step_completed(number, name, end.outcome, conclusion, step_started.elapsed()).await;
        }
        Ok(())
    }

    /// A step's end, for the job's table of steps and for whoever follows the job.
    async fn step_completed(
        &mut self,
        number: i64,
        name: String,
        outcome: Conclusion,
        conclusion: Conclusion,
        duration: Duration,
    ) {
        self.reports.push(StepReport { number, name: name.clone(), outcome, conclusion, duration });
        let _ = self.events.send(RunnerEvent::StepCompleted { number, name, outcome, conclusion }).await;
    }

    fn job_timed_out(&mut self, timeout: Duration) {
        self.timed_out = true;
        self.status = JobStatus::Cancelled;
        let message = format!(
            "The job has exceeded the maximum execution time of {} minutes.",
            timeout.as_secs_f64() / 60.0
        );
        self.filter.annotate(error_annotation(&message));
    }

    async fn skip_step(&mut self, step: &Step, number: i64, name: &str) {
        let record = Value::Object(IndexMap::from([
            ("outputs".to_owned(), Value::Object(IndexMap::new())),
            ("outcome".to_owned(), Value::String("skipped".into())),
            ("conclusion".to_owned(), Value::String("skipped".into())),
        ]));
        self.steps.insert(step_id(step, number), record);
        let skipped = Conclusion::Skipped;
        self.step_completed(number, name.to_owned(), skipped, skipped, Duration::ZERO).await;
    }

    /// Ends the job: its conclusion, outputs and what the log and the forge see.
    async fn finish(mut self, result: Result<(), InfraFailure>) -> JobOutcome {
        let host_key = self.host.as_ref().map(|h| h.host_key.clone());
        self.end_processes().await;
        if let Err(failure) = result {
            let reason = self.filter.masker.mask(&failure.reason).into_owned();
            self.log(&format!("##[error]Infrastructure failure: {reason}"));
            self.flush().await;
            return JobOutcome {
                conclusion: Conclusion::Failure,
                steps: std::mem::take(&mut self.reports),
                outputs: IndexMap::new(),
                annotations: self.filter.take_annotations(),
                summary: std::mem::take(&mut self.summary),
                infra: Some(InfraFailure::new(reason)),
                host_key,
                artifacts: std::mem::take(&mut self.artifacts),
                host_unfit: None,
                farm_failure: self.farm_failure.take(),
            };
        }
        let outputs = self.job_outputs();
        let conclusion = if self.timed_out {
            Conclusion::Failure
        } else {
            match self.status {
                JobStatus::Success => Conclusion::Success,
                JobStatus::Failure => Conclusion::Failure,
                JobStatus::Cancelled => Conclusion::Cancelled,
            }
        };
        self.log(&format!("Job concluded: {}", conclusion.as_str()));
        self.flush().await;
        JobOutcome {
            conclusion,
            steps: std::mem::take(&mut self.reports),
            outputs,
            annotations: self.filter.take_annotations(),
            summary: std::mem::take(&mut self.summary),
            infra: None,
            host_key,
            artifacts: std::mem::take(&mut self.artifacts),
            host_unfit: self.host_unfit.take(),
            farm_failure: self.farm_failure.take(),
        }
    }

    /// Kills what the job left running on its host and wipes its `_temp`, as GitHub's
    /// runner does at the end of a job ("Cleaning up orphan processes"). Nothing to do
    /// when the host is gone.
    async fn end_processes(&mut self) {
        let Some(host) = self.host.as_ref().filter(|h| !h.session().is_closed()) else { return };
        let ending = self.processes.end(host.session(), &self.dirs.temp);
        match tokio::time::timeout(END_PROCESSES_TIMEOUT, ending).await {
            Ok(Ok(orphans)) => {
                if !orphans.is_empty() {
                    self.log("Cleaning up orphan processes");
                }
                for orphan in orphans {
                    self.log(&format!("Terminate orphan process: pid ({}) ({})", orphan.pid, orphan.name));
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot end the job's processes");
                self.log(&format!("##[warning]Cannot end the job's processes on the host: {err}"));
            }
            Err(_) => {
                let seconds = END_PROCESSES_TIMEOUT.as_secs();
                tracing::warn!("ending the job's processes took more than {seconds} s");
                self.log(&format!(
                    "##[warning]Ending the job's processes on the host took more than {seconds} s"
                ));
            }
        }
    }

    pub(super) fn host(&self) -> &HostSession {
        self.host.as_ref().expect("the host is open while steps run")
    }

    /// Tells the observer the host was reinstalled and shows `host_key` now.
    pub(super) async fn host_reinstalled(&mut self, host_key: &str, note: String) {
        let event = RunnerEvent::HostReinstalled { host_key: host_key.to_owned(), note };
        let _ = self.events.send(event).await;
    }

    pub(super) fn log(&mut self, text: &str) {
        self.filter.log(text);
    }

    /// Sends the lines gathered so far to the observer.
    pub(super) async fn flush(&mut self) {
        let lines = self.filter.take_lines();
        if !lines.is_empty() {
            let _ = self.events.send(RunnerEvent::Log(lines)).await;
        }
    }

    fn repo_name(&self) -> String {
        let repository = self.github_str("repository");
        let name = repository.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            "workspace".to_owned()
        } else {
            name.to_owned()
        }
    }

    pub(super) fn github_str(&self, key: &str) -> String {
        self.definition
            .contexts
            .get("github")
            .and_then(|g| g.get(key))
            .map(Value::coerce_to_string)
            .unwrap_or_default()
    }

    /// A clean temp directory, the workspace, and the event file.
    pub(super) async fn prepare_host(&mut self) -> Result<(), InfraFailure> {
        let dirs = self.dirs.clone();
        let command = format!(
            "rm -rf {temp} && mkdir -p {temp}/_runner_file_commands {temp}/_github_workflow {ws} {tools}",
            temp = shell_quote(&dirs.temp),
            ws = shell_quote(&dirs.workspace),
            tools = shell_quote(&dirs.tool_cache),
        );
        let out = self.host().session().output(&command).await?;
        if out.status.code != Some(0) {
            return Err(InfraFailure::new(format!(
                "cannot prepare the runner's directories on {}: {}",
                self.host().target.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let payload = self.definition.event_payload.clone();
        self.host().session().write_file(&dirs.event_path, payload.as_bytes(), 0o600).await?;
        Ok(())
    }

    fn job_timeout(&self) -> Duration {
        let minutes = self.job.timeout_minutes.as_ref().and_then(|t| self.number_of(&t.value));
        minutes.filter(|m| *m > 0.0).map_or(DEFAULT_JOB_TIMEOUT, |m| Duration::from_secs_f64(m * 60.0))
    }

    /// The contexts for an expression of a step, with `env` as given.
    fn contexts(&self, env: &IndexMap<String, String>) -> IndexMap<String, Value> {
        let mut contexts = self.definition.contexts.clone();
        let mut github = match contexts.get("github") {
            Some(Value::Object(map)) => map.clone(),
            _ => IndexMap::new(),
        };
        github.insert("job".into(), Value::String(self.definition.job_key.clone()));
        github.insert("workspace".into(), Value::String(self.dirs.workspace.clone()));
        github.insert("event_path".into(), Value::String(self.dirs.event_path.clone()));
        if let Some(action) = &self.action {
            github.insert("action_path".into(), Value::String(action.path.clone()));
            contexts.insert("inputs".into(), action.inputs.clone());
        }
        contexts.insert("github".into(), Value::Object(github));
        contexts.insert(
            "env".into(),
            Value::Object(env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
        );
        contexts.insert(
            "job".into(),
            Value::Object(IndexMap::from([
                ("status".to_owned(), Value::String(status_text(self.status).into())),
                ("container".to_owned(), Value::Object(IndexMap::new())),
                ("services".to_owned(), Value::Object(IndexMap::new())),
            ])),
        );
        contexts.insert("steps".into(), Value::Object(self.steps.clone()));
        contexts.insert("runner".into(), self.runner_context());
        contexts.entry("secrets".into()).or_insert_with(|| Value::Object(IndexMap::new()));
        contexts
    }

    fn runner_context(&self) -> Value {
        let (name, arch) = match &self.host {
            Some(host) => (host.target.name.clone(), host.target.arch.clone()),
            None => (String::new(), "X64".to_owned()),
        };
        let s = |t: &str| Value::String(t.to_owned());
        Value::Object(IndexMap::from([
            ("name".to_owned(), s(&name)),
            ("os".to_owned(), s("Linux")),
            ("arch".to_owned(), s(&arch)),
            ("temp".to_owned(), s(&self.dirs.temp)),
            ("tool_cache".to_owned(), s(&self.dirs.tool_cache)),
            ("workspace".to_owned(), s(&self.dirs.root)),
            ("environment".to_owned(), s("self-hosted")),
        ]))
    }

    fn eval_template(&self, text: &str, env: &IndexMap<String, String>) -> Result<Value, String> {
        let template = Template::parse(text, &RUNTIME).map_err(|e| e.message)?;
        if template.is_literal() {
            return Ok(Value::String(text.to_owned()));
        }
        let contexts = self.contexts(env);
        let mut cx = EvalContext::new(&contexts);
        cx.status = self.status;
        template.eval(&cx).map_err(|e| e.message)
    }

    pub(super) fn eval_string(&self, text: &str, env: &IndexMap<String, String>) -> Result<String, String> {
        self.eval_template(text, env).map(|v| v.coerce_to_string())
    }

    fn number_of(&self, value: &crate::workflow::model::OrExpr<f64>) -> Option<f64> {
        use crate::workflow::model::OrExpr;
        match value {
            OrExpr::Value(n) => Some(*n),
            OrExpr::Expr(text) => match self.eval_template(text, &self.env) {
                Ok(Value::Number(n)) => Some(n),
                Ok(other) => other.coerce_to_string().trim().parse().ok(),
                Err(_) => None,
            },
        }
    }

    fn bool_of(&self, value: &crate::workflow::model::OrExpr<bool>) -> bool {
        use crate::workflow::model::OrExpr;
        match value {
            OrExpr::Value(b) => *b,
            OrExpr::Expr(text) => self.eval_template(text, &self.env).is_ok_and(|v| v.is_truthy()),
        }
    }

    /// Workflow `env`, then the job's (evaluated in order, each seeing the ones before).
    fn job_env(&self) -> Result<IndexMap<String, String>, String> {
        let mut env = IndexMap::new();
        for layer in [&self.definition.workflow.env, &self.job.env] {
            let vars = self.layer_env(layer, &env)?;
            env.extend(vars);
        }
        Ok(env)
    }

    fn layer_env(
        &self,
        layer: &Env,
        base: &IndexMap<String, String>,
    ) -> Result<IndexMap<String, String>, String> {
        let mut vars = IndexMap::new();
        if let Some(expr) = &layer.expr {
            if let Value::Object(map) = self.eval_template(&expr.value, base)? {
                for (k, v) in map {
                    vars.insert(k, v.coerce_to_string());
                }
            }
        }
        for (name, text) in &layer.vars {
            vars.insert(name.clone(), self.eval_string(&text.value, base)?);
        }
        Ok(vars)
    }

    /// The step's display name (secrets masked: it reaches the check run).
    pub(super) fn step_name(&self, step: &Step, number: i64) -> String {
        self.filter.masker.mask(&self.unmasked_step_name(step, number)).into_owned()
    }

    fn unmasked_step_name(&self, step: &Step, number: i64) -> String {
        if let Some(name) = &step.name {
            if let Ok(text) = self.eval_string(&name.value, &self.env) {
                return text;
            }
        }
        if let Some(run) = &step.run {
            let first = run.value.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
            return format!("Run {}", first.trim());
        }
        if let Some(uses) = &step.uses {
            return format!("Run {}", uses.value);
        }
        format!("Step {number}")
    }

    /// The step's `if`: `success()` unless it names a status function.
    pub(super) fn step_condition(&self, step: &Step) -> Result<bool, String> {
        let text = step.if_.as_ref().map(|t| strip_wrapper(&t.value).to_owned());
        let text = text.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "success()".to_owned());
        let expr = Expr::parse(&text, &RUNTIME).map_err(|e| format!("The step's `if` is invalid: {e}"))?;
        let contexts = self.contexts(&self.env);
        let mut cx = EvalContext::new(&contexts);
        cx.status = self.status;
        let value = expr.eval_truthy(&cx).map_err(|e| format!("The step's `if` failed: {e}"))?;
        Ok(if expr.uses_status_function() { value } else { value && self.status == JobStatus::Success })
    }

    pub(super) fn step_continues_on_error(&self, step: &Step) -> bool {
        step.continue_on_error.as_ref().is_some_and(|c| self.bool_of(&c.value))
    }

    pub(super) async fn run_step(
        &mut self,
        step: &Step,
        number: i64,
        job_deadline: Instant,
    ) -> Result<StepEnd, StepError> {
        let mut env = self.env.clone();
        if let Some(action) = &self.action {
            env.extend(action.env.clone());
        }
        let step_env = self.layer_env(&step.env, &env).map_err(StepError::Failed)?;
        env.extend(step_env);
        let timeout = step.timeout_minutes.as_ref().and_then(|t| self.number_of(&t.value));
        let deadline = match timeout.filter(|m| *m > 0.0) {
            Some(minutes) => (Instant::now() + Duration::from_secs_f64(minutes * 60.0)).min(job_deadline),
            None => job_deadline,
        };
        if let Some(uses) = &step.uses {
            let with = self.step_inputs(step, &env)?;
            if uses.value.starts_with("./") {
                return composite::run_local(self, &uses.value, &with, &env, number, deadline).await;
            }
            return match actions::built_in(&uses.value) {
                Some(action) => self.run_action(action, &with, &env, number, deadline).await,
                None => Err(StepError::Failed(format!(
                    "the action `{}` is not available on this farm",
                    uses.value
                ))),
            };
        }
        let Some(run) = &step.run else {
            return Err(StepError::Failed("the step has neither `run` nor `uses`".into()));
        };
        let script = self.eval_string(&run.value, &env).map_err(StepError::Failed)?;
        let shell =
            self.step_default(step.shell.as_ref().map(|s| s.value.clone()), |d| d.shell.clone(), &env)?;
        let working_directory = self.step_default(
            step.working_directory.as_ref().map(|s| s.value.clone()),
            |d| d.working_directory.clone(),
            &env,
        )?;
        for line in script.lines() {
            self.log(line);
        }
        self.run_script(&script, shell.as_deref(), working_directory.as_deref(), &env, number, deadline).await
    }

    /// `shell`/`working-directory` of the step, else of `defaults.run` of the job, else of the workflow.
    fn step_default(
        &self,
        own: Option<String>,
        pick: impl Fn(&RunDefaults) -> Option<crate::workflow::model::Text>,
        env: &IndexMap<String, String>,
    ) -> Result<Option<String>, StepError> {
        // A composite action's steps do not take the workflow's `defaults.run`.
        let inherited = self.action.is_none();
        let text = own
            .or_else(|| self.job.defaults.as_ref().filter(|_| inherited).and_then(&pick).map(|t| t.value))
            .or_else(|| {
                self.definition
                    .workflow
                    .defaults
                    .as_ref()
                    .filter(|_| inherited)
                    .and_then(&pick)
                    .map(|t| t.value)
            });
        text.map(|t| self.eval_string(&t, env).map_err(StepError::Failed)).transpose()
    }

    fn step_inputs(
        &self,
        step: &Step,
        env: &IndexMap<String, String>,
    ) -> Result<IndexMap<String, String>, StepError> {
        let mut with = IndexMap::new();
        for (name, text) in &step.with {
            with.insert(name.clone(), self.eval_string(&text.value, env).map_err(StepError::Failed)?);
        }
        Ok(with)
    }

    /// Uploads `script`, runs it with `shell` in the step's environment, and reads the
    /// file commands it wrote.
    async fn run_script(
        &mut self,
        script: &str,
        shell: Option<&str>,
        working_directory: Option<&str>,
        env: &IndexMap<String, String>,
        number: i64,
        deadline: Instant,
    ) -> Result<StepEnd, StepError> {
        let shell =
            Shell::parse(shell, self.host().has_bash).map_err(|e| StepError::Failed(e.to_string()))?;
        let script_path = format!("{}/step-{number}{}", self.dirs.temp, shell.script_extension());
        self.log(&format!("shell: {shell}"));
        self.log("##[endgroup]");
        self.flush().await;
        let contents = shell.script_contents(script);
        self.host()
            .session()
            .write_file(&script_path, contents.as_bytes(), 0o700)
            .await
            .map_err(ssh_failure)?;

        let files = FileCommands::of_step(&self.dirs, number);
        let workdir = match working_directory {
            Some(dir) if dir.starts_with('/') => dir.to_owned(),
            Some(dir) => format!("{}/{dir}", self.dirs.workspace),
            None => self.dirs.workspace.clone(),
        };
        let process_env = self.process_env(env, &files, number);
        let wrapper =
            wrapper_script(&files, &workdir, &process_env, &self.path, &shell.command_line(&script_path));
        let wrapper_path = format!("{}/step-{number}.wrapper.sh", self.dirs.temp);
        self.host()
            .session()
            .write_file(&wrapper_path, wrapper.as_bytes(), 0o700)
            .await
            .map_err(ssh_failure)?;
        let pid_file = format!("{}/step-{number}.pid", self.dirs.temp);
        let command = process_command(&pid_file, &format!("sh {}", shell_quote(&wrapper_path)));

        let allow_unsecure =
            env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        self.filter.begin_step(allow_unsecure, self.step_debug());
        let end = self.run_streaming(&command, &pid_file, deadline).await?;
        let mut outcome = self.conclusion_of(end, "Process");
        let commands = std::mem::take(&mut self.filter.step);
        if commands.failed && outcome == Conclusion::Success {
            outcome = Conclusion::Failure;
        }
        let mut outputs: IndexMap<String, String> = commands.outputs.into_iter().collect();
        outputs.extend(self.read_file_commands(&files).await?);
        self.env.extend(commands.env);
        for dir in commands.paths.into_iter().rev() {
            self.path.insert(0, dir);
        }
        Ok(StepEnd { outcome, outputs })
    }

    /// `ACTIONS_STEP_DEBUG` as a secret or variable: `::debug::` lines are logged.
    fn step_debug(&self) -> bool {
        ["secrets", "vars"].iter().any(|context| {
            self.definition
                .contexts
                .get(*context)
                .and_then(|c| c.get("ACTIONS_STEP_DEBUG"))
                .is_some_and(|v| v.coerce_to_string().eq_ignore_ascii_case("true"))
        })
    }

    /// The step's outcome from how its process ended; a failure says why.
    pub(super) fn conclusion_of(&mut self, end: ProcessEnd, what: &str) -> Conclusion {
        match end {
            ProcessEnd::Exited(status) if status.code == Some(0) => Conclusion::Success,
            ProcessEnd::Exited(status) => {
                let message = match (status.code, &status.signal) {
                    (Some(code), _) => format!("{what} completed with exit code {code}."),
                    (None, Some(signal)) => format!("{what} was killed by signal {signal}."),
                    (None, None) => format!("{what} ended without an exit code."),
                };
                self.filter.annotate(error_annotation(&message));
                Conclusion::Failure
            }
            // When it was the job's time that ran out, the job loop says so too.
            ProcessEnd::TimedOut => {
                self.filter.annotate(error_annotation("The step has timed out: its processes were killed."));
                Conclusion::Failure
            }
            ProcessEnd::Cancelled => {
                self.log("##[error]The operation was canceled.");
                Conclusion::Cancelled
            }
        }
    }

    /// Runs `command`, feeding its output through the filter to the observer.
    pub(super) async fn run_streaming(
        &mut self,
        command: &str,
        pid_file: &str,
        deadline: Instant,
    ) -> Result<ProcessEnd, StepError> {
        let host = self.host.take().expect("the host is open while steps run");
        let command = self.processes.tracked(command);
        let command = command.as_str();
        let events = self.events.clone();
        // A step that runs after the job was cancelled (`always()`, `cancelled()`) runs
        // to its end, as on GitHub; only its timeout stops it. That is decided by the
        // status its `if` saw: a cancellation that comes while the step is starting
        // stops it at once.
        let cancel =
            if self.status == JobStatus::Cancelled { CancellationToken::new() } else { self.cancel.clone() };
        // The output is filtered and sent on while the process runs: a live log, and
        // SSH flow control holds the host back when the log cannot keep up.
        let (output, mut heard) = mpsc::channel(16);
        let filter = &mut self.filter;
        let forward = async {
            while let Some(event) = heard.recv().await {
                match event {
                    ExecEvent::Stdout(bytes) => filter.stdout(&bytes),
                    ExecEvent::Stderr(bytes) => filter.stderr(&bytes),
                    ExecEvent::Exit(_) => {}
                }
                let lines = filter.take_lines();
                if !lines.is_empty() {
                    let _ = events.send(RunnerEvent::Log(lines)).await;
                }
            }
        };
        let (result, ()) =
            tokio::join!(host.run_process(command, pid_file, Some(deadline), &cancel, output), forward);
        self.host = Some(host);
        self.filter.end_output();
        self.flush().await;
        match result {
            Ok(end) => Ok(end),
            Err(err) => Err(StepError::Infra(self.lost(err).await)),
        }
    }

    /// The connection broke during a step: is the host still there? Either way the
    /// step's outcome is unknown, so the job ends as an infrastructure failure.
    async fn lost(&mut self, err: SshError) -> InfraFailure {
        let name = self.host().target.name.clone();
        let grace = self.host().target.reconnect_grace;
        let mut host = self.host.take().expect("the host is open while steps run");
        let reason = match host.reconnect(grace, None).await {
            Ok(()) => format!("the connection to host {name} was lost during a step ({err})"),
            Err(again) => format!(
                "host {name} is unreachable: the connection was lost during a step ({err}) and did not come back \
                 within {} s ({again})",
                grace.as_secs()
            ),
        };
        self.host = Some(host);
        InfraFailure::new(reason)
    }

    /// `GITHUB_*`, `RUNNER_*` and `CI`, then the workflow's env (which may override them).
    fn process_env(
        &self,
        env: &IndexMap<String, String>,
        files: &FileCommands,
        number: i64,
    ) -> IndexMap<String, String> {
        let mut vars = IndexMap::new();
        vars.insert("CI".to_owned(), "true".to_owned());
        vars.insert("GITHUB_ACTIONS".to_owned(), "true".to_owned());
        for key in GITHUB_VARIABLES {
            vars.insert(format!("GITHUB_{}", key.to_uppercase()), self.github_str(key));
        }
        vars.insert("GITHUB_JOB".to_owned(), self.definition.job_key.clone());
        vars.insert("GITHUB_ACTION".to_owned(), format!("__run_{number}"));
        vars.insert("GITHUB_WORKSPACE".to_owned(), self.dirs.workspace.clone());
        vars.insert("GITHUB_EVENT_PATH".to_owned(), self.dirs.event_path.clone());
        vars.insert("GITHUB_ENV".to_owned(), files.env.clone());
        vars.insert("GITHUB_OUTPUT".to_owned(), files.output.clone());
        vars.insert("GITHUB_PATH".to_owned(), files.path.clone());
        vars.insert("GITHUB_STEP_SUMMARY".to_owned(), files.summary.clone());
        vars.insert("GITHUB_STATE".to_owned(), files.state.clone());
        let host = self.host();
        vars.insert("RUNNER_NAME".to_owned(), host.target.name.clone());
        vars.insert("RUNNER_OS".to_owned(), "Linux".to_owned());
        vars.insert("RUNNER_ARCH".to_owned(), host.target.arch.clone());
        vars.insert("RUNNER_TEMP".to_owned(), self.dirs.temp.clone());
        vars.insert("RUNNER_TOOL_CACHE".to_owned(), self.dirs.tool_cache.clone());
        vars.insert("RUNNER_WORKSPACE".to_owned(), self.dirs.root.clone());
        vars.insert("RUNNER_ENVIRONMENT".to_owned(), "self-hosted".to_owned());
        for (k, v) in env {
            vars.insert(k.clone(), v.clone());
        }
        // Last: the workflow's env cannot take a process out of the job's.
        vars.insert(TRACKING_VARIABLE.to_owned(), self.processes.tracking_id().to_owned());
        vars
    }

    /// Applies what the step wrote to its file commands; returns its outputs.
    async fn read_file_commands(
        &mut self,
        files: &FileCommands,
    ) -> Result<IndexMap<String, String>, StepError> {
        let env_text = self.read_remote(&files.env).await?;
        let output_text = self.read_remote(&files.output).await?;
        let path_text = self.read_remote(&files.path).await?;
        let summary_text = self.read_remote(&files.summary).await?;
        match envfiles::parse_assignments(&env_text) {
            Ok(vars) => {
                for (name, value) in vars {
                    self.env.insert(name, value);
                }
            }
            Err(err) => self.filter.annotate(error_annotation(&format!("GITHUB_ENV: {err}"))),
        }
        let mut outputs = IndexMap::new();
        match envfiles::parse_assignments(&output_text) {
            Ok(vars) => outputs.extend(vars),
            Err(err) => self.filter.annotate(error_annotation(&format!("GITHUB_OUTPUT: {err}"))),
        }
        for entry in envfiles::parse_path_lines(&path_text).into_iter().rev() {
            self.path.insert(0, entry);
        }
        if !summary_text.trim().is_empty() {
            let masked = self.filter.masker.mask(&summary_text).into_owned();
            self.summary.push_str(&masked);
            if !masked.ends_with('\n') {
                self.summary.push('\n');
            }
        }
        Ok(outputs)
    }

    async fn read_remote(&self, path: &str) -> Result<String, StepError> {
        match self.host().session().read_file(path).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(bytes.as_slice()).into_owned()),
            Err(SshError::NotFound { .. }) => Ok(String::new()),
            Err(err) => Err(ssh_failure(err)),
        }
    }

    /// The job's `outputs`, evaluated with the final `steps`; values holding a secret
    /// are left out, as GitHub does.
    fn job_outputs(&mut self) -> IndexMap<String, String> {
        let mut outputs = IndexMap::new();
        for (name, text) in &self.job.outputs {
            match self.eval_string(&text.value, &self.env) {
                Ok(value) => {
                    if self.filter.masker.mask(&value) != value {
                        self.filter
                            .log(&format!("##[warning]Skip output '{name}' since it may contain secret."));
                        continue;
                    }
                    outputs.insert(name.clone(), value);
                }
                Err(message) => {
                    self.filter.annotate(error_annotation(&format!("output `{name}`: {message}")));
                }
            }
        }
        outputs
    }

    async fn run_action(
        &mut self,
        action: BuiltIn,
        with: &IndexMap<String, String>,
        env: &IndexMap<String, String>,
        number: i64,
        deadline: Instant,
    ) -> Result<StepEnd, StepError> {
        self.log("##[endgroup]");
        self.flush().await;
        match action {
            BuiltIn::Reboot => actions::reboot(self, with, deadline).await,
            BuiltIn::Provision => actions::provision(self, with, deadline).await,
            BuiltIn::Checkout => actions::checkout(self, with, env, number, deadline).await,
            BuiltIn::UploadArtifact => actions::upload_artifact(self, with, number).await,
        }
        .map(|outcome| StepEnd { outcome, outputs: IndexMap::new() })
    }
}

/// Why a step could not run to its end.
pub(super) enum StepError {
    /// The host's fault: the job ends and is retried elsewhere.
    Infra(InfraFailure),
    /// The step's own fault (a bad expression, an unknown action, a file it named
    /// that cannot be read): the step fails.
    Failed(String),
    /// The farm's own fault (its disk full): the step fails saying so; the host stays
    /// in service.
    Farm(String),
}

/// What a failed SSH request means for the step: the host's failure when
/// [`SshError::is_infrastructure`] says so, else the step's own (a file it removed or
/// made unreadable must not send the host to repair).
pub(super) fn ssh_failure(err: SshError) -> StepError {
    if err.is_infrastructure() {
        StepError::Infra(err.into())
    } else {
        StepError::Failed(err.to_string())
    }
}

/// The `github` context keys that become `GITHUB_<KEY>` variables.
const GITHUB_VARIABLES: &[&str] = &[
    "actor",
    "actor_id",
    "api_url",
    "base_ref",
    "event_name",
    "graphql_url",
    "head_ref",
    "ref",
    "ref_name",
    "ref_protected",
    "ref_type",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "retention_days",
    "run_attempt",
    "run_id",
    "run_number",
    "server_url",
    "sha",
    "triggering_actor",
    "workflow",
    "workflow_ref",
    "workflow_sha",
];

/// What run-time expressions may name.
const RUNTIME: Allowed<'static> = Allowed {
    contexts: &[
        "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs",
        "inputs",
    ],
    functions: &[
        STATUS_FUNCTIONS[0],
        STATUS_FUNCTIONS[1],
        STATUS_FUNCTIONS[2],
        STATUS_FUNCTIONS[3],
        HASH_FILES,
    ],
};

fn status_text(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Success => "success",
        JobStatus::Failure => "failure",
        JobStatus::Cancelled => "cancelled",
    }
}

/// `${{ x }}` → `x`; anything else as written.
fn strip_wrapper(text: &str) -> &str {
    let trimmed = text.trim();
    match trimmed.strip_prefix("${{").and_then(|t| t.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner,
        _ => trimmed,
    }
}

fn step_id(step: &Step, number: i64) -> String {
    step.id.as_ref().map_or_else(|| format!("__run_{number}"), |id| id.value.clone())
}

/// The runner's directories under the host's home.
pub fn dirs_under(home: &str, repo_name: &str) -> Dirs {
    let root = format!("{}/metalfarm-work", home.trim_end_matches('/'));
    Dirs {
        temp: format!("{root}/_temp"),
        workspace: format!("{root}/{repo_name}/{repo_name}"),
        tool_cache: format!("{root}/_tool"),
        event_path: format!("{root}/_temp/_github_workflow/event.json"),
        root,
    }
}

/// The files a step's commands write to (`GITHUB_ENV`, …), fresh for each step.
pub(super) struct FileCommands {
    pub env: String,
    pub output: String,
    pub path: String,
    pub summary: String,
    pub state: String,
}

impl FileCommands {
    pub fn of_step(dirs: &Dirs, number: i64) -> FileCommands {
        let file = |kind: &str| format!("{}/_runner_file_commands/{kind}_{number}", dirs.temp);
        FileCommands {
            env: file("set_env"),
            output: file("set_output"),
            path: file("add_path"),
            summary: file("step_summary"),
            state: file("save_state"),
        }
    }
}

/// The `sh` script that sets a step's stage: fresh command files, the working
/// directory, the environment (through `env`, which takes any variable name), and
/// then `exec`s the step's program so it keeps the process group of the session.
pub(super) fn wrapper_script(
    files: &FileCommands,
    workdir: &str,
    env: &IndexMap<String, String>,
    path: &[String],
    program_line: &str,
) -> String {
    let mut out = String::from("set -e\n");
    for file in [&files.env, &files.output, &files.path, &files.summary, &files.state] {
        out.push_str(&format!(": > {}\n", shell_quote(file)));
    }
    out.push_str(&format!(
        "cd -- {dir} 2>/dev/null || {{ printf '##[error]The working directory %s does not exist.\\n' {dir} >&2; exit 1; }}\n",
        dir = shell_quote(workdir)
    ));
    if !path.is_empty() && !env.contains_key("PATH") {
        out.push_str(&format!("PATH={}:\"$PATH\"\nexport PATH\n", shell_quote(&path.join(":"))));
    }
    out.push_str("exec env");
    for (name, value) in env {
        out.push_str(" \\\n  ");
        out.push_str(&shell_quote(&format!("{name}={value}")));
    }
    out.push_str(&format!(" \\\n  {program_line}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_sets_the_stage_and_execs_the_program() {
        let dirs = dirs_under("/root/", "qemu");
        assert_eq!(dirs.workspace, "/root/metalfarm-work/qemu/qemu");
        let files = FileCommands::of_step(&dirs, 2);
        let env = IndexMap::from([("A B".to_owned(), "it's".to_owned())]);
        let script = wrapper_script(&files, "/w", &env, &["/opt/bin".to_owned()], "bash -e '/t/s.sh'");
        assert!(script.contains(": > /root/metalfarm-work/_temp/_runner_file_commands/set_env_2\n"));
        assert!(script.contains("cd -- /w 2>/dev/null ||"));
        assert!(script.contains("PATH=/opt/bin:\"$PATH\"\n"));
        assert!(script.ends_with("exec env \\\n  'A B=it'\\''s' \\\n  bash -e '/t/s.sh'\n"));
    }

    #[test]
    fn strips_only_a_whole_wrapper() {
        assert_eq!(strip_wrapper(" ${{ always() }} "), " always() ");
        assert_eq!(strip_wrapper("${{ a }} && ${{ b }}"), "${{ a }} && ${{ b }}");
    }
}
