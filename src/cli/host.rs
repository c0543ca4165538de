//! `metalfarm host add|list|show|lock|unlock|remove`: the inventory, through the
//! server's REST API (`--server`, token from `METALFARM_TOKEN`).

use std::process::ExitCode;

use clap::Subcommand;
use hyper::Method;

use super::client::{json_text, run_command, segment, table, ApiArgs, ApiClient, ClientError};
use crate::config::Arch;
use crate::farm::hosts::{HostSource, HostState};
use crate::web::api::hosts::{HostPatch, HostView, Lock, NewHost};

#[derive(Debug, clap::Args)]
pub struct HostArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: HostCommand,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Add a host to the inventory, ready for jobs.
    Add {
        /// The host's name (also its Cobbler system name, unless --cobbler-system says otherwise).
        name: String,
        /// Its labels (repeat the flag, or separate with commas); `self-hosted`, `linux`
        /// and the architecture are implicit.
        #[arg(long = "label", value_name = "L", num_args = 1.., value_delimiter = ',')]
        labels: Vec<String>,
        /// Its SSH address (default: the name).
        #[arg(long, value_name = "A")]
        address: Option<String>,
        /// Its SSH port (default: 22).
        #[arg(long, value_name = "P")]
        port: Option<u16>,
        /// Its system name in Cobbler (default: the name).
        #[arg(long, value_name = "S")]
        cobbler_system: Option<String>,
        /// Its architecture, also a label: x64 (default) or arm64.
        #[arg(long, value_name = "ARCH", value_parser = parse_arch)]
        arch: Option<Arch>,
    },
    /// List the hosts and their states.
    List {
        /// Only hosts with all these labels (repeat the flag, or separate with commas):
        /// where a job with this `runs-on` could run.
        #[arg(long = "label", value_name = "L", num_args = 1.., value_delimiter = ',')]
        labels: Vec<String>,
        /// Only hosts in this state (ready, leased, repairing, broken, maintenance).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// One host, with its history.
    Show {
        /// The host's name.
        name: String,
    },
    /// Lock a host for maintenance; a leased host finishes its job first.
    Lock {
        /// The host's name.
        name: String,
        /// Why, for the other admins and the history.
        #[arg(long, value_name = "R")]
        reason: String,
    },
    /// Return a broken host or one in maintenance to ready (or withdraw a pending lock).
    Unlock {
        /// The host's name.
        name: String,
    },
    /// Remove a host added through the API (hosts of the config file are removed there).
    Remove {
        /// The host's name.
        name: String,
    },
}

fn parse_arch(text: &str) -> Result<Arch, String> {
    match text {
        "x64" => Ok(Arch::X64),
        "arm64" => Ok(Arch::Arm64),
        other => Err(format!("`{other}` is not an architecture (x64 or arm64)")),
    }
}

pub fn run(args: HostArgs) -> ExitCode {
    let verb = match &args.command {
        HostCommand::Add { .. } => "host add",
        HostCommand::List { .. } => "host list",
        HostCommand::Show { .. } => "host show",
        HostCommand::Lock { .. } => "host lock",
        HostCommand::Unlock { .. } => "host unlock",
        HostCommand::Remove { .. } => "host remove",
    };
    run_command(verb, host(args))
}

async fn host(args: HostArgs) -> Result<String, ClientError> {
    let client = ApiClient::new(&args.api)?;
    let json = args.api.json;
    let path = |name: &str| format!("/hosts/{}", segment(name));
    match args.command {
        HostCommand::Add { name, labels, address, port, cobbler_system, arch } => {
            let new = NewHost { name, labels, address, port, cobbler_system, arch };
            let host: HostView = client.send(Method::POST, "/hosts", &new).await?;
            // Loud, on stderr, even with --json: a host the farm cannot reinstall.
            for warning in &host.warnings {
                eprintln!("WARNING: {warning}");
            }
            Ok(if json {
                json_text(&host)
            } else {
                format!("added host {} ({}; labels: {})\n", host.name, host.state, host.all_labels.join(", "))
            })
        }
        HostCommand::List { labels, state } => {
            let mut query = Vec::new();
            if !labels.is_empty() {
                query.push(format!("labels={}", segment(&labels.join(","))));
            }
            if let Some(state) = state {
                query.push(format!("state={}", segment(&state)));
            }
            let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            let hosts: Vec<HostView> = client.get(&format!("/hosts{query}")).await?;
            Ok(if json { json_text(&hosts) } else { list_table(&hosts) })
        }
        HostCommand::Show { name } => {
            let host: HostView = client.get(&path(&name)).await?;
            Ok(if json { json_text(&host) } else { show_text(&host) })
        }
        HostCommand::Lock { name, reason } => {
            let patch = HostPatch { lock: Some(Lock { reason }), ..HostPatch::default() };
            let host: HostView = client.send(Method::PATCH, &path(&name), &patch).await?;
            Ok(if json {
                json_text(&host)
            } else if let (Some(lock), Some(job)) = (&host.pending_lock, host.job_id) {
                format!(
                    "host {} is leased to job {job}: it goes to maintenance when the job ends ({lock})\n",
                    host.name
                )
            } else {
                format!("locked host {}: {} ({})\n", host.name, host.state, host.state_reason)
            })
        }
        HostCommand::Unlock { name } => {
            let patch = HostPatch { unlock: Some(true), ..HostPatch::default() };
            let host: HostView = client.send(Method::PATCH, &path(&name), &patch).await?;
            Ok(if json {
                json_text(&host)
            } else if host.state == HostState::Leased {
                format!(
                    "withdrew the pending lock of host {}; it stays leased to job {}\n",
                    host.name,
                    host.job_id.map_or("?".into(), |j| j.to_string())
                )
            } else {
                format!("unlocked host {}: {}\n", host.name, host.state)
            })
        }
        HostCommand::Remove { name } => {
            client.delete(&path(&name)).await?;
            Ok(if json {
                json_text(&serde_json::json!({ "removed": name }))
            } else {
                format!("removed host {name}\n")
            })
        }
    }
}

/// What a person should know about a host's state beyond its name.
fn note(host: &HostView) -> String {
    match (&host.pending_lock, host.state) {
        (Some(lock), _) => format!("maintenance after the job: {lock}"),
        (None, HostState::Ready | HostState::Leased) => String::new(),
        (None, _) => host.state_reason.clone(),
    }
}

fn list_table(hosts: &[HostView]) -> String {
    if hosts.is_empty() {
        return "no hosts in the inventory\n".into();
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.state.to_string(),
                h.arch.label().to_owned(),
                h.labels.join(", "),
                h.job_id.map_or("-".into(), |j| j.to_string()),
                note(h),
            ]
        })
        .collect();
    table(&["NAME", "STATE", "ARCH", "LABELS", "JOB", "NOTE"], &rows)
}

fn show_text(host: &HostView) -> String {
    let implicit: Vec<&str> = host
        .all_labels
        .iter()
        .map(String::as_str)
        .filter(|l| !host.labels.iter().any(|own| own == l))
        .collect();
    let mut state = host.state.to_string();
    if !host.state_reason.is_empty() {
        state = format!("{state}: {}", host.state_reason);
    }
    if let Some(lock) = &host.pending_lock {
        state = format!("{state} (maintenance after the job: {lock})");
    }
    let fields = [
        ("name", host.name.clone()),
        ("state", state),
        ("source", source_text(host.source).to_owned()),
        ("address", format!("{}:{}", host.address, host.port)),
        ("cobbler system", host.cobbler_system.clone()),
        ("arch", host.arch.label().to_owned()),
        (
            "labels",
            format!(
                "{} (and {})",
                if host.labels.is_empty() { "-".into() } else { host.labels.join(", ") },
                implicit.join(", ")
            ),
        ),
        (
            "job",
            host.job_id.map_or("-".into(), |j| {
                format!("{j} (lease until {})", host.lease_expires_at.as_deref().unwrap_or("?"))
            }),
        ),
        ("failures", format!("{} in a row", host.consecutive_failures)),
        ("updated", host.updated_at.clone()),
    ];
    let mut out = String::new();
    for (key, value) in fields {
        out.push_str(&format!("{key:<16}{value}\n"));
    }
    if let Some(history) = &host.history {
        out.push_str("\nhistory\n");
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|e| {
                vec![
                    e.at.clone(),
                    e.from.map_or("-".into(), |s| s.to_string()),
                    e.to.to_string(),
                    e.by.clone(),
                    e.reason.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["AT", "FROM", "TO", "BY", "REASON"], &rows));
    }
    out
}

fn source_text(source: HostSource) -> &'static str {
    match source {
        HostSource::Config => "config file",
        HostSource::Api => "added through the API",
    }
}
