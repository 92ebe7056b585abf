//! Connector secrets that must survive at once (rotated refresh tokens).

use crate::sql::{error, millis};
use jiff::Timestamp;
use sqlx::PgPool;
use tillflow_core::StateError;
use tillflow_core::state::SecretLock;

pub(crate) async fn get(pool: &PgPool, connector: &str, name: &str) -> Result<Option<String>, StateError> {
    sqlx::query_scalar("SELECT value FROM secrets WHERE connector = $1 AND name = $2")
        .bind(connector)
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(error("read secret"))
}

pub(crate) async fn put(pool: &PgPool, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO secrets (connector, name, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connector, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(connector)
    .bind(name)
    .bind(value)
    .bind(millis(Timestamp::now()))
    .execute(pool)
    .await
    .map_err(error("store secret"))?;
    Ok(())
}

/// A transaction holding `connector`'s advisory lock: it lets go when the
/// transaction ends, dropped (rolled back) with the guard.
pub(crate) async fn lock(pool: &PgPool, connector: &str) -> Result<SecretLock, StateError> {
    let mut transaction = pool.begin().await.map_err(error("lock secret"))?;
    // Held across the platform's token call, so idle by design: a leasing
    // store's limit on idle transactions (PgStore::open_leasing) would let
    // the lock go mid-refresh and another runner burn the rotating token.
    sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
        .execute(&mut *transaction)
        .await
        .map_err(error("lock secret"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('tillflow-secret:' || $1, 0))")
        .bind(connector)
        .execute(&mut *transaction)
        .await
        .map_err(error("lock secret"))?;
    Ok(SecretLock::holding(transaction))
}
