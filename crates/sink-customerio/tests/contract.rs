//! Contract tests against a mock Track API. Every request body is validated
//! against shared/contracts/customerio/track-api-openapi.json.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_core::model::{OrderStatus, Person, PersonTotals, Record};
use tillflow_core::{ErrorClass, Event, EventKind, ItemOutcome, Sink, Subject};
use tillflow_http::SecretString;
use tillflow_kit::{AccountContext, HttpTuning};
use tillflow_sink_customerio::spec::SPEC;
use tillflow_sink_customerio::{CustomerIoConfig, CustomerIoSink, Region, account};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::fake_source::{epoch, sample_order};
use tillflow_testkit::mock::MockPlatform;
use tillflow_testkit::openapi::OpenApi;
use tillflow_testkit::sink_suite::{SinkHarness, run_sink_suite};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const AUTHORIZATION: &str = "Basic c2l0ZTprZXk="; // base64("site:key")

fn config(base_url: &str, api_key: &str) -> CustomerIoConfig {
    CustomerIoConfig {
        site_id: SecretString::from("site"),
        api_key: SecretString::from(api_key),
        region: Region::Us,
        base_url: Some(base_url.to_owned()),
        requests_per_second: 1000,
        marketing_consent: Default::default(),
    }
}

fn sink(base_url: &str) -> CustomerIoSink {
    let context = AccountContext::new("crm", Arc::new(MemoryStore::new())).with_tuning(HttpTuning::fast());
    account(config(base_url, "key"), &context)
}

/// The Track API as far as these tests need it: auth, schema, 207 partial
/// failures, and a record of accepted event ids and bodies.
struct TrackApi {
    platform: Arc<MockPlatform>,
    spec: Arc<OpenApi>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Respond for TrackApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTHORIZATION) {
            return ResponseTemplate::new(401).set_body_json(json!({"meta": {"error": "Unauthorized request"}}));
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(e) => return ResponseTemplate::new(400).set_body_string(e.to_string()),
        };
        if let Err(error) = self.spec.check_request("post", "/api/v2/batch", &body) {
            panic!("request body violates the Track API spec: {error}\n{body}");
        }
        assert!(request.body.len() <= 500 * 1024, "request over 500 KB");
        if let Some(fault) = self.platform.next_fault() {
            if !matches!(fault, tillflow_testkit::Fault::AnswerLost) {
                return fault.response();
            }
            self.accept(&body, &[]);
            return fault.response();
        }
        let ids: Vec<String> =
            body["batch"].as_array().unwrap().iter().map(|op| op["id"].as_str().unwrap_or("").to_owned()).collect();
        let refused = self.platform.rejected_among(&ids);
        self.accept(&body, &refused);
        self.bodies.lock().unwrap().push(body);
        if refused.is_empty() {
            ResponseTemplate::new(200).set_body_json(json!({}))
        } else {
            let errors: Vec<Value> = refused
                .iter()
                .map(|index| json!({"batch_index": index, "reason": "invalid", "field": "attributes", "message": "value too long"}))
                .collect();
            ResponseTemplate::new(207).set_body_json(json!({ "errors": errors }))
        }
    }
}

impl TrackApi {
    fn accept(&self, body: &Value, refused: &[usize]) {
        let ids = body["batch"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(index, _)| !refused.contains(index))
            .filter_map(|(_, op)| op["id"].as_str().map(str::to_owned));
        self.platform.accept(ids);
    }
}

async fn mount(server: &MockServer, platform: Arc<MockPlatform>) -> Arc<Mutex<Vec<Value>>> {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let spec = Arc::new(OpenApi::load("customerio/track-api-openapi.json"));
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(TrackApi { platform, spec, bodies: bodies.clone() })
        .mount(server)
        .await;
    bodies
}

struct Harness;

#[async_trait]
impl SinkHarness for Harness {
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>) {
        mount(server, platform).await;
    }
    fn sink(&self, base_url: &str) -> Box<dyn Sink> {
        Box::new(sink(base_url))
    }
    fn id_of(&self, event: &Event) -> Option<String> {
        (SPEC.accepts(event.kind) && event.kind != EventKind::ProfileUpdated)
            .then(|| event.key.ulid(event.occurred_at).to_string())
    }
}

#[tokio::test]
async fn customerio_passes_the_sink_conformance_suite() {
    run_sink_suite(&Harness).await;
}

fn events(order: tillflow_core::model::Order) -> Vec<Event> {
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    derive_events(Record::Order(order), &context)
        .into_iter()
        .filter(|event| tillflow_sink_customerio::spec::SPEC.accepts(event.kind))
        .collect()
}

#[tokio::test]
async fn an_order_event_has_the_documented_shape() {
    let server = MockServer::start().await;
    let bodies = mount(&server, Arc::new(MockPlatform::new())).await;
    let mut order = sample_order("shop", 7, 3, epoch());
    order.status = OrderStatus::Completed;
    order.register_id = Some("R2".into());
    let placed: Vec<Event> = events(order).into_iter().filter(|e| e.kind != EventKind::OrderedProduct).collect();
    let outcomes = sink(&server.uri()).deliver(&placed, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered));
    let bodies = bodies.lock().unwrap();
    let operations = bodies[0]["batch"].as_array().unwrap();
    assert_eq!(operations.len(), 2, "placed and completed");
    let op = &operations[0];
    assert_eq!(op["type"], "person");
    assert_eq!(op["action"], "event");
    assert_eq!(op["name"], "Order Placed");
    assert_eq!(op["identifiers"], json!({"id": "2"}), "keyed by the source's customer id");
    assert_eq!(op["id"], json!(placed[0].key.ulid(placed[0].occurred_at).as_str()));
    assert_eq!(op["timestamp"], json!(epoch().as_second()));
    let data = &op["attributes"];
    assert_eq!(data["order_id"], "7");
    assert_eq!(data["total"], json!(20), "JSON numbers");
    assert_eq!(data["currency"], "USD");
    assert_eq!(data["channel"], "online");
    assert_eq!(data["register_id"], "R2");
    assert_eq!(data["status"], "completed");
    assert_eq!(data["items"].as_array().unwrap().len(), 2);
    assert_eq!(data["items"][0]["price"], json!(10));
    assert_eq!(operations[1]["name"], "Order Completed");
}

#[tokio::test]
async fn guests_are_identified_by_email_and_totals_are_attributes() {
    let server = MockServer::start().await;
    let bodies = mount(&server, Arc::new(MockPlatform::new())).await;
    let person =
        Person { email: Some("guest@example.com".into()), first_name: Some("Ann".into()), ..Person::default() };
    let totals = PersonTotals {
        revenue: rust_decimal::Decimal::new(4550, 2),
        currency: None,
        orders: 2,
        last_order_at: Some(epoch()),
    };
    let subject = Subject::PersonTotals { person: Arc::new(person), totals };
    let event = Event {
        key: tillflow_core::IdempotencyKey::from_stored(
            "woocommerce:shop:person:email%3Aguest@example.com:totals".into(),
        ),
        kind: EventKind::ProfileUpdated,
        occurred_at: epoch(),
        subject,
        content_hash: "h".into(),
        history: false,
        requires: None,
        update: false,
    };
    sink(&server.uri()).deliver(&[event], false).await.unwrap();
    let bodies = bodies.lock().unwrap();
    let op = &bodies[0]["batch"][0];
    assert_eq!(op["action"], "identify");
    assert_eq!(op["identifiers"], json!({"email": "guest@example.com"}));
    assert_eq!(op["attributes"]["total_revenue"], json!(45.5));
    assert_eq!(op["attributes"]["lifetime_orders"], json!(2));
    assert_eq!(op["attributes"]["last_order_date"], json!(epoch().as_second()));
    assert_eq!(op["attributes"]["first_name"], "Ann", "a guest's details come from the order");
    assert!(op["timestamp"].as_i64().unwrap() >= jiff::Timestamp::now().as_second() - 5);
}

#[tokio::test]
async fn a_whole_batch_refused_with_400_dead_letters_each_item_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"errors": [{"reason": "invalid", "field": "batch", "message": "malformed"}]})),
        )
        .mount(&server)
        .await;
    let placed: Vec<Event> =
        events(sample_order("shop", 1, 1, epoch())).into_iter().filter(|e| e.kind == EventKind::Placed).collect();
    let outcomes = sink(&server.uri()).deliver(&placed, true).await.unwrap();
    match &outcomes[0] {
        ItemOutcome::Rejected { reason } => assert!(reason.contains("batch: malformed"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_credentials_stop_with_a_configuration_error() {
    let server = MockServer::start().await;
    mount(&server, Arc::new(MockPlatform::new())).await;
    let context = AccountContext::new("crm", Arc::new(MemoryStore::new()));
    let mut sink = account(CustomerIoConfig { region: Region::Eu, ..config(&server.uri(), "wrong") }, &context);
    let placed: Vec<Event> = events(sample_order("shop", 1, 1, epoch())).into_iter().take(1).collect();
    let error = sink.deliver(&placed, true).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(!error.message.contains("wrong"), "{}", error.message);
}

#[tokio::test]
async fn an_operation_over_32_kb_is_refused_before_sending() {
    let server = MockServer::start().await;
    let bodies = mount(&server, Arc::new(MockPlatform::new())).await;
    let mut order = sample_order("shop", 1, 1, epoch());
    order.lines[0].name = "x".repeat(40_000).into();
    let placed: Vec<Event> = events(order).into_iter().filter(|e| e.kind == EventKind::Placed).collect();
    let outcomes = sink(&server.uri()).deliver(&placed, true).await.unwrap();
    assert!(matches!(&outcomes[0], ItemOutcome::Rejected { reason } if reason.contains("32 KB")));
    assert!(bodies.lock().unwrap().is_empty(), "nothing was sent");
}

#[test]
fn regions_have_their_own_track_urls() {
    assert_eq!(Region::Us.track_url(), "https://track.customer.io");
    assert_eq!(Region::Eu.track_url(), "https://track-eu.customer.io");
}

#[test]
fn the_spec_check_used_above_catches_malformed_operations() {
    let spec = OpenApi::load("customerio/track-api-openapi.json");
    let good = json!({"batch": [{"type": "person", "identifiers": {"id": "1"}, "action": "event", "name": "Order Placed", "attributes": {}}]});
    assert!(spec.check_request("post", "/api/v2/batch", &good).is_ok());
    let no_name = json!({"batch": [{"type": "person", "identifiers": {"id": "1"}, "action": "event"}]});
    assert!(spec.check_request("post", "/api/v2/batch", &no_name).is_err());
    let bad_action = json!({"batch": [{"type": "person", "identifiers": {"id": "1"}, "action": "shout"}]});
    assert!(spec.check_request("post", "/api/v2/batch", &bad_action).is_err());
}

#[tokio::test]
async fn forgetting_suppresses_the_person_by_email_in_the_documented_shape() {
    use tillflow_kit::SinkAccount;
    let server = MockServer::start().await;
    let spec = OpenApi::load("customerio/track-api-openapi.json");
    Mock::given(method("POST"))
        .and(path("/api/v2/entity"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let report = sink(&server.uri()).forget("ana@example.com").await.unwrap();
    assert!(report.known && report.asked.contains("suppress"), "{report:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    spec.check_request("post", "/api/v2/entity", &body).unwrap();
    assert_eq!(body, json!({"type": "person", "identifiers": {"email": "ana@example.com"}, "action": "suppress"}));
    // A refusal is an error naming the call, not a report of success.
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/entity"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"errors": [{"reason": "invalid", "field": "identifiers", "message": "email is not an identifier"}]}),
        ))
        .mount(&refusing)
        .await;
    let error = sink(&refusing.uri()).forget("ana@example.com").await.unwrap_err();
    assert!(error.message.contains("/api/v2/entity") && error.message.contains("400"), "{}", error.message);
}
