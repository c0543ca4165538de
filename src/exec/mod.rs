//! Things that run on or for a host. Knows nothing of the forge.
//!
//! - [`hash_files`]: the real `hashFiles()` over a workspace directory.
//! - [`commands`]: workflow commands (`::error::`, `::add-mask::`, …) in a step's output.
//! - [`envfiles`]: what a step wrote to `GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`.
//! - [`lines`]: a step's output stream cut into lines.
//! - [`mask`]: secrets replaced by `***` before anything is written or sent.
//! - [`shell`]: the command line a `run:` step runs with.

pub mod commands;
pub mod envfiles;
pub mod hash_files;
pub mod lines;
pub mod mask;
pub mod shell;
