//! `metalfarm provision HOST [--profile P] [--wait]`: an admin's reinstall of one host
//! through the server's REST API. The host goes to `repairing`; the farm's repair loop
//! reinstalls and checks it. With `--wait`, follows the host until it is `ready` again
//! (exit 0) or `broken` (exit 1), printing its history as it grows.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use hyper::Method;

use super::client::{json_text, run_command, segment, ApiArgs, ApiClient, ClientError};
use crate::farm::hosts::HostState;
use crate::web::api::hosts::HostView;
use crate::web::api::installs::ProvisionRequest;

/// How often `--wait` asks the server.
const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The host's name in the farm.
    pub host: String,
    /// The Cobbler profile to install (default: the server's `[cobbler] default_profile`).
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Follow the reinstall until the host is ready (exit 0) or broken (exit 1).
    #[arg(long)]
    pub wait: bool,
}

pub fn run(args: ProvisionArgs) -> ExitCode {
    run_command("provision", provision(args))
}

async fn provision(args: ProvisionArgs) -> Result<String, ClientError> {
    let client = ApiClient::new(&args.api)?;
    let path = format!("/hosts/{}", segment(&args.host));
    let request = ProvisionRequest { profile: args.profile };
    let host: HostView = client.send(Method::POST, &format!("{path}/provision"), &request).await?;
    let started = if args.api.json {
        json_text(&host)
    } else {
        format!("reinstalling host {}: {}\n", host.name, host.state_reason)
    };
    if !args.wait {
        return Ok(started);
    }
    print!("{started}");
    let _ = std::io::stdout().flush();
    let mut shown = history_len(&client, &path).await?;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let now: HostView = client.get(&path).await?;
        let history = now.history.clone().unwrap_or_default();
        for entry in history.iter().skip(shown) {
            if args.api.json {
                println!("{}", serde_json::to_string(entry).expect("history serialises"));
            } else {
                println!("{} {}: {}", entry.at, entry.to, entry.reason);
            }
        }
        let _ = std::io::stdout().flush();
        shown = shown.max(history.len());
        match now.state {
            HostState::Repairing => {}
            HostState::Ready => {
                return Ok(if args.api.json {
                    json_text(&now)
                } else {
                    format!("host {} is ready\n", now.name)
                })
            }
            other => {
                return Err(ClientError::Unsuccessful(format!(
                    "host {} is {other}: {}",
                    now.name, now.state_reason
                )))
            }
        }
    }
}

/// How many history entries the server shows now (the newest ones only are followed).
async fn history_len(client: &ApiClient, path: &str) -> Result<usize, ClientError> {
    let host: HostView = client.get(path).await?;
    Ok(host.history.map_or(0, |h| h.len()))
}
