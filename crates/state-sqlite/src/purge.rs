//! Forgetting an address in the state file itself (`tillflow forget`): every
//! dead letter, stored webhook and source entry that names it is deleted in
//! one transaction, SQLite zeroing what it deletes (`secure_delete`, set on
//! every connection by `connect`), and the journal is emptied after it, so
//! no copy of the address is left in the file or beside it.

use crate::sql::{begin_writing, error};
use sqlx::{Row, SqliteConnection, SqlitePool};
use tillflow_core::StateError;
use tillflow_core::forget::{Purge, Purged};

/// Rows read at a time: what names the address is looked for in Rust
/// (`forget::Purge::names`: any case, form-encoded, whole addresses only), so
/// every row is read once, never the whole table at once.
const BATCH: i64 = 256;

pub(crate) async fn purge(pool: &SqlitePool, email: &str) -> Result<Purged, StateError> {
    let Some(purge) = Purge::of(email) else { return Ok(Purged::default()) };
    // A persisted journal keeps the images of the pages a transaction
    // changed, the address among them; limited to nothing, it is cut to
    // nothing when the purge commits.
    journal_limit(pool, 0).await?;
    let purged = sweep(pool, &purge).await.map_err(error("purge a forgotten address"));
    let restored = journal_limit(pool, -1).await;
    let purged = purged?;
    restored?;
    Ok(purged)
}

async fn journal_limit(pool: &SqlitePool, bytes: i64) -> Result<(), StateError> {
    sqlx::raw_sql(&format!("PRAGMA journal_size_limit = {bytes}"))
        .execute(pool)
        .await
        .map(drop)
        .map_err(error("limit the journal"))
}

async fn sweep(pool: &SqlitePool, purge: &Purge) -> Result<Purged, sqlx::Error> {
    let mut transaction = begin_writing(pool).await?;
    let dead_letters = sweep_by_id(
        &mut transaction,
        "SELECT id, CAST(payload AS BLOB), CAST(reason AS BLOB) FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
        &["DELETE FROM dead_letters WHERE id = ?"],
        purge,
    )
    .await?;
    let webhooks = sweep_by_id(
        &mut transaction,
        "SELECT id, body, CAST(headers AS BLOB) FROM inbox WHERE id > ? ORDER BY id LIMIT ?",
        &["DELETE FROM inbox_done WHERE inbox_id = ?", "DELETE FROM inbox WHERE id = ?"],
        purge,
    )
    .await?;
    let source_entries = sweep_source_state(&mut transaction, purge).await?;
    transaction.commit().await?;
    Ok(Purged { dead_letters, webhooks, source_entries })
}

/// Deletes, by `deletes` (each binding the row's id), the rows of `select`
/// (id and two texts, after an id, in id order) whose texts name the address.
async fn sweep_by_id(
    connection: &mut SqliteConnection,
    select: &str,
    deletes: &[&str],
    purge: &Purge,
) -> Result<u64, sqlx::Error> {
    let (mut after, mut deleted) = (0_i64, 0);
    loop {
        let rows = sqlx::query(select).bind(after).bind(BATCH).fetch_all(&mut *connection).await?;
        let Some(last) = rows.last() else { return Ok(deleted) };
        after = last.get(0);
        for row in &rows {
            let (first, second): (Vec<u8>, Vec<u8>) = (row.get(1), row.get(2));
            if purge.names(&[&first, &second]) {
                for delete in deletes {
                    sqlx::query(delete).bind(row.get::<i64, _>(0)).execute(&mut *connection).await?;
                }
                deleted += 1;
            }
        }
    }
}

/// The same for `source_state`, keyed by source and key.
async fn sweep_source_state(connection: &mut SqliteConnection, purge: &Purge) -> Result<u64, sqlx::Error> {
    let (mut after, mut deleted) = ((String::new(), String::new()), 0);
    loop {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT source, key, value FROM source_state WHERE (source, key) > (?, ?) ORDER BY source, key LIMIT ?",
        )
        .bind(&after.0)
        .bind(&after.1)
        .bind(BATCH)
        .fetch_all(&mut *connection)
        .await?;
        let Some((source, key, _)) = rows.last() else { return Ok(deleted) };
        after = (source.clone(), key.clone());
        for (source, key, value) in &rows {
            if purge.names(&[key.as_bytes(), value.as_bytes()]) {
                sqlx::query("DELETE FROM source_state WHERE source = ? AND key = ?")
                    .bind(source)
                    .bind(key)
                    .execute(&mut *connection)
                    .await?;
                deleted += 1;
            }
        }
    }
}
