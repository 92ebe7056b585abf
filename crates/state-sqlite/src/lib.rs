//! tillflow-state-sqlite: the embedded default `StateStore`, one SQLite file in
//! WAL mode.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward on
//! open. A file written by a newer tillflow is refused before it is opened for
//! writing, so an old binary can never damage a newer state file.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{Currency, OrderFact, PersonTotals, sum_facts};
use tillflow_core::rust_decimal::Decimal;
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{
    Commit, DeadLetter, DeadLetterStage, EventCount, LedgerEntry, Outcome, OutcomeKind, PipelineStatus, StateStore,
    StreamStatus,
};

/// Migrations, in order; entry N brings the schema from version N to N+1.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE pipelines (
    name TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL
);
CREATE TABLE checkpoints (
    pipeline TEXT NOT NULL,
    stream TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, stream)
);
CREATE TABLE ledger (
    pipeline TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, key)
) WITHOUT ROWID;
CREATE INDEX ledger_by_kind_and_time ON ledger (pipeline, kind, outcome, occurred_at);
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    key TEXT,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX inbox_by_source ON inbox (source, id);
CREATE TABLE inbox_done (
    pipeline TEXT NOT NULL,
    inbox_id INTEGER NOT NULL,
    PRIMARY KEY (pipeline, inbox_id)
) WITHOUT ROWID;
CREATE TABLE secrets (
    connector TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connector, name)
);
"#,
    r#"
CREATE TABLE order_facts (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    fact_id TEXT NOT NULL,
    person TEXT NOT NULL,
    counted INTEGER NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, order_id, fact_id)
) WITHOUT ROWID;
CREATE INDEX order_facts_by_person ON order_facts (pipeline, person);
"#,
    r#"
CREATE TABLE orders_read (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, order_id)
) WITHOUT ROWID;
CREATE INDEX orders_read_by_time ON orders_read (pipeline, created_at);
"#,
    // Every webhook of a source up to `done_through` is done for the pipeline:
    // pending items are looked for after it, and `inbox_done` keeps only the
    // done items above it, so a poll does not grow with the webhooks ever received.
    r#"
CREATE TABLE inbox_watermarks (
    pipeline TEXT NOT NULL,
    source TEXT NOT NULL,
    done_through INTEGER NOT NULL,
    PRIMARY KEY (pipeline, source)
) WITHOUT ROWID;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

// Lookups and inserts below are built with a varying number of parameters;
// they are not kept as prepared statements (`persistent(false)`), or every
// distinct shape would stay cached per connection and memory would grow with
// the length of a history import.

/// SQLite allows 32,766 bound parameters; lookups stay far below that.
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row INSERT (8 parameters each).
const INSERT_CHUNK: usize = 1000;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

fn error(context: &str) -> impl Fn(sqlx::Error) -> StateError + '_ {
    move |e| StateError::new(format!("{context}: {e}"))
}

fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn from_millis(value: i64) -> Timestamp {
    Timestamp::from_millisecond(value).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads `PRAGMA user_version` straight from the file header (bytes 60..64), so
/// a newer file can be refused without opening it read-write.
fn header_schema_version(path: &Path) -> Result<Option<u32>, StateError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::new(format!("cannot read {}: {e}", path.display()))),
    };
    let mut header = [0u8; 100];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        // An empty or tiny file is a database SQLite has not written yet.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(StateError::new(format!("cannot read {}: {e}", path.display()))),
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(StateError::new(format!("{} is not a SQLite database", path.display())));
    }
    Ok(Some(u32::from_be_bytes([header[60], header[61], header[62], header[63]])))
}

impl SqliteStore {
    /// Opens `sqlite://path` (or `sqlite:path`), creating and migrating it.
    pub async fn open_url(url: &str) -> Result<Self, StateError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StateError::new(format!("`{url}` is not a sqlite:// URL")))?;
        Self::open(Path::new(path)).await
    }

    pub async fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(version) = header_schema_version(path)?
            && version > SCHEMA_VERSION
        {
            return Err(StateError::new(format!(
                "{} has state schema version {version}, but this tillflow understands up to {SCHEMA_VERSION}; \
                 it was written by a newer tillflow. Refusing to touch it: upgrade tillflow or point [state] url elsewhere",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(error("state url"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives any process crash (SIGKILL included); only a
            // power loss can drop the last commits, which the sinks' idempotency
            // keys then absorb.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StateError::new(format!("cannot open {}: {e}", path.display())))?;
        let store = Self { pool, path: path.to_owned() };
        store.migrate().await?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection; SQLite then checkpoints the WAL into the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<(), StateError> {
        let mut connection = self.pool.acquire().await.map_err(error("migrate"))?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *connection)
            .await
            .map_err(error("read schema version"))?;
        let version = u32::try_from(version).unwrap_or(u32::MAX);
        if version > SCHEMA_VERSION {
            return Err(StateError::new(format!(
                "{} has state schema version {version}, newer than {SCHEMA_VERSION}; refusing to touch it",
                self.path.display()
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let mut transaction = sqlx::Connection::begin(&mut *connection).await.map_err(error("migrate"))?;
            sqlx::raw_sql(migration).execute(&mut *transaction).await.map_err(error("migrate"))?;
            sqlx::raw_sql(&format!("PRAGMA user_version = {}", index + 1))
                .execute(&mut *transaction)
                .await
                .map_err(error("migrate"))?;
            transaction.commit().await.map_err(error("migrate"))?;
            tracing::info!(version = index + 1, "state schema migrated");
        }
        Ok(())
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
            insert.build().persistent(false).execute(&mut **transaction).await?;
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
            Self::advance_inbox_watermarks(transaction, pipeline, &commit.inbox_done).await?;
        }
        for rows in commit.orders_read.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO orders_read (pipeline, order_id, created_at) ");
            insert.push_values(rows, |mut values, (id, at)| {
                values.push_bind(pipeline).push_bind(id.as_str()).push_bind(millis(*at));
            });
            insert.push(" ON CONFLICT (pipeline, order_id) DO UPDATE SET created_at = excluded.created_at");
            insert.build().persistent(false).execute(&mut **transaction).await?;
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
}

fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::new(format!("corrupt {what} in state: {e}")))
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn pipeline_started_at(&self, pipeline: &str, now: Timestamp) -> Result<Timestamp, StateError> {
        sqlx::query("INSERT OR IGNORE INTO pipelines (name, started_at) VALUES (?, ?)")
            .bind(pipeline)
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(error("record pipeline start"))?;
        let started: i64 = sqlx::query_scalar("SELECT started_at FROM pipelines WHERE name = ?")
            .bind(pipeline)
            .fetch_one(&self.pool)
            .await
            .map_err(error("read pipeline start"))?;
        Ok(from_millis(started))
    }

    async fn checkpoint(&self, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT checkpoint FROM checkpoints WHERE pipeline = ? AND stream = ?")
                .bind(pipeline)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await
                .map_err(error("read checkpoint"))?;
        text.map(|t| parse_json(&t, "checkpoint").map(Checkpoint)).transpose()
    }

    async fn ledger_lookup(
        &self,
        pipeline: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, LedgerEntry>, StateError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let mut query =
                QueryBuilder::<Sqlite>::new("SELECT key, content_hash, outcome, reason FROM ledger WHERE pipeline = ");
            query.push_bind(pipeline).push(" AND key IN (");
            let mut separated = query.separated(", ");
            for key in chunk {
                separated.push_bind(key.as_str());
            }
            query.push(")");
            let rows = query.build().persistent(false).fetch_all(&self.pool).await.map_err(error("ledger lookup"))?;
            for row in rows {
                let key: String = row.get(0);
                let outcome: String = row.get(2);
                let reason: String = row.get(3);
                let outcome = Outcome::from_stored(&outcome, &reason)
                    .ok_or_else(|| StateError::new(format!("unknown outcome `{outcome}` in the ledger")))?;
                found.insert(IdempotencyKey::from_stored(key), LedgerEntry { content_hash: row.get(1), outcome });
            }
        }
        Ok(found)
    }

    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError> {
        let mut transaction = self.pool.begin().await.map_err(error("begin commit"))?;
        Self::write_commit(&mut transaction, pipeline, &commit).await.map_err(error("commit"))?;
        transaction.commit().await.map_err(error("commit"))
    }

    async fn dead_letters(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError> {
        let rows = sqlx::query(
            "SELECT id, pipeline, key, stage, reason, payload, created_at FROM dead_letters \
             WHERE (?1 IS NULL OR pipeline = ?1) ORDER BY id LIMIT ?2",
        )
        .bind(pipeline)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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

    async fn discard_dead_letters(&self, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError> {
        let result = match ids {
            None => sqlx::query("DELETE FROM dead_letters WHERE pipeline = ?").bind(pipeline).execute(&self.pool).await,
            Some(ids) => {
                let mut transaction = self.pool.begin().await.map_err(error("discard"))?;
                let mut affected = 0;
                for id in ids {
                    affected += sqlx::query("DELETE FROM dead_letters WHERE pipeline = ? AND id = ?")
                        .bind(pipeline)
                        .bind(id)
                        .execute(&mut *transaction)
                        .await
                        .map_err(error("discard"))?
                        .rows_affected();
                }
                transaction.commit().await.map_err(error("discard"))?;
                return Ok(affected);
            }
        };
        Ok(result.map_err(error("discard"))?.rows_affected())
    }

    async fn inbox_push(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError> {
        let headers = serde_json::to_string(headers).expect("headers serialize");
        let id = sqlx::query("INSERT INTO inbox (source, received_at, headers, body) VALUES (?, ?, ?, ?)")
            .bind(source)
            .bind(millis(received_at))
            .bind(headers)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(error("store webhook"))?
            .last_insert_rowid();
        Ok(id)
    }

    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError> {
        let rows = sqlx::query(
            "SELECT id, source, received_at, headers, body FROM inbox i WHERE source = ?1 \
             AND id > COALESCE((SELECT done_through FROM inbox_watermarks WHERE pipeline = ?2 AND source = ?1), 0) \
             AND NOT EXISTS (SELECT 1 FROM inbox_done d WHERE d.pipeline = ?2 AND d.inbox_id = i.id) \
             ORDER BY id LIMIT ?3",
        )
        .bind(source)
        .bind(pipeline)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error("read inbox"))?;
        rows.into_iter()
            .map(|row| {
                let headers: String = row.get(3);
                Ok(InboxItem {
                    id: row.get(0),
                    source: row.get(1),
                    received_at: from_millis(row.get(2)),
                    headers: serde_json::from_str(&headers)
                        .map_err(|e| StateError::new(format!("corrupt webhook headers: {e}")))?,
                    body: row.get(4),
                })
            })
            .collect()
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        sqlx::query_scalar("SELECT value FROM secrets WHERE connector = ? AND name = ?")
            .bind(connector)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(error("read secret"))
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO secrets (connector, name, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (connector, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(connector)
        .bind(name)
        .bind(value)
        .bind(millis(Timestamp::now()))
        .execute(&self.pool)
        .await
        .map_err(error("store secret"))?;
        Ok(())
    }

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError> {
        let started: Option<i64> = sqlx::query_scalar("SELECT started_at FROM pipelines WHERE name = ?")
            .bind(pipeline)
            .fetch_optional(&self.pool)
            .await
            .map_err(error("status"))?;
        let streams =
            sqlx::query("SELECT stream, checkpoint, updated_at FROM checkpoints WHERE pipeline = ? ORDER BY stream")
                .bind(pipeline)
                .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
        .await
        .map_err(error("status"))?
        .into_iter()
        .map(|row| {
            let kind: String = row.get(0);
            let outcome: String = row.get(1);
            let reason: String = row.get(2);
            Ok(EventCount {
                kind: EventKind::parse(&kind).ok_or_else(|| StateError::new(format!("unknown event kind `{kind}`")))?,
                outcome: Outcome::from_stored(&outcome, &reason)
                    .ok_or_else(|| StateError::new(format!("unknown outcome `{outcome}`")))?,
                count: row.get::<i64, _>(3).max(0) as u64,
            })
        })
        .collect::<Result<Vec<_>, StateError>>()?;
        let mut counts = counts;
        counts.sort_by(|a, b| {
            (a.kind, a.outcome.kind(), a.outcome.reason()).cmp(&(b.kind, b.outcome.kind(), b.outcome.reason()))
        });
        let dead_letters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE pipeline = ?")
            .bind(pipeline)
            .fetch_one(&self.pool)
            .await
            .map_err(error("status"))?;
        let last_delivery: Option<i64> =
            sqlx::query_scalar("SELECT MAX(recorded_at) FROM ledger WHERE pipeline = ? AND outcome = 'delivered'")
                .bind(pipeline)
                .fetch_one(&self.pool)
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

    async fn reset(&self, pipeline: &str) -> Result<(), StateError> {
        let mut transaction = self.pool.begin().await.map_err(error("reset"))?;
        for table in [
            "checkpoints WHERE pipeline",
            "ledger WHERE pipeline",
            "order_facts WHERE pipeline",
            "orders_read WHERE pipeline",
            "pipelines WHERE name",
        ] {
            sqlx::query(&format!("DELETE FROM {table} = ?"))
                .bind(pipeline)
                .execute(&mut *transaction)
                .await
                .map_err(error("reset"))?;
        }
        transaction.commit().await.map_err(error("reset"))
    }

    async fn record_facts(&self, pipeline: &str, facts: &[OrderFact]) -> Result<(), StateError> {
        let mut transaction = self.pool.begin().await.map_err(error("record facts"))?;
        for rows in facts.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO order_facts (pipeline, order_id, fact_id, person, counted, amount, currency, at) ",
            );
            insert.push_values(rows, |mut values, fact| {
                values
                    .push_bind(pipeline)
                    .push_bind(fact.order_id.as_str())
                    .push_bind(fact.fact_id.as_str())
                    .push_bind(fact.person.as_str())
                    .push_bind(fact.counted)
                    .push_bind(fact.amount.to_string())
                    .push_bind(fact.currency.as_str())
                    .push_bind(millis(fact.at));
            });
            insert.push(
                " ON CONFLICT (pipeline, order_id, fact_id) DO UPDATE SET person = excluded.person, \
                 counted = excluded.counted, amount = excluded.amount, currency = excluded.currency, at = excluded.at",
            );
            insert.build().persistent(false).execute(&mut *transaction).await.map_err(error("record facts"))?;
        }
        transaction.commit().await.map_err(error("record facts"))
    }

    async fn person_totals(
        &self,
        pipeline: &str,
        people: &[&str],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        let mut facts: HashMap<String, Vec<OrderFact>> = HashMap::new();
        for chunk in people.chunks(LOOKUP_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                // Without statistics the planner scans the pipeline's whole
                // primary-key range (every fact, for every page); the person
                // index makes this proportional to the page.
                "SELECT order_id, fact_id, person, counted, amount, currency, at FROM order_facts \
                 INDEXED BY order_facts_by_person WHERE pipeline = ",
            );
            query.push_bind(pipeline).push(" AND person IN (");
            let mut separated = query.separated(", ");
            for person in chunk {
                separated.push_bind(*person);
            }
            query.push(")");
            for row in query.build().persistent(false).fetch_all(&self.pool).await.map_err(error("person totals"))? {
                let amount: String = row.get(4);
                let currency: String = row.get(5);
                let fact = OrderFact {
                    order_id: row.get(0),
                    fact_id: row.get(1),
                    person: row.get(2),
                    counted: row.get(3),
                    amount: amount.parse::<Decimal>().map_err(|e| StateError::new(format!("corrupt amount: {e}")))?,
                    currency: Currency::new(&currency).map_err(StateError::new)?,
                    at: from_millis(row.get(6)),
                };
                facts.entry(fact.person.clone()).or_default().push(fact);
            }
        }
        Ok(facts.into_iter().map(|(person, facts)| (person, sum_facts(&facts))).collect())
    }

    async fn event_times(
        &self,
        pipeline: &str,
        kind: EventKind,
        outcome: OutcomeKind,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StateError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT occurred_at FROM ledger WHERE pipeline = ? AND kind = ? AND outcome = ? \
             AND occurred_at >= ? ORDER BY occurred_at",
        )
        .bind(pipeline)
        .bind(kind.as_str())
        .bind(outcome.as_str())
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await
        .map_err(error("report"))?;
        Ok(rows.into_iter().map(from_millis).collect())
    }

    async fn orders_read_times(&self, pipeline: &str, since: Timestamp) -> Result<Vec<Timestamp>, StateError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT created_at FROM orders_read WHERE pipeline = ? AND created_at >= ? ORDER BY created_at",
        )
        .bind(pipeline)
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await
        .map_err(error("report"))?;
        Ok(rows.into_iter().map(from_millis).collect())
    }
}
