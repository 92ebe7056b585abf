//! The one write a batch makes: ledger rows, dead letters, the checkpoint,
//! inbox marks (moving each source's watermark), resolved letters and orders
//! read, in one transaction.

use crate::sql::{INSERT_CHUNK, LOOKUP_CHUNK, error, kept, millis};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use tillflow_core::StateError;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::state::{Commit, Outcome};

pub(crate) async fn commit(pool: &SqlitePool, pipeline: &str, commit: Commit) -> Result<(), StateError> {
    let mut transaction = pool.begin().await.map_err(error("begin commit"))?;
    write_commit(&mut transaction, pipeline, &commit).await.map_err(error("commit"))?;
    transaction.commit().await.map_err(error("commit"))
}

/// Moves each touched source's watermark up to just before its first
/// webhook not yet done for `pipeline` (or to its newest one), and forgets
/// the done marks the watermark now covers. Inside the commit's write
/// transaction, so no webhook can be added below the new watermark meanwhile.
async fn advance_inbox_watermarks(
    transaction: &mut Transaction<'_, Sqlite>,
    pipeline: &str,
    done: &[i64],
) -> Result<(), sqlx::Error> {
    let mut sources = std::collections::BTreeSet::new();
    for chunk in done.chunks(LOOKUP_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT DISTINCT source FROM inbox WHERE id IN (");
        let mut separated = query.separated(", ");
        for id in chunk {
            separated.push_bind(id);
        }
        query.push(")");
        let found: Vec<String> = query.build_query_scalar().persistent(false).fetch_all(&mut **transaction).await?;
        sources.extend(found);
    }
    for source in sources {
        let watermark: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = ? AND source = ?), 0)",
        )
        .bind(pipeline)
        .bind(&source)
        .fetch_one(&mut **transaction)
        .await?;
        let advanced: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(\
               (SELECT MIN(i.id) - 1 FROM inbox i WHERE i.source = ?1 AND i.id > ?3 \
                 AND NOT EXISTS (SELECT 1 FROM inbox_done d WHERE d.pipeline = ?2 AND d.inbox_id = i.id)), \
               (SELECT MAX(id) FROM inbox WHERE source = ?1 AND id > ?3))",
        )
        .bind(&source)
        .bind(pipeline)
        .bind(watermark)
        .fetch_one(&mut **transaction)
        .await?;
        let Some(advanced) = advanced.filter(|advanced| *advanced > watermark) else { continue };
        sqlx::query(
            "INSERT INTO inbox_watermarks (pipeline, source, done_through) VALUES (?, ?, ?) \
             ON CONFLICT (pipeline, source) DO UPDATE SET done_through = excluded.done_through",
        )
        .bind(pipeline)
        .bind(&source)
        .bind(advanced)
        .execute(&mut **transaction)
        .await?;
        sqlx::query(
            "DELETE FROM inbox_done WHERE pipeline = ? AND inbox_id <= ? \
             AND inbox_id IN (SELECT id FROM inbox WHERE source = ?)",
        )
        .bind(pipeline)
        .bind(advanced)
        .bind(&source)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

async fn write_commit(
    transaction: &mut Transaction<'_, Sqlite>,
    pipeline: &str,
    commit: &Commit,
) -> Result<(), sqlx::Error> {
    let now = millis(Timestamp::now());
    for rows in commit.ledger.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO ledger (pipeline, key, kind, content_hash, outcome, reason, occurred_at, recorded_at) ",
        );
        insert.push_values(rows, |mut values, row| {
            let reason = match &row.outcome {
                Outcome::Skipped(reason) => reason.as_str(),
                _ => "",
            };
            values
                .push_bind(pipeline)
                .push_bind(row.key.as_str())
                .push_bind(row.kind.as_str())
                .push_bind(row.content_hash.as_str())
                .push_bind(row.outcome.as_str())
                .push_bind(reason)
                .push_bind(millis(row.occurred_at))
                .push_bind(now);
        });
        insert.push(
            " ON CONFLICT (pipeline, key) DO UPDATE SET kind = excluded.kind, content_hash = excluded.content_hash, \
             outcome = excluded.outcome, reason = excluded.reason, occurred_at = excluded.occurred_at, \
             recorded_at = excluded.recorded_at",
        );
        insert.build().persistent(kept(rows)).execute(&mut **transaction).await?;
    }
    for letter in &commit.dead_letters {
        sqlx::query(
            "INSERT INTO dead_letters (pipeline, key, stage, reason, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(pipeline)
        .bind(letter.key.as_ref().map(IdempotencyKey::as_str))
        .bind(letter.stage.as_str())
        .bind(&letter.reason)
        .bind(letter.payload.to_string())
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    }
    for id in &commit.dead_letters_resolved {
        sqlx::query("DELETE FROM dead_letters WHERE id = ? AND pipeline = ?")
            .bind(id)
            .bind(pipeline)
            .execute(&mut **transaction)
            .await?;
    }
    for id in &commit.inbox_done {
        sqlx::query("INSERT OR IGNORE INTO inbox_done (pipeline, inbox_id) VALUES (?, ?)")
            .bind(pipeline)
            .bind(id)
            .execute(&mut **transaction)
            .await?;
    }
    if !commit.inbox_done.is_empty() {
        advance_inbox_watermarks(transaction, pipeline, &commit.inbox_done).await?;
    }
    for rows in commit.orders_read.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO orders_read (pipeline, order_id, created_at) ");
        insert.push_values(rows, |mut values, (id, at)| {
            values.push_bind(pipeline).push_bind(id.as_str()).push_bind(millis(*at));
        });
        insert.push(" ON CONFLICT (pipeline, order_id) DO UPDATE SET created_at = excluded.created_at");
        insert.build().persistent(kept(rows)).execute(&mut **transaction).await?;
    }
    if let Some((stream, checkpoint)) = &commit.checkpoint {
        sqlx::query(
            "INSERT INTO checkpoints (pipeline, stream, checkpoint, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (pipeline, stream) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
        )
        .bind(pipeline)
        .bind(stream)
        .bind(checkpoint.0.to_string())
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}
