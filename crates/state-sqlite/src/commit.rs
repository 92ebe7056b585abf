//! The one write a batch makes: ledger rows, dead letters, the checkpoint,
//! inbox marks (moving each source's watermark), resolved letters, orders
//! read and order facts, in one transaction.

use crate::insert_chunks::{ChunkStatements, INSERT_CHUNK, owned_chunks, push_batch};
use crate::ledger_codes::{kind_code, outcome_code, pack_hash};
use crate::sql::{LOOKUP_CHUNK, error, millis, pipeline_upsert};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use tillflow_core::StateError;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::state::{Commit, Outcome};

/// The write a batch makes, in whatever transaction the state's group writer
/// gives it.
pub(crate) async fn commit(
    connection: &mut SqliteConnection,
    pipeline: &str,
    mut commit: Commit,
) -> Result<(), StateError> {
    let facts = std::mem::take(&mut commit.facts);
    write_commit(connection, pipeline, commit).await.map_err(error("commit"))?;
    if !facts.is_empty() {
        crate::facts::record_facts(connection, pipeline, facts).await?;
    }
    Ok(())
}

/// Forgets pipeline ?1's done marks of source ?4's webhooks that its
/// watermark, moved from ?2 to ?3, now covers. Marks at or below the old
/// watermark went when it was set, so only the ids it passes are looked at,
/// not every webhook still stored: under a steady stream none are pruned
/// until the stream pauses, and each commit read them all.
const FORGET_PASSED_MARKS: &str = "DELETE FROM inbox_done WHERE pipeline = ?1 AND inbox_id > ?2 AND inbox_id <= ?3 \
     AND inbox_id IN (SELECT id FROM inbox WHERE source = ?4 AND id > ?2 AND id <= ?3)";

/// Moves each touched source's watermark up to just before its first
/// webhook not yet done for `pipeline` (or to its newest one), and forgets
/// the done marks the watermark now covers. Inside the commit's write
/// transaction, so no webhook can be added below the new watermark meanwhile.
async fn advance_inbox_watermarks(
    connection: &mut SqliteConnection,
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
        let found: Vec<String> = query.build_query_scalar().persistent(false).fetch_all(&mut *connection).await?;
        sources.extend(found);
    }
    for source in sources {
        let watermark: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = ? AND source = ?), 0)",
        )
        .bind(pipeline)
        .bind(&source)
        .fetch_one(&mut *connection)
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
        .fetch_one(&mut *connection)
        .await?;
        let Some(advanced) = advanced.filter(|advanced| *advanced > watermark) else { continue };
        sqlx::query(
            "INSERT INTO inbox_watermarks (pipeline, source, done_through) VALUES (?, ?, ?) \
             ON CONFLICT (pipeline, source) DO UPDATE SET done_through = excluded.done_through",
        )
        .bind(pipeline)
        .bind(&source)
        .bind(advanced)
        .execute(&mut *connection)
        .await?;
        sqlx::query(FORGET_PASSED_MARKS)
            .bind(pipeline)
            .bind(watermark)
            .bind(advanced)
            .bind(&source)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

async fn write_commit(connection: &mut SqliteConnection, pipeline: &str, commit: Commit) -> Result<(), sqlx::Error> {
    let now = millis(Timestamp::now());
    for rows in owned_chunks(commit.ledger) {
        let chunk = LEDGER_UPSERT.chunk(rows.len());
        let mut insert = chunk.query().bind(pipeline).bind(now);
        for row in rows {
            let outcome = outcome_code(row.outcome.kind());
            // Bound only where there is one: SQLite copies every text bound
            // into an allocation of its own, and most rows have none.
            let reason = match row.outcome {
                Outcome::Skipped(reason) if !reason.is_empty() => Some(reason),
                _ => None,
            };
            insert = insert
                .bind(row.key.into_string())
                .bind(kind_code(row.kind))
                .bind(pack_hash(row.content_hash))
                .bind(outcome)
                .bind(reason)
                .bind(millis(row.occurred_at));
        }
        chunk.pad(insert).execute(&mut *connection).await?;
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
        .execute(&mut *connection)
        .await?;
    }
    for id in &commit.dead_letters_resolved {
        sqlx::query("DELETE FROM dead_letters WHERE id = ? AND pipeline = ?")
            .bind(id)
            .bind(pipeline)
            .execute(&mut *connection)
            .await?;
    }
    for ids in commit.inbox_done.chunks(INSERT_CHUNK) {
        let chunk = INBOX_DONE_INSERT.chunk(ids.len());
        let mut insert = chunk.query().bind(pipeline);
        for id in ids {
            insert = insert.bind(id);
        }
        chunk.pad(insert).execute(&mut *connection).await?;
    }
    if !commit.inbox_done.is_empty() {
        advance_inbox_watermarks(connection, pipeline, &commit.inbox_done).await?;
    }
    for rows in owned_chunks(commit.orders_read) {
        let chunk = ORDERS_READ_UPSERT.chunk(rows.len());
        let mut insert = chunk.query().bind(pipeline);
        for (id, at) in rows {
            insert = insert.bind(id).bind(millis(at));
        }
        chunk.pad(insert).execute(&mut *connection).await?;
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
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Marks `rows` webhooks done for the pipeline bound first, in one statement
/// (a round's webhooks were a statement each, every one a round trip to the
/// connection's thread).
fn inbox_done_insert(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR IGNORE INTO inbox_done (pipeline, inbox_id) SELECT given.pipeline, batch.column1 \
         FROM (SELECT ? AS pipeline) AS given, ",
    );
    push_batch(&mut sql, rows, 1);
    sql
}

static INBOX_DONE_INSERT: ChunkStatements = ChunkStatements::new(inbox_done_insert);
static LEDGER_UPSERT: ChunkStatements = ChunkStatements::new(ledger_upsert);
static ORDERS_READ_UPSERT: ChunkStatements = ChunkStatements::new(orders_read_upsert);

/// The ledger's upsert of `rows` rows. The pipeline and the time recorded are
/// bound once, a row's kind and outcome as their stored numbers and its hash
/// packed (`ledger_codes`); its key and reason (null for none) are handed
/// over owned. Every text bound by reference is copied twice on its way into
/// SQLite (sqlx takes its own copy for the worker thread, SQLite another),
/// which was ten allocations a row; a row without a reason, most of them,
/// now costs two (SQLite's copies of its key and its hash). Parameters stay
/// bare `?`s, numbered by their place: sqlx looks up each named one (`?1`)
/// by a scan of all of them, quadratic in a statement of a thousand.
fn ledger_upsert(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO ledger (pipeline, key, kind, content_hash, outcome, reason, occurred_at, recorded_at) \
         SELECT given.pipeline, batch.column1, batch.column2, batch.column3, batch.column4, coalesce(batch.column5, ''), \
         batch.column6, given.now FROM (SELECT ? AS pipeline, ? AS now) AS given, ",
    );
    push_batch(&mut sql, rows, 6);
    sql.push_str(
        " ON CONFLICT (pipeline, key) DO UPDATE SET kind = excluded.kind, \
         content_hash = excluded.content_hash, outcome = excluded.outcome, reason = excluded.reason, \
         occurred_at = excluded.occurred_at, recorded_at = excluded.recorded_at",
    );
    sql
}

/// The upsert of `rows` orders read.
fn orders_read_upsert(rows: usize) -> String {
    pipeline_upsert("orders_read", &["order_id", "created_at"], &["order_id"], rows)
}

#[cfg(test)]
mod tests {
    /// Moving a watermark reads the webhooks it passes through the source's
    /// index, between the old watermark and the new one, however many
    /// webhooks are stored below them.
    #[tokio::test]
    async fn forgetting_passed_marks_reads_only_the_webhooks_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("state.db")).await.unwrap();
        let plan = crate::sql::query_plan(&store.pool, super::FORGET_PASSED_MARKS, |query| {
            query.bind("p").bind(10_i64).bind(20_i64).bind("s")
        })
        .await;
        let inbox = plan.iter().find(|step| step.contains("inbox_by_source")).expect("the source's index is used");
        assert!(inbox.contains("source=? AND id>? AND id<?"), "{plan:?}");
    }
}
