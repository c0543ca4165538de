//! The typed workflow model: what [`crate::workflow::load`] makes of a valid file.
//!
//! Strings that may hold `${{ }}` are kept as written ([`Text`]), with their position:
//! the plan evaluates them once it knows the event, the matrix and the needs. Values whose
//! shape GitHub only fixes at run time (the matrix, `permissions`, `environment`) stay raw
//! [`Node`]s. Every part later stages report on carries its [`Pos`].

use indexmap::IndexMap;

use crate::workflow::diag::Pos;
use crate::workflow::yaml::Node;

/// A job's id: the key under `jobs:`.
pub type JobId = String;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub pos: Pos,
    pub value: T,
}

impl<T> Spanned<T> {
    pub fn new(pos: Pos, value: T) -> Self {
        Spanned { pos, value }
    }
}

/// A string as written, possibly with `${{ }}` parts (numbers and booleans written
/// where a string goes are kept as GitHub prints them: `1`, `true`).
pub type Text = Spanned<String>;

/// A typed value, or an expression (the `${{ }}` text) that computes it at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum OrExpr<T> {
    Value(T),
    Expr(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub name: Option<Text>,
    pub run_name: Option<Text>,
    pub on: On,
    pub env: Env,
    pub defaults: Option<RunDefaults>,
    pub concurrency: Option<Concurrency>,
    /// Accepted, no effect on this farm.
    pub permissions: Option<Node>,
    pub jobs: IndexMap<JobId, Job>,
}

/// `on:` — every form (`push`, `[push, pull_request]`, a mapping) becomes a map from
/// event name to its configuration, in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct On {
    pub pos: Pos,
    pub events: IndexMap<String, EventConfig>,
}

/// One event under `on:`. Filters are `None` when not written (which differs from an
/// empty list in GitHub's filter rules).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventConfig {
    /// The event's key (or its item in the list form).
    pub pos: Pos,
    pub types: Option<Vec<Text>>,
    pub branches: Option<Vec<Text>>,
    pub branches_ignore: Option<Vec<Text>>,
    pub tags: Option<Vec<Text>>,
    pub tags_ignore: Option<Vec<Text>>,
    pub paths: Option<Vec<Text>>,
    pub paths_ignore: Option<Vec<Text>>,
    /// `workflow_run.workflows`.
    pub workflows: Option<Vec<Text>>,
    /// `schedule:` entries.
    pub schedule: Vec<CronEntry>,
    /// `workflow_dispatch.inputs` / `workflow_call.inputs`.
    pub inputs: IndexMap<String, Input>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CronEntry {
    pub cron: Text,
    pub timezone: Option<Text>,
}

/// A `workflow_dispatch` (or `workflow_call`) input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input's key.
    pub pos: Pos,
    pub description: Option<String>,
    pub kind: InputType,
    pub required: bool,
    /// As written: a string, boolean or number node.
    pub default: Option<Node>,
    /// `choice` options.
    pub options: Vec<Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputType {
    #[default]
    String,
    Boolean,
    Choice,
    Number,
    Environment,
}

impl InputType {
    pub fn parse(name: &str) -> Option<InputType> {
        Some(match name {
            "string" => InputType::String,
            "boolean" => InputType::Boolean,
            "choice" => InputType::Choice,
            "number" => InputType::Number,
            "environment" => InputType::Environment,
            _ => return None,
        })
    }
}

/// `env:` at any level: variables in order, or one expression that computes the map.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Env {
    pub vars: IndexMap<String, Text>,
    /// `env: ${{ fromJSON(...) }}`.
    pub expr: Option<Text>,
}

/// `defaults.run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunDefaults {
    pub shell: Option<Text>,
    pub working_directory: Option<Text>,
}

/// `concurrency:` as a group string, a mapping, or one expression that computes either.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub pos: Pos,
    pub group: Option<Text>,
    pub cancel_in_progress: Option<Spanned<OrExpr<bool>>>,
    /// The whole value is one `${{ }}` expression.
    pub expr: Option<Text>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's key under `jobs:`.
    pub id: Spanned<JobId>,
    /// The job's mapping.
    pub pos: Pos,
    pub name: Option<Text>,
    /// `None` only for a job that calls a reusable workflow (`uses:`).
    pub runs_on: Option<RunsOn>,
    pub needs: Vec<Text>,
    /// The `if:` condition as written (with or without `${{ }}`).
    pub if_: Option<Text>,
    pub strategy: Option<Strategy>,
    pub timeout_minutes: Option<Spanned<OrExpr<f64>>>,
    pub continue_on_error: Option<Spanned<OrExpr<bool>>>,
    pub env: Env,
    pub outputs: IndexMap<String, Text>,
    pub defaults: Option<RunDefaults>,
    pub steps: Vec<Step>,
    pub concurrency: Option<Concurrency>,
    pub environment: Option<Node>,
    pub permissions: Option<Node>,
    /// A reusable workflow call (`jobs.<id>.uses`) and its `with:`.
    pub uses: Option<Text>,
    pub with: IndexMap<String, Node>,
}

/// `runs-on:`. A string, a list, or `{group, labels}`; a label may be an expression
/// (which may compute a list of labels, e.g. `${{ matrix.os }}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunsOn {
    pub pos: Pos,
    pub labels: Vec<Text>,
    pub group: Option<Text>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub pos: Pos,
    /// Raw: axes, `include`, `exclude`, or one expression (`${{ fromJSON(...) }}`).
    pub matrix: Option<Node>,
    pub fail_fast: Option<Spanned<OrExpr<bool>>>,
    pub max_parallel: Option<Spanned<OrExpr<f64>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's mapping.
    pub pos: Pos,
    pub id: Option<Text>,
    pub name: Option<Text>,
    pub if_: Option<Text>,
    pub run: Option<Text>,
    pub shell: Option<Text>,
    pub working_directory: Option<Text>,
    pub env: Env,
    pub continue_on_error: Option<Spanned<OrExpr<bool>>>,
    pub timeout_minutes: Option<Spanned<OrExpr<f64>>>,
    pub uses: Option<Text>,
    pub with: IndexMap<String, Text>,
}
