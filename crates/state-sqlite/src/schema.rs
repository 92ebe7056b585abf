//! The state schema: migrations in order (entry N brings version N to N+1)
//! and migrating forward on open.

use crate::sql::error;
use sqlx::SqlitePool;
use std::path::Path;
use tillflow_core::StateError;

/// Migrations, in order; entry N brings the schema from version N to N+1.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // What a source keeps between runs (the Retail POS merge), per source.
    r#"
CREATE TABLE source_state (
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
"#,
    // Tombstones of people who asked to be forgotten (`tillflow forget`):
    // subjects, never the address itself.
    r#"
CREATE TABLE forgotten (
    subject TEXT PRIMARY KEY,
    forgotten_at INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // Each person's running totals, kept with the facts (built from them when
    // this migration runs), and the person index ordered by time so the
    // latest counted order is one step away.
    r#"
CREATE TABLE person_totals (
    pipeline TEXT NOT NULL,
    person TEXT NOT NULL,
    revenue TEXT NOT NULL,
    orders INTEGER NOT NULL,
    last_at INTEGER,
    currency TEXT,
    PRIMARY KEY (pipeline, person)
) WITHOUT ROWID;
DROP INDEX order_facts_by_person;
CREATE INDEX order_facts_by_person ON order_facts (pipeline, person, at);
"#,
    // The reconciliation report asks the times of placed orders alone, so
    // only placed events are indexed by time: every other ledger row (an
    // order's lines, profiles, shipments: most of them) is one B-tree
    // insert instead of two.
    r#"
DROP INDEX ledger_by_kind_and_time;
CREATE INDEX ledger_placed_by_time ON ledger (pipeline, outcome, occurred_at) WHERE kind = 'placed';
"#,
    // The record's own key before the pipeline's name in the keys a page
    // looks up or writes: a state usually serves one pipeline, so with the
    // name first every comparison of a B-tree descent found it equal and went
    // on to SQLite's general comparison of the next column; with the key
    // first the first column decides, on SQLite's fast path for text. A
    // reset, asked per pipeline alone, scans. The ledger stays keyed by the
    // pipeline first: the status page counts it per pipeline on every view,
    // and with the key first each count scanned every pipeline's rows.
    r#"
CREATE TABLE order_facts_by_order (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    fact_id TEXT NOT NULL,
    person TEXT NOT NULL,
    counted INTEGER NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (order_id, pipeline, fact_id)
) WITHOUT ROWID;
INSERT INTO order_facts_by_order
    SELECT pipeline, order_id, fact_id, person, counted, amount, currency, at FROM order_facts;
DROP TABLE order_facts;
ALTER TABLE order_facts_by_order RENAME TO order_facts;
CREATE INDEX order_facts_by_person ON order_facts (person, pipeline, at);
CREATE TABLE person_totals_by_person (
    pipeline TEXT NOT NULL,
    person TEXT NOT NULL,
    revenue TEXT NOT NULL,
    orders INTEGER NOT NULL,
    last_at INTEGER,
    currency TEXT,
    PRIMARY KEY (person, pipeline)
) WITHOUT ROWID;
INSERT INTO person_totals_by_person SELECT pipeline, person, revenue, orders, last_at, currency FROM person_totals;
DROP TABLE person_totals;
ALTER TABLE person_totals_by_person RENAME TO person_totals;
CREATE TABLE orders_read_by_order (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, pipeline)
) WITHOUT ROWID;
INSERT INTO orders_read_by_order SELECT pipeline, order_id, created_at FROM orders_read;
DROP TABLE orders_read;
ALTER TABLE orders_read_by_order RENAME TO orders_read;
CREATE INDEX orders_read_by_time ON orders_read (pipeline, created_at);
"#,
];

/// The version whose migration creates `person_totals`: migrating to it
/// also fills the table from the facts already recorded.
const RUNNING_TOTALS: usize = 7;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) async fn migrate(pool: &SqlitePool, path: &Path) -> Result<(), StateError> {
    let mut connection = pool.acquire().await.map_err(error("migrate"))?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *connection)
        .await
        .map_err(error("read schema version"))?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if version > SCHEMA_VERSION {
        return Err(StateError::new(format!(
            "{} has state schema version {version}, newer than {SCHEMA_VERSION}; refusing to touch it",
            path.display()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let mut transaction = sqlx::Connection::begin(&mut *connection).await.map_err(error("migrate"))?;
        sqlx::raw_sql(migration).execute(&mut *transaction).await.map_err(error("migrate"))?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", index + 1))
            .execute(&mut *transaction)
            .await
            .map_err(error("migrate"))?;
        if index + 1 == RUNNING_TOTALS {
            crate::facts::rebuild_totals(&mut transaction).await?;
        }
        transaction.commit().await.map_err(error("migrate"))?;
        tracing::info!(version = index + 1, "state schema migrated");
    }
    Ok(())
}
