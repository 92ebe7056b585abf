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
    // The ledger packed (`ledger_codes`): a row's kind and outcome as fixed
    // numbers, its content hash as bytes, not names and hex: a quarter fewer
    // leaves for the same rows, so a history import writes a quarter fewer
    // pages of it. `ledger_named` shows it as it was, for operators and for
    // `tillflow state migrate`.
    r#"
DROP VIEW IF EXISTS ledger_named;
CREATE TABLE ledger_packed (
    pipeline TEXT NOT NULL,
    key TEXT NOT NULL,
    kind INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    outcome INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, key)
) WITHOUT ROWID;
INSERT INTO ledger_packed
    SELECT pipeline, key,
        CASE kind
            WHEN 'placed' THEN 0 WHEN 'ordered-product' THEN 1 WHEN 'completed' THEN 2 WHEN 'refunded' THEN 3
            WHEN 'shipped' THEN 4 WHEN 'canceled' THEN 5 WHEN 'customer-created' THEN 6 WHEN 'profile-updated' THEN 7
            WHEN 'order-state' THEN 8 WHEN 'catalog-item' THEN 9 WHEN 'consent' THEN 10 WHEN 'group' THEN 11
        END,
        -- `||` makes text of whatever it joins, so each packed hash is cast back.
        CAST(CASE
            WHEN content_hash GLOB 'v[ -~]*' AND length(content_hash) > 2 AND length(content_hash) % 2 = 0
                AND substr(content_hash, 3) NOT GLOB '*[^0-9a-f]*'
                THEN substr(content_hash, 1, 2) || unhex(substr(content_hash, 3))
            WHEN length(content_hash) > 0 AND length(content_hash) % 2 = 0 AND content_hash NOT GLOB '*[^0-9a-f]*'
                THEN x'01' || unhex(content_hash)
            ELSE x'00' || content_hash
        END AS BLOB),
        CASE outcome
            WHEN 'delivered' THEN 0 WHEN 'skipped' THEN 1 WHEN 'dead-lettered' THEN 2
        END,
        reason, occurred_at, recorded_at
    FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_packed RENAME TO ledger;
CREATE INDEX ledger_placed_by_time ON ledger (pipeline, outcome, occurred_at) WHERE kind = 0;
CREATE VIEW ledger_named AS
    SELECT pipeline, key,
        CASE kind
            WHEN 0 THEN 'placed' WHEN 1 THEN 'ordered-product' WHEN 2 THEN 'completed' WHEN 3 THEN 'refunded'
            WHEN 4 THEN 'shipped' WHEN 5 THEN 'canceled' WHEN 6 THEN 'customer-created' WHEN 7 THEN 'profile-updated'
            WHEN 8 THEN 'order-state' WHEN 9 THEN 'catalog-item' WHEN 10 THEN 'consent' WHEN 11 THEN 'group'
        END AS kind,
        CASE substr(content_hash, 1, 1)
            WHEN x'00' THEN CAST(substr(content_hash, 2) AS TEXT)
            WHEN x'01' THEN lower(hex(substr(content_hash, 2)))
            ELSE CAST(substr(content_hash, 1, 2) AS TEXT) || lower(hex(substr(content_hash, 3)))
        END AS content_hash,
        CASE outcome
            WHEN 0 THEN 'delivered' WHEN 1 THEN 'skipped' WHEN 2 THEN 'dead-lettered'
        END AS outcome,
        reason, occurred_at, recorded_at
    FROM ledger;
"#,
    // A guest's facts and totals keyed by their email's subject (a hash,
    // `subject::email_subject`), no longer by the address: the step after
    // this SQL (`facts::hash_guest_keys`) fills in each address's hash, then
    // `GUEST_KEYS_REKEYED` rewrites the keys and drops this table.
    r#"
CREATE TABLE guest_key_hashes (
    plain TEXT PRIMARY KEY,
    hashed TEXT
) WITHOUT ROWID;
INSERT OR IGNORE INTO guest_key_hashes (plain) SELECT person FROM order_facts WHERE person GLOB 'email:*@*';
INSERT OR IGNORE INTO guest_key_hashes (plain) SELECT person FROM person_totals WHERE person GLOB 'email:*@*';
"#,
];

/// Run once `facts::hash_guest_keys` has hashed every guest key the
/// migration to `GUEST_KEYS_HASHED` collected.
const GUEST_KEYS_REKEYED: &str = r#"
UPDATE order_facts SET person = (SELECT hashed FROM guest_key_hashes WHERE plain = order_facts.person)
    WHERE person GLOB 'email:*@*';
UPDATE person_totals SET person = (SELECT hashed FROM guest_key_hashes WHERE plain = person_totals.person)
    WHERE person GLOB 'email:*@*';
DROP TABLE guest_key_hashes;
"#;

/// The version whose migration creates `person_totals`: migrating to it
/// also fills the table from the facts already recorded.
const RUNNING_TOTALS: usize = 7;

/// The version whose migration keys guests by their email's subject: the
/// addresses are hashed in Rust (SQLite has no SHA-256), and the file is
/// rewritten after it (`VACUUM`), since every version before it left
/// addresses in the free space of pages that deleted or moved rows.
const GUEST_KEYS_HASHED: usize = 11;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why a state file of a newer schema is refused: told the same whether the
/// file's header said so before it was opened, or its `user_version` once a
/// hot journal was rolled back.
pub(crate) fn newer_refused(path: &Path, version: u32) -> StateError {
    StateError::new(format!(
        "{} has state schema version {version}, but this tillflow understands up to {SCHEMA_VERSION}; \
         it was written by a newer tillflow. Refusing to touch it: upgrade tillflow or point [state] url elsewhere",
        path.display()
    ))
}

/// Migrates the state at `path` forward. `held`: whether this process holds
/// the file's writer lock (a run, or a file being built); otherwise the lock
/// is taken for the migration, and the migration refused while another
/// process runs on the file.
pub(crate) async fn migrate(pool: &SqlitePool, path: &Path, held: bool) -> Result<(), StateError> {
    let mut connection = pool.acquire().await.map_err(error("migrate"))?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *connection)
        .await
        .map_err(error("read schema version"))?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if version > SCHEMA_VERSION {
        return Err(newer_refused(path, version));
    }
    let _migrating = (!held && version < SCHEMA_VERSION)
        .then(|| crate::writer_lock::WriterLock::acquire_to_migrate(path, version, SCHEMA_VERSION))
        .transpose()?;
    // A new file gets the whole schema in one transaction: one commit's
    // fsyncs, where a commit for each migration was forty more (a quarter of
    // the CPU of a run that opens a new state and has nothing to read). An
    // older file moves one version a transaction, so a long migration's
    // finished steps stay done.
    let mut start = version as usize;
    while start < MIGRATIONS.len() {
        let step = start..if start == 0 { MIGRATIONS.len() } else { start + 1 };
        start = step.end;
        let mut transaction = sqlx::Connection::begin(&mut *connection).await.map_err(error("migrate"))?;
        for index in step.clone() {
            sqlx::raw_sql(MIGRATIONS[index]).execute(&mut *transaction).await.map_err(error("migrate"))?;
            if index + 1 == RUNNING_TOTALS {
                crate::facts::rebuild_totals(&mut transaction).await?;
            }
            if index + 1 == GUEST_KEYS_HASHED {
                crate::facts::hash_guest_keys(&mut transaction).await?;
                sqlx::raw_sql(GUEST_KEYS_REKEYED).execute(&mut *transaction).await.map_err(error("migrate"))?;
            }
        }
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", step.end))
            .execute(&mut *transaction)
            .await
            .map_err(error("migrate"))?;
        transaction.commit().await.map_err(error("migrate"))?;
        tracing::info!(version = step.end, "state schema migrated");
    }
    if version > 0 && (version as usize) < GUEST_KEYS_HASHED {
        rewrite(&mut connection, path).await?;
    }
    Ok(())
}

/// Rewrites the file with `VACUUM`, which copies every live row into a new
/// file and leaves nothing else; the journal, which it fills with the old
/// pages, is cut to nothing after it. The copy is built as a temporary
/// database in a file, not in memory, however large the state. The schema is
/// migrated by then, so a rewrite that cannot run (another process reading
/// the file at that moment) is reported and the state opens all the same:
/// failing the open would not bring the rewrite back, since the next open
/// finds the schema current.
async fn rewrite(connection: &mut sqlx::SqliteConnection, path: &Path) -> Result<(), StateError> {
    let rewritten = sqlx::raw_sql("PRAGMA journal_size_limit = 0; PRAGMA temp_store = FILE; VACUUM")
        .execute(&mut *connection)
        .await;
    sqlx::raw_sql("PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = -1")
        .execute(&mut *connection)
        .await
        .map_err(error("migrate"))?;
    match rewritten {
        Ok(_) => tracing::info!("state file rewritten without the free space of earlier versions"),
        Err(e) => tracing::warn!(
            "{} could not be rewritten ({}): what earlier versions deleted, forgotten people's addresses among it, \
             may stay in its free space until `sqlite3 {} VACUUM` is run while no tillflow has it open",
            path.display(),
            crate::sql::describe(&e),
            path.display()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ledger_codes::{kind_code, outcome_code};
    use tillflow_core::events::EventKind;
    use tillflow_core::state::OutcomeKind;

    /// The migration that packed the ledger wrote each name's number, and its
    /// view reads each number back as that name: the numbers `ledger_codes`
    /// gives every kind and outcome.
    #[test]
    fn the_packing_migration_and_its_view_use_the_ledgers_numbers() {
        // Migration 9 brings version 9 to 10.
        let packing = super::MIGRATIONS[9];
        assert!(packing.contains("CREATE TABLE ledger_packed"));
        for kind in EventKind::ALL {
            let (name, code) = (kind.as_str(), kind_code(kind));
            assert!(
                packing.contains(&format!("WHEN '{name}' THEN {code}\n"))
                    || packing.contains(&format!("WHEN '{name}' THEN {code} ")),
                "{name}"
            );
            assert!(packing.contains(&format!("WHEN {code} THEN '{name}'")), "{name}");
        }
        for outcome in OutcomeKind::ALL {
            let (name, code) = (outcome.as_str(), outcome_code(outcome));
            assert!(packing.contains(&format!("WHEN '{name}' THEN {code}")), "{name}");
            assert!(packing.contains(&format!("WHEN {code} THEN '{name}'")), "{name}");
        }
    }
}
