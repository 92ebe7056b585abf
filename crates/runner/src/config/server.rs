//! The `[server]` table's limits: how large a webhook body may be, how long a
//! client may take to send one, how many bytes of bodies may be held at once
//! and how many connections may be open — each bounding what a careless or
//! hostile client can take from the process.

use super::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    max_body: Option<Spanned<toml::Value>>,
    read_timeout: Option<Spanned<String>>,
    max_in_flight: Option<Spanned<toml::Value>>,
    max_connections: Option<Spanned<i64>>,
    pub(super) admin_token: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub limits: ServerLimits,
    /// What the status page and `/metrics` ask for (bearer or `?token=`);
    /// required when `listen` is not loopback.
    pub admin_token: Option<secrecy::SecretString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// The largest webhook body taken, in bytes (`max_body`); a larger one is
    /// answered 413 and nothing is stored.
    pub max_body: usize,
    /// How long a client may take to send a request's headers, and then its
    /// body (`read_timeout`); a slower one loses its connection.
    pub read_timeout: Duration,
    /// Bytes of webhook bodies held at once, all connections together
    /// (`max_in_flight`); past it a body is answered 503 with Retry-After.
    pub max_in_flight: usize,
    /// Open connections (`max_connections`); `None`: from the process's
    /// open-file limit when the server starts.
    pub max_connections: Option<usize>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_connections: None,
        }
    }
}

/// `max_body` when unset: 1 MiB (platforms' webhooks are a few KB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// The bounds `max_body` may take.
const MAX_BODY_RANGE: std::ops::RangeInclusive<usize> = 1024..=(64 * 1024 * 1024);
/// `read_timeout` when unset: platforms send a webhook in well under a second.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `max_in_flight` when unset.
const DEFAULT_MAX_IN_FLIGHT: usize = 32 * 1024 * 1024;

type ErrorAt<'a> = &'a dyn Fn(Option<Range<usize>>, Option<String>, String) -> ConfigError;

pub(super) fn limits(raw: Option<&RawServer>, error_at: ErrorAt<'_>) -> Result<ServerLimits, ConfigError> {
    let mut limits = ServerLimits::default();
    let Some(raw) = raw else { return Ok(limits) };
    let problem =
        |span: Range<usize>, key: &str, message: String| error_at(Some(span), Some(format!("server.{key}")), message);
    if let Some(value) = &raw.max_body {
        let bytes = parse_size(value.get_ref()).map_err(|message| problem(value.span(), "max_body", message))?;
        if !MAX_BODY_RANGE.contains(&bytes) {
            return Err(problem(value.span(), "max_body", format!("{bytes} bytes: must be between 1KiB and 64MiB")));
        }
        limits.max_body = bytes;
    }
    if let Some(value) = &raw.read_timeout {
        let timeout = tillflow_core::duration::parse_duration(value.get_ref())
            .map_err(|message| problem(value.span(), "read_timeout", message))?;
        if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(300) {
            return Err(problem(value.span(), "read_timeout", "must be between 1s and 5m".into()));
        }
        limits.read_timeout = timeout;
    }
    if let Some(value) = &raw.max_in_flight {
        let bytes = parse_size(value.get_ref()).map_err(|message| problem(value.span(), "max_in_flight", message))?;
        if bytes < limits.max_body {
            return Err(problem(
                value.span(),
                "max_in_flight",
                format!(
                    "{bytes} bytes: must be at least server.max_body ({} bytes), or no body could arrive",
                    limits.max_body
                ),
            ));
        }
        limits.max_in_flight = bytes;
    }
    if let Some(value) = &raw.max_connections {
        let count = *value.get_ref();
        if !(4..=1_000_000).contains(&count) {
            return Err(problem(value.span(), "max_connections", format!("{count}: must be between 4 and 1000000")));
        }
        limits.max_connections = Some(count as usize);
    }
    Ok(limits)
}

/// A size: a number of bytes, or text with a unit (`"512KiB"`, `"1MiB"`,
/// `"2MB"`, `"64kB"`; KiB/MiB are 1024-based, kB/MB 1000-based).
pub fn parse_size(value: &toml::Value) -> Result<usize, String> {
    let (number, unit) = match value {
        toml::Value::Integer(bytes) => (*bytes as f64, ""),
        toml::Value::String(text) => {
            let text = text.trim();
            let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
            let number: f64 = text[..split].parse().map_err(|_| format!("`{text}` is not a size such as \"1MiB\""))?;
            (number, text[split..].trim())
        }
        other => return Err(format!("`{other}` is not a size such as \"1MiB\"")),
    };
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1000.0,
        "kib" => 1024.0,
        "mb" => 1000.0 * 1000.0,
        "mib" => 1024.0 * 1024.0,
        other => return Err(format!("unknown unit `{other}` (B, kB, KiB, MB, MiB)")),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes < 0.0 {
        return Err("must be a positive size".into());
    }
    Ok(bytes.round() as usize)
}
