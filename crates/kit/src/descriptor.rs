//! Descriptors: the one value each platform crate exports, saying everything
//! the runner needs — the config `type`, how to parse and validate its table
//! (contacting nothing), how to open an account from it, its sandbox, and for
//! sinks the events it sends under which names. The runner's registry is a
//! list of these and nothing else.

use crate::account::{AccountContext, SinkAccount, SourceAccount};
use crate::config::{ConfigProblem, parse};
use crate::sandbox::SandboxFactory;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tillflow_core::EventKind;

/// The size of the store a source's demo sandbox is seeded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoScale {
    pub customers: u64,
    pub orders: u64,
}

/// A source platform, as its crate describes it.
pub trait SourcePlatform: 'static {
    /// The config `type`.
    const TYPE: &'static str;
    /// The platform's name for people ("WooCommerce").
    const TITLE: &'static str;
    const DEMO: DemoScale = DemoScale { customers: 500, orders: 2_000 };
    /// The platform's simulator, when the crate is built with `sandbox`.
    const SANDBOX: Option<SandboxFactory> = None;
    /// The operator's keys (`deny_unknown_fields`).
    type Config: DeserializeOwned + Send + 'static;

    /// Checks what types alone cannot (URLs, currency codes); contacts nothing.
    fn validate(_config: &Self::Config) -> Result<(), ConfigProblem> {
        Ok(())
    }

    fn open(config: Self::Config, context: &AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem>;
}

/// A sink platform, as its crate describes it.
pub trait SinkPlatform: 'static {
    const TYPE: &'static str;
    const TITLE: &'static str;
    /// Each kind of event the sink sends and the name the platform shows it
    /// under (the sandbox counts what it stores under the same names).
    const EVENTS: &'static [(EventKind, &'static str)];
    const SANDBOX: Option<SandboxFactory> = None;
    type Config: DeserializeOwned + Send + 'static;

    fn validate(_config: &Self::Config) -> Result<(), ConfigProblem> {
        Ok(())
    }

    fn open(config: Self::Config, context: &AccountContext) -> Result<Arc<dyn SinkAccount>, ConfigProblem>;
}

/// A parsed and validated source config, ready to open an account.
pub type OpenSource = Box<dyn FnOnce(&AccountContext) -> Result<Arc<dyn SourceAccount>, ConfigProblem> + Send>;
/// A parsed and validated sink config, ready to open an account.
pub type OpenSink = Box<dyn FnOnce(&AccountContext) -> Result<Arc<dyn SinkAccount>, ConfigProblem> + Send>;

pub struct SourceDescriptor {
    pub type_name: &'static str,
    pub title: &'static str,
    pub demo: DemoScale,
    /// Parses and validates a `[sources.X]` table (without `type` and the
    /// common keys); nothing is contacted and nothing is written.
    pub parse: fn(serde_json::Value) -> Result<OpenSource, ConfigProblem>,
    pub sandbox: Option<SandboxFactory>,
}

impl SourceDescriptor {
    pub const fn of<P: SourcePlatform>() -> Self {
        Self { type_name: P::TYPE, title: P::TITLE, demo: P::DEMO, parse: parse_source::<P>, sandbox: P::SANDBOX }
    }
}

pub struct SinkDescriptor {
    pub type_name: &'static str,
    pub title: &'static str,
    pub events: &'static [(EventKind, &'static str)],
    /// Parses and validates a `[sinks.Y]` table; nothing is contacted.
    pub parse: fn(serde_json::Value) -> Result<OpenSink, ConfigProblem>,
    pub sandbox: Option<SandboxFactory>,
}

impl SinkDescriptor {
    pub const fn of<P: SinkPlatform>() -> Self {
        Self { type_name: P::TYPE, title: P::TITLE, events: P::EVENTS, parse: parse_sink::<P>, sandbox: P::SANDBOX }
    }
}

fn parse_source<P: SourcePlatform>(table: serde_json::Value) -> Result<OpenSource, ConfigProblem> {
    let config: P::Config = parse(table)?;
    P::validate(&config)?;
    Ok(Box::new(move |context: &AccountContext| P::open(config, context)))
}

fn parse_sink<P: SinkPlatform>(table: serde_json::Value) -> Result<OpenSink, ConfigProblem> {
    let config: P::Config = parse(table)?;
    P::validate(&config)?;
    Ok(Box::new(move |context: &AccountContext| P::open(config, context)))
}

/// The check every URL key gets: an absolute http(s) URL with a host.
pub fn check_url(key: &str, value: &str) -> Result<(), ConfigProblem> {
    match tillflow_http::reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(ConfigProblem::at(key, format!("`{value}` is not an http(s) URL"))),
    }
}
