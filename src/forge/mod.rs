//! The forge (GitHub or GitHub Enterprise Server): webhook verification and event
//! parsing, the App's API client, check runs. Nothing here knows about hosts or SSH.

pub mod webhook;
