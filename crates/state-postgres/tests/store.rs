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
