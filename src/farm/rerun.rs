//! Re-runs: a new attempt of a run, as GitHub's "Re-run" does. The run keeps its number;
//! the attempt counts up; the workflow file is read again and planned anew for the event
//! that started the first attempt, so the new check runs show the file as it is now.

use serde_json::Value as Json;

use super::start::{start_runs_with, EventOrigin, Trust};
use super::workflows::farm_workflows;
use super::Farm;
use crate::store::{RunRow, StoreError, Tx};
use crate::workflow::event::Event;

/// Records the next attempt of `run`; returns the outcome text. The new attempt keeps
/// the event of the first (its delivery), as on GitHub.
pub async fn rerun(farm: &Farm, tx: &mut Tx, run: &RunRow) -> Result<String, StoreError> {
    rerun_with_priority(farm, tx, run, 0).await
}

/// [`rerun`], with the new attempt's priority (an admin may raise it).
pub async fn rerun_with_priority(
    farm: &Farm,
    tx: &mut Tx,
    run: &RunRow,
    priority: i32,
) -> Result<String, StoreError> {
    let Some(original) = run.delivery_id.as_deref() else {
        return Ok(format!("run {}: no event to re-run it from", run.id));
    };
    let Some(first) = farm.store.delivery(original).await? else {
        return Ok(format!("run {}: its event {original} is gone", run.id));
    };
    let payload: Json = match serde_json::from_str(&first.body) {
        Ok(payload) => payload,
        Err(err) => return Ok(format!("run {}: its event is unreadable: {err}", run.id)),
    };
    let files: Vec<_> =
        farm_workflows(&farm.config, &run.repo).into_iter().filter(|f| f.path == run.workflow).collect();
    if files.is_empty() {
        return Ok(format!("run {}: {} is no longer a workflow of {}", run.id, run.workflow, run.repo));
    }
    let origin = EventOrigin {
        repo: &run.repo,
        installation_id: run.installation_id,
        delivery_id: Some(original),
        check_sha: &run.head_sha,
        attempt_of: Some(run.run_number),
        priority,
    };
    // A fork's run stays a fork's run: no secrets, and still waiting if never approved.
    let trust = Trust { fork: run.fork, approval: run.approval };
    let started = start_runs_with(tx, &Event::new(first.event, payload), &origin, &files, trust).await?;
    Ok(format!("re-run of run {} (#{}): {}", run.id, run.run_number, started.describe()))
}
