//! Group commit for the webhook inbox: each webhook must be durable before
//! its 2xx, and a transaction's fsyncs cost the same for one row as for a
//! hundred, so webhooks that arrive while one transaction is being written
//! wait for the next and are written together. Whoever finds the writer free
//! writes everything queued, its own webhook included, and hands each waiter
//! its id; nobody waits for a timer, so a lone webhook is written at once.

use crate::sql::{begin_writing, error, millis};
use jiff::Timestamp;
use sqlx::SqlitePool;
use std::sync::{Arc, Mutex};
use tillflow_core::StateError;
use tokio::sync::oneshot;

/// One webhook waiting to be stored, and where its id goes.
struct Queued {
    source: String,
    headers: String,
    body: Vec<u8>,
    received_at: Timestamp,
    stored: oneshot::Sender<Result<i64, StateError>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct InboxWriter {
    queue: Arc<Mutex<Vec<QueuedSlot>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// `Queued` behind a `Debug` the store's derive can print.
struct QueuedSlot(Queued);

impl std::fmt::Debug for QueuedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "webhook of {}", self.0.source)
    }
}

impl InboxWriter {
    /// Stores one webhook durably (with whatever else is queued) and answers
    /// its id.
    pub(crate) async fn push(
        &self,
        pool: &SqlitePool,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError> {
        let (stored, mut id) = oneshot::channel();
        let headers = serde_json::to_string(headers).expect("headers serialize");
        let item = Queued { source: source.to_owned(), headers, body: body.to_vec(), received_at, stored };
        self.queue.lock().expect("inbox queue").push(QueuedSlot(item));
        let writing = self.writer.lock().await;
        // A writer before us may have taken our webhook along: it answers
        // before it lets the writer go.
        if let Ok(result) = id.try_recv() {
            return result;
        }
        let batch: Vec<Queued> =
            std::mem::take(&mut *self.queue.lock().expect("inbox queue")).into_iter().map(|slot| slot.0).collect();
        let written = write(pool, &batch).await;
        for (position, item) in batch.into_iter().enumerate() {
            let answer = match &written {
                Ok(ids) => Ok(ids[position]),
                Err(problem) => Err(StateError::new(problem.to_string())),
            };
            let _ = item.stored.send(answer);
        }
        drop(writing);
        id.await.unwrap_or_else(|_| Err(StateError::new("store webhook: the inbox writer went away")))
    }
}

/// Every queued webhook in one transaction; their ids in order.
async fn write(pool: &SqlitePool, batch: &[Queued]) -> Result<Vec<i64>, StateError> {
    let mut transaction = begin_writing(pool, "store webhook").await?;
    let mut ids = Vec::with_capacity(batch.len());
    for item in batch {
        let id = sqlx::query("INSERT INTO inbox (source, received_at, headers, body) VALUES (?, ?, ?, ?)")
            .bind(&item.source)
            .bind(millis(item.received_at))
            .bind(&item.headers)
            .bind(&item.body)
            .execute(&mut *transaction)
            .await
            .map_err(error("store webhook"))?
            .last_insert_rowid();
        ids.push(id);
    }
    transaction.commit().await.map_err(error("store webhook"))?;
    Ok(ids)
}
