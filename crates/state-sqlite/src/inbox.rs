//! The durable webhook inbox: stored before the 2xx, pending per pipeline
//! past its watermark, deleted once every reader's watermark has passed it.

use crate::sql::{error, millis};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tillflow_core::StateError;
use tillflow_core::source::InboxItem;
use tillflow_core::stored;

/// Stores one webhook, in whatever transaction the state's group writer
/// gives it (webhooks that arrive together share one); answers its id.
pub(crate) async fn store(
    connection: &mut SqliteConnection,
    source: &str,
    headers: &str,
    body: &[u8],
    received_at: Timestamp,
) -> Result<i64, sqlx::Error> {
    // One statement: the group writer runs it without a savepoint.
    let stored = sqlx::query("INSERT INTO inbox (source, received_at, headers, body) VALUES (?, ?, ?, ?)")
        .bind(source)
        .bind(millis(received_at))
        .bind(headers)
        .bind(body)
        .execute(connection)
        .await?;
    Ok(stored.last_insert_rowid())
}

/// The webhooks of source ?1 that pipeline ?2 has yet to process: above its
/// watermark and not marked done.
const PENDING: &str = "FROM inbox i WHERE source = ?1 \
     AND id > COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = ?2 AND source = ?1), 0) \
     AND NOT EXISTS (SELECT 1 FROM inbox_done d WHERE d.pipeline = ?2 AND d.inbox_id = i.id)";

pub(crate) async fn pending_count(pool: &SqlitePool, pipeline: &str, source: &str) -> Result<u64, StateError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {PENDING}"))
        .bind(source)
        .bind(pipeline)
        .fetch_one(pool)
        .await
        .map_err(error("count inbox"))?;
    Ok(count as u64)
}

pub(crate) async fn pending(
    pool: &SqlitePool,
    pipeline: &str,
    source: &str,
    limit: u32,
) -> Result<Vec<InboxItem>, StateError> {
    let rows = sqlx::query(&format!("SELECT id, source, received_at, headers, body {PENDING} ORDER BY id LIMIT ?3"))
        .bind(source)
        .bind(pipeline)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(error("read inbox"))?;
    rows.into_iter()
        .map(|row| {
            let headers: String = row.get(3);
            stored::inbox_item(row.get(0), row.get(1), row.get(2), &headers, row.get(4))
        })
        .collect()
}

/// The webhooks one prune transaction deletes at most. With `secure_delete`
/// every page they free is overwritten and journaled first: 1,000 webhooks
/// of 3 KB took 20–28 ms on the one writer, and a backlog cleared after an
/// outage seconds, while every webhook arriving meanwhile (and every round's
/// commit) waited for it.
pub(crate) const PRUNE_CHUNK: u32 = 100;

/// Deletes the oldest `limit` (at most) of the webhooks of `source` that
/// every one of `pipelines` has passed, in whatever transaction the group
/// writer gives it; answers how many. Fewer than `limit`: none are left.
pub(crate) async fn prune(
    connection: &mut SqliteConnection,
    source: &str,
    pipelines: &[String],
    limit: u32,
) -> Result<u64, StateError> {
    if pipelines.is_empty() {
        return Ok(0);
    }
    // Below every reader's watermark; 0 while one of them has none yet.
    let mut bound = QueryBuilder::<Sqlite>::new("SELECT CASE WHEN COUNT(*) = ");
    bound.push_bind(pipelines.len() as i64);
    bound.push(" THEN MIN(done_through) ELSE 0 END FROM inbox_watermarks WHERE source = ");
    bound.push_bind(source);
    bound.push(" AND pipeline IN (");
    let mut separated = bound.separated(", ");
    for pipeline in pipelines {
        separated.push_bind(pipeline);
    }
    bound.push(")");
    let bound: i64 =
        bound.build_query_scalar().persistent(false).fetch_one(&mut *connection).await.map_err(error("prune inbox"))?;
    if bound <= 0 {
        return Ok(0);
    }
    // The newest webhook of this chunk: the oldest `limit` below the bound.
    let chunk_end: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(id) FROM (SELECT id FROM inbox WHERE source = ? AND id <= ? ORDER BY id LIMIT ?)",
    )
    .bind(source)
    .bind(bound)
    .bind(i64::from(limit))
    .fetch_one(&mut *connection)
    .await
    .map_err(error("prune inbox"))?;
    let Some(chunk_end) = chunk_end else { return Ok(0) };
    // Marks of pipelines no longer configured would point at nothing.
    sqlx::query("DELETE FROM inbox_done WHERE inbox_id IN (SELECT id FROM inbox WHERE source = ? AND id <= ?)")
        .bind(source)
        .bind(chunk_end)
        .execute(&mut *connection)
        .await
        .map_err(error("prune inbox"))?;
    let deleted = sqlx::query("DELETE FROM inbox WHERE source = ? AND id <= ?")
        .bind(source)
        .bind(chunk_end)
        .execute(&mut *connection)
        .await
        .map_err(error("prune inbox"))?
        .rows_affected();
    Ok(deleted)
}
