//! metalfarm: a GitHub-Actions-compatible runner farm for bare-metal KVM/QEMU test hosts.
//!
//! See `ARCHITECTURE.md` at the repository root for the map of modules and invariants.

pub mod cli;
pub mod config;
pub mod exec;
pub mod farm;
pub mod forge;
pub mod provision;
pub mod store;
pub mod web;
pub mod workflow;
