//! The one write a batch makes: ledger rows, dead letters, the checkpoint,
//! inbox marks (moving each source's watermark), resolved letters, orders
//! read and order facts, in one transaction — and, for a runner, only while
//! it still holds the pipeline's lease under the token it was given (see
//! `leases`).

use crate::leases::Fencing;
use crate::sql::{error, last_of_each, millis};
use jiff::Timestamp;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::state::Commit;

pub(crate) async fn commit(
    pool: &PgPool,
    fencing: Option<&Fencing>,
    pipeline: &str,
    commit: Commit,
) -> Result<(), StateError> {
    let mut transaction = pool.begin().await.map_err(error("begin commit"))?;
    if let Some(fencing) = fencing {
        fencing.hold(&mut transaction, pipeline).await?;
    }
    write_commit(&mut transaction, pipeline, &commit).await.map_err(error("commit"))?;
    crate::facts::record_facts(&mut transaction, pipeline, &commit.facts).await?;
    transaction.commit().await.map_err(error("commit"))
}

/// Order facts are a runner's write too: fenced like a commit.
pub(crate) async fn record_facts(
    pool: &PgPool,
    fencing: Option<&Fencing>,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut transaction = pool.begin().await.map_err(error("record facts"))?;
    if let Some(fencing) = fencing {
        fencing.hold(&mut transaction, pipeline).await?;
    }
    let totals = crate::facts::record_facts(&mut transaction, pipeline, facts).await?;
    transaction.commit().await.map_err(error("record facts"))?;
    Ok(totals)
}

/// Moves each touched source's watermark up to just before its first
/// webhook not yet done for `pipeline` (or to its newest one), and forgets
/// the done marks the watermark now covers.
async fn advance_inbox_watermarks(
    connection: &mut PgConnection,
    pipeline: &str,
    done: &[i64],
) -> Result<(), sqlx::Error> {
    let sources: Vec<String> = sqlx::query_scalar("SELECT DISTINCT source FROM inbox WHERE id = ANY($1)")
        .bind(done)
        .fetch_all(&mut *connection)
        .await?;
    for source in sources {
        let watermark: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = $1 AND source = $2), 0)",
        )
        .bind(pipeline)
        .bind(&source)
        .fetch_one(&mut *connection)
        .await?;
        let advanced: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(\
               (SELECT MIN(i.id) - 1 FROM inbox i WHERE i.source = $1 AND i.id > $3 \
                 AND NOT EXISTS (SELECT 1 FROM inbox_done d WHERE d.pipeline = $2 AND d.inbox_id = i.id)), \
               (SELECT MAX(id) FROM inbox WHERE source = $1 AND id > $3))",
        )
        .bind(&source)
        .bind(pipeline)
        .bind(watermark)
        .fetch_one(&mut *connection)
        .await?;
        let Some(advanced) = advanced.filter(|advanced| *advanced > watermark) else { continue };
        sqlx::query(
            "INSERT INTO inbox_watermarks (pipeline, source, done_through) VALUES ($1, $2, $3) \
             ON CONFLICT (pipeline, source) DO UPDATE SET done_through = excluded.done_through",
        )
        .bind(pipeline)
        .bind(&source)
        .bind(advanced)
        .execute(&mut *connection)
        .await?;
        // Marks at or below the old watermark went when it was set: only the
        // ids it now passes are looked at, not every webhook still stored
        // (under a steady stream none are pruned until the stream pauses).
        sqlx::query(
            "DELETE FROM inbox_done WHERE pipeline = $1 AND inbox_id > $4 AND inbox_id <= $2 \
             AND inbox_id IN (SELECT id FROM inbox WHERE source = $3 AND id > $4 AND id <= $2)",
        )
        .bind(pipeline)
        .bind(advanced)
        .bind(&source)
        .bind(watermark)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn write_commit(connection: &mut PgConnection, pipeline: &str, commit: &Commit) -> Result<(), sqlx::Error> {
    let now = millis(Timestamp::now());
    let ledger = last_of_each(&commit.ledger, |row| row.key.as_str());
    if !ledger.is_empty() {
        // One array per column: one statement, prepared once, whatever the
        // number of rows.
        sqlx::query(
            "INSERT INTO ledger (pipeline, key, kind, content_hash, outcome, reason, occurred_at, recorded_at) \
             SELECT $1, key, kind, content_hash, outcome, reason, occurred_at, $2 \
             FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[]) \
               AS row (key, kind, content_hash, outcome, reason, occurred_at) \
             ON CONFLICT (pipeline, key) DO UPDATE SET kind = excluded.kind, content_hash = excluded.content_hash, \
             outcome = excluded.outcome, reason = excluded.reason, occurred_at = excluded.occurred_at, \
             recorded_at = excluded.recorded_at",
        )
        .bind(pipeline)
        .bind(now)
        .bind(ledger.iter().map(|row| row.key.as_str()).collect::<Vec<_>>())
        .bind(ledger.iter().map(|row| row.kind.as_str()).collect::<Vec<_>>())
        .bind(ledger.iter().map(|row| row.content_hash.as_str()).collect::<Vec<_>>())
        .bind(ledger.iter().map(|row| row.outcome.as_str()).collect::<Vec<_>>())
        .bind(ledger.iter().map(|row| row.outcome.reason()).collect::<Vec<_>>())
        .bind(ledger.iter().map(|row| millis(row.occurred_at)).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    for letter in &commit.dead_letters {
        sqlx::query(
            "INSERT INTO dead_letters (pipeline, key, stage, reason, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(pipeline)
        .bind(letter.key.as_ref().map(IdempotencyKey::as_str))
        .bind(letter.stage.as_str())
        .bind(&letter.reason)
        .bind(letter.payload.to_string())
        .bind(now)
        .execute(&mut *connection)
        .await?;
    }
    if !commit.dead_letters_resolved.is_empty() {
        sqlx::query("DELETE FROM dead_letters WHERE id = ANY($1) AND pipeline = $2")
            .bind(&commit.dead_letters_resolved)
            .bind(pipeline)
            .execute(&mut *connection)
            .await?;
    }
    if !commit.inbox_done.is_empty() {
        sqlx::query(
            "INSERT INTO inbox_done (pipeline, inbox_id) SELECT $1, id FROM UNNEST($2::BIGINT[]) AS id \
             ON CONFLICT DO NOTHING",
        )
        .bind(pipeline)
        .bind(&commit.inbox_done)
        .execute(&mut *connection)
        .await?;
        advance_inbox_watermarks(connection, pipeline, &commit.inbox_done).await?;
    }
    let orders_read = last_of_each(&commit.orders_read, |(id, _)| id.as_str());
    if !orders_read.is_empty() {
        sqlx::query(
            "INSERT INTO orders_read (pipeline, order_id, created_at) \
             SELECT $1, order_id, created_at FROM UNNEST($2::TEXT[], $3::BIGINT[]) AS row (order_id, created_at) \
             ON CONFLICT (pipeline, order_id) DO UPDATE SET created_at = excluded.created_at",
        )
        .bind(pipeline)
        .bind(orders_read.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(orders_read.iter().map(|(_, at)| millis(*at)).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    if let Some((stream, checkpoint)) = &commit.checkpoint {
        sqlx::query(
            "INSERT INTO checkpoints (pipeline, stream, checkpoint, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
        )
        .bind(pipeline)
        .bind(stream)
        .bind(checkpoint.0.to_string())
        .bind(now)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}
