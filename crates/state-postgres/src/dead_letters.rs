//! Dead letters: listed oldest first, discarded by the operator.

use crate::sql::error;
use sqlx::{PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::state::DeadLetter;
use tillflow_core::stored::DeadLetterRow;

pub(crate) async fn list(pool: &PgPool, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError> {
    let rows = sqlx::query(
        "SELECT id, pipeline, key, stage, reason, payload, created_at FROM dead_letters \
         WHERE ($1::TEXT IS NULL OR pipeline = $1) ORDER BY id LIMIT $2",
    )
    .bind(pipeline)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(error("list dead letters"))?;
    rows.into_iter()
        .map(|row| {
            DeadLetter::try_from(DeadLetterRow {
                id: row.get(0),
                pipeline: row.get(1),
                key: row.get(2),
                stage: row.get(3),
                reason: row.get(4),
                payload: row.get(5),
                created_at: row.get(6),
            })
        })
        .collect()
}

pub(crate) async fn discard(pool: &PgPool, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError> {
    let result = match ids {
        None => sqlx::query("DELETE FROM dead_letters WHERE pipeline = $1").bind(pipeline).execute(pool).await,
        Some(ids) => {
            sqlx::query("DELETE FROM dead_letters WHERE pipeline = $1 AND id = ANY($2)")
                .bind(pipeline)
                .bind(ids)
                .execute(pool)
                .await
        }
    };
    Ok(result.map_err(error("discard"))?.rows_affected())
}
