//! `metalfarm job list|show|logs|cancel`: the jobs of the farm's runs, through the server's
//! REST API (`--server`, token from `METALFARM_TOKEN`).

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Subcommand;
use hyper::Method;

use super::client::{json_text, run_command, segment, table, ApiArgs, ApiClient, ClientError};
use super::terminal::{for_terminal, stdout_is_terminal};
use crate::web::api::jobs::JobView;

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs with this status (waiting, queued, in_progress, completed).
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// Only the jobs of this run.
        #[arg(long, value_name = "ID")]
        run: Option<i64>,
        /// Only jobs on this host.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Only jobs whose `runs-on` has this label.
        #[arg(long, value_name = "L")]
        label: Option<String>,
        /// At most this many (default 50, at most 500).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// One job: its state, host, steps and check run.
    Show {
        /// The job's id.
        id: i64,
    },
    /// Print a job's log: `<UTC time> <line>`, secrets masked.
    Logs {
        /// The job's id.
        id: i64,
        /// Keep printing new lines as the job writes them, until it completes.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a queued or running job (a running one stops, then concludes cancelled).
    Cancel {
        /// The job's id.
        id: i64,
    },
}

pub fn run(args: JobArgs) -> ExitCode {
    let verb = match &args.command {
        JobCommand::List { .. } => "job list",
        JobCommand::Show { .. } => "job show",
        JobCommand::Logs { .. } => "job logs",
        JobCommand::Cancel { .. } => "job cancel",
    };
    run_command(verb, job(args))
}

async fn job(args: JobArgs) -> Result<String, ClientError> {
    let client = ApiClient::new(&args.api)?;
    let json = args.api.json;
    match args.command {
        JobCommand::List { status, run, host, label, limit } => {
            let mut query = Vec::new();
            if let Some(status) = status {
                query.push(format!("status={}", segment(&status)));
            }
            if let Some(run) = run {
                query.push(format!("run={run}"));
            }
            if let Some(host) = host {
                query.push(format!("host={}", segment(&host)));
            }
            if let Some(label) = label {
                query.push(format!("label={}", segment(&label)));
            }
            if let Some(limit) = limit {
                query.push(format!("limit={limit}"));
            }
            let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            let jobs: Vec<JobView> = client.get(&format!("/jobs{query}")).await?;
            Ok(if json { json_text(&jobs) } else { list_table(&jobs) })
        }
        JobCommand::Show { id } => {
            let job: JobView = client.get(&format!("/jobs/{id}")).await?;
            Ok(if json { json_text(&job) } else { show_text(&job) })
        }
        JobCommand::Logs { id, follow: false } => {
            let log = client.get_text(&format!("/jobs/{id}/log")).await?;
            Ok(if stdout_is_terminal() { for_terminal(&log).into_owned() } else { log })
        }
        JobCommand::Logs { id, follow: true } => {
            follow_log(&client, id).await?;
            Ok(String::new())
        }
        JobCommand::Cancel { id } => {
            let job: JobView =
                client.send(Method::POST, &format!("/jobs/{id}/cancel"), &serde_json::json!({})).await?;
            Ok(if json {
                json_text(&job)
            } else if job.status == "completed" {
                format!("cancelled job {} ({})\n", job.id, job.name)
            } else {
                format!(
                    "cancelling job {} ({}) on {}: it concludes cancelled once stopped\n",
                    job.id,
                    job.name,
                    job.host.as_deref().unwrap_or("its host")
                )
            })
        }
    }
}

/// Prints a job's log as the server streams it, until the job's end.
async fn follow_log(client: &ApiClient, id: i64) -> Result<(), ClientError> {
    let terminal = stdout_is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut write_failed = None;
    client
        .follow_events(&format!("/jobs/{id}/log?follow=true"), |event| {
            if event.name == "end" {
                return ControlFlow::Break(());
            }
            // Flushed per line: a person (or a pipe) watching sees each line as it comes.
            let line = if terminal { for_terminal(&event.data) } else { event.data.as_str().into() };
            match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    write_failed = Some(err);
                    ControlFlow::Break(())
                }
            }
        })
        .await?;
    match write_failed {
        // A closed pipe (`| head`) is the reader saying it has seen enough.
        Some(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ClientError::Usage(format!("cannot write the log: {err}")))
        }
        _ => Ok(()),
    }
}

/// A job's status and conclusion in one word or two: `queued`, `completed: failure`.
pub(super) fn status_text(job: &JobView) -> String {
    match &job.conclusion {
        Some(conclusion) => format!("{}: {conclusion}", job.status),
        None => job.status.clone(),
    }
}

fn jobs_table(jobs: &[JobView]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.run_id.to_string(),
                j.name.clone(),
                status_text(j),
                j.host.clone().unwrap_or_else(|| "-".into()),
                j.runs_on.join(", "),
                j.waiting_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ID", "RUN", "JOB", "STATUS", "HOST", "RUNS-ON", "WAITING FOR"], &rows)
}

fn list_table(jobs: &[JobView]) -> String {
    if jobs.is_empty() {
        return "no jobs\n".into();
    }
    jobs_table(jobs)
}

fn show_text(job: &JobView) -> String {
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let mut fields = vec![
        ("id", job.id.to_string()),
        ("run", job.run_id.to_string()),
        (
            "job",
            if job.name == job.job_key {
                job.name.clone()
            } else {
                format!("{} ({})", job.name, job.job_key)
            },
        ),
        ("status", status_text(job)),
        ("runs-on", job.runs_on.join(", ")),
        ("needs", if job.needs.is_empty() { "-".into() } else { job.needs.join(", ") }),
        ("host", or_dash(job.host.as_deref())),
    ];
    if let Some(matrix) = &job.matrix {
        fields.push(("matrix", matrix.to_string()));
    }
    if let Some(reason) = &job.waiting_reason {
        fields.push(("waiting", reason.clone()));
    }
    fields.push(("created", job.created_at.clone()));
    fields.push(("started", or_dash(job.started_at.as_deref())));
    fields.push(("completed", or_dash(job.completed_at.as_deref())));
    if let Some(check) = &job.check_run {
        let mut text = match (&check.status, &check.conclusion) {
            (Some(status), Some(conclusion)) => format!("{status}: {conclusion}"),
            (Some(status), None) => status.clone(),
            _ => "-".into(),
        };
        if let Some(title) = &check.title {
            text.push_str(&format!(" ({title})"));
        }
        fields.push(("check run", text));
    }
    let mut out = String::new();
    for (key, value) in fields {
        out.push_str(&format!("{key:<13}{value}\n"));
    }
    if let Some(steps) = job.steps.as_ref().filter(|s| !s.is_empty()) {
        out.push_str("\nsteps\n");
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                vec![
                    s.number.to_string(),
                    s.name.clone(),
                    s.status.clone(),
                    s.conclusion.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(&["#", "NAME", "STATUS", "CONCLUSION"], &rows));
    }
    out
}
