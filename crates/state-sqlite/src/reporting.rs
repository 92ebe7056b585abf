//! What the operator reads: status counts, and the reconciliation report's
//! event and order times.

use crate::ledger_codes::{kind_code, kind_of, outcome_code, outcome_of};
use crate::sql::{error, from_millis, millis, parse_json};
use jiff::Timestamp;
use sqlx::{Row, SqlitePool};
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::source::Checkpoint;
use tillflow_core::state::{OutcomeKind, PipelineStatus, StreamStatus};
use tillflow_core::stored;

pub(crate) async fn status(pool: &SqlitePool, pipeline: &str) -> Result<PipelineStatus, StateError> {
    let started: Option<i64> = sqlx::query_scalar("SELECT started_at FROM pipelines WHERE name = ?")
        .bind(pipeline)
        .fetch_optional(pool)
        .await
        .map_err(error("status"))?;
    let streams =
        sqlx::query("SELECT stream, checkpoint, updated_at FROM checkpoints WHERE pipeline = ? ORDER BY stream")
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
        "SELECT kind, outcome, reason, COUNT(*) FROM ledger WHERE pipeline = ? GROUP BY kind, outcome, reason ORDER BY kind, outcome, reason",
    )
    .bind(pipeline)
    .fetch_all(pool)
    .await
    .map_err(error("status"))?
    .into_iter()
    .map(|row| {
        let (kind, outcome, reason): (i64, i64, &str) = (row.get(0), row.get(1), row.get(2));
        stored::event_count(kind_of(kind)?.as_str(), outcome_of(outcome)?.as_str(), reason, row.get(3))
    })
    .collect::<Result<Vec<_>, StateError>>()?;
    let mut counts = counts;
    stored::sort_counts(&mut counts);
    let dead_letters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE pipeline = ?")
        .bind(pipeline)
        .fetch_one(pool)
        .await
        .map_err(error("status"))?;
    let last_delivery: Option<i64> =
        sqlx::query_scalar("SELECT MAX(recorded_at) FROM ledger WHERE pipeline = ? AND outcome = ?")
            .bind(pipeline)
            .bind(outcome_code(OutcomeKind::Delivered))
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
    pool: &SqlitePool,
    pipeline: &str,
    kind: EventKind,
    outcome: OutcomeKind,
    since: Timestamp,
) -> Result<Vec<Timestamp>, StateError> {
    let rows: Vec<i64> = sqlx::query_scalar(&event_times_sql(kind))
        .bind(pipeline)
        .bind(outcome_code(outcome))
        .bind(millis(since))
        .fetch_all(pool)
        .await
        .map_err(error("report"))?;
    Ok(rows.into_iter().map(from_millis).collect())
}

/// The kind's number is written into the statement, not bound: SQLite uses
/// the partial index `ledger_placed_by_time` only for a statement that says
/// `kind = 0` (placed) itself. Any other kind is answered by reading the
/// pipeline's rows.
pub(crate) fn event_times_sql(kind: EventKind) -> String {
    format!(
        "SELECT occurred_at FROM ledger WHERE pipeline = ? AND kind = {} AND outcome = ? \
         AND occurred_at >= ? ORDER BY occurred_at",
        kind_code(kind)
    )
}

pub(crate) async fn orders_read_times(
    pool: &SqlitePool,
    pipeline: &str,
    since: Timestamp,
) -> Result<Vec<Timestamp>, StateError> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT created_at FROM orders_read WHERE pipeline = ? AND created_at >= ? ORDER BY created_at",
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
    /// statement for them is one SQLite answers from that index: every other
    /// ledger row is written to one B-tree, not two.
    #[tokio::test]
    async fn placed_times_are_read_from_an_index_of_placed_events_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("state.db")).await.unwrap();
        let definition: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'ledger_placed_by_time'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert!(definition.ends_with("WHERE kind = 0"), "{definition}");
        assert_eq!(crate::ledger_codes::kind_code(EventKind::Placed), 0);
        let ledger_indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' AND sql IS NOT NULL",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(ledger_indexes, ["ledger_placed_by_time"]);
        let plan = crate::sql::query_plan(&store.pool, &event_times_sql(EventKind::Placed), |query| {
            query.bind("p").bind(0_i64).bind(0_i64)
        })
        .await;
        assert!(plan.iter().any(|step| step.contains("INDEX ledger_placed_by_time")), "{plan:?}");
    }
}
