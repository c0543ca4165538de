//! Local composite actions: `uses: ./path` names a directory of the workspace with an
//! `action.yml` (or `action.yaml`), read from the host. Its steps run as the job's own
//! steps do (the same scripts, file commands and masking), inside one step of the job,
//! with the action's `inputs`, its own `steps` context, `github.action_path` and
//! `GITHUB_ACTION_PATH`; its `outputs` become the step's outputs.

use indexmap::IndexMap;
use tokio::time::Instant;

use super::job::{error_annotation, ssh_failure, Conclusion, JobRun, StepEnd, StepError};
use super::ssh::SshError;
use crate::workflow::expr::{JobStatus, Value};
use crate::workflow::load::action_steps;
use crate::workflow::model::Step;
use crate::workflow::yaml::{self, Node};

/// How deep composite actions may call composite actions, as on GitHub.
const MAX_DEPTH: usize = 10;

/// What a composite action's steps see besides the job's: set while they run.
#[derive(Debug, Clone)]
pub(super) struct ActionScope {
    /// The `inputs` context: the step's `with`, then the inputs' defaults.
    pub inputs: Value,
    /// The action's directory on the host (`github.action_path`).
    pub path: String,
    /// The calling step's environment, under each inner step's own.
    pub env: IndexMap<String, String>,
    /// How many actions enclose this one.
    pub depth: usize,
    /// The next number for an inner step's files on the host (unique in the job).
    pub next_number: i64,
}

/// A parsed `action.yml` of `using: composite`.
struct CompositeAction {
    /// Inputs in the order written: name, default (an expression template), required.
    inputs: Vec<(String, Option<String>, bool)>,
    /// Output name and its `value` template.
    outputs: Vec<(String, String)>,
    steps: Vec<Step>,
}

/// Runs the local action `uses` (`./dir`) as step `number` of the job.
pub(super) async fn run_local(
    run: &mut JobRun<'_>,
    uses: &str,
    with: &IndexMap<String, String>,
    env: &IndexMap<String, String>,
    number: i64,
    deadline: Instant,
) -> Result<StepEnd, StepError> {
    let depth = run.action.as_ref().map_or(0, |scope| scope.depth + 1);
    if depth >= MAX_DEPTH {
        return Err(StepError::Failed(format!(
            "`{uses}`: composite actions may be nested at most {MAX_DEPTH} levels deep"
        )));
    }
    let relative = uses.trim_start_matches("./").trim_end_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return Err(StepError::Failed(format!("`{uses}`: a local action must be inside the workspace")));
    }
    let dir = if relative.is_empty() {
        run.dirs.workspace.clone()
    } else {
        format!("{}/{relative}", run.dirs.workspace)
    };
    let (file, text) = read_action_file(run, uses, &dir).await?;
    let action =
        parse_action(&text).map_err(|message| StepError::Failed(format!("{uses} ({file}): {message}")))?;
    run.log("##[endgroup]");
    run.flush().await;

    // `inputs`: what the step gave, then the defaults (evaluated now, as GitHub does).
    let mut inputs = IndexMap::new();
    for (name, default, required) in &action.inputs {
        let given = with.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let value = match (given, default) {
            (Some(value), _) => value,
            (None, Some(default)) => run.eval_string(default, env).map_err(|message| {
                StepError::Failed(format!("{uses}: the default of input `{name}`: {message}"))
            })?,
            (None, None) if *required => {
                return Err(StepError::Failed(format!("{uses}: Input required and not supplied: {name}")));
            }
            (None, None) => String::new(),
        };
        inputs.insert(name.clone(), Value::String(value));
    }
    let unexpected: Vec<&str> = with
        .keys()
        .filter(|k| !action.inputs.iter().any(|(name, _, _)| name.eq_ignore_ascii_case(k)))
        .map(String::as_str)
        .collect();
    if !unexpected.is_empty() {
        let valid: Vec<&str> = action.inputs.iter().map(|(name, _, _)| name.as_str()).collect();
        run.log(&format!(
            "##[warning]Unexpected input(s) '{}', valid inputs are ['{}']",
            unexpected.join("', '"),
            valid.join("', '")
        ));
    }

    let mut scope_env = env.clone();
    scope_env.insert("GITHUB_ACTION_PATH".to_owned(), dir.clone());
    let next_number = run.action.as_ref().map_or(number * 1000, |outer| outer.next_number);
    let scope = ActionScope { inputs: Value::Object(inputs), path: dir, env: scope_env, depth, next_number };
    // The action's steps see their own `steps` and status; the job's come back after.
    let outer_scope = run.action.replace(scope);
    let outer_steps = std::mem::take(&mut run.steps);
    let outer_status = run.status;
    if run.status != JobStatus::Cancelled {
        run.status = JobStatus::Success;
    }
    let result = run_steps(run, &action.steps, deadline).await;
    let outputs = match &result {
        Ok(_) => action_outputs(run, &action.outputs),
        Err(_) => IndexMap::new(),
    };
    let inner = run.action.take().expect("the action's scope is set while it runs");
    run.action = outer_scope;
    if let Some(outer) = run.action.as_mut() {
        outer.next_number = inner.next_number;
    }
    run.steps = outer_steps;
    let inner_status = std::mem::replace(&mut run.status, outer_status);
    result?;
    let outcome = match inner_status {
        JobStatus::Success => Conclusion::Success,
        JobStatus::Failure => Conclusion::Failure,
        JobStatus::Cancelled => Conclusion::Cancelled,
    };
    Ok(StepEnd { outcome, outputs })
}

/// `action.yml`, else `action.yaml`, under `dir` on the host: its name and text.
async fn read_action_file(run: &JobRun<'_>, uses: &str, dir: &str) -> Result<(String, String), StepError> {
    for name in ["action.yml", "action.yaml"] {
        match run.host().session().read_file(&format!("{dir}/{name}")).await {
            Ok(bytes) => return Ok((name.to_owned(), String::from_utf8_lossy(&bytes).into_owned())),
            Err(SshError::NotFound { .. }) => {}
            Err(err) => return Err(ssh_failure(err)),
        }
    }
    Err(StepError::Failed(format!(
        "Can't find 'action.yml' or 'action.yaml' under '{dir}' for `{uses}`. \
         Did you forget to run actions/checkout before running your local action?"
    )))
}

/// The composite action in `text`, or why it cannot run here.
fn parse_action(text: &str) -> Result<CompositeAction, String> {
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => return Err("the file is empty".into()),
        Err(diagnostic) => return Err(diagnostic.to_string()),
    };
    let Some(runs) = root.get("runs") else {
        return Err("Required property is missing: runs".into());
    };
    let using = runs.get("using").map(Node::scalar_text).unwrap_or_default();
    match using.to_ascii_lowercase().as_str() {
        "composite" => {}
        "" => return Err("Required property is missing: runs.using".into()),
        "docker" => return Err("`using: docker` is not supported on this farm: only composite actions run on bare metal".into()),
        other if other.starts_with("node") => {
            return Err(format!(
                "`using: {using}` is not supported on this farm: JavaScript actions need the GitHub runner's node; only composite actions run here"
            ))
        }
        _ => return Err(format!("`using: {using}` is not supported on this farm: only `composite` is")),
    }
    let mut inputs = Vec::new();
    for (key, spec) in root.get("inputs").and_then(Node::as_map).unwrap_or_default() {
        let Some(name) = key.as_str() else { continue };
        let default = spec.get("default").filter(|d| !d.is_null()).map(Node::scalar_text);
        let required = spec.get("required").is_some_and(|r| r.scalar_text() == "true");
        inputs.push((name.to_owned(), default, required));
    }
    let mut outputs = Vec::new();
    for (key, spec) in root.get("outputs").and_then(Node::as_map).unwrap_or_default() {
        let Some(name) = key.as_str() else { continue };
        let Some(value) = spec.get("value") else {
            return Err(format!("output `{name}` of a composite action needs a `value`"));
        };
        outputs.push((name.to_owned(), value.scalar_text()));
    }
    let Some(steps_node) = runs.get("steps") else {
        return Err("Required property is missing: runs.steps".into());
    };
    let (steps, diagnostics) = action_steps(steps_node);
    if let Some(first) = diagnostics.first() {
        return Err(first.to_string());
    }
    for (index, step) in steps.iter().enumerate() {
        let at = format!("step {} (line {})", index + 1, step.pos.line);
        match (&step.run, &step.uses) {
            (Some(_), None) if step.shell.is_none() => {
                return Err(format!("{at}: Required property is missing: shell"));
            }
            (Some(_), None) | (None, Some(_)) => {}
            (Some(_), Some(_)) => return Err(format!("{at}: a step has either `run` or `uses`, not both")),
            (None, None) => return Err(format!("{at}: a step needs `run` or `uses`")),
        }
    }
    Ok(CompositeAction { inputs, outputs, steps })
}

/// The action's steps, in order, as the job runs its own: `if`, continue-on-error,
/// `steps.<id>` records. A host failure ends them at once.
async fn run_steps(run: &mut JobRun<'_>, steps: &[Step], deadline: Instant) -> Result<(), StepError> {
    for (index, step) in steps.iter().enumerate() {
        let number = {
            let scope = run.action.as_mut().expect("the action's scope is set while it runs");
            scope.next_number += 1;
            scope.next_number
        };
        let id = step.id.as_ref().map_or_else(|| format!("__run_{}", index + 1), |id| id.value.clone());
        let name = run.step_name(step, number);
        let run_it = match run.step_condition(step) {
            Ok(run_it) => run_it,
            Err(message) => {
                run.filter.annotate(error_annotation(&message));
                run.status = JobStatus::Failure;
                false
            }
        };
        if !run_it {
            run.steps.insert(id, step_record(IndexMap::new(), Conclusion::Skipped, Conclusion::Skipped));
            continue;
        }
        run.log(&format!("##[group]{name}"));
        let end = match Box::pin(run.run_step(step, number, deadline)).await {
            Ok(end) => end,
            Err(StepError::Failed(message)) => {
                run.filter.annotate(error_annotation(&message));
                StepEnd { outcome: Conclusion::Failure, outputs: IndexMap::new() }
            }
            Err(infra) => return Err(infra),
        };
        let continue_on_error = end.outcome == Conclusion::Failure && run.step_continues_on_error(step);
        let conclusion = if continue_on_error { Conclusion::Success } else { end.outcome };
        match conclusion {
            Conclusion::Failure if run.status == JobStatus::Success => run.status = JobStatus::Failure,
            Conclusion::Cancelled => run.status = JobStatus::Cancelled,
            _ => {}
        }
        run.steps.insert(id, step_record(end.outputs, end.outcome, conclusion));
        run.flush().await;
    }
    Ok(())
}

fn step_record(outputs: IndexMap<String, String>, outcome: Conclusion, conclusion: Conclusion) -> Value {
    let outputs = outputs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Value::Object(IndexMap::from([
        ("outputs".to_owned(), Value::Object(outputs)),
        ("outcome".to_owned(), Value::String(outcome.as_str().into())),
        ("conclusion".to_owned(), Value::String(conclusion.as_str().into())),
    ]))
}

/// The action's `outputs`, evaluated with its steps' results.
fn action_outputs(run: &mut JobRun<'_>, outputs: &[(String, String)]) -> IndexMap<String, String> {
    let env = run.action.as_ref().map(|scope| scope.env.clone()).unwrap_or_default();
    let mut values = IndexMap::new();
    for (name, template) in outputs {
        match run.eval_string(template, &env) {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(message) => {
                run.filter.annotate(error_annotation(&format!("output `{name}`: {message}")));
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_composite_action() {
        let action = parse_action(
            r#"
name: greet
inputs:
  who: {description: whom, required: true}
  greeting: {default: "Hello"}
outputs:
  said: {value: "${{ steps.say.outputs.text }}"}
runs:
  using: composite
  steps:
    - id: say
      shell: bash
      run: echo "text=${{ inputs.greeting }}" >> "$GITHUB_OUTPUT"
    - uses: ./other
"#,
        )
        .unwrap();
        assert_eq!(
            action.inputs,
            vec![("who".to_owned(), None, true), ("greeting".to_owned(), Some("Hello".to_owned()), false)]
        );
        assert_eq!(action.outputs, vec![("said".to_owned(), "${{ steps.say.outputs.text }}".to_owned())]);
        assert_eq!(action.steps.len(), 2);
    }

    #[test]
    fn refuses_what_cannot_run_here() {
        let error = |text: &str| parse_action(text).err().expect("refused");
        assert!(error("runs: {using: node20, main: index.js}")
            .contains("`using: node20` is not supported on this farm"));
        assert!(error("runs: {using: docker, image: Dockerfile}")
            .contains("`using: docker` is not supported on this farm"));
        assert!(error("name: x").contains("Required property is missing: runs"));
        assert!(error("runs: {using: composite, steps: [{run: echo}]}")
            .contains("Required property is missing: shell"));
        assert!(
            error("runs: {using: composite, steps: [{name: x}]}").contains("a step needs `run` or `uses`")
        );
        assert!(error("outputs: {o: {description: x}}\nruns: {using: composite, steps: []}")
            .contains("needs a `value`"));
    }
}
