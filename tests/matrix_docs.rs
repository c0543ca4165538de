//! Every matrix example of GitHub's "Running variations of jobs in a workflow" (using a
//! matrix strategy, single- and multi-dimension, from contexts, expanding or adding
//! configurations with `include`, `include` only, excluding), asserting the exact
//! combinations in GitHub's order. The matrices are written as JSON, key order as in the
//! docs' YAML.

use metalfarm::workflow::expr::Value;
use metalfarm::workflow::matrix::{expand, MatrixError};
use serde_json::{json, Value as Json};

fn combinations(matrix: Json) -> Vec<Json> {
    expand(&Value::from_json(&matrix))
        .unwrap_or_else(|e| panic!("{matrix}: {e}"))
        .into_iter()
        .map(|c| Value::Object(c).to_json())
        .collect()
}

/// Compares rendered JSON, so key order counts too (map equality ignores it).
fn assert_combinations(matrix: Json, expected: Vec<Json>) {
    let got = combinations(matrix);
    let render = |v: &[Json]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("\n");
    assert_eq!(render(&got), render(&expected));
}

#[test]
fn using_a_matrix_strategy_order() {
    // "The order of the variables in the matrix determines the order in which the jobs
    // are created."
    assert_combinations(
        json!({"version": [10, 12, 14], "os": ["ubuntu-latest", "windows-latest"]}),
        vec![
            json!({"version": 10, "os": "ubuntu-latest"}),
            json!({"version": 10, "os": "windows-latest"}),
            json!({"version": 12, "os": "ubuntu-latest"}),
            json!({"version": 12, "os": "windows-latest"}),
            json!({"version": 14, "os": "ubuntu-latest"}),
            json!({"version": 14, "os": "windows-latest"}),
        ],
    );
}

#[test]
fn single_dimension_matrix() {
    assert_combinations(
        json!({"version": [10, 12, 14]}),
        vec![json!({"version": 10}), json!({"version": 12}), json!({"version": 14})],
    );
}

#[test]
fn multi_dimension_matrix() {
    assert_combinations(
        json!({"os": ["ubuntu-22.04", "ubuntu-20.04"], "version": [10, 12, 14]}),
        vec![
            json!({"os": "ubuntu-22.04", "version": 10}),
            json!({"os": "ubuntu-22.04", "version": 12}),
            json!({"os": "ubuntu-22.04", "version": 14}),
            json!({"os": "ubuntu-20.04", "version": 10}),
            json!({"os": "ubuntu-20.04", "version": 12}),
            json!({"os": "ubuntu-20.04", "version": 14}),
        ],
    );
}

#[test]
fn axis_of_objects() {
    assert_combinations(
        json!({
            "os": ["ubuntu-latest", "macos-latest"],
            "node": [{"version": 14}, {"version": 20, "env": "NODE_OPTIONS=--openssl-legacy-provider"}]
        }),
        vec![
            json!({"os": "ubuntu-latest", "node": {"version": 14}}),
            json!({"os": "ubuntu-latest", "node": {"version": 20, "env": "NODE_OPTIONS=--openssl-legacy-provider"}}),
            json!({"os": "macos-latest", "node": {"version": 14}}),
            json!({"os": "macos-latest", "node": {"version": 20, "env": "NODE_OPTIONS=--openssl-legacy-provider"}}),
        ],
    );
}

#[test]
fn matrix_from_a_context_value() {
    // `version: ${{ github.event.client_payload.versions }}` with versions [12, 14, 16].
    let payload = json!({"event_type": "test", "client_payload": {"versions": [12, 14, 16]}});
    let versions = payload["client_payload"]["versions"].clone();
    assert_combinations(
        json!({ "version": versions }),
        vec![json!({"version": 12}), json!({"version": 14}), json!({"version": 16})],
    );
}

#[test]
fn include_fruit_and_animal() {
    assert_combinations(
        json!({
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"}
            ]
        }),
        vec![
            json!({"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"}),
            json!({"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"}),
            json!({"fruit": "pear", "animal": "cat", "color": "pink"}),
            json!({"fruit": "pear", "animal": "dog", "color": "green"}),
            json!({"fruit": "banana"}),
            json!({"fruit": "banana", "animal": "cat"}),
        ],
    );
}

#[test]
fn include_perl_versions() {
    // "will create seven jobs, testing five versions for perl and only two for macos"
    assert_combinations(
        json!({
            "os": ["ubuntu-latest"],
            "perl": ["5.16", "5.20", "5.26", "5.30", "latest"],
            "include": [
                {"os": "macos-latest", "perl": "5.26"},
                {"os": "macos-latest", "perl": "latest"}
            ]
        }),
        vec![
            json!({"os": "ubuntu-latest", "perl": "5.16"}),
            json!({"os": "ubuntu-latest", "perl": "5.20"}),
            json!({"os": "ubuntu-latest", "perl": "5.26"}),
            json!({"os": "ubuntu-latest", "perl": "5.30"}),
            json!({"os": "ubuntu-latest", "perl": "latest"}),
            json!({"os": "macos-latest", "perl": "5.26"}),
            json!({"os": "macos-latest", "perl": "latest"}),
        ],
    );
}

#[test]
fn expanding_existing_configurations() {
    // Six jobs; windows-latest/16 also gets npm: 6.
    assert_combinations(
        json!({
            "os": ["windows-latest", "ubuntu-latest"],
            "node": [12, 14, 16],
            "include": [{"os": "windows-latest", "node": 16, "npm": 6}]
        }),
        vec![
            json!({"os": "windows-latest", "node": 12}),
            json!({"os": "windows-latest", "node": 14}),
            json!({"os": "windows-latest", "node": 16, "npm": 6}),
            json!({"os": "ubuntu-latest", "node": 12}),
            json!({"os": "ubuntu-latest", "node": 14}),
            json!({"os": "ubuntu-latest", "node": 16}),
        ],
    );
}

#[test]
fn adding_configurations() {
    // Ten jobs: the nine combinations plus windows-latest/17.
    let matrix = json!({
        "os": ["macos-latest", "windows-latest", "ubuntu-latest"],
        "version": [12, 14, 16],
        "include": [{"os": "windows-latest", "version": 17}]
    });
    let mut expected = Vec::new();
    for os in ["macos-latest", "windows-latest", "ubuntu-latest"] {
        for version in [12, 14, 16] {
            expected.push(json!({"os": os, "version": version}));
        }
    }
    expected.push(json!({"os": "windows-latest", "version": 17}));
    assert_eq!(expected.len(), 10);
    assert_combinations(matrix, expected);
}

#[test]
fn include_only() {
    // "If you don't specify any matrix variables, all configurations under include will run."
    assert_combinations(
        json!({"include": [
            {"site": "production", "datacenter": "site-a"},
            {"site": "staging", "datacenter": "site-b"}
        ]}),
        vec![
            json!({"site": "production", "datacenter": "site-a"}),
            json!({"site": "staging", "datacenter": "site-b"}),
        ],
    );
}

#[test]
fn excluding_configurations() {
    // Nine jobs: twelve, minus macos-latest/12/production, minus windows-latest/16 (two).
    let matrix = json!({
        "os": ["macos-latest", "windows-latest"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "macos-latest", "version": 12, "environment": "production"},
            {"os": "windows-latest", "version": 16}
        ]
    });
    let mut expected = Vec::new();
    for os in ["macos-latest", "windows-latest"] {
        for version in [12, 14, 16] {
            for environment in ["staging", "production"] {
                let excluded = (os == "macos-latest" && version == 12 && environment == "production")
                    || (os == "windows-latest" && version == 16);
                if !excluded {
                    expected.push(json!({"os": os, "version": version, "environment": environment}));
                }
            }
        }
    }
    assert_eq!(expected.len(), 9);
    assert_combinations(matrix, expected);
}

#[test]
fn include_adds_back_what_exclude_removed() {
    // "All include combinations are processed after exclude. This allows you to use
    // include to add back combinations that were previously excluded."
    assert_combinations(
        json!({
            "os": ["macos-latest", "windows-latest"],
            "version": [12, 16],
            "exclude": [{"os": "windows-latest", "version": 16}],
            "include": [{"os": "windows-latest", "version": 16}]
        }),
        vec![
            json!({"os": "macos-latest", "version": 12}),
            json!({"os": "macos-latest", "version": 16}),
            json!({"os": "windows-latest", "version": 12}),
            json!({"os": "windows-latest", "version": 16}),
        ],
    );
}

#[test]
fn variable_names_are_case_insensitive() {
    // "`OS` and `os` will be treated as the same variable."
    assert_combinations(
        json!({
            "os": ["linux", "windows"],
            "include": [{"OS": "linux", "arch": "x64"}],
            "exclude": [{"Os": "windows"}]
        }),
        vec![json!({"os": "linux", "arch": "x64"})],
    );
}

#[test]
fn at_most_256_jobs() {
    // "A matrix will generate a maximum of 256 jobs per workflow run."
    let values: Vec<u32> = (0..16).collect();
    assert_eq!(combinations(json!({"a": values, "b": values})).len(), 256);
    let err = expand(&Value::from_json(&json!({"a": values, "b": values, "c": [1, 2]}))).unwrap_err();
    assert_eq!(err, MatrixError::TooManyCombinations(512));
    // GitHub: "Strategy for job 'x' produced 512 configurations which exceeds the
    // maximum of 256 configurations" (the plan names the job).
    assert_eq!(
        err.to_string(),
        "produced 512 configurations which exceeds the maximum of 256 configurations"
    );
}
