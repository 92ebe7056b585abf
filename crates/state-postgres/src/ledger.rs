//! The delivered-event ledger: what became of each event key, looked up in chunks.

use crate::sql::{LOOKUP_CHUNK, error};
use sqlx::{PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::keys::{IdempotencyKey, KeyMap};
use tillflow_core::state::LedgerEntry;
use tillflow_core::stored;

pub(crate) async fn lookup(
    pool: &PgPool,
    pipeline: &str,
    keys: &[&IdempotencyKey],
) -> Result<KeyMap<LedgerEntry>, StateError> {
    let mut found = KeyMap::default();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let chunk: Vec<&str> = chunk.iter().map(|key| key.as_str()).collect();
        let rows =
            sqlx::query("SELECT key, content_hash, outcome, reason FROM ledger WHERE pipeline = $1 AND key = ANY($2)")
                .bind(pipeline)
                .bind(&chunk)
                .fetch_all(pool)
                .await
                .map_err(error("ledger lookup"))?;
        for row in rows {
            let (outcome, reason): (String, String) = (row.get(2), row.get(3));
            let (key, entry) = stored::ledger_entry(row.get(0), row.get(1), &outcome, &reason)?;
            found.insert(key, entry);
        }
    }
    Ok(found)
}
