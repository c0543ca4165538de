//! GitHub's own expression conformance vectors (`../shared/corpus/expressions/*.json`,
//! from actions/languageservices): every one must pass. As in GitHub's harness, the
//! allowed contexts are the keys of the vector's `contexts`, and an expected error
//! passes when our message contains the expected text and comes from the same phase
//! (lexing/parsing fail `Expr::parse`, evaluation fails `Expr::eval`).

mod common;

use indexmap::IndexMap;
use metalfarm::workflow::expr::{Allowed, EvalContext, Expr, Value};

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// Runs one vector; `Err` says what went wrong.
fn check(case: &serde_json::Value) -> Result<(), String> {
    let src = case["expr"].as_str().ok_or("vector without expr")?;
    let contexts: IndexMap<String, Value> = match case.get("contexts").map(Value::from_json) {
        Some(Value::Object(map)) => map,
        _ => IndexMap::new(),
    };
    let names: Vec<&str> = contexts.keys().map(String::as_str).collect();
    let allowed = Allowed { contexts: &names, functions: &[] };
    let expected_err = case.get("err");
    let parsed = Expr::parse(src, &allowed);
    let expr = match (parsed, expected_err) {
        (Err(e), Some(err)) if err["kind"] != "evaluation" => {
            let want = err["value"].as_str().unwrap_or_default();
            return if e.message.contains(want) {
                Ok(())
            } else {
                Err(format!("parse error {:?} does not contain {want:?}", e.message))
            };
        }
        (Err(e), _) => return Err(format!("unexpected parse error: {}", e.message)),
        (Ok(_), Some(err)) if err["kind"] != "evaluation" => {
            return Err(format!("parsed, but expected {} error {}", err["kind"], err["value"]))
        }
        (Ok(expr), _) => expr,
    };
    let result = expr.eval(&EvalContext::new(&contexts));
    match (result, expected_err) {
        (Err(e), Some(err)) => {
            let want = err["value"].as_str().unwrap_or_default();
            if e.message.contains(want) {
                Ok(())
            } else {
                Err(format!("evaluation error {:?} does not contain {want:?}", e.message))
            }
        }
        (Err(e), None) => Err(format!("unexpected evaluation error: {}", e.message)),
        (Ok(v), Some(err)) => {
            Err(format!("evaluated to {}, expected error {}", v.to_json_string(), err["value"]))
        }
        (Ok(v), None) => {
            let want_kind = case["result"]["kind"].as_str().unwrap_or_default();
            let want = Value::from_json(&case["result"]["value"]).to_json_string();
            let got = v.to_json_string();
            if kind_name(&v) == want_kind && got == want {
                Ok(())
            } else {
                Err(format!("got {} {got}, expected {want_kind} {want}", kind_name(&v)))
            }
        }
    }
}

#[test]
fn every_conformance_vector_passes() {
    let dir = common::corpus_dir().join("expressions");
    let files = common::files_with_ext(&dir, &[".json"]);
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    let mut total = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("reading vectors");
        let groups: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).expect("vector JSON");
        for (name, cases) in &groups {
            for case in cases.as_array().expect("a list of vectors") {
                total += 1;
                if let Err(why) = check(case) {
                    let file = file.file_name().unwrap_or_default().to_string_lossy();
                    failures.push(format!("{file} / {name} / {}: {why}", case["expr"]));
                }
            }
        }
    }
    assert_eq!(total, 1020, "the corpus should hold GitHub's 1,020 vectors");
    assert!(failures.is_empty(), "{} of {total} vectors fail:\n{}", failures.len(), failures.join("\n"));
}
