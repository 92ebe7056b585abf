//! Pipeline leases and fencing tokens: how several runners share the
//! pipelines of one database, with Postgres as the coordinator (row locks,
//! `FOR UPDATE SKIP LOCKED`, the server's clock), not a protocol of our own.
//!
//! A runner takes free or expired pipelines up to its fair share (the
//! pipelines over the live runners, rounded up), renews what it holds every
//! third of the lease's life, and gives its leases back on a clean stop.
//! Each hand-over adds one to the pipeline's token; a runner's every commit
//! re-reads its lease row under a share lock and goes through only if the
//! holder and token are still its own — so a runner paused or cut off past
//! its lease can never commit over its successor, and a successor's takeover
//! waits for a commit already under way.

use crate::sql::{NOW_MS, error, from_millis};
use jiff::Timestamp;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tillflow_core::StateError;

/// Who holds a pipeline, for `tillflow status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    pub pipeline: String,
    pub holder: Option<String>,
    pub token: i64,
    pub since: Timestamp,
    pub expires_at: Timestamp,
}

/// This runner's identity and the tokens of the leases it holds.
#[derive(Debug)]
pub struct Fencing {
    runner: String,
    tokens: Mutex<BTreeMap<String, i64>>,
}

impl Fencing {
    pub(crate) fn new(runner: String) -> Self {
        Self { runner, tokens: Mutex::new(BTreeMap::new()) }
    }

    pub fn runner(&self) -> &str {
        &self.runner
    }

    /// The pipelines this runner holds now, with their tokens.
    pub fn held(&self) -> BTreeMap<String, i64> {
        self.tokens.lock().expect("tokens").clone()
    }

    pub fn holds(&self, pipeline: &str) -> bool {
        self.tokens.lock().expect("tokens").contains_key(pipeline)
    }

    fn forget(&self, pipeline: &str) {
        self.tokens.lock().expect("tokens").remove(pipeline);
    }

    /// Inside a write transaction: goes on only while the lease is still
    /// this runner's under its token, and keeps the row share-locked to the
    /// end of the transaction so no takeover lands in between.
    pub(crate) async fn hold(&self, connection: &mut PgConnection, pipeline: &str) -> Result<(), StateError> {
        let Some(token) = self.tokens.lock().expect("tokens").get(pipeline).copied() else {
            return Err(StateError::new(format!(
                "runner {} holds no lease on pipeline {pipeline}; nothing was written",
                self.runner
            )));
        };
        let current: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT holder, token FROM leases WHERE pipeline = $1 FOR SHARE")
                .bind(pipeline)
                .fetch_optional(&mut *connection)
                .await
                .map_err(error("check lease"))?;
        match current {
            Some((Some(holder), current)) if holder == self.runner && current == token => Ok(()),
            other => {
                self.forget(pipeline);
                let now = other.map_or("nobody".to_owned(), |(holder, token)| {
                    format!("{} (token {token})", holder.as_deref().unwrap_or("nobody"))
                });
                Err(StateError::new(format!(
                    "the lease on pipeline {pipeline} has moved on (this runner {} had token {token}, it is now held by \
                     {now}); nothing was written and this runner lets the pipeline go",
                    self.runner
                )))
            }
        }
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

/// Records that this runner is alive until now + `ttl`.
async fn heartbeat(connection: &mut PgConnection, runner: &str, ttl: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO runners (id, started_at, seen_at, expires_at) VALUES ($1, {NOW_MS}, {NOW_MS}, {NOW_MS} + $2) \
         ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, expires_at = excluded.expires_at"
    ))
    .bind(runner)
    .bind(ttl_ms(ttl))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// What a round of claiming left this runner with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    /// Pipelines newly taken, with their tokens.
    pub taken: Vec<(String, i64)>,
    /// How many pipelines this runner should hold at most: the configured
    /// pipelines over the live runners, rounded up.
    pub share: usize,
    /// The live runners, this one included.
    pub live: usize,
}

/// Takes free or expired pipelines among `pipelines` up to this runner's share.
pub(crate) async fn claim(
    pool: &PgPool,
    fencing: &Fencing,
    pipelines: &[String],
    ttl: Duration,
) -> Result<Claimed, StateError> {
    let mut transaction = pool.begin().await.map_err(error("claim leases"))?;
    heartbeat(&mut transaction, &fencing.runner, ttl).await.map_err(error("claim leases"))?;
    sqlx::query("INSERT INTO leases (pipeline) SELECT UNNEST($1::TEXT[]) ON CONFLICT DO NOTHING")
        .bind(pipelines)
        .execute(&mut *transaction)
        .await
        .map_err(error("claim leases"))?;
    let live: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM runners WHERE expires_at > {NOW_MS}"))
        .fetch_one(&mut *transaction)
        .await
        .map_err(error("claim leases"))?;
    let live = usize::try_from(live.max(1)).unwrap_or(1);
    let share = pipelines.len().div_ceil(live);
    let held = fencing.tokens.lock().expect("tokens").len();
    let mut claimed = Claimed { taken: Vec::new(), share, live };
    if held < share {
        let rows = sqlx::query(&format!(
            "UPDATE leases SET holder = $1, token = token + 1, acquired_at = {NOW_MS}, expires_at = {NOW_MS} + $2 \
             WHERE pipeline IN (SELECT pipeline FROM leases WHERE pipeline = ANY($3) \
               AND (holder IS NULL OR expires_at <= {NOW_MS}) ORDER BY pipeline LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING pipeline, token"
        ))
        .bind(&fencing.runner)
        .bind(ttl_ms(ttl))
        .bind(pipelines)
        .bind(i64::try_from(share - held).unwrap_or(i64::MAX))
        .fetch_all(&mut *transaction)
        .await
        .map_err(error("claim leases"))?;
        claimed.taken = rows.iter().map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1))).collect();
    }
    transaction.commit().await.map_err(error("claim leases"))?;
    fencing.tokens.lock().expect("tokens").extend(claimed.taken.iter().cloned());
    Ok(claimed)
}

/// Takes every lease of `pipelines` at once for a one-off command (a reset,
/// a replay), or none: a pipeline a live runner holds is named in the error.
pub(crate) async fn take_all(
    pool: &PgPool,
    fencing: &Fencing,
    pipelines: &[String],
    ttl: Duration,
) -> Result<(), StateError> {
    let mut transaction = pool.begin().await.map_err(error("take leases"))?;
    sqlx::query("INSERT INTO leases (pipeline) SELECT UNNEST($1::TEXT[]) ON CONFLICT DO NOTHING")
        .bind(pipelines)
        .execute(&mut *transaction)
        .await
        .map_err(error("take leases"))?;
    let held: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT pipeline, holder, expires_at FROM leases WHERE pipeline = ANY($1) AND holder IS NOT NULL \
         AND expires_at > {NOW_MS} ORDER BY pipeline FOR UPDATE"
    ))
    .bind(pipelines)
    .fetch_all(&mut *transaction)
    .await
    .map_err(error("take leases"))?;
    if let Some((pipeline, holder, until)) = held.into_iter().find(|(_, holder, _)| *holder != fencing.runner) {
        return Err(StateError::new(format!(
            "pipeline {pipeline} is held by runner {holder} (lease until {}); stop that runner, or wait for its lease \
             to end, and try again — nothing was changed",
            from_millis(until)
        )));
    }
    let rows = sqlx::query(&format!(
        "UPDATE leases SET holder = $1, token = token + 1, acquired_at = {NOW_MS}, expires_at = {NOW_MS} + $2 \
         WHERE pipeline = ANY($3) RETURNING pipeline, token"
    ))
    .bind(&fencing.runner)
    .bind(ttl_ms(ttl))
    .bind(pipelines)
    .fetch_all(&mut *transaction)
    .await
    .map_err(error("take leases"))?;
    transaction.commit().await.map_err(error("take leases"))?;
    fencing
        .tokens
        .lock()
        .expect("tokens")
        .extend(rows.iter().map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1))));
    Ok(())
}

/// Extends every lease this runner still holds; returns the pipelines it
/// found it had lost (taken over after expiring), now forgotten.
pub(crate) async fn renew(pool: &PgPool, fencing: &Fencing, ttl: Duration) -> Result<Vec<String>, StateError> {
    let held = fencing.held();
    let mut transaction = pool.begin().await.map_err(error("renew leases"))?;
    heartbeat(&mut transaction, &fencing.runner, ttl).await.map_err(error("renew leases"))?;
    let pipelines: Vec<&str> = held.keys().map(String::as_str).collect();
    let tokens: Vec<i64> = held.values().copied().collect();
    let kept: Vec<String> = sqlx::query_scalar(&format!(
        "UPDATE leases l SET expires_at = {NOW_MS} + $2 FROM UNNEST($3::TEXT[], $4::BIGINT[]) AS mine(pipeline, token) \
         WHERE l.pipeline = mine.pipeline AND l.token = mine.token AND l.holder = $1 RETURNING l.pipeline"
    ))
    .bind(&fencing.runner)
    .bind(ttl_ms(ttl))
    .bind(&pipelines)
    .bind(&tokens)
    .fetch_all(&mut *transaction)
    .await
    .map_err(error("renew leases"))?;
    transaction.commit().await.map_err(error("renew leases"))?;
    let lost: Vec<String> = held.into_keys().filter(|pipeline| !kept.contains(pipeline)).collect();
    for pipeline in &lost {
        fencing.forget(pipeline);
    }
    Ok(lost)
}

/// Gives a lease back (a clean stop, or more than a fair share): free at
/// once for another runner, its token unchanged until someone takes it.
pub(crate) async fn release(pool: &PgPool, fencing: &Fencing, pipeline: &str) -> Result<(), StateError> {
    let Some(token) = fencing.tokens.lock().expect("tokens").get(pipeline).copied() else { return Ok(()) };
    sqlx::query("UPDATE leases SET holder = NULL, expires_at = 0 WHERE pipeline = $1 AND holder = $2 AND token = $3")
        .bind(pipeline)
        .bind(&fencing.runner)
        .bind(token)
        .execute(pool)
        .await
        .map_err(error("release lease"))?;
    fencing.forget(pipeline);
    Ok(())
}

/// Gives every lease back and leaves the runners' list.
pub(crate) async fn leave(pool: &PgPool, fencing: &Fencing) -> Result<(), StateError> {
    for pipeline in fencing.held().into_keys() {
        release(pool, fencing, &pipeline).await?;
    }
    sqlx::query("DELETE FROM runners WHERE id = $1")
        .bind(&fencing.runner)
        .execute(pool)
        .await
        .map_err(error("leave"))?;
    Ok(())
}

/// Every lease, by pipeline.
pub(crate) async fn holders(pool: &PgPool) -> Result<Vec<LeaseHolder>, StateError> {
    let rows = sqlx::query(&format!(
        "SELECT pipeline, CASE WHEN expires_at > {NOW_MS} THEN holder END, token, acquired_at, expires_at \
         FROM leases ORDER BY pipeline"
    ))
    .fetch_all(pool)
    .await
    .map_err(error("read leases"))?;
    Ok(rows
        .iter()
        .map(|row| LeaseHolder {
            pipeline: row.get(0),
            holder: row.get(1),
            token: row.get(2),
            since: from_millis(row.get(3)),
            expires_at: from_millis(row.get(4)),
        })
        .collect())
}
