//! A runner's share of the pipelines when the state is on Postgres: every
//! third of `[state] lease_ttl` it renews the leases it holds, takes free or
//! expired ones up to its fair share, and gives back idle ones beyond it (a
//! runner that joined needs its share). A pipeline runs only while its lease
//! is held; a pass in progress keeps the pipeline busy, so it is never given
//! back mid-pass, and a commit after the lease moved on is refused by the
//! store (fencing), which drops the lease here too.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::StateError;
use tillflow_state_postgres::PgStore;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

pub struct Leasing {
    store: Arc<PgStore>,
    ttl: Duration,
    pipelines: Vec<String>,
    busy: HashMap<String, Arc<Mutex<()>>>,
    held: watch::Sender<BTreeSet<String>>,
}

impl Leasing {
    pub fn new(store: Arc<PgStore>, ttl: Duration, pipelines: Vec<String>) -> Arc<Self> {
        let busy = pipelines.iter().map(|name| (name.clone(), Arc::new(Mutex::new(())))).collect();
        Arc::new(Self { store, ttl, pipelines, busy, held: watch::Sender::new(BTreeSet::new()) })
    }

    pub fn runner(&self) -> &str {
        self.store.fencing().map_or("", |fencing| fencing.runner())
    }

    /// Whether this runner holds `pipeline`'s lease now.
    pub fn holds(&self, pipeline: &str) -> bool {
        self.store.fencing().is_some_and(|fencing| fencing.holds(pipeline))
    }

    /// Told after every round (whether or not the held set changed).
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<String>> {
        self.held.subscribe()
    }

    /// Held for the length of a pass: a busy pipeline is not given back.
    pub async fn busy(&self, pipeline: &str) -> OwnedMutexGuard<()> {
        self.busy[pipeline].clone().lock_owned().await
    }

    /// Announces this runner, then waits a round (a third of the lease's
    /// life): runners started together all count each other before any takes
    /// its share, and every runner already running has re-divided the
    /// accounts' budgets before this one sends anything. `--once` alone on
    /// the state (`wait_alone` false) does not wait.
    pub async fn join(&self, wait_alone: bool) -> Result<(), StateError> {
        let announced = self.store.claim(&[], self.ttl).await?;
        self.divide_budgets(announced.live);
        if wait_alone || announced.live > 1 {
            tracing::info!(
                runner = self.runner(),
                runners = announced.live,
                "joining the runners on this state: taking a share after one round"
            );
            tokio::time::sleep(self.ttl / 3).await;
        }
        Ok(())
    }

    /// One round: renew, take up to the share, give back idle extras.
    pub async fn round(&self) -> Result<(), StateError> {
        let lost = self.store.renew(self.ttl).await?;
        for pipeline in &lost {
            tracing::warn!(pipeline, runner = self.runner(), "lease lost (it expired and another runner took it)");
        }
        let claimed = self.store.claim(&self.pipelines, self.ttl).await?;
        let runners = u32::try_from(claimed.live).unwrap_or(u32::MAX);
        if tillflow_http::runners_sharing_accounts() != runners {
            tracing::info!(
                runner = self.runner(),
                runners,
                "each platform account's rate budget split among the live runners"
            );
            tillflow_http::share_accounts_among_runners(runners);
        }
        for (pipeline, token) in &claimed.taken {
            tracing::info!(pipeline, token, runner = self.runner(), "lease taken");
        }
        let held: Vec<String> = self.store.fencing().map(|f| f.held().into_keys().collect()).unwrap_or_default();
        for pipeline in held.iter().rev().take(held.len().saturating_sub(claimed.share)) {
            if let Ok(_idle) = self.busy[pipeline].try_lock() {
                self.store.release(pipeline).await?;
                tracing::info!(
                    pipeline,
                    runner = self.runner(),
                    share = claimed.share,
                    "lease given back (beyond this runner's share)"
                );
            }
        }
        let held = self.store.fencing().map(|f| f.held().into_keys().collect()).unwrap_or_default();
        self.held.send_replace(held);
        Ok(())
    }

    /// Keeps this process to its part of every account's budget.
    fn divide_budgets(&self, live: usize) {
        let runners = u32::try_from(live).unwrap_or(u32::MAX);
        if tillflow_http::runners_sharing_accounts() != runners {
            tracing::info!(
                runner = self.runner(),
                runners,
                "each platform account's rate budget split among the live runners"
            );
            tillflow_http::share_accounts_among_runners(runners);
        }
    }

    /// Rounds every third of the lease's life until shut down.
    pub async fn keep(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        while let Err(error) = self.join(true).await {
            tracing::warn!(%error, runner = self.runner(), "cannot join the runners yet; retrying");
            if !self.until_next_round(&mut shutdown).await {
                return;
            }
        }
        loop {
            if let Err(error) = self.round().await {
                tracing::warn!(%error, runner = self.runner(), "lease round failed; retrying");
            }
            if !self.until_next_round(&mut shutdown).await {
                return;
            }
        }
    }

    /// Waits a third of the lease's life; false when shut down meanwhile.
    async fn until_next_round(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.ttl / 3) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }
}
