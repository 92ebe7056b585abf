//! The suites run against the reference implementations in this crate, so a
//! broken suite shows up here before it misleads a connector.

use std::sync::{Arc, Mutex};
use tillflow_core::Source;
use tillflow_testkit::recorder::RecorderHarness;
use tillflow_testkit::sink_suite::run_sink_suite;
use tillflow_testkit::source_suite::{pagination_reads_every_record, resume_from_checkpoint_loses_nothing};
use tillflow_testkit::{FakeSource, FakeWorld};

#[tokio::test]
async fn recorder_sink_passes_the_sink_suite() {
    run_sink_suite(&RecorderHarness).await;
}

#[tokio::test]
async fn fake_source_passes_the_source_suite() {
    let world = Arc::new(Mutex::new(FakeWorld::sample("shop", 5, 95)));
    let expected: Vec<String> = (1..=95).map(|n| n.to_string()).collect();
    let mut source = FakeSource::new(world.clone(), 10);
    pagination_reads_every_record(&mut source, "orders", &expected).await;
    let make = || Box::new(FakeSource::new(world.clone(), 10)) as Box<dyn Source>;
    resume_from_checkpoint_loses_nothing(&make, "orders", &expected, 4).await;
}

#[tokio::test]
async fn the_sink_loop_turns_a_conflict_into_an_update_and_only_that_item() {
    use tillflow_core::events::{DeriveContext, derive_events};
    use tillflow_core::model::Record;
    use tillflow_core::{ItemOutcome, Sink};
    use tillflow_testkit::MockPlatform;
    use tillflow_testkit::fake_source::{epoch, sample_order};
    use tillflow_testkit::recorder::{RecorderSink, mount_recorder};

    let server = wiremock::MockServer::start().await;
    let platform = Arc::new(MockPlatform::new());
    mount_recorder(&server, "t", platform.clone()).await;
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    let events = derive_events(Record::Order(sample_order("shop", 1, 1, epoch())), &context);
    assert!(events.len() >= 3, "placed and ordered products");
    let existing = RecorderSink::event_id(&events[1]);
    platform.exists(existing.clone());
    let mut sink = RecorderSink::new(&server.uri(), "t", 10);
    let outcomes = sink.deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    assert_eq!(platform.updated(), vec![existing.clone()], "the existing item was updated, and nothing else");
    assert!(!platform.accepted().contains(&existing), "it was not created twice");
    assert_eq!(platform.accepted().len(), events.len() - 1);
}

#[tokio::test]
async fn the_memory_store_passes_the_state_suite() {
    tillflow_testkit::state_suite::run_state_suite(|| async {
        Arc::new(tillflow_testkit::MemoryStore::new()) as Arc<dyn tillflow_core::StateStore>
    })
    .await;
}
