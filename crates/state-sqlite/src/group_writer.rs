//! Group commit for the writes a run makes all the time (webhooks stored, a
//! page's facts, a batch's commit, the inbox prune): on a rollback journal a commit costs five
//! fsyncs whether it holds one write or twenty, and every write waits its
//! turn on the one connection, so writes that arrive while a transaction is
//! being written wait for the next one and share it. Whoever finds the writer
//! free writes everything queued, its own write included, and hands each
//! waiter its answer once the transaction is committed; nobody waits for a
//! timer, so a lone write goes at once, alone, exactly as it would without
//! the group.
//!
//! In a group each write runs inside a savepoint of its own: a write that
//! fails is rolled back alone and answers its own error, the others still
//! commit. A write of one statement (a webhook stored) needs none: SQLite
//! undoes a failed statement alone, and where the failure may have cost the
//! whole transaction (a full disk, an I/O error) the group fails with it. A
//! write is answered `Ok` only once the transaction holding it is
//! committed; if the commit fails, every write in it answers that failure.

use crate::sql::{begin_writing, describe, fails_statement_alone};
use futures_util::future::BoxFuture;
use sqlx::{SqliteConnection, SqlitePool};
use std::any::Any;
use std::sync::{Arc, Mutex};
use tillflow_core::StateError;
use tokio::sync::oneshot;

/// What a write answers, until its caller takes its own type back.
type Answer = Box<dyn Any + Send>;

/// A write, given the group's connection inside its transaction.
type Work = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<Answer, Refusal>> + Send>;

/// Why a write failed.
enum Refusal {
    /// Its own error: the transaction goes on without what it wrote.
    Write(StateError),
    /// The failure may have cost the whole transaction (a write run without
    /// a savepoint): the group fails with it.
    Transaction(String),
}

struct Queued {
    context: &'static str,
    work: Work,
    /// The write is one statement, run without a savepoint.
    one_statement: bool,
    answer: oneshot::Sender<Result<Answer, StateError>>,
}

#[derive(Clone, Default)]
pub(crate) struct GroupWriter {
    queue: Arc<Mutex<Vec<Queued>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupWriter({} queued)", self.queue.lock().map_or(0, |queue| queue.len()))
    }
}

impl GroupWriter {
    /// Runs `work` in the next write transaction and answers what it
    /// answered once that transaction is committed. `context` names the write
    /// in the errors of the transaction around it.
    pub(crate) async fn write<T, W>(&self, pool: &SqlitePool, context: &'static str, work: W) -> Result<T, StateError>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StateError>> + Send + 'static,
    {
        let work: Work = Box::new(move |connection| {
            Box::pin(async move { work(connection).await.map(|done| Box::new(done) as Answer).map_err(Refusal::Write) })
        });
        self.write_typed(pool, context, work, false).await
    }

    /// Runs `statement`, which must be exactly one SQL statement, in the next
    /// write transaction without a savepoint around it: in a group of
    /// webhooks stored, the savepoint and its release were two more round
    /// trips to the connection's thread for each.
    pub(crate) async fn write_statement<T, W>(
        &self,
        pool: &SqlitePool,
        context: &'static str,
        statement: W,
    ) -> Result<T, StateError>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + 'static,
    {
        let work: Work = Box::new(move |connection| {
            Box::pin(async move {
                match statement(connection).await {
                    Ok(done) => Ok(Box::new(done) as Answer),
                    Err(error) if fails_statement_alone(&error) => {
                        Err(Refusal::Write(StateError::new(format!("{context}: {}", describe(&error)))))
                    }
                    Err(error) => Err(Refusal::Transaction(describe(&error))),
                }
            })
        });
        self.write_typed(pool, context, work, true).await
    }

    /// Queues `work` and gives its answer back as the type it was written with.
    async fn write_typed<T: 'static>(
        &self,
        pool: &SqlitePool,
        context: &'static str,
        work: Work,
        one_statement: bool,
    ) -> Result<T, StateError> {
        let answer = self.write_boxed(pool, context, work, one_statement).await;
        answer.map(|done| *done.downcast::<T>().expect("a write answers its own type"))
    }

    async fn write_boxed(
        &self,
        pool: &SqlitePool,
        context: &'static str,
        work: Work,
        one_statement: bool,
    ) -> Result<Answer, StateError> {
        let (answer, mut answered) = oneshot::channel();
        self.queue.lock().expect("write queue").push(Queued { context, work, one_statement, answer });
        let writing = self.writer.clone().lock_owned().await;
        // A writer before us may have taken ours along: it answers before it
        // lets the writer go.
        if let Ok(answer) = answered.try_recv() {
            return answer;
        }
        let group = std::mem::take(&mut *self.queue.lock().expect("write queue"));
        // On a task of its own: a caller that goes away (a webhook whose
        // client hung up drops its handler) must not cut short a transaction
        // that holds other callers' writes.
        let pool = pool.clone();
        tokio::spawn(async move {
            write_group(&pool, group).await;
            drop(writing);
        });
        answered.await.unwrap_or_else(|_| Err(StateError::new(format!("{context}: the state writer went away"))))
    }
}

/// Writes `group` in one transaction and answers each of its writes.
async fn write_group(pool: &SqlitePool, group: Vec<Queued>) {
    let contexts: Vec<&'static str> = group.iter().map(|queued| queued.context).collect();
    let (senders, works): (Vec<_>, Vec<_>) =
        group.into_iter().map(|queued| (queued.answer, (queued.work, queued.one_statement))).unzip();
    let answers = written(pool, works).await.unwrap_or_else(|problem| {
        contexts.iter().map(|context| Err(StateError::new(format!("{context}: {problem}")))).collect()
    });
    for (sender, answer) in senders.into_iter().zip(answers) {
        let _ = sender.send(answer);
    }
}

/// Each write's answer, or why the transaction holding them all failed.
async fn written(pool: &SqlitePool, works: Vec<(Work, bool)>) -> Result<Vec<Result<Answer, StateError>>, String> {
    let mut transaction = begin_writing(pool).await.map_err(|e| describe(&e))?;
    let alone = works.len() == 1;
    let mut answers = Vec::with_capacity(works.len());
    for (work, one_statement) in works {
        // Alone, a write needs no savepoint either: if it fails, the
        // transaction (dropped) rolls back.
        let answer = if alone || one_statement {
            match work(&mut transaction).await {
                Ok(done) => Ok(done),
                Err(Refusal::Write(error)) if !alone => Err(error),
                Err(Refusal::Write(error)) => return Ok(vec![Err(error)]),
                Err(Refusal::Transaction(problem)) => return Err(problem),
            }
        } else {
            in_savepoint(&mut transaction, work).await?
        };
        answers.push(answer);
    }
    transaction.commit().await.map_err(|e| describe(&e))?;
    Ok(answers)
}

/// Runs one write of a group in a savepoint: rolled back alone when it
/// fails. Err when the transaction itself is lost (SQLite rolls back the
/// whole transaction on some errors, a full disk among them), and with it
/// every write of the group.
async fn in_savepoint(connection: &mut SqliteConnection, work: Work) -> Result<Result<Answer, StateError>, String> {
    let run = |sql: &'static str| sqlx::query(sql);
    run("SAVEPOINT grouped_write").execute(&mut *connection).await.map_err(|e| describe(&e))?;
    let answer = match work(&mut *connection).await {
        Ok(done) => Ok(done),
        Err(Refusal::Write(error)) => Err(error),
        Err(Refusal::Transaction(problem)) => return Err(problem),
    };
    if answer.is_err() {
        run("ROLLBACK TO grouped_write").execute(&mut *connection).await.map_err(|e| describe(&e))?;
    }
    run("RELEASE grouped_write").execute(&mut *connection).await.map_err(|e| describe(&e))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool(dir: &tempfile::TempDir) -> SqlitePool {
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("t.db")).create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        sqlx::raw_sql("CREATE TABLE pipelines (name TEXT); CREATE TABLE t (n INTEGER UNIQUE)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn insert(
        n: i64,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, StateError>> + Send + 'static {
        move |connection| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES (?)")
                    .bind(n)
                    .execute(connection)
                    .await
                    .map_err(|e| StateError::new(describe(&e)))?;
                Ok(n)
            })
        }
    }

    /// Holds the writer, and lets it go once `writes` writes are queued, so
    /// that they go as one group.
    async fn release_once_queued(writer: &GroupWriter, writes: usize) -> impl std::future::Future<Output = ()> {
        let holding = writer.writer.clone().lock_owned().await;
        let queue = writer.queue.clone();
        async move {
            while queue.lock().unwrap().len() < writes {
                tokio::task::yield_now().await;
            }
            drop(holding);
        }
    }

    /// A write that fails halfway through a group takes back what it wrote,
    /// and only that: the writes before and after it in the same
    /// transaction are committed and answered.
    #[tokio::test]
    async fn a_write_that_fails_in_a_group_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = GroupWriter::default();
        // Held, so the three writes below queue and go as one group.
        let released = release_once_queued(&writer, 3).await;
        let (first, failing, last, ()) = tokio::join!(
            writer.write(&pool, "first", insert(1)),
            writer.write(
                &pool,
                "failing",
                |connection: &mut SqliteConnection| -> BoxFuture<'_, Result<i64, StateError>> {
                    Box::pin(async move {
                        insert(2)(&mut *connection).await?;
                        // 1 again: the UNIQUE constraint refuses it.
                        insert(1)(connection).await
                    })
                }
            ),
            writer.write(&pool, "last", insert(3)),
            released
        );
        assert_eq!((first.unwrap(), last.unwrap()), (1, 3));
        assert!(failing.unwrap_err().0.contains("UNIQUE"), "the failing write answers its own error");
        let kept: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(&pool).await.unwrap();
        assert_eq!(kept, [1, 3], "the failed write's first insert is undone, the others kept");
    }

    /// A one-statement write (a webhook stored) in a group runs without a
    /// savepoint, and when a constraint refuses it, it answers its own
    /// error alone: SQLite undid the statement, the others commit.
    #[tokio::test]
    async fn a_one_statement_write_in_a_group_has_no_savepoint_and_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = GroupWriter::default();
        let released = release_once_queued(&writer, 4).await;
        let (first, probed, refused, last, ()) = tokio::join!(
            writer.write(&pool, "first", insert(1)),
            writer.write_statement(
                &pool,
                "probed",
                |connection: &mut SqliteConnection| -> BoxFuture<'_, Result<bool, sqlx::Error>> {
                    Box::pin(async move {
                        // Releasing the group's savepoint works only inside one.
                        let in_savepoint = sqlx::query("RELEASE grouped_write").execute(&mut *connection).await.is_ok();
                        sqlx::query("INSERT INTO t (n) VALUES (2)").execute(connection).await?;
                        Ok(in_savepoint)
                    })
                }
            ),
            writer.write_statement(
                &pool,
                "refused",
                |connection: &mut SqliteConnection| -> BoxFuture<'_, Result<i64, sqlx::Error>> {
                    // 1 again: the UNIQUE constraint refuses it.
                    Box::pin(
                        async move { sqlx::query("INSERT INTO t (n) VALUES (1)").execute(connection).await.map(|_| 1) },
                    )
                }
            ),
            writer.write(&pool, "last", insert(3)),
            released
        );
        assert_eq!((first.unwrap(), last.unwrap()), (1, 3));
        assert!(!probed.unwrap(), "no savepoint around a one-statement write");
        let refused = refused.unwrap_err().0;
        assert!(refused.starts_with("refused: ") && refused.contains("UNIQUE"), "{refused}");
        let kept: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(&pool).await.unwrap();
        assert_eq!(kept, [1, 2, 3]);
    }
}
