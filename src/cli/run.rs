//! `metalfarm run rerun`: a new attempt of a finished run, through the server's REST
//! API (`--server`, token from `METALFARM_TOKEN`).

use std::process::ExitCode;

use clap::Subcommand;
use hyper::Method;

use super::client::{json_text, run_command, table, ApiArgs, ApiClient, ClientError};
use crate::web::api::runs::{RerunRequest, RunView};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: RunCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Re-run a finished run: its next attempt, from the workflow file as it is now.
    Rerun {
        /// The run's id.
        id: i64,
        /// The new attempt's priority (higher runs first; default 0).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        priority: Option<i32>,
    },
}

pub fn run(args: RunArgs) -> ExitCode {
    match args.command {
        RunCommand::Rerun { id, priority } => run_command("run rerun", rerun(args.api, id, priority)),
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
