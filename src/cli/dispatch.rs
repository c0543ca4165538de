//! `metalfarm dispatch`: a manual run of a workflow (`workflow_dispatch`) through the
//! server's REST API; with `--wait`, follows its jobs until the run ends.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use hyper::Method;

use super::client::{json_text, run_command, ApiArgs, ApiClient, ClientError};
use super::job::status_text;
use super::run::started_text;
use crate::web::api::dispatch::DispatchRequest;
use crate::web::api::runs::RunView;

/// How often `--wait` asks the server.
const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct DispatchArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The repository, `owner/name`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: String,
    /// The workflow file (its path or file name); it must have `on: workflow_dispatch`.
    #[arg(long, value_name = "FILE")]
    pub workflow: String,
    /// The branch to run on, or a full ref (`refs/tags/v1` for a tag).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,
    /// An input of the workflow (repeat the flag for more).
    #[arg(long = "input", value_name = "K=V", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
    /// The runs' priority (higher runs first; default 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Follow the run: print each job's status change until the run ends; exit 0 when
    /// it succeeded, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
}

fn parse_input(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => Err(format!("`{text}`: give an input as NAME=VALUE")),
    }
}

pub fn run(args: DispatchArgs) -> ExitCode {
    run_command("dispatch", dispatch(args))
}

async fn dispatch(args: DispatchArgs) -> Result<String, ClientError> {
    let client = ApiClient::new(&args.api)?;
    let request = DispatchRequest {
        repo: args.repo,
        workflow: args.workflow,
        git_ref: args.git_ref,
        inputs: args.inputs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect(),
        priority: args.priority,
    };
    let runs: Vec<RunView> = client.send(Method::POST, "/dispatch", &request).await?;
    let started = if args.api.json {
        json_text(&runs)
    } else {
        runs.iter().map(|run| format!("started {}", started_text(run))).collect()
    };
    if !args.wait {
        return Ok(started);
    }
    // What was started is shown before the wait, not after it.
    print!("{started}");
    let _ = std::io::stdout().flush();
    let mut outcome = String::new();
    let mut failed = Vec::new();
    for run in &runs {
        let ended = follow(&client, run, args.api.json).await?;
        if !args.api.json {
            outcome.push_str(&format!("run {} ended: {}\n", ended.id, conclusion(&ended)));
        }
        if conclusion(&ended) != "success" {
            failed.push(format!("run {} ended {}", ended.id, conclusion(&ended)));
        }
    }
    if failed.is_empty() {
        Ok(outcome)
    } else {
        print!("{outcome}");
        Err(ClientError::Unsuccessful(failed.join("; ")))
    }
}

/// Polls `run` until it ends, printing each job's change of status (a JSON line per
/// change with `--json`); the run as it ended.
async fn follow(client: &ApiClient, run: &RunView, json: bool) -> Result<RunView, ClientError> {
    let mut seen: HashMap<i64, String> =
        run.jobs.iter().flatten().map(|job| (job.id, status_text(job))).collect();
    loop {
        let now: RunView = client.get(&format!("/runs/{}", run.id)).await?;
        for job in now.jobs.iter().flatten() {
            let status = status_text(job);
            let before = seen.insert(job.id, status.clone());
            if before.as_deref() == Some(status.as_str()) {
                continue;
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"run": now.id, "job": job.id, "name": job.name, "status": job.status,
                                       "conclusion": job.conclusion, "host": job.host})
                );
            } else {
                let host = job.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default();
                println!(
                    "job {} ({}): {} -> {status}{host}",
                    job.id,
                    job.name,
                    before.as_deref().unwrap_or("new")
                );
            }
            let _ = std::io::stdout().flush();
        }
        if ended(&now) {
            return Ok(now);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A run has ended when the server says so, or when every one of its jobs has.
fn ended(run: &RunView) -> bool {
    run.status == "completed"
        || run
            .jobs
            .as_ref()
            .is_some_and(|jobs| !jobs.is_empty() && jobs.iter().all(|j| j.status == "completed"))
}

/// A run's conclusion: the server's, or else GitHub's rule over its jobs (success when
/// every job succeeded or was skipped, else the first of failure, cancelled, …).
fn conclusion(run: &RunView) -> String {
    if let Some(conclusion) = &run.conclusion {
        return conclusion.clone();
    }
    let jobs = run.jobs.as_deref().unwrap_or_default();
    for bad in ["failure", "timed_out", "cancelled", "action_required"] {
        if jobs.iter().any(|j| j.conclusion.as_deref() == Some(bad)) {
            return bad.into();
        }
    }
    "success".into()
}
