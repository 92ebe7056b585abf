//! The delivered-event ledger: what became of each event key, looked up in one
//! statement (its columns packed as `ledger_codes` says).

use crate::ledger_codes::{outcome_of, unpack_hash};
use crate::sql::{error, json_list};
use sqlx::{Row, SqlitePool};
use tillflow_core::StateError;
use tillflow_core::keys::{IdempotencyKey, KeyMap};
use tillflow_core::state::LedgerEntry;
use tillflow_core::stored;

pub(crate) async fn lookup(
    pool: &SqlitePool,
    pipeline: &str,
    keys: &[&IdempotencyKey],
) -> Result<KeyMap<LedgerEntry>, StateError> {
    let mut found = KeyMap::with_capacity_and_hasher(keys.len(), Default::default());
    if keys.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query(
        "SELECT ledger.key, ledger.content_hash, ledger.outcome, ledger.reason \
         FROM json_each(?) AS asked CROSS JOIN ledger ON ledger.key = asked.value AND ledger.pipeline = ?",
    )
    .bind(json_list(keys.iter().map(|key| key.as_str())))
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .map_err(error("ledger lookup"))?;
    for row in rows {
        let (hash, outcome, reason): (&[u8], i64, &str) = (row.get(1), row.get(2), row.get(3));
        let (key, entry) = stored::ledger_entry(row.get(0), unpack_hash(hash)?, outcome_of(outcome)?.as_str(), reason)?;
        found.insert(key, entry);
    }
    Ok(found)
}
