//! Crash-and-resume: a real process is SIGKILLed at an exact failpoint, then
//! restarted; the mock platform's record shows what arrived how often.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_testkit::recorder::{RecorderSink, mount_recorder};
use tillflow_testkit::{FakeWorld, MockPlatform};
use wiremock::MockServer;

const ORDERS: u64 = 60;
const CHILD: &str = env!("CARGO_BIN_EXE_crash-child");

/// Every event id the fake world implies (all orders are history, customers
/// too, so pipeline start time does not change the set).
fn expected_ids() -> Vec<String> {
    let world = FakeWorld::sample("shop", 10, ORDERS);
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    world
        .streams
        .into_iter()
        .flat_map(|(_, items)| items)
        .filter_map(Result::ok)
        .flat_map(|record| derive_events(record, &context))
        .filter(|event| tillflow_testkit::recorder::SPEC.accepts(event.kind))
        .map(|event| RecorderSink::event_id(&event))
        .collect()
}

fn child(state: &std::path::Path, server: &MockServer) -> Command {
    let mut command = Command::new(CHILD);
    command.arg(state).arg(server.uri()).arg(ORDERS.to_string());
    command
}

/// Starts the child with `failpoint`, waits until it reports reaching it,
/// then SIGKILLs it.
fn run_until_killed(state: &std::path::Path, server: &MockServer, failpoint: &str) {
    let mut process = child(state, server)
        .env("TILLFLOW_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child starts");
    let stderr = BufReader::new(process.stderr.take().unwrap());
    let name = failpoint.split(':').next().unwrap();
    let mut reached = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains(&format!("failpoint {name} reached")) {
            reached = true;
            break;
        }
    }
    assert!(reached, "the child never reached {failpoint}");
    // std's Child::kill sends SIGKILL on Unix: no destructor, no flush.
    process.kill().unwrap();
    let status = process.wait().unwrap();
    assert!(!status.success());
}

fn run_to_completion(state: &std::path::Path, server: &MockServer) {
    let output = child(state, server).output().expect("child runs");
    assert!(output.status.success(), "restart failed: {}", String::from_utf8_lossy(&output.stderr));
}

async fn platform() -> (MockServer, Arc<MockPlatform>) {
    let server = MockServer::start().await;
    let platform = Arc::new(MockPlatform::new());
    mount_recorder(&server, "test-token", platform.clone()).await;
    (server, platform)
}

fn counts(platform: &MockPlatform) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for id in platform.accepted() {
        *counts.entry(id).or_default() += 1;
    }
    counts
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_ack_and_ledger_before_checkpoint_nothing_is_sent_twice() {
    let (server, platform) = platform().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let server = Arc::new(server);
    let (s, st) = (server.clone(), state.clone());
    // Batches of at most 7 events, pages of 10 records: the 3rd batch is in
    // the middle of the orders' first page, whose checkpoint is therefore not
    // yet committed when the process dies.
    blocking(move || run_until_killed(&st, &s, "after-batch-commit:3")).await.unwrap();
    assert_eq!(platform.accepted_batches().len(), 3, "three batches were acknowledged before the kill");
    let (s, st) = (server.clone(), state.clone());
    blocking(move || run_to_completion(&st, &s)).await.unwrap();

    let counts = counts(&platform);
    let expected = expected_ids();
    assert_eq!(counts.len(), expected.len(), "every event arrived");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice after restart: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_delivery_nothing_is_lost() {
    let (server, platform) = platform().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let server = Arc::new(server);
    let (s, st) = (server.clone(), state.clone());
    blocking(move || run_until_killed(&st, &s, "before-deliver:5")).await.unwrap();
    assert_eq!(platform.accepted_batches().len(), 4, "four batches went out before the kill");
    let (s, st) = (server.clone(), state.clone());
    blocking(move || run_to_completion(&st, &s)).await.unwrap();
    let counts = counts(&platform);
    let expected = expected_ids();
    for id in &expected {
        assert_eq!(counts.get(id), Some(&1), "event {id} must arrive exactly once");
    }
    assert_eq!(counts.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_ack_and_ledger_only_that_batch_is_resent_under_the_same_ids() {
    let (server, platform) = platform().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let server = Arc::new(server);
    let (s, st) = (server.clone(), state.clone());
    blocking(move || run_until_killed(&st, &s, "after-ack:2")).await.unwrap();
    let batches = platform.accepted_batches();
    assert_eq!(batches.len(), 2, "the platform took two batches before the kill");
    let acked_not_recorded = batches[1].clone();
    let (s, st) = (server.clone(), state.clone());
    blocking(move || run_to_completion(&st, &s)).await.unwrap();
    let counts = counts(&platform);
    assert_eq!(counts.len(), expected_ids().len(), "every event arrived");
    // The one batch whose acknowledgement died with the process went again,
    // with identical ids, which the platform deduplicates; nothing else did.
    for (id, n) in &counts {
        let expected = if acked_not_recorded.contains(id) { 2 } else { 1 };
        assert_eq!(*n, expected, "event {id}");
    }
}
