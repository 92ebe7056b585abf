//! The durable webhook inbox, shared by every runner: stored before the 2xx,
//! pending per pipeline past its watermark, deleted once every reader's
//! watermark has passed it.
//!
//! A watermark says "every webhook of this source up to id N is done", which
//! holds only if ids become visible in the order they are given. Several
//! runners' servers insert at once, and a sequence hands out ids before the
//! inserts commit, so a lower id could appear after a higher one was done and
//! passed — and never be processed. Inserts of one source therefore take a
//! transaction-scoped advisory lock before their id: each commits before the
//! next id of that source is drawn.

use crate::sql::{error, millis};
use jiff::Timestamp;
use sqlx::{PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::source::InboxItem;
use tillflow_core::stored;

/// The advisory lock key of `source`'s inserts (and of moving its watermarks).
pub(crate) const SOURCE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('tillflow-inbox:' || $1, 0))";

pub(crate) async fn push(
    pool: &PgPool,
    source: &str,
    headers: &[(String, String)],
    body: &[u8],
    received_at: Timestamp,
) -> Result<i64, StateError> {
    let headers = serde_json::to_string(headers).expect("headers serialize");
    let mut transaction = pool.begin().await.map_err(error("store webhook"))?;
    sqlx::query(SOURCE_LOCK).bind(source).execute(&mut *transaction).await.map_err(error("store webhook"))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO inbox (source, received_at, headers, body) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(source)
    .bind(millis(received_at))
    .bind(headers)
    .bind(body)
    .fetch_one(&mut *transaction)
    .await
    .map_err(error("store webhook"))?;
    transaction.commit().await.map_err(error("store webhook"))?;
    Ok(id)
}

/// The webhooks of source $1 that pipeline $2 has yet to process: above its
/// watermark and not marked done.
const PENDING: &str = "FROM inbox i WHERE source = $1 \
     AND id > COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = $2 AND source = $1), 0) \
     AND NOT EXISTS (SELECT 1 FROM inbox_done d WHERE d.pipeline = $2 AND d.inbox_id = i.id)";

pub(crate) async fn pending_count(pool: &PgPool, pipeline: &str, source: &str) -> Result<u64, StateError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {PENDING}"))
        .bind(source)
        .bind(pipeline)
        .fetch_one(pool)
        .await
        .map_err(error("count inbox"))?;
    Ok(count as u64)
}

pub(crate) async fn pending(
    pool: &PgPool,
    pipeline: &str,
    source: &str,
    limit: u32,
) -> Result<Vec<InboxItem>, StateError> {
    let rows = sqlx::query(&format!("SELECT id, source, received_at, headers, body {PENDING} ORDER BY id LIMIT $3"))
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

pub(crate) async fn prune(pool: &PgPool, source: &str, pipelines: &[String]) -> Result<u64, StateError> {
    if pipelines.is_empty() {
        return Ok(0);
    }
    let mut transaction = pool.begin().await.map_err(error("prune inbox"))?;
    // Below every reader's watermark; 0 while one of them has none yet.
    let bound: Option<i64> = sqlx::query_scalar(
        "SELECT CASE WHEN COUNT(*) = $3 THEN MIN(done_through) ELSE 0 END FROM inbox_watermarks \
         WHERE source = $1 AND pipeline = ANY($2)",
    )
    .bind(source)
    .bind(pipelines)
    .bind(pipelines.len() as i64)
    .fetch_one(&mut *transaction)
    .await
    .map_err(error("prune inbox"))?;
    let bound = bound.unwrap_or(0);
    if bound <= 0 {
        return Ok(0);
    }
    // Marks of pipelines no longer configured would point at nothing.
    sqlx::query("DELETE FROM inbox_done WHERE inbox_id IN (SELECT id FROM inbox WHERE source = $1 AND id <= $2)")
        .bind(source)
        .bind(bound)
        .execute(&mut *transaction)
        .await
        .map_err(error("prune inbox"))?;
    let deleted = sqlx::query("DELETE FROM inbox WHERE source = $1 AND id <= $2")
        .bind(source)
        .bind(bound)
        .execute(&mut *transaction)
        .await
        .map_err(error("prune inbox"))?
        .rows_affected();
    transaction.commit().await.map_err(error("prune inbox"))?;
    Ok(deleted)
}
