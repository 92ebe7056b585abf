//! The conformance suite every Source must pass, run through a
//! [`SourceHarness`] (the counterpart of the sinks' `SinkHarness`): pages
//! read every record, a reader rebuilt from a committed checkpoint resumes
//! without losing one, a signed webhook is accepted and parsed while a forged
//! or tampered one is refused, a dead-lettered raw record is read again, and
//! the account's check reaches the platform.

use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;
use tillflow_core::source::{Checkpoint, InboxItem, Source, WebhookRequest, WebhookVerdict};
use tillflow_core::state::StateStore;
use tillflow_kit::SourceAccount;
use wiremock::MockServer;

/// A webhook the platform would send, signed, and what it yields.
pub struct WebhookSample {
    pub signed: WebhookRequest,
    /// The same webhook with a signature made with another secret.
    pub forged: WebhookRequest,
    /// The id of the record it carries.
    pub id: String,
}

/// A dead-lettered raw record and what reading it again yields.
pub struct DeadLetterSample {
    pub stream: String,
    pub raw: serde_json::Value,
    pub id: String,
}

#[async_trait]
pub trait SourceHarness: Send + Sync {
    /// The stream the pagination cases read.
    fn stream(&self) -> &str;
    /// Mounts the platform on `server` holding `count` records of that stream
    /// (enough for several pages); returns their ids.
    async fn mount(&self, server: &MockServer, count: usize) -> Vec<String>;
    /// How many records make more than two pages.
    fn count(&self) -> usize {
        250
    }
    /// An account pointed at `base_url`, with test-sized timeouts.
    fn account(&self, base_url: &str, state: Arc<dyn StateStore>) -> Arc<dyn SourceAccount>;
    /// `None` when the platform has no webhooks.
    fn webhook(&self) -> Option<WebhookSample>;
    fn dead_letter(&self) -> DeadLetterSample;
}

struct Case {
    server: MockServer,
    expected: Vec<String>,
    state: Arc<dyn StateStore>,
}

async fn case(harness: &dyn SourceHarness) -> Case {
    let server = MockServer::start().await;
    let expected = harness.mount(&server, harness.count()).await;
    Case { server, expected, state: Arc::new(crate::MemoryStore::new()) }
}

impl Case {
    fn account(&self, harness: &dyn SourceHarness) -> Arc<dyn SourceAccount> {
        harness.account(&self.server.uri(), self.state.clone())
    }
}

/// Runs every case; panics with the failing case's message.
pub async fn run_source_suite(harness: &dyn SourceHarness) {
    pages_read_every_record_and_a_checkpoint_resumes_without_loss(harness).await;
    a_signed_webhook_is_accepted_and_parsed_and_a_forged_one_refused(harness).await;
    a_dead_lettered_record_is_read_again(harness).await;
    the_check_reaches_the_platform(harness).await;
}

pub async fn pages_read_every_record_and_a_checkpoint_resumes_without_loss(harness: &dyn SourceHarness) {
    let case = case(harness).await;
    let account = case.account(harness);
    pagination_reads_every_record(account.reader().as_mut(), harness.stream(), &case.expected).await;
    let make = || harness.account(&case.server.uri(), case.state.clone()).reader();
    resume_from_checkpoint_loses_nothing(&make, harness.stream(), &case.expected, 2).await;
}

pub async fn a_signed_webhook_is_accepted_and_parsed_and_a_forged_one_refused(harness: &dyn SourceHarness) {
    let case = case(harness).await;
    let account = case.account(harness);
    let Some(sample) = harness.webhook() else {
        let any = WebhookRequest { headers: Vec::new(), body: b"{}".to_vec() };
        assert_eq!(account.verify_webhook(&any), WebhookVerdict::Unsupported, "a source without webhooks says so");
        return;
    };
    assert_eq!(account.verify_webhook(&sample.signed), WebhookVerdict::Accept);
    assert_eq!(account.verify_webhook(&sample.forged), WebhookVerdict::Unauthorized, "a forged signature");
    let mut tampered = sample.signed.clone();
    let middle = tampered.body.len() / 2;
    tampered.body[middle] ^= 1;
    assert_eq!(account.verify_webhook(&tampered), WebhookVerdict::Unauthorized, "a body changed after signing");
    let unsigned = WebhookRequest {
        headers: sample.signed.headers.iter().filter(|(name, _)| !name.contains("signature")).cloned().collect(),
        body: sample.signed.body.clone(),
    };
    assert_eq!(account.verify_webhook(&unsigned), WebhookVerdict::Unauthorized, "no signature");
    let item = InboxItem {
        id: 1,
        source: "suite".into(),
        received_at: jiff::Timestamp::now(),
        headers: sample.signed.headers.clone(),
        body: sample.signed.body.clone(),
    };
    let items = account.reader().parse_webhook(&item).await.expect("a verified webhook parses");
    let ids: Vec<String> = items.iter().filter_map(|i| i.as_ref().ok()).map(|r| r.identity().id.to_string()).collect();
    assert!(ids.contains(&sample.id), "the webhook yields record {}: {ids:?}", sample.id);
}

pub async fn a_dead_lettered_record_is_read_again(harness: &dyn SourceHarness) {
    let case = case(harness).await;
    let sample = harness.dead_letter();
    let items = case.account(harness).reader().reparse(&sample.stream, &sample.raw).await.expect("re-read");
    let ids: Vec<String> = items.iter().filter_map(|i| i.as_ref().ok()).map(|r| r.identity().id.to_string()).collect();
    assert!(ids.contains(&sample.id), "re-reading yields record {}: {items:?}", sample.id);
}

pub async fn the_check_reaches_the_platform(harness: &dyn SourceHarness) {
    let case = case(harness).await;
    case.account(harness).check().await.expect("the check passes against the platform");
}

/// Reads `stream` to its end; returns record ids and the page count.
pub async fn read_to_end(
    source: &mut dyn Source,
    stream: &str,
    mut checkpoint: Option<Checkpoint>,
    max_pages: usize,
) -> (Vec<String>, usize, Option<Checkpoint>) {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = source.read(stream, checkpoint.as_ref()).await.expect("page");
        pages += 1;
        ids.extend(page.items.iter().filter_map(|item| item.as_ref().ok()).map(|r| r.identity().id.to_string()));
        checkpoint = Some(page.checkpoint);
        if page.last || pages >= max_pages {
            return (ids, pages, checkpoint);
        }
    }
}

/// Every record of `stream` is read, over more than one page.
pub async fn pagination_reads_every_record(source: &mut dyn Source, stream: &str, expected_ids: &[String]) {
    let (ids, pages, _) = read_to_end(source, stream, None, 10_000).await;
    assert!(pages > 1, "the fixture must span several pages (got {pages})");
    let read: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<&String> = expected_ids.iter().collect();
    assert_eq!(read, expected, "records read across pages");
}

/// Stopping after `stop_after` pages and resuming from the checkpoint with a
/// fresh source loses nothing.
pub async fn resume_from_checkpoint_loses_nothing(
    make_source: &dyn Fn() -> Box<dyn Source>,
    stream: &str,
    expected_ids: &[String],
    stop_after: usize,
) {
    let mut first = make_source();
    let (mut ids, pages, checkpoint) = read_to_end(first.as_mut(), stream, None, stop_after).await;
    assert_eq!(pages, stop_after, "the first run stops early");
    drop(first);
    // The checkpoint survives as JSON, like it does in the state store.
    let stored = serde_json::to_string(&checkpoint).unwrap();
    let restored: Option<Checkpoint> = serde_json::from_str(&stored).unwrap();
    let mut second = make_source();
    let (rest, _, _) = read_to_end(second.as_mut(), stream, restored, 10_000).await;
    ids.extend(rest);
    let read: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<&String> = expected_ids.iter().collect();
    assert_eq!(read, expected, "records read across the restart");
}
