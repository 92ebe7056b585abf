//! tillflow-sink-egoi: E-goi's Marketing API v3 as a sink, after E-goi's
//! own Order Sync: contacts matched by email, the whole order history
//! imported, then every new or changed order re-posted under its id.
//!
//! Anatomy (every sink has it): `config` (operator keys), `spec` (what it
//! takes and under which names), `request` (events → contact and order
//! bodies, by `mapping` with `status`, `phone` and the list's `fields`),
//! `service` (the exchanges: list shape, connected domain, buyers before
//! imported orders), `contact_actions` (consent and group tags on a known
//! contact), `signals` (the rate headers), `response` (answers →
//! per-item outcomes), `sink` (the descriptor and the account on the kit's
//! sink loop), `sandbox` (feature `sandbox`).

pub mod config;
pub mod contact_actions;
pub mod fields;
pub mod mapping;
pub mod phone;
pub mod request;
pub mod response;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod service;
pub mod signals;
pub mod sink;
pub mod spec;
pub mod status;

pub use config::EgoiConfig;
pub use sink::{Egoi, EgoiSink, account};

/// The config `type` of this connector.
pub const PLATFORM: &str = "egoi";

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SinkDescriptor = tillflow_kit::SinkDescriptor::of::<Egoi>();
