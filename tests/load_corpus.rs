//! The loader against the shared corpora and GitHub's own parser
//! (`@actions/workflow-parser`, run through `tests/oracle/workflow-oracle.mjs`):
//!
//! (a) every `realworld/` and `actionlint/ok/` file loads with `syntax_only` and no
//!     diagnostics, except the files GitHub's parser rejects too (listed with its reason);
//! (b) every `actionlint/err/` error that GitHub's parser also reports is reported by us
//!     at the same line;
//! (c) on realworld, actionlint ok/err, act's workflows and the workflow-parser reader inputs, we agree
//!     with GitHub's parser on which files are valid (disagreements listed with reasons);
//! (d) the workflow-parser reader tests: valid/invalid and error lines as expected;
//! (e) every error GitHub's parser reports on those corpora, we report at the same line
//!     and column;
//! (f) the same differential on realworld files mutated at random (keys and values
//!     swapped for others, expressions added): validity and error positions agree.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use metalfarm::workflow::load::{load, LoadOptions};

/// Files of `realworld/` and `actionlint/ok/` that GitHub's parser rejects, with its reason.
const GITHUB_REJECTS: &[(&str, &str)] = &[
    (
        "realworld/CMU-Perceptual-Computing-Lab_openpose_.github_workflows_main.yml",
        "14:10: job `env` is one expression, GitHub wants a mapping",
    ),
    (
        "realworld/DIYgod_RSSHub_.github_workflows_npm-publish.yml",
        "11:9: Unexpected symbol: '\"DIYgod/RSSHub\"' (double quotes are not string delimiters)",
    ),
    (
        "realworld/Homebrew_homebrew-cask_.github_workflows_bump-unversioned-casks.yml",
        "14:18: boolean default for a string input",
    ),
    ("realworld/ReactiveX_RxJava_.github_workflows_gradle_release.yml", "9:5: Unexpected value 'branches'"),
    (
        "realworld/StreisandEffect_streisand_.github_workflows_streisand.yml",
        "64:14: step `env` is one expression, GitHub wants a mapping",
    ),
    ("realworld/academic_awesome-datascience_.github_workflows_action.yml", "4:13: Invalid cron expression"),
    (
        "realworld/akveo_ngx-admin_.github_workflows_demoDeploy.yml",
        "11:12: Unexpected value 'deploy-to-demo' (repository_dispatch types are a list)",
    ),
    (
        "realworld/akveo_ngx-admin_.github_workflows_docsDeploy.yml",
        "11:12: Unexpected value 'deploy-docs' (repository_dispatch types are a list)",
    ),
    ("realworld/apache_airflow_.github_workflows_ci.yml", "332:72: YAML: Missing closing \"quote"),
    (
        "realworld/apache_echarts_.github_workflows_nightly.yml",
        "9:12: Unexpected value 'publish-nightly' (repository_dispatch types are a list)",
    ),
    (
        "realworld/curl_curl_.github_workflows_macos.yml",
        "95:10: job `env` is one expression, GitHub wants a mapping",
    ),
    ("realworld/diem_diem_.github_workflows_ci-publish-base-image.yml", "5:5: A mapping was not expected"),
    ("realworld/diem_diem_.github_workflows_ci-update-sccache.yml", "5:5: A mapping was not expected"),
    ("realworld/diem_diem_.github_workflows_jsonrpc-compat.yml", "5:21: Unexpected value 'synchronized'"),
    ("realworld/ehang-io_nps_.github_workflows_release.yml", "6:5: Unexpected value 'branches'"),
    ("realworld/emscripten-core_emscripten_.github_workflows_archive.yml", "5:5: A mapping was not expected"),
    ("realworld/fabricjs_fabric.js_.github_workflows_npmpublish.yml", "5:5: Unexpected value 'branches'"),
    (
        "realworld/goldbergyoni_nodebestpractices_.github_workflows_automerge-prs.yml",
        "19:11: A mapping was not expected",
    ),
    ("realworld/gorhill_uBlock_.github_workflows_main.yml", "5:5: A mapping was not expected"),
    ("realworld/hashicorp_vagrant_.github_workflows_spectesting.yml", "3:5: Unexpected value 'branches'"),
    ("realworld/jesseduffield_lazygit_.github_workflows_automerge.yml", "19:11: A mapping was not expected"),
    ("realworld/jgm_pandoc_.github_workflows_lint.yml", "7:5: Unexpected value 'branch'"),
    ("realworld/libgdx_libgdx_.github_workflows_build-snapshot.yml", "7:5: Unexpected value 'branches'"),
    (
        "realworld/microsoft_TypeScript_.github_workflows_new-release-branch.yaml",
        "5:12: Unexpected value 'new-release-branch' (repository_dispatch types are a list)",
    ),
    (
        "realworld/microsoft_TypeScript_.github_workflows_nightly.yaml",
        "9:12: Unexpected value 'publish-nightly' (repository_dispatch types are a list)",
    ),
    (
        "realworld/microsoft_TypeScript_.github_workflows_set-version.yaml",
        "5:12: Unexpected value 'set-version' (repository_dispatch types are a list)",
    ),
    (
        "realworld/microsoft_TypeScript_.github_workflows_sync-branch.yaml",
        "5:12: Unexpected value 'sync-branch' (repository_dispatch types are a list)",
    ),
    (
        "realworld/microsoft_TypeScript_.github_workflows_twoslash-repros.yaml",
        "10:12: Unexpected value 'run-twoslash-repros' (repository_dispatch types are a list)",
    ),
    ("realworld/mochajs_mocha_.github_workflows_delete-runs.yml", "8:18: number default for a string input"),
    ("realworld/netdata_netdata_.github_workflows_dashboard-pr.yml", "11:9: Unexpected value 'name'"),
    ("realworld/netdata_netdata_.github_workflows_docker.yml", "11:9: Unexpected value 'name'"),
    ("realworld/netdata_netdata_.github_workflows_packaging.yml", "12:9: Unexpected value 'name'"),
    ("realworld/oracle_graal_.github_workflows_main.yml", "14:22: A sequence was not expected"),
    ("realworld/prettier_prettier_.github_workflows_dev-package-test.yml", "5:13: Invalid cron expression"),
    ("realworld/rclone_rclone_.github_workflows_build.yml", "19:18: boolean default for a string input"),
    (
        "realworld/scrapy_scrapy_.github_workflows_checks.yml",
        "37:12: step `env` is one expression, GitHub wants a mapping",
    ),
    (
        "realworld/scrapy_scrapy_.github_workflows_tests-ubuntu.yml",
        "61:12: step `env` is one expression, GitHub wants a mapping",
    ),
    (
        "realworld/scrapy_scrapy_.github_workflows_tests-windows.yml",
        "33:12: step `env` is one expression, GitHub wants a mapping",
    ),
    (
        "realworld/starship_starship_.github_workflows_deploy.yml",
        "203:9: Unexpected value 'working-directory' (not a key of a `uses` step)",
    ),
    (
        "realworld/tauri-apps_tauri_.github_workflows_covector-version-or-publish.yml",
        "112:11: A sequence was not expected",
    ),
    ("realworld/tauri-apps_tauri_.github_workflows_update-docs.yml", "74:11: A sequence was not expected"),
    ("realworld/tiangolo_fastapi_.github_workflows_people.yml", "11:18: boolean default for a string input"),
    ("actionlint/ok/anchors.yaml", "106:16: job `env` is one expression, GitHub wants a mapping"),
    (
        "actionlint/ok/events_with_no_config.yaml",
        "7:5: Unexpected value 'repository_dispatch' (GitHub's schema spells the string form wrongly)",
    ),
    (
        "actionlint/ok/issue-402-expression-in-services.yaml",
        "5:15: `services` is one expression, GitHub wants a mapping",
    ),
    (
        "actionlint/ok/workflow_dispatch_upper_case_inputs.yaml",
        "4:16: Unexpected value '' (an input with no settings)",
    ),
];

/// Files on which we and GitHub's parser disagree about validity, with the reason.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[(
    "workflow-parser/reader/yaml-schema-str-flow-styles.yml",
    "npm yaml rejects a multi-line double-quoted scalar whose continuation is indented less than its key; \
     yaml-rust2's scanner accepts it (GitHub's own test expects it to load)",
)];

/// Files where GitHub reports an error at a (line, col) we do not, with the reason.
const POSITION_EXCEPTIONS: &[(&str, &str)] = &[(
    "realworld/apache_airflow_.github_workflows_ci.yml",
    "a broken quoted scalar: npm yaml reports it where the quote stays open and then 60 \
     follow-on errors; we report the first, at the start of the scalar",
)];

/// Reader tests whose expectation needs what GitHub's test harness enables and a plain
/// parse does not (so the oracle and we both differ from the expectation).
const READER_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "background-steps.yml",
        "expects the allowBackgroundSteps feature flag, off by default in GitHub's parser",
    ),
    ("errors-reusable-workflow-job-inputs-required.yml", "needs the called workflow fetched (file provider)"),
    (
        "errors-reusable-workflow-job-inputs-undefined.yml",
        "needs the called workflow fetched (file provider)",
    ),
    (
        "errors-reusable-workflow-job-secrets-required.yml",
        "needs the called workflow fetched (file provider)",
    ),
    (
        "errors-reusable-workflow-job-secrets-undefined.yml",
        "needs the called workflow fetched (file provider)",
    ),
];

#[derive(Debug, Clone)]
struct Verdict {
    /// Every positioned error, as (line, col).
    positions: BTreeSet<(u32, u32)>,
    valid: bool,
    /// Lines of the errors GitHub reports with a position.
    lines: BTreeSet<u32>,
    /// The line of the first error reported, when it has one.
    first_line: Option<u32>,
    /// Whether the file is not valid YAML (npm yaml's messages say `at line L, column C`).
    yaml_error: bool,
}

/// One corpus file: its name relative to the corpus (`realworld/x.yml`) and its text.
struct Input {
    name: String,
    text: String,
}

fn top_level_workflows(dir: &Path) -> Vec<PathBuf> {
    common::files_with_ext(dir, &[".yml", ".yaml"]).into_iter().filter(|p| p.parent() == Some(dir)).collect()
}

fn corpus_inputs(sub: &str) -> Vec<Input> {
    let root = common::corpus_dir();
    top_level_workflows(&root.join(sub))
        .into_iter()
        .map(|path| Input {
            name: format!("{sub}/{}", path.file_name().unwrap().to_string_lossy()),
            text: std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        })
        .collect()
}

/// The workflows of act's runner tests (every `.yml`/`.yaml` below `act/`, but the
/// composite actions' `action.yml`), named by their path in the corpus.
fn act_inputs() -> Vec<Input> {
    let root = common::corpus_dir();
    common::files_with_ext(&root.join("act"), &[".yml", ".yaml"])
        .into_iter()
        .filter(|p| p.file_stem().is_none_or(|s| s != "action"))
        .filter_map(|path| {
            // A few of act's inputs are deliberately not UTF-8 or not text.
            let text = std::fs::read_to_string(&path).ok()?;
            let name = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            Some(Input { name, text })
        })
        .collect()
}

/// A reader test: the workflow, and the expected errors (None when it must load).
struct ReaderTest {
    name: String,
    workflow: String,
    expected_errors: Option<Vec<String>>,
}

fn reader_tests() -> Vec<ReaderTest> {
    let dir = common::corpus_dir().join("workflow-parser/reader");
    top_level_workflows(&dir)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            // Options `---` workflow `---` [called workflows `---`…] expected output.
            let docs: Vec<&str> = split_documents(&text);
            assert!(docs.len() >= 3, "{}: not options/workflow/expected", path.display());
            let expected: serde_json::Value = serde_json::from_str(docs[docs.len() - 1])
                .unwrap_or_else(|e| panic!("{}: expected output: {e}", path.display()));
            let expected_errors = expected.get("errors").map(|errors| {
                errors
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["Message"].as_str().unwrap().to_string())
                    .collect()
            });
            ReaderTest {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                workflow: docs[1].to_string(),
                expected_errors,
            }
        })
        .collect()
}

fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&text[start..]);
    docs
}

/// GitHub's verdicts on every corpus input, computed once (two node processes).
fn oracle() -> &'static BTreeMap<String, Verdict> {
    static ORACLE: OnceLock<BTreeMap<String, Verdict>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        // Canonical, as node prints the paths it walks normalised.
        let root = common::corpus_dir().canonicalize().expect("corpus path");
        let dirs: Vec<String> = ["realworld", "actionlint/ok", "actionlint/err"]
            .iter()
            .map(|d| root.join(d).to_string_lossy().into_owned())
            .collect();
        let stdin: String = reader_tests()
            .iter()
            .map(|t| serde_json::json!({"name": format!("workflow-parser/reader/{}", t.name), "content": t.workflow}).to_string() + "\n")
            .collect();
        let act: Vec<String> =
            act_inputs().iter().map(|i| root.join(&i.name).to_string_lossy().into_owned()).collect();
        let from_files = std::thread::spawn(move || {
            let args: Vec<&str> = dirs.iter().chain(&act).map(String::as_str).collect();
            common::run_node_oracle("workflow-oracle.mjs", &args, b"")
        });
        let from_stdin = common::run_node_oracle("workflow-oracle.mjs", &[], stdin.as_bytes());
        let from_files = from_files.join().expect("oracle thread");
        let prefix = format!("{}/", root.to_string_lossy());
        from_files
            .lines()
            .chain(from_stdin.lines())
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("oracle JSON line");
                let file = v["file"].as_str().unwrap();
                let name = file.strip_prefix(&prefix).unwrap_or(file).to_string();
                (name, verdict_of_oracle(&v))
            })
            .collect()
    })
}

/// A JSON line of the oracle as a verdict.
fn verdict_of_oracle(v: &serde_json::Value) -> Verdict {
    let errors = v["errors"].as_array().unwrap();
    let position = |e: &serde_json::Value| Some((e["line"].as_u64()? as u32, e["col"].as_u64()? as u32));
    Verdict {
        positions: errors.iter().filter_map(position).collect(),
        valid: v["valid"].as_bool().unwrap(),
        lines: errors.iter().filter_map(position).map(|(l, _)| l).collect(),
        first_line: errors.first().and_then(position).map(|(l, _)| l),
        yaml_error: errors.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains(" at line "))),
    }
}

fn ours(text: &str) -> Verdict {
    let loaded = load(text, &LoadOptions { syntax_only: true });
    Verdict {
        positions: loaded.diagnostics.iter().map(|d| (d.pos.line, d.pos.col)).collect(),
        valid: loaded.diagnostics.is_empty(),
        lines: loaded.diagnostics.iter().map(|d| d.pos.line).collect(),
        first_line: loaded.diagnostics.first().map(|d| d.pos.line),
        yaml_error: loaded.diagnostics.iter().any(|d| d.message.starts_with("YAML syntax error")),
    }
}

#[test]
fn realworld_and_actionlint_ok_load_except_what_github_rejects() {
    let listed: BTreeSet<&str> = GITHUB_REJECTS.iter().map(|(f, _)| *f).collect();
    let mut we_reject = BTreeSet::new();
    let mut inputs = corpus_inputs("realworld");
    assert_eq!(inputs.len(), 1503, "the realworld corpus has 1,503 files");
    inputs.extend(corpus_inputs("actionlint/ok"));
    let mut github_reject = BTreeSet::new();
    for input in &inputs {
        let verdict = ours(&input.text);
        if !verdict.valid {
            we_reject.insert(input.name.clone());
        }
        let github = &oracle()[&input.name];
        if !github.valid {
            github_reject.insert(input.name.clone());
            // Where GitHub says, we say too (its first positioned error).
            if let Some(first) = &github.first_line {
                assert!(
                    verdict.lines.contains(first),
                    "{}: GitHub reports line {first}, we {:?}",
                    input.name,
                    verdict.lines
                );
            }
        }
    }
    let we_reject: BTreeSet<&str> = we_reject.iter().map(String::as_str).collect();
    let github_reject: BTreeSet<&str> = github_reject.iter().map(String::as_str).collect();
    assert_eq!(we_reject, listed, "files we reject vs. the listed files GitHub rejects");
    assert_eq!(github_reject, listed, "files GitHub's parser rejects vs. the list");
}

#[test]
fn actionlint_err_errors_github_also_reports_are_ours_at_the_same_line() {
    let root = common::corpus_dir().join("actionlint/err");
    let mut checked = 0;
    for input in corpus_inputs("actionlint/err") {
        let out = root.join(Path::new(&input.name).file_name().unwrap()).with_extension("out");
        let Ok(expected) = std::fs::read_to_string(&out) else { continue };
        // actionlint's `test.yaml:LINE:COL: message [rule]`.
        let actionlint_lines: BTreeSet<u32> =
            expected.lines().filter_map(|l| l.split(':').nth(1)?.parse().ok()).collect();
        let github = &oracle()[&input.name];
        let both: Vec<u32> = actionlint_lines.intersection(&github.lines).copied().collect();
        if both.is_empty() {
            continue;
        }
        let verdict = ours(&input.text);
        for line in &both {
            assert!(
                verdict.lines.contains(line),
                "{}: actionlint and GitHub report line {line}; we report {:?}",
                input.name,
                verdict.lines
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} error lines were shared by actionlint and GitHub");
}

#[test]
fn we_agree_with_githubs_parser_on_which_files_are_valid() {
    let mut inputs = corpus_inputs("realworld");
    inputs.extend(corpus_inputs("actionlint/ok"));
    inputs.extend(corpus_inputs("actionlint/err"));
    inputs.extend(act_inputs());
    inputs.extend(
        reader_tests()
            .into_iter()
            .map(|t| Input { name: format!("workflow-parser/reader/{}", t.name), text: t.workflow }),
    );
    let mut disagreements = BTreeSet::new();
    for input in &inputs {
        let github =
            oracle().get(&input.name).unwrap_or_else(|| panic!("no oracle verdict for {}", input.name));
        if ours(&input.text).valid != github.valid {
            disagreements.insert(input.name.as_str());
        }
    }
    assert!(inputs.len() > 1950, "{} inputs", inputs.len());
    let known: BTreeSet<&str> = KNOWN_DISAGREEMENTS.iter().map(|(f, _)| *f).collect();
    assert_eq!(disagreements, known, "files where we and GitHub's parser disagree on validity");
}

#[test]
fn workflow_parser_reader_tests() {
    let skipped =
        std::fs::read_to_string(common::corpus_dir().join("workflow-parser/skipped-tests.txt")).unwrap();
    let skipped: BTreeSet<&str> = skipped.split_whitespace().collect();
    let exceptions: BTreeSet<&str> = READER_EXCEPTIONS.iter().map(|(f, _)| *f).collect();
    let mut differ = BTreeSet::new();
    let mut run = 0;
    for test in reader_tests() {
        if skipped.contains(test.name.as_str()) {
            continue;
        }
        run += 1;
        let verdict = ours(&test.workflow);
        let agrees = match &test.expected_errors {
            None => verdict.valid,
            Some(errors) => {
                let expected_lines: BTreeSet<u32> = errors.iter().filter_map(|m| line_of(m)).collect();
                !verdict.valid && expected_lines.is_subset(&verdict.lines)
            }
        };
        if !agrees {
            differ.insert(test.name);
        }
    }
    assert!(run >= 100, "only {run} reader tests ran");
    let differ: BTreeSet<&str> = differ.iter().map(String::as_str).collect();
    assert_eq!(
        differ, exceptions,
        "reader tests whose validity or error lines differ from GitHub's expectation"
    );
}

/// The line of GitHub's `file (Line: L, Col: C): message`.
fn line_of(message: &str) -> Option<u32> {
    let rest = &message[message.find("(Line: ")? + 7..];
    rest[..rest.find(',')?].parse().ok()
}

#[test]
fn githubs_error_positions_are_ours() {
    let mut inputs = corpus_inputs("realworld");
    inputs.extend(corpus_inputs("actionlint/ok"));
    inputs.extend(corpus_inputs("actionlint/err"));
    let mut differ = BTreeSet::new();
    let mut checked = 0;
    for input in &inputs {
        let github = &oracle()[&input.name];
        if github.valid {
            continue;
        }
        checked += github.positions.len();
        if !github.positions.is_subset(&ours(&input.text).positions) {
            differ.insert(input.name.as_str());
        }
    }
    assert!(checked > 200, "only {checked} positioned errors");
    let exceptions: BTreeSet<&str> = POSITION_EXCEPTIONS.iter().map(|(f, _)| *f).collect();
    assert_eq!(differ, exceptions, "files where GitHub reports an error at a line:col we do not");
}

/// A small deterministic generator (xorshift), so the mutants are the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Realworld files with one or two `key: value` lines changed: the key replaced by
/// another key of the language (or a typo), the value by a value of another type or an
/// expression (valid or not, with contexts valid somewhere or nowhere).
fn mutants(count: usize) -> Vec<Input> {
    const KEYS: &[&str] = &[
        "name",
        "id",
        "if",
        "run",
        "uses",
        "with",
        "env",
        "needs",
        "runs-on",
        "steps",
        "strategy",
        "matrix",
        "include",
        "exclude",
        "timeout-minutes",
        "continue-on-error",
        "shell",
        "working-directory",
        "concurrency",
        "group",
        "cancel-in-progress",
        "permissions",
        "outputs",
        "defaults",
        "container",
        "services",
        "on",
        "push",
        "branches",
        "tags",
        "paths",
        "types",
        "cron",
        "inputs",
        "default",
        "type",
        "options",
        "required",
        "description",
        "fail-fast",
        "max-parallel",
        "environment",
        "secrets",
        "Run",
        "step",
        "jobs",
    ];
    const VALUES: &[&str] = &[
        "true",
        "false",
        "yes",
        "1",
        "0x10",
        "1.5",
        "~",
        "",
        "[a, b]",
        "{a: b}",
        "\"\"",
        "''",
        "${{ github.x }}",
        "${{ matrix.os }}",
        "${{ steps.a.outputs.b }}",
        "${{ secrets.X }}",
        "${{ env.X }}",
        "${{ needs.a.result }}",
        "${{ success() }}",
        "${{ hashFiles('x') }}",
        "${{ inputs.x }}",
        "${{ 1 }}",
        "${{ x }}",
        "${{ }}",
        "${{ a",
        "${{ toJSON(github) }}",
        "read-all",
        "ubuntu-latest",
        "- a",
        "&anchor",
        "*nowhere",
    ];
    const APPENDED: &[&str] = &[
        "github.x",
        "x.y",
        "matrix.a",
        "steps.s",
        "job.status",
        "runner.os",
        "env.A",
        "secrets.B",
        "inputs.c",
        "vars.d",
        "needs.e",
        "strategy.job-index",
        "always()",
        "failure()",
        "hashFiles(1)",
        "format(1)",
        "fromJSON(1, 2)",
    ];
    let sources = corpus_inputs("realworld");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..count)
        .map(|n| {
            let source = &sources[rng.below(sources.len())];
            let mut lines: Vec<String> = source.text.split('\n').map(str::to_string).collect();
            for _ in 0..1 + rng.below(2) {
                let keyed: Vec<usize> =
                    (0..lines.len()).filter(|&i| split_key_line(&lines[i]).is_some()).collect();
                if keyed.is_empty() {
                    break;
                }
                let i = keyed[rng.below(keyed.len())];
                let (indent, key, value) = split_key_line(&lines[i]).unwrap();
                let (indent, key, value) = (indent.to_string(), key.to_string(), value.to_string());
                lines[i] = match rng.below(3) {
                    0 => format!(
                        "{indent}{}:{}",
                        rng.pick(KEYS),
                        if value.is_empty() { String::new() } else { format!(" {value}") }
                    ),
                    1 if !value.is_empty() => {
                        format!("{indent}{key}: {value} ${{{{ {} }}}}", rng.pick(APPENDED))
                    }
                    _ => format!("{indent}{key}: {}", rng.pick(VALUES)),
                };
            }
            Input { name: format!("mutant-{n:04}.yml"), text: lines.join("\n") }
        })
        .collect()
}

/// `  - key: value` as (indent with any dash, key, value).
fn split_key_line(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").unwrap_or(body);
    let indent = &line[..line.len() - body.len()];
    let colon = body.find(':')?;
    let key = &body[..colon];
    let rest = &body[colon + 1..];
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return None;
    }
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((indent, key, rest.trim()))
}

#[test]
fn mutated_realworld_files_agree_with_githubs_parser() {
    let inputs = mutants(800);
    let stdin: String = inputs
        .iter()
        .map(|i| serde_json::json!({"name": i.name, "content": i.text}).to_string() + "\n")
        .collect();
    let out = common::run_node_oracle("workflow-oracle.mjs", &[], stdin.as_bytes());
    let github: BTreeMap<String, Verdict> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_string(), verdict_of_oracle(&v))
        })
        .collect();
    let (mut invalid, mut yaml_lines, mut yaml_lines_agree) = (0, 0, 0);
    for input in &inputs {
        let theirs = &github[&input.name];
        let verdict = ours(&input.text);
        assert_eq!(verdict.valid, theirs.valid, "{}: validity differs\n{}", input.name, input.text);
        if !theirs.valid {
            invalid += 1;
            if theirs.yaml_error || verdict.yaml_error {
                // npm yaml follows a syntax error with more (or, for an unknown alias, with
                // schema errors about the hole it leaves); we report the first, on its line.
                assert!(
                    verdict.yaml_error,
                    "{}: GitHub finds a YAML error, we {:?}",
                    input.name, verdict.positions
                );
                yaml_lines += 1;
                if verdict.first_line == theirs.first_line {
                    yaml_lines_agree += 1;
                }
                continue;
            }
            assert!(
                theirs.positions.is_subset(&verdict.positions),
                "{}: GitHub reports errors at {:?}, we at {:?}\n{}",
                input.name,
                theirs.positions,
                verdict.positions,
                input.text
            );
        }
    }
    // The event parser notices some YAML errors a line later than npm yaml.
    assert!(
        yaml_lines_agree * 10 >= yaml_lines * 8,
        "YAML error lines agree in only {yaml_lines_agree} of {yaml_lines}"
    );
    assert!(invalid > 200, "only {invalid} of the mutants are invalid");
}
