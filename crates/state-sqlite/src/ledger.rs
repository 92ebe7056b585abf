//! The delivered-event ledger: what became of each event key, looked up in chunks.

use crate::sql::{LOOKUP_CHUNK, error};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::state::LedgerEntry;
use tillflow_core::stored;

pub(crate) async fn lookup(
    pool: &SqlitePool,
    pipeline: &str,
    keys: &[&IdempotencyKey],
) -> Result<HashMap<IdempotencyKey, LedgerEntry>, StateError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT key, content_hash, outcome, reason FROM ledger WHERE pipeline = ");
        query.push_bind(pipeline).push(" AND key IN (");
        let mut separated = query.separated(", ");
        for key in chunk {
            separated.push_bind(key.as_str());
        }
        query.push(")");
        let rows = query.build().persistent(false).fetch_all(pool).await.map_err(error("ledger lookup"))?;
        for row in rows {
            let (outcome, reason): (String, String) = (row.get(2), row.get(3));
            let (key, entry) = stored::ledger_entry(row.get(0), row.get(1), &outcome, &reason)?;
            found.insert(key, entry);
        }
    }
    Ok(found)
}
