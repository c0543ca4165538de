//! From an event to recorded runs: which workflows it triggers, their plans, the jobs
//! and the check runs, all in the caller's transaction.
//!
//! A workflow file that does not load still shows up: one completed check run with
//! conclusion `failure`, the errors in its summary and an annotation on each line, as
//! GitHub shows "Invalid workflow file".
//!
//! A fork's runs that need approval are recorded all the same, but their jobs wait and
//! their check runs ask for a maintainer's "Approve and run", as GitHub Actions does
//! for a first-time contributor.

use crate::store::{
    Annotation, Approval, CheckRunState, JobStatus, NewJob, NewRun, RequestedAction, StoreError, Tx,
};
use crate::workflow::event::{Event, RunInfo};
use crate::workflow::load::{load, LoadOptions};
use crate::workflow::plan::{plan, MatrixPlan, PlanOptions};
use crate::workflow::triggers::{triggers, TriggerContext};

use super::workflows::WorkflowFile;

/// What the forge delivery says about where the runs belong.
#[derive(Debug, Clone)]
pub struct EventOrigin<'a> {
    pub repo: &'a str,
    pub installation_id: Option<i64>,
    pub delivery_id: Option<&'a str>,
    /// The commit the check runs attach to (a pull request's head, not its merge commit).
    pub check_sha: &'a str,
    /// For a re-run: the run number whose next attempt this is.
    pub attempt_of: Option<i64>,
    /// The runs' priority: higher runs first; 0 unless an admin asked for more.
    pub priority: i32,
}

/// How far the farm trusts the runs an event starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trust {
    /// From a fork: its runs never get secrets.
    pub fork: bool,
    /// [`Approval::Required`]: the jobs wait and the check runs ask for approval.
    pub approval: Approval,
}

/// The identifier of the "Approve and run" button.
pub const APPROVE_ACTION: &str = "approve";

/// What one event did: for the delivery's outcome and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Started {
    pub runs: usize,
    pub jobs: usize,
    pub invalid_files: usize,
}

impl Started {
    pub fn describe(&self) -> String {
        format!("{} run(s), {} job(s), {} invalid workflow file(s)", self.runs, self.jobs, self.invalid_files)
    }
}

/// Records the runs `event` starts among `files`, fully trusted.
pub async fn start_runs(
    tx: &mut Tx,
    event: &Event,
    origin: &EventOrigin<'_>,
    files: &[WorkflowFile],
) -> Result<Started, StoreError> {
    start_runs_with(tx, event, origin, files, Trust::default()).await
}

/// Records the runs `event` starts among `files`, trusted as `trust` says.
pub async fn start_runs_with(
    tx: &mut Tx,
    event: &Event,
    origin: &EventOrigin<'_>,
    files: &[WorkflowFile],
    trust: Trust,
) -> Result<Started, StoreError> {
    let mut started = Started::default();
    let (run_sha, git_ref) = run_commit(event, origin);
    for file in files {
        let loaded = load(&file.text, &LoadOptions { syntax_only: false });
        let Some(workflow) = loaded.workflow.filter(|_| loaded.diagnostics.is_empty()) else {
            // GitHub reports a broken file on the events that would have read it.
            if matches!(event.name.as_str(), "push" | "pull_request") {
                record_invalid_file(tx, event, origin, trust, file, &loaded.diagnostics).await?;
                started.invalid_files += 1;
            }
            continue;
        };
        let trigger = match triggers(
            &workflow,
            event,
            &TriggerContext { workflow_path: &file.path, changed_files: None },
        ) {
            Ok(Some(trigger)) => trigger,
            Ok(None) => continue,
            Err(err) => {
                let diagnostic = crate::workflow::diag::Diagnostic::new(err.pos, err.error.to_string());
                record_invalid_file(tx, event, origin, trust, file, &[diagnostic]).await?;
                started.invalid_files += 1;
                continue;
            }
        };
        let workflow_name = workflow.name.as_ref().map_or(file.path.clone(), |n| n.value.clone());
        let ids = tx
            .insert_run(&NewRun {
                repo: origin.repo,
                workflow: &file.path,
                workflow_name: &workflow_name,
                event: &trigger.event,
                delivery_id: origin.delivery_id,
                installation_id: origin.installation_id,
                head_sha: &run_sha,
                check_sha: origin.check_sha,
                git_ref: &git_ref,
                attempt_of: origin.attempt_of,
                fork: trust.fork,
                approval: trust.approval,
                priority: origin.priority,
                workflow_source: &file.text,
            })
            .await?;
        started.runs += 1;
        let options = PlanOptions {
            path: file.path.clone(),
            run: RunInfo {
                run_id: ids.run_id.to_string(),
                run_number: ids.run_number.to_string(),
                run_attempt: ids.run_attempt.to_string(),
                sha: Some(run_sha.clone()),
                ..RunInfo::default()
            },
            vars: Default::default(),
        };
        let planned = match plan(&workflow, event, &options) {
            Ok(planned) => planned,
            Err(err) => {
                // GitHub fails such a run before any job starts.
                tx.finish_run_setup(ids.run_id, &workflow_name, Some("failure")).await?;
                let diagnostic = crate::workflow::diag::Diagnostic::new(err.pos, err.message);
                let state = invalid_state(&workflow_name, origin.check_sha, file, &[diagnostic]);
                tx.insert_check_run(ids.run_id, None, origin.repo, origin.installation_id, &state).await?;
                continue;
            }
        };
        tx.finish_run_setup(ids.run_id, &planned.run_name, None).await?;
        if let Some(concurrency) = &planned.concurrency {
            tx.set_run_concurrency(ids.run_id, &concurrency.group, concurrency.cancels_in_progress()).await?;
        }
        let awaiting_approval = trust.approval == Approval::Required;
        for job in &planned.jobs {
            let matrix = match &job.matrix {
                MatrixPlan::None => None,
                MatrixPlan::Combination(c) => Some(crate::workflow::expr::Value::Object(c.clone()).to_json()),
                MatrixPlan::Deferred(text) => Some(serde_json::Value::String(text.clone())),
            };
            let job_id = tx
                .insert_job(
                    ids.run_id,
                    &NewJob {
                        job_key: &job.id,
                        name: &job.name,
                        runs_on: &job.runs_on,
                        needs: &job.needs,
                        matrix: matrix.as_ref(),
                        condition: &job.if_,
                        concurrency: job.concurrency.as_ref().map(|c| c.group.as_str()),
                        status: if awaiting_approval { JobStatus::Waiting } else { JobStatus::Queued },
                        cancel_in_progress: job.concurrency.as_ref().is_some_and(|c| c.cancels_in_progress()),
                        strategy: job.strategy,
                    },
                )
                .await?;
            let name = format!("{} / {}", planned.name, job.name);
            let state = if awaiting_approval {
                awaiting_approval_state(name, origin.check_sha.to_owned())
            } else {
                queued_state(name, origin.check_sha.to_owned(), &job.runs_on, &job.needs)
            };
            tx.insert_check_run(ids.run_id, Some(job_id), origin.repo, origin.installation_id, &state)
                .await?;
            started.jobs += 1;
        }
    }
    Ok(started)
}

/// A job's check run while it waits for a host.
pub(crate) fn queued_state(
    name: String,
    head_sha: String,
    labels: &[String],
    needs: &[String],
) -> CheckRunState {
    let mut summary = format!("Waiting for a host with labels [{}].", labels.join(", "));
    if !needs.is_empty() {
        summary.push_str(&format!("\n\nRuns after: {}.", needs.join(", ")));
    }
    CheckRunState {
        name,
        head_sha,
        status: "queued".into(),
        conclusion: None,
        title: "Queued".into(),
        summary,
        annotations: Vec::new(),
        actions: Vec::new(),
    }
}

/// A job's check run while its run waits for a maintainer: completed as
/// `action_required`, with the button that approves it.
fn awaiting_approval_state(name: String, head_sha: String) -> CheckRunState {
    CheckRunState {
        name,
        head_sha,
        status: "completed".into(),
        conclusion: Some("action_required".into()),
        title: "Waiting for approval".into(),
        summary: "This pull request comes from a fork, and its author does not have write access \
                  to the repository. Its jobs run on the farm's hosts only after someone with write \
                  access presses **Approve and run**. Fork runs never get secrets."
            .into(),
        annotations: Vec::new(),
        actions: vec![RequestedAction {
            label: "Approve and run".into(),
            description: "Run this fork's jobs on the farm".into(),
            identifier: APPROVE_ACTION.into(),
        }],
    }
}

/// The commit and ref a run is of (a pull request's merge commit, not its head).
fn run_commit(event: &Event, origin: &EventOrigin<'_>) -> (String, String) {
    let git_ref = event.git_ref().map(|r| r.full).unwrap_or_default();
    (event.sha().unwrap_or(origin.check_sha).to_owned(), git_ref)
}

async fn record_invalid_file(
    tx: &mut Tx,
    event: &Event,
    origin: &EventOrigin<'_>,
    trust: Trust,
    file: &WorkflowFile,
    diagnostics: &[crate::workflow::diag::Diagnostic],
) -> Result<(), StoreError> {
    let (run_sha, git_ref) = run_commit(event, origin);
    let ids = tx
        .insert_run(&NewRun {
            repo: origin.repo,
            workflow: &file.path,
            workflow_name: &file.path,
            event: &event.name,
            delivery_id: origin.delivery_id,
            installation_id: origin.installation_id,
            head_sha: &run_sha,
            check_sha: origin.check_sha,
            git_ref: &git_ref,
            attempt_of: origin.attempt_of,
            // Nothing of it runs, so there is nothing to approve.
            fork: trust.fork,
            approval: Approval::None,
            priority: origin.priority,
            workflow_source: &file.text,
        })
        .await?;
    tx.finish_run_setup(ids.run_id, &file.path, Some("failure")).await?;
    let state = invalid_state(&file.path, origin.check_sha, file, diagnostics);
    tx.insert_check_run(ids.run_id, None, origin.repo, origin.installation_id, &state).await?;
    Ok(())
}

/// The failed check run of a workflow that cannot run: every error in the summary and
/// as an annotation on its line.
fn invalid_state(
    name: &str,
    head_sha: &str,
    file: &WorkflowFile,
    diagnostics: &[crate::workflow::diag::Diagnostic],
) -> CheckRunState {
    let mut summary = format!("The workflow is not valid. `{}`:\n\n", file.path);
    for diagnostic in diagnostics {
        summary.push_str(&format!("- {}\n", diagnostic.render(&file.path)));
    }
    CheckRunState {
        name: name.to_owned(),
        head_sha: head_sha.to_owned(),
        status: "completed".into(),
        conclusion: Some("failure".into()),
        title: "Invalid workflow file".into(),
        summary,
        annotations: diagnostics
            .iter()
            .map(|d| Annotation {
                path: file.path.clone(),
                start_line: d.pos.line,
                end_line: d.pos.line,
                start_column: Some(d.pos.col),
                level: "failure".into(),
                message: d.message.clone(),
                title: Some("Invalid workflow file".into()),
            })
            .collect(),
        actions: Vec::new(),
    }
}
