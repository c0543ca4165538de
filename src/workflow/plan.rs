//! (under construction: see ARCHITECTURE.md)
