//! The webhook inbox's prune, run beside a pipeline's webhook rounds rather
//! than between them.

use std::sync::Arc;
use tillflow_core::StateStore;
use tokio::task::JoinHandle;

/// Deletes the source's webhooks every reader has passed, so the inbox does
/// not grow forever. A failure only delays it to the next prune.
pub(super) async fn prune_inbox(state: &dyn StateStore, source: &str, readers: &[String]) {
    match state.inbox_prune(source, readers).await {
        Ok(0) => {}
        Ok(deleted) => tracing::debug!(source = %source, deleted, "webhooks every pipeline has processed deleted"),
        Err(error) => tracing::warn!(source = %source, %error, "could not prune the webhook inbox"),
    }
}

/// A pipeline's prune on a task of its own, one at a time. Awaited between
/// rounds, a prune of the second's thousand webhooks (20–28 ms on SQLite,
/// where it overwrites every page it frees) held the next round back for
/// all of it; beside the rounds, a round's writes wait for one of its chunks
/// at most. Dropped, it stops at the end of the chunk being written.
#[derive(Default)]
pub(super) struct BackgroundPrune {
    running: Option<JoinHandle<()>>,
}

impl BackgroundPrune {
    /// Starts a prune unless the last one is still running, which reads the
    /// readers' watermarks afresh for each chunk and so takes what this one
    /// would. True when one was started.
    pub(super) fn start(&mut self, state: Arc<dyn StateStore>, source: String, readers: Arc<Vec<String>>) -> bool {
        if self.running.as_ref().is_some_and(|running| !running.is_finished()) {
            return false;
        }
        self.running = Some(tokio::spawn(async move { prune_inbox(state.as_ref(), &source, &readers).await }));
        true
    }
}

impl Drop for BackgroundPrune {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillflow_core::state::Commit;
    use tillflow_testkit::MemoryStore;

    /// A prune starts without waiting for itself, one at a time: asked again
    /// while one runs, nothing more starts; once it is done, the next does.
    #[tokio::test]
    async fn a_prune_runs_on_its_own_task_one_at_a_time() {
        let store = Arc::new(MemoryStore::new());
        let done = store.inbox_push("shop", &[], b"{}", jiff::Timestamp::now()).await.unwrap();
        store.commit("p", Commit { inbox_done: vec![done], ..Commit::default() }).await.unwrap();
        let readers = Arc::new(vec!["p".to_owned()]);
        let mut prune = BackgroundPrune::default();
        // On this test's one thread the task has not run yet: `start` did
        // not wait for it.
        assert!(prune.start(store.clone(), "shop".into(), readers.clone()));
        assert_eq!(store.inbox_pending_count("q", "shop").await.unwrap(), 1, "not pruned yet");
        assert!(!prune.start(store.clone(), "shop".into(), readers.clone()), "one at a time");
        prune.running.take().unwrap().await.unwrap();
        assert_eq!(store.inbox_pending_count("q", "shop").await.unwrap(), 0, "pruned on its own task");
        assert!(prune.start(store.clone(), "shop".into(), readers), "the next starts once it is done");
    }
}
