//! Dead letters: listed oldest first, discarded by the operator.

use crate::sql::{error, from_millis, parse_json};
use sqlx::{PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::state::{DeadLetter, DeadLetterStage};

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
            let stage: String = row.get(3);
            let payload: String = row.get(5);
            Ok(DeadLetter {
                id: row.get(0),
                pipeline: row.get(1),
                key: row.get::<Option<String>, _>(2).map(IdempotencyKey::from_stored),
                stage: DeadLetterStage::parse(&stage)
                    .ok_or_else(|| StateError::new(format!("unknown dead-letter stage `{stage}`")))?,
                reason: row.get(4),
                payload: parse_json(&payload, "dead letter")?,
                created_at: from_millis(row.get(6)),
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
