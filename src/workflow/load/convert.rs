//! Phase 2 of loading, as GitHub's converter: the checks that span several keys (job
//! ids, `needs`, step ids, `if:` conditions, cron, dispatch inputs, runner groups), made
//! while the typed model is built. Shapes the schema rejected were reported in phase 1;
//! here they are skipped.

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::workflow::diag::{Diagnostic, Pos};
use crate::workflow::load::reader::AllowedCx;
use crate::workflow::load::schema::Schema;
use crate::workflow::load::template;
use crate::workflow::load::MAX_JOBS;
use crate::workflow::model::*;
use crate::workflow::yaml::{js_number, Node, Style, Value};

pub struct Converter<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
}

/// A string-like scalar as text (`1`, `true`; null is empty).
pub fn text(node: &Node) -> Option<Text> {
    let value = match &node.value {
        Value::String(s) => s.text.clone(),
        Value::Number(n) => js_number(*n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => return None,
    };
    Some(Spanned::new(node.pos, value))
}

/// Whether GitHub treats this node as an expression (a string with `${{ }}`).
pub fn is_expression(node: &Node) -> bool {
    node.as_str().is_some_and(|s| s.contains("${{"))
}

/// Where GitHub puts a value that is one whole `${{ }}`: at the `${{`, inside the quotes.
fn expression_pos(node: &Node) -> Pos {
    match &node.value {
        Value::String(s)
            if matches!(s.style, Style::SingleQuoted | Style::DoubleQuoted)
                && s.text.starts_with("${{")
                && s.text.ends_with("}}") =>
        {
            Pos::new(node.pos.line, node.pos.col + 1)
        }
        _ => node.pos,
    }
}

fn texts(node: &Node) -> Vec<Text> {
    match &node.value {
        Value::Seq(items) => items.iter().filter_map(text).collect(),
        _ => text(node).into_iter().collect(),
    }
}

fn or_expr_bool(node: &Node) -> Option<Spanned<OrExpr<bool>>> {
    let value = match &node.value {
        Value::Bool(b) => OrExpr::Value(*b),
        Value::String(s) if s.text.contains("${{") => OrExpr::Expr(s.text.clone()),
        _ => return None,
    };
    Some(Spanned::new(node.pos, value))
}

fn or_expr_number(node: &Node) -> Option<Spanned<OrExpr<f64>>> {
    let value = match &node.value {
        Value::Number(n) => OrExpr::Value(*n),
        Value::String(s) if s.text.contains("${{") => OrExpr::Expr(s.text.clone()),
        _ => return None,
    };
    Some(Spanned::new(node.pos, value))
}

/// GitHub's identifier rule for job and step ids.
pub fn id_error(id: &str) -> Option<String> {
    let mut chars = id.chars();
    let valid = match chars.next() {
        Some(c) => {
            (c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        None => false,
    };
    if !valid || id.len() >= 100 {
        return Some(format!(
            "id `{id}` is invalid: ids start with a letter or `_`, contain only letters, digits, `_` and `-`, and are shorter than 100 characters"
        ));
    }
    if id.starts_with("__") {
        return Some(format!("id `{id}` is invalid: ids starting with `__` are reserved"));
    }
    None
}

impl Converter<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, message));
    }

    pub fn workflow(&mut self, root: &Node) -> Option<Workflow> {
        let entries = root.as_map()?;
        let mut workflow = Workflow {
            name: None,
            run_name: None,
            on: On::default(),
            env: Env::default(),
            defaults: None,
            concurrency: None,
            permissions: None,
            jobs: IndexMap::new(),
        };
        for (key, value) in entries {
            match key.as_str()? {
                "name" => workflow.name = text(value),
                "run-name" => workflow.run_name = text(value),
                "on" => workflow.on = self.on(value),
                "env" => workflow.env = env(value),
                "defaults" => workflow.defaults = defaults(value),
                "concurrency" => workflow.concurrency = self.concurrency(value),
                "permissions" => workflow.permissions = Some(value.clone()),
                "jobs" => workflow.jobs = self.jobs(value),
                _ => {}
            }
        }
        Some(workflow)
    }

    fn on(&mut self, node: &Node) -> On {
        let mut on = On { pos: node.pos, events: IndexMap::new() };
        match &node.value {
            Value::String(s) => {
                on.events.insert(s.text.clone(), EventConfig { pos: node.pos, ..EventConfig::default() });
            }
            Value::Seq(items) => {
                for item in items {
                    if let Some(name) = item.as_str() {
                        on.events.insert(
                            name.to_string(),
                            EventConfig { pos: item.pos, ..EventConfig::default() },
                        );
                    }
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    let Some(name) = key.as_str() else { continue };
                    let config = self.event(name, key.pos, value);
                    on.events.insert(name.to_string(), config);
                }
            }
            _ => {}
        }
        on
    }

    fn event(&mut self, name: &str, pos: Pos, node: &Node) -> EventConfig {
        let mut config = EventConfig { pos, ..EventConfig::default() };
        if name == "schedule" {
            for item in node.as_seq().unwrap_or_default() {
                let Some(cron) = item.get("cron").and_then(text) else { continue };
                if crate::workflow::cron::Schedule::parse(&cron.value).is_err() {
                    self.error(
                        cron.pos,
                        "Invalid cron expression. Expected format: '* * * * *' (minute hour day month weekday)",
                    );
                }
                config.schedule.push(CronEntry { cron, timezone: item.get("timezone").and_then(text) });
            }
            return config;
        }
        let Some(entries) = node.as_map() else { return config };
        for (key, value) in entries {
            let Some(k) = key.as_str() else { continue };
            let list = || Some(texts(value));
            match k {
                "types" => config.types = list(),
                "branches" => config.branches = list(),
                "branches-ignore" => config.branches_ignore = list(),
                "tags" => config.tags = list(),
                "tags-ignore" => config.tags_ignore = list(),
                "paths" => config.paths = list(),
                "paths-ignore" => config.paths_ignore = list(),
                "workflows" => config.workflows = list(),
                "inputs" if name == "workflow_dispatch" || name == "workflow_call" => {
                    for (input_key, input) in value.as_map().unwrap_or_default() {
                        let Some(input_name) = input_key.as_str() else { continue };
                        if let Some(parsed) =
                            self.input(input_name, input_key.pos, input, name == "workflow_call")
                        {
                            config.inputs.insert(input_name.to_string(), parsed);
                        }
                    }
                }
                _ => {}
            }
        }
        config
    }

    fn input(&mut self, name: &str, pos: Pos, node: &Node, is_call: bool) -> Option<Input> {
        let entries = node.as_map()?;
        let mut input = Input {
            pos,
            description: None,
            kind: InputType::String,
            required: false,
            default: None,
            options: Vec::new(),
        };
        let mut has_options = false;
        for (key, value) in entries {
            match key.as_str()? {
                "description" => input.description = text(value).map(|t| t.value),
                "required" => input.required = matches!(value.value, Value::Bool(true)),
                "default" => input.default = Some(value.clone()),
                "type" => {
                    if let Some(kind) = value.as_str().and_then(InputType::parse) {
                        input.kind = kind;
                    }
                }
                "options" => {
                    has_options = true;
                    input.options = texts(value);
                }
                _ => {}
            }
        }
        if let Some(default) = &input.default {
            let skip = is_call && is_expression(default);
            let fits = match input.kind {
                InputType::Boolean => matches!(default.value, Value::Bool(_)),
                InputType::String | InputType::Choice | InputType::Environment => {
                    matches!(default.value, Value::String(_))
                }
                InputType::Number => true,
            };
            if !skip && !fits {
                let kind = match input.kind {
                    InputType::Boolean => "a boolean (`true` or `false`)",
                    _ => "a string (quote it)",
                };
                self.error(
                    default.pos,
                    format!(
                        "the default of input `{name}` must be {kind}, as its type is `{}`, not {} `{}`",
                        type_name(input.kind),
                        default.kind(),
                        crate::workflow::load::reader::shown(&default.scalar_text())
                    ),
                );
            } else if input.kind == InputType::Choice && fits {
                let value = default.scalar_text();
                if !input.options.is_empty() && !input.options.iter().any(|o| o.value == value) {
                    self.error(
                        default.pos,
                        format!(
                            "the default of choice input `{name}` is `{}`, which is not one of its options",
                            crate::workflow::load::reader::shown(&value)
                        ),
                    );
                }
            }
        }
        if input.kind == InputType::Choice && input.options.is_empty() {
            self.error(node.pos, format!("choice input `{name}` needs a non-empty list of `options`"));
        } else if input.kind != InputType::Choice && has_options {
            self.error(node.pos, format!("input `{name}` has `options` but its type is not `choice`"));
        }
        Some(input)
    }

    fn concurrency(&mut self, node: &Node) -> Option<Concurrency> {
        let mut c = Concurrency { pos: node.pos, group: None, cancel_in_progress: None, expr: None };
        match &node.value {
            Value::String(_) if is_expression(node) => c.expr = text(node),
            Value::String(_) | Value::Number(_) | Value::Bool(_) => c.group = text(node),
            Value::Map(entries) => {
                for (key, value) in entries {
                    match key.as_str() {
                        Some("group") => c.group = text(value),
                        Some("cancel-in-progress") => c.cancel_in_progress = or_expr_bool(value),
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
        Some(c)
    }

    fn jobs(&mut self, node: &Node) -> IndexMap<JobId, Job> {
        let mut jobs = IndexMap::new();
        let Some(entries) = node.as_map() else { return jobs };
        for (key, value) in entries {
            let Some(id) = key.as_str() else { continue };
            if value.as_map().is_none() {
                continue;
            }
            if let Some(message) = id_error(id) {
                self.error(key.pos, format!("job {message}"));
            }
            let job = self.job(Spanned::new(key.pos, id.to_string()), value);
            // GitHub's converter gives up on a job whose `services` is one expression: the
            // job then counts for nothing in the `needs` checks.
            if value.get("services").is_some_and(is_expression) {
                continue;
            }
            jobs.entry(id.to_string()).or_insert(job);
        }
        if let Some((over, _)) = entries.get(MAX_JOBS) {
            self.error(
                over.pos,
                format!(
                    "the workflow defines {} jobs, more than GitHub's limit of {MAX_JOBS} jobs per workflow",
                    entries.len()
                ),
            );
        }
        self.check_needs(node.pos, &jobs);
        jobs
    }

    fn job(&mut self, id: Spanned<String>, node: &Node) -> Job {
        let mut job = Job {
            id,
            pos: node.pos,
            name: None,
            runs_on: None,
            needs: Vec::new(),
            if_: None,
            strategy: None,
            timeout_minutes: None,
            continue_on_error: None,
            env: Env::default(),
            outputs: IndexMap::new(),
            defaults: None,
            steps: Vec::new(),
            concurrency: None,
            environment: None,
            permissions: None,
            uses: None,
            with: IndexMap::new(),
        };
        let schema = Schema::get();
        for (key, value) in node.as_map().unwrap_or_default() {
            let Some(k) = key.as_str() else { continue };
            match k {
                "name" => job.name = text(value),
                "runs-on" => job.runs_on = self.runs_on(value),
                "needs" => job.needs = texts(value),
                "if" => {
                    self.condition(value, schema.id("job-if"), "the job's `if`");
                    job.if_ = text(value);
                }
                "strategy" => job.strategy = strategy(value),
                "timeout-minutes" => job.timeout_minutes = or_expr_number(value),
                "continue-on-error" => job.continue_on_error = or_expr_bool(value),
                "env" => job.env = self.strict_env(value, "job"),
                "outputs" => {
                    for (out_key, out_value) in value.as_map().unwrap_or_default() {
                        if let (Some(name), Some(t)) = (out_key.as_str(), text(out_value)) {
                            job.outputs.insert(name.to_string(), t);
                        }
                    }
                }
                "defaults" => job.defaults = defaults(value),
                "steps" => job.steps = self.steps(value),
                "concurrency" => job.concurrency = self.concurrency(value),
                "environment" => job.environment = Some(value.clone()),
                "permissions" => job.permissions = Some(value.clone()),
                "container" => self.container(value, false),
                "services" => {
                    if is_expression(value) {
                        self.error(
                            expression_pos(value),
                            "`services` must be a mapping of service containers; GitHub does not accept one expression for it",
                        );
                    }
                    for (_, service) in value.as_map().unwrap_or_default() {
                        self.container(service, true);
                    }
                }
                "uses" => job.uses = text(value),
                "with" => {
                    for (with_key, with_value) in value.as_map().unwrap_or_default() {
                        if let Some(name) = with_key.as_str() {
                            job.with.insert(name.to_string(), with_value.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        job
    }

    fn runs_on(&mut self, node: &Node) -> Option<RunsOn> {
        let mut runs_on = RunsOn { pos: node.pos, labels: Vec::new(), group: None };
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    match key.as_str() {
                        Some("labels") => runs_on.labels = texts(value),
                        Some("group") => {
                            if let Some(group) = text(value) {
                                if !is_expression(value) {
                                    self.check_runner_group(&group);
                                }
                                runs_on.group = Some(group);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => runs_on.labels = texts(node),
        }
        Some(runs_on)
    }

    fn check_runner_group(&mut self, group: &Text) {
        let names: Vec<&str> = group.value.split('/').collect();
        let message = match names.as_slice() {
            [_] => return,
            [prefix, name] if ["org", "organization", "ent", "enterprise"].contains(prefix) => {
                if !name.is_empty() {
                    return;
                }
                format!("invalid runner group name `{}`: the name after the prefix is empty", group.value)
            }
            _ => format!(
                "invalid runner group name `{}`: use the `organization/` or `enterprise/` prefix to target one runner group",
                group.value
            ),
        };
        self.error(group.pos, message);
    }

    /// GitHub requires `env` of a job or step to be a mapping (not one expression).
    fn strict_env(&mut self, node: &Node, level: &str) -> Env {
        if is_expression(node) {
            self.error(
                expression_pos(node),
                format!("the {level}'s `env` must be a mapping of variables; GitHub does not accept one expression for it"),
            );
        }
        env(node)
    }

    /// An `if:` condition: with or without `${{ }}`, it is an expression GitHub parses
    /// with the place's contexts (and the status functions).
    fn condition(&mut self, node: &Node, def: usize, what: &str) {
        let Some(cond) = text(node) else { return };
        let trimmed = cond.value.trim();
        if trimmed.is_empty() || trimmed.contains("${{") {
            // Expressions inside `${{ }}` were checked with the rest of the template.
            return;
        }
        let schema = Schema::get();
        let root = std::rc::Rc::new(AllowedCx::default());
        let cx = AllowedCx::child(&root, schema, def);
        if let Err(e) = template::check_expression(trimmed, &cx) {
            self.error(node.pos, format!("invalid expression in {what}: {}", template::explain(&e, &cx)));
        }
    }

    fn container(&mut self, node: &Node, service: bool) {
        if contains_expression(node) {
            return;
        }
        let image = match &node.value {
            Value::String(s) => Some(s.text.as_str()),
            Value::Map(_) => node.get("image").and_then(Node::as_str),
            _ => return,
        };
        if image.is_none_or(str::is_empty) {
            let what = if service { "a service container" } else { "the job container" };
            self.error(node.pos, format!("{what} needs an `image`"));
        }
    }

    pub fn steps(&mut self, node: &Node) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let schema = Schema::get();
        for item in node.as_seq().unwrap_or_default() {
            let Some(entries) = item.as_map() else { continue };
            let mut step = Step {
                pos: item.pos,
                id: None,
                name: None,
                if_: None,
                run: None,
                shell: None,
                working_directory: None,
                env: Env::default(),
                continue_on_error: None,
                timeout_minutes: None,
                uses: None,
                with: IndexMap::new(),
            };
            for (key, value) in entries {
                let Some(k) = key.as_str() else { continue };
                match k {
                    "id" => {
                        if let Some(id) = text(value) {
                            if let Some(message) = id_error(&id.value) {
                                self.error(id.pos, format!("step {message}"));
                            } else if ids.contains(&id.value) {
                                self.error(
                                    id.pos,
                                    format!("step id `{}` is used more than once in this job", id.value),
                                );
                            } else {
                                ids.push(id.value.clone());
                            }
                            step.id = Some(id);
                        }
                    }
                    "name" => step.name = text(value),
                    "if" => {
                        self.condition(value, schema.id("step-if"), "the step's `if`");
                        step.if_ = text(value);
                    }
                    "run" => step.run = text(value),
                    "shell" => step.shell = text(value),
                    "working-directory" => step.working_directory = text(value),
                    "env" => step.env = self.strict_env(value, "step"),
                    "continue-on-error" => step.continue_on_error = or_expr_bool(value),
                    "timeout-minutes" => step.timeout_minutes = or_expr_number(value),
                    "uses" => step.uses = text(value),
                    "with" => {
                        for (with_key, with_value) in value.as_map().unwrap_or_default() {
                            if let (Some(name), Some(t)) = (with_key.as_str(), text(with_value)) {
                                step.with.insert(name.to_string(), t);
                            }
                        }
                    }
                    _ => {}
                }
            }
            steps.push(step);
        }
        steps
    }

    /// GitHub's rules for `needs`: at least one job without needs, no unknown job, no cycle.
    fn check_needs(&mut self, jobs_pos: Pos, jobs: &IndexMap<JobId, Job>) {
        if jobs.values().all(|j| !j.needs.is_empty()) {
            self.error(
                jobs_pos,
                "the workflow must contain at least one job with no dependencies (every job `needs` another)",
            );
            return;
        }
        // Kahn's algorithm over an index of who needs whom, so the check stays linear in
        // the jobs and their `needs`: what is left unsatisfied names a missing job or a cycle.
        let mut pending: IndexMap<&str, Vec<&Text>> = IndexMap::new();
        let mut needed_by: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut ready: Vec<&str> = Vec::new();
        for (id, job) in jobs {
            if job.needs.is_empty() {
                ready.push(id);
            } else {
                pending.insert(id, job.needs.iter().collect());
                for need in &job.needs {
                    needed_by.entry(need.value.as_str()).or_default().push(id);
                }
            }
        }
        // How many needs of each pending job are still unmet (a need listed twice counts twice).
        let mut unmet: HashMap<&str, usize> = pending.iter().map(|(id, needs)| (*id, needs.len())).collect();
        while let Some(done) = ready.pop() {
            for &dependent in needed_by.get(done).into_iter().flatten() {
                let Some(left) = unmet.get_mut(dependent) else { continue };
                *left -= 1;
                if *left == 0 {
                    ready.push(dependent);
                }
            }
        }
        let satisfied = |id: &str| jobs.contains_key(id) && unmet.get(id).is_none_or(|left| *left == 0);
        pending.retain(|id, _| !satisfied(id));
        for needs in pending.values_mut() {
            needs.retain(|n| !satisfied(&n.value));
        }
        for (id, needs) in pending {
            for need in needs {
                let message = if jobs.contains_key(&need.value) {
                    format!(
                        "job `{id}` needs `{}`, which creates a cycle in the dependency graph",
                        need.value
                    )
                } else {
                    format!("job `{id}` needs `{}`, which is not a job in this workflow", need.value)
                };
                self.error(need.pos, message);
            }
        }
    }
}

fn type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::String => "string",
        InputType::Boolean => "boolean",
        InputType::Choice => "choice",
        InputType::Number => "number",
        InputType::Environment => "environment",
    }
}

fn contains_expression(node: &Node) -> bool {
    match &node.value {
        Value::String(_) => is_expression(node),
        Value::Seq(items) => items.iter().any(contains_expression),
        Value::Map(entries) => entries.iter().any(|(k, v)| contains_expression(k) || contains_expression(v)),
        _ => false,
    }
}

fn env(node: &Node) -> Env {
    let mut env = Env::default();
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                if let (Some(name), Some(t)) = (key.as_str(), text(value)) {
                    env.vars.insert(name.to_string(), t);
                }
            }
        }
        Value::String(_) => env.expr = text(node),
        _ => {}
    }
    env
}

fn defaults(node: &Node) -> Option<RunDefaults> {
    let run = node.get("run")?;
    Some(RunDefaults {
        shell: run.get("shell").and_then(text),
        working_directory: run.get("working-directory").and_then(text),
    })
}

fn strategy(node: &Node) -> Option<Strategy> {
    let entries = node.as_map()?;
    let mut strategy = Strategy { pos: node.pos, matrix: None, fail_fast: None, max_parallel: None };
    for (key, value) in entries {
        match key.as_str() {
            Some("matrix") => strategy.matrix = Some(value.clone()),
            Some("fail-fast") => strategy.fail_fast = or_expr_bool(value),
            Some("max-parallel") => strategy.max_parallel = or_expr_number(value),
            _ => {}
        }
    }
    Some(strategy)
}
