//! GitHub's workflow schema (the `workflow-v1.0` schema of `@actions/workflow-parser`),
//! written down in a compact notation of our own and read once at first use.
//!
//! Notation, one definition a line: `name [(contexts…)] = kind args`, where kind is
//! `string`, `string!` (non-empty), `const VALUE`, `null`, `boolean`, `number`,
//! `seq ITEM`, `map KEY:TYPE KEY!:TYPE (required) … [* KEYTYPE VALUETYPE]` (loose
//! properties), `one A B …` (one of), `values V…` (one of these strings) and
//! `types V…` (one of these strings or a list of them: an event's activity types).
//! Contexts name what expressions at that place may use; `f(min,max)` is a function.
//! A definition with contexts passes them on to everything below it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::workflow::expr::FunctionSig;

pub type DefId = usize;

#[derive(Debug)]
pub enum Kind {
    Null,
    Bool,
    Number,
    Str { constant: Option<&'static str>, non_empty: bool },
    Seq(DefId),
    Map { props: Vec<Prop>, loose: Option<(DefId, DefId)> },
    OneOf(Vec<DefId>),
}

#[derive(Debug)]
pub struct Prop {
    pub name: &'static str,
    pub ty: DefId,
    pub required: bool,
}

#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub contexts: Vec<&'static str>,
    pub functions: Vec<FunctionSig>,
    pub kind: Kind,
}

pub struct Schema {
    pub defs: Vec<Def>,
    names: HashMap<&'static str, DefId>,
}

impl Schema {
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::parse(WORKFLOW_SCHEMA))
    }

    pub fn id(&self, name: &str) -> DefId {
        *self.names.get(name).unwrap_or_else(|| panic!("schema has no definition `{name}`"))
    }

    pub fn def(&self, id: DefId) -> &Def {
        &self.defs[id]
    }

    /// The definitions of one kind this definition allows (one level of one-of, as GitHub).
    pub fn of_kind(&self, id: DefId, pred: fn(&Kind) -> bool) -> Vec<DefId> {
        match &self.defs[id].kind {
            k if pred(k) => vec![id],
            Kind::OneOf(ids) => ids.iter().copied().filter(|&i| pred(&self.defs[i].kind)).collect(),
            _ => Vec::new(),
        }
    }

    /// Every scalar definition this definition allows (nested one-ofs expanded).
    pub fn scalars(&self, id: DefId, out: &mut Vec<DefId>) {
        match &self.defs[id].kind {
            Kind::Null | Kind::Bool | Kind::Number | Kind::Str { .. } => out.push(id),
            Kind::OneOf(ids) => ids.iter().for_each(|&i| self.scalars(i, out)),
            _ => {}
        }
    }

    fn parse(text: &'static str) -> Schema {
        let mut schema = Schema { defs: Vec::new(), names: HashMap::new() };
        // Pass 1: names. Built-ins first.
        let lines: Vec<(&'static str, &'static str, &'static str)> = BUILTINS
            .lines()
            .chain(text.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (head, body) =
                    line.split_once(" = ").unwrap_or_else(|| panic!("bad schema line `{line}`"));
                let (name, contexts) = match head.split_once(" (") {
                    Some((name, rest)) => (name.trim(), rest.trim_end_matches(')')),
                    None => (head.trim(), ""),
                };
                (name, contexts, body)
            })
            .collect();
        let mut extra = Vec::new();
        for &(name, _, _) in &lines {
            let id = schema.names.len();
            assert!(schema.names.insert(name, id).is_none(), "schema defines `{name}` twice");
        }
        // Pass 2: bodies. Anonymous definitions (the parts of `types`) are appended after.
        let mut defs: Vec<Def> = Vec::with_capacity(lines.len());
        for &(name, contexts, body) in &lines {
            let (contexts, functions) = split_contexts(contexts);
            let (kind_name, args) = body.split_once(' ').unwrap_or((body, ""));
            let kind = match kind_name {
                "null" => Kind::Null,
                "boolean" => Kind::Bool,
                "number" => Kind::Number,
                "string" => Kind::Str { constant: None, non_empty: false },
                "string!" => Kind::Str { constant: None, non_empty: true },
                "const" => Kind::Str { constant: Some(args), non_empty: false },
                "seq" => Kind::Seq(schema.id(args)),
                "one" => Kind::OneOf(args.split_whitespace().map(|n| schema.id(n)).collect()),
                "values" | "types" => {
                    let base = lines.len() + extra.len();
                    let values: Vec<DefId> = args
                        .split_whitespace()
                        .enumerate()
                        .map(|(i, v)| {
                            extra.push(Def {
                                name: v,
                                contexts: Vec::new(),
                                functions: Vec::new(),
                                kind: Kind::Str { constant: Some(v), non_empty: false },
                            });
                            base + i
                        })
                        .collect();
                    if kind_name == "values" {
                        Kind::OneOf(values)
                    } else {
                        let one = lines.len() + extra.len();
                        extra.push(Def {
                            name,
                            contexts: Vec::new(),
                            functions: Vec::new(),
                            kind: Kind::OneOf(values),
                        });
                        extra.push(Def {
                            name,
                            contexts: Vec::new(),
                            functions: Vec::new(),
                            kind: Kind::Seq(one),
                        });
                        Kind::OneOf(vec![one, one + 1])
                    }
                }
                "map" => {
                    let mut props = Vec::new();
                    let mut loose = None;
                    let mut words = args.split_whitespace();
                    while let Some(word) = words.next() {
                        if word == "*" {
                            let key = schema.id(words.next().expect("loose key type"));
                            let value = schema.id(words.next().expect("loose value type"));
                            loose = Some((key, value));
                            continue;
                        }
                        let (key, ty) =
                            word.split_once(':').unwrap_or_else(|| panic!("bad property `{word}`"));
                        let (key, required) = match key.strip_suffix('!') {
                            Some(k) => (k, true),
                            None => (key, false),
                        };
                        props.push(Prop { name: key, ty: schema.id(ty), required });
                    }
                    Kind::Map { props, loose }
                }
                other => panic!("unknown schema kind `{other}` in `{name}`"),
            };
            defs.push(Def { name, contexts, functions, kind });
        }
        defs.extend(extra);
        schema.defs = defs;
        schema
    }
}

fn split_contexts(list: &'static str) -> (Vec<&'static str>, Vec<FunctionSig>) {
    let mut contexts = Vec::new();
    let mut functions = Vec::new();
    for item in list.split_whitespace() {
        match item.split_once('(') {
            Some((name, args)) => {
                let (min, max) = args.trim_end_matches(')').split_once(',').expect("function arity");
                functions.push(FunctionSig {
                    name,
                    min_args: min.parse().expect("min args"),
                    max_args: if max == "MAX" { usize::MAX } else { max.parse().expect("max args") },
                });
            }
            None => contexts.push(item),
        }
    }
    (contexts, functions)
}

const BUILTINS: &str = "
null = null
boolean = boolean
number = number
string = string
sequence = seq any
mapping = map * string any
any = one null boolean number string sequence mapping
non-empty-string = string!
sequence-of-non-empty-string = seq non-empty-string
sequence-of-string = seq string
";

const WORKFLOW_SCHEMA: &str = "
workflow-root-strict = map on!:on-strict name:string description:string run-name:run-name defaults:workflow-defaults env:workflow-env permissions:permissions concurrency:workflow-concurrency jobs!:jobs
run-name (github inputs vars) = string

on-strict = one on-string-strict on-sequence-strict on-mapping-strict
on-sequence-strict = seq on-string-strict
# GitHub's schema spells the repository_dispatch string as `branch_protection_rule`,
# so `on: repository_dispatch` (string or list form) is rejected there; so here.
on-string-strict = values branch_protection_rule check_run check_suite create delete deployment deployment_status discussion discussion_comment fork gollum image_version issue_comment issues label merge_group milestone page_build project project_card project_column public pull_request pull_request_comment pull_request_review pull_request_review_comment pull_request_target push registry_package release schedule status watch workflow_call workflow_dispatch workflow_run
on-mapping-strict = map branch_protection_rule:branch-protection-rule check_run:check-run check_suite:check-suite create:null delete:null deployment:null deployment_status:null discussion:discussion discussion_comment:discussion-comment fork:null gollum:null image_version:image-version issue_comment:issue-comment issues:issues label:label merge_group:merge-group milestone:milestone page_build:null project:project project_card:project-card project_column:project-column public:null pull_request:pull-request pull_request_comment:pull-request-comment pull_request_review:pull-request-review pull_request_review_comment:pull-request-review-comment pull_request_target:pull-request-target push:push registry_package:registry-package release:release repository_dispatch:repository-dispatch schedule:schedule status:null watch:watch workflow_call:workflow-call workflow_dispatch:workflow-dispatch workflow_run:workflow-run

branch-protection-rule = one null branch-protection-rule-mapping
branch-protection-rule-mapping = map types:branch-protection-rule-activity
branch-protection-rule-activity = types created edited deleted
check-run = one null check-run-mapping
check-run-mapping = map types:check-run-activity
check-run-activity = types completed created rerequested requested_action
check-suite = one null check-suite-mapping
check-suite-mapping = map types:check-suite-activity
check-suite-activity = types completed
discussion = one null discussion-mapping
discussion-mapping = map types:discussion-activity
discussion-activity = types created edited deleted transferred pinned unpinned labeled unlabeled locked unlocked category_changed answered unanswered
discussion-comment = one null discussion-comment-mapping
discussion-comment-mapping = map types:discussion-comment-activity
discussion-comment-activity = types created edited deleted
image-version = one null image-version-mapping
image-version-mapping = map types:image-version-activity names:event-filter versions:event-filter
image-version-activity = types created ready deleted
issue-comment = one null issue-comment-mapping
issue-comment-mapping = map types:issue-comment-activity
issue-comment-activity = types created edited deleted
issues = one null issues-mapping
issues-mapping = map types:issues-activity
issues-activity = types opened edited deleted transferred pinned unpinned closed reopened assigned unassigned labeled unlabeled locked unlocked milestoned demilestoned field_added field_removed typed untyped
label = one null label-mapping
label-mapping = map types:label-activity
label-activity = types created edited deleted
merge-group = one null merge-group-mapping
merge-group-mapping = map types:merge-group-activity branches:event-filter branches-ignore:event-filter
merge-group-activity = types checks_requested
milestone = one null milestone-mapping
milestone-mapping = map types:milestone-activity
milestone-activity = types created closed opened edited deleted
project = one null project-mapping
project-mapping = map types:project-activity
project-activity = types created closed reopened edited deleted
project-card = one null project-card-mapping
project-card-mapping = map types:project-card-activity
project-card-activity = types created moved converted edited deleted
project-column = one null project-column-mapping
project-column-mapping = map types:project-column-activity
project-column-activity = types created updated moved deleted
pull-request = one null pull-request-mapping
pull-request-mapping = map types:pull-request-activity branches:event-filter branches-ignore:event-filter paths:event-filter paths-ignore:event-filter
pull-request-activity = types assigned unassigned labeled unlabeled opened edited closed reopened synchronize converted_to_draft locked unlocked enqueued dequeued milestoned demilestoned ready_for_review review_requested review_request_removed auto_merge_enabled auto_merge_disabled stacked
pull-request-comment = one null issue-comment-mapping
pull-request-review = one null pull-request-review-mapping
pull-request-review-mapping = map types:pull-request-review-activity
pull-request-review-activity = types submitted edited dismissed
pull-request-review-comment = one null pull-request-review-comment-mapping
pull-request-review-comment-mapping = map types:pull-request-review-comment-activity
pull-request-review-comment-activity = types created edited deleted
pull-request-target = one null pull-request-target-mapping
pull-request-target-mapping = map types:pull-request-activity branches:event-filter branches-ignore:event-filter paths:event-filter paths-ignore:event-filter
push = one null push-mapping
push-mapping = map branches:event-filter branches-ignore:event-filter tags:event-filter tags-ignore:event-filter paths:event-filter paths-ignore:event-filter
registry-package = one null registry-package-mapping
registry-package-mapping = map types:registry-package-activity
registry-package-activity = types published updated
release = one null release-mapping
release-mapping = map types:release-activity
release-activity = types published unpublished created edited deleted prereleased released
repository-dispatch = one null repository-dispatch-mapping
repository-dispatch-mapping = map types:sequence-of-non-empty-string
schedule = seq cron-mapping
cron-mapping = map cron!:non-empty-string timezone:non-empty-string
watch = one null watch-mapping
watch-mapping = map types:watch-activity
watch-activity = types started
workflow-run = one null workflow-run-mapping
workflow-run-mapping = map types:workflow-run-activity workflows:event-filter branches:event-filter branches-ignore:event-filter
workflow-run-activity = types requested completed in_progress
event-filter = one non-empty-string sequence-of-non-empty-string

workflow-call = one null workflow-call-mapping
workflow-call-mapping = map inputs:workflow-call-inputs secrets:workflow-call-secrets outputs:workflow-call-outputs
workflow-call-inputs = map * non-empty-string workflow-call-input-definition
workflow-call-input-definition = map description:string type!:workflow-call-input-type required:boolean default:workflow-call-input-default
workflow-call-input-type = values string boolean number
workflow-call-input-default (github inputs vars) = one string boolean number
workflow-call-secrets = map * non-empty-string workflow-call-secret-definition
workflow-call-secret-definition = one null workflow-call-secret-mapping-definition
workflow-call-secret-mapping-definition = map description:string required:boolean
workflow-call-outputs = map * non-empty-string workflow-call-output-definition
workflow-call-output-definition = map description:string value!:workflow-output-context
workflow-output-context (github inputs vars jobs) = string

workflow-dispatch = one null workflow-dispatch-mapping
workflow-dispatch-mapping = map inputs:workflow-dispatch-inputs
workflow-dispatch-inputs = map * non-empty-string workflow-dispatch-input
workflow-dispatch-input = map description:string type:workflow-dispatch-input-type required:boolean default:workflow-dispatch-input-default options:sequence-of-string
workflow-dispatch-input-type = values string boolean number environment choice
workflow-dispatch-input-default = one string boolean number

permissions = one permissions-mapping permission-shorthand
permission-shorthand = values read-all write-all
permissions-mapping = map actions:permission-any artifact-metadata:permission-any attestations:permission-any checks:permission-any code-quality:permission-any contents:permission-any copilot-requests:permission-write-or-none deployments:permission-any discussions:permission-any drives:permission-any id-token:permission-write-or-none issues:permission-any models:permission-read-or-none packages:permission-any pages:permission-any pull-requests:permission-any repository-projects:permission-any security-events:permission-any statuses:permission-any vulnerability-alerts:permission-read-or-none
permission-any = values read write none
permission-read-or-none = values read none
permission-write-or-none = values write none

workflow-defaults = map run:workflow-defaults-run
workflow-defaults-run = map shell:non-empty-string working-directory:non-empty-string
workflow-env (github inputs vars secrets) = map * non-empty-string string
workflow-concurrency (github inputs vars) = one string concurrency-mapping

jobs = map * non-empty-string job
job = one job-factory workflow-job
job-factory = map needs:needs if:job-if strategy:strategy name:string-strategy-context runs-on!:runs-on timeout-minutes:number-strategy-context cancel-timeout-minutes:number-strategy-context continue-on-error:boolean-strategy-context container:container services:services env:job-env environment:job-environment permissions:permissions concurrency:job-concurrency outputs:job-outputs defaults:job-defaults steps:steps snapshot:snapshot
workflow-job = map name:string-strategy-context uses!:non-empty-string with:workflow-job-with secrets:workflow-job-secrets needs:needs if:job-if permissions:permissions concurrency:job-concurrency strategy:strategy
workflow-job-with = map * non-empty-string scalar-needs-context
workflow-job-secrets = one workflow-job-secrets-mapping workflow-job-secrets-inherit
workflow-job-secrets-mapping = map * non-empty-string scalar-needs-context-with-secrets
workflow-job-secrets-inherit = const inherit
needs = one sequence-of-non-empty-string non-empty-string
job-if (github inputs vars needs always(0,0) failure(0,MAX) cancelled(0,0) success(0,MAX)) = string
strategy (github inputs vars needs) = map fail-fast:boolean max-parallel:number matrix:matrix
matrix = map include:matrix-filter exclude:matrix-filter * non-empty-string sequence
matrix-filter = seq matrix-filter-item
matrix-filter-item = map * non-empty-string any
snapshot = one non-empty-string snapshot-mapping
snapshot-mapping = map image-name!:non-empty-string if:snapshot-if version:non-empty-string
snapshot-if (github inputs vars needs strategy matrix) = string
runs-on (github inputs vars needs strategy matrix) = one non-empty-string sequence-of-non-empty-string runs-on-mapping
runs-on-mapping = map group:non-empty-string labels:runs-on-labels
runs-on-labels = one non-empty-string sequence-of-non-empty-string
job-env (github inputs vars needs strategy matrix secrets) = map * non-empty-string string
job-concurrency (github inputs vars needs strategy matrix) = one non-empty-string concurrency-mapping
concurrency-mapping = map group!:non-empty-string cancel-in-progress:boolean queue:concurrency-queue
concurrency-queue = values single max
job-environment (github inputs vars needs strategy matrix) = one string job-environment-mapping
job-environment-mapping = map name!:job-environment-name url:string-runner-context-no-secrets deployment:boolean
job-environment-name (github inputs vars needs strategy matrix) = string
job-defaults = map run:job-defaults-run
job-defaults-run (github inputs vars strategy matrix needs env) = map shell:non-empty-string working-directory:non-empty-string
job-outputs = map * non-empty-string string-runner-context

steps = seq steps-item
steps-item = one run-step regular-step wait-step wait-all-step cancel-step parallel-step
run-step = map name:step-name id:step-id if:step-if timeout-minutes:step-timeout-minutes run!:string-steps-context continue-on-error:step-continue-on-error env:step-env working-directory:string-steps-context shell:non-empty-string background:boolean
regular-step = map name:step-name id:step-id if:step-if continue-on-error:step-continue-on-error timeout-minutes:step-timeout-minutes uses!:non-empty-string with:step-with env:step-env background:boolean
wait-step = map name:step-name id:step-id continue-on-error:step-continue-on-error wait!:step-wait-target
wait-all-step = map name:step-name id:step-id continue-on-error:step-continue-on-error wait-all!:step-wait-all-value
cancel-step = map name:step-name id:step-id continue-on-error:step-continue-on-error cancel!:non-empty-string
parallel-step = map parallel!:steps
step-wait-target = one non-empty-string sequence-of-non-empty-string
step-wait-all-value = one null boolean
step-id = string!
step-if (github inputs vars needs strategy matrix steps job runner env always(0,0) failure(0,0) cancelled(0,0) success(0,0) hashFiles(1,255)) = string
step-continue-on-error (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = boolean
step-env (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = map * non-empty-string string
step-name (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = string
step-timeout-minutes (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = number
step-with (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = map * non-empty-string string

container (github inputs vars needs strategy matrix) = one string container-mapping
container-mapping = map image:non-empty-string options:string env:container-env ports:sequence-of-non-empty-string volumes:sequence-of-non-empty-string credentials:container-registry-credentials
services (github inputs vars needs strategy matrix) = map * non-empty-string services-container
services-container (github inputs vars needs strategy matrix) = one non-empty-string service-container-mapping
service-container-mapping = map image:non-empty-string options:string env:container-env ports:sequence-of-non-empty-string volumes:sequence-of-non-empty-string credentials:container-registry-credentials entrypoint:string command:string
container-registry-credentials (github inputs vars secrets env) = map username:non-empty-string password:non-empty-string
container-env = map * non-empty-string string-runner-context

scalar-needs-context (github inputs vars needs strategy matrix) = one string boolean number
scalar-needs-context-with-secrets (github inputs vars needs secrets strategy matrix) = one string boolean number
boolean-strategy-context (github inputs vars needs strategy matrix) = boolean
number-strategy-context (github inputs vars needs strategy matrix) = number
string-strategy-context (github inputs vars needs strategy matrix) = string
string-runner-context (github inputs vars needs strategy matrix secrets steps job runner env) = string
string-runner-context-no-secrets (github inputs vars needs strategy matrix steps job runner env) = string
string-steps-context (github inputs vars needs strategy matrix secrets steps job runner env hashFiles(1,255)) = string
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_reads_and_every_reference_resolves() {
        let schema = Schema::get();
        let root = schema.id("workflow-root-strict");
        assert!(matches!(schema.def(root).kind, Kind::Map { .. }));
        let step_if = schema.def(schema.id("step-if"));
        assert!(step_if.contexts.contains(&"steps"));
        assert!(step_if.functions.iter().any(|f| f.name == "hashFiles" && f.max_args == 255));
        let mut scalars = Vec::new();
        schema.scalars(schema.id("on-strict"), &mut scalars);
        assert_eq!(scalars.len(), 36);
    }
}
