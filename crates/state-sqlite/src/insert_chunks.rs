//! Multi-row inserts in statements of a few fixed sizes, each prepared once
//! and kept: a chunk of rows goes into the smallest statement that holds it,
//! and the places it leaves are bound to rows of NULLs, which the statement
//! leaves out (`WHERE batch.column1 IS NOT NULL`: no real row has a NULL
//! key).
//!
//! Why: every statement is a round trip to the thread sqlx runs SQLite on,
//! which wakes that thread and then the engine's, and on the 2-core VMs
//! measured a wake-up costs the waker microseconds in the kernel. Chunks of
//! 128 rows made a 1,000-event commit eight ledger statements and eight more
//! for the orders read, each two wake-ups; their last, shorter chunk was a
//! statement of its own row count, parsed again for every commit. A statement
//! of exactly the rows (chunks of 1,024, tried) is one round trip but is
//! parsed anew each time: +4.6% instructions on a history import. A padded
//! place costs a few NULLs bound and one row the statement skips; the kept
//! statements cost memory, 2.5 to 3.5 MB more peak RSS in a history import
//! (a statement of 512 rows holds its program and its 3,000-odd parameters).

use sqlx::Arguments;
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use std::sync::OnceLock;

/// The most rows a statement takes (SQLite allows 32,766 parameters; the
/// widest row here has seven).
pub(crate) const INSERT_CHUNK: usize = 512;

/// `rows` in chunks of at most `INSERT_CHUNK`, each handed over owned, so a
/// row's texts can be bound without the copy sqlx makes of a borrowed one.
pub(crate) fn owned_chunks<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || rows.peek().is_some().then(|| rows.by_ref().take(INSERT_CHUNK).collect()))
}

/// The fewest rows a statement is written for: a commit of one row pads
/// seven, where a statement for each count below this would be kept too.
const SMALLEST: usize = 8;

/// Statement sizes kept: 8, 16, … up to `INSERT_CHUNK`.
const SIZES: usize = (INSERT_CHUNK / SMALLEST).trailing_zeros() as usize + 1;

/// One insert's statements, a size of each written once per process and
/// kept prepared on the connection.
pub(crate) struct ChunkStatements {
    /// Each size's text and how many parameters it binds.
    texts: [OnceLock<(String, usize)>; SIZES],
    /// The statement text for a number of rows.
    write: fn(usize) -> String,
    /// Parameters a row binds: what a second row adds to the statement.
    width: OnceLock<usize>,
}

/// A chunk's statement and the NULL rows that fill it up.
pub(crate) struct Chunk {
    statement: &'static str,
    parameters: usize,
    padding: usize,
    width: usize,
}

impl ChunkStatements {
    pub(crate) const fn new(write: fn(usize) -> String) -> Self {
        Self { texts: [const { OnceLock::new() }; SIZES], write, width: OnceLock::new() }
    }

    /// The statement for a chunk of `rows` rows, 1 to `INSERT_CHUNK`.
    pub(crate) fn chunk(&'static self, rows: usize) -> Chunk {
        let size = statement_rows(rows);
        let (text, count) = self.texts[(size / SMALLEST).trailing_zeros() as usize].get_or_init(|| {
            let text = (self.write)(size);
            let count = parameters(&text);
            (text, count)
        });
        let width = *self.width.get_or_init(|| parameters(&(self.write)(2)) - parameters(&(self.write)(1)));
        Chunk { statement: text, parameters: *count, padding: size - rows, width }
    }
}

impl Chunk {
    /// The chunk's statement, its arguments' list made as long as it binds
    /// (a 512-row statement binds 3,000-odd; grown one bind at a time, the
    /// list was copied a dozen times a statement).
    pub(crate) fn query<'q>(&self) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        let mut arguments = SqliteArguments::default();
        arguments.reserve(self.parameters, 0);
        sqlx::query_with(self.statement, arguments)
    }

    /// `query` with the chunk's places past its rows bound to NULL.
    pub(crate) fn pad<'q>(
        &self,
        mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        for _ in 0..self.padding * self.width {
            query = query.bind(None::<i64>);
        }
        query
    }
}

/// A chunk's rows as a statement selects them: `(VALUES …) AS batch`, `rows`
/// rows of `width` parameters, and the filter that leaves a padding row out
/// (its first column is NULL, which no real row's key is). Every chunked
/// insert selects from this, so none can leave the filter out. The WHERE
/// also parts an INSERT's SELECT from an upsert after it, as SQLite's
/// grammar wants.
pub(crate) fn push_batch(sql: &mut String, rows: usize, width: usize) {
    let row = format!("({})", vec!["?"; width].join(", "));
    sql.push_str("(VALUES ");
    for number in 0..rows {
        if number > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql.push_str(") AS batch WHERE batch.column1 IS NOT NULL");
}

/// The `?` placeholders of a statement (none of ours has one in a literal).
fn parameters(statement: &str) -> usize {
    statement.matches('?').count()
}

/// The rows of the statement a chunk of `rows` goes into: the next power of
/// two, at least `SMALLEST`.
fn statement_rows(rows: usize) -> usize {
    assert!((1..=INSERT_CHUNK).contains(&rows), "a chunk holds 1 to {INSERT_CHUNK} rows, not {rows}");
    rows.next_power_of_two().max(SMALLEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_chunks_hand_over_every_row_in_order_a_chunk_at_a_time() {
        let rows: Vec<usize> = (0..2 * INSERT_CHUNK + 3).collect();
        let chunks: Vec<Vec<usize>> = owned_chunks(rows.clone()).collect();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [INSERT_CHUNK, INSERT_CHUNK, 3]);
        assert_eq!(chunks.concat(), rows);
        assert_eq!(owned_chunks(Vec::<usize>::new()).count(), 0);
    }

    #[test]
    fn a_chunk_goes_into_the_smallest_kept_statement_that_holds_it() {
        let mut sizes = std::collections::BTreeSet::new();
        for rows in 1..=INSERT_CHUNK {
            let size = statement_rows(rows);
            assert!(size >= rows, "{rows} rows in a statement of {size}");
            assert!(size == SMALLEST || size < 2 * rows, "{rows} rows padded to {size}");
            sizes.insert(size);
        }
        assert_eq!(sizes.len(), SIZES, "{sizes:?}");
        assert_eq!(sizes.last(), Some(&INSERT_CHUNK));
    }

    #[test]
    fn every_size_has_a_place_of_its_own() {
        static STATEMENTS: ChunkStatements =
            ChunkStatements::new(|rows| format!("? {} {rows} rows", vec!["(?, ?, ?)"; rows].join(", ")));
        for rows in [1, 8, 9, 16, 17, 300, INSERT_CHUNK] {
            let chunk = STATEMENTS.chunk(rows);
            let size = statement_rows(rows);
            assert!(chunk.statement.ends_with(&format!(" {size} rows")), "{rows}");
            assert_eq!((chunk.padding, chunk.width, chunk.parameters), (size - rows, 3, 1 + 3 * size));
        }
    }
}
