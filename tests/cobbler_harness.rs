//! The test Cobbler and its power lab (`tests/common/cobbler.rs`) against the real
//! Cobbler 3.3.10 that `tests/cobbler/cobbler.sh` runs.

mod common;

use common::cobbler::{TestCobbler, TEST_PROFILE};
use serde_json::json;

#[test]
fn cobbler_answers_and_logs_in() {
    let cobbler = TestCobbler::start();
    let version = cobbler.call("extended_version", &[]).expect("extended_version");
    assert_eq!(version["version"], "3.3.10");
    let token = cobbler.call("login", &[json!(cobbler.user()), json!(cobbler.password())]).expect("login");
    assert_eq!(token.as_str().map(str::len), Some(36), "a 36-character token: {token}");
    assert_eq!(cobbler.call("token_check", &[token]).expect("token_check"), json!(true));
    let fault = cobbler.call("login", &[json!(cobbler.user()), json!("wrong")]).unwrap_err();
    assert!(fault.contains("login failed"), "{fault}");
    assert_eq!(cobbler.call("has_item", &[json!("profile"), json!(TEST_PROFILE)]).unwrap(), json!(true));
    // The svc answers too (True/False as plain text, even for an unknown system).
    let body = cobbler.svc_get("/cblr/svc/op/nopxe/system/no-such-system").expect("the svc server");
    assert!(body == "True" || body == "False", "{body}");
}
