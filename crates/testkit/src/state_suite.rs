//! The conformance suite every `StateStore` must pass (SQLite, the in-memory
//! store, Postgres): what the engine relies on, case by case — the first
//! start recorded once, a commit's ledger rows, dead letters, inbox marks,
//! orders read and checkpoint written together and read back, ledgers and
//! inboxes kept per pipeline, skips counted by reason, person totals summed
//! from order facts, report times filtered, and a reset that forgets progress
//! but keeps dead letters and webhooks.

use jiff::Timestamp;
use rust_decimal::Decimal;
use std::future::Future;
use std::sync::Arc;
use tillflow_core::events::EventKind;
use tillflow_core::forget::Purged;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{Currency, OrderFact, SourceIdentity, sum_facts};
use tillflow_core::source::Checkpoint;
use tillflow_core::state::{
    Commit, DeadLetterStage, EventCount, LedgerEntry, LedgerRow, NewDeadLetter, Outcome, OutcomeKind, StateStore,
};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn key(id: u32, event: &str) -> IdempotencyKey {
    let identity = SourceIdentity { platform: "fake".into(), source: "shop".into(), id: id.to_string().into() };
    IdempotencyKey::new(&identity, "order", event, None)
}

fn row(id: u32, outcome: Outcome) -> LedgerRow {
    LedgerRow {
        key: key(id, "placed"),
        kind: EventKind::Placed,
        content_hash: format!("hash{id}"),
        outcome,
        occurred_at: at(i64::from(id)),
    }
}

fn letter(reason: &str) -> NewDeadLetter {
    NewDeadLetter {
        key: Some(key(99, "placed")),
        stage: DeadLetterStage::Sink,
        reason: reason.into(),
        payload: serde_json::json!({"format": 1, "why": reason}),
    }
}

/// A fact of `order` for `person`: `cents` euro cents, `second`s after
/// 2023-11-14 22:13:20 UTC (the suite's epoch); for the stores' own tests too.
pub fn fact(order: &str, fact_id: &str, person: &str, counted: bool, cents: i64, second: i64) -> OrderFact {
    OrderFact {
        order_id: order.into(),
        fact_id: fact_id.into(),
        person: person.into(),
        counted,
        amount: Decimal::new(cents, 2),
        currency: Currency::new("EUR").unwrap(),
        at: at(second),
    }
}

/// Runs every case, each on a fresh store from `fresh`; panics with the
/// failing case's message.
pub async fn run_state_suite<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn StateStore>>,
{
    the_first_start_is_recorded_once(fresh().await).await;
    a_commit_is_read_back_whole(fresh().await).await;
    every_row_of_a_commit_lands_once_whatever_their_count(fresh().await).await;
    a_later_outcome_replaces_an_earlier_one_and_skips_count_by_reason(fresh().await).await;
    every_kind_and_outcome_is_kept_and_a_key_twice_in_one_commit_keeps_the_later(fresh().await).await;
    ledgers_checkpoints_and_inbox_marks_are_per_pipeline(fresh().await).await;
    webhooks_every_reader_has_passed_are_pruned(fresh().await).await;
    dead_letters_are_listed_discarded_and_resolved(fresh().await).await;
    secrets_are_kept_and_replaced(fresh().await).await;
    source_state_is_kept_per_source(fresh().await).await;
    tombstones_are_kept_for_good(fresh().await).await;
    a_purge_deletes_what_names_the_address_and_nothing_else(fresh().await).await;
    person_totals_are_summed_from_order_facts(fresh().await).await;
    person_totals_follow_every_kind_of_change(fresh().await).await;
    facts_previewed_then_committed_are_recorded_as_answered(fresh().await).await;
    the_totals_answered_are_the_totals_kept(fresh().await).await;
    report_times_are_filtered_by_kind_outcome_and_time(fresh().await).await;
    reset_forgets_progress_and_keeps_dead_letters_and_webhooks(fresh().await).await;
}

pub async fn the_first_start_is_recorded_once(store: Arc<dyn StateStore>) {
    assert_eq!(store.status("p").await.unwrap().started_at, None, "nothing before the first start");
    assert_eq!(store.pipeline_started_at("p", at(10)).await.unwrap(), at(10));
    assert_eq!(store.pipeline_started_at("p", at(20)).await.unwrap(), at(10), "the first start stays");
    assert_eq!(store.pipeline_started_at("q", at(30)).await.unwrap(), at(30), "per pipeline");
    assert_eq!(store.status("p").await.unwrap().started_at, Some(at(10)));
}

pub async fn a_commit_is_read_back_whole(store: Arc<dyn StateStore>) {
    let webhook = store.inbox_push("shop", &[("x-topic".into(), "order.updated".into())], b"{}", at(1)).await.unwrap();
    let rows: Vec<LedgerRow> = (0..1_234).map(|i| row(i, Outcome::Delivered)).collect();
    let checkpoint = Checkpoint(serde_json::json!({"v": 1, "page": 7}));
    store
        .commit(
            "p",
            Commit {
                ledger: rows,
                dead_letters: vec![letter("refused")],
                checkpoint: Some(("orders".into(), checkpoint.clone())),
                inbox_done: vec![webhook],
                dead_letters_resolved: Vec::new(),
                orders_read: vec![("1".into(), at(1)), ("2".into(), at(2))],
                facts: vec![fact("1", "order", "a", true, 1000, 1), fact("1", "refund:1", "a", false, 250, 2)],
            },
        )
        .await
        .unwrap();
    let keys: Vec<IdempotencyKey> = (0..1_300).map(|i| key(i, "placed")).collect();
    let refs: Vec<&IdempotencyKey> = keys.iter().collect();
    let found = store.ledger_lookup("p", &refs).await.unwrap();
    assert_eq!(found.len(), 1_234, "every row, across any chunking of the lookup");
    assert_eq!(found[&key(17, "placed")].content_hash, "hash17");
    assert_eq!(found[&key(17, "placed")].outcome, Outcome::Delivered);
    // A page asks a key more than once (an event and one that requires it).
    let repeated = store.ledger_lookup("p", &[&keys[17], &keys[1_250], &keys[17]]).await.unwrap();
    assert_eq!(repeated.len(), 1, "{repeated:?}");
    assert_eq!(repeated[&key(17, "placed")].content_hash, "hash17");
    assert_eq!(store.checkpoint("p", "orders").await.unwrap(), Some(checkpoint));
    assert_eq!(store.checkpoint("p", "customers").await.unwrap(), None);
    let letters = store.dead_letters(Some("p"), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].reason.as_str(), letters[0].stage), ("refused", DeadLetterStage::Sink));
    assert_eq!(letters[0].key, Some(key(99, "placed")));
    assert_eq!(letters[0].payload["why"], "refused");
    assert!(store.inbox_pending("p", "shop", 10).await.unwrap().is_empty(), "the webhook is done for p");
    assert_eq!(store.orders_read_times("p", at(0)).await.unwrap(), vec![at(1), at(2)]);
    let totals = store.person_totals("p", &["a"]).await.unwrap();
    assert_eq!((totals["a"].orders, totals["a"].revenue), (1, Decimal::new(750, 2)), "the facts are recorded");
    let status = store.status("p").await.unwrap();
    assert_eq!(status.streams.len(), 1);
    assert_eq!(status.streams[0].stream, "orders");
    assert_eq!(status.dead_letters, 1);
    assert!(status.last_delivery_at.is_some(), "a delivery was recorded");
    assert_eq!(status.counts, vec![EventCount { kind: EventKind::Placed, outcome: Outcome::Delivered, count: 1_234 }]);
}

/// A store may write a commit's rows in statements of fixed sizes (SQLite
/// fills a statement up with rows it leaves out): every row lands once, at
/// and around each size, for every kind of row a commit carries.
pub async fn every_row_of_a_commit_lands_once_whatever_their_count(store: Arc<dyn StateStore>) {
    for count in [1_u32, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1_025] {
        let pipeline = format!("p{count}");
        let source = format!("shop{count}");
        let mut webhooks = Vec::new();
        for n in 0..count {
            webhooks.push(store.inbox_push(&source, &[], format!("{{\"n\":{n}}}").as_bytes(), at(1)).await.unwrap());
        }
        let people: Vec<String> = (0..count).map(|n| format!("id:{n}")).collect();
        let commit = Commit {
            ledger: (0..count).map(|n| row(n, Outcome::Delivered)).collect(),
            inbox_done: webhooks,
            orders_read: (0..count).map(|n| (n.to_string(), at(i64::from(n)))).collect(),
            facts: (0..count).map(|n| fact(&n.to_string(), "order", &people[n as usize], true, 100, 1)).collect(),
            ..Commit::default()
        };
        store.commit(&pipeline, commit).await.unwrap();
        let keys: Vec<IdempotencyKey> = (0..count + 3).map(|n| key(n, "placed")).collect();
        let refs: Vec<&IdempotencyKey> = keys.iter().collect();
        let found = store.ledger_lookup(&pipeline, &refs).await.unwrap();
        assert_eq!(found.len(), count as usize, "ledger rows of a commit of {count}");
        assert_eq!(found[&key(count - 1, "placed")].content_hash, format!("hash{}", count - 1));
        let counts = store.status(&pipeline).await.unwrap().counts;
        assert_eq!(
            counts,
            vec![EventCount { kind: EventKind::Placed, outcome: Outcome::Delivered, count: count.into() }]
        );
        assert_eq!(store.orders_read_times(&pipeline, at(0)).await.unwrap().len(), count as usize, "orders read");
        let asked: Vec<&str> = people.iter().map(String::as_str).collect();
        let totals = store.person_totals(&pipeline, &asked).await.unwrap();
        assert_eq!(totals.len(), count as usize, "people with totals of a commit of {count}");
        assert!(totals.values().all(|totals| totals.orders == 1), "each person's one order, once");
        assert!(store.inbox_pending(&pipeline, &source, 10).await.unwrap().is_empty(), "every webhook is done");
    }
}

pub async fn a_later_outcome_replaces_an_earlier_one_and_skips_count_by_reason(store: Arc<dyn StateStore>) {
    let rows = vec![row(1, Outcome::Delivered), row(2, Outcome::Delivered), row(3, Outcome::DeadLettered)];
    store.commit("p", Commit { ledger: rows, ..Commit::default() }).await.unwrap();
    let mut changed = row(1, Outcome::Skipped("zero total".into()));
    changed.content_hash = "changed".into();
    let skipped =
        vec![changed, row(4, Outcome::Skipped("zero total".into())), row(5, Outcome::Skipped("no email".into()))];
    store.commit("p", Commit { ledger: skipped, ..Commit::default() }).await.unwrap();
    let found = store.ledger_lookup("p", &[&key(1, "placed")]).await.unwrap();
    assert_eq!(found[&key(1, "placed")].outcome, Outcome::Skipped("zero total".into()));
    assert_eq!(found[&key(1, "placed")].content_hash, "changed");
    let mut counts = store.status("p").await.unwrap().counts;
    counts.sort_by(|a, b| (a.outcome.kind(), a.outcome.reason()).cmp(&(b.outcome.kind(), b.outcome.reason())));
    let placed = |outcome: Outcome, count| EventCount { kind: EventKind::Placed, outcome, count };
    assert_eq!(
        counts,
        vec![
            placed(Outcome::Delivered, 1),
            placed(Outcome::Skipped("no email".into()), 1),
            placed(Outcome::Skipped("zero total".into()), 2),
            placed(Outcome::DeadLettered, 1),
        ]
    );
}

/// A store may write kinds and outcomes in its own terms (SQLite binds
/// their numbers); each must read back as itself. Within one commit, rows go
/// in the order given: the engine puts a key's newer outcome last.
pub async fn every_kind_and_outcome_is_kept_and_a_key_twice_in_one_commit_keeps_the_later(store: Arc<dyn StateStore>) {
    let outcomes = [Outcome::Delivered, Outcome::Skipped("no email".into()), Outcome::DeadLettered];
    let mut rows = Vec::new();
    let mut expected = Vec::new();
    for (number, kind) in EventKind::ALL.into_iter().enumerate() {
        for (offset, outcome) in outcomes.iter().enumerate() {
            let mut row = row((number * outcomes.len() + offset) as u32, outcome.clone());
            row.kind = kind;
            rows.push(row);
            expected.push(EventCount { kind, outcome: outcome.clone(), count: 1 });
        }
    }
    let mut first = row(500, Outcome::Delivered);
    first.content_hash = "first".into();
    let mut later = row(500, Outcome::Skipped("zero total".into()));
    later.content_hash = "later".into();
    rows.extend([first, later]);
    expected.push(EventCount { kind: EventKind::Placed, outcome: Outcome::Skipped("zero total".into()), count: 1 });
    store.commit("p", Commit { ledger: rows, ..Commit::default() }).await.unwrap();
    let found = store.ledger_lookup("p", &[&key(500, "placed")]).await.unwrap();
    assert_eq!(
        found[&key(500, "placed")],
        LedgerEntry { content_hash: "later".into(), outcome: Outcome::Skipped("zero total".into()) },
        "the later row of a key wins"
    );
    let order = |count: &EventCount| (count.kind, count.outcome.kind(), count.outcome.reason().to_owned());
    let mut counts = store.status("p").await.unwrap().counts;
    counts.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(counts, expected);
}

pub async fn ledgers_checkpoints_and_inbox_marks_are_per_pipeline(store: Arc<dyn StateStore>) {
    let first = store.inbox_push("shop", &[], b"1", at(1)).await.unwrap();
    let second = store.inbox_push("shop", &[], b"2", at(2)).await.unwrap();
    store.inbox_push("till", &[], b"other source", at(3)).await.unwrap();
    let checkpoint = Checkpoint(serde_json::json!({"v": 1}));
    store
        .commit(
            "p",
            Commit {
                ledger: vec![row(1, Outcome::Delivered)],
                checkpoint: Some(("orders".into(), checkpoint)),
                inbox_done: vec![first],
                ..Commit::default()
            },
        )
        .await
        .unwrap();
    assert!(store.ledger_lookup("q", &[&key(1, "placed")]).await.unwrap().is_empty(), "q's ledger is its own");
    assert_eq!(store.checkpoint("q", "orders").await.unwrap(), None);
    let pending = |pipeline: &'static str| {
        let store = store.clone();
        async move { store.inbox_pending(pipeline, "shop", 10).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>() }
    };
    assert_eq!(pending("p").await, vec![second], "p is done with the first webhook only");
    assert_eq!(pending("q").await, vec![first, second], "q reads the same source on its own");
    let counted = |pipeline: &'static str| {
        let store = store.clone();
        async move { store.inbox_pending_count(pipeline, "shop").await.unwrap() }
    };
    assert_eq!((counted("p").await, counted("q").await), (1, 2), "counted as listed, other sources left out");
    let items = store.inbox_pending("q", "shop", 1).await.unwrap();
    assert_eq!(items.len(), 1, "the limit holds");
    assert_eq!((items[0].body.as_slice(), items[0].source.as_str()), (&b"1"[..], "shop"));
    // Marks out of order: the gap stays pending.
    let third = store.inbox_push("shop", &[], b"3", at(4)).await.unwrap();
    store.commit("q", Commit { inbox_done: vec![third, first], ..Commit::default() }).await.unwrap();
    assert_eq!(pending("q").await, vec![second]);
    assert_eq!(counted("q").await, 1, "the gap below a mark done out of order is counted");
    assert_eq!(counted("p").await, 2);
}

pub async fn webhooks_every_reader_has_passed_are_pruned(store: Arc<dyn StateStore>) {
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(store.inbox_push("shop", &[], format!("{n}").as_bytes(), at(n)).await.unwrap());
    }
    let other = store.inbox_push("till", &[], b"other source", at(5)).await.unwrap();
    let done = |pipeline: &'static str, done: Vec<i64>| {
        let store = store.clone();
        async move { store.commit(pipeline, Commit { inbox_done: done, ..Commit::default() }).await.unwrap() }
    };
    done("p", ids[..3].to_vec()).await;
    done("q", ids[..1].to_vec()).await;
    done("q", vec![other]).await;
    let readers = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
    let pending = |pipeline: &'static str, source: &'static str| {
        let store = store.clone();
        async move { store.inbox_pending(pipeline, source, 10).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>() }
    };
    assert_eq!(store.inbox_prune("shop", &readers(&["p", "q", "r"])).await.unwrap(), 0, "r has passed none");
    assert_eq!(pending("r", "shop").await, ids, "nothing pruned while a reader has passed none");
    assert_eq!(store.inbox_prune("shop", &readers(&["p", "q"])).await.unwrap(), 1, "only what both passed");
    assert_eq!(pending("r", "shop").await, ids[1..].to_vec(), "the first webhook is gone");
    assert_eq!(pending("p", "shop").await, vec![ids[3]], "p's view is unchanged");
    assert_eq!(pending("q", "shop").await, ids[1..].to_vec(), "q's view is unchanged");
    assert_eq!(pending("r", "till").await, vec![other], "another source's webhooks are its own");
    done("q", ids[1..].to_vec()).await;
    done("p", vec![ids[3]]).await;
    assert_eq!(store.inbox_prune("shop", &readers(&["p", "q"])).await.unwrap(), 3);
    assert!(pending("r", "shop").await.is_empty(), "every webhook both passed is gone");
    let later = store.inbox_push("shop", &[], b"5", at(6)).await.unwrap();
    assert!(later > ids[3], "ids are never reused");
    assert_eq!(pending("p", "shop").await, vec![later]);
}

pub async fn dead_letters_are_listed_discarded_and_resolved(store: Arc<dyn StateStore>) {
    let letters = vec![letter("a"), letter("b"), letter("c")];
    store.commit("p", Commit { dead_letters: letters, ..Commit::default() }).await.unwrap();
    store.commit("q", Commit { dead_letters: vec![letter("q's")], ..Commit::default() }).await.unwrap();
    let listed = store.dead_letters(Some("p"), 10).await.unwrap();
    assert_eq!(listed.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>(), ["a", "b", "c"], "oldest first");
    assert_eq!(store.dead_letters(None, 10).await.unwrap().len(), 4, "every pipeline's");
    assert_eq!(store.dead_letters(Some("p"), 2).await.unwrap().len(), 2, "the limit holds");
    assert_eq!(store.discard_dead_letters("q", Some(&[listed[0].id])).await.unwrap(), 0, "only the pipeline's own");
    assert_eq!(store.discard_dead_letters("p", Some(&[listed[0].id])).await.unwrap(), 1);
    store.commit("p", Commit { dead_letters_resolved: vec![listed[1].id], ..Commit::default() }).await.unwrap();
    let left = store.dead_letters(Some("p"), 10).await.unwrap();
    assert_eq!(left.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(store.discard_dead_letters("p", None).await.unwrap(), 1);
    assert_eq!(store.dead_letters(Some("q"), 10).await.unwrap().len(), 1, "q's letter stays");
}

pub async fn secrets_are_kept_and_replaced(store: Arc<dyn StateStore>) {
    assert_eq!(store.secret_get("lightspeed:store", "refresh_token").await.unwrap(), None);
    store.secret_put("lightspeed:store", "refresh_token", "rt-1").await.unwrap();
    store.secret_put("lightspeed:store", "refresh_token", "rt-2").await.unwrap();
    store.secret_put("lightspeed:other", "refresh_token", "rt-9").await.unwrap();
    assert_eq!(store.secret_get("lightspeed:store", "refresh_token").await.unwrap().as_deref(), Some("rt-2"));
}

pub async fn person_totals_are_summed_from_order_facts(store: Arc<dyn StateStore>) {
    let facts = vec![
        fact("1", "order", "id:7", true, 2000, 10),
        fact("2", "order", "id:7", true, 1500, 20),
        fact("3", "order", "id:7", false, 9900, 30),
        fact("1", "refund:r1", "id:7", false, 500, 40),
        fact("4", "order", "email:ann@example.com", true, 1000, 50),
    ];
    store.record_facts("p", facts.clone()).await.unwrap();
    // A changed order replaces its fact: order 2 is cancelled.
    store.record_facts("p", vec![fact("2", "order", "id:7", false, 1500, 20)]).await.unwrap();
    let totals = store.person_totals("p", &["id:7", "email:ann@example.com", "id:nobody"]).await.unwrap();
    assert_eq!(totals.len(), 2, "no totals for a person without facts");
    let seven = &totals["id:7"];
    assert_eq!((seven.orders, seven.revenue), (1, Decimal::new(1500, 2)), "order 1 minus its refund");
    assert_eq!(seven.last_order_at, Some(at(10)));
    assert_eq!(seven.currency.as_ref().map(Currency::as_str), Some("EUR"));
    assert_eq!(totals["email:ann@example.com"].revenue, Decimal::new(1000, 2));
    assert!(store.person_totals("q", &["id:7"]).await.unwrap().is_empty(), "facts are per pipeline");
}

/// Kept current a page at a time, the totals must still equal the sum of
/// every fact recorded, through each kind of change a source can make.
pub async fn person_totals_follow_every_kind_of_change(store: Arc<dyn StateStore>) {
    let mut recorded: Vec<OrderFact> = Vec::new();
    for page in pages_of_every_change() {
        store.record_facts("p", page.clone()).await.unwrap();
        assert_totals_are_the_sum(&store, &mut recorded, &page).await;
    }
}

/// A webhook round previews its totals and records its facts with its
/// commit: the preview answers what recording them answers, writes
/// nothing, and the commit carrying them records them — through each kind
/// of change, the latest counted order taken away included (its
/// successor is looked for among the facts the page does not replace).
pub async fn facts_previewed_then_committed_are_recorded_as_answered(store: Arc<dyn StateStore>) {
    let mut recorded: Vec<OrderFact> = Vec::new();
    for page in pages_of_every_change() {
        let before = store.person_totals("p", &["a", "b"]).await.unwrap();
        let previewed = store.preview_facts("p", &page).await.unwrap();
        assert_eq!(store.person_totals("p", &["a", "b"]).await.unwrap(), before, "a preview writes nothing");
        store.commit("p", Commit { facts: page.clone(), ..Commit::default() }).await.unwrap();
        let people: Vec<&str> = previewed.keys().map(String::as_str).collect();
        assert_eq!(store.person_totals("p", &people).await.unwrap(), previewed, "after {page:?}");
        assert_totals_are_the_sum(&store, &mut recorded, &page).await;
    }
}

/// Each person's totals once `page` is added to `recorded`, compared with
/// `sum_facts` over everything recorded.
async fn assert_totals_are_the_sum(store: &Arc<dyn StateStore>, recorded: &mut Vec<OrderFact>, page: &[OrderFact]) {
    for fact in page {
        recorded.retain(|old| {
            (old.order_id.as_str(), old.fact_id.as_str()) != (fact.order_id.as_str(), fact.fact_id.as_str())
        });
        recorded.push(fact.clone());
    }
    let totals = store.person_totals("p", &["a", "b"]).await.unwrap();
    for person in ["a", "b"] {
        let mine: Vec<&OrderFact> = recorded.iter().filter(|fact| fact.person == person).collect();
        if mine.is_empty() {
            continue;
        }
        assert_eq!(totals.get(person), Some(&sum_facts(mine)), "{person} after {page:?}");
    }
}

/// Pages of facts that make each kind of change a source can make.
fn pages_of_every_change() -> Vec<Vec<OrderFact>> {
    let mut usd = fact("9", "order", "a", true, 300, 3);
    usd.currency = Currency::new("USD").unwrap();
    vec![
        vec![fact("1", "order", "a", true, 1000, 10), fact("2", "order", "a", true, 500, 21), usd],
        // A refund of a counted order, and one that arrives before its order.
        vec![fact("1", "refund:1", "a", false, 200, 30), fact("3", "refund:9", "a", false, 100, 31)],
        vec![fact("3", "order", "a", true, 700, 5)],
        // The latest order cancelled: the one before it is the latest again.
        vec![fact("2", "order", "a", false, 500, 21)],
        // An order moves to another person; its refund stays with the first.
        vec![fact("1", "order", "b", true, 1000, 10)],
        // A total corrected, the same fact twice in one page (the last wins).
        vec![fact("3", "order", "a", true, 800, 5), fact("3", "order", "a", true, 900, 5)],
        // Every counted order of b gone, and a's too.
        vec![
            fact("1", "order", "b", false, 1000, 10),
            fact("3", "order", "a", false, 900, 5),
            fact("9", "order", "a", false, 300, 3),
        ],
    ]
}

/// A source's times may be finer than a store keeps them: the totals a
/// write answers must be those a later read gives (else a totals event
/// would differ from its own ledger entry and go out again), and an order
/// read again unchanged must change nothing.
pub async fn the_totals_answered_are_the_totals_kept(store: Arc<dyn StateStore>) {
    let mut fine = fact("1", "order", "a", true, 1000, 10);
    fine.at = at(10) + jiff::SignedDuration::from_micros(123_456);
    let answered = store.record_facts("p", vec![fine.clone()]).await.unwrap();
    let kept = store.person_totals("p", &["a"]).await.unwrap();
    assert_eq!(answered, kept, "what a write answers is what a read gives");
    let again = store.record_facts("p", vec![fine]).await.unwrap();
    assert_eq!(again, kept, "an order read again unchanged changes nothing");
    // Revenue that nets to zero keeps its form when read again: 0.00 stays
    // 0.00 (a changed form would send the profile again).
    let refunded = [fact("2", "order", "b", true, 2250, 20), fact("2", "refund:9", "b", false, 2250, 21)];
    let first = store.record_facts("p", refunded.to_vec()).await.unwrap();
    let again = store.record_facts("p", refunded.to_vec()).await.unwrap();
    assert_eq!(first["b"].revenue.to_string(), again["b"].revenue.to_string());
    assert_eq!(again, store.person_totals("p", &["b"]).await.unwrap());
}

pub async fn report_times_are_filtered_by_kind_outcome_and_time(store: Arc<dyn StateStore>) {
    let mut completed = row(9, Outcome::Delivered);
    completed.kind = EventKind::Completed;
    completed.key = key(9, "completed");
    let rows = vec![
        row(1, Outcome::Delivered),
        row(5, Outcome::Delivered),
        row(3, Outcome::Skipped("zero total".into())),
        completed,
    ];
    store
        .commit(
            "p",
            Commit { ledger: rows, orders_read: vec![("1".into(), at(1)), ("5".into(), at(5))], ..Commit::default() },
        )
        .await
        .unwrap();
    let times = |outcome, since| {
        let store = store.clone();
        async move { store.event_times("p", EventKind::Placed, outcome, at(since)).await.unwrap() }
    };
    assert_eq!(times(OutcomeKind::Delivered, 0).await, vec![at(1), at(5)], "oldest first, Placed only");
    assert_eq!(times(OutcomeKind::Delivered, 2).await, vec![at(5)]);
    assert_eq!(times(OutcomeKind::Skipped, 0).await, vec![at(3)]);
    assert!(times(OutcomeKind::DeadLettered, 0).await.is_empty());
    assert_eq!(store.orders_read_times("p", at(2)).await.unwrap(), vec![at(5)]);
}

pub async fn reset_forgets_progress_and_keeps_dead_letters_and_webhooks(store: Arc<dyn StateStore>) {
    store.pipeline_started_at("p", at(1)).await.unwrap();
    store.inbox_push("shop", &[], b"1", at(1)).await.unwrap();
    store.record_facts("p", vec![fact("1", "order", "id:7", true, 100, 1)]).await.unwrap();
    store
        .commit(
            "p",
            Commit {
                ledger: vec![row(1, Outcome::Delivered)],
                dead_letters: vec![letter("kept")],
                checkpoint: Some(("orders".into(), Checkpoint(serde_json::json!({"v": 1})))),
                orders_read: vec![("1".into(), at(1))],
                ..Commit::default()
            },
        )
        .await
        .unwrap();
    store.commit("q", Commit { ledger: vec![row(1, Outcome::Delivered)], ..Commit::default() }).await.unwrap();
    store.reset("p").await.unwrap();
    let status = store.status("p").await.unwrap();
    assert_eq!(status.started_at, None);
    assert!(status.streams.is_empty() && status.counts.is_empty());
    assert!(store.ledger_lookup("p", &[&key(1, "placed")]).await.unwrap().is_empty());
    assert!(store.person_totals("p", &["id:7"]).await.unwrap().is_empty());
    assert!(store.orders_read_times("p", at(0)).await.unwrap().is_empty());
    assert_eq!(store.dead_letters(Some("p"), 10).await.unwrap().len(), 1, "dead letters are kept");
    assert_eq!(store.inbox_pending("p", "shop", 10).await.unwrap().len(), 1, "webhooks are kept");
    assert_eq!(store.ledger_lookup("q", &[&key(1, "placed")]).await.unwrap().len(), 1, "other pipelines untouched");
    assert_eq!(store.pipeline_started_at("p", at(50)).await.unwrap(), at(50), "the next run is a new first start");
}

pub async fn source_state_is_kept_per_source(store: Arc<dyn StateStore>) {
    let keys = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert!(store.source_state_get("pos", &keys(&["person:a@x.io"])).await.unwrap().is_empty());
    let entries =
        |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    store
        .source_state_put("pos", &entries(&[("person:a@x.io", "1"), ("person:b@x.io", "2"), ("conflict:a@x.io", "c")]))
        .await
        .unwrap();
    store.source_state_put("pos", &entries(&[("person:a@x.io", "3")])).await.unwrap();
    store.source_state_put("other", &entries(&[("person:a@x.io", "other")])).await.unwrap();
    let found =
        store.source_state_get("pos", &keys(&["person:a@x.io", "person:b@x.io", "person:c@x.io"])).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["person:a@x.io"], "3", "a later put replaces the value");
    assert_eq!(found["person:b@x.io"], "2");
    let people = store.source_state_scan("pos", "person:", 10).await.unwrap();
    assert_eq!(people, entries(&[("person:a@x.io", "3"), ("person:b@x.io", "2")]), "only the prefix, in key order");
    assert_eq!(store.source_state_scan("pos", "person:", 1).await.unwrap().len(), 1, "at most the limit");
    assert_eq!(store.source_state_scan("pos", "conflict:", 10).await.unwrap(), entries(&[("conflict:a@x.io", "c")]));
    assert_eq!(store.source_state_scan("other", "", 10).await.unwrap(), entries(&[("person:a@x.io", "other")]));
}

pub async fn tombstones_are_kept_for_good(store: Arc<dyn StateStore>) {
    let subjects = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert!(store.forgotten(&subjects(&["email:aa", "customer:shop:7"])).await.unwrap().is_empty());
    store.forget(&subjects(&["email:aa"]), at(10)).await.unwrap();
    store.forget(&subjects(&["email:aa", "customer:shop:7"]), at(20)).await.unwrap();
    let found = store.forgotten(&subjects(&["email:aa", "email:bb", "customer:shop:7", "email:aa"])).await.unwrap();
    assert_eq!(found, subjects(&["email:aa", "customer:shop:7"]).into_iter().collect(), "recording twice is harmless");
    store.reset("p").await.unwrap();
    assert_eq!(store.forgotten(&subjects(&["email:aa"])).await.unwrap().len(), 1, "a reset does not bring anyone back");
}

pub async fn a_purge_deletes_what_names_the_address_and_nothing_else(store: Arc<dyn StateStore>) {
    let named = |reason: &str, email: &str| NewDeadLetter {
        payload: serde_json::json!({"format": 1, "billing": {"email": email}}),
        ..letter(reason)
    };
    let letters = vec![
        named("hers", "Ana@Example.com"),
        named("joana's", "joana@example.com"),
        letter("refused ana@example.com"),
        named("another domain", "ana@example.com.br"),
    ];
    store.commit("p", Commit { dead_letters: letters, ..Commit::default() }).await.unwrap();
    let json = store.inbox_push("shop", &[], br#"{"billing":{"email":"ana@example.com"}}"#, at(1)).await.unwrap();
    let form = b"payload=%7B%22email%22%3A%22ANA%40example.com%22%7D&type=customer.update";
    store.inbox_push("till", &[], form, at(2)).await.unwrap();
    let others = store.inbox_push("shop", &[], br#"{"billing":{"email":"joana@example.com"}}"#, at(3)).await.unwrap();
    store.commit("p", Commit { inbox_done: vec![json, others], ..Commit::default() }).await.unwrap();
    let entries =
        |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    store
        .source_state_put(
            "pos",
            &entries(&[
                ("person:ana@example.com", r#"{"pos":{"id":"9"}}"#),
                ("pos:9", "person:ana@example.com"),
                ("person:joana@example.com", r#"{"pos":{"id":"8"}}"#),
            ]),
        )
        .await
        .unwrap();

    let purged = store.purge(" Ana@EXAMPLE.com ").await.unwrap();
    assert_eq!(
        purged,
        Purged { dead_letters: 2, webhooks: 2, source_entries: 2 },
        "her letter and the one whose reason names her, both her webhooks, her entries"
    );
    let left = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(left.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>(), ["joana's", "another domain"]);
    let pending = |pipeline: &'static str, source: &'static str| {
        let store = store.clone();
        async move { store.inbox_pending(pipeline, source, 10).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>() }
    };
    assert_eq!(pending("q", "shop").await, vec![others], "a webhook about someone else stays");
    assert!(pending("q", "till").await.is_empty(), "the form-encoded one named her too");
    assert!(pending("p", "shop").await.is_empty());
    assert_eq!(
        store.source_state_scan("pos", "", 10).await.unwrap(),
        entries(&[("person:joana@example.com", r#"{"pos":{"id":"8"}}"#)])
    );
    assert_eq!(store.purge("ana@example.com").await.unwrap(), Purged::default(), "nothing is left");
}
