//! When a pipeline runs next: its poll clock, the webhook wake-ups, and the
//! pruning of what its rounds have left in the inbox.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How often a pipeline deletes the webhooks every reader has processed:
/// a prune is a write on the state's one writer, and after every round of a
/// steady stream it was one more for the next round to wait behind.
pub(super) const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What a pipeline is to do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Wake {
    /// Its poll interval has run out since its last full pass.
    FullPass,
    /// Webhooks are waiting.
    Webhooks,
    /// Rounds have run since the last prune, and `PRUNE_EVERY` has passed.
    Prune,
    /// The time given to `next` has come (webhook rounds are to be told).
    Tell,
    Shutdown,
}

/// What a pipeline waits on between rounds.
pub(super) struct Wakeups {
    /// Rung by this runner's server for every webhook it stores.
    notify: Arc<Notify>,
    /// On Postgres: the lease rounds, after which webhooks another runner's
    /// server stored are looked for.
    rounds: Option<watch::Receiver<BTreeSet<String>>>,
    shutdown: watch::Receiver<bool>,
    /// A poll interval after the last full pass ended, however many webhook
    /// rounds run meanwhile: under a steady stream a wake-up is always
    /// waiting, and a timer started afresh after each round never ran out.
    next_full_pass: Instant,
    last_prune: Instant,
    /// Rounds have run since the last prune.
    prune_due: bool,
}

impl Wakeups {
    pub(super) fn new(
        notify: Arc<Notify>,
        rounds: Option<watch::Receiver<BTreeSet<String>>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let now = Instant::now();
        Self { notify, rounds, shutdown, next_full_pass: now, last_prune: now, prune_due: false }
    }

    /// Waits for the next thing to do, or until `tell_at` if given. Webhooks
    /// that wake the pipeline once its poll interval has run out get a full
    /// pass, which takes them too; a `Wake::Prune` counts as the prune done.
    pub(super) async fn next(&mut self, tell_at: Option<Instant>) -> Wake {
        let woke = tokio::select! {
            _ = tokio::time::sleep_until(self.next_full_pass) => Wake::FullPass,
            _ = self.notify.notified() => Wake::Webhooks,
            _ = next_round(&mut self.rounds) => Wake::Webhooks,
            _ = tokio::time::sleep_until(self.last_prune + PRUNE_EVERY), if self.prune_due => Wake::Prune,
            _ = self.shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
            _ = tokio::time::sleep_until(tell_at.unwrap_or_else(Instant::now)), if tell_at.is_some() => Wake::Tell,
        };
        match woke {
            Wake::Webhooks if Instant::now() >= self.next_full_pass => Wake::FullPass,
            Wake::Prune => {
                self.pruned();
                Wake::Prune
            }
            woke => woke,
        }
    }

    /// Waits, while another runner holds the pipeline's lease, for the next
    /// lease round: false when the process is stopping instead.
    pub(super) async fn next_lease_round(&mut self) -> bool {
        tokio::select! {
            _ = next_round(&mut self.rounds) => true,
            _ = self.shutdown.wait_for(|stop| *stop) => false,
        }
    }

    /// The last round stopped with webhooks left: the next wake-up is at once.
    pub(super) fn go_again(&self) {
        self.notify.notify_one();
    }

    /// A full pass has just ended.
    pub(super) fn full_pass_ended(&mut self, poll_interval: Duration) {
        self.next_full_pass = Instant::now() + poll_interval;
    }

    /// A round has just ended: whether to prune now (counted as done), or
    /// leave it to the timer (`Wake::Prune`).
    pub(super) fn round_ended(&mut self, full_pass: bool) -> bool {
        if full_pass || self.last_prune.elapsed() >= PRUNE_EVERY {
            self.pruned();
            return true;
        }
        self.prune_due = true;
        false
    }

    fn pruned(&mut self) {
        self.last_prune = Instant::now();
        self.prune_due = false;
    }
}

/// The next lease round (never, without leases).
async fn next_round(rounds: &mut Option<watch::Receiver<BTreeSet<String>>>) {
    let Some(rounds) = rounds else { return std::future::pending().await };
    if rounds.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wakeups() -> (Wakeups, watch::Sender<bool>) {
        let (stop, shutdown) = watch::channel(false);
        (Wakeups::new(Arc::new(Notify::new()), None, shutdown), stop)
    }

    /// A webhook every ten minutes, an hour's poll interval: the seventh
    /// wake-up, past the hour, is a full pass.
    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_webhooks_does_not_hold_off_the_poll() {
        let (mut wakeups, _stop) = wakeups();
        wakeups.full_pass_ended(Duration::from_secs(3600));
        let mut woken = Vec::new();
        for _ in 0..7 {
            tokio::time::advance(Duration::from_secs(600)).await;
            wakeups.notify.notify_one();
            woken.push(wakeups.next(None).await);
        }
        assert_eq!(woken[..5], [Wake::Webhooks, Wake::Webhooks, Wake::Webhooks, Wake::Webhooks, Wake::Webhooks]);
        assert_eq!(woken[5..], [Wake::FullPass, Wake::FullPass]);
        wakeups.full_pass_ended(Duration::from_secs(3600));
        wakeups.notify.notify_one();
        assert_eq!(wakeups.next(None).await, Wake::Webhooks);
    }

    /// Rounds prune at most every `PRUNE_EVERY`; what the last of them left
    /// is pruned that long after the one before, with no round to prompt it.
    #[tokio::test(start_paused = true)]
    async fn the_inbox_is_pruned_once_a_second_and_after_the_last_round() {
        let (mut wakeups, _stop) = wakeups();
        wakeups.full_pass_ended(Duration::from_secs(3600));
        assert!(wakeups.round_ended(true), "a full pass prunes");
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(!wakeups.round_ended(false), "a round 300 ms later leaves it");
        let waited = Instant::now();
        assert_eq!(wakeups.next(None).await, Wake::Prune);
        assert_eq!(waited.elapsed(), Duration::from_millis(700), "a second after the last prune");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(wakeups.round_ended(false), "a round a second after it prunes");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_wakes_a_pipeline_waiting_for_its_poll() {
        let (mut wakeups, stop) = wakeups();
        wakeups.full_pass_ended(Duration::from_secs(3600));
        stop.send(true).unwrap();
        assert_eq!(wakeups.next(None).await, Wake::Shutdown);
    }

    /// The time to tell webhook rounds wakes a pipeline with nothing else
    /// to do, at that time.
    #[tokio::test(start_paused = true)]
    async fn the_time_to_tell_rounds_wakes_the_pipeline() {
        let (mut wakeups, _stop) = wakeups();
        wakeups.full_pass_ended(Duration::from_secs(3600));
        let waited = Instant::now();
        assert_eq!(wakeups.next(Some(waited + Duration::from_secs(1))).await, Wake::Tell);
        assert_eq!(waited.elapsed(), Duration::from_secs(1));
    }
}
