//! tillflow-sink-customerio: the Customer.io Track API as a tillflow sink.
//!
//! Anatomy (every sink has the same four parts): `config` (operator keys),
//! `request` (events → Track API v2 batch operations, split by the byte
//! limits), `service` (sending a batch, reading 200/207/400), `sink` (the
//! `Sink` implementation tying them together).

pub mod config;
pub mod request;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod service;
pub mod sink;

pub use config::{CustomerIoConfig, Region};
pub use sink::CustomerIoSink;

/// The config `type` of this connector.
pub const PLATFORM: &str = "customerio";
