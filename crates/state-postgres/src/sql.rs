//! What every query module shares: chunk sizes, time conversions, error
//! context, and reading stored JSON back.

use jiff::Timestamp;
use tillflow_core::StateError;

// Lookups bind one array (`= ANY($n)`) and inserts one array per column
// (`UNNEST`): each statement's text is the same whatever the number of rows,
// so the server plans it once and the connection keeps it prepared.

/// Postgres allows 65,535 bound parameters; lookups stay far below that.
pub(crate) const LOOKUP_CHUNK: usize = 500;

pub(crate) fn error(context: &str) -> impl Fn(sqlx::Error) -> StateError + '_ {
    move |e| StateError::new(format!("{context}: {}", describe(&e)))
}

/// The server's message, with what it means for the operator when the
/// connection is the problem (the server restarting, unreachable): the pass
/// stops with nothing half-committed and the next one resumes.
pub(crate) fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            format!("{error} — Postgres cannot be reached; the pass resumes once it can")
        }
        other => other.to_string(),
    }
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) use tillflow_core::stored::{from_millis, json as parse_json};

/// The server's clock in milliseconds: lease times are the database's, so
/// runners on machines whose clocks disagree still agree on expiry.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// The last row of each key, in first-seen order: one multi-row upsert may
/// not touch a row twice in Postgres (SQLite takes the last), and a batch can
/// carry one key twice (a record listed twice on a page).
pub(crate) fn last_of_each<'a, T, K: Eq + std::hash::Hash>(rows: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut position: std::collections::HashMap<K, usize> = std::collections::HashMap::with_capacity(rows.len());
    let mut kept: Vec<&T> = Vec::with_capacity(rows.len());
    for row in rows {
        match position.entry(key(row)) {
            std::collections::hash_map::Entry::Occupied(at) => kept[*at.get()] = row,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(kept.len());
                kept.push(row);
            }
        }
    }
    kept
}
