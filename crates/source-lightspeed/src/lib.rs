//! tillflow-source-lightspeed: Lightspeed Retail (R-Series) API V3 as a source.
//!
//! Anatomy: `config` (operator keys), `auth` (OAuth2 with rotating refresh
//! tokens persisted the moment they arrive), `json` (the API's quirks: every
//! scalar a string, one child an object and several an array), `mapping`
//! (sales → orders, refunds, cancellations, shipments), `source` (paging by
//! `@attributes.next`, the leaky bucket), `sandbox` (feature `sandbox`).

pub mod auth;
pub mod config;
pub mod json;
pub mod mapping;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;

pub use config::LightspeedConfig;
pub use source::LightspeedSource;

/// The config `type` of this connector.
pub const PLATFORM: &str = "lightspeed";
