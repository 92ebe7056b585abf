//! What every query module shares: chunk sizes, time conversions, error
//! context, and reading stored JSON back.

use crate::insert_chunks::push_batch;
use jiff::Timestamp;
use tillflow_core::StateError;
use tillflow_core::json_text;

/// Strings as one JSON array for one parameter, which a lookup joins the
/// table to (`FROM json_each(?) AS asked CROSS JOIN t ON t.k = asked.value`:
/// CROSS JOIN keeps the asked values outside, or SQLite may scan the
/// pipeline's rows and the list for each, as it chose for a ledger keyed by
/// the pipeline first), so each value probes the table's key directly:
/// `k IN (SELECT value FROM json_each(?))` first copied every value into a
/// temporary index, 3% of a
/// history import's instructions for the ledger alone. A value asked twice
/// answers twice; callers keep answers in maps. The statement's text is the same
/// whatever the number of values, so it is prepared once and kept, where a
/// placeholder per value made a new statement to parse for each count.
/// (Rows for inserts are not passed this way: reading columns back with
/// `value->>N` parses each row's JSON again and cost more than it saved.)
///
/// Written here rather than by serde_json: a page's lookups list every
/// event key and every person's subjects, and serde_json's escaping of each
/// byte and its buffer doubling its way up were 6.5% of the engine's thread
/// in `tillflow-bench --only alone`. The keys and subjects tillflow makes
/// need no escapes (`json_text` tells); a value that does goes through
/// serde_json. Into a `String` directly: written by `json_text::write_str`
/// into bytes, the list then checked for UTF-8 once more, it measured +0.7%
/// of that thread (callgrind; not kept).
pub(crate) fn json_list<'a>(values: impl Iterator<Item = &'a str> + Clone) -> String {
    let room: usize = values.clone().map(|value| value.len() + 3).sum();
    let mut list = String::with_capacity(room + 2);
    list.push('[');
    for (index, value) in values.enumerate() {
        if index > 0 {
            list.push(',');
        }
        if json_text::needs_escape(value) {
            list.push_str(&serde_json::to_string(value).expect("strings serialize"));
        } else {
            list.push('"');
            list.push_str(value);
            list.push('"');
        }
    }
    list.push(']');
    list
}

/// SQLite allows 32,766 bound parameters; lookups stay far below that.
pub(crate) const LOOKUP_CHUNK: usize = 500;
/// The upsert of `rows` rows into `table`, keyed by the pipeline and `key`:
/// the pipeline is bound once, as the first parameter, then each row's
/// `columns` in order, and a row already there takes every column but its
/// key. A name every row shares, bound once a row, was one more copy of it
/// an order on its way into SQLite. Its rows are a chunk's (`push_batch`).
pub(crate) fn pipeline_upsert(table: &str, columns: &[&str], key: &[&str], rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = format!("INSERT INTO {table} (pipeline, {}) SELECT given.pipeline", columns.join(", "));
    for number in 1..=columns.len() {
        let _ = write!(sql, ", batch.column{number}");
    }
    sql.push_str(" FROM (SELECT ? AS pipeline) AS given, ");
    push_batch(&mut sql, rows, columns.len());
    let _ = write!(sql, " ON CONFLICT (pipeline, {}) DO UPDATE SET ", key.join(", "));
    let updated: Vec<String> = columns
        .iter()
        .filter(|column| !key.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    sql.push_str(&updated.join(", "));
    sql
}

pub(crate) fn error(context: &str) -> impl Fn(sqlx::Error) -> StateError + '_ {
    move |e| StateError::new(format!("{context}: {}", describe(&e)))
}

/// SQLite's message, with what it means for the operator when the file
/// itself is the problem (damaged, full, read-only, unwritable): these stop
/// the pass with nothing half-committed, and the next run resumes once the
/// file is fixed.
pub(crate) fn describe(error: &sqlx::Error) -> String {
    let meaning = match primary_code(error) {
        Some(11) | Some(26) => "the state file is damaged; run `tillflow state check` and restore it from a backup",
        Some(13) => "the disk (or the state file's size limit) is full; free space and run again",
        Some(8) => "the state file is read-only; make it writable and run again",
        Some(10) => {
            "the state file cannot be written (a full disk, or a file made immutable or read-only); fix it and run again"
        }
        _ => return error.to_string(),
    };
    format!("{error} — {meaning}")
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) use tillflow_core::stored::{from_millis, json as parse_json};

/// SQLite's primary result code (the low byte of an extended one).
fn primary_code(error: &sqlx::Error) -> Option<i32> {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .and_then(|code| code.parse::<i32>().ok())
        .map(|code| code & 0xff)
}

/// Whether SQLite undid the failed statement alone and the transaction
/// around it goes on: a constraint refused, a value too big, of the wrong
/// type or out of range. On anything else (a full disk, an I/O error, no
/// memory, a busy file) SQLite may have rolled the whole transaction back.
pub(crate) fn fails_statement_alone(error: &sqlx::Error) -> bool {
    matches!(primary_code(error), Some(18) | Some(19) | Some(20) | Some(25))
}

/// SQLITE_CORRUPT or SQLITE_NOTADB: the file itself is damaged.
pub(crate) fn is_damage(error: &sqlx::Error) -> bool {
    matches!(primary_code(error), Some(11) | Some(26))
}

/// A transaction that holds the write lock from its start, for one that
/// reads before it writes: a read lock cannot be raised to a write lock
/// while another connection writes (SQLite answers "locked" at once, the
/// busy timeout notwithstanding), whereas taking the write lock first waits
/// its turn. Done with a write that changes nothing rather than `BEGIN
/// IMMEDIATE`, which sqlx refuses on a connection whose failed transaction
/// it has yet to roll back — the one connection would stay unusable.
pub(crate) async fn begin_writing(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("UPDATE pipelines SET name = name WHERE 0").execute(&mut *transaction).await?;
    Ok(transaction)
}

/// A statement being built, its parameters not all bound yet.
#[cfg(test)]
pub(crate) type Statement<'a> = sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'a>>;

/// The steps of SQLite's plan for `sql`, its parameters bound by `bind`:
/// what the tests that a statement uses an index read.
#[cfg(test)]
pub(crate) async fn query_plan(
    pool: &sqlx::SqlitePool,
    sql: &str,
    bind: impl for<'a> FnOnce(Statement<'a>) -> Statement<'a>,
) -> Vec<String> {
    use sqlx::Row;
    let explained = format!("EXPLAIN QUERY PLAN {sql}");
    let rows = bind(sqlx::query(&explained)).fetch_all(pool).await.unwrap();
    rows.iter().map(|row| row.get::<String, _>(3)).collect()
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    /// The list reads as serde_json writes it (which texts need an escape
    /// is `json_text`'s, tested there), so `json_each` gives back every
    /// value as it was.
    #[test]
    fn a_json_list_is_what_serde_json_writes() {
        let values = ["woocommerce:shop:order:727:placed", "", "say \"hi\""];
        for count in 0..=values.len() {
            let list = super::json_list(values[..count].iter().copied());
            assert_eq!(list, serde_json::to_string(&values[..count]).unwrap());
        }
    }

    /// The bundled SQLite is built with the flags `.cargo/config.toml`
    /// gives it: without memory statistics, every allocation SQLite made
    /// took a global mutex (callgrind: 82M of 5.27G instructions of a
    /// 20,000-order import, 38M without).
    #[tokio::test]
    async fn sqlite_is_built_without_memory_statistics() {
        let mut connection = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> =
            sqlx::query_scalar("PRAGMA compile_options").fetch_all(&mut connection).await.unwrap();
        assert!(options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    }
}
