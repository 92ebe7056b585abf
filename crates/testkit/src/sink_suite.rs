//! The conformance suite every Sink must pass.
//!
//! A sink crate implements [`SinkHarness`] (how to mount its platform on a
//! mock server and which id each event travels under) and calls
//! [`run_sink_suite`] from a test. Each case runs the real engine over a
//! [`FakeWorld`](crate::fake_source::FakeWorld) into the sink.

use crate::fake_source::{FakeSource, FakeWorld};
use crate::memory_store::MemoryStore;
use crate::mock::{Fault, MockPlatform};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_core::model::Record;
use tillflow_core::state::StateStore;
use tillflow_core::{Event, Pipeline, PipelineError, PipelineOptions, Rules, Sink};
use wiremock::MockServer;

#[async_trait]
pub trait SinkHarness: Send + Sync {
    /// Mounts the platform's endpoints; responders consult `platform` for
    /// faults and rejections and record what they accepted there.
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>);
    /// The sink under test, pointed at `base_url`, with test-sized timeouts.
    fn sink(&self, base_url: &str) -> Box<dyn Sink>;
    /// The id the platform deduplicates `event` on, or `None` when this sink
    /// does not send events of that kind.
    fn id_of(&self, event: &Event) -> Option<String>;
}

const ORDERS: u64 = 30;

struct Case {
    server: MockServer,
    platform: Arc<MockPlatform>,
    store: Arc<MemoryStore>,
    world: Arc<Mutex<FakeWorld>>,
    expected: Vec<String>,
}

async fn case(harness: &dyn SinkHarness) -> Case {
    let server = MockServer::start().await;
    let platform = Arc::new(MockPlatform::new());
    harness.mount(&server, platform.clone()).await;
    let mut world = FakeWorld::sample("suite", 10, ORDERS);
    // Orders only: every sink sends order events; profile handling differs.
    world.streams.retain(|(name, _)| name == "orders");
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    let expected = world.streams[0]
        .1
        .iter()
        .filter_map(|item| item.as_ref().ok().cloned())
        .flat_map(|record: Record| derive_events(record, &context))
        .filter_map(|event| harness.id_of(&event))
        .collect();
    Case { server, platform, store: Arc::new(MemoryStore::new()), world: Arc::new(Mutex::new(world)), expected }
}

impl Case {
    async fn pass(&self, harness: &dyn SinkHarness) -> Result<tillflow_core::PassReport, PipelineError> {
        let mut pipeline = Pipeline::new(
            "suite",
            "suite",
            Box::new(FakeSource::new(self.world.clone(), 10)),
            harness.sink(&self.server.uri()),
            self.store.clone(),
            Rules::default(),
            PipelineOptions::default(),
        );
        pipeline.run_pass().await
    }

    fn accepted_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for id in self.platform.accepted() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    fn assert_each_expected_accepted_once(&self) {
        let counts = self.accepted_counts();
        let expected: HashSet<&String> = self.expected.iter().collect();
        assert_eq!(counts.len(), expected.len(), "distinct ids accepted vs expected");
        for (id, count) in &counts {
            assert!(expected.contains(id), "unexpected id {id}");
            assert_eq!(*count, 1, "id {id} accepted {count} times");
        }
    }
}

/// Runs every case; panics with the failing case's message.
pub async fn run_sink_suite(harness: &dyn SinkHarness) {
    a_clean_pass_delivers_everything_once_and_a_second_pass_nothing(harness).await;
    server_errors_are_retried_and_each_event_is_delivered_once(harness).await;
    a_lost_answer_is_resent_under_the_same_ids(harness).await;
    a_partial_failure_dead_letters_only_the_bad_item(harness).await;
    a_429_is_waited_out(harness).await;
    unauthorized_stops_the_pipeline_without_committing(harness).await;
}

pub async fn a_clean_pass_delivers_everything_once_and_a_second_pass_nothing(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    let report = case.pass(harness).await.expect("first pass");
    assert_eq!(report.records_read, ORDERS);
    case.assert_each_expected_accepted_once();
    let before = case.platform.accepted().len();
    let second = case.pass(harness).await.expect("second pass");
    assert_eq!(second.delivered_total(), 0, "second pass delivered {:?}", second.delivered);
    assert_eq!(case.platform.accepted().len(), before, "second pass sent something");
}

pub async fn server_errors_are_retried_and_each_event_is_delivered_once(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    case.platform.inject([Fault::Status(503), Fault::Status(500), Fault::Status(502)]);
    case.pass(harness).await.expect("pass with 5xx");
    case.assert_each_expected_accepted_once();
}

pub async fn a_lost_answer_is_resent_under_the_same_ids(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    case.platform.inject([Fault::AnswerLost]);
    case.pass(harness).await.expect("pass with a lost answer");
    let counts = case.accepted_counts();
    let expected: HashSet<&String> = case.expected.iter().collect();
    assert_eq!(counts.keys().collect::<HashSet<_>>(), expected, "every event arrived");
    // Only the request whose answer was lost went twice, under identical ids,
    // which the platform deduplicates natively.
    let resent = counts.values().filter(|c| **c > 1).count();
    assert!(resent > 0, "the lost request was retried");
    assert!(counts.values().all(|c| *c <= 2), "nothing went more than twice: {counts:?}");
}

pub async fn a_partial_failure_dead_letters_only_the_bad_item(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    let bad = case.expected[3].clone();
    case.platform.reject_id(bad.clone());
    let report = case.pass(harness).await.expect("pass with a rejected item");
    assert_eq!(report.dead_lettered, 1, "one dead letter");
    let letters = case.store.dead_letters(Some("suite"), 100).await.unwrap();
    assert_eq!(letters.len(), 1);
    let counts = case.accepted_counts();
    assert!(!counts.contains_key(&bad));
    assert_eq!(counts.len(), case.expected.len() - 1, "the rest counts as delivered");
    let second = case.pass(harness).await.expect("second pass");
    assert_eq!(second.delivered_total(), 0, "the dead letter is not retried automatically");
}

pub async fn a_429_is_waited_out(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    case.platform.inject([Fault::TooManyRequests { retry_after_secs: 1 }]);
    let started = Instant::now();
    case.pass(harness).await.expect("pass with a 429");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    case.assert_each_expected_accepted_once();
}

pub async fn unauthorized_stops_the_pipeline_without_committing(harness: &dyn SinkHarness) {
    let case = case(harness).await;
    case.platform.inject([Fault::Status(401)]);
    let error = case.pass(harness).await.expect_err("401 must stop the pipeline");
    assert!(matches!(error, PipelineError::Config(_)), "{error:?}");
    let status = case.store.status("suite").await.unwrap();
    assert!(status.counts.is_empty(), "nothing was committed: {:?}", status.counts);
    assert!(status.streams.is_empty(), "no checkpoint moved");
}
