//! tillflow-source-lightspeed: Lightspeed Retail (R-Series) API V3 as a source.
//!
//! Anatomy (every source has it): `config` (operator keys), `client` (the
//! API over one HTTP client under the leaky bucket and one token manager),
//! `account` (the client shared by every pipeline, a reader each, the check),
//! `auth` (OAuth2 with rotating refresh tokens persisted the moment they
//! arrive), `wire` (the API's JSON as typed structs: every scalar a string,
//! one child an object and several an array), `mapping` (sales → orders,
//! refunds, cancellations, shipments), `source` (the reader: paging by
//! `@attributes.next`, lookups, re-reads), `sandbox` (feature `sandbox`).

pub mod account;
pub mod client;
pub mod config;
pub mod mapping;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod source;
pub mod wire;

pub use account::LightspeedAccount;
pub use config::LightspeedConfig;
pub use source::LightspeedSource;

use std::sync::Arc;
use tillflow_core::model::Currency;
use tillflow_kit::descriptor::{DemoScale, check_url};
use tillflow_kit::{AccountContext, ConfigProblem, SourceAccount, SourcePlatform};

/// The config `type` of this connector.
pub const PLATFORM: &str = "lightspeed";

pub struct Lightspeed;

impl SourcePlatform for Lightspeed {
    const TYPE: &'static str = PLATFORM;
    const TITLE: &'static str = "Lightspeed R-Series";
    const DEMO: DemoScale = DemoScale { customers: 300, orders: 1_500 };
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(sandbox::launch);
    type Config = LightspeedConfig;

    fn validate(config: &LightspeedConfig) -> Result<(), ConfigProblem> {
        check_url("base_url", &config.base_url)?;
        check_url("token_url", &config.token_url)?;
        Currency::new(&config.currency).map(|_| ()).map_err(|message| ConfigProblem::at("currency", message))
    }

    fn open(config: LightspeedConfig, context: &AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem> {
        let currency = Currency::new(&config.currency).map_err(|message| ConfigProblem::at("currency", message))?;
        Ok(Arc::new(LightspeedAccount::open(config, currency, context)))
    }
}

/// What the runner's registry lists for this platform.
pub const DESCRIPTOR: tillflow_kit::SourceDescriptor = tillflow_kit::SourceDescriptor::of::<Lightspeed>();
