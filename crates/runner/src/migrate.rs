//! `tillflow state migrate --from sqlite://… --to postgres://…`: moves a
//! whole SQLite state into an empty Postgres one — checkpoints, ledger, dead
//! letters, inbox, facts and person totals, orders read, source state,
//! tombstones and secrets — so the runners carry on where the single process
//! stopped: nothing re-synced, nothing sent. Rows are streamed table by table in batches, never loaded
//! whole, and written in one Postgres transaction: a failure leaves the
//! target as it was. The source file's writer lock is held throughout, so
//! no run changes it meanwhile.

use crate::exit::Failure;
use futures_util::TryStreamExt;
use sqlx::{Column, Connection, Postgres, QueryBuilder, Row, TypeInfo};
use std::path::Path;
use tillflow_state_postgres::PgStore;
use tillflow_state_sqlite::SqliteStore;

/// How a column is carried across.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    MaybeText,
    Integer,
    MaybeInteger,
    Bytes,
    /// SQLite's 0/1 integer as a Postgres boolean.
    Flag,
}

/// Every table of the state, in an order the copy can follow, and its columns.
const TABLES: &[(&str, &[(&str, Kind)])] = {
    use Kind::*;
    &[
        ("pipelines", &[("name", Text), ("started_at", Integer)]),
        ("checkpoints", &[("pipeline", Text), ("stream", Text), ("checkpoint", Text), ("updated_at", Integer)]),
        (
            "ledger",
            &[
                ("pipeline", Text),
                ("key", Text),
                ("kind", Text),
                ("content_hash", Text),
                ("outcome", Text),
                ("reason", Text),
                ("occurred_at", Integer),
                ("recorded_at", Integer),
            ],
        ),
        (
            "dead_letters",
            &[
                ("id", Integer),
                ("pipeline", Text),
                ("key", MaybeText),
                ("stage", Text),
                ("reason", Text),
                ("payload", Text),
                ("created_at", Integer),
            ],
        ),
        ("inbox", &[("id", Integer), ("source", Text), ("received_at", Integer), ("headers", Text), ("body", Bytes)]),
        ("inbox_done", &[("pipeline", Text), ("inbox_id", Integer)]),
        ("inbox_watermarks", &[("pipeline", Text), ("source", Text), ("done_through", Integer)]),
        ("secrets", &[("connector", Text), ("name", Text), ("value", Text), ("updated_at", Integer)]),
        (
            "order_facts",
            &[
                ("pipeline", Text),
                ("order_id", Text),
                ("fact_id", Text),
                ("person", Text),
                ("counted", Flag),
                ("amount", Text),
                ("currency", Text),
                ("at", Integer),
            ],
        ),
        ("orders_read", &[("pipeline", Text), ("order_id", Text), ("created_at", Integer)]),
        ("source_state", &[("source", Text), ("key", Text), ("value", Text), ("updated_at", Integer)]),
        ("forgotten", &[("subject", Text), ("forgotten_at", Integer)]),
        (
            "person_totals",
            &[
                ("pipeline", Text),
                ("person", Text),
                ("revenue", Text),
                ("orders", Integer),
                ("last_at", MaybeInteger),
                ("currency", MaybeText),
            ],
        ),
    ]
};

/// Rows per INSERT (at most 8 columns: far below Postgres's parameter limit).
const BATCH: usize = 1000;

fn sqlite_path(url: &str) -> Option<&Path> {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).map(Path::new)
}

/// Moves the state at `from` into the empty Postgres state at `to`; prints
/// the rows moved per table.
pub async fn migrate(from: &str, to: &str) -> Result<(), Failure> {
    let path = sqlite_path(from).ok_or_else(|| Failure::config(format!("--from: `{from}` is not a sqlite:// URL")))?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(Failure::config("--to: a postgres://… URL (the state several runners share)"));
    }
    if !path.exists() {
        return Err(Failure::config(format!("--from: no state file at {}", path.display())));
    }
    // Brought to this build's schema first, under the writer lock: no run
    // writes to it while it is copied.
    let source = SqliteStore::open_exclusive(path).await.map_err(Failure::config)?;
    let target = PgStore::open(to).await.map_err(Failure::config)?;
    let mut reader =
        sqlx::SqliteConnection::connect_with(&sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true))
            .await
            .map_err(|e| Failure::config(format!("--from {}: {e}", path.display())))?;
    let mut transaction = target.pool().begin().await.map_err(|e| Failure::pipeline(format!("--to: {e}")))?;
    let place = target.place().to_owned();
    let failed = |what: &str| {
        let (what, place) = (what.to_owned(), place.clone());
        move |e: sqlx::Error| Failure::pipeline(format!("{what}: {e}; nothing was written to {place}"))
    };
    for (table, _) in TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *transaction)
            .await
            .map_err(failed("--to"))?;
        if rows > 0 {
            return Err(Failure::config(format!(
                "--to: {} already holds state ({rows} rows in {table}); migrate into an empty database, \
                 or it would mix two histories",
                target.place()
            )));
        }
    }
    println!("moving {} → {}", path.display(), target.place());
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        // The SQLite ledger packs kind, outcome and hash; Postgres keeps names and hex.
        let from_table = if *table == "ledger" { tillflow_state_sqlite::LEDGER_NAMED } else { table };
        let select = format!("SELECT {} FROM {from_table}", names.join(", "));
        let mut rows = sqlx::query(&select).fetch(&mut reader);
        let mut batch: Vec<sqlx::sqlite::SqliteRow> = Vec::with_capacity(BATCH);
        let mut moved = 0u64;
        loop {
            let row = rows.try_next().await.map_err(failed(&format!("read {table}")))?;
            let end = row.is_none();
            batch.extend(row);
            if batch.len() == BATCH || (end && !batch.is_empty()) {
                insert(&mut transaction, table, columns, &batch).await.map_err(failed(&format!("write {table}")))?;
                moved += batch.len() as u64;
                batch.clear();
            }
            if end {
                break;
            }
        }
        println!("  {table:<17} {moved} rows");
    }
    for table in ["dead_letters", "inbox"] {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *transaction)
        .await
        .map_err(failed("--to"))?;
    }
    transaction.commit().await.map_err(failed("commit"))?;
    source.close().await;
    println!("done: run tillflow with [state] url = the Postgres URL; it carries on from these checkpoints");
    Ok(())
}

async fn insert(
    transaction: &mut sqlx::PgConnection,
    table: &str,
    columns: &[(&str, Kind)],
    rows: &[sqlx::sqlite::SqliteRow],
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let mut insert = QueryBuilder::<Postgres>::new(format!("INSERT INTO {table} ({}) ", names.join(", ")));
    let mut failure = None;
    insert.push_values(rows, |mut values, row| {
        for (index, (_, kind)) in columns.iter().enumerate() {
            let value = match kind {
                Kind::Text => row.try_get::<String, _>(index).map(|v| {
                    values.push_bind(v);
                }),
                Kind::MaybeText => row.try_get::<Option<String>, _>(index).map(|v| {
                    values.push_bind(v);
                }),
                Kind::Integer => row.try_get::<i64, _>(index).map(|v| {
                    values.push_bind(v);
                }),
                Kind::MaybeInteger => row.try_get::<Option<i64>, _>(index).map(|v| {
                    values.push_bind(v);
                }),
                Kind::Bytes => row.try_get::<Vec<u8>, _>(index).map(|v| {
                    values.push_bind(v);
                }),
                Kind::Flag => row.try_get::<i64, _>(index).map(|v| {
                    values.push_bind(v != 0);
                }),
            };
            if let Err(error) = value {
                let column = row.columns().get(index).map(|c| format!("{} ({})", c.name(), c.type_info().name()));
                failure.get_or_insert(sqlx::Error::Decode(
                    format!("{table}.{}: {error}", column.unwrap_or_default()).into(),
                ));
            }
        }
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    insert.build().persistent(false).execute(&mut *transaction).await?;
    Ok(())
}
