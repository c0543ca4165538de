//! The workflow language: pure, no I/O. Every function here takes text or values,
//! never paths, sockets or clocks, so it can be tested and benchmarked in isolation.
//!
//! - [`diag`]: positions and diagnostics (`path:line:col: message`)
//! - [`yaml`]: YAML text to a tree whose every node knows its line and column
//! - [`model`]: the typed workflow model
//! - [`load`]: YAML tree to model, with every check GitHub makes
//! - [`expr`]: `${{ }}` expressions: lexer, parser, evaluator, templates
//! - [`filters`]: GitHub's filter patterns for branches, tags and paths
//! - [`triggers`]: which workflows an event starts
//! - [`matrix`]: `strategy.matrix` expansion
//! - [`plan`]: the jobs a triggered workflow becomes
//! - [`cron`]: POSIX cron schedules as GitHub accepts them
//! - [`event`]: an event's `github` and `inputs` contexts, ref, commit and changed files

pub mod cron;
pub mod diag;
pub mod event;
pub mod expr;
pub mod filters;
pub mod load;
pub mod matrix;
pub mod model;
pub mod plan;
pub mod triggers;
pub mod yaml;
