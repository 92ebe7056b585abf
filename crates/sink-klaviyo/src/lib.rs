//! tillflow-sink-klaviyo: the Klaviyo API (revision 2026-07-15) as a sink.
//!
//! Anatomy (every sink has it): `config` (operator keys), `request` (events →
//! JSON:API profiles, events and bulk job bodies), `service` (the exchanges
//! per endpoint tier, job polling, list membership), `response` (answers →
//! per-item outcomes), `sink` (the declaration, the descriptor and the
//! account on the kit's sink loop), `sandbox` (feature `sandbox`).

pub mod catalog;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod service;
pub mod sink;
pub mod spec;

pub use config::KlaviyoConfig;
pub use sink::{Klaviyo, KlaviyoSink, account};

/// The config `type` of this connector.
pub const PLATFORM: &str = "klaviyo";
/// The API revision every request pins (the spec in shared/contracts/klaviyo).
pub const REVISION: &str = "2026-07-15";

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SinkDescriptor = tillflow_kit::SinkDescriptor::of::<Klaviyo>();
