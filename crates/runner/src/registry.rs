//! The connector registry: the one place that knows every connector type.
//! Adding a platform = its crate + one line in `SOURCES` or `SINKS`.

use crate::config::{Config, ConfigError, ConnectorTable};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::{Sink, Source, StateStore};

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

/// Source types built into this binary.
const SOURCES: &[(&str, SourceBuilder)] = &[];

/// Sink types built into this binary.
const SINKS: &[(&str, SinkBuilder)] = &[];

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
    config.connector_error(table, Some("type"), message)
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
