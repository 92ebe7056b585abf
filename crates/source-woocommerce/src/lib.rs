//! tillflow-source-woocommerce: WooCommerce REST API v3 as a tillflow source.
//! Oliver POS register sales are ordinary WooCommerce orders, recognised by
//! their meta (`_oliver_pos_receipt_id`) or a payment method ending in " (POS)".
//!
//! Anatomy: `config` (operator keys), `wire` (the platform's JSON), `mapping`
//! (wire → canonical model), `source` (paging, cursors, webhooks), `sandbox`
//! (a stateful simulator, feature `sandbox`).

pub mod config;
pub mod mapping;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;
pub mod wire;

pub use config::{AuthMode, WooCommerceConfig};
pub use source::WooCommerceSource;

/// The config `type` of this connector.
pub const PLATFORM: &str = "woocommerce";
