//! What a source keeps between runs under keys of its own (the Retail POS
//! merge of POS and eCom customers), per source.

use crate::sql::{LOOKUP_CHUNK, error, millis};
use jiff::Timestamp;
use sqlx::PgPool;
use std::collections::HashMap;
use tillflow_core::StateError;

pub(crate) async fn get(pool: &PgPool, source: &str, keys: &[String]) -> Result<HashMap<String, String>, StateError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM source_state WHERE source = $1 AND key = ANY($2)")
                .bind(source)
                .bind(chunk)
                .fetch_all(pool)
                .await
                .map_err(error("read source state"))?;
        found.extend(rows);
    }
    Ok(found)
}

pub(crate) async fn put(pool: &PgPool, source: &str, entries: &[(String, String)]) -> Result<(), StateError> {
    if entries.is_empty() {
        return Ok(());
    }
    let now = millis(Timestamp::now());
    let mut transaction = pool.begin().await.map_err(error("write source state"))?;
    for (key, value) in entries {
        sqlx::query(
            "INSERT INTO source_state (source, key, value, updated_at) VALUES ($1, $2, $3, $4) \
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
    pool: &PgPool,
    source: &str,
    prefix: &str,
    limit: u32,
) -> Result<Vec<(String, String)>, StateError> {
    // A range on the primary key (code-point order), not LIKE: a prefix may hold `%` or `_`.
    let end = format!("{prefix}\u{10FFFF}");
    sqlx::query_as(
        "SELECT key, value FROM source_state WHERE source = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4",
    )
    .bind(source)
    .bind(prefix)
    .bind(end)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(error("scan source state"))
}
