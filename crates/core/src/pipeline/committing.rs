//! The acknowledged batch whose commit is being written while the engine
//! reads and derives what comes next: at most one, settled before anything
//! that must see it (a ledger lookup, the next delivery or commit, the end of
//! a stream, an inbox round or a replay).

use super::{Pipeline, PipelineError};
use crate::events::Event;
use crate::state::Commit;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A commit on its way into the state store and the events it acknowledges,
/// shown to progress observers once it is written.
pub(super) struct InFlightCommit {
    write: JoinHandle<Result<(), crate::StateError>>,
    acknowledged: Vec<Event>,
}

impl Pipeline {
    /// Starts writing `commit` once the one before it is written. The write
    /// runs as a task of its own, so it goes on while this pipeline's task
    /// derives the next pages, and ends even if the pass is dropped meanwhile.
    pub(super) async fn start_commit(&mut self, commit: Commit, acknowledged: Vec<Event>) -> Result<(), PipelineError> {
        self.settle_commit().await?;
        let state = Arc::clone(&self.state);
        let pipeline = self.name.clone();
        let write = tokio::spawn(async move { state.commit(&pipeline, commit).await });
        self.committing = Some(InFlightCommit { write, acknowledged });
        // The write begins now rather than at this task's next wait: on a
        // runtime of one thread that could be after the next page's events.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Waits for the commit in flight, if any; its failure is the pass's.
    pub(super) async fn settle_commit(&mut self) -> Result<(), PipelineError> {
        let Some(InFlightCommit { write, acknowledged }) = self.committing.take() else { return Ok(()) };
        write.await.map_err(|e| PipelineError::Transient(format!("state commit task failed: {e}")))??;
        let acknowledged: Vec<&Event> = acknowledged.iter().collect();
        self.options.progress.delivered(&self.name, &acknowledged);
        self.options.failpoint.pass("after-batch-commit").await;
        Ok(())
    }

    /// `outcome`, once the commit in flight is written: whatever runs after
    /// a stream, an inbox or a replay, failed or not, reads the checkpoint
    /// and the ledger it writes. The first error wins.
    pub(super) async fn settled<T>(&mut self, outcome: Result<T, PipelineError>) -> Result<T, PipelineError> {
        let settled = self.settle_commit().await;
        let value = outcome?;
        settled.map(|()| value)
    }
}
