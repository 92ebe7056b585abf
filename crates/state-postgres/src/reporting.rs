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
    let rows: Vec<i64> = sqlx::query_scalar(&event_times_sql(kind))
        .bind(pipeline)
        .bind(outcome.as_str())
        .bind(millis(since))
        .fetch_all(pool)
        .await
        .map_err(error("report"))?;
    Ok(rows.into_iter().map(from_millis).collect())
}

/// The kind is written into the statement, not bound: a prepared statement's
/// generic plan cannot use the partial index `ledger_placed_by_time`, which
/// only a statement saying `kind = 'placed'` itself matches. (Kinds are fixed
/// names, nothing an operator or a platform writes.) Any other kind is
/// answered by reading the pipeline's rows.
pub(crate) fn event_times_sql(kind: EventKind) -> String {
    format!(
        "SELECT occurred_at FROM ledger WHERE pipeline = $1 AND kind = '{}' AND outcome = $2 \
         AND occurred_at >= $3 ORDER BY occurred_at",
        kind.as_str()
    )
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

#[cfg(test)]
mod tests {
    use super::event_times_sql;
    use tillflow_core::events::EventKind;

    /// The ledger indexes placed events alone by time, and the report's
    /// statement for them is one Postgres can answer from that index (a
    /// bound kind would not match the index's condition).
    #[tokio::test]
    async fn placed_times_are_read_from_an_index_of_placed_events_alone() {
        let Some(url) = tillflow_testkit::postgres::fresh_database("placedindex").await else { return };
        let store = crate::PgStore::open(&url).await.unwrap();
        let definitions: Vec<String> = sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE tablename = 'ledger'")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let placed: Vec<&String> = definitions.iter().filter(|d| d.contains("ledger_placed_by_time")).collect();
        assert_eq!(placed.len(), 1, "{definitions:?}");
        assert!(placed[0].ends_with("WHERE (kind = 'placed'::text)"), "{definitions:?}");
        assert_eq!(definitions.len(), 2, "the primary key and the placed index alone: {definitions:?}");
        let mut connection = store.pool().acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off").execute(&mut *connection).await.unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", event_times_sql(EventKind::Placed)))
            .bind("p")
            .bind("delivered")
            .bind(0_i64)
            .fetch_all(&mut *connection)
            .await
            .unwrap();
        assert!(plan.iter().any(|step| step.contains("ledger_placed_by_time")), "{plan:?}");
    }
}
