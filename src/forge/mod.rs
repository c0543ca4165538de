//! The forge (GitHub or GitHub Enterprise Server): webhook verification, the App's
//! API client, check runs. Nothing here knows about hosts or SSH.

pub mod api;
pub mod app;
pub mod checks;
pub mod repos;
pub mod webhook;
