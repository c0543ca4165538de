//! Every real-world workflow of `../shared/corpus/realworld/` that loads is triggered
//! and planned for real webhook payloads (push to a branch and a tag, pull request
//! opened, manual dispatch, its own schedules): no filter, matrix or expression of
//! these files fails at plan time.

mod common;

use metalfarm::workflow::event::{Event, RunInfo};
use metalfarm::workflow::load::{load, LoadOptions};
use metalfarm::workflow::plan::{plan, MatrixPlan, PlanOptions};
use metalfarm::workflow::triggers::{triggers, TriggerContext};
use serde_json::json;

#[test]
fn realworld_workflows_plan_for_real_events() {
    let files = common::files_with_ext(&common::corpus_dir().join("realworld"), &[".yml", ".yaml"]);
    assert!(files.len() > 1500, "the realworld corpus has {} files", files.len());

    let push = common::webhook_examples("push");
    let branch_push = push
        .iter()
        .find(|p| p["ref"] == "refs/heads/master" && p["head_commit"].is_object())
        .unwrap()
        .clone();
    let tag_push =
        push.iter().find(|p| p["ref"] == "refs/tags/simple-tag" && p["created"] == true).unwrap().clone();
    let opened =
        common::webhook_examples("pull_request").into_iter().find(|p| p["action"] == "opened").unwrap();
    // The dispatch example names one file; without `workflow` it reaches every
    // dispatchable workflow.
    let mut dispatch = common::webhook_examples("workflow_dispatch").remove(0);
    dispatch.as_object_mut().unwrap().remove("workflow");
    let repository = branch_push["repository"].clone();

    let mut failures = Vec::new();
    let (mut planned_workflows, mut planned_jobs, mut expanded) = (0, 0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).expect("read corpus file");
        let Some(workflow) = load(&text, &LoadOptions { syntax_only: true }).workflow else {
            continue;
        };
        let mut events = vec![
            Event::new("push", branch_push.clone()),
            Event::new("push", tag_push.clone()),
            Event::new("pull_request", opened.clone()),
            Event::new("workflow_dispatch", dispatch.clone()),
        ];
        if let Some(schedule) = workflow.on.events.get("schedule") {
            for entry in &schedule.schedule {
                events.push(Event::new(
                    "schedule",
                    json!({"schedule": entry.cron.value, "repository": repository}),
                ));
            }
        }
        for event in &events {
            let cx = TriggerContext { workflow_path: &name, changed_files: None };
            let triggered = match triggers(&workflow, event, &cx) {
                Ok(t) => t,
                Err(e) => {
                    failures.push((name.clone(), event.name.clone(), e.to_string()));
                    continue;
                }
            };
            if triggered.is_none() {
                continue;
            }
            let opts = PlanOptions { path: name.clone(), run: RunInfo::default(), ..PlanOptions::default() };
            match plan(&workflow, event, &opts) {
                Ok(p) => {
                    failures.extend(p.errors().map(|e| (name.clone(), event.name.clone(), e.to_string())));
                    planned_workflows += 1;
                    planned_jobs += p.jobs.len();
                    expanded +=
                        p.jobs.iter().filter(|j| matches!(j.matrix, MatrixPlan::Combination(_))).count();
                }
                Err(e) => failures.push((name.clone(), event.name.clone(), e.to_string())),
            }
        }
    }
    let failures: Vec<String> = failures.iter().map(|(f, ev, msg)| format!("{f} [{ev}]: {msg}")).collect();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    eprintln!("planned {planned_workflows} workflow runs, {planned_jobs} jobs ({expanded} from matrices)");
    assert!(planned_workflows > 1000 && expanded > 1000, "{planned_workflows} runs, {expanded} matrix jobs");
}
