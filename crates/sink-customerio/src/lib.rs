//! tillflow-sink-customerio: the Customer.io Track API as a tillflow sink.
//!
//! Anatomy (every sink has it): `config` (operator keys), `request` (events →
//! Track API v2 batch requests, each event one `operation`), `service` (one batch request), `response`
//! (200/207/400 → per-operation outcomes), `sink` (the declaration, the
//! descriptor and the account on the kit's sink loop), `sandbox` (feature
//! `sandbox`).

pub mod config;
pub mod operation;
pub mod request;
pub mod response;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod service;
pub mod sink;
pub mod spec;

pub use config::{CustomerIoConfig, Region};
pub use sink::{CustomerIo, CustomerIoSink, account};

/// The config `type` of this connector.
pub const PLATFORM: &str = "customerio";

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SinkDescriptor = tillflow_kit::SinkDescriptor::of::<CustomerIo>();
