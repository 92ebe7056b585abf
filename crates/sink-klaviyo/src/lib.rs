//! tillflow-sink-klaviyo: the Klaviyo API (revision 2026-07-15) as a sink.
//!
//! Anatomy: `config` (operator keys), `request` (events → JSON:API resources
//! and bulk job bodies), `service` (HTTP exchanges per endpoint tier, job
//! polling, JSON:API errors), `sink` (the `Sink` implementation).

pub mod config;
pub mod request;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod service;
pub mod sink;

pub use config::KlaviyoConfig;
pub use sink::KlaviyoSink;

/// The config `type` of this connector.
pub const PLATFORM: &str = "klaviyo";
/// The API revision every request pins (the spec in shared/contracts/klaviyo).
pub const REVISION: &str = "2026-07-15";
