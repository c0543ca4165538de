//! The farm's side of running a job: for a job the scheduler leased to a host, build
//! what [`crate::exec::job`] needs from the store and the config (the workflow as it
//! was when the run started, the contexts, the secrets), connect to the host with its
//! pinned key, write the live log and the steps as they go, and hand the outcome back
//! to the scheduler's driver ([`super::dispatch`]), which records it and reports it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Farm;
use crate::exec::commands::{Annotation, AnnotationLevel};
use crate::exec::host::{HostTarget, InfraFailure};
use crate::exec::job::{run_job, CheckoutSource, Conclusion, JobDefinition, JobOutcome, RunnerEvent};
use crate::exec::keys::{fingerprint, parse_public_key};
use crate::exec::ssh::{HostKeyPolicy, Session, SshOptions};
use crate::store::{JobToRun, NeededJob, StepState, StoreError};
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::expr::Value;
use crate::workflow::load::{load, LoadOptions};

/// A job's runner ended: how, and on which host.
#[derive(Debug)]
pub struct Finished {
    pub job: i64,
    pub host: String,
    pub outcome: JobOutcome,
}

/// The jobs this process runs, each with the token that cancels it.
#[derive(Debug, Default)]
pub struct RunningJobs {
    tokens: Mutex<HashMap<i64, CancellationToken>>,
}

impl RunningJobs {
    /// Whether this process runs `job`.
    pub fn contains(&self, job: i64) -> bool {
        self.tokens.lock().expect("running jobs").contains_key(&job)
    }

    /// Asks the runner of `job` to stop it; false when this process does not run it.
    pub fn cancel(&self, job: i64) -> bool {
        match self.tokens.lock().expect("running jobs").get(&job) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn insert(&self, job: i64) -> CancellationToken {
        let token = CancellationToken::new();
        self.tokens.lock().expect("running jobs").insert(job, token.clone());
        token
    }

    fn remove(&self, job: i64) {
        self.tokens.lock().expect("running jobs").remove(&job);
    }
}

/// Starts the runner of `job` on `host`; its end arrives on `finished`.
pub fn spawn(farm: Arc<Farm>, job: i64, host: String, finished: mpsc::UnboundedSender<Finished>) {
    let cancel = farm.running.insert(job);
    let span = tracing::info_span!("job", job, %host);
    tokio::spawn(
        async move {
            let outcome = match run(&farm, job, &host, cancel).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::error!(%err, "the job could not be run");
                    setup_failure(&err)
                }
            };
            farm.running.remove(job);
            tracing::info!(
                conclusion = outcome.conclusion.as_str(),
                infra = outcome.infra.is_some(),
                "job ended"
            );
            let _ = finished.send(Finished { job, host, outcome });
        }
        .instrument(span),
    );
}

/// Learns and pins the SSH key of a host that has none pinned yet (a host just added),
/// in the background; a host that does not answer now gets its key pinned at its
/// first job instead.
pub fn learn_host_key(farm: Arc<Farm>, name: String) {
    let span = tracing::info_span!("learn host key", host = %name);
    tokio::spawn(
        async move {
            match learn(&farm, &name).await {
                Ok(Some(fingerprint)) => tracing::info!(%fingerprint, "pinned the host's SSH key"),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(%err, "cannot learn the host's SSH key now; it is pinned at its first job")
                }
            }
        }
        .instrument(span),
    );
}

async fn learn(farm: &Farm, name: &str) -> Result<Option<String>, RunError> {
    if farm.store.host_key(name).await?.is_some() {
        return Ok(None);
    }
    let host = farm.inventory.get(name).await.map_err(|e| RunError::Host(e.to_string()))?;
    let key = farm.ssh_key().await.map_err(|e| RunError::Host(e.to_string()))?;
    let options = SshOptions::from_config(&farm.config.ssh, key);
    let session = Session::connect(&host.address, host.port, &options, HostKeyPolicy::TrustOnFirstUse)
        .await
        .map_err(|e| RunError::Host(e.to_string()))?;
    let offered = session.host_key().to_owned();
    session.close().await;
    if !farm.store.pin_first_host_key(name, &offered).await? {
        return Ok(None);
    }
    let fingerprint = parse_public_key(&offered).map(|k| fingerprint(&k)).unwrap_or_default();
    Ok(Some(fingerprint))
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job {0} is not in the store")]
    NoJob(i64),
    #[error("{0}")]
    Host(String),
    #[error("{0}")]
    Job(String),
}

/// Why a job could not even start, as an outcome: the store or the host are the
/// farm's trouble (retried elsewhere); a broken definition is the job's.
fn setup_failure(err: &RunError) -> JobOutcome {
    let (infra, message) = match err {
        RunError::Job(message) => (None, message.clone()),
        other => (Some(InfraFailure::new(other.to_string())), other.to_string()),
    };
    JobOutcome {
        conclusion: Conclusion::Failure,
        steps: Vec::new(),
        outputs: IndexMap::new(),
        annotations: vec![Annotation::new(AnnotationLevel::Error, message)],
        summary: String::new(),
        infra,
        host_key: None,
        artifacts: Vec::new(),
        host_unfit: None,
        farm_failure: None,
    }
}

async fn run(
    farm: &Arc<Farm>,
    job_id: i64,
    host_name: &str,
    cancel: CancellationToken,
) -> Result<JobOutcome, RunError> {
    let job = farm.store.job_to_run(job_id).await?.ok_or(RunError::NoJob(job_id))?;
    let host = farm.inventory.get(host_name).await.map_err(|e| RunError::Host(e.to_string()))?;
    let pinned = farm.store.host_key(host_name).await?;
    let needed = farm.store.needed_jobs(job.run_id, &job.needs).await?;
    let mut definition = definition(farm, &job, &needed)?;
    if let Some(token) = clone_token(farm, &job, &definition).await {
        definition.masked.push(token.clone());
        if let Some(checkout) = &mut definition.checkout {
            checkout.token = Some(token);
        }
    }
    definition.provisioning = farm.host_provisioning(&host);
    let target = host_target(farm, &host, pinned).await.map_err(|e| RunError::Host(e.to_string()))?;
    let mut log =
        farm.logs.open(job_id).map_err(|e| RunError::Host(format!("cannot open the job's log: {e}")))?;
    let (events, mut heard) = mpsc::channel(64);
    let store = farm.store.clone();
    let inventory = farm.inventory.clone();
    let host_for_key = host_name.to_owned();
    // The observer: log lines to the file at once, steps and learned keys to the store.
    let observer = tokio::spawn(async move {
        while let Some(event) = heard.recv().await {
            match event {
                RunnerEvent::Log(lines) => {
                    let written: Result<(), _> = lines.iter().try_for_each(|line| log.append(line));
                    if let Err(err) = written.and_then(|()| log.flush()) {
                        tracing::warn!(%err, "cannot write the job's log");
                    }
                }
                RunnerEvent::StepStarted { number, name } => {
                    let state = StepState {
                        number,
                        name: &name,
                        status: "in_progress",
                        outcome: None,
                        conclusion: None,
                    };
                    record_step(&store, job_id, &state).await;
                }
                RunnerEvent::StepCompleted { number, name, outcome, conclusion } => {
                    let state = StepState {
                        number,
                        name: &name,
                        status: "completed",
                        outcome: Some(outcome.as_str()),
                        conclusion: Some(conclusion.as_str()),
                    };
                    record_step(&store, job_id, &state).await;
                }
                RunnerEvent::HostKeyLearned(key) => match store.pin_first_host_key(&host_for_key, &key).await
                {
                    Ok(true) => {
                        tracing::info!(host = %host_for_key, "pinned the host's SSH key at first contact")
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%err, "cannot pin the host's SSH key"),
                },
                RunnerEvent::HostReinstalled { host_key, note } => {
                    // The only way a host's pinned key changes: its reinstall announced it.
                    match pin_host_key(&store, &host_for_key, &host_key).await {
                        Ok(()) => tracing::info!(host = %host_for_key, "{note}; pinned its new SSH key"),
                        Err(err) => tracing::warn!(%err, "cannot pin the reinstalled host's SSH key"),
                    }
                    if let Err(err) = inventory.note(&host_for_key, &format!("job {job_id}: {note}")).await {
                        tracing::warn!(%err, "cannot write the reinstall in the host's history");
                    }
                }
            }
        }
        if let Err(err) = log.flush() {
            tracing::warn!(%err, "cannot write the job's log");
        }
    });
    let outcome = run_job(&definition, &target, events, cancel).await;
    let _ = observer.await;
    Ok(outcome)
}

/// How the runner reaches `host`: the farm's key, the key pinned for the host (or
/// trust on first use when none is).
pub(super) async fn host_target(
    farm: &Farm,
    host: &super::hosts::Host,
    pinned: Option<String>,
) -> Result<HostTarget, crate::exec::keys::KeyError> {
    let key = farm.ssh_key().await?;
    Ok(HostTarget {
        name: host.name.clone(),
        address: host.address.clone(),
        port: host.port,
        arch: match host.arch {
            crate::config::Arch::Arm64 => "ARM64".into(),
            _ => "X64".into(),
        },
        ssh: SshOptions::from_config(&farm.config.ssh, key),
        host_key: pinned.map_or(HostKeyPolicy::TrustOnFirstUse, HostKeyPolicy::Pinned),
        reconnect_grace: farm.config.ssh.reconnect_grace,
    })
}

/// Pins `key` for `host` in place of the one before (after a reinstall).
pub(super) async fn pin_host_key(
    store: &crate::store::Store,
    host: &str,
    key: &str,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.pin_host_key(host, key).await?;
    tx.commit().await
}

async fn record_step(store: &crate::store::Store, job_id: i64, state: &StepState<'_>) {
    let result = async {
        let mut tx = store.begin().await?;
        tx.record_step(job_id, state).await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(%err, step = state.number, "cannot record the step's state");
    }
}

/// The job as the runner needs it: the workflow as it was when the run started, the
/// contexts of its expressions, what to mask, where to clone from.
fn definition(farm: &Farm, job: &JobToRun, needed: &[NeededJob]) -> Result<JobDefinition, RunError> {
    let Some(source) = &job.workflow_source else {
        return Err(RunError::Job("the run was recorded without its workflow text; re-run it".into()));
    };
    let loaded = load(source, &LoadOptions::default());
    let workflow = loaded.workflow.ok_or_else(|| {
        RunError::Job(format!(
            "the workflow no longer loads: {}",
            loaded.diagnostics.first().map(|d| d.to_string()).unwrap_or_default()
        ))
    })?;
    let payload: serde_json::Value = job
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    let event = Event::new(job.event.clone(), payload);
    let info = RunInfo {
        run_id: job.run_id.to_string(),
        run_number: job.run_number.to_string(),
        run_attempt: job.run_attempt.to_string(),
        sha: Some(job.head_sha.clone()),
        ..RunInfo::default()
    };
    let mut definition = JobDefinition::new(Arc::new(workflow), &job.job_key, &event, &info, &job.workflow);
    let contexts = &mut definition.contexts;
    contexts.insert("matrix".to_owned(), job.matrix.as_ref().map_or(Value::Null, Value::from_json));
    contexts.insert("needs".to_owned(), needs_context(needed));
    let repo = farm.config.repos.iter().find(|r| r.name.eq_ignore_ascii_case(&job.repo));
    if let Some(repo) = repo {
        let vars = repo.vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        contexts.insert("vars".to_owned(), Value::Object(vars));
    }
    // A fork's runs never see secrets, as on GitHub.
    if let Some(path) = repo.and_then(|r| r.secrets_file.as_ref()).filter(|_| !job.fork) {
        definition.set_secrets(read_secrets(path)?);
    }
    let checkout = definition.checkout.get_or_insert_with(|| CheckoutSource {
        clone_url: format!("https://github.com/{}.git", job.repo),
        token: None,
        sha: String::new(),
        git_ref: String::new(),
    });
    checkout.sha = job.head_sha.clone();
    checkout.git_ref = job.git_ref.clone();
    definition.artifacts_dir = Some(artifacts_dir(farm, job.run_id));
    definition.artifact_limit = farm.config.server.artifact_limit;
    Ok(definition)
}

/// The installation's token when the repository is private and the farm is a GitHub
/// App there: `actions/checkout` clones with it. A fork's run gets none.
async fn clone_token(farm: &Farm, job: &JobToRun, definition: &JobDefinition) -> Option<String> {
    let private = serde_json::from_str::<serde_json::Value>(&definition.event_payload)
        .ok()?
        .pointer("/repository/private")?
        .as_bool()?;
    let (app, installation) = (farm.forge.as_ref()?, job.installation_id?);
    if !private || job.fork {
        return None;
    }
    match app.installation_token(installation).await {
        Ok(token) => Some(token),
        Err(err) => {
            tracing::warn!(%err, "no token to clone the private repository with");
            None
        }
    }
}

/// Where a run's artifacts are kept: `<data_dir>/artifacts/<run id>/<name>/…`.
pub fn artifacts_dir(farm: &Farm, run_id: i64) -> PathBuf {
    farm.config.server.data_dir.join("artifacts").join(run_id.to_string())
}

/// `needs.<id>`: each needed job's result and outputs; a matrix's jobs together (any
/// failure fails it, GitHub's rule), their outputs merged in order.
pub fn needs_context(needed: &[NeededJob]) -> Value {
    let mut by_key: IndexMap<String, (Vec<String>, IndexMap<String, Value>)> = IndexMap::new();
    for job in needed {
        let entry = by_key.entry(job.job_key.clone()).or_default();
        entry.0.push(job.conclusion.clone().unwrap_or_default());
        for (k, v) in &job.outputs {
            entry.1.insert(k.clone(), Value::from_json(v));
        }
    }
    let mut needs = IndexMap::new();
    for (key, (conclusions, outputs)) in by_key {
        let has = |c: &str| conclusions.iter().any(|x| x == c);
        let result = if has("failure") {
            "failure"
        } else if has("cancelled") {
            "cancelled"
        } else if conclusions.iter().all(|c| c == "skipped") {
            "skipped"
        } else {
            "success"
        };
        needs.insert(
            key,
            Value::Object(IndexMap::from([
                ("result".to_owned(), Value::String(result.into())),
                ("outputs".to_owned(), Value::Object(outputs)),
            ])),
        );
    }
    Value::Object(needs)
}

/// A repository's secrets file.
fn read_secrets(path: &std::path::Path) -> Result<IndexMap<String, String>, RunError> {
    crate::config::read_secrets_file(path).map_err(RunError::Host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_fails_its_dependents_needs_when_one_combination_fails() {
        let job = |conclusion: &str, outputs: serde_json::Value| NeededJob {
            job_key: "build".into(),
            conclusion: Some(conclusion.into()),
            outputs: outputs.as_object().cloned().unwrap_or_default(),
        };
        let needs = needs_context(&[
            job("success", serde_json::json!({"a": "1"})),
            job("failure", serde_json::json!({"b": "2"})),
        ]);
        let build = needs.get("build").unwrap();
        assert_eq!(build.get("result"), Some(&Value::String("failure".into())));
        assert_eq!(build.get("outputs").and_then(|o| o.get("b")), Some(&Value::String("2".into())));
        let skipped = needs_context(&[job("skipped", serde_json::json!({}))]);
        assert_eq!(
            skipped.get("build").and_then(|b| b.get("result")),
            Some(&Value::String("skipped".into()))
        );
    }
}
