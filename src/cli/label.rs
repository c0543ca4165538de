//! `metalfarm label list`: every label of the inventory with its hosts by state.

use std::process::ExitCode;

use clap::Subcommand;

use super::client::{json_text, run_command, table, ApiArgs, ApiClient, ClientError};
use crate::web::api::labels::LabelView;

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: LabelCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// List the labels (the implicit ones included) and how many hosts have each, by state.
    List,
}

pub fn run(args: LabelArgs) -> ExitCode {
    match args.command {
        LabelCommand::List => run_command("label list", list(args.api)),
    }
}

async fn list(api: ApiArgs) -> Result<String, ClientError> {
    let labels: Vec<LabelView> = ApiClient::new(&api)?.get("/labels").await?;
    if api.json {
        return Ok(json_text(&labels));
    }
    if labels.is_empty() {
        return Ok("no labels: the inventory has no hosts\n".into());
    }
    let rows: Vec<Vec<String>> = labels
        .iter()
        .map(|l| {
            let s = &l.by_state;
            let counts = [l.hosts, s.ready, s.leased, s.repairing, s.broken, s.maintenance];
            std::iter::once(l.label.clone()).chain(counts.iter().map(usize::to_string)).collect()
        })
        .collect();
    Ok(table(&["LABEL", "HOSTS", "READY", "LEASED", "REPAIRING", "BROKEN", "MAINTENANCE"], &rows))
}
