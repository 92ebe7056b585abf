//! tillflow-kit: the connector author's contract. A platform crate implements
//! what this crate defines, and the runner builds every connector through it.

pub mod config;
