//! Tombstones of people who asked to be forgotten, shared by every pipeline.

use crate::sql::{LOOKUP_CHUNK, error, millis};
use jiff::Timestamp;
use sqlx::SqlitePool;
use std::collections::HashSet;
use tillflow_core::StateError;

pub(crate) async fn record(pool: &SqlitePool, subjects: &[String], at: Timestamp) -> Result<(), StateError> {
    if subjects.is_empty() {
        return Ok(());
    }
    let mut transaction = pool.begin().await.map_err(error("record a tombstone"))?;
    for subject in subjects {
        sqlx::query("INSERT INTO forgotten (subject, forgotten_at) VALUES (?, ?) ON CONFLICT (subject) DO NOTHING")
            .bind(subject)
            .bind(millis(at))
            .execute(&mut *transaction)
            .await
            .map_err(error("record a tombstone"))?;
    }
    transaction.commit().await.map_err(error("record a tombstone"))
}

pub(crate) async fn lookup(pool: &SqlitePool, subjects: &[String]) -> Result<HashSet<String>, StateError> {
    let mut found = HashSet::new();
    for chunk in subjects.chunks(LOOKUP_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT subject FROM forgotten WHERE subject IN ({placeholders})");
        let mut query = sqlx::query_scalar::<_, String>(&sql).persistent(false);
        for subject in chunk {
            query = query.bind(subject);
        }
        found.extend(query.fetch_all(pool).await.map_err(error("read tombstones"))?);
    }
    Ok(found)
}
