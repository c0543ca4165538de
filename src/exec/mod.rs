//! Things that run on or for a host. Knows nothing of the forge.
//!
//! - [`hash_files`]: the real `hashFiles()` over a workspace directory.
//! - [`commands`]: workflow commands (`::error::`, `::add-mask::`, …) in a step's output.
//! - [`envfiles`]: what a step wrote to `GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`.
//! - [`lines`]: a step's output stream cut into lines.
//! - [`mask`]: secrets replaced by `***` before anything is written or sent.
//! - [`shell`]: the command line a `run:` step runs with.
//! - [`keys`]: the farm's SSH key; host keys and fingerprints as OpenSSH prints them.
//! - [`ssh`]: SSH sessions to hosts: commands, and files over SFTP.
//! - [`host`]: a job's session on its host; a process in its own group, killed whole.
//! - [`output`]: a step's output to log lines: commands taken out, secrets masked.
//! - [`job`]: runs a job's steps as GitHub's runner does.
//! - [`job_processes`]: the processes a job starts on its host, killed when it ends.
//! - [`actions`]: the built-in actions (`actions/checkout`, `actions/upload-artifact`, `metalfarm/reboot`).
//! - [`composite`]: local composite actions (`uses: ./path`), run as steps of the job.

pub mod actions;
pub mod commands;
pub mod composite;
pub mod envfiles;
pub mod hash_files;
pub mod host;
pub mod job;
pub mod job_processes;
pub mod keys;
pub mod lines;
pub mod mask;
pub mod output;
pub mod shell;
pub mod ssh;
