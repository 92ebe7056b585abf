//! What a source keeps between runs under keys of its own (the Retail POS
//! merge of POS and eCom customers), per source.

use crate::sql::{error, millis};
use jiff::Timestamp;
use sqlx::SqlitePool;
use std::collections::HashMap;
use tillflow_core::StateError;

/// SQLite's default limit on bound parameters is far above this.
const KEYS_PER_QUERY: usize = 500;

pub(crate) async fn get(
    pool: &SqlitePool,
    source: &str,
    keys: &[String],
) -> Result<HashMap<String, String>, StateError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT key, value FROM source_state WHERE source = ? AND key IN ({placeholders})");
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(source);
        for key in chunk {
            query = query.bind(key);
        }
        found.extend(query.fetch_all(pool).await.map_err(error("read source state"))?);
    }
    Ok(found)
}

pub(crate) async fn put(pool: &SqlitePool, source: &str, entries: &[(String, String)]) -> Result<(), StateError> {
    if entries.is_empty() {
        return Ok(());
    }
    let now = millis(Timestamp::now());
    let mut transaction = pool.begin().await.map_err(error("write source state"))?;
    for (key, value) in entries {
        sqlx::query(
            "INSERT INTO source_state (source, key, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(error("write source state"))?;
    }
    transaction.commit().await.map_err(error("write source state"))
}

pub(crate) async fn scan(
    pool: &SqlitePool,
    source: &str,
    prefix: &str,
    limit: u32,
) -> Result<Vec<(String, String)>, StateError> {
    // A range on the primary key, not LIKE: a prefix may hold `%` or `_`.
    let end = format!("{prefix}\u{10FFFF}");
    sqlx::query_as("SELECT key, value FROM source_state WHERE source = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?")
        .bind(source)
        .bind(prefix)
        .bind(end)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(error("scan source state"))
}
