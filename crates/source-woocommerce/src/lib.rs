//! tillflow-source-woocommerce: WooCommerce REST API v3 as a tillflow source.
//! Oliver POS register sales are ordinary WooCommerce orders, recognised by
//! their meta (`_oliver_pos_receipt_id`) or a payment method ending in " (POS)".
//!
//! Anatomy (every source has it): `config` (operator keys), `client` (the
//! platform's API over one HTTP client), `account` (the client shared by
//! every pipeline, a reader each, webhook signatures, the check), `wire` (the
//! platform's JSON as typed structs), `mapping` (wire → canonical model),
//! `source` (the reader: streams, cursors, pages, webhooks, re-reads),
//! `sandbox` (a stateful simulator, feature `sandbox`).

pub mod account;
pub mod client;
pub mod config;
pub mod mapping;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;
pub mod wire;

pub use account::WooCommerceAccount;
pub use config::{AuthMode, WooCommerceConfig};
pub use source::WooCommerceSource;

use std::sync::Arc;
use tillflow_kit::descriptor::{DemoScale, check_url};
use tillflow_kit::{AccountContext, ConfigProblem, SourceAccount, SourcePlatform};

/// The config `type` of this connector.
pub const PLATFORM: &str = "woocommerce";

pub struct WooCommerce;

impl SourcePlatform for WooCommerce {
    const TYPE: &'static str = PLATFORM;
    const TITLE: &'static str = "WooCommerce";
    const DEMO: DemoScale = DemoScale { customers: 500, orders: 2_000 };
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(sandbox::launch);
    type Config = WooCommerceConfig;

    fn validate(config: &WooCommerceConfig) -> Result<(), ConfigProblem> {
        check_url("base_url", &config.base_url)
    }

    fn open(config: WooCommerceConfig, context: &AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem> {
        Ok(Arc::new(WooCommerceAccount::open(config, context)))
    }
}

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SourceDescriptor = tillflow_kit::SourceDescriptor::of::<WooCommerce>();
