//! Forgetting an address in the database (`tillflow forget`): every dead
//! letter, stored webhook and source entry that names it is deleted in one
//! transaction. The rows' old versions stay in Postgres's own keeping (dead
//! tuples until its vacuum reuses their space, the WAL, backups) under the
//! database operator's retention, not tillflow's.

use crate::sql::error;
use sqlx::{PgConnection, PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::forget::{Purge, Purged};

/// Rows read at a time: what names the address is looked for in Rust
/// (`forget::Purge::names`: any case, form-encoded, whole addresses only), so
/// every row is read once, never the whole table at once.
const BATCH: i64 = 256;

pub(crate) async fn purge(pool: &PgPool, email: &str) -> Result<Purged, StateError> {
    let Some(purge) = Purge::of(email) else { return Ok(Purged::default()) };
    let mut transaction = pool.begin().await.map_err(error("purge a forgotten address"))?;
    let dead_letters = sweep_by_id(
        &mut transaction,
        "SELECT id, convert_to(payload, 'UTF8'), convert_to(reason, 'UTF8') FROM dead_letters \
         WHERE id > $1 ORDER BY id LIMIT $2",
        &["DELETE FROM dead_letters WHERE id = $1"],
        &purge,
    )
    .await?;
    let webhooks = sweep_by_id(
        &mut transaction,
        "SELECT id, body, convert_to(headers, 'UTF8') FROM inbox WHERE id > $1 ORDER BY id LIMIT $2",
        &["DELETE FROM inbox_done WHERE inbox_id = $1", "DELETE FROM inbox WHERE id = $1"],
        &purge,
    )
    .await?;
    let source_entries = sweep_source_state(&mut transaction, &purge).await?;
    transaction.commit().await.map_err(error("purge a forgotten address"))?;
    Ok(Purged { dead_letters, webhooks, source_entries })
}

/// Deletes, by `deletes` (each binding the row's id), the rows of `select`
/// (id and two byte strings, after an id, in id order) that name the address.
async fn sweep_by_id(
    connection: &mut PgConnection,
    select: &str,
    deletes: &[&str],
    purge: &Purge,
) -> Result<u64, StateError> {
    let (mut after, mut deleted) = (0_i64, 0);
    loop {
        let rows = sqlx::query(select)
            .bind(after)
            .bind(BATCH)
            .fetch_all(&mut *connection)
            .await
            .map_err(error("purge a forgotten address"))?;
        let Some(last) = rows.last() else { return Ok(deleted) };
        after = last.get(0);
        for row in &rows {
            let (first, second): (Vec<u8>, Vec<u8>) = (row.get(1), row.get(2));
            if purge.names(&[&first, &second]) {
                for delete in deletes {
                    sqlx::query(delete)
                        .bind(row.get::<i64, _>(0))
                        .execute(&mut *connection)
                        .await
                        .map_err(error("purge a forgotten address"))?;
                }
                deleted += 1;
            }
        }
    }
}

/// The same for `source_state`, keyed by source and key.
async fn sweep_source_state(connection: &mut PgConnection, purge: &Purge) -> Result<u64, StateError> {
    let (mut after, mut deleted) = ((String::new(), String::new()), 0);
    loop {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT source, key, value FROM source_state WHERE (source, key) > ($1, $2) ORDER BY source, key LIMIT $3",
        )
        .bind(&after.0)
        .bind(&after.1)
        .bind(BATCH)
        .fetch_all(&mut *connection)
        .await
        .map_err(error("purge a forgotten address"))?;
        let Some((source, key, _)) = rows.last() else { return Ok(deleted) };
        after = (source.clone(), key.clone());
        for (source, key, value) in &rows {
            if purge.names(&[key.as_bytes(), value.as_bytes()]) {
                sqlx::query("DELETE FROM source_state WHERE source = $1 AND key = $2")
                    .bind(source)
                    .bind(key)
                    .execute(&mut *connection)
                    .await
                    .map_err(error("purge a forgotten address"))?;
                deleted += 1;
            }
        }
    }
}
