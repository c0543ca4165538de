//! Things that run on or for a host. Knows nothing of the forge.
//!
//! - [`hash_files`]: the real `hashFiles()` over a workspace directory.
//! - [`keys`]: the farm's SSH key; host keys and fingerprints as OpenSSH prints them.
//! - [`ssh`]: SSH sessions to hosts: commands, and files over SFTP.

pub mod hash_files;
pub mod keys;
pub mod ssh;
