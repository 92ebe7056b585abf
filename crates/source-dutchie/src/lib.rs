//! tillflow-source-dutchie: Dutchie POS as a tillflow source — every child
//! location of one parent retailer, unified, as Klaviyo's Dutchie
//! integration shows them (and with history, which it does not import).
//!
//! Anatomy (every source has it): `config` (operator keys), `client` (one
//! location key's client: Basic auth, per-key limits), `locations` (the keys,
//! their locations and parent), `account` (a reader each, the check), `wire` (Dutchie's
//! JSON, whatever its casing, as typed structs), `mapping` (wire → canonical
//! model with the integration's property names), `source` (the reader:
//! per-location windows with overlap, caches), `sandbox` (feature `sandbox`).

pub mod account;
pub mod client;
pub mod config;
pub mod locations;
pub mod mapping;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;
pub mod wire;

pub use account::DutchieAccount;
pub use config::DutchieConfig;
pub use source::DutchieSource;

use std::sync::Arc;
use tillflow_kit::descriptor::DemoScale;
use tillflow_kit::{AccountContext, ConfigProblem, SourceAccount, SourcePlatform};

/// The config `type` of this connector.
pub const PLATFORM: &str = "dutchie";

pub struct Dutchie;

impl SourcePlatform for Dutchie {
    const TYPE: &'static str = PLATFORM;
    const TITLE: &'static str = "Dutchie";
    const DEMO: DemoScale = DemoScale { customers: 150, orders: 600 };
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(sandbox::launch);
    type Config = DutchieConfig;

    fn validate(config: &DutchieConfig) -> Result<(), ConfigProblem> {
        config.validate()
    }

    fn open(config: DutchieConfig, context: &AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem> {
        Ok(Arc::new(DutchieAccount::open(config, context)))
    }
}

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SourceDescriptor = tillflow_kit::SourceDescriptor::of::<Dutchie>();
