//! Things that run on or for a host. Knows nothing of the forge.
//!
//! - [`hash_files`]: the real `hashFiles()` over a workspace directory.

pub mod hash_files;
