//! The admin CLI (the built `metalfarm` binary) run against a test server.

use std::process::Command;

use super::farm::FarmServer;

/// What a CLI command did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `metalfarm ARGS --server <the server>`, with `METALFARM_TOKEN` = `token` when given.
pub fn cli(server: &FarmServer, token: Option<&str>, args: &[&str]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_metalfarm"));
    command.args(args).arg("--server").arg(server.url("")).env_remove("METALFARM_TOKEN");
    if let Some(token) = token {
        command.env("METALFARM_TOKEN", token);
    }
    let out = command.output().expect("run metalfarm");
    Ran {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8"),
    }
}

/// Runs a command that must succeed; its stdout.
pub fn ok(server: &FarmServer, token: &str, args: &[&str]) -> String {
    let ran = cli(server, Some(token), args);
    assert_eq!(ran.code, 0, "metalfarm {args:?}: {ran:?}");
    ran.stdout
}

/// The admin token the server created in its data folder.
pub fn admin_token(server: &FarmServer) -> String {
    let text =
        std::fs::read_to_string(server.dir.path().join("data/admin-token")).expect("the admin token file");
    text.trim().to_owned()
}
