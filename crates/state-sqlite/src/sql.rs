//! What every query module shares: chunk sizes, time conversions, error
//! context, and reading stored JSON back.

use jiff::Timestamp;
use tillflow_core::StateError;

// Lookups and inserts in the query modules are built with a varying number of parameters;
// they are not kept as prepared statements (`persistent(false)`), or every
// distinct shape would stay cached per connection and memory would grow with
// the length of a history import.

/// SQLite allows 32,766 bound parameters; lookups stay far below that.
pub(crate) const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row INSERT (8 parameters each).
pub(crate) const INSERT_CHUNK: usize = 1000;

pub(crate) fn error(context: &str) -> impl Fn(sqlx::Error) -> StateError + '_ {
    move |e| StateError::new(format!("{context}: {e}"))
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) fn from_millis(value: i64) -> Timestamp {
    Timestamp::from_millisecond(value).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::new(format!("corrupt {what} in state: {e}")))
}
