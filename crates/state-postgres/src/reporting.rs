//! What the operator reads: status counts, and the reconciliation report's
//! event and order times.

use crate::sql::{error, from_millis, millis, parse_json};
use jiff::Timestamp;
use sqlx::{PgPool, Row};
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::source::Checkpoint;
use tillflow_core::state::{OutcomeKind, PipelineStatus, StreamStatus};
use tillflow_core::stored;

pub(crate) async fn status(pool: &PgPool, pipeline: &str) -> Result<PipelineStatus, StateError> {
    let started: Option<i64> = sqlx::query_scalar("SELECT started_at FROM pipelines WHERE name = $1")
        .bind(pipeline)
        .fetch_optional(pool)
        .await
        .map_err(error("status"))?;
    let streams =
        sqlx::query("SELECT stream, checkpoint, updated_at FROM checkpoints WHERE pipeline = $1 ORDER BY stream")
            .bind(pipeline)
            .fetch_all(pool)
            .await
            .map_err(error("status"))?
            .into_iter()
            .map(|row| {
                let text: String = row.get(1);
                Ok(StreamStatus {
                    stream: row.get(0),
                    checkpoint: Checkpoint(parse_json(&text, "checkpoint")?),
                    updated_at: from_millis(row.get(2)),
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
    let counts = sqlx::query(
        "SELECT kind, outcome, reason, COUNT(*) FROM ledger WHERE pipeline = $1 GROUP BY kind, outcome, reason ORDER BY kind, outcome, reason",
    )
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .map_err(error("status"))?
    .into_iter()
    .map(|row| {
        let (kind, outcome, reason): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        stored::event_count(&kind, &outcome, &reason, row.get(3))
    })
    .collect::<Result<Vec<_>, StateError>>()?;
    let mut counts = counts;
    stored::sort_counts(&mut counts);
    let dead_letters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE pipeline = $1")
        .bind(pipeline)
        .fetch_one(pool)
        .await
        .map_err(error("status"))?;
    let last_delivery: Option<i64> =
        sqlx::query_scalar("SELECT MAX(recorded_at) FROM ledger WHERE pipeline = $1 AND outcome = 'delivered'")
            .bind(pipeline)
            .fetch_one(pool)
            .await
            .map_err(error("status"))?;
    Ok(PipelineStatus {
        started_at: started.map(from_millis),
        streams,
        counts,
        dead_letters: dead_letters.max(0) as u64,
        last_delivery_at: last_delivery.map(from_millis),
    })
}

pub(crate) async fn event_times(
    pool: &PgPool,
    pipeline: &str,
    kind: EventKind,
    outcome: OutcomeKind,
    since: Timestamp,
) -> Result<Vec<Timestamp>, StateError> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT occurred_at FROM ledger WHERE pipeline = $1 AND kind = $2 AND outcome = $3 \
         AND occurred_at >= $4 ORDER BY occurred_at",
    )
    .bind(pipeline)
    .bind(kind.as_str())
    .bind(outcome.as_str())
    .bind(millis(since))
    .fetch_all(pool)
    .await
    .map_err(error("report"))?;
    Ok(rows.into_iter().map(from_millis).collect())
}

pub(crate) async fn orders_read_times(
    pool: &PgPool,
    pipeline: &str,
    since: Timestamp,
) -> Result<Vec<Timestamp>, StateError> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT created_at FROM orders_read WHERE pipeline = $1 AND created_at >= $2 ORDER BY created_at",
    )
    .bind(pipeline)
    .bind(millis(since))
    .fetch_all(pool)
    .await
    .map_err(error("report"))?;
    Ok(rows.into_iter().map(from_millis).collect())
}
