//! A minimal HTTP sink ("recorder") on the sink kit, and the mock platform it
//! talks to.
//!
//! It is the reference for the sink anatomy — a request builder, a service
//! and a response classifier under the kit's sink loop — and the
//! [`SinkHarness`](crate::sink_suite::SinkHarness) the conformance suites
//! test themselves against; the crash-and-resume tests use it because it
//! needs no platform credentials. Protocol: `POST {base}/v1/batch` with
//! `{"events":[{"id","key","name","history","timestamp"}]}`; the answer
//! `{"errors":[{"index","reason","exists"}]}` lists the items it refused, and
//! `exists: true` means "already there: update it" (`PUT {base}/v1/events/{id}`).

use crate::mock::{Fault, MockPlatform};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tillflow_core::forget::ForgetReport;
use tillflow_core::{ConnectorError, Event, EventKind, Sink};
use tillflow_http::reqwest::Method;
use tillflow_http::{Answer, HttpClient, Tier};
use tillflow_kit::sink::{
    Batches, Envelope, Identity, ItemVerdict, Packing, RequestBuilder, ResponseClassifier, RouteError, Service,
    SinkLoop, SinkSpec, Verdict, refused_reason,
};
use tillflow_kit::{AccountContext, HttpTuning};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BATCH_TIER: Tier = Tier::unlimited("batch");

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WireEvent {
    pub id: String,
    pub key: String,
    pub name: String,
    pub history: bool,
    pub timestamp: i64,
}

#[derive(Serialize, Deserialize, Default)]
struct WireBatch {
    events: Vec<WireEvent>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireErrors {
    errors: Vec<WireError>,
}

#[derive(Serialize, Deserialize)]
struct WireError {
    index: usize,
    reason: String,
    #[serde(default)]
    exists: bool,
}

pub static SPEC: SinkSpec = SinkSpec {
    platform: "recorder",
    events: &[
        (EventKind::Placed, "placed"),
        (EventKind::OrderedProduct, "ordered-product"),
        (EventKind::Completed, "completed"),
        (EventKind::Refunded, "refunded"),
        (EventKind::Shipped, "shipped"),
        (EventKind::Canceled, "canceled"),
        (EventKind::CustomerCreated, "customer-created"),
        (EventKind::ProfileUpdated, "profile-updated"),
    ],
    batches: Batches { live: 7, history: 7 },
    identity: Identity::CustomerIdOrEmail,
    person_totals: false,
    in_flight: 1,
};

/// The recorder's request families: a batch, and the update of one event
/// the platform already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecorderRoute {
    Batch,
    Update,
}

pub struct RecorderRequests {
    batch_size: usize,
}

fn wire_event(event: &Event, history: bool) -> WireEvent {
    WireEvent {
        id: RecorderSink::event_id(event),
        key: event.key.to_string(),
        name: SPEC.name(event.kind).unwrap_or("unknown").to_owned(),
        history,
        timestamp: event.occurred_at.as_second(),
    }
}

impl RequestBuilder for RecorderRequests {
    type Route = RecorderRoute;

    fn route(&self, _event: &Event, _history: bool) -> Result<RecorderRoute, RouteError> {
        Ok(RecorderRoute::Batch)
    }

    fn encode(&self, event: &Event, _route: RecorderRoute, history: bool) -> Result<Vec<u8>, String> {
        Ok(serde_json::to_vec(&wire_event(event, history)).expect("events serialize"))
    }

    fn packing(&self, route: RecorderRoute) -> Packing {
        match route {
            RecorderRoute::Batch => Packing {
                min_items: 1,
                max_items: self.batch_size,
                max_bytes: 1 << 20,
                max_item_bytes: 1 << 16,
                item_limit_name: "the recorder's 64 KB",
                distinct_keys: false,
                envelope: Envelope::new(&b"{\"events\":["[..], &b"]}"[..]),
            },
            RecorderRoute::Update => Packing::single(Envelope::new(Vec::new(), Vec::new()), 1 << 16, "64 KB"),
        }
    }

    /// "Already there": the update of that one event, under its id.
    fn on_conflict(
        &self,
        _route: RecorderRoute,
        event: &Event,
        history: bool,
        _detail: &str,
    ) -> Option<(RecorderRoute, Vec<u8>)> {
        Some((RecorderRoute::Update, serde_json::to_vec(&wire_event(event, history)).expect("events serialize")))
    }
}

pub struct RecorderService {
    client: HttpClient,
    base_url: String,
    /// A test value, not a secret.
    token: String,
}

#[async_trait]
impl Service<RecorderRoute> for RecorderService {
    async fn call(&self, route: RecorderRoute, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let (method, url) = match route {
            RecorderRoute::Batch => (Method::POST, format!("{}/v1/batch", self.base_url)),
            RecorderRoute::Update => {
                let event: WireEvent = serde_json::from_slice(&body).expect("the recorder's own body");
                (Method::PUT, format!("{}/v1/events/{}", self.base_url, event.id))
            }
        };
        let request = self
            .client
            .reqwest()
            .request(method, url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the request: {e}")))?;
        Ok(self.client.exchange(&BATCH_TIER, request).await?)
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        let request = self
            .client
            .reqwest()
            .post(format!("{}/v1/people/forget", self.base_url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "email": email }))
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the request: {e}")))?;
        let answer = self.client.exchange(&BATCH_TIER, request).await?;
        Ok(ForgetReport {
            asked: "POST /v1/people/forget".into(),
            answered: format!("HTTP {}", answer.status),
            known: answer.status != 404,
        })
    }
}

pub struct RecorderAnswers;

impl ResponseClassifier<RecorderRoute> for RecorderAnswers {
    fn classify(&self, _route: RecorderRoute, answer: &Answer, items: &[&Event]) -> Verdict {
        if !answer.is_success() {
            return Verdict::Refused(refused_reason("the recorder", answer));
        }
        let errors: WireErrors = serde_json::from_slice(&answer.body).unwrap_or_default();
        if errors.errors.is_empty() {
            return Verdict::Accepted;
        }
        let mut verdicts = vec![ItemVerdict::Accepted; items.len()];
        for error in errors.errors {
            if let Some(slot) = verdicts.get_mut(error.index) {
                *slot = if error.exists {
                    ItemVerdict::Conflict(error.reason)
                } else {
                    ItemVerdict::Rejected(error.reason)
                };
            }
        }
        Verdict::Items(verdicts)
    }
}

pub type RecorderLoop = SinkLoop<RecorderRequests, RecorderService, RecorderAnswers>;

/// The recorder's constructor and the id each event travels under.
pub struct RecorderSink;

impl RecorderSink {
    /// A recorder account with short timeouts and retry delays, so tests stay fast.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(base_url: &str, token: &str, batch_size: usize) -> RecorderLoop {
        let context = AccountContext::new("recorder", Arc::new(crate::MemoryStore::new())).with_tuning(HttpTuning {
            attempt_timeout: Some(std::time::Duration::from_millis(500)),
            ..HttpTuning::fast()
        });
        let service = RecorderService {
            client: HttpClient::new(context.http("recorder")),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        };
        SinkLoop::new(&SPEC, RecorderRequests { batch_size }, service, RecorderAnswers)
    }

    pub fn event_id(event: &Event) -> String {
        event.key.ulid(event.occurred_at).to_string()
    }
}

/// The recorder platform's behaviour on a wiremock server.
struct RecorderResponder {
    platform: Arc<MockPlatform>,
}

impl Respond for RecorderResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.method.as_str() == "PUT" {
            let event: WireEvent = match serde_json::from_slice(&request.body) {
                Ok(event) => event,
                Err(e) => return ResponseTemplate::new(400).set_body_string(format!("bad body: {e}")),
            };
            self.platform.update(event.id);
            return ResponseTemplate::new(200).set_body_json(WireErrors::default());
        }
        let batch: WireBatch = match serde_json::from_slice(&request.body) {
            Ok(batch) => batch,
            Err(e) => return ResponseTemplate::new(400).set_body_string(format!("bad body: {e}")),
        };
        let ids: Vec<String> = batch.events.iter().map(|e| e.id.clone()).collect();
        let fault = self.platform.next_fault();
        if let Some(fault) = &fault
            && !matches!(fault, Fault::AnswerLost)
        {
            return fault.response();
        }
        let rejected = self.platform.rejected_among(&ids);
        let existing = self.platform.existing_among(&ids);
        let accepted: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| !rejected.contains(i) && !existing.contains(i))
            .map(|(_, id)| id.clone())
            .collect();
        self.platform.accept(accepted);
        if let Some(fault) = fault {
            return fault.response();
        }
        let errors = rejected
            .into_iter()
            .map(|index| WireError { index, reason: "invalid event".into(), exists: false })
            .chain(existing.into_iter().map(|index| WireError { index, reason: "already exists".into(), exists: true }))
            .collect();
        ResponseTemplate::new(200).set_body_json(WireErrors { errors })
    }
}

/// Mounts the recorder platform on `server`; requests need `Bearer {token}`.
pub async fn mount_recorder(server: &MockServer, token: &str, platform: Arc<MockPlatform>) {
    let authorized = format!("Bearer {token}");
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", authorized.as_str()))
        .respond_with(RecorderResponder { platform: platform.clone() })
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/v1/events/[0-9A-Z]+$"))
        .and(header("authorization", authorized.as_str()))
        .respond_with(RecorderResponder { platform })
        .mount(server)
        .await;
    Mock::given(path_regex("^/v1/"))
        .respond_with(ResponseTemplate::new(401).set_body_string("{\"error\":\"unauthorized\"}"))
        .mount(server)
        .await;
}

/// The recorder as a [`SinkHarness`](crate::sink_suite::SinkHarness).
pub struct RecorderHarness;

#[async_trait]
impl crate::sink_suite::SinkHarness for RecorderHarness {
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>) {
        mount_recorder(server, "test-token", platform).await;
    }
    fn sink(&self, base_url: &str) -> Box<dyn Sink> {
        Box::new(RecorderSink::new(base_url, "test-token", 7))
    }
    fn id_of(&self, event: &Event) -> Option<String> {
        SPEC.accepts(event.kind).then(|| RecorderSink::event_id(event))
    }
}
