//! tillflow-source-retail-pos: Lightspeed Retail X-Series merged with its
//! eCom (E-Series) store as one tillflow source — every customer once, with
//! one group and one marketing-email preference, most recent change wins,
//! and the sales rung at the till (and online) as orders.
//!
//! Anatomy (every source has it): `config` (operator keys), `client` (the
//! X-Series API: tokens, the register-sized budget), `ecom_client` (the
//! eCom API), `account` (the clients shared by every pipeline, a reader
//! each, webhook verdicts, the check), `wire` and `ecom_wire` (their JSON
//! as typed structs), `merge` (the rules of one view, pure), `people` (the
//! merge's memory in the state store), `mapping` (wire → canonical model),
//! `reference` (outlets, groups, products, registers), `source` (the
//! reader: streams, cursors, pages), `webhook` (triggers of both stores),
//! `sandbox` (feature `sandbox`).

pub mod account;
pub mod client;
pub mod config;
pub mod ecom_client;
pub mod ecom_wire;
pub mod mapping;
pub mod merge;
pub mod people;
pub mod reference;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;
pub mod webhook;
pub mod wire;

pub use account::RetailPosAccount;
pub use config::RetailPosConfig;
pub use source::RetailPosSource;

use std::sync::Arc;
use tillflow_kit::descriptor::DemoScale;
use tillflow_kit::{AccountContext, ConfigProblem, SourceAccount, SourcePlatform};

/// The config `type` of this connector.
pub const PLATFORM: &str = "retail-pos";

pub struct RetailPos;

impl SourcePlatform for RetailPos {
    const TYPE: &'static str = PLATFORM;
    const TITLE: &'static str = "Retail POS";
    const DEMO: DemoScale = DemoScale { customers: 120, orders: 500 };
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(sandbox::launch);
    type Config = RetailPosConfig;

    fn validate(config: &RetailPosConfig) -> Result<(), ConfigProblem> {
        config.validate()
    }

    fn open(config: RetailPosConfig, context: &AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem> {
        Ok(Arc::new(RetailPosAccount::open(config, context)?))
    }
}

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SourceDescriptor = tillflow_kit::SourceDescriptor::of::<RetailPos>();
