//! Workflow text to the typed [`Workflow`] model, with every check GitHub's own parser
//! (`@actions/workflow-parser`) makes, each diagnostic at the node that causes it.
//!
//! Loading runs in GitHub's order: YAML syntax; the schema (`reader`: keys, types,
//! expressions and the contexts each place allows); the cross-key checks (`convert`:
//! job and step ids, `needs`, `if:`, cron, dispatch inputs), which also build the model;
//! then, unless `syntax_only`, checks beyond GitHub's (`farm`: references to matrix
//! keys a literal matrix lacks, `container:`/`services:`, unavailable `uses:` actions).
//! With `syntax_only`, a file is valid exactly when GitHub's parser accepts it.

mod convert;
mod farm;
mod reader;
mod schema;
mod template;

use std::rc::Rc;

use crate::workflow::diag::{Diagnostic, Pos};
use crate::workflow::model::Workflow;
use crate::workflow::yaml::{self, Lines};

pub use farm::action_available;

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Skip the checks that depend on this farm (available actions, containers).
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

pub fn load(text: &str, opts: &LoadOptions) -> Loaded {
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
    let lines = Lines::new(text);
    let schema = schema::Schema::get();
    let mut diagnostics = Vec::new();

    let mut reader = reader::Reader { schema, lines: &lines, diags: &mut diagnostics, path: Vec::new() };
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
    Loaded { workflow: if github_valid { workflow } else { None }, diagnostics }
}
