//! When each pipeline first started, its checkpoints, and forgetting them (reset).

use crate::sql::{error, from_millis, millis, parse_json};
use jiff::Timestamp;
use sqlx::PgPool;
use tillflow_core::StateError;
use tillflow_core::source::Checkpoint;

pub(crate) async fn pipeline_started_at(
    pool: &PgPool,
    pipeline: &str,
    now: Timestamp,
) -> Result<Timestamp, StateError> {
    sqlx::query("INSERT INTO pipelines (name, started_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(pipeline)
        .bind(millis(now))
        .execute(pool)
        .await
        .map_err(error("record pipeline start"))?;
    let started: i64 = sqlx::query_scalar("SELECT started_at FROM pipelines WHERE name = $1")
        .bind(pipeline)
        .fetch_one(pool)
        .await
        .map_err(error("read pipeline start"))?;
    Ok(from_millis(started))
}

pub(crate) async fn checkpoint(pool: &PgPool, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT checkpoint FROM checkpoints WHERE pipeline = $1 AND stream = $2")
            .bind(pipeline)
            .bind(stream)
            .fetch_optional(pool)
            .await
            .map_err(error("read checkpoint"))?;
    text.map(|t| parse_json(&t, "checkpoint").map(Checkpoint)).transpose()
}

pub(crate) async fn reset(pool: &PgPool, pipeline: &str) -> Result<(), StateError> {
    let mut transaction = pool.begin().await.map_err(error("reset"))?;
    for table in [
        "checkpoints WHERE pipeline",
        "ledger WHERE pipeline",
        "order_facts WHERE pipeline",
        "person_totals WHERE pipeline",
        "orders_read WHERE pipeline",
        "pipelines WHERE name",
    ] {
        sqlx::query(&format!("DELETE FROM {table} = $1"))
            .bind(pipeline)
            .execute(&mut *transaction)
            .await
            .map_err(error("reset"))?;
    }
    transaction.commit().await.map_err(error("reset"))
}
