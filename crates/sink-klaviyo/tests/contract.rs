//! Contract tests against a mock Klaviyo. Every request body is validated
//! against shared/contracts/klaviyo/openapi-stable.json (revision 2026-07-15).

use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_core::model::{Location, Record};
use tillflow_core::{ErrorClass, Event, EventKind, ItemOutcome, Sink};
use tillflow_http::SecretString;
use tillflow_kit::{AccountContext, HttpTuning};
use tillflow_sink_klaviyo::spec::SPEC;
use tillflow_sink_klaviyo::{KlaviyoConfig, KlaviyoSink, account};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::fake_source::{epoch, sample_customer, sample_order};
use tillflow_testkit::mock::{Fault, MockPlatform};
use tillflow_testkit::openapi::OpenApi;
use tillflow_testkit::sink_suite::{SinkHarness, run_sink_suite};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn config(base_url: &str, api_key: &str, list: Option<&str>) -> KlaviyoConfig {
    KlaviyoConfig {
        api_key: SecretString::from(api_key),
        base_url: base_url.to_owned(),
        new_profiles_list_id: list.map(str::to_owned),
        job_poll_interval: tillflow_core::duration::HumanDuration(Duration::from_millis(10)),
        catalog: true,
        catalog_url: Some("https://shop.example.com/products/{productId}".into()),
        group_lists: Default::default(),
        marketing_consent: Default::default(),
    }
}

fn sink(base_url: &str, list: Option<&str>) -> KlaviyoSink {
    let context = AccountContext::new("klaviyo", Arc::new(MemoryStore::new())).with_tuning(HttpTuning::fast());
    account(config(base_url, "pk_test", list), &context)
}

/// A mock Klaviyo: headers, schema, faults, JSON:API errors; records bodies.
struct Klaviyo {
    platform: Arc<MockPlatform>,
    spec: Arc<OpenApi>,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    /// Job polls answer "processing" this many times before "complete".
    polls_before_complete: Arc<Mutex<u32>>,
    /// Emails whose profiles the bulk import job reports as failed.
    failing_emails: Arc<Mutex<Vec<String>>>,
}

fn jsonapi_error(status: u16, code: &str, detail: &str, pointer: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errors": [{"id": "e1", "status": status, "code": code, "title": "Invalid input.", "detail": detail, "source": {"pointer": pointer}}]}))
}

impl Respond for Klaviyo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if header("authorization") != "Klaviyo-API-Key pk_test" {
            return jsonapi_error(401, "not_authenticated", "Incorrect authentication credentials.", "");
        }
        assert_eq!(header("revision"), "2026-07-15");
        assert_eq!(header("accept"), "application/vnd.api+json");
        let route = request.url.path().to_owned();
        if request.method.as_str() == "GET" {
            if route.ends_with("/import-errors") {
                let failing = self.failing_emails.lock().unwrap().clone();
                let data: Vec<Value> = failing
                    .iter()
                    .map(|email| json!({"type": "import-error", "id": "x", "attributes": {"code": "invalid", "title": "Invalid input", "detail": "Invalid email address", "source": {"pointer": "/data/attributes/email"}, "original_payload": {"email": email}}}))
                    .collect();
                return ResponseTemplate::new(200)
                    .set_body_json(json!({"data": data, "links": {"self": "x", "next": null}}));
            }
            let mut polls = self.polls_before_complete.lock().unwrap();
            let status = if *polls > 0 {
                *polls -= 1;
                "processing"
            } else {
                "complete"
            };
            let failed = self.failing_emails.lock().unwrap().len();
            return ResponseTemplate::new(200).set_body_json(json!({"data": {"type": "profile-bulk-import-job", "id": "job-1", "attributes": {"status": status, "total_count": 1, "completed_count": 1, "failed_count": failed}}}));
        }
        assert_eq!(header("content-type"), "application/vnd.api+json");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let spec_path = if route.starts_with("/api/lists/") {
            "/api/lists/{id}/relationships/profiles".to_owned()
        } else {
            route.clone()
        };
        if let Err(error) = self.spec.check_request("post", &spec_path, &body) {
            panic!("request body violates the Klaviyo spec: {error}\n{body}");
        }
        self.bodies.lock().unwrap().push((route.clone(), body.clone()));
        let fault = self.platform.next_fault();
        if let Some(fault) = &fault
            && !matches!(fault, Fault::AnswerLost)
        {
            return fault.response();
        }
        match route.as_str() {
            "/api/events" | "/api/event-bulk-create-jobs" => {
                let ids: Vec<String> = unique_ids(&body);
                let refused = self.platform.rejected_among(&ids);
                if !refused.is_empty() {
                    return jsonapi_error(400, "invalid", "'value' must be a number", "/data/attributes/value");
                }
                self.platform.accept(ids);
                if let Some(lost) = fault {
                    return lost.response();
                }
                ResponseTemplate::new(202)
                    .set_body_json(json!({"data": {"type": "event-bulk-create-job", "id": "ebj"}}))
            }
            "/api/profile-import" => {
                let email = body["data"]["attributes"]["email"].as_str().unwrap_or("");
                let status = if email.starts_with("new") { 201 } else { 200 };
                ResponseTemplate::new(status)
                    .set_body_json(json!({"data": {"type": "profile", "id": format!("P-{email}"), "attributes": {}}}))
            }
            "/api/profile-bulk-import-jobs" => ResponseTemplate::new(202).set_body_json(
                json!({"data": {"type": "profile-bulk-import-job", "id": "job-1", "attributes": {"status": "queued"}}}),
            ),
            _ => ResponseTemplate::new(204),
        }
    }
}

fn unique_ids(body: &Value) -> Vec<String> {
    if let Some(id) = body["data"]["attributes"]["unique_id"].as_str() {
        return vec![id.to_owned()];
    }
    let mut ids = Vec::new();
    for entry in body["data"]["attributes"]["events-bulk-create"]["data"].as_array().into_iter().flatten() {
        for event in entry["attributes"]["events"]["data"].as_array().into_iter().flatten() {
            ids.extend(event["attributes"]["unique_id"].as_str().map(str::to_owned));
        }
    }
    ids
}

struct Mounted {
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    polls: Arc<Mutex<u32>>,
    failing: Arc<Mutex<Vec<String>>>,
}

async fn mount(server: &MockServer, platform: Arc<MockPlatform>) -> Mounted {
    let mounted = Mounted { bodies: Arc::default(), polls: Arc::default(), failing: Arc::default() };
    let responder = Klaviyo {
        platform,
        spec: Arc::new(OpenApi::load("klaviyo/openapi-stable.json")),
        bodies: mounted.bodies.clone(),
        polls_before_complete: mounted.polls.clone(),
        failing_emails: mounted.failing.clone(),
    };
    Mock::given(wiremock::matchers::path_regex("^/api/.*")).respond_with(responder).mount(server).await;
    mounted
}

struct Harness;

#[async_trait]
impl SinkHarness for Harness {
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>) {
        mount(server, platform).await;
    }
    fn sink(&self, base_url: &str) -> Box<dyn Sink> {
        Box::new(sink(base_url, None))
    }
    fn id_of(&self, event: &Event) -> Option<String> {
        (SPEC.accepts(event.kind) && event.kind != EventKind::ProfileUpdated).then(|| event.key.to_string())
    }
}

#[tokio::test]
async fn klaviyo_passes_the_sink_conformance_suite() {
    run_sink_suite(&Harness).await;
}

fn order_events(history: bool) -> Vec<Event> {
    let mut order = sample_order("shop", 7, 3, epoch());
    order.location = Some(Location { id: "1".into(), name: Some("West Bolduc".into()) });
    order.lines[0].categories = vec!["Shirts".into()];
    let started = if history { jiff::Timestamp::now() } else { epoch() - jiff::SignedDuration::from_hours(1) };
    derive_events(Record::Order(order), &DeriveContext { pipeline_started_at: started })
        .into_iter()
        .filter(|event| SPEC.accepts(event.kind))
        .collect()
}

#[tokio::test]
async fn history_events_go_through_bulk_jobs_with_backfill_and_the_documented_properties() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    let events = order_events(true);
    let outcomes = sink(&server.uri(), None).deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    let bodies = mounted.bodies.lock().unwrap();
    let (route, body) = &bodies[0];
    assert_eq!(route, "/api/event-bulk-create-jobs");
    assert_eq!(bodies.len(), 1, "one job");
    // One entry per event, each naming its profile (the job may name one profile in several entries).
    let entries = body["data"]["attributes"]["events-bulk-create"]["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "placed + two ordered products");
    let mut events = Vec::new();
    for entry in entries {
        let entry = &entry["attributes"];
        assert_eq!(
            entry["profile"]["data"]["attributes"],
            json!({"email": "customer2@example.com", "external_id": "2"})
        );
        let mut of_entry = entry["events"]["data"].as_array().unwrap().clone();
        assert_eq!(of_entry.len(), 1);
        events.append(&mut of_entry);
    }
    let placed = &events[0]["attributes"];
    assert_eq!(placed["metric"]["data"]["attributes"]["name"], "Placed Order");
    assert_eq!(placed["backfill"], true);
    assert_eq!(placed["unique_id"], "fake:shop:order:7:placed");
    assert_eq!(placed["value"], json!(20));
    assert_eq!(placed["value_currency"], "USD");
    let mut keys: Vec<&str> = placed["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "Categories",
            "Discount Codes",
            "Email Domain",
            "Is Discounted",
            "Item Count",
            "Items",
            "OrderId",
            "Shop",
            "ShopID",
            "Total Discounts"
        ]
    );
    assert_eq!(placed["properties"]["Shop"], "West Bolduc");
    assert_eq!(placed["properties"]["Email Domain"], "example.com");
    let product = &events[1]["attributes"];
    assert_eq!(product["metric"]["data"]["attributes"]["name"], "Ordered Product");
    let mut keys: Vec<&str> = product["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["Category", "Email Domain", "Name", "OrderId", "Product ID", "Quantity"]);
    assert_eq!(product["properties"]["Category"], "Shirts");
}

#[tokio::test]
async fn live_events_go_one_by_one_without_backfill() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    let events = order_events(false);
    sink(&server.uri(), None).deliver(&events, false).await.unwrap();
    let bodies = mounted.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 3);
    for (route, body) in bodies.iter() {
        assert_eq!(route, "/api/events");
        assert!(body["data"]["attributes"].get("backfill").is_none());
        assert_eq!(body["data"]["attributes"]["profile"]["data"]["attributes"]["email"], "customer2@example.com");
    }
}

#[tokio::test]
async fn a_refused_bulk_job_is_retried_event_by_event_so_only_the_bad_one_is_dead_lettered() {
    let server = MockServer::start().await;
    let platform = Arc::new(MockPlatform::new());
    let mounted = mount(&server, platform.clone()).await;
    let events = order_events(true);
    platform.reject_id(events[1].key.to_string());
    let outcomes = sink(&server.uri(), None).deliver(&events, true).await.unwrap();
    assert_eq!(outcomes[0], ItemOutcome::Delivered);
    assert_eq!(outcomes[2], ItemOutcome::Delivered);
    match &outcomes[1] {
        ItemOutcome::Rejected { reason } => {
            assert!(reason.contains("invalid: 'value' must be a number (at /data/attributes/value)"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let routes: Vec<String> = mounted.bodies.lock().unwrap().iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(routes[0], "/api/event-bulk-create-jobs");
    assert!(routes[1..].iter().all(|r| r == "/api/events"), "{routes:?}");
    assert_eq!(platform.accepted().len(), 2);
}

fn profile_event(email: &str, phone: &str) -> Event {
    let mut customer = sample_customer("shop", 5, epoch());
    customer.person.email = Some(email.into());
    customer.person.phone = Some(phone.into());
    customer.person.company = Some("Example Corp".into());
    customer.person.address.city = Some("Lisbon".into());
    let started = jiff::Timestamp::now();
    derive_events(Record::Customer(customer), &DeriveContext { pipeline_started_at: started })
        .into_iter()
        .find(|e| e.kind == EventKind::ProfileUpdated)
        .unwrap()
}

#[tokio::test]
async fn live_profiles_are_upserted_and_only_new_ones_join_the_list_without_consent() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    let events =
        vec![profile_event("new@example.com", "+1 500-555-0006"), profile_event("old@example.com", "(555) 555")];
    let outcomes = sink(&server.uri(), Some("LIST1")).deliver(&events, false).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered));
    let bodies = mounted.bodies.lock().unwrap();
    let imports: Vec<&Value> = bodies.iter().filter(|(r, _)| r == "/api/profile-import").map(|(_, b)| b).collect();
    assert_eq!(imports.len(), 2);
    let new = imports.iter().find(|b| b["data"]["attributes"]["email"] == "new@example.com").unwrap();
    assert_eq!(new["data"]["attributes"]["phone_number"], "+15005550006");
    assert_eq!(new["data"]["attributes"]["external_id"], "5");
    assert_eq!(new["data"]["attributes"]["organization"], "Example Corp");
    assert_eq!(new["data"]["attributes"]["location"]["city"], "Lisbon");
    assert!(new["data"]["attributes"].get("subscriptions").is_none(), "nobody is subscribed");
    let old = imports.iter().find(|b| b["data"]["attributes"]["email"] == "old@example.com").unwrap();
    assert!(old["data"]["attributes"].get("phone_number").is_none(), "not E.164: not sent");
    let lists: Vec<&Value> = bodies.iter().filter(|(r, _)| r.starts_with("/api/lists/")).map(|(_, b)| b).collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0]["data"], json!([{"type": "profile", "id": "P-new@example.com"}]));
}

#[tokio::test]
async fn history_profiles_use_a_bulk_job_polled_to_completion_with_errors_per_item() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    *mounted.polls.lock().unwrap() = 2;
    mounted.failing.lock().unwrap().push("bad@example.com".into());
    let events = vec![profile_event("good@example.com", ""), profile_event("bad@example.com", "")];
    let outcomes = sink(&server.uri(), Some("LIST1")).deliver(&events, true).await.unwrap();
    assert_eq!(outcomes[0], ItemOutcome::Delivered);
    assert!(
        matches!(&outcomes[1], ItemOutcome::Rejected { reason } if reason.contains("Invalid email")),
        "{outcomes:?}"
    );
    let bodies = mounted.bodies.lock().unwrap();
    let (route, job) = &bodies[0];
    assert_eq!(route, "/api/profile-bulk-import-jobs");
    assert_eq!(job["data"]["relationships"]["lists"]["data"][0]["id"], "LIST1");
    assert_eq!(job["data"]["attributes"]["profiles"]["data"].as_array().unwrap().len(), 2);
    assert_eq!(*mounted.polls.lock().unwrap(), 0, "the job was polled until complete");
}

#[tokio::test]
async fn a_refused_key_is_a_configuration_error_in_one_readable_line() {
    let server = MockServer::start().await;
    mount(&server, Arc::new(MockPlatform::new())).await;
    let context = AccountContext::new("klaviyo", Arc::new(MemoryStore::new()));
    let mut sink = account(config(&server.uri(), "pk_wrong", None), &context);
    let error = sink.deliver(&order_events(false)[..1], false).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(error.message.contains("not_authenticated: Incorrect authentication credentials."), "{}", error.message);
    assert!(!error.message.contains("pk_wrong"));
}

/// The tiers the client keeps to are the spec's `x-klaviyo-ratelimit`.
#[test]
fn rate_tiers_match_the_spec() {
    use tillflow_sink_klaviyo::service::{EVENT_BULK_JOBS, EVENTS, LIST_PROFILES, PROFILE_BULK_JOBS, PROFILE_IMPORT};
    let spec = tillflow_testkit::openapi::contract_json("klaviyo/openapi-stable.json");
    for (path, tier) in [
        ("/api/events", EVENTS),
        ("/api/event-bulk-create-jobs", EVENT_BULK_JOBS),
        ("/api/profile-import", PROFILE_IMPORT),
        ("/api/profile-bulk-import-jobs", PROFILE_BULK_JOBS),
        ("/api/lists/{id}/relationships/profiles", LIST_PROFILES),
    ] {
        let limit = &spec["paths"][path]["post"]["x-klaviyo-ratelimit"];
        assert_eq!(limit["burst"], json!(format!("{}/s", tier.per_second)), "{path}");
        assert_eq!(limit["steady"], json!(format!("{}/m", tier.per_minute)), "{path}");
    }
}

/// A mock of the catalog job endpoints: bodies checked against the spec;
/// items whose `external_id` is in `existing` are reported by the finished
/// create job as already there.
struct Catalog {
    spec: Arc<OpenApi>,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    existing: Vec<String>,
}

impl Respond for Catalog {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let route = request.url.path().to_owned();
        if request.method.as_str() == "GET" {
            let job = route.rsplit('/').next().unwrap().to_owned();
            let bodies = self.bodies.lock().unwrap();
            let index: usize = job.trim_start_matches("job-").parse().unwrap();
            let items = bodies[index].1["data"]["attributes"]["items"]["data"].as_array().unwrap().clone();
            let errors: Vec<Value> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| {
                    item["attributes"]["external_id"].as_str().is_some_and(|id| self.existing.iter().any(|e| e == id))
                })
                .map(|(i, _)| json!({"id": "e", "code": "duplicate_catalog_item", "title": "Conflict", "detail": "A catalog item already exists", "source": {"pointer": format!("/data/attributes/items/data/{i}")}}))
                .collect();
            return ResponseTemplate::new(200).set_body_json(json!({"data": {"type": "catalog-item-bulk-create-job", "id": job, "attributes": {"status": "complete", "errors": errors, "total_count": items.len(), "completed_count": items.len(), "failed_count": errors.len()}}}));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if let Err(error) = self.spec.check_request("post", &route, &body) {
            panic!("request body violates the Klaviyo spec: {error}\n{body}");
        }
        let mut bodies = self.bodies.lock().unwrap();
        bodies.push((route, body));
        ResponseTemplate::new(202).set_body_json(
            json!({"data": {"type": "catalog-item-bulk-create-job", "id": format!("job-{}", bodies.len() - 1)}}),
        )
    }
}

fn product_events(count: u64, update: bool) -> Vec<Event> {
    use tillflow_core::model::{ChangeKind, Currency, Money, Product, SourceIdentity};
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    (1..=count)
        .flat_map(|n| {
            let product = Product {
                identity: SourceIdentity {
                    platform: "dutchie".into(),
                    source: "shop".into(),
                    id: n.to_string().into(),
                },
                change: ChangeKind::Updated,
                sku: Some(format!("SKU-{n}").into()),
                name: format!("Blue Dream {n}g").into(),
                description: (n % 2 == 0).then(|| "A sativa-leaning hybrid".into()),
                price: Some(Money::new(rust_decimal::Decimal::new(2500, 2), Currency::new("USD").unwrap())),
                categories: vec!["Flower".into()],
                brand: Some("Acme".into()),
                image_url: Some(format!("https://img.example/{n}.png").into()),
                active: true,
                updated_at: epoch(),
                properties: [("strain".to_owned(), json!("Blue Dream"))].into_iter().collect(),
            };
            derive_events(Record::Product(product), &context)
        })
        .map(|event| Event { update, ..event })
        .collect()
}

#[tokio::test]
async fn catalog_items_are_created_in_jobs_updated_when_changed_and_an_existing_one_updated_instead() {
    let server = MockServer::start().await;
    let bodies: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let responder = Catalog {
        spec: Arc::new(OpenApi::load("klaviyo/openapi-stable.json")),
        bodies: bodies.clone(),
        existing: vec!["3".into()],
    };
    Mock::given(wiremock::matchers::path_regex("^/api/catalog-item-bulk-.*"))
        .respond_with(responder)
        .mount(&server)
        .await;
    let mut sink = sink(&server.uri(), None);
    let events = product_events(5, false);
    assert!(events.iter().all(|e| e.kind == EventKind::CatalogItem));
    let outcomes = sink.deliver(&events, true).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    {
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies[0].0, "/api/catalog-item-bulk-create-jobs");
        let items = bodies[0].1["data"]["attributes"]["items"]["data"].as_array().unwrap().clone();
        assert_eq!(items.len(), 5, "one job");
        let first = &items[0]["attributes"];
        assert_eq!(first["external_id"], "1");
        assert_eq!(first["url"], "https://shop.example.com/products/1", "the operator's template");
        assert_eq!(first["description"], "Blue Dream 1g", "never empty: the title stands in");
        assert_eq!(items[1]["attributes"]["description"], "A sativa-leaning hybrid");
        assert_eq!(first["custom_metadata"]["strain"], "Blue Dream");
        assert_eq!(first["custom_metadata"]["brand"], "Acme");
        // The item Klaviyo already had went to an update job of its own.
        assert_eq!(bodies.len(), 2, "{:?}", bodies.iter().map(|(r, _)| r).collect::<Vec<_>>());
        assert_eq!(bodies[1].0, "/api/catalog-item-bulk-update-jobs");
        assert_eq!(bodies[1].1["data"]["attributes"]["items"]["data"][0]["id"], "$custom:::$default:::3");
    }
    // A product the sink sent before and that changed: an update job.
    let changed = product_events(2, true);
    sink.deliver(&changed, false).await.unwrap();
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.last().unwrap().0, "/api/catalog-item-bulk-update-jobs");
    assert_eq!(bodies.last().unwrap().1["data"]["attributes"]["items"]["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn without_catalog_the_sink_takes_no_catalog_items() {
    let context = AccountContext::new("klaviyo", Arc::new(MemoryStore::new()));
    let mut off = config("http://127.0.0.1:9", "pk_test", None);
    off.catalog = false;
    let sink = account(off, &context);
    assert!(!sink.accepts(EventKind::CatalogItem));
    assert!(sink.accepts(EventKind::Placed));
    let mut missing = config("http://127.0.0.1:9", "pk_test", None);
    missing.catalog_url = None;
    let problem = missing.validate().unwrap_err();
    assert!(problem.to_string().starts_with("catalog_url: is required with `catalog = true`"), "{problem}");
}

#[tokio::test]
async fn a_source_s_own_integration_properties_are_the_events_and_profiles_properties_and_coupons_send_no_product() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    let mut order = sample_order("shop", 7, 3, epoch());
    order.lines.truncate(1);
    order.properties = [
        ("OrderId".to_owned(), json!("1001")),
        ("locationName".to_owned(), json!("Downtown")),
        ("transactionType".to_owned(), json!("Retail")),
        ("items".to_owned(), json!([{"productId": "321"}])),
    ]
    .into_iter()
    .collect();
    order.lines[0].properties =
        [("strain".to_owned(), json!("Blue Dream")), ("locationName".to_owned(), json!("Downtown"))]
            .into_iter()
            .collect();
    let mut coupon = order.lines[0].clone();
    coupon.line_id = "coupon".into();
    coupon.coupon = true;
    order.lines.push(coupon);
    let events: Vec<Event> = order_events_of(order, false);
    let outcomes = sink(&server.uri(), None).deliver(&events, false).await.unwrap();
    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, ItemOutcome::Skipped { reason } if reason == "coupon line")).count(),
        1
    );
    {
        let bodies = mounted.bodies.lock().unwrap();
        let placed = &bodies
            .iter()
            .find(|(_, b)| b["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == "Placed Order")
            .unwrap()
            .1;
        let mut keys: Vec<&str> =
            placed["data"]["attributes"]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["OrderId", "items", "locationName", "transactionType"], "exactly the integration's names");
        let products: Vec<_> = bodies
            .iter()
            .filter(|(_, b)| b["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == "Ordered Product")
            .collect();
        assert_eq!(products.len(), 1, "the coupon line sends no Ordered Product");
        assert_eq!(
            products[0].1["data"]["attributes"]["properties"],
            json!({"strain": "Blue Dream", "locationName": "Downtown"})
        );
    }

    let mut customer = sample_customer("shop", 5, epoch());
    customer.properties = [("Dutchie customerId".to_owned(), json!(555))].into_iter().collect();
    let profile =
        derive_events(Record::Customer(customer), &DeriveContext { pipeline_started_at: jiff::Timestamp::now() })
            .into_iter()
            .find(|e| e.kind == EventKind::ProfileUpdated)
            .unwrap();
    sink(&server.uri(), None).deliver(&[profile], false).await.unwrap();
    let bodies = mounted.bodies.lock().unwrap();
    let imported = &bodies.iter().find(|(r, _)| r == "/api/profile-import").unwrap().1;
    assert_eq!(imported["data"]["attributes"]["properties"], json!({"Dutchie customerId": 555}));
}

fn order_events_of(order: tillflow_core::model::Order, history: bool) -> Vec<Event> {
    let started = if history { jiff::Timestamp::now() } else { epoch() - jiff::SignedDuration::from_hours(1) };
    derive_events(Record::Order(order), &DeriveContext { pipeline_started_at: started })
        .into_iter()
        .filter(|event| SPEC.accepts(event.kind))
        .collect()
}

fn customer_events(email: &str, accepts: bool, group: Option<&str>, history: bool) -> Vec<Event> {
    let mut customer = sample_customer("shop", 7, epoch());
    customer.person.email = Some(email.into());
    customer.accepts_marketing = Some(accepts);
    customer.group = group.map(Into::into);
    customer.consent_changed_at = Some(epoch());
    customer.group_changed_at = Some(epoch());
    let started = if history { jiff::Timestamp::now() } else { epoch() - jiff::SignedDuration::from_hours(1) };
    derive_events(Record::Customer(customer), &DeriveContext { pipeline_started_at: started })
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ConsentChanged | EventKind::GroupChanged))
        .collect()
}

#[tokio::test]
async fn synced_consent_and_group_lists_send_the_spec_s_subscription_jobs_and_list_changes() {
    let server = MockServer::start().await;
    let mounted = mount(&server, Arc::new(MockPlatform::new())).await;
    let mut config = config(&server.uri(), "pk_test", Some("LIST1"));
    config.marketing_consent = tillflow_sink_klaviyo::config::MarketingConsent::Sync;
    config.group_lists = [("VIP".to_owned(), "LVIP".to_owned()), ("Students".to_owned(), "LSTU".to_owned())].into();
    let context = AccountContext::new("klaviyo", Arc::new(MemoryStore::new())).with_tuning(HttpTuning::fast());
    let mut sink = account(config, &context);
    let mut events = customer_events("in@example.com", true, Some("VIP"), true);
    events.extend(customer_events("out@example.com", false, None, false));
    assert_eq!(events.len(), 4, "a consent and a group event each");
    for history in [true, false] {
        let batch: Vec<Event> = events.iter().filter(|e| e.history == history).cloned().collect();
        let outcomes = sink.deliver(&batch, history).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == ItemOutcome::Delivered), "{outcomes:?}");
    }
    let bodies = mounted.bodies.lock().unwrap();
    let at =
        |route: &str| -> Vec<Value> { bodies.iter().filter(|(r, _)| r == route).map(|(_, b)| b.clone()).collect() };
    // Every body passed the spec's request schema in the mock.
    let subscribe = at("/api/profile-subscription-bulk-create-jobs");
    assert_eq!(subscribe.len(), 1);
    let attributes = &subscribe[0]["data"]["attributes"];
    assert_eq!(attributes["historical_import"], json!(true), "the first import's opt-in is historical");
    let profile = &attributes["profiles"]["data"][0]["attributes"];
    assert_eq!(profile["email"], "in@example.com");
    assert_eq!(profile["subscriptions"]["email"]["marketing"]["consent"], "SUBSCRIBED");
    assert!(profile["subscriptions"]["email"]["marketing"]["consented_at"].is_string());
    assert_eq!(subscribe[0]["data"]["relationships"]["list"]["data"]["id"], "LIST1");
    let unsubscribe = at("/api/profile-subscription-bulk-delete-jobs");
    assert_eq!(unsubscribe.len(), 1);
    let profile = &unsubscribe[0]["data"]["attributes"]["profiles"]["data"][0]["attributes"];
    assert_eq!(
        (profile["email"].as_str(), profile["subscriptions"]["email"]["marketing"]["consent"].as_str()),
        (Some("out@example.com"), Some("UNSUBSCRIBED"))
    );
    assert!(unsubscribe[0]["data"].get("relationships").is_none(), "no list: unsubscribed from email marketing");
    // VIP joined (and Students left) for in@; both left for out@ (no group).
    let vip = at("/api/lists/LVIP/relationships/profiles");
    let students = at("/api/lists/LSTU/relationships/profiles");
    assert_eq!(vip.len(), 2, "in@ added, out@ removed");
    assert_eq!(students.len(), 2, "both removed");
    assert_eq!(vip[0]["data"], json!([{"type": "profile", "id": "P-in@example.com"}]));
}

#[tokio::test]
async fn forgetting_asks_klaviyo_for_a_data_privacy_deletion_job_in_the_documented_shape() {
    use tillflow_kit::SinkAccount;
    let server = MockServer::start().await;
    let spec = OpenApi::load("klaviyo/openapi-stable.json");
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/api/data-privacy-deletion-jobs"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let report = sink(&server.uri(), None).forget("ana@example.com").await.unwrap();
    assert!(report.known && report.answered.contains("202"), "{report:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    spec.check_request("post", "/api/data-privacy-deletion-jobs", &body).unwrap();
    assert_eq!(body["data"]["attributes"]["profile"]["data"]["attributes"], json!({"email": "ana@example.com"}));
    assert_eq!(requests[0].headers.get("revision").unwrap(), tillflow_sink_klaviyo::REVISION);
}

#[cfg(feature = "sandbox")]
#[tokio::test]
async fn the_sandbox_deletes_the_profile_and_its_events() {
    use tillflow_kit::SinkAccount;
    use tillflow_kit::sandbox::Sandbox;
    let sandbox = tillflow_sink_klaviyo::sandbox::KlaviyoSandbox::start("pk_test").await.unwrap();
    let mut sink = sink(&sandbox.base_url(), None);
    let order = sample_order("shop", 1, 1, epoch());
    let email = order.person.email.clone().unwrap();
    let context = DeriveContext { pipeline_started_at: epoch() };
    let events: Vec<Event> =
        derive_events(Record::Order(order), &context).into_iter().filter(|e| SPEC.accepts(e.kind)).collect();
    sink.deliver(&events, false).await.unwrap();
    let held = |email: &str| {
        let world = sandbox.world();
        let world = world.lock().unwrap();
        world.events.iter().filter(|event| event.email.as_deref() == Some(email)).count()
    };
    assert!(held(&email) > 0);
    sink.forget(&email).await.unwrap();
    assert_eq!(held(&email), 0);
    let world = sandbox.world();
    let world = world.lock().unwrap();
    assert_eq!(world.deletion_jobs, 1);
    assert!(!world.profiles.contains_key(email.as_str()));
}
