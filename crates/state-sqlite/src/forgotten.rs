//! Tombstones of people who asked to be forgotten, shared by every pipeline.

use crate::sql::{error, json_list, millis};
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
    if subjects.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM json_each(?) AS asked CROSS JOIN forgotten ON forgotten.subject = asked.value",
    )
    .bind(json_list(subjects.iter().map(String::as_str)))
    .fetch_all(pool)
    .await
    .map_err(error("read tombstones"))?;
    Ok(found.into_iter().collect())
}
