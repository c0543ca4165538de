//! `metalfarm run`: a workflow's jobs run directly on one host over SSH, with no
//! server and no forge (for workflow authors, like `act` on real hardware); and
//! `metalfarm run rerun ID`: a new attempt of a finished run, through the server's REST
//! API (`--server`, token from `METALFARM_TOKEN`).
//!
//! `metalfarm run WORKFLOW --host ADDR`:
//! - the event is `--event NAME --payload FILE`; without them a `workflow_dispatch` when
//!   the workflow has that trigger (`--input K=V` are its inputs), else a `push` of
//!   `refs/heads/main`. The workflow's `on:` filters are not applied: the file runs
//!   because the user asked for it.
//! - the jobs are planned as the farm plans them (matrix, `needs`, job `if`) and run
//!   one after another in `needs` order by the farm's scheduler with the host as its
//!   only host: a job whose needed job failed is skipped, as on GitHub; `--job ID`
//!   runs one job (all its matrix combinations) without the jobs it needs (its
//!   `needs` context is empty).
//! - the host key: `--known-hosts FILE` pins the key listed there for the host, else
//!   it is trusted on first use and its fingerprint printed on stderr.
//! - stdout: the live log (each line prefixed with `[job name]` when more than one
//!   job runs), then a table of jobs and steps with result and time.
//! - exit 0 when every job succeeded or was skipped, 1 when one failed or was
//!   cancelled (Ctrl-C cancels the running job: its `always()` steps still run), 2 for
//!   usage errors, a workflow that does not load, and infrastructure failures (host
//!   unreachable, key refused).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use hyper::Method;
use indexmap::IndexMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{json_text, run_command, table, ApiArgs, ApiClient, ClientError};
use super::terminal::for_terminal;
use super::EXIT_USAGE;
use crate::config::SshConfig;
use crate::exec::host::HostTarget;
use crate::exec::job::{run_job, Conclusion, JobDefinition, JobOutcome, RunnerEvent, StepReport};
use crate::exec::keys::{fingerprint, known_host_keys, load_private_key, parse_public_key};
use crate::exec::ssh::{HostKeyPolicy, SshOptions};
use crate::farm::runner::needs_context;
use crate::farm::scheduler::{self, Condition, Decision, HostSpec, JobSpec, MatrixGroup, Scheduler};
use crate::store::NeededJob;
use crate::web::api::runs::{RerunRequest, RunView};
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::expr::Value;
use crate::workflow::load::{load, LoadOptions};
use crate::workflow::model::Workflow;
use crate::workflow::plan::{plan, workflow_inputs, JobPlan, MatrixPlan, PlanOptions};

/// Shown by `metalfarm run --help`.
const RUN_HELP: &str = "\
Without --event, the event is a workflow_dispatch (--input K=V are its inputs) when the
workflow has that trigger, else a push of refs/heads/main. The workflow's `on:` filters are
not applied. Jobs run one after another in `needs` order; --job ID runs one job (its matrix
combinations) without the jobs it needs. Artifacts go to ./metalfarm-artifacts/.

Output: the live log on stdout (prefixed with [job name] when more than one job runs), then
a table of jobs and steps. Without --known-hosts the host key is trusted on first use and its
fingerprint printed on stderr; hashed known_hosts entries are not read (list the host by name).

Exit status: 0 when every job succeeded (or was skipped), 1 when one failed or was cancelled
(Ctrl-C cancels the running job), 2 for usage errors, invalid workflows and infrastructure
failures (host unreachable, host key refused).";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true, after_help = RUN_HELP)]
pub struct RunArgs {
    #[command(subcommand)]
    pub command: Option<RunCommand>,
    #[command(flatten)]
    pub local: LocalRun,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Re-run a finished run: its next attempt, from the workflow file as it is now.
    Rerun {
        #[command(flatten)]
        api: ApiArgs,
        /// The run's id.
        id: i64,
        /// The new attempt's priority (higher runs first; default 0).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<i32>,
    },
}

/// The flags of `metalfarm run WORKFLOW --host ADDR`.
#[derive(Debug, clap::Args)]
pub struct LocalRun {
    /// The workflow file to run.
    #[arg(required = true)]
    pub workflow: Option<PathBuf>,
    /// The host to run on (address or name).
    #[arg(long, value_name = "ADDR", required = true)]
    pub host: Option<String>,
    /// The host's SSH port.
    #[arg(long, value_name = "P", default_value_t = 22)]
    pub port: u16,
    /// The user to log in as.
    #[arg(long, value_name = "U", default_value = "root")]
    pub user: String,
    /// The ed25519 private key to log in with (default: ~/.ssh/id_ed25519).
    #[arg(long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// An OpenSSH known_hosts file that lists the host's key (`host` or
    /// `[host]:port`); without it the key is trusted on first use.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Run only this job (all its matrix combinations).
    #[arg(long = "job", value_name = "ID")]
    pub job: Option<String>,
    /// The event's name, as in `on:`.
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// The event's webhook payload (JSON).
    #[arg(long, value_name = "FILE", requires = "event")]
    pub payload: Option<PathBuf>,
    /// A `workflow_dispatch` input, `K=V`; repeatable.
    #[arg(long = "input", value_name = "K=V")]
    pub inputs: Vec<String>,
    /// A secret (`secrets` context, masked in the log): `K` takes the value of the
    /// environment variable `K`, `K=V` gives it (visible to other users in the process
    /// list: prefer the other two); repeatable.
    #[arg(long = "secret", value_name = "K[=V]")]
    pub secrets: Vec<String>,
    /// A file of secrets, `NAME = "value"` lines (TOML); `--secret` overrides it.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> ExitCode {
    match args.command {
        Some(RunCommand::Rerun { api, id, priority }) => run_command("run rerun", rerun(api, id, priority)),
        None => run_local(args.local),
    }
}

async fn rerun(api: ApiArgs, id: i64, priority: Option<i32>) -> Result<String, ClientError> {
    let client = ApiClient::new(&api)?;
    let run: RunView =
        client.send(Method::POST, &format!("/runs/{id}/rerun"), &RerunRequest { priority }).await?;
    Ok(if api.json { json_text(&run) } else { format!("re-running run {id}: {}", started_text(&run)) })
}

/// A run just started, for a person: a line, then its jobs.
pub(super) fn started_text(run: &RunView) -> String {
    let jobs = run.jobs.as_deref().unwrap_or_default();
    let mut out = format!(
        "run {} ({} #{}, attempt {}) of {} on {} ({}), {} job(s)\n",
        run.id,
        run.workflow_name,
        run.run_number,
        run.run_attempt,
        run.repo,
        run.git_ref,
        run.head_sha.chars().take(12).collect::<String>(),
        jobs.len()
    );
    if !jobs.is_empty() {
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .map(|j| vec![j.id.to_string(), j.name.clone(), j.runs_on.join(", "), j.needs.join(", ")])
            .collect();
        out.push_str(&table(&["ID", "JOB", "RUNS-ON", "NEEDS"], &rows));
    }
    out
}

/// Why `metalfarm run` stopped before its jobs could finish: exit 2.
#[derive(Debug)]
enum Stop {
    /// Already printed (the workflow's diagnostics).
    Reported,
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(err: anyhow::Error) -> Stop {
        Stop::Error(err)
    }
}

fn run_local(args: LocalRun) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("metalfarm run: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(local_run(args)) {
        Ok(all_succeeded) => ExitCode::from(if all_succeeded { 0 } else { 1 }),
        Err(Stop::Reported) => ExitCode::from(EXIT_USAGE),
        Err(Stop::Error(err)) => {
            eprintln!("metalfarm run: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// One planned job: its plan, where it stands, and how it ended.
struct LocalJob {
    plan: JobPlan,
    result: Option<JobResult>,
}

struct JobResult {
    conclusion: Conclusion,
    outputs: IndexMap<String, String>,
    steps: Vec<StepReport>,
    duration: Option<Duration>,
    /// Why it failed without running (its `if`, its matrix).
    reason: Option<String>,
}

impl JobResult {
    fn without_running(conclusion: Conclusion, reason: Option<String>) -> JobResult {
        JobResult { conclusion, outputs: IndexMap::new(), steps: Vec::new(), duration: None, reason }
    }
}

async fn local_run(args: LocalRun) -> Result<bool, Stop> {
    let (Some(path), Some(address)) = (args.workflow.clone(), args.host.clone()) else {
        return Err(Stop::Error(anyhow::anyhow!("a workflow file and --host are required")));
    };
    let path_text = path.display().to_string();
    let source = std::fs::read_to_string(&path).with_context(|| format!("reading {path_text}"))?;
    let loaded = load(&source, &LoadOptions::default());
    if !loaded.diagnostics.is_empty() || loaded.workflow.is_none() {
        for diagnostic in &loaded.diagnostics {
            eprintln!("{}", diagnostic.render(&path_text));
        }
        return Err(Stop::Reported);
    }
    let workflow = Arc::new(loaded.workflow.expect("checked above"));
    let event = event(&args, &workflow)?;
    let info = RunInfo { sha: event.sha().is_none().then(|| "0".repeat(40)), ..RunInfo::default() };
    let options = PlanOptions { path: path_text.clone(), run: info.clone(), vars: IndexMap::new() };
    let planned = plan(&workflow, &event, &options)
        .map_err(|e| anyhow::anyhow!("{path_text}:{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let mut jobs: Vec<LocalJob> = planned
        .jobs
        .into_iter()
        .filter(|job| args.job.as_ref().is_none_or(|wanted| &job.id == wanted))
        .map(|plan| LocalJob { plan, result: None })
        .collect();
    if jobs.is_empty() {
        let known: Vec<&str> = workflow.jobs.keys().map(String::as_str).collect();
        bail_stop(format!(
            "{path_text} has no job `{}` (its jobs: {})",
            args.job.as_deref().unwrap_or_default(),
            known.join(", ")
        ))?;
    }

    let key = identity(&args)?;
    let host_key = match &args.known_hosts {
        Some(file) => HostKeyPolicy::Pinned(pinned_key(file, &address, args.port)?),
        None => HostKeyPolicy::TrustOnFirstUse,
    };
    let defaults = SshConfig::default();
    let mut target = HostTarget {
        name: address.clone(),
        address: address.clone(),
        port: args.port,
        arch: "X64".into(),
        ssh: SshOptions { user: args.user.clone(), ..SshOptions::from_config(&defaults, Arc::new(key)) },
        host_key,
        reconnect_grace: defaults.reconnect_grace,
    };

    let mut secrets = match &args.secret_file {
        Some(file) => crate::config::read_secrets_file(file).map_err(anyhow::Error::msg)?,
        None => IndexMap::new(),
    };
    for secret in &args.secrets {
        let (name, value) = match secret.split_once('=') {
            Some(_) => assignment("--secret", secret)?,
            None => {
                let value = std::env::var(secret).with_context(|| {
                    format!("--secret {secret}: no environment variable `{secret}` to take its value from")
                })?;
                (secret.clone(), value)
            }
        };
        secrets.insert(name, value);
    }
    let inputs = workflow_inputs(&workflow, &event);
    let runner = LocalRunner {
        workflow: workflow.clone(),
        event,
        info,
        path: path_text,
        inputs,
        secrets,
        prefix_lines: jobs.len() > 1,
        cancel: CancellationToken::new(),
    };
    let interrupted = runner.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("metalfarm run: cancelling (Ctrl-C; again to stop at once)");
            interrupted.cancel();
        }
        // A second Ctrl-C does not wait for the job's always() steps.
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("metalfarm run: stopped; the job's processes may still run on the host");
            std::process::exit(1);
        }
    });

    let infra = runner.run_all(&mut jobs, &mut target).await;
    print!("{}", summary_table(&jobs));
    std::io::stdout().flush().ok();
    // Why jobs ended without running: their `if` or matrix failed, fail-fast, Ctrl-C.
    for job in &jobs {
        if let Some(reason) = job.result.as_ref().and_then(|r| r.reason.as_ref()) {
            eprintln!("metalfarm run: job {}: {reason}", job.plan.name);
        }
    }
    if let Some(reason) = infra {
        bail_stop(format!("infrastructure failure: {reason}"))?;
    }
    Ok(jobs.iter().all(|job| {
        matches!(job.result.as_ref().map(|r| r.conclusion), Some(Conclusion::Success | Conclusion::Skipped))
    }))
}

fn bail_stop(message: String) -> Result<(), Stop> {
    Err(Stop::Error(anyhow::anyhow!(message)))
}

/// `K=V` of a repeatable flag.
fn assignment(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => bail!("{flag} {text}: expected K=V"),
    }
}

/// The event the jobs run for: `--event`/`--payload`, or a dispatch (or push) made here.
fn event(args: &LocalRun, workflow: &Workflow) -> anyhow::Result<Event> {
    let mut payload = match &args.payload {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?
        }
        None => default_payload(),
    };
    let name = match &args.event {
        Some(name) => name.clone(),
        None if workflow.on.events.contains_key("workflow_dispatch") => "workflow_dispatch".to_owned(),
        None => "push".to_owned(),
    };
    if !args.inputs.is_empty() {
        let Some(object) = payload.as_object_mut() else { bail!("the payload is not a JSON object") };
        let inputs = object.entry("inputs").or_insert_with(|| serde_json::json!({}));
        let Some(inputs) = inputs.as_object_mut() else { bail!("the payload's `inputs` is not an object") };
        for input in &args.inputs {
            let (name, value) = assignment("--input", input)?;
            inputs.insert(name, serde_json::Value::String(value));
        }
    }
    Ok(Event::new(name, payload))
}

/// The payload of an event made up here: `refs/heads/main` of a repository named
/// after the current folder (the runner's workspace is named after it), pushed by
/// the local user.
fn default_payload() -> serde_json::Value {
    let folder = std::env::current_dir()
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "workspace".to_owned());
    let user = std::env::var("USER").unwrap_or_else(|_| "local".to_owned());
    serde_json::json!({
        "ref": "refs/heads/main",
        "repository": {"name": folder, "full_name": format!("local/{folder}"), "owner": {"login": "local"}},
        "sender": {"login": user},
    })
}

/// `--identity`, or `~/.ssh/id_ed25519`.
fn identity(args: &LocalRun) -> anyhow::Result<crate::exec::keys::PrivateKey> {
    let path = match &args.identity {
        Some(path) => path.clone(),
        None => {
            let home =
                std::env::var_os("HOME").context("no --identity and no $HOME for ~/.ssh/id_ed25519")?;
            Path::new(&home).join(".ssh/id_ed25519")
        }
    };
    Ok(load_private_key(&path)?)
}

/// The key `file` lists for the host (its ed25519 key when it lists several).
fn pinned_key(file: &Path, address: &str, port: u16) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let keys = known_host_keys(&text, address, port);
    let Some(key) = keys.into_iter().next() else {
        let name = if port == 22 { address.to_owned() } else { format!("[{address}]:{port}") };
        bail!("{} lists no key for {name} (hashed entries are not read)", file.display());
    };
    parse_public_key(&key).with_context(|| format!("the key {} lists for {address}", file.display()))?;
    Ok(key)
}

/// What every job of the run shares.
struct LocalRunner {
    workflow: Arc<Workflow>,
    event: Event,
    info: RunInfo,
    path: String,
    /// The `inputs` context, typed and with defaults.
    inputs: Value,
    secrets: IndexMap<String, String>,
    prefix_lines: bool,
    cancel: CancellationToken,
}

impl LocalRunner {
    /// Runs the jobs in the order the scheduler leases them (one host: one at a time);
    /// the reason when the host failed, which stops the run.
    async fn run_all(&self, jobs: &mut [LocalJob], target: &mut HostTarget) -> Option<String> {
        let mut scheduler = Scheduler::new();
        let labels: Vec<String> = jobs.iter().flat_map(|j| j.plan.runs_on.iter().cloned()).collect();
        scheduler.add_host(HostSpec { name: target.name.clone(), labels });
        let condition_contexts = Arc::new(IndexMap::from([
            ("github".to_owned(), self.event.github_context(&self.workflow_name(), &self.info)),
            ("inputs".to_owned(), self.inputs.clone()),
            ("vars".to_owned(), Value::Object(IndexMap::new())),
        ]));
        let mut decisions = Vec::new();
        for id in 0..jobs.len() {
            let spec = job_spec(jobs, id, &condition_contexts);
            decisions.extend(scheduler.enqueue(spec));
        }
        loop {
            decisions.extend(scheduler.place());
            let mut lease = None;
            for decision in decisions.drain(..) {
                match decision {
                    Decision::Lease { job, .. } => lease = Some(index(job)),
                    Decision::Skip { job } => {
                        jobs[index(job)].result = Some(JobResult::without_running(Conclusion::Skipped, None))
                    }
                    Decision::Cancel { job, reason } => {
                        jobs[index(job)].result =
                            Some(JobResult::without_running(Conclusion::Cancelled, Some(reason)))
                    }
                    Decision::Fail { job, reason } => {
                        jobs[index(job)].result =
                            Some(JobResult::without_running(Conclusion::Failure, Some(reason)))
                    }
                }
            }
            let Some(id) = lease else { break };
            let result = if self.cancel.is_cancelled() {
                JobResult::without_running(Conclusion::Cancelled, Some("cancelled (Ctrl-C)".into()))
            } else {
                match self.run_one(jobs, id, target).await {
                    Ok(result) => result,
                    Err(reason) => {
                        jobs[id].result = Some(JobResult::without_running(Conclusion::Failure, None));
                        return Some(reason);
                    }
                }
            };
            let conclusion = result.conclusion;
            scheduler.set_outputs(job_id(id), result.outputs.clone());
            jobs[id].result = Some(result);
            decisions.extend(scheduler.finish(job_id(id), scheduler_conclusion(conclusion)));
        }
        None
    }

    /// One job on the host; `Err` with the reason when the host failed it.
    async fn run_one(
        &self,
        jobs: &[LocalJob],
        id: usize,
        target: &mut HostTarget,
    ) -> Result<JobResult, String> {
        let job = &jobs[id].plan;
        if let Some(error) = &job.error {
            let reason = format!("{}:{}:{}: {}", self.path, error.pos.line, error.pos.col, error.message);
            return Ok(JobResult::without_running(Conclusion::Failure, Some(reason)));
        }
        let mut definition =
            JobDefinition::new(self.workflow.clone(), &job.id, &self.event, &self.info, &self.path);
        let contexts = &mut definition.contexts;
        contexts.insert("inputs".to_owned(), self.inputs.clone());
        match &job.matrix {
            MatrixPlan::None => {}
            MatrixPlan::Combination(combination) => {
                contexts.insert("matrix".to_owned(), Value::Object(combination.clone()));
            }
            MatrixPlan::Deferred(_) => {
                let reason = format!(
                    "job {}: a matrix made from `needs` is not supported by `metalfarm run`",
                    job.name
                );
                eprintln!("metalfarm run: {reason}");
                return Ok(JobResult::without_running(Conclusion::Failure, Some(reason)));
            }
        }
        contexts.insert("needs".to_owned(), needs_context(&self.needed(jobs, job)));
        definition.set_secrets(self.secrets.clone());
        // `./metalfarm-artifacts/<name>/…`, absolute so that the messages name it.
        let here = std::env::current_dir().unwrap_or_default();
        definition.artifacts_dir = Some(here.join("metalfarm-artifacts"));

        let (events, mut heard) = mpsc::channel(64);
        let prefix = if self.prefix_lines { format!("[{}] ", job.name) } else { String::new() };
        let address = format!("{}:{}", target.address, target.port);
        let terminal = super::terminal::stdout_is_terminal();
        let printer = tokio::spawn(async move {
            let mut learned = None;
            while let Some(event) = heard.recv().await {
                match event {
                    RunnerEvent::Log(lines) => {
                        let stdout = std::io::stdout();
                        let mut out = stdout.lock();
                        for line in lines {
                            let line = if terminal { for_terminal(&line) } else { line.as_str().into() };
                            let _ = writeln!(out, "{prefix}{line}");
                        }
                        let _ = out.flush();
                    }
                    RunnerEvent::HostKeyLearned(key) => {
                        let shown =
                            parse_public_key(&key).map(|k| fingerprint(&k)).unwrap_or_else(|_| key.clone());
                        eprintln!("metalfarm run: {address}: trusting the host key {shown} (first use; --known-hosts pins it)");
                        learned = Some(key);
                    }
                    RunnerEvent::StepStarted { .. }
                    | RunnerEvent::StepCompleted { .. }
                    // No provisioner here: `metalfarm/provision` fails before it reinstalls.
                    | RunnerEvent::HostReinstalled { .. } => {}
                }
            }
            learned
        });
        let started = Instant::now();
        let outcome: JobOutcome = run_job(&definition, target, events, self.cancel.child_token()).await;
        let learned = printer.await.ok().flatten();
        if let Some(key) = learned {
            // The next jobs meet the same host: only the key seen first.
            target.host_key = HostKeyPolicy::Pinned(key);
        }
        if let Some(infra) = outcome.infra {
            return Err(infra.reason);
        }
        Ok(JobResult {
            conclusion: outcome.conclusion,
            outputs: outcome.outputs,
            steps: outcome.steps,
            duration: Some(started.elapsed()),
            reason: None,
        })
    }

    /// The jobs `job` needs that ran here, as the store would give them.
    fn needed(&self, jobs: &[LocalJob], job: &JobPlan) -> Vec<NeededJob> {
        jobs.iter()
            .filter(|other| job.needs.contains(&other.plan.id))
            .filter_map(|other| {
                let result = other.result.as_ref()?;
                Some(NeededJob {
                    job_key: other.plan.id.clone(),
                    conclusion: Some(result.conclusion.as_str().to_owned()),
                    outputs: result
                        .outputs
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                })
            })
            .collect()
    }

    fn workflow_name(&self) -> String {
        self.workflow.name.as_ref().map_or(self.path.clone(), |n| n.value.clone())
    }
}

/// Scheduler ids are the jobs' positions plus one.
fn job_id(index: usize) -> scheduler::JobId {
    index as scheduler::JobId + 1
}

fn index(id: scheduler::JobId) -> usize {
    (id - 1) as usize
}

fn job_spec(jobs: &[LocalJob], id: usize, contexts: &Arc<IndexMap<String, Value>>) -> JobSpec {
    let job = &jobs[id].plan;
    JobSpec {
        id: job_id(id),
        run_id: 1,
        job_key: job.id.clone(),
        labels: job.runs_on.clone(),
        priority: 0,
        // Among jobs free to run, the plan's (the file's) order.
        queued_at: id as i64,
        needs: (0..jobs.len()).filter(|&i| job.needs.contains(&jobs[i].plan.id)).map(job_id).collect(),
        condition: Condition::new(job.if_.clone(), contexts.clone()),
        // One host runs one job at a time: concurrency groups change nothing here.
        concurrency: None,
        run_concurrency: None,
        matrix: job.strategy.map(|strategy| MatrixGroup {
            key: job.id.clone(),
            max_parallel: strategy.max_parallel,
            fail_fast: strategy.fail_fast,
        }),
    }
}

fn scheduler_conclusion(conclusion: Conclusion) -> scheduler::Conclusion {
    match conclusion {
        Conclusion::Success => scheduler::Conclusion::Success,
        Conclusion::Failure => scheduler::Conclusion::Failure,
        Conclusion::Cancelled => scheduler::Conclusion::Cancelled,
        Conclusion::Skipped => scheduler::Conclusion::Skipped,
    }
}

/// The table printed at the end: each job, then its steps (indented).
fn summary_table(jobs: &[LocalJob]) -> String {
    let mut rows = Vec::new();
    for job in jobs {
        let (result, time) = match &job.result {
            Some(result) => {
                (result.conclusion.as_str().to_owned(), result.duration.map(seconds).unwrap_or_default())
            }
            None => ("not run".to_owned(), String::new()),
        };
        rows.push(vec![job.plan.name.clone(), String::new(), result, time]);
        for step in job.result.iter().flat_map(|r| &r.steps) {
            rows.push(vec![
                String::new(),
                format!("{}. {}", step.number, step.name),
                step.conclusion.as_str().to_owned(),
                seconds(step.duration),
            ]);
        }
    }
    format!("\n{}", table(&["JOB", "STEP", "RESULT", "TIME"], &rows))
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
