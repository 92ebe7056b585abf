//! The Postgres store against a real server: the state conformance suite,
//! a newer schema refused untouched, and leases with fencing tokens.

use std::sync::Arc;
use std::time::Duration;
use tillflow_core::StateStore;
use tillflow_core::source::Checkpoint;
use tillflow_core::state::Commit;
use tillflow_state_postgres::{PgStore, SCHEMA_VERSION};
use tillflow_testkit::postgres::fresh_database;

#[tokio::test]
async fn the_postgres_store_passes_the_state_suite() {
    let Some(_) = fresh_database("probe").await else { return };
    tillflow_testkit::state_suite::run_state_suite(|| async {
        let url = fresh_database("suite").await.expect("a test server");
        Arc::new(PgStore::open(&url).await.unwrap()) as Arc<dyn StateStore>
    })
    .await;
}

#[tokio::test]
async fn a_database_from_a_newer_tillflow_is_refused_untouched() {
    let Some(url) = fresh_database("newer").await else { return };
    let store = PgStore::open(&url).await.unwrap();
    sqlx::query("UPDATE tillflow_schema SET version = $1")
        .bind(SCHEMA_VERSION as i32 + 1)
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let error = PgStore::open(&url).await.unwrap_err().to_string();
    assert!(error.contains(&format!("version {}", SCHEMA_VERSION + 1)) && error.contains("newer"), "{error}");
    assert!(!error.contains("password"), "{error}");
    let admin = PgStore::open(&url).await.unwrap_err();
    assert!(admin.to_string().contains("Refusing to touch it"));
}

/// A database from an older tillflow is not migrated while a runner is live
/// on it: that runner goes on as its own version writes (see the store's
/// `schema::refuse_under_live_runners`). Once it stops, the migration runs.
#[tokio::test]
async fn an_older_database_is_not_migrated_while_a_runner_is_live_on_it() {
    let Some(url) = fresh_database("live_upgrade").await else { return };
    let store = PgStore::open(&url).await.unwrap();
    let older = SCHEMA_VERSION as i32 - 1;
    let running = store.for_runner("old-runner");
    running.claim(&["p1".to_owned()], Duration::from_secs(30)).await.unwrap();
    sqlx::query("UPDATE tillflow_schema SET version = $1").bind(older).execute(store.pool()).await.unwrap();
    let version = || async {
        let version: i32 =
            sqlx::query_scalar("SELECT MAX(version) FROM tillflow_schema").fetch_one(store.pool()).await.unwrap();
        version
    };

    let error = PgStore::open(&url).await.unwrap_err().to_string();
    assert!(error.contains(&format!("schema version {older}")), "{error}");
    assert!(error.contains("(old-runner)") && error.contains("Nothing was changed"), "{error}");
    assert_eq!(version().await, older, "nothing was migrated");

    running.leave().await.unwrap();
    PgStore::open(&url).await.unwrap().close().await;
    assert_eq!(version().await, SCHEMA_VERSION as i32);
    store.close().await;
}

fn checkpoint(page: u32) -> Commit {
    Commit {
        checkpoint: Some(("orders".into(), Checkpoint(serde_json::json!({"v": 1, "page": page})))),
        ..Commit::default()
    }
}

#[tokio::test]
async fn pipelines_spread_over_runners_and_a_stale_holder_cannot_commit() {
    let Some(url) = fresh_database("leases").await else { return };
    let shared = PgStore::open(&url).await.unwrap();
    let pipelines: Vec<String> = (1..=5).map(|n| format!("p{n}")).collect();
    let ttl = Duration::from_secs(30);
    let (a, b) = (shared.for_runner("a"), shared.for_runner("b"));
    // Alone, a takes all five.
    let first = a.claim(&pipelines, ttl).await.unwrap();
    assert_eq!((first.taken.len(), first.share), (5, 5));
    a.commit("p1", checkpoint(1)).await.unwrap();
    // b arrives: its share is three, but nothing is free until a gives some back.
    let second = b.claim(&pipelines, ttl).await.unwrap();
    assert_eq!((second.taken.len(), second.share), (0, 3));
    for pipeline in ["p1", "p2"] {
        a.release(pipeline).await.unwrap();
    }
    let third = b.claim(&pipelines, ttl).await.unwrap();
    assert_eq!(third.taken.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["p1", "p2"]);
    assert!(third.taken.iter().all(|(_, token)| *token == 2), "a second holder gets the next token: {third:?}");
    // a kept no right to p1: its commit is refused, and nothing of it is written.
    let error = a.commit("p1", checkpoint(99)).await.unwrap_err().to_string();
    assert!(error.contains("holds no lease"), "{error}");
    b.commit("p1", checkpoint(2)).await.unwrap();
    assert_eq!(shared.checkpoint("p1", "orders").await.unwrap().unwrap().0["page"], 2);

    // An expired lease is taken over; the old holder, back from a pause, is fenced off.
    let short = Duration::from_millis(1);
    let c = shared.for_runner("c");
    a.renew(short).await.unwrap();
    let mut taken = Vec::new();
    for _ in 0..100 {
        taken.extend(c.claim(&pipelines, ttl).await.unwrap().taken);
        if taken.iter().any(|(p, _)| p == "p3") {
            break;
        }
    }
    let (_, token) = taken.iter().find(|(p, _)| p == "p3").expect("c took p3 once a's lease expired").clone();
    assert_eq!(token, 2);
    let error = a.commit("p3", checkpoint(7)).await.unwrap_err().to_string();
    assert!(error.contains("has moved on") && error.contains("held by c (token 2)"), "{error}");
    assert!(!a.fencing().unwrap().holds("p3"), "a let p3 go");
    assert!(shared.checkpoint("p3", "orders").await.unwrap().is_none(), "the fenced commit wrote nothing");
    let holders = shared.holders().await.unwrap();
    assert_eq!(holders.iter().find(|h| h.pipeline == "p3").unwrap().holder.as_deref(), Some("c"));
}

#[tokio::test]
async fn a_one_off_command_takes_its_pipelines_only_when_no_live_runner_holds_them() {
    let Some(url) = fresh_database("takeall").await else { return };
    let shared = PgStore::open(&url).await.unwrap();
    let ttl = Duration::from_secs(30);
    let runner = shared.for_runner("runner");
    runner.claim(&["p1".to_owned(), "p2".to_owned()], ttl).await.unwrap();
    let reset = shared.for_runner("reset");
    let error = reset.take_all(&["p2".to_owned()], ttl).await.unwrap_err().to_string();
    assert!(error.contains("pipeline p2 is held by runner runner") && error.contains("nothing was changed"), "{error}");
    assert!(!reset.fencing().unwrap().holds("p2"));
    runner.release("p2").await.unwrap();
    reset.take_all(&["p2".to_owned()], ttl).await.unwrap();
    assert!(reset.fencing().unwrap().holds("p2"));
    reset.commit("p2", checkpoint(1)).await.unwrap();
    let error = runner.commit("p2", checkpoint(2)).await.unwrap_err().to_string();
    assert!(error.contains("holds no lease"), "{error}");
}

/// A runner paused inside a commit (its lease row share-locked, its
/// transaction idle, its socket open) cannot keep its successor off the
/// pipeline once its lease has ended: the server ends the idle transaction.
#[tokio::test]
async fn a_runner_paused_mid_commit_does_not_keep_its_successor_off_the_lease() {
    let Some(url) = fresh_database("pausedcommit").await else { return };
    let ttl = Duration::from_secs(1);
    let paused = PgStore::open_leasing(&url, ttl).await.unwrap().for_runner("paused");
    let successor = PgStore::open_leasing(&url, ttl).await.unwrap().for_runner("successor");
    let pipelines = vec!["p1".to_owned()];
    assert_eq!(paused.claim(&pipelines, ttl).await.unwrap().taken.len(), 1);
    // What a commit holds while it writes, then nothing more: the process stopped.
    let mut mid_commit = paused.pool().begin().await.unwrap();
    sqlx::query("SELECT token FROM leases WHERE pipeline = 'p1' FOR SHARE").execute(&mut *mid_commit).await.unwrap();

    let started = std::time::Instant::now();
    let limit = 10 * ttl;
    loop {
        let claimed = successor.claim(&pipelines, ttl).await.unwrap();
        if !claimed.taken.is_empty() {
            break;
        }
        assert!(started.elapsed() < limit, "the successor still kept off p1 after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sqlx::query("SELECT 1").execute(&mut *mid_commit).await.is_err(), "the paused transaction was ended");
    drop(mid_commit);
    let error = paused.commit("p1", checkpoint(1)).await.unwrap_err().to_string();
    assert!(error.contains("has moved on"), "{error}");
    successor.commit("p1", checkpoint(2)).await.unwrap();
}

/// The lock around a rotating token's refresh is held across the platform's
/// call, idle by design: a leasing store's limit on idle transactions does
/// not let it go.
#[tokio::test]
async fn a_secret_lock_outlasts_the_limit_on_idle_transactions() {
    let Some(url) = fresh_database("secretidle").await else { return };
    let ttl = Duration::from_secs(1);
    let store = PgStore::open_leasing(&url, ttl).await.unwrap().for_runner("runner");
    let lock = store.secret_lock("lightspeed").await.unwrap();
    // Longer than the limit (half the lease) on an idle transaction.
    tokio::time::sleep(ttl + ttl / 2).await;
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(held, 1, "the secret lock is still held");
    drop(lock);
}

#[tokio::test]
async fn a_database_keyed_by_guests_addresses_is_rekeyed_by_the_hashes_tillflow_computes() {
    use tillflow_core::subject::email_subject;
    let Some(url) = fresh_database("guest_keys").await else { return };
    let fact = |order: &str, person: &str, cents: i64| {
        tillflow_testkit::state_suite::fact(order, "order", person, true, cents, cents)
    };
    // What schema 4 wrote for a guest: the address itself as the key.
    let store = PgStore::open(&url).await.unwrap();
    let facts =
        vec![fact("1", "email:ana@example.com", 1000), fact("2", "email:ana@example.com", 500), fact("3", "id:7", 900)];
    store.record_facts("p", facts).await.unwrap();
    let before = store.person_totals("p", &["email:ana@example.com", "id:7"]).await.unwrap();
    sqlx::query("UPDATE tillflow_schema SET version = 4").execute(store.pool()).await.unwrap();
    store.close().await;

    let store = PgStore::open(&url).await.unwrap();
    let ana = email_subject("ana@example.com");
    let after = store.person_totals("p", &[ana.as_str(), "id:7"]).await.unwrap();
    assert_eq!(after[&ana], before["email:ana@example.com"], "SQL's SHA-256 is the one tillflow computes");
    assert_eq!(after["id:7"], before["id:7"]);
    let plain: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM order_facts WHERE person LIKE '%@%') \
              + (SELECT COUNT(*) FROM person_totals WHERE person LIKE '%@%')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(plain, 0);
    store.close().await;
}
