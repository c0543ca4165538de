//! The messages users read when an expression is wrong, in one reviewable snapshot.
//! Most are GitHub's own wording (the differential test holds them to it); the
//! snapshot shows them together, with metalfarm's own (templates, hashFiles, limits).

use indexmap::IndexMap;
use metalfarm::workflow::expr::{Allowed, EvalContext, Expr, Template, Value, HASH_FILES, STATUS_FUNCTIONS};

fn message(src: &str, template: bool) -> String {
    let mut contexts = IndexMap::new();
    contexts.insert("github".to_string(), Value::from_json(&serde_json::json!({"ref": "refs/heads/main"})));
    let functions: Vec<_> = STATUS_FUNCTIONS.iter().copied().chain([HASH_FILES]).collect();
    let allowed = Allowed { contexts: &["github"], functions: &functions };
    let cx = EvalContext::new(&contexts);
    let result = if template {
        Template::parse(src, &allowed).and_then(|t| t.eval(&cx))
    } else {
        Expr::parse(src, &allowed).and_then(|e| e.eval(&cx))
    };
    match result {
        Ok(v) => format!("value {}", v.to_json_string()),
        Err(e) => match e.pos {
            Some(p) => format!("error at {p}: {}", e.message),
            None => format!("error: {}", e.message),
        },
    }
}

#[test]
fn error_messages() {
    let expressions = [
        "github.ref ==",
        "github.ref = 'x'",
        "github.ref == 'a",
        "github.\n ref",
        "env.CI",
        "nope()",
        "contains('a')",
        "success(1)",
        "case(true, 1)",
        "1 2",
        "(1",
        "foo-bar",
        "1.2.3",
        "format('{0}')",
        "format('{x}', 1)",
        "fromJSON('{')",
        "fromJSON('')",
        "case(1, 2, 3)",
        "github[fromJSON('')]",
        "hashFiles('**/*.lock')",
        &format!("{}1{}", "(".repeat(50), ")".repeat(50)),
    ];
    let templates = ["echo ${{ github.ref", "echo ${{ }}", "${{ github.nope }}", "ref: ${{ github.ref == }}"];
    let mut out = String::new();
    for e in expressions {
        out.push_str(&format!("{e:?}\n    {}\n", message(e, false)));
    }
    for t in templates {
        out.push_str(&format!("template {t:?}\n    {}\n", message(t, true)));
    }
    insta::assert_snapshot!(out);
}
