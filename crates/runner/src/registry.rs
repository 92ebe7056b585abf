//! The connector registry: the one place that knows every connector type.
//! Adding a platform = its crate + one line in `SOURCES` or `SINKS`.

use crate::config::{Config, ConfigError, ConnectorTable, connector_config};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::{Sink, Source, StateStore};
use tillflow_kit::config::ConfigProblem;

/// What a connector builder gets besides its own config table.
#[derive(Clone)]
pub struct ConnectorContext {
    /// The configured name (`shop` in `[sources.shop]`).
    pub name: String,
    /// For connectors that persist secrets, e.g. rotated OAuth refresh tokens.
    pub state: Arc<dyn StateStore>,
}

pub struct BuiltSource {
    pub source: Box<dyn Source>,
    pub poll_interval: Duration,
}

type SourceBuilder = fn(&Config, &ConnectorTable, &ConnectorContext) -> Result<BuiltSource, ConfigError>;
type SinkBuilder = fn(&Config, &ConnectorTable, &ConnectorContext) -> Result<Box<dyn Sink>, ConfigError>;

/// Source types built into this binary: one line per platform.
const SOURCES: &[(&str, SourceBuilder)] =
    &[(tillflow_source_woocommerce::PLATFORM, woocommerce), (tillflow_source_lightspeed::PLATFORM, lightspeed)];

/// Sink types built into this binary: one line per platform.
const SINKS: &[(&str, SinkBuilder)] =
    &[(tillflow_sink_customerio::PLATFORM, customerio), (tillflow_sink_klaviyo::PLATFORM, klaviyo)];

fn woocommerce(
    config: &Config,
    table: &ConnectorTable,
    context: &ConnectorContext,
) -> Result<BuiltSource, ConfigError> {
    let parsed: tillflow_source_woocommerce::WooCommerceConfig = connector_config(config, table)?;
    check_url(config, table, "base_url", Some(&parsed.base_url))?;
    let poll_interval = parsed.poll_interval.0;
    Ok(BuiltSource {
        source: Box::new(tillflow_source_woocommerce::WooCommerceSource::new(&context.name, parsed)),
        poll_interval,
    })
}

fn lightspeed(config: &Config, table: &ConnectorTable, context: &ConnectorContext) -> Result<BuiltSource, ConfigError> {
    let parsed: tillflow_source_lightspeed::LightspeedConfig = connector_config(config, table)?;
    check_url(config, table, "base_url", Some(&parsed.base_url))?;
    check_url(config, table, "token_url", Some(&parsed.token_url))?;
    let poll_interval = parsed.poll_interval.0;
    let source = tillflow_source_lightspeed::LightspeedSource::new(&context.name, parsed, context.state.clone())
        .map_err(|message| config.problem(table, &ConfigProblem::at("currency", message)))?;
    Ok(BuiltSource { source: Box::new(source), poll_interval })
}

fn customerio(
    config: &Config,
    table: &ConnectorTable,
    _context: &ConnectorContext,
) -> Result<Box<dyn Sink>, ConfigError> {
    let parsed: tillflow_sink_customerio::CustomerIoConfig = connector_config(config, table)?;
    check_url(config, table, "base_url", parsed.base_url.as_deref())?;
    Ok(Box::new(tillflow_sink_customerio::CustomerIoSink::new(parsed)))
}

fn klaviyo(config: &Config, table: &ConnectorTable, _context: &ConnectorContext) -> Result<Box<dyn Sink>, ConfigError> {
    let parsed: tillflow_sink_klaviyo::KlaviyoConfig = connector_config(config, table)?;
    check_url(config, table, "base_url", Some(&parsed.base_url))?;
    Ok(Box::new(tillflow_sink_klaviyo::KlaviyoSink::new(parsed)))
}

/// A URL key must be an absolute http(s) URL; caught here rather than at the
/// first request.
fn check_url(config: &Config, table: &ConnectorTable, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
    let Some(value) = value else { return Ok(()) };
    match tillflow_http::reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(config.problem(table, &ConfigProblem::at(key, format!("`{value}` is not an http(s) URL")))),
    }
}

/// Every type the operator interface names, built in or still to come.
const KNOWN_SOURCES: [&str; 4] = ["woocommerce", "lightspeed", "dutchie", "retail-pos"];
const KNOWN_SINKS: [&str; 3] = ["customerio", "klaviyo", "egoi"];

fn unknown(config: &Config, table: &ConnectorTable, known: &[&str], built: &[&str]) -> ConfigError {
    let available = if built.is_empty() { "none yet".to_owned() } else { built.join(", ") };
    let message = if known.contains(&table.type_name.as_str()) {
        format!("type `{}` is not available in this build of tillflow (available: {available})", table.type_name)
    } else {
        format!("unknown connector type `{}` (expected one of: {})", table.type_name, known.join(", "))
    };
    config.problem(table, &ConfigProblem::at("type", message))
}

pub fn build_source(
    config: &Config,
    table: &ConnectorTable,
    context: &ConnectorContext,
) -> Result<BuiltSource, ConfigError> {
    match SOURCES.iter().find(|(name, _)| *name == table.type_name) {
        Some((_, build)) => build(config, table, context),
        None => {
            let built: Vec<&str> = SOURCES.iter().map(|(name, _)| *name).collect();
            Err(unknown(config, table, &KNOWN_SOURCES, &built))
        }
    }
}

pub fn build_sink(
    config: &Config,
    table: &ConnectorTable,
    context: &ConnectorContext,
) -> Result<Box<dyn Sink>, ConfigError> {
    match SINKS.iter().find(|(name, _)| *name == table.type_name) {
        Some((_, build)) => build(config, table, context),
        None => {
            let built: Vec<&str> = SINKS.iter().map(|(name, _)| *name).collect();
            Err(unknown(config, table, &KNOWN_SINKS, &built))
        }
    }
}
