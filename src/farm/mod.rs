//! The control plane: the only module that ties the store, the forge, the workflow
//! language and (later) the hosts together.

pub mod deliveries;
