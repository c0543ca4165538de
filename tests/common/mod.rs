//! Shared by the integration tests: where the corpora and GitHub's oracles live,
//! and how to talk to them.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod cli;
pub mod cobbler;
pub mod farm;
pub mod forge;
pub mod lab;
pub mod postgres;
pub mod testhost;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `../shared/corpus` beside the repository (CI puts `shared/` there), or
/// `$METALFARM_CORPUS`. Fails loudly when absent: a silent skip would hide it.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("METALFARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.join("README.md").is_file(),
        "the shared corpus is missing at {} (CI puts shared/ beside the repository; or set METALFARM_CORPUS)",
        dir.display()
    );
    dir
}

/// `tests/oracle`, where `scripts/test.sh` installs GitHub's npm packages.
pub fn oracle_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle");
    assert!(
        dir.join("node_modules/@actions/expressions").is_dir(),
        "GitHub's npm packages are not installed in {}: run scripts/test.sh (or `npm ci` there)",
        dir.display()
    );
    dir
}

/// Runs `node tests/oracle/<script>` with `input` on stdin and returns its stdout.
/// Panics with the script's stderr when it fails.
pub fn run_node_oracle(script: &str, args: &[&str], input: &[u8]) -> String {
    let dir = oracle_dir();
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is not installed: run scripts/test.sh");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("node oracle did not run");
    writer.join().expect("writer thread").expect("writing to the node oracle");
    assert!(out.status.success(), "node {script} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

/// Every file below `dir` whose name ends with one of `exts`, sorted.
pub fn files_with_ext(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if exts.iter().any(|e| path.to_string_lossy().ends_with(e)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The real webhook payloads of `@octokit/webhooks-examples` for one event (`push`,
/// `pull_request`, …), read from `tests/oracle/node_modules` at test time.
pub fn webhook_examples(event: &str) -> Vec<serde_json::Value> {
    let index = oracle_dir().join("node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|e| panic!("reading {}: {e}", index.display()));
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).expect("index.json is a JSON list");
    let entry = all
        .into_iter()
        .find(|e| e["name"] == event)
        .unwrap_or_else(|| panic!("no {event} examples in {}", index.display()));
    entry["examples"].as_array().cloned().unwrap_or_default()
}

/// A 64 KiB file system (tmpfs) mounted over a folder of this machine, unmounted on
/// drop: a full disk on the farm's side.
pub struct TinyDisk(PathBuf);

impl TinyDisk {
    pub fn mount(dir: &Path) -> TinyDisk {
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(dir).status();
        assert!(status.expect("mount").success(), "mount a tmpfs on {}", dir.display());
        TinyDisk(dir.to_owned())
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
