//! The state schema: migrations in order (entry N brings version N to N+1),
//! applied on open under an advisory lock so runners starting together
//! migrate once, never while a runner of the older version is live on the
//! database, and a database from a newer tillflow refused untouched.

use crate::sql::{NOW_MS, error, from_millis};
use sqlx::PgPool;
use tillflow_core::StateError;

/// Migrations, in order; entry N brings the schema from version N to N+1.
/// Keys compared by range or ordered for the operator are `COLLATE "C"`,
/// so order is by code point as in SQLite, whatever the database's locale.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE pipelines (
    name TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);
CREATE TABLE checkpoints (
    pipeline TEXT NOT NULL,
    stream TEXT COLLATE "C" NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (pipeline, stream)
);
CREATE TABLE ledger (
    pipeline TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (pipeline, key)
);
CREATE INDEX ledger_by_kind_and_time ON ledger (pipeline, kind, outcome, occurred_at);
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    pipeline TEXT NOT NULL,
    key TEXT,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);
CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    headers TEXT NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX inbox_by_source ON inbox (source, id);
CREATE TABLE inbox_done (
    pipeline TEXT NOT NULL,
    inbox_id BIGINT NOT NULL,
    PRIMARY KEY (pipeline, inbox_id)
);
CREATE TABLE inbox_watermarks (
    pipeline TEXT NOT NULL,
    source TEXT NOT NULL,
    done_through BIGINT NOT NULL,
    PRIMARY KEY (pipeline, source)
);
CREATE TABLE secrets (
    connector TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connector, name)
);
CREATE TABLE order_facts (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    fact_id TEXT NOT NULL,
    person TEXT NOT NULL,
    counted BOOLEAN NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (pipeline, order_id, fact_id)
);
CREATE INDEX order_facts_by_person ON order_facts (pipeline, person);
CREATE TABLE orders_read (
    pipeline TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (pipeline, order_id)
);
CREATE INDEX orders_read_by_time ON orders_read (pipeline, created_at);
CREATE TABLE source_state (
    source TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE TABLE leases (
    pipeline TEXT PRIMARY KEY,
    holder TEXT,
    token BIGINT NOT NULL DEFAULT 0,
    acquired_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
    // Tombstones of people who asked to be forgotten (`tillflow forget`):
    // subjects, never the address itself.
    r#"
CREATE TABLE forgotten (
    subject TEXT PRIMARY KEY,
    forgotten_at BIGINT NOT NULL
);
"#,
    // Each person's running totals, kept with the facts (built from them when
    // this migration runs), and the person index ordered by time so the
    // latest counted order is one step away.
    r#"
CREATE TABLE person_totals (
    pipeline TEXT NOT NULL,
    person TEXT NOT NULL,
    revenue TEXT NOT NULL,
    orders BIGINT NOT NULL,
    last_at BIGINT,
    currency TEXT,
    PRIMARY KEY (pipeline, person)
);
DROP INDEX order_facts_by_person;
CREATE INDEX order_facts_by_person ON order_facts (pipeline, person, at);
"#,
    // The reconciliation report asks the times of placed orders alone, so
    // only placed events are indexed by time: every other ledger row (an
    // order's lines, profiles, shipments: most of them) is one index entry
    // instead of two.
    r#"
DROP INDEX ledger_by_kind_and_time;
CREATE INDEX ledger_placed_by_time ON ledger (pipeline, outcome, occurred_at) WHERE kind = 'placed';
"#,
    // A guest's facts and totals keyed by their email's subject, a hash
    // (`subject::email_subject`: SHA-256 of the normalised address, which
    // the stored `email:<address>` already is), no longer by the address.
    r#"
UPDATE order_facts SET person = 'email:' || encode(sha256(convert_to(substr(person, 7), 'UTF8')), 'hex')
    WHERE person LIKE 'email:%@%';
UPDATE person_totals SET person = 'email:' || encode(sha256(convert_to(substr(person, 7), 'UTF8')), 'hex')
    WHERE person LIKE 'email:%@%';
"#,
];

/// The version whose migration creates `person_totals`: migrating to it
/// also fills the table from the facts already recorded.
const RUNNING_TOTALS: usize = 3;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Any 64-bit number nobody else uses: the migration lock.
const MIGRATION_LOCK: i64 = 0x7469_6c6c_666c_6f77; // "tillflow"

pub(crate) async fn migrate(pool: &PgPool, place: &str) -> Result<(), StateError> {
    let mut connection = pool.acquire().await.map_err(error("migrate"))?;
    let mut transaction = sqlx::Connection::begin(&mut *connection).await.map_err(error("migrate"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *transaction)
        .await
        .map_err(error("migrate"))?;
    // Asked first: CREATE … IF NOT EXISTS would log a notice on every start.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('tillflow_schema') IS NOT NULL")
        .fetch_one(&mut *transaction)
        .await
        .map_err(error("migrate"))?;
    if !exists {
        sqlx::raw_sql("CREATE TABLE tillflow_schema (version INTEGER NOT NULL)")
            .execute(&mut *transaction)
            .await
            .map_err(error("migrate"))?;
    }
    let version: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM tillflow_schema")
        .fetch_one(&mut *transaction)
        .await
        .map_err(error("read schema version"))?;
    let version = u32::try_from(version.unwrap_or(0)).unwrap_or(u32::MAX);
    if version > SCHEMA_VERSION {
        return Err(StateError::new(format!(
            "{place} has state schema version {version}, but this tillflow understands up to {SCHEMA_VERSION}; \
             it was written by a newer tillflow. Refusing to touch it: upgrade tillflow or point [state] url elsewhere"
        )));
    }
    // Version 0 is a new database: it has no runners yet (nor their table).
    if version > 0 && version < SCHEMA_VERSION {
        refuse_under_live_runners(&mut transaction, place, version).await?;
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(migration).execute(&mut *transaction).await.map_err(error("migrate"))?;
        if index + 1 == RUNNING_TOTALS {
            crate::facts::rebuild_totals(&mut transaction).await?;
        }
        sqlx::query("DELETE FROM tillflow_schema").execute(&mut *transaction).await.map_err(error("migrate"))?;
        sqlx::query("INSERT INTO tillflow_schema (version) VALUES ($1)")
            .bind(index as i32 + 1)
            .execute(&mut *transaction)
            .await
            .map_err(error("migrate"))?;
        tracing::info!(version = index + 1, "state schema migrated");
    }
    transaction.commit().await.map_err(error("migrate"))
}

/// Refuses to migrate while runners are live on the database: each runs the
/// version it started as, and would go on writing as that version does into
/// a schema that now means something else (since schema 5, for one, a
/// guest's orders are counted under a hash of their address, and an older
/// runner would split that guest's totals in two). A runner stopped cleanly
/// leaves at once; one that was killed counts as live until its entry
/// expires (one lease's life).
async fn refuse_under_live_runners(
    connection: &mut sqlx::PgConnection,
    place: &str,
    version: u32,
) -> Result<(), StateError> {
    let live: Vec<(String, i64)> =
        sqlx::query_as(&format!("SELECT id, expires_at FROM runners WHERE expires_at > {NOW_MS} ORDER BY id"))
            .fetch_all(&mut *connection)
            .await
            .map_err(error("migrate"))?;
    let Some(last_expiry) = live.iter().map(|(_, expires_at)| *expires_at).max() else { return Ok(()) };
    let names: Vec<&str> = live.iter().map(|(id, _)| id.as_str()).collect();
    Err(StateError::new(format!(
        "{place} has state schema version {version} and this tillflow writes version {SCHEMA_VERSION}, but {} \
         runner(s) started before are live on it ({}) and would go on writing it as their version does. Nothing \
         was changed: stop every runner, then start again (a runner that was killed counts as live until its \
         entry expires, at {} at the latest)",
        names.len(),
        names.join(", "),
        from_millis(last_expiry)
    )))
}
