//! Tombstones of people who asked to be forgotten, shared by every pipeline
//! and every runner.

use crate::sql::{LOOKUP_CHUNK, error, millis};
use jiff::Timestamp;
use sqlx::PgPool;
use std::collections::HashSet;
use tillflow_core::StateError;

pub(crate) async fn record(pool: &PgPool, subjects: &[String], at: Timestamp) -> Result<(), StateError> {
    if subjects.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO forgotten (subject, forgotten_at) SELECT subject, $2 FROM UNNEST($1::text[]) AS subject \
         ON CONFLICT (subject) DO NOTHING",
    )
    .bind(subjects)
    .bind(millis(at))
    .execute(pool)
    .await
    .map_err(error("record a tombstone"))?;
    Ok(())
}

pub(crate) async fn lookup(pool: &PgPool, subjects: &[String]) -> Result<HashSet<String>, StateError> {
    let mut found = HashSet::new();
    for chunk in subjects.chunks(LOOKUP_CHUNK) {
        let rows: Vec<String> = sqlx::query_scalar("SELECT subject FROM forgotten WHERE subject = ANY($1)")
            .bind(chunk)
            .fetch_all(pool)
            .await
            .map_err(error("read tombstones"))?;
        found.extend(rows);
    }
    Ok(found)
}
