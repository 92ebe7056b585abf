//! The connector registry: the one list of the platforms built into this
//! binary. Adding a platform is its crate, its line below and its line in
//! this crate's Cargo.toml; everything else (config types, `tillflow
//! sandbox`, the demo's pairs, `check`, the webhook server, help texts)
//! iterates over these lists.

use tillflow_kit::{SinkDescriptor, SourceDescriptor};

/// Source platforms: one line each.
#[rustfmt::skip]
pub const SOURCES: &[SourceDescriptor] = &[
    tillflow_source_woocommerce::DESCRIPTOR,
    tillflow_source_lightspeed::DESCRIPTOR,
    tillflow_source_dutchie::DESCRIPTOR,
    tillflow_source_retail_pos::DESCRIPTOR,
];

/// Sink platforms: one line each.
#[rustfmt::skip]
pub const SINKS: &[SinkDescriptor] = &[
    tillflow_sink_customerio::DESCRIPTOR,
    tillflow_sink_klaviyo::DESCRIPTOR,
    tillflow_sink_egoi::DESCRIPTOR,
];

/// Every type the operator interface names (DESIGN §6), built in or still to
/// come, so an operator is told "not in this build" rather than "unknown".
const INTERFACE_SOURCES: [&str; 4] = ["woocommerce", "lightspeed", "dutchie", "retail-pos"];
const INTERFACE_SINKS: [&str; 3] = ["customerio", "klaviyo", "egoi"];

pub fn source(type_name: &str) -> Option<&'static SourceDescriptor> {
    SOURCES.iter().find(|descriptor| descriptor.type_name == type_name)
}

pub fn sink(type_name: &str) -> Option<&'static SinkDescriptor> {
    SINKS.iter().find(|descriptor| descriptor.type_name == type_name)
}

/// What the sink platform `type_name` calls events of `kind` ("Order
/// Placed"), its kind's own name when the platform is unknown or names none.
pub fn sink_event_name(type_name: &str, kind: tillflow_core::EventKind) -> &'static str {
    sink(type_name)
        .and_then(|descriptor| descriptor.events.iter().find(|(k, _)| *k == kind).map(|(_, name)| *name))
        .unwrap_or(kind.as_str())
}

/// Why `type_name` cannot be built as a source (`sources`) or a sink.
pub fn unknown_type(kind: &str, type_name: &str) -> String {
    let (interface, built): (&[&str], Vec<&str>) = if kind == "sources" {
        (&INTERFACE_SOURCES, SOURCES.iter().map(|d| d.type_name).collect())
    } else {
        (&INTERFACE_SINKS, SINKS.iter().map(|d| d.type_name).collect())
    };
    let mut known: Vec<&str> = interface.to_vec();
    known.extend(built.iter().filter(|name| !interface.contains(name)));
    if interface.contains(&type_name) {
        format!("type `{type_name}` is not available in this build of tillflow (available: {})", built.join(", "))
    } else {
        format!("unknown connector type `{type_name}` (expected one of: {})", known.join(", "))
    }
}

/// The platforms that have a sandbox, sources first.
pub fn sandbox_platforms() -> Vec<&'static str> {
    SOURCES
        .iter()
        .filter(|d| d.sandbox.is_some())
        .map(|d| d.type_name)
        .chain(SINKS.iter().filter(|d| d.sandbox.is_some()).map(|d| d.type_name))
        .collect()
}
