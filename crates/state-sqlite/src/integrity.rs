//! `tillflow state check`: SQLite's own integrity check over the whole file
//! (every page, every index against its table), for a file that may have been
//! damaged underneath tillflow.

use crate::sql::{describe, is_damage};
use sqlx::SqlitePool;

/// The problems SQLite found; empty when the file is sound.
pub(crate) async fn check(pool: &SqlitePool) -> Result<Vec<String>, String> {
    match sqlx::query_scalar::<_, String>("PRAGMA integrity_check(100)").fetch_all(pool).await {
        Ok(rows) => Ok(rows.into_iter().filter(|row| row != "ok").collect()),
        // Damage bad enough that the check itself cannot walk the file.
        Err(error) if is_damage(&error) => Ok(vec![error.to_string()]),
        Err(error) => Err(describe(&error)),
    }
}
