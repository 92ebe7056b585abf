//! The engine's promises, checked with in-memory fakes: each event once,
//! checkpoints only after acknowledgement, skips and dead letters counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tillflow_core::failpoint::Failpoint;
use tillflow_core::model::{OrderStatus, Record};
use tillflow_core::state::StateStore;
use tillflow_core::{ConnectorError, EventKind, Pipeline, PipelineError, PipelineOptions, Rules};
use tillflow_testkit::fake_source::{sample_customer, sample_order};
use tillflow_testkit::{FakeSink, FakeSinkLog, FakeSource, FakeWorld, MemoryStore};

struct Harness {
    world: Arc<Mutex<FakeWorld>>,
    store: Arc<MemoryStore>,
    log: Arc<Mutex<FakeSinkLog>>,
    batch: usize,
    totals: bool,
    order_states: Option<fn(&tillflow_core::Event) -> String>,
}

impl Harness {
    fn new(customers: u64, orders: u64) -> Self {
        let (_, log) = FakeSink::new(0);
        Self {
            world: Arc::new(Mutex::new(FakeWorld::sample("shop", customers, orders))),
            store: Arc::new(MemoryStore::new()),
            log,
            batch: 25,
            totals: false,
            order_states: None,
        }
    }

    fn pipeline(&self, options: PipelineOptions) -> Pipeline {
        let sink = FakeSink {
            log: self.log.clone(),
            batch_size: self.batch,
            wants_totals: self.totals,
            order_states: self.order_states,
        };
        Pipeline::new(
            "p",
            "shop",
            Box::new(FakeSource::new(self.world.clone(), 10)),
            Box::new(sink),
            self.store.clone(),
            Rules::default(),
            options,
        )
    }

    async fn pass(&self) -> Result<tillflow_core::PassReport, PipelineError> {
        self.pipeline(PipelineOptions::default()).run_pass().await
    }

    fn delivered(&self) -> Vec<String> {
        self.log.lock().unwrap().keys()
    }

    /// Facts go once; profiles (which carry current state) may go again.
    fn assert_no_duplicates(&self) {
        let keys: Vec<String> =
            self.delivered().into_iter().filter(|k| !k.ends_with(":profile") && !k.ends_with(":totals")).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "a key was delivered twice");
    }
}

#[tokio::test]
async fn history_import_delivers_everything_once_and_a_second_pass_nothing() {
    let harness = Harness::new(5, 40);
    let report = harness.pass().await.unwrap();
    assert_eq!(report.records_read, 45);
    // 40 orders placed, 80 order lines (1–3 per order), 5 profiles.
    assert_eq!(report.delivered[&EventKind::Placed], 40);
    assert_eq!(report.delivered[&EventKind::OrderedProduct], (1..=40u64).map(|n| n % 3 + 1).sum::<u64>());
    assert_eq!(report.delivered[&EventKind::ProfileUpdated], 5);
    assert!(!report.delivered.contains_key(&EventKind::CustomerCreated), "old customers are not announced");
    assert!(harness.log.lock().unwrap().delivered.iter().all(|(_, history)| *history), "old facts are history");
    let count = harness.delivered().len();

    let second = harness.pass().await.unwrap();
    assert_eq!(second.delivered_total(), 0);
    assert_eq!(harness.delivered().len(), count);
    harness.assert_no_duplicates();
}

#[tokio::test]
async fn a_status_transition_produces_its_event_once() {
    let harness = Harness::new(2, 5);
    harness.pass().await.unwrap();
    harness.world.lock().unwrap().update_order("3", |o| {
        o.status = OrderStatus::Completed;
        o.completed_at = Some(o.updated_at);
    });
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::Completed), Some(&1));
    assert_eq!(report.delivered_total(), 1, "{:?}", report.delivered);
    // A later, unrelated modification of the completed order sends nothing.
    harness.world.lock().unwrap().update_order("3", |o| o.payment_method = Some("card".into()));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered_total(), 0, "{:?}", report.delivered);
    harness.assert_no_duplicates();
}

/// A sink that keeps orders by state: what it sends of an order is its
/// status group (processing and on-hold are one) and its total.
fn status_group(event: &tillflow_core::Event) -> String {
    let order = event.order().expect("an order state is about an order");
    let group = match order.status {
        OrderStatus::Processing | OrderStatus::OnHold | OrderStatus::Pending => "pending",
        ref other => other.as_str(),
    };
    format!("{group}/{}", order.totals.total.amount)
}

#[tokio::test]
async fn an_order_state_is_sent_again_only_when_what_the_sink_sends_of_it_changed() {
    let mut harness = Harness::new(2, 4);
    harness.order_states = Some(status_group);
    let first = harness.pass().await.unwrap();
    assert_eq!(first.delivered.get(&EventKind::OrderState), Some(&4), "{:?}", first.delivered);
    let states = |h: &Harness| h.delivered().iter().filter(|k| *k == "fake:shop:order:2:state").count();
    assert_eq!(states(&harness), 1);

    // A new status in the same group, and an unrelated change: the record
    // changed, the fingerprint did not.
    harness.world.lock().unwrap().update_order("2", |o| {
        o.status = OrderStatus::OnHold;
        o.payment_method = Some("card".into());
    });
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::OrderState), None, "{:?}", report.delivered);
    assert_eq!(states(&harness), 1);

    // Completed: one state again (and its fact, once).
    harness.world.lock().unwrap().update_order("2", |o| o.status = OrderStatus::Completed);
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::OrderState), Some(&1), "{:?}", report.delivered);
    assert_eq!(states(&harness), 2);
    let again = harness.pass().await.unwrap();
    assert_eq!(again.delivered_total(), 0);
}

#[tokio::test]
async fn sinks_that_do_not_keep_order_states_never_see_them() {
    let harness = Harness::new(2, 4);
    let report = harness.pass().await.unwrap();
    assert!(!report.delivered.contains_key(&EventKind::OrderState));
    assert!(harness.delivered().iter().all(|k| !k.ends_with(":state")));
}

#[tokio::test]
async fn cancellation_is_sent_only_for_orders_that_were_placed() {
    let harness = Harness::new(2, 3);
    {
        let mut world = harness.world.lock().unwrap();
        let mut pending = sample_order("shop", 100, 2, tillflow_testkit::fake_source::epoch());
        pending.status = OrderStatus::Pending;
        world.push("orders", Ok(Record::Order(pending)));
    }
    harness.pass().await.unwrap();
    {
        let mut world = harness.world.lock().unwrap();
        world.update_order("2", |o| o.status = OrderStatus::Cancelled);
        world.update_order("100", |o| o.status = OrderStatus::Cancelled);
    }
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::Canceled), Some(&1));
    assert!(harness.delivered().iter().any(|k| k == "fake:shop:order:2:canceled"));
    assert!(!harness.delivered().iter().any(|k| k.contains(":100:")), "a never-placed order sends nothing");
}

#[tokio::test]
async fn zero_total_orders_and_unidentifiable_people_are_skipped_by_reason() {
    let harness = Harness::new(2, 3);
    {
        let mut world = harness.world.lock().unwrap();
        let mut free = sample_order("shop", 10, 2, tillflow_testkit::fake_source::epoch());
        free.totals.total.amount = rust_decimal::Decimal::ZERO;
        world.push("orders", Ok(Record::Order(free)));
        let mut anonymous = sample_order("shop", 11, 2, tillflow_testkit::fake_source::epoch());
        std::sync::Arc::make_mut(&mut anonymous.person).customer_id = None;
        std::sync::Arc::make_mut(&mut anonymous.person).email = None;
        world.push("orders", Ok(Record::Order(anonymous)));
    }
    let report = harness.pass().await.unwrap();
    assert!(report.skipped["zero total"] >= 2, "{:?}", report.skipped);
    assert!(report.skipped["no identifier"] >= 2, "{:?}", report.skipped);
    let status = harness.store.status("p").await.unwrap();
    assert!(
        status.counts.iter().any(|count| count.outcome == tillflow_core::state::Outcome::Skipped("zero total".into()))
    );
    // Skips are remembered: the next pass neither sends nor re-counts them.
    let again = harness.pass().await.unwrap();
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
    // A fix at the source (the total corrected) is picked up.
    harness.world.lock().unwrap().update_order("10", |o| o.totals.total.amount = rust_decimal::Decimal::TEN);
    let fixed = harness.pass().await.unwrap();
    assert_eq!(fixed.delivered.get(&EventKind::Placed), Some(&1));
}

#[tokio::test]
async fn a_bad_record_is_dead_lettered_and_the_pipeline_goes_on() {
    let harness = Harness::new(1, 12);
    harness.world.lock().unwrap().add_bad_record("orders", "total is not a number: `12,5O`");
    let order = sample_order("shop", 50, 1, tillflow_testkit::fake_source::epoch());
    harness.world.lock().unwrap().push("orders", Ok(Record::Order(order)));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert!(harness.delivered().iter().any(|k| k == "fake:shop:order:50:placed"), "records after it still flow");
    let letters = harness.store.dead_letters(Some("p"), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("12,5O"));
}

#[tokio::test]
async fn rejected_events_are_dead_lettered_and_replay_delivers_them() {
    let harness = Harness::new(1, 4);
    harness.log.lock().unwrap().reject.insert("fake:shop:order:2:placed".into());
    let report = harness.pass().await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert!(!harness.delivered().contains(&"fake:shop:order:2:placed".to_string()));
    // Replaying while the sink still refuses keeps the dead letter.
    harness.pipeline(PipelineOptions::default()).replay_dead_letters().await.unwrap();
    assert_eq!(harness.store.dead_letters(Some("p"), 10).await.unwrap().len(), 1);
    harness.log.lock().unwrap().reject.clear();
    let replay = harness.pipeline(PipelineOptions::default()).replay_dead_letters().await.unwrap();
    assert_eq!(replay.delivered.get(&EventKind::Placed), Some(&1));
    assert!(harness.store.dead_letters(Some("p"), 10).await.unwrap().is_empty());
    assert_eq!(harness.pass().await.unwrap().delivered_total(), 0);
    harness.assert_no_duplicates();
}

#[tokio::test]
async fn a_replayed_record_counts_in_person_totals_and_in_the_orders_read() {
    use tillflow_core::source::BadRecord;
    use tillflow_testkit::fake_source::epoch;
    let mut harness = Harness::new(2, 2);
    harness.totals = true;
    // Order 9 of customer 2 could not be read in the pass (a parser bug);
    // after the fix, replay reads its stored raw JSON again.
    let order = sample_order("shop", 9, 2, epoch() + jiff::SignedDuration::from_hours(1));
    harness.world.lock().unwrap().push(
        "orders",
        Err(BadRecord {
            stream: "orders".into(),
            reason: "total `12,50` is not a decimal number".into(),
            raw: serde_json::to_value(Record::Order(order.clone())).unwrap(),
        }),
    );
    let report = harness.pass().await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    let since = epoch() - jiff::SignedDuration::from_hours(1);
    assert_eq!(harness.store.orders_read_times("p", since).await.unwrap().len(), 2, "orders 1 and 2");
    let latest = |person: &str| {
        harness.log.lock().unwrap().totals.iter().rev().find(|(p, _)| p == person).map(|(_, t)| t.clone()).unwrap()
    };
    // Customer 2 has order 1 ($20) before the replay.
    assert_eq!((latest("id:2").orders, latest("id:2").revenue), (1, rust_decimal::Decimal::new(2000, 2)));
    // A replay whose delivery fails records nothing: its facts go with its commit.
    harness.log.lock().unwrap().script.push_back(Some(ConnectorError::transient("503 after retries")));
    assert!(harness.pipeline(PipelineOptions::default()).replay_dead_letters().await.is_err());
    let kept = harness.store.person_totals("p", &["id:2"]).await.unwrap();
    assert_eq!(kept["id:2"].orders, 1, "a replay that failed recorded its order's facts");

    let replay = harness.pipeline(PipelineOptions::default()).replay_dead_letters().await.unwrap();
    assert_eq!(replay.delivered.get(&EventKind::Placed), Some(&1));
    assert!(harness.store.dead_letters(Some("p"), 10).await.unwrap().is_empty(), "the letter is resolved");
    let totals = latest("id:2");
    assert_eq!(totals.orders, 2, "the replayed order counts in the person's totals");
    assert_eq!(totals.revenue, rust_decimal::Decimal::new(2000 + 1000, 2));
    assert_eq!(totals.last_order_at, Some(order.placed_at));
    let read = harness.store.orders_read_times("p", since).await.unwrap();
    assert_eq!(read.len(), 3, "the report counts the replayed order as read");
    assert!(read.contains(&order.placed_at));
    assert_eq!(harness.pass().await.unwrap().delivered_total(), 0, "nothing is sent again");
    harness.assert_no_duplicates();
}

#[tokio::test]
async fn a_webhook_that_could_not_be_read_is_kept_whole_and_replayed_as_a_webhook() {
    use tillflow_core::state::DeadLetterStage;
    use tillflow_testkit::fake_source::epoch;
    let harness = Harness::new(1, 0);
    let order = sample_order("shop", 77, 1, epoch());
    let body = serde_json::to_vec(&Record::Order(order)).unwrap();
    let headers = vec![("x-topic".to_owned(), "order.created".to_owned())];
    harness.store.inbox_push("shop", &headers, &body, epoch()).await.unwrap();
    harness.world.lock().unwrap().webhooks_unreadable = true;
    let report = harness.pass().await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    let letters = harness.store.dead_letters(Some("p"), 10).await.unwrap();
    assert_eq!(letters[0].stage, DeadLetterStage::Source);
    let bad = &letters[0].payload["bad_record"];
    assert_eq!(bad["stream"], "webhook");
    assert_eq!(bad["raw"]["headers"][0][1], "order.created", "the headers are kept: the topic says what it is");
    assert!(harness.store.inbox_pending("p", "shop", 10).await.unwrap().is_empty(), "the webhook itself is done");

    harness.world.lock().unwrap().webhooks_unreadable = false;
    let replay = harness.pipeline(PipelineOptions::default()).replay_dead_letters().await.unwrap();
    assert_eq!(replay.delivered.get(&EventKind::Placed), Some(&1), "replayed through the webhook parser");
    assert!(harness.delivered().contains(&"fake:shop:order:77:placed".to_string()));
    assert!(harness.store.dead_letters(Some("p"), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_batch_commits_nothing_of_it_and_the_next_pass_resumes() {
    let mut harness = Harness::new(1, 30);
    harness.batch = 10;
    // Let three batches through, then fail: by then one page is fully acked.
    let failures = (0..3).map(|_| None).chain([Some(ConnectorError::transient("503 after retries"))]);
    harness.log.lock().unwrap().script.extend(failures);
    let report = harness.pass().await;
    assert!(matches!(report, Err(PipelineError::Transient(_))), "{report:?}");
    let delivered_before = harness.delivered().len();
    assert!(delivered_before > 0);
    let resumed = harness.pass().await.unwrap();
    assert!(resumed.delivered_total() > 0);
    harness.assert_no_duplicates();
    // Everything is there in the end: 30 placed + their lines + 1 profile.
    let lines: u64 = (1..=30u64).map(|n| n % 3 + 1).sum();
    assert_eq!(harness.delivered().len() as u64, 30 + lines + 1);
}

#[tokio::test]
async fn history_fills_whole_batches_across_pages_and_checkpoints_wait_for_them() {
    let mut harness = Harness::new(1, 60);
    harness.batch = 25;
    // Pages hold 10 orders (about 30 events): batches of 25 straddle pages.
    // The customers stream comes first (one profile), then the orders.
    let failures = (0..5).map(|_| None).chain([Some(ConnectorError::transient("503 after retries"))]);
    harness.log.lock().unwrap().script.extend(failures);
    assert!(harness.pass().await.is_err());
    {
        let log = harness.log.lock().unwrap();
        assert_eq!(log.batches, [1, 25, 25, 25, 25], "whole batches across pages, until the failed one");
    }
    // The failed batch's pages must not be checkpointed: the next pass sends
    // exactly what is missing.
    harness.pass().await.unwrap();
    harness.assert_no_duplicates();
    let lines: u64 = (1..=60u64).map(|n| n % 3 + 1).sum();
    assert_eq!(harness.delivered().len() as u64, 60 + lines + 1, "nothing lost");
    let batches = harness.log.lock().unwrap().batches.clone();
    let (last, whole) = batches[1..].split_last().unwrap();
    assert!(whole.iter().all(|size| *size == 25) && *last <= 25, "{batches:?}");
}

#[tokio::test]
async fn configuration_errors_stop_the_pipeline() {
    let harness = Harness::new(1, 3);
    harness
        .log
        .lock()
        .unwrap()
        .script
        .push_back(Some(ConnectorError::config("klaviyo refused the credentials (HTTP 401)")));
    let error = harness.pass().await.unwrap_err();
    assert!(matches!(error, PipelineError::Config(ref m) if m.contains("401")), "{error:?}");
    assert!(harness.delivered().is_empty());
}

#[tokio::test]
async fn customers_are_announced_only_when_new_and_resent_when_changed() {
    let harness = Harness::new(2, 0);
    harness.pass().await.unwrap();
    let mut fresh = sample_customer("shop", 9, jiff::Timestamp::now());
    fresh.updated_at = fresh.created_at;
    harness.world.lock().unwrap().push("customers", Ok(Record::Customer(fresh.clone())));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::CustomerCreated), Some(&1));
    assert_eq!(report.delivered.get(&EventKind::ProfileUpdated), Some(&1));
    // Changed profile: the profile goes again, the announcement does not.
    fresh.person.last_name = Some("Married".into());
    harness.world.lock().unwrap().push("customers", Ok(Record::Customer(fresh)));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::ProfileUpdated), Some(&1));
    assert_eq!(report.delivered.get(&EventKind::CustomerCreated), None);
}

#[tokio::test]
async fn the_reader_never_runs_more_than_the_read_ahead_in_front_of_delivery() {
    let harness = Harness::new(1, 500);
    let world = harness.world.clone();
    // A sink that looks at how far the reader got each time it is called.
    struct Watching {
        inner: FakeSink,
        world: Arc<Mutex<FakeWorld>>,
        delivered_pages: Arc<Mutex<Vec<(u64, u64)>>>,
    }
    #[async_trait::async_trait]
    impl tillflow_core::Sink for Watching {
        fn platform(&self) -> &'static str {
            "watching"
        }
        fn max_batch(&self, history: bool) -> usize {
            self.inner.max_batch(history)
        }
        async fn deliver(
            &mut self,
            batch: &[tillflow_core::Event],
            history: bool,
        ) -> Result<Vec<tillflow_core::ItemOutcome>, ConnectorError> {
            let served = self.world.lock().unwrap().pages_served;
            // Orders come ten to a page in id order: the page the engine is
            // working on is the one holding the newest order of this batch.
            let newest_order: u64 = batch
                .iter()
                .filter_map(|event| event.order().and_then(|order| order.identity.id.parse().ok()))
                .max()
                .unwrap_or(0);
            self.delivered_pages.lock().unwrap().push((served, newest_order.div_ceil(10)));
            self.inner.deliver(batch, history).await
        }
    }
    let observations = Arc::new(Mutex::new(Vec::new()));
    // Small batches, so that there are many deliveries to look at.
    let (inner, log) = FakeSink::new(25);
    let sink = Watching { inner, world: world.clone(), delivered_pages: observations.clone() };
    let options = PipelineOptions { read_ahead_pages: 2, ..PipelineOptions::default() };
    let mut pipeline = Pipeline::new(
        "p",
        "shop",
        Box::new(FakeSource::new(world, 10)),
        Box::new(sink),
        harness.store.clone(),
        Rules::default(),
        options,
    );
    pipeline.run_pass().await.unwrap();
    let observations = observations.lock().unwrap();
    // While the engine delivers events of page k, the reader has served at
    // most k (in hand) + 2 (channel) + 1 (blocked in send).
    for (served, page_number) in observations.iter() {
        assert!(
            *served <= page_number + 3,
            "reader ran ahead: {served} pages served while delivering page {page_number}"
        );
    }
    assert!(observations.len() >= 40, "500 orders in batches of 25 events");
    assert!(!log.lock().unwrap().delivered.is_empty());
}

#[tokio::test]
async fn shutdown_stops_before_the_next_batch_and_commits_nothing_unacknowledged() {
    let harness = Harness::new(1, 10);
    let (sender, receiver) = tokio::sync::watch::channel(true);
    let options = PipelineOptions { shutdown: receiver, ..PipelineOptions::default() };
    let error = harness.pipeline(options).run_pass().await.unwrap_err();
    assert!(matches!(error, PipelineError::Interrupted));
    assert!(harness.delivered().is_empty());
    assert!(harness.store.status("p").await.unwrap().streams.is_empty(), "no checkpoint moved");
    drop(sender);
}

#[test]
fn failpoints_parse_and_refuse_unknown_names() {
    assert!(Failpoint::parse("after-ack:3").is_ok());
    assert!(Failpoint::parse("after-batch-commit").is_ok());
    assert!(Failpoint::parse("after-lunch").unwrap_err().contains("after-lunch"));
    assert!(Failpoint::parse("after-ack:0").is_err());
}

#[tokio::test]
async fn person_totals_follow_orders_refunds_and_cancellations() {
    let mut harness = Harness::new(2, 4);
    harness.totals = true;
    // Customer 2 has orders 1 and 3 (1 and 1 lines: $10 + $10... see sample_order).
    harness.pass().await.unwrap();
    let latest = |harness: &Harness, person: &str| {
        harness.log.lock().unwrap().totals.iter().rev().find(|(p, _)| p == person).map(|(_, t)| t.clone()).unwrap()
    };
    let before = latest(&harness, "id:2");
    assert_eq!(before.orders, 2);
    // Order 1 has 2 lines ($20), order 3 has 1 line ($10).
    assert_eq!(before.revenue, rust_decimal::Decimal::new(3000, 2));
    assert_eq!(harness.log.lock().unwrap().totals.len(), 2, "one totals event per person");

    harness.world.lock().unwrap().add_refund("1", "r1", 500);
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::Refunded), Some(&1));
    let refunded = latest(&harness, "id:2");
    assert_eq!(refunded.revenue, rust_decimal::Decimal::new(2500, 2), "the refund lowers revenue");
    assert_eq!(refunded.orders, 2);

    harness.world.lock().unwrap().update_order("3", |o| o.status = OrderStatus::Cancelled);
    harness.pass().await.unwrap();
    let cancelled = latest(&harness, "id:2");
    assert_eq!(cancelled.orders, 1);
    assert_eq!(cancelled.revenue, rust_decimal::Decimal::new(1500, 2));

    // Nothing changed: no totals are re-sent.
    let count = harness.log.lock().unwrap().totals.len();
    harness.pass().await.unwrap();
    assert_eq!(harness.log.lock().unwrap().totals.len(), count);
    harness.assert_no_duplicates();
}

#[tokio::test]
async fn a_forgotten_person_is_never_sent_again_even_when_known_only_by_customer_id() {
    use tillflow_core::forget::{customer_subject, email_subject};
    let harness = Harness::new(2, 4);
    harness
        .store
        .forget(&[email_subject("Customer1@Example.com")], tillflow_testkit::fake_source::epoch())
        .await
        .unwrap();
    let report = harness.pass().await.unwrap();
    let forgotten_orders = ["2", "4"];
    let sent = harness.delivered();
    assert!(
        !sent.iter().any(|key| forgotten_orders.iter().any(|id| key.contains(&format!(":order:{id}:")))),
        "{sent:?}"
    );
    assert!(sent.iter().any(|key| key.contains(":order:1:")), "the other customer's orders go: {sent:?}");
    assert!(report.skipped["forgotten"] >= 3, "{:?}", report.skipped);
    let learned = harness.store.forgotten(&[customer_subject("shop", "1"), customer_subject("shop", "2")]).await;
    assert_eq!(learned.unwrap().into_iter().collect::<Vec<_>>(), vec![customer_subject("shop", "1")]);
    // A later order that carries only the customer id is recognised too.
    let mut by_id_only = sample_order("shop", 6, 2, tillflow_testkit::fake_source::epoch());
    std::sync::Arc::make_mut(&mut by_id_only.person).email = None;
    assert_eq!(by_id_only.person.customer_id.as_deref(), Some("1"));
    harness.world.lock().unwrap().push("orders", Ok(Record::Order(by_id_only)));
    let later = harness.pass().await.unwrap();
    assert!(later.delivered.is_empty(), "{:?}", later.delivered);
    assert!(later.skipped["forgotten"] >= 2, "{:?}", later.skipped);
}

#[tokio::test]
async fn a_record_that_cannot_be_read_and_names_a_forgotten_person_is_not_kept() {
    use tillflow_core::forget::email_subject;
    use tillflow_core::source::BadRecord;
    let harness = Harness::new(1, 1);
    harness.store.forget(&[email_subject("ana@example.com")], tillflow_testkit::fake_source::epoch()).await.unwrap();
    let bad =
        |raw: serde_json::Value, reason: &str| Err(BadRecord { stream: "orders".into(), reason: reason.into(), raw });
    {
        let mut world = harness.world.lock().unwrap();
        world.push("orders", bad(serde_json::json!({"id": 8, "billing": {"email": "Ana@Example.com"}}), "no total"));
        world.push("orders", bad(serde_json::json!({"id": 9}), "no customer, was ana@example.com"));
        world.push("orders", bad(serde_json::json!({"id": 10, "billing": {"email": "joana@example.com"}}), "no total"));
    }
    let report = harness.pass().await.unwrap();
    assert_eq!(report.skipped.get("forgotten"), Some(&2), "{:?}", report.skipped);
    assert_eq!(report.dead_lettered, 1);
    let letters = harness.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let kept = letters[0].payload.to_string();
    assert!(kept.contains("joana@example.com") && !kept.contains("\"ana@"), "{kept}");
}

#[tokio::test]
async fn pages_already_read_are_processed_together_and_each_order_is_still_delivered_once() {
    #[derive(Default)]
    struct Groups(Mutex<Vec<usize>>);
    impl tillflow_core::pipeline::Progress for Groups {
        fn page(&self, _pipeline: &str, _stream: &str, records: usize, _delivered: u64) {
            self.0.lock().unwrap().push(records);
        }
    }
    let harness = Harness::new(20, 300);
    let groups = Arc::new(Groups::default());
    let options = PipelineOptions { read_ahead_pages: 4, progress: groups.clone(), ..PipelineOptions::default() };
    let report = harness.pipeline(options).run_pass().await.unwrap();
    let groups = groups.0.lock().unwrap().clone();
    let pages = (300usize.div_ceil(10)) + 20usize.div_ceil(10);
    // The source serves pages of 10 and the reader keeps 4 in hand: the
    // engine takes what is waiting, not one page at a time.
    assert!(groups.len() < pages, "{} groups for {pages} pages: {groups:?}", groups.len());
    assert!(groups.iter().any(|records| *records > 10), "{groups:?}");
    assert_eq!(groups.iter().sum::<usize>() as u64, report.records_read);
    harness.assert_no_duplicates();
    assert_eq!(harness.pass().await.unwrap().delivered_total(), 0, "every checkpoint moved past what was sent");
}

/// Every event of an order and of a customer knows its record's format-1,
/// format-2 and format-3 hashes (what ledgers written before formats 2, 3
/// and 4 hold), and no other record's.
#[test]
fn an_event_recognises_the_older_hashes_of_its_record_alone() {
    use tillflow_core::keys::{content_hash_v1, content_hash_v2, content_hash_v3, hash_format};
    use tillflow_core::{DeriveContext, derive_events};
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    let mut completed = sample_order("shop", 7, 3, tillflow_testkit::fake_source::epoch());
    completed.status = OrderStatus::Completed;
    let records = [
        Record::Order(completed),
        Record::Order(sample_order("shop", 8, 3, tillflow_testkit::fake_source::epoch())),
        Record::Customer(sample_customer("shop", 1, tillflow_testkit::fake_source::epoch())),
    ];
    let older: [fn(&Record) -> String; 3] =
        [|record| content_hash_v1(record), |record| content_hash_v2(record), |record| content_hash_v3(record)];
    for (index, record) in records.iter().enumerate() {
        let events = derive_events(record.clone(), &context);
        assert!(!events.is_empty());
        for (format, hash) in older.iter().enumerate() {
            let own = hash(record);
            let other = hash(&records[(index + 1) % records.len()]);
            assert_eq!(hash_format(&own), format as u8 + 1);
            for event in &events {
                assert_eq!(hash_format(&event.content_hash), 4, "{}", event.content_hash);
                assert!(
                    event.has_content(&own),
                    "{:?} does not know its record's format-{} hash",
                    event.kind,
                    format + 1
                );
                assert!(!event.has_content(&other), "{:?} took another record's hash for its own", event.kind);
                assert!(event.has_content(&event.content_hash.clone()));
            }
        }
    }
}

/// A ledger an earlier tillflow wrote (format-1 hashes): a profile read
/// again unchanged is not resent, a changed one is.
#[tokio::test]
async fn format_1_ledger_rows_resend_nothing_unchanged_and_miss_no_change() {
    older_ledger_rows_resend_nothing_unchanged_and_miss_no_change(|record| {
        tillflow_core::keys::content_hash_v1(record)
    })
    .await;
}

#[tokio::test]
async fn format_2_ledger_rows_resend_nothing_unchanged_and_miss_no_change() {
    older_ledger_rows_resend_nothing_unchanged_and_miss_no_change(|record| {
        tillflow_core::keys::content_hash_v2(record)
    })
    .await;
}

#[tokio::test]
async fn format_3_ledger_rows_resend_nothing_unchanged_and_miss_no_change() {
    older_ledger_rows_resend_nothing_unchanged_and_miss_no_change(|record| {
        tillflow_core::keys::content_hash_v3(record)
    })
    .await;
}

/// Profiles delivered with hashes of an older format (`hash`): the same
/// customer read again is not resent, a changed one is.
async fn older_ledger_rows_resend_nothing_unchanged_and_miss_no_change(hash: fn(&Record) -> String) {
    use tillflow_core::keys::IdempotencyKey;
    use tillflow_core::state::{Commit, LedgerRow, Outcome};
    let harness = Harness::new(2, 0);
    harness.pass().await.unwrap();
    let customers: Vec<tillflow_core::model::Customer> = harness
        .world
        .lock()
        .unwrap()
        .streams
        .iter()
        .flat_map(|(_, items)| items.iter())
        .filter_map(|item| match item {
            Ok(Record::Customer(customer)) => Some(customer.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(customers.len(), 2);
    let rows = customers
        .iter()
        .map(|customer| LedgerRow {
            key: IdempotencyKey::new(&customer.identity, "customer", "profile", None),
            kind: EventKind::ProfileUpdated,
            content_hash: hash(&Record::Customer(customer.clone())),
            outcome: Outcome::Delivered,
            occurred_at: customer.updated_at,
        })
        .collect();
    harness.store.commit("p", Commit { ledger: rows, ..Commit::default() }).await.unwrap();

    harness.world.lock().unwrap().push("customers", Ok(Record::Customer(customers[0].clone())));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered_total(), 0, "an unchanged profile was resent: {:?}", report.delivered);
    assert!(report.unchanged >= 1);

    let mut changed = customers[1].clone();
    changed.person.last_name = Some("Married".into());
    harness.world.lock().unwrap().push("customers", Ok(Record::Customer(changed)));
    let report = harness.pass().await.unwrap();
    assert_eq!(report.delivered.get(&EventKind::ProfileUpdated), Some(&1), "{:?}", report.delivered);
}

/// Under a steady stream of webhooks a round still ends: it takes what is
/// waiting a page at a time and stops at a page that is not full, and a full
/// pass goes on to read its pages. One that arrives meanwhile waits for the
/// next round (the server wakes the pipeline for it).
#[tokio::test]
async fn a_round_ends_while_webhooks_keep_arriving() {
    use tillflow_core::source::{Checkpoint, InboxItem, Page, SourceItem};
    use tillflow_testkit::fake_source::epoch;
    /// Reading each webhook, another one arrives (ten in all, so that a
    /// round waiting for an empty inbox ends too, and fails below).
    struct Arriving {
        inner: FakeSource,
        store: Arc<MemoryStore>,
        next_order: u64,
    }
    impl Arriving {
        async fn arrive(store: &MemoryStore, order: u64) {
            let body = serde_json::to_vec(&Record::Order(sample_order("shop", order, 1, epoch()))).unwrap();
            store.inbox_push("shop", &[], &body, epoch()).await.unwrap();
        }
    }
    #[async_trait::async_trait]
    impl tillflow_core::Source for Arriving {
        fn platform(&self) -> &'static str {
            self.inner.platform()
        }
        fn streams(&self) -> Vec<String> {
            self.inner.streams()
        }
        async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
            self.inner.read(stream, checkpoint).await
        }
        async fn parse_webhook(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
            if self.next_order < 1010 {
                Self::arrive(&self.store, self.next_order).await;
                self.next_order += 1;
            }
            self.inner.parse_webhook(item).await
        }
    }
    let harness = Harness::new(2, 3);
    Arriving::arrive(&harness.store, 1000).await;
    let source =
        Arriving { inner: FakeSource::new(harness.world.clone(), 10), store: harness.store.clone(), next_order: 1001 };
    let (sink, _) = FakeSink::new(25);
    let mut pipeline = Pipeline::new(
        "p",
        "shop",
        Box::new(source),
        Box::new(FakeSink { log: harness.log.clone(), ..sink }),
        harness.store.clone(),
        Rules::default(),
        PipelineOptions::default(),
    );
    pipeline.run_pass().await.unwrap();
    assert!(delivered_has(&harness, 1000), "the webhook waiting is processed");
    assert!(delivered_has(&harness, 3), "the pass read its pages");
    assert_eq!(harness.store.inbox_pending_count("p", "shop").await.unwrap(), 1, "the one that arrived waits");
    for round in 1..=3 {
        pipeline.process_inbox_only().await.unwrap();
        assert!(
            delivered_has(&harness, 1000 + round),
            "round {round} takes the webhook that arrived in the one before"
        );
        assert_eq!(harness.store.inbox_pending_count("p", "shop").await.unwrap(), 1);
    }
}

fn delivered_has(harness: &Harness, order: u64) -> bool {
    harness.delivered().contains(&format!("fake:shop:order:{order}:placed"))
}

/// A backlog larger than a round takes goes in rounds of a thousand, each
/// saying whether webhooks are left, so the pipeline goes round again at
/// once rather than at its next poll.
#[tokio::test]
async fn a_backlog_goes_in_rounds_that_say_whether_webhooks_are_left() {
    use tillflow_testkit::fake_source::epoch;
    let harness = Harness::new(1, 0);
    for order in 0..1050 {
        let body = serde_json::to_vec(&Record::Order(sample_order("shop", order, 1, epoch()))).unwrap();
        harness.store.inbox_push("shop", &[], &body, epoch()).await.unwrap();
    }
    let mut pipeline = harness.pipeline(PipelineOptions::default());
    let first = pipeline.process_inbox_only().await.unwrap();
    assert_eq!((first.records_read, first.webhooks_left), (1000, true));
    let second = pipeline.process_inbox_only().await.unwrap();
    assert_eq!((second.records_read, second.webhooks_left), (50, false));
    assert_eq!(harness.store.inbox_pending_count("p", "shop").await.unwrap(), 0);
}

/// A webhook round works out what is history from the pipeline's first
/// start, which never moves while it runs: asked of the state once, not
/// every round (on SQLite a write and a read, each waiting its turn behind
/// the webhooks being stored).
#[tokio::test]
async fn webhook_rounds_ask_the_pipelines_first_start_once() {
    use tillflow_testkit::fake_source::epoch;
    let harness = Harness::new(1, 3);
    let mut pipeline = harness.pipeline(PipelineOptions::default());
    pipeline.run_pass().await.unwrap();
    for order in 100..103 {
        let body = serde_json::to_vec(&Record::Order(sample_order("shop", order, 1, epoch()))).unwrap();
        harness.store.inbox_push("shop", &[], &body, epoch()).await.unwrap();
        pipeline.process_inbox_only().await.unwrap();
        assert!(delivered_has(&harness, order));
    }
    pipeline.run_pass().await.unwrap();
    assert_eq!(harness.store.start_reads(), 1);
}

/// A webhook round records its orders' facts with its commit, once
/// delivered, not in a write of its own before: a round whose delivery
/// fails leaves the person totals as they were, and the round that then
/// goes through sends the totals both orders make, and records them.
#[tokio::test]
async fn a_webhook_round_that_cannot_deliver_leaves_the_totals_as_they_were() {
    use tillflow_testkit::fake_source::epoch;
    let mut harness = Harness::new(1, 0);
    harness.totals = true;
    let mut pipeline = harness.pipeline(PipelineOptions::default());
    for order in [100, 101] {
        let body = serde_json::to_vec(&Record::Order(sample_order("shop", order, 1, epoch()))).unwrap();
        harness.store.inbox_push("shop", &[], &body, epoch()).await.unwrap();
    }
    harness.log.lock().unwrap().script.push_back(Some(ConnectorError::transient("503 after retries")));
    assert!(pipeline.process_inbox_only().await.is_err(), "the round fails with its delivery");
    assert_eq!(harness.store.person_totals("p", &["id:1"]).await.unwrap(), HashMap::new(), "no facts recorded");
    assert_eq!(harness.store.inbox_pending_count("p", "shop").await.unwrap(), 2);

    pipeline.process_inbox_only().await.unwrap();
    let sent = harness.log.lock().unwrap().totals.clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].0.as_str(), sent[0].1.orders), ("id:1", 2));
    let kept = harness.store.person_totals("p", &["id:1"]).await.unwrap();
    assert_eq!(kept.get("id:1"), Some(&sent[0].1), "what was sent is what is kept");
    assert_eq!(harness.store.inbox_pending_count("p", "shop").await.unwrap(), 0);
}

/// A page's facts are written while its ledger entries are read: neither
/// waits for the other, so on SQLite's one connection they follow each other
/// instead of each waiting again behind the webhooks stored meanwhile. The
/// store here makes each wait until the other is under way: an engine that
/// reads the ledger only after the facts never finishes its first page.
#[tokio::test(start_paused = true)]
async fn a_pages_facts_are_written_while_its_ledger_is_read() {
    // Orders only (a customer page would read the ledger with no facts).
    let mut harness = Harness::new(0, 30);
    harness.totals = true;
    harness.store = Arc::new(MemoryStore::with_facts_meeting_ledger_reads());
    let mut pipeline = harness.pipeline(PipelineOptions::default());
    let pass = tokio::time::timeout(std::time::Duration::from_secs(60), pipeline.run_pass()).await;
    assert!(pass.expect("the pass finished").is_ok());
    assert!(delivered_has(&harness, 30), "every page went out");
    assert!(harness.delivered().iter().any(|key| key.ends_with(":totals")), "totals went out");
    harness.assert_no_duplicates();
}
