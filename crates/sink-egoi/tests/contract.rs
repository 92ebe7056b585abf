//! Contract tests against a mock E-goi, every request body checked against
//! the official `egoi/openapi.yaml`: the kit's sink conformance suite, the
//! documented bodies of both order endpoints and the contact endpoints, a
//! conflict turned into a PATCH, a 413 halved and a 422 bisected down to
//! the bad order, the list's fields and the connected domain checked before
//! anything is sent, and the key or plan refused as a configuration error.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_core::model::{Customer, OrderStatus, Record};
use tillflow_core::{ErrorClass, Event, EventKind, ItemOutcome, Sink};
use tillflow_http::SecretString;
use tillflow_kit::{AccountContext, HttpTuning, SinkAccount};
use tillflow_sink_egoi::config::{CanonicalField, HistoryEndpoint, Revenue};
use tillflow_sink_egoi::spec::SPEC;
use tillflow_sink_egoi::{EgoiConfig, EgoiSink, account};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::fake_source::{epoch, sample_customer, sample_order};
use tillflow_testkit::mock::MockPlatform;
use tillflow_testkit::openapi::OpenApi;
use tillflow_testkit::sink_suite::{SinkHarness, run_sink_suite};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DOMAIN: &str = "shop.example.com";

fn spec() -> &'static OpenApi {
    static SPEC_FILE: OnceLock<OpenApi> = OnceLock::new();
    SPEC_FILE.get_or_init(|| OpenApi::load("egoi/openapi.yaml"))
}

/// Panics (failing the test) when `body` breaks the official schema.
fn conforms(method: &str, template: &str, body: &Value) {
    if let Err(error) = spec().check_request(method, template, body) {
        panic!("a request the official schema rejects: {error}\n{body:#}");
    }
}

fn config(base_url: &str) -> EgoiConfig {
    EgoiConfig {
        api_key: SecretString::from("key"),
        list_id: 1,
        domain: DOMAIN.into(),
        store_url: format!("https://{DOMAIN}"),
        base_url: base_url.to_owned(),
        status_map: BTreeMap::new(),
        revenue: Revenue::Gross,
        field_map: BTreeMap::from([(CanonicalField::City, "Cidade".to_owned())]),
        history_batch: 500,
        history_endpoint: HistoryEndpoint::Bulk,
        order_ids: tillflow_sink_egoi::config::OrderIds::Plain,
        import_wait: tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(5)),
        import_poll: tillflow_core::duration::HumanDuration(std::time::Duration::from_millis(10)),
        group_tags: Vec::new(),
        marketing_consent: Default::default(),
    }
}

fn sink_with(config: EgoiConfig) -> EgoiSink {
    let context = AccountContext::new("crm", Arc::new(MemoryStore::new())).with_tuning(HttpTuning::fast());
    account(config, &context)
}

fn sink(base_url: &str) -> EgoiSink {
    sink_with(config(base_url))
}

/// Every request the mock saw: (method, path, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

struct Recorded {
    seen: Seen,
    answer: ResponseTemplate,
    template: &'static str,
}

impl Respond for Recorded {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if !body.is_null() {
            conforms(request.method.as_str(), self.template, &body);
        }
        self.seen.lock().unwrap().push((request.method.to_string(), request.url.path().to_owned(), body));
        self.answer.clone()
    }
}

/// Mounts `verb route` (spec path `template`) answering `answer`, every body
/// checked against the spec and recorded in `seen`.
async fn record(
    server: &MockServer,
    (verb, route, template): (&str, &str, &'static str),
    seen: &Seen,
    answer: ResponseTemplate,
) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(Recorded { seen: seen.clone(), answer, template })
        .mount(server)
        .await;
}

/// E-goi's 202 for a write it queued.
fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({"result": "success"}))
}

fn fields() -> Value {
    json!([
        {"field_id": "email", "name": "email", "format": "email", "unique": true, "type": "base"},
        {"field_id": "first_name", "name": "first_name", "format": "text", "unique": false, "type": "base"},
        {"field_id": "extra_1", "name": "Cidade", "format": "text", "unique": false, "type": "extra"}
    ])
}

/// The list, its connected domain, the import queue and the contact
/// endpoints, answering as E-goi documents; orders are mounted by each test.
async fn mount_account(server: &MockServer, seen: &Seen) {
    let answer = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    let mounts: [(&str, &str, &'static str, ResponseTemplate); 6] = [
        ("GET", "/lists/1/fields", "/lists/{list_id}/fields", answer(200, fields())),
        (
            "GET",
            "/connectedsites/shop.example.com",
            "/connectedsites/{domain}",
            answer(200, json!({"domain": DOMAIN, "list_id": "1"})),
        ),
        ("GET", "/operations", "/operations", answer(200, json!({"total_items": 0, "items": []}))),
        (
            "POST",
            "/lists/1/contacts/actions/import-bulk",
            "/lists/{list_id}/contacts/actions/import-bulk",
            answer(202, json!({"result": "success"})),
        ),
        (
            "POST",
            "/lists/1/contacts/by-field",
            "/lists/{list_id}/contacts/by-field",
            answer(201, json!({"contact_id": "0000000001"})),
        ),
        ("POST", "/lists/1/contacts", "/lists/{list_id}/contacts", answer(201, json!({"contact_id": "0000000002"}))),
    ];
    for (verb, route, template, response) in mounts {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(Recorded { seen: seen.clone(), answer: response, template })
            .mount(server)
            .await;
    }
}

/// Order endpoints under the suite's faults and rejections: ids are order
/// ids; a refused id makes E-goi refuse the whole request (422), as a
/// bulk import with one bad order is.
struct Orders {
    platform: Arc<MockPlatform>,
    template: &'static str,
}

impl Respond for Orders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.headers.get("apikey").and_then(|v| v.to_str().ok()) != Some("key") {
            return ResponseTemplate::new(401).set_body_json(json!({"title": "Unauthorized", "status": 401}));
        }
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        conforms("POST", self.template, &body);
        let orders = body.as_array().cloned().unwrap_or_else(|| vec![body.clone()]);
        let ids: Vec<String> = orders.iter().map(|o| o["order_id"].as_str().unwrap_or("").to_owned()).collect();
        if let Some(fault) = self.platform.next_fault() {
            if matches!(fault, tillflow_testkit::mock::Fault::AnswerLost) {
                self.platform.accept(ids);
            }
            return fault.response();
        }
        if !self.platform.rejected_among(&ids).is_empty() {
            return ResponseTemplate::new(422).set_body_json(json!({
                "title": "Unprocessable Entity", "status": 422, "detail": "Invalid order",
                "errors": {"items": "invalid item"}
            }));
        }
        self.platform.accept(ids);
        accepted()
    }
}

async fn mount_orders(server: &MockServer, platform: Arc<MockPlatform>) {
    Mock::given(method("POST"))
        .and(path("/lists/1/orders"))
        .respond_with(Orders { platform: platform.clone(), template: "/lists/{list_id}/orders" })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/shop.example.com/orders"))
        .respond_with(Orders { platform, template: "/{domain}/orders" })
        .mount(server)
        .await;
}

struct Harness;

#[async_trait]
impl SinkHarness for Harness {
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>) {
        mount_account(server, &Seen::default()).await;
        mount_orders(server, platform).await;
    }
    fn sink(&self, base_url: &str) -> Box<dyn Sink> {
        Box::new(sink(base_url))
    }
    fn id_of(&self, event: &Event) -> Option<String> {
        (event.kind == EventKind::OrderState).then(|| event.order().unwrap().identity.id.to_string())
    }
}

#[tokio::test]
async fn egoi_passes_the_sink_conformance_suite() {
    run_sink_suite(&Harness).await;
}

fn order_states(orders: Vec<tillflow_core::model::Order>, history: bool) -> Vec<Event> {
    let started = if history { jiff::Timestamp::now() } else { epoch() - jiff::SignedDuration::from_hours(1) };
    let context = DeriveContext { pipeline_started_at: started };
    orders
        .into_iter()
        .flat_map(|order| derive_events(Record::Order(order), &context))
        .filter(|event| event.kind == EventKind::OrderState)
        .collect()
}

fn sent(seen: &Seen, route: &str) -> Vec<Value> {
    seen.lock().unwrap().iter().filter(|(_, p, _)| p == route).map(|(_, _, body)| body.clone()).collect()
}

#[tokio::test]
async fn history_adds_the_buyers_then_imports_the_orders_in_the_documented_shape() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    mount_account(&server, &seen).await;
    let orders_seen = Seen::default();
    record(&server, ("POST", "/lists/1/orders", "/lists/{list_id}/orders"), &orders_seen, accepted()).await;
    let mut orders: Vec<_> = (1..=3).map(|n| sample_order("shop", n, 2, epoch())).collect();
    std::sync::Arc::make_mut(&mut orders[0].person).email = Some("  Ana.Silva@Example.COM ".into());
    orders[0].lines[0].quantity = rust_decimal::Decimal::from(3);
    orders[0].lines[0].total.amount = rust_decimal::Decimal::new(2997, 2);
    orders[1].lines[0].quantity = rust_decimal::Decimal::new(15, 1);
    orders[1].lines[0].total.amount = rust_decimal::Decimal::new(450, 2);
    let events = order_states(orders, true);
    let outcomes = sink(&server.uri()).deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");

    let imports = sent(&seen, "/lists/1/contacts/actions/import-bulk");
    assert_eq!(imports.len(), 1, "the buyers first, in one import");
    assert_eq!(imports[0]["mode"], "add", "a buyer E-goi knows is left as it is");
    assert_eq!(imports[0]["compare_field"], "email");
    let emails: Vec<&str> =
        imports[0]["contacts"].as_array().unwrap().iter().map(|c| c["base"]["email"].as_str().unwrap()).collect();
    assert!(emails.contains(&"ana.silva@example.com"), "{emails:?}");
    assert!(
        imports[0]["contacts"].as_array().unwrap().iter().all(|c| c["base"].get("status").is_none()),
        "no subscription status"
    );
    assert!(seen.lock().unwrap().iter().any(|(_, p, _)| p == "/operations"), "the import queue was watched");

    let bodies = sent(&orders_seen, "/lists/1/orders");
    assert_eq!(bodies.len(), 1, "one import");
    let imported = bodies[0].as_array().unwrap();
    assert_eq!(imported.len(), 3);
    let first = &imported[0];
    assert_eq!(first["order_id"], "1");
    assert_eq!(first["order_status"], "pending", "processing is pending");
    assert_eq!(first["contact_id"], "ana.silva@example.com", "trimmed, lower case");
    assert_eq!(first["store_url"], "https://shop.example.com");
    assert!(first["revenue"].as_f64().unwrap() > 0.0);
    assert_eq!(first["date"], "2023-11-14T22:13:20+00:00", "when it was placed, RFC 3339 with its offset");
    assert_eq!(first["items"][0]["quantity"], 3);
    assert_eq!(first["items"][0]["price"], 9.99, "the price paid for one");
    let weighed = &imported[1]["items"][0];
    assert_eq!(weighed["quantity"], 1, "a fractional quantity goes as one item");
    assert_eq!(weighed["price"], 4.5, "at the line's total");
}

#[tokio::test]
async fn a_live_order_carries_its_date_its_buyer_and_its_products() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    mount_account(&server, &seen).await;
    let orders_seen = Seen::default();
    record(&server, ("POST", "/shop.example.com/orders", "/{domain}/orders"), &orders_seen, accepted()).await;
    let mut order = sample_order("shop", 7, 3, epoch());
    order.status = OrderStatus::Completed;
    std::sync::Arc::make_mut(&mut order.person).phone = Some("912 345 678".into());
    std::sync::Arc::make_mut(&mut order.person).address.country = Some("PT".into());
    std::sync::Arc::make_mut(&mut order.person).address.city = Some("Lisboa".into());
    order.lines[0].sku = Some("SKU-1".into());
    order.lines[0].categories = vec!["Clothing>Shirts".into()];
    order.placed_at = "2026-11-22T10:15:00Z".parse().unwrap();
    let events = order_states(vec![order], false);
    let outcomes = sink(&server.uri()).deliver(&events, false).await.unwrap();
    assert_eq!(outcomes, vec![ItemOutcome::Delivered]);
    let bodies = sent(&orders_seen, "/shop.example.com/orders");
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["order_id"], "7");
    assert_eq!(body["order_status"], "completed");
    assert_eq!(body["order_date"], "2026-11-22T10:15:00+00:00");
    assert!(body["order_total"].is_number());
    assert_eq!(body["contact"]["base"]["cellphone"], "351-912345678");
    assert_eq!(body["contact"]["extra"], json!([{"field_id": 1, "value": "Lisboa"}]), "field_map city → Cidade");
    assert!(body["contact"]["base"].get("status").is_none());
    assert_eq!(body["products"][0]["sku"], "SKU-1");
    assert_eq!(body["products"][0]["categories"], json!(["Clothing>Shirts"]));
    assert!(body["products"][0]["quantity"].is_number());
}

fn profile_events(customers: Vec<Customer>, history: bool) -> Vec<Event> {
    let started = if history { jiff::Timestamp::now() } else { epoch() - jiff::SignedDuration::from_hours(1) };
    customers
        .into_iter()
        .flat_map(|customer| derive_events(Record::Customer(customer), &DeriveContext { pipeline_started_at: started }))
        .filter(|event| SPEC.accepts(event.kind))
        .collect()
}

#[tokio::test]
async fn a_contact_whose_email_is_taken_becomes_a_patch_of_the_contact_e_goi_names() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    record(&server, ("POST", "/lists/1/contacts", "/lists/{list_id}/contacts"), &seen, ResponseTemplate::new(409).set_body_json(json!({
                "errors": {"unique_field_in_use": "A unique field is already being used", "field_id": "email", "contacts": ["8f3a27ef26"]},
                "type": "about:blank", "title": "Conflict", "status": 409, "detail": "A unique field is already being used"
            }))).await;
    record(
        &server,
        ("PATCH", "/lists/1/contacts/8f3a27ef26", "/lists/{list_id}/contacts/{contact_id}"),
        &seen,
        ResponseTemplate::new(200).set_body_json(json!({"contact_id": "8f3a27ef26"})),
    )
    .await;
    mount_account(&server, &seen).await;
    let events = profile_events(vec![sample_customer("shop", 4, epoch())], false);
    let outcomes = sink(&server.uri()).deliver(&events, false).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    let patches: Vec<_> = seen.lock().unwrap().iter().filter(|(m, _, _)| m == "PATCH").cloned().collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].1, "/lists/1/contacts/8f3a27ef26");
    assert!(patches[0].2["base"]["email"].is_string());
}

#[tokio::test]
async fn history_contacts_go_in_bulk_updates_and_a_lone_one_through_create() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    mount_account(&server, &seen).await;
    let customers: Vec<_> = (1..=3).map(|n| sample_customer("shop", n, epoch())).collect();
    let events = profile_events(customers, true);
    let mut sink = sink(&server.uri());
    let outcomes = sink.deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    let imports = sent(&seen, "/lists/1/contacts/actions/import-bulk");
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0]["mode"], "update");
    assert_eq!(imports[0]["force_empty"], false, "an empty value never erases one E-goi has");
    assert_eq!(imports[0]["contacts"].as_array().unwrap().len(), 3);

    let lone = profile_events(vec![sample_customer("shop", 9, epoch())], true);
    sink.deliver(&lone, true).await.unwrap();
    assert_eq!(
        sent(&seen, "/lists/1/contacts/actions/import-bulk").len(),
        1,
        "a bulk import of one is refused by E-goi"
    );
    assert_eq!(sent(&seen, "/lists/1/contacts").len(), 1, "it went through create");
}

/// Bulk imports over `limit` orders are too large (413); one holding `bad`
/// is refused whole (422).
struct Picky {
    limit: usize,
    bad: &'static str,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl Respond for Picky {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        conforms("POST", "/lists/{list_id}/orders", &body);
        let orders = body.as_array().unwrap();
        self.sizes.lock().unwrap().push(orders.len());
        if orders.len() > self.limit {
            return ResponseTemplate::new(413)
                .set_body_json(json!({"title": "Payload Too Large", "status": 413, "detail": "Stream limit"}));
        }
        if orders.iter().any(|o| o["order_id"] == self.bad) {
            return ResponseTemplate::new(422).set_body_json(json!({
                "title": "Unprocessable Entity", "status": 422, "detail": "Invalid data", "errors": {"revenue": "invalid"}
            }));
        }
        accepted()
    }
}

#[tokio::test]
async fn a_413_halves_the_import_and_a_422_is_bisected_down_to_the_bad_order() {
    let server = MockServer::start().await;
    mount_account(&server, &Seen::default()).await;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/lists/1/orders"))
        .respond_with(Picky { limit: 8, bad: "13", sizes: sizes.clone() })
        .mount(&server)
        .await;
    let orders: Vec<_> = (1..=32).map(|n| sample_order("shop", n, 5, epoch())).collect();
    let events = order_states(orders, true);
    let outcomes = sink(&server.uri()).deliver(&events, true).await.unwrap();
    let rejected: Vec<(usize, &ItemOutcome)> =
        outcomes.iter().enumerate().filter(|(_, o)| **o != ItemOutcome::Delivered).collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(events[rejected[0].0].order().unwrap().identity.id, "13");
    let ItemOutcome::Rejected { reason } = rejected[0].1 else { panic!("{rejected:?}") };
    assert!(reason.contains("HTTP 422") && reason.contains("Invalid data"), "E-goi's message: {reason}");
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes[..3], [32, 16, 16], "halved on 413: {sizes:?}");
    // 32 → 2×16 → 4×8 (413 twice, then 4 requests of 8); the 8 holding order
    // 13 bisects to 4, 2, 1: far fewer requests than one per order.
    assert!(sizes.len() <= 15, "{} requests: {sizes:?}", sizes.len());
}

#[tokio::test]
async fn the_list_and_the_domain_are_checked_before_anything_is_sent() {
    // A field_map name the list lacks: a configuration error naming the key.
    let server = MockServer::start().await;
    mount_account(&server, &Seen::default()).await;
    let mut wrong = config(&server.uri());
    wrong.field_map.insert(CanonicalField::Postcode, "Código postal".into());
    let error = sink_with(wrong).check().await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(
        error
            .message
            .starts_with("sinks.crm.field_map.postcode: E-goi list 1 has no extra field named `Código postal`"),
        "{}",
        error.message
    );

    // A domain connected to another list.
    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/connectedsites/shop.example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"domain": DOMAIN, "list_id": "9"})))
        .mount(&other)
        .await;
    mount_account(&other, &Seen::default()).await;
    let error = sink(&other.uri()).check().await.unwrap_err();
    assert!(
        error.message.contains("sinks.crm.domain: `shop.example.com` is connected to E-goi list 9, not list 1"),
        "{}",
        error.message
    );

    // A domain E-goi does not know is connected to the list.
    let fresh = MockServer::start().await;
    let seen = Seen::default();
    Mock::given(method("GET"))
        .and(path("/connectedsites/shop.example.com"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"title": "Not Found", "status": 404})))
        .mount(&fresh)
        .await;
    record(
        &fresh,
        ("POST", "/connectedsites", "/connectedsites"),
        &seen,
        ResponseTemplate::new(200).set_body_json(json!({"domain": DOMAIN, "list_id": "1"})),
    )
    .await;
    mount_account(&fresh, &seen).await;
    sink(&fresh.uri()).check().await.unwrap();
    assert_eq!(sent(&seen, "/connectedsites"), vec![json!({"domain": DOMAIN, "list_id": "1"})]);
}

#[tokio::test]
async fn a_refused_key_or_plan_is_a_configuration_error_that_says_so_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"title": "Forbidden", "status": 403, "detail": "Your plan does not allow it"})),
        )
        .mount(&server)
        .await;
    let mut config = config(&server.uri());
    config.api_key = SecretString::from("sk-very-secret");
    let error = sink_with(config).check().await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(error.message.contains("sinks.crm.api_key") && error.message.contains("paid plan"), "{}", error.message);
    assert!(!error.message.contains("sk-very-secret"));
}

#[test]
fn an_order_is_sent_again_exactly_when_what_e_goi_keeps_of_it_changed() {
    use tillflow_kit::sink::RequestBuilder;
    let sink = sink("http://127.0.0.1:9");
    let mut order = sample_order("shop", 3, 2, epoch());
    let print = |order: &tillflow_core::model::Order| {
        let event = order_states(vec![order.clone()], false).remove(0);
        sink.builder().fingerprint(&event).unwrap()
    };
    let processing = print(&order);
    order.status = OrderStatus::OnHold;
    order.payment_method = Some("card".into());
    order.updated_at += jiff::SignedDuration::from_secs(60);
    assert_eq!(print(&order), processing, "on-hold is pending too");
    order.status = OrderStatus::Completed;
    assert_ne!(print(&order), processing, "completed");
    let completed = print(&order);
    order.refunded = Some(tillflow_core::model::Money::new(rust_decimal::Decimal::from(5), *order.currency()));
    assert_eq!(print(&order), completed, "gross revenue does not follow refunds");
    let mut net = config("http://127.0.0.1:9");
    net.revenue = Revenue::Net;
    let net_sink = sink_with(net);
    let event = order_states(vec![order.clone()], false).remove(0);
    assert_ne!(net_sink.builder().fingerprint(&event).unwrap(), completed, "net revenue does");
}

#[test]
fn orders_without_items_or_trashed_are_skipped_by_reason() {
    use tillflow_kit::sink::{RequestBuilder, RouteError};
    let sink = sink("http://127.0.0.1:9");
    let mut order = sample_order("shop", 3, 2, epoch());
    order.status = OrderStatus::Trash;
    let event = order_states(vec![order.clone()], false).remove(0);
    assert_eq!(sink.builder().route(&event, false), Err(RouteError::Skip("trashed".into())));
    order.status = OrderStatus::Processing;
    order.lines.clear();
    let event = order_states(vec![order], false).remove(0);
    assert_eq!(sink.builder().route(&event, false), Err(RouteError::Skip("no items".into())));
}

#[tokio::test]
async fn history_per_order_keeps_each_order_s_date_through_the_per_domain_endpoint() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    mount_account(&server, &seen).await;
    record(&server, ("POST", "/shop.example.com/orders", "/{domain}/orders"), &seen, accepted()).await;
    let mut per_order = config(&server.uri());
    per_order.history_endpoint = HistoryEndpoint::PerOrder;
    let events = order_states((1..=3).map(|n| sample_order("shop", n, 2, epoch())).collect(), true);
    let outcomes = sink_with(per_order).deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    let posted = sent(&seen, "/shop.example.com/orders");
    assert_eq!(posted.len(), 3, "one request per order");
    assert!(posted.iter().all(|order| order["order_date"] == "2023-11-14T22:13:20+00:00"));
    assert!(sent(&seen, "/lists/1/contacts/actions/import-bulk").is_empty(), "the endpoint matches buyers itself");
}

#[test]
fn prefixed_order_ids_keep_two_stores_apart_in_one_list() {
    use tillflow_kit::sink::RequestBuilder;
    let mut prefixed = config("http://127.0.0.1:9");
    prefixed.order_ids = tillflow_sink_egoi::config::OrderIds::Prefixed;
    let order = sample_order("shop", 3, 2, epoch());
    let plain = tillflow_sink_egoi::mapping::facts(&order, &config("http://127.0.0.1:9")).unwrap();
    let named = tillflow_sink_egoi::mapping::facts(&order, &prefixed).unwrap();
    assert_eq!(plain.order_id, "3");
    assert_eq!(named.order_id, "shop-3");
    let event = order_states(vec![order], false).remove(0);
    assert_ne!(
        sink("http://127.0.0.1:9").builder().fingerprint(&event),
        sink_with(prefixed).builder().fingerprint(&event)
    );
}

#[tokio::test]
async fn synced_consent_and_group_tags_act_on_the_contact_found_by_email_in_the_documented_shape() {
    let server = MockServer::start().await;
    let seen = Seen::default();
    let answer = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    // in@ is on the list; out@ is not yet (created first).
    Mock::given(method("GET"))
        .and(path("/contacts/search"))
        .and(wiremock::matchers::query_param("contact", "in@example.com"))
        .respond_with(answer(200, json!({"items": [{"list_id": 1, "contact_id": "8f3a27ef26"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts/search"))
        .respond_with(answer(200, json!({"items": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tags"))
        .respond_with(answer(
            200,
            json!({"total_items": 1, "items": [{"tag_id": 3, "name": "VIP", "color": "#FFFFFF"}]}),
        ))
        .mount(&server)
        .await;
    record(&server, ("POST", "/tags", "/tags"), &seen, answer(201, json!({"tag_id": 4, "name": "Students"}))).await;
    for action in ["attach-tag", "detach-tag", "unsubscribe", "activate"] {
        let route: &'static str = Box::leak(format!("/lists/1/contacts/actions/{action}").into_boxed_str());
        let template: &'static str =
            Box::leak(format!("/lists/{{list_id}}/contacts/actions/{action}").into_boxed_str());
        record(&server, ("POST", route, template), &seen, answer(200, json!({"result": "success"}))).await;
    }
    mount_account(&server, &seen).await;
    let mut config = config(&server.uri());
    config.group_tags = vec!["VIP".into(), "Students".into()];
    config.marketing_consent = tillflow_kit::config::MarketingConsent::Sync;
    let mut customers = Vec::new();
    for (email, accepts, group) in [("in@example.com", true, Some("VIP")), ("out@example.com", false, None)] {
        let mut customer = sample_customer("shop", 4, epoch());
        customer.person.email = Some(email.into());
        customer.accepts_marketing = Some(accepts);
        customer.group = group.map(Into::into);
        customer.consent_changed_at = Some(epoch());
        customer.group_changed_at = Some(epoch());
        customers.push(customer);
    }
    let events: Vec<Event> = profile_events(customers, false)
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ConsentChanged | EventKind::GroupChanged))
        .collect();
    assert_eq!(events.len(), 4);
    let outcomes = sink_with(config).deliver(&events, false).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    let seen = seen.lock().unwrap();
    let posted =
        |route: &str| -> Vec<Value> { seen.iter().filter(|(_, p, _)| p == route).map(|(_, _, b)| b.clone()).collect() };
    assert_eq!(
        posted("/lists/1/contacts/actions/activate"),
        vec![json!({"type": "contacts", "contacts": ["8f3a27ef26"]})]
    );
    let unsubscribed = posted("/lists/1/contacts/actions/unsubscribe");
    assert_eq!(unsubscribed.len(), 1);
    assert_eq!(unsubscribed[0]["data"][0]["contact_id"], "0000000002", "the contact created for out@");
    assert_eq!(posted("/tags"), vec![json!({"name": "Students"})], "a missing group tag is created once");
    let attached = posted("/lists/1/contacts/actions/attach-tag");
    assert_eq!(attached, vec![json!({"tag_id": 3, "contacts": ["8f3a27ef26"]})], "in@ joins VIP");
    assert_eq!(posted("/lists/1/contacts/actions/detach-tag").len(), 3, "in@ leaves Students; out@ leaves both");
}

#[tokio::test]
async fn forgetting_finds_the_list_s_contact_by_email_then_asks_e_goi_to_forget_it() {
    use tillflow_kit::SinkAccount;
    let server = MockServer::start().await;
    let seen: Seen = Arc::default();
    let search = |items: Value| ResponseTemplate::new(200).set_body_json(json!({"total_items": 1, "items": items}));
    Mock::given(method("GET"))
        .and(path("/contacts/search"))
        .and(wiremock::matchers::query_param("contact", "ana@example.com"))
        .respond_with(search(json!([
            {"list_id": 9, "contact_id": "elsewhere"},
            {"list_id": 1, "contact_id": "c0ffee0001"}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path("/contacts/search")).respond_with(search(json!([]))).mount(&server).await;
    let forget = ("POST", "/lists/1/contacts/actions/forget", "/lists/{list_id}/contacts/actions/forget");
    record(&server, forget, &seen, accepted()).await;
    let sink = sink(&server.uri());
    let report = sink.forget("ana@example.com").await.unwrap();
    assert!(report.known, "{report:?}");
    assert!(report.asked.contains("/lists/1/contacts/actions/forget"), "{report:?}");
    assert_eq!(sent(&seen, "/lists/1/contacts/actions/forget"), vec![json!({"contacts": ["c0ffee0001"]})]);
    // Nobody on the list with that address: nothing to forget, nothing asked.
    let report = sink.forget("bob@example.com").await.unwrap();
    assert!(!report.known, "{report:?}");
    assert_eq!(sent(&seen, "/lists/1/contacts/actions/forget").len(), 1);
}
