//! Workflow text to the typed [`Workflow`] model, with every check GitHub's own parser
//! (`@actions/workflow-parser`) makes, each diagnostic at the node that causes it.
//!
//! Loading runs in GitHub's order: YAML syntax; the schema (`reader`: keys, types,
//! expressions and the contexts each place allows); the cross-key checks (`convert`:
//! job and step ids, `needs`, `if:`, cron, dispatch inputs), which also build the model
//! (GitHub skips them after a schema error; they run here anyway, to report more at once);
//! then, unless `syntax_only`, checks beyond GitHub's (`farm`: references to matrix
//! keys a literal matrix lacks, `container:`/`services:`, unavailable `uses:` actions).
//! With `syntax_only`, a file is valid exactly when GitHub's parser accepts it and it is
//! within the limits GitHub's service puts on workflows ([`MAX_FILE_BYTES`], [`MAX_JOBS`]).

mod convert;
mod farm;
mod reader;
mod schema;
mod template;

use std::rc::Rc;

use crate::workflow::diag::{Diagnostic, Pos};
use crate::workflow::model::Workflow;
use crate::workflow::yaml;

pub use farm::action_available;

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Only GitHub's checks: skip what depends on this farm (available actions,
    /// containers) and the lints GitHub does not make (matrix references).
    pub syntax_only: bool,
}

#[derive(Debug, Clone)]
pub struct Loaded {
    /// The model, when the file passed every check GitHub makes (farm-specific errors,
    /// which `syntax_only` skips, do not withhold it).
    pub workflow: Option<Workflow>,
    /// Sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

/// GitHub starts no run from a workflow file larger than 500 KB ("Workflow file size" in
/// GitHub's Actions limits); checked before anything reads the text, so a huge file is
/// refused at once.
pub const MAX_FILE_BYTES: usize = 500 * 1024;

/// The jobs one workflow may define: GitHub runs up to 256 jobs per workflow run (a
/// matrix is bounded apart, at [`crate::workflow::matrix::MAX_COMBINATIONS`] per job).
pub const MAX_JOBS: usize = 256;

pub fn load(text: &str, opts: &LoadOptions) -> Loaded {
    if text.len() > MAX_FILE_BYTES {
        let message = format!(
            "the workflow file is {} bytes, more than GitHub's limit of 500 KB ({MAX_FILE_BYTES} bytes) per workflow file",
            text.len()
        );
        return Loaded { workflow: None, diagnostics: vec![Diagnostic::new(Pos::new(1, 1), message)] };
    }
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Loaded {
                workflow: None,
                diagnostics: vec![Diagnostic::new(
                    Pos::new(1, 1),
                    "the file is empty: a workflow needs at least `on:` and `jobs:`",
                )],
            }
        }
        Err(diagnostic) => return Loaded { workflow: None, diagnostics: vec![diagnostic] },
    };
    let schema = schema::Schema::get();
    let mut diagnostics = Vec::new();

    let mut reader = reader::Reader { schema, diags: &mut diagnostics, path: Vec::new() };
    let root_def = schema.id("workflow-root-strict");
    let cx = reader::AllowedCx::child(&Rc::new(reader::AllowedCx::default()), schema, root_def);
    if root.as_map().is_none() {
        let message = format!("a workflow must be a mapping (with `on:` and `jobs:`), not {}", root.kind());
        reader.diags.push(Diagnostic::new(root.pos, message));
    } else {
        reader.read(&root, root_def, &cx);
    }

    let mut converter = convert::Converter { diags: &mut diagnostics };
    let workflow = converter.workflow(&root);
    let github_valid = diagnostics.is_empty();
    if !opts.syntax_only {
        // Beyond GitHub's parser: references to matrix keys that do not exist (GitHub
        // evaluates them to null at run time) and what this farm cannot run.
        farm::check_matrix_references(&root, &mut diagnostics);
        farm::check_runnable(&root, &mut diagnostics);
    }
    diagnostics.sort_by_key(|d| d.pos);
    // A node reached through several aliases is reported once.
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.pos, d.message.clone())));
    for d in &mut diagnostics {
        // One diagnostic, one line (`path:line:col: message`), whatever text it quotes.
        if d.message.contains('\n') {
            d.message = d.message.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    Loaded { workflow: if github_valid { workflow } else { None }, diagnostics }
}

/// The `steps:` of a composite action's `runs:` (an `action.yml` parsed with
/// [`yaml::parse`]), with the same checks as a job's steps (ids, `if:`).
pub fn action_steps(node: &yaml::Node) -> (Vec<crate::workflow::model::Step>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let steps = convert::Converter { diags: &mut diagnostics }.steps(node);
    (steps, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::model::{InputType, OrExpr};

    const WORKFLOW: &str = r#"name: qemu sanity
run-name: sanity on ${{ github.ref_name }}
on:
  push:
    branches: [master, 'stable-*']
    paths-ignore: ['docs/**']
  schedule:
    - cron: '0 2 * * *'
  workflow_dispatch:
    inputs:
      guest:
        type: choice
        options: [fedora, rhel]
        default: fedora
      debug:
        type: boolean
concurrency:
  group: sanity-${{ github.ref }}
  cancel-in-progress: true
env:
  GUEST: fedora
  COUNT: 3
jobs:
  build:
    runs-on: [self-hosted, '${{ matrix.cpu }}']
    timeout-minutes: 180
    strategy:
      fail-fast: false
      matrix:
        cpu: [amd64, intel64]
    steps:
      - uses: metalfarm/provision@v1
        with:
          timeout: 45m
      - id: make
        name: Build
        run: make -j4
        working-directory: qemu
        env:
          CC: gcc
  test:
    needs: build
    if: github.event_name == 'push'
    runs-on: {group: lab, labels: kvm}
    continue-on-error: ${{ github.ref == 'refs/heads/next' }}
    steps:
      - run: make check
        if: always()
"#;

    #[test]
    fn a_valid_workflow_becomes_the_model() {
        let loaded = load(WORKFLOW, &LoadOptions::default());
        assert_eq!(loaded.diagnostics, vec![]);
        let wf = loaded.workflow.expect("a model");
        assert_eq!(wf.name.unwrap().value, "qemu sanity");
        assert_eq!(wf.run_name.unwrap().pos, Pos::new(2, 11));
        let events: Vec<&str> = wf.on.events.keys().map(String::as_str).collect();
        assert_eq!(events, ["push", "schedule", "workflow_dispatch"]);
        let push = &wf.on.events["push"];
        assert_eq!(
            push.branches.as_ref().unwrap().iter().map(|b| b.value.as_str()).collect::<Vec<_>>(),
            ["master", "stable-*"]
        );
        assert!(push.tags.is_none());
        assert_eq!(wf.on.events["schedule"].schedule[0].cron.value, "0 2 * * *");
        let inputs = &wf.on.events["workflow_dispatch"].inputs;
        assert_eq!(inputs["guest"].kind, InputType::Choice);
        assert_eq!(inputs["guest"].options.len(), 2);
        assert_eq!(inputs["debug"].kind, InputType::Boolean);
        let concurrency = wf.concurrency.unwrap();
        assert_eq!(concurrency.group.unwrap().value, "sanity-${{ github.ref }}");
        assert_eq!(concurrency.cancel_in_progress.unwrap().value, OrExpr::Value(true));
        assert_eq!(wf.env.vars["COUNT"].value, "3");

        let build = &wf.jobs["build"];
        assert_eq!(build.id.pos, Pos::new(24, 3));
        let labels: Vec<&str> =
            build.runs_on.as_ref().unwrap().labels.iter().map(|l| l.value.as_str()).collect();
        assert_eq!(labels, ["self-hosted", "${{ matrix.cpu }}"]);
        assert_eq!(build.timeout_minutes.as_ref().unwrap().value, OrExpr::Value(180.0));
        let strategy = build.strategy.as_ref().unwrap();
        assert_eq!(strategy.fail_fast.as_ref().unwrap().value, OrExpr::Value(false));
        assert!(strategy.matrix.as_ref().unwrap().get("cpu").is_some());
        assert_eq!(build.steps.len(), 2);
        assert_eq!(build.steps[0].uses.as_ref().unwrap().value, "metalfarm/provision@v1");
        assert_eq!(build.steps[0].with["timeout"].value, "45m");
        assert_eq!(build.steps[1].id.as_ref().unwrap().value, "make");
        assert_eq!(build.steps[1].working_directory.as_ref().unwrap().value, "qemu");
        assert_eq!(build.steps[1].env.vars["CC"].value, "gcc");

        let test = &wf.jobs["test"];
        assert_eq!(test.needs[0].value, "build");
        assert_eq!(test.if_.as_ref().unwrap().value, "github.event_name == 'push'");
        let runs_on = test.runs_on.as_ref().unwrap();
        assert_eq!(runs_on.group.as_ref().unwrap().value, "lab");
        assert_eq!(runs_on.labels[0].value, "kvm");
        assert!(matches!(test.continue_on_error.as_ref().unwrap().value, OrExpr::Expr(_)));
        assert_eq!(test.steps[0].if_.as_ref().unwrap().value, "always()");
    }

    #[test]
    fn farm_checks_are_skipped_with_syntax_only() {
        let text = "on: push\njobs:\n  a:\n    runs-on: x\n    container: fedora\n    steps:\n      - uses: actions/setup-go@v5\n      - run: echo ${{ matrix.nope }}\n";
        let loaded = load(text, &LoadOptions { syntax_only: true });
        assert_eq!(loaded.diagnostics, vec![]);
        assert!(loaded.workflow.is_some());
        let loaded = load(text, &LoadOptions { syntax_only: false });
        let lines: Vec<u32> = loaded.diagnostics.iter().map(|d| d.pos.line).collect();
        assert_eq!(lines, [5, 7, 8]);
        // Farm-only problems keep the model: the file is valid GitHub Actions.
        assert!(loaded.workflow.is_some());
    }

    #[test]
    fn errors_withhold_the_model_and_are_sorted() {
        let loaded =
            load("jobs:\n  b:\n    runs-on: x\n    step: []\non: push\nname: [x]\n", &LoadOptions::default());
        let positions: Vec<Pos> = loaded.diagnostics.iter().map(|d| d.pos).collect();
        assert_eq!(positions, [Pos::new(4, 5), Pos::new(6, 7)]);
        assert!(loaded.workflow.is_none());
        let empty = load("", &LoadOptions::default());
        assert_eq!(empty.diagnostics.len(), 1);
        let not_a_map = load("- on\n", &LoadOptions::default());
        assert_eq!(not_a_map.diagnostics[0].pos, Pos::new(1, 1));
    }
}
