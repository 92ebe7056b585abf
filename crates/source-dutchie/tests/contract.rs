//! Contract tests for the Dutchie source: the kit's source conformance suite
//! against a mock shaped by the POS API's OpenAPI document (transactions by
//! last-modified window, no paging), then the sandbox: every child location
//! read and unified, the properties of Klaviyo's Dutchie integration, no
//! medical field anywhere, a late-visible transaction caught by the next
//! window's overlap, a 503 kill switch that moves nothing, keys named by
//! position (never by value) and roles by name.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tillflow_core::model::{OrderStatus, Record};
use tillflow_core::source::{Checkpoint, Source};
use tillflow_core::{ErrorClass, StateStore};
use tillflow_http::SecretString;
use tillflow_kit::sandbox::Sandbox;
use tillflow_kit::{AccountContext, HttpTuning, SourceAccount};
use tillflow_source_dutchie::config::LocationKey;
use tillflow_source_dutchie::sandbox::{DutchieSandbox, FOREIGN_KEY, LOCATIONS, MEDICAL_MARKERS, NO_REPORTING_KEY};
use tillflow_source_dutchie::{DutchieAccount, DutchieConfig};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::source_suite::{DeadLetterSample, SourceHarness, WebhookSample, run_source_suite};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn config(base_url: &str, keys: &[&str]) -> DutchieConfig {
    DutchieConfig {
        locations: keys.iter().map(|key| LocationKey { api_key: SecretString::from(*key) }).collect(),
        base_url: base_url.to_owned(),
        poll_interval: tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(300)),
        overlap: tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(600)),
        history_start: Some(three_days_ago()),
        transaction_types: vec!["Retail".into()],
        currency: "USD".into(),
        reporting_per_minute: 60_000,
        customers_per_minute: 60_000,
    }
}

/// The sandbox seeds the last two days.
fn three_days_ago() -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72)).to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
}

fn account_with(config: DutchieConfig, state: Arc<dyn StateStore>) -> DutchieAccount {
    let context = AccountContext::new("dispensary", state).with_tuning(HttpTuning::fast());
    DutchieAccount::open(config, &context)
}

/// The mock's transactions: `count` of them, six hours apart, from 2024-01-01.
fn mock_transaction(n: usize) -> Value {
    let at = jiff::Timestamp::from_second(1_704_067_200 + n as i64 * 6 * 3600).unwrap();
    let when = at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    json!({
        "TransactionId": n, "customerID": 1, "transactionDate": when, "lastModifiedDateUTC": when,
        "isVoid": false, "isReturn": false, "transactionType": "Retail", "subtotal": 10.0, "totalDiscount": 0.0,
        "tax": 0.0, "total": 10.0,
        "items": [{"transactionItemId": 1, "productId": 3, "quantity": 1.0, "unitPrice": 10.0, "totalPrice": 10.0, "totalDiscount": 0.0, "isCoupon": false}]
    })
}

/// A mock Dutchie: one location, Basic auth with the key `k1` and an empty
/// password, transactions filtered by the last-modified window.
struct Mock1 {
    count: usize,
}

impl Respond for Mock1 {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        if auth != "Basic azE6" {
            return ResponseTemplate::new(401);
        }
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let time = |key: &str| query.get(key).and_then(|t| t.parse::<jiff::Timestamp>().ok());
        match request.url.path() {
            "/whoami" => ResponseTemplate::new(200)
                .set_body_json(json!({"locationId": 5, "locationName": "Mock", "lspId": 1, "lspName": "Mock Co"})),
            "/reporting/products" => ResponseTemplate::new(200).set_body_json(json!([{"productId": 3, "productName": "Gummies", "brandName": "Acme"}])),
            "/customer/customers" => ResponseTemplate::new(200).set_body_json(json!([{"customerId": 1, "emailAddress": "ann@example.com", "lastModifiedDateUTC": "2023-06-01T00:00:00"}])),
            "/reporting/transactions" => {
                assert!(!query.contains_key("FromDateUTC") && !query.contains_key("TransactionId"), "mutually exclusive filters");
                assert_eq!(query.get("IncludeDetail").map(String::as_str), Some("true"));
                let (from, to) = (time("FromLastModifiedDateUTC").unwrap(), time("ToLastModifiedDateUTC").unwrap());
                assert!(to.duration_since(from) <= jiff::SignedDuration::from_hours(24), "windows of a day at most");
                let records: Vec<Value> = (1..=self.count)
                    .map(mock_transaction)
                    .filter(|t| {
                        let at: jiff::civil::DateTime = t["lastModifiedDateUTC"].as_str().unwrap().parse().unwrap();
                        let at = at.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp();
                        at >= from && at <= to
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(records))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

struct Harness;

#[async_trait::async_trait]
impl SourceHarness for Harness {
    fn stream(&self) -> &str {
        "transactions"
    }
    async fn mount(&self, server: &MockServer, count: usize) -> Vec<String> {
        Mock::given(wiremock::matchers::any()).respond_with(Mock1 { count }).mount(server).await;
        (1..=count).map(|n| format!("5-{n}")).collect()
    }
    fn count(&self) -> usize {
        40
    }
    fn account(&self, base_url: &str, state: Arc<dyn StateStore>) -> Arc<dyn SourceAccount> {
        let mut config = config(base_url, &["k1"]);
        config.history_start = Some("2024-01-01".into());
        Arc::new(account_with(config, state))
    }
    fn webhook(&self) -> Option<WebhookSample> {
        None
    }
    fn dead_letter(&self) -> DeadLetterSample {
        DeadLetterSample {
            stream: "transactions".into(),
            raw: json!({"locationId": "5", "record": mock_transaction(7)}),
            id: "5-7".into(),
        }
    }
}

#[tokio::test]
async fn dutchie_passes_the_source_conformance_suite() {
    run_source_suite(&Harness).await;
}

/// Every record of every stream, one full pass.
async fn read_all(source: &mut dyn Source, checkpoints: &mut HashMap<String, Option<Checkpoint>>) -> Vec<Record> {
    let mut records = Vec::new();
    for stream in source.streams() {
        loop {
            let checkpoint = checkpoints.get(&stream).cloned().flatten();
            let page = source.read(&stream, checkpoint.as_ref()).await.unwrap();
            for item in page.items {
                records.push(item.unwrap_or_else(|bad| panic!("bad record: {}", bad.reason)));
            }
            checkpoints.insert(stream.clone(), Some(page.checkpoint));
            if page.last {
                break;
            }
        }
    }
    records
}

fn sandbox_keys() -> Vec<&'static str> {
    LOCATIONS.iter().map(|(_, _, key)| *key).collect()
}

#[tokio::test]
async fn every_location_is_read_with_the_integration_s_properties_and_no_medical_field() {
    let sandbox = DutchieSandbox::start().await.unwrap();
    sandbox.seed(30, 120);
    sandbox.world().lock().unwrap().reporting_per_minute = 0;
    let account = account_with(config(&sandbox.base_url(), &sandbox_keys()), Arc::new(MemoryStore::new()));
    let records = read_all(account.reader().as_mut(), &mut HashMap::new()).await;

    let all = serde_json::to_string(&records).unwrap();
    for marker in MEDICAL_MARKERS {
        assert!(!all.contains(marker), "a medical or identity field was read: {marker}");
    }
    let orders: Vec<_> = records.iter().filter_map(|r| if let Record::Order(o) = r { Some(o) } else { None }).collect();
    for (id, name, _) in LOCATIONS {
        assert!(
            orders.iter().any(|o| o.location.as_ref().is_some_and(|l| l.id == id.to_string())),
            "location {name} read"
        );
    }
    let order =
        orders.iter().find(|o| o.identity.id == "102-1").expect("transaction 1 at Airport, id carrying its location");
    assert_eq!(order.properties["locationName"], "Airport");
    assert_eq!(order.properties["OrderId"], 1);
    assert_eq!(order.properties["transactionType"], "Retail");
    assert!(order.properties["items"].as_array().is_some_and(|items| !items.is_empty()));
    let line = &order.lines[0].properties;
    for key in [
        "strain",
        "strainType",
        "brandName",
        "transactionId",
        "productId",
        "packageId",
        "locationName",
        "customerId",
        "transactionDate",
        "productName",
        "category",
    ] {
        assert!(line.contains_key(key), "Ordered Product lacks {key}: {line:?}");
    }
    assert_eq!(order.placed_at.to_string().len(), 20, "a UTC time");
    // Transfers and wholesale orders are counted as skipped, not sent.
    let transfer = orders.iter().find(|o| o.identity.id == "103-17").unwrap();
    assert_eq!(transfer.excluded.as_deref(), Some("transaction type not configured"));
    let voided = orders.iter().find(|o| o.identity.id == "103-23").unwrap();
    assert_eq!(voided.status, OrderStatus::Cancelled);
    let refund = records.iter().find_map(|r| if let Record::Refund(r) = r { Some(r) } else { None }).expect("a return");
    assert!(
        refund.order_id.starts_with(&format!("{}-", refund.identity.id.split('-').next().unwrap())),
        "same location"
    );
    // One person at two locations: one email, read case-insensitively.
    let twins: Vec<_> = records
        .iter()
        .filter_map(|r| if let Record::Customer(c) = r { Some(c) } else { None })
        .filter(|c| c.person.email.as_deref() == Some("customer1@example.com"))
        .collect();
    assert_eq!(twins.len(), 2, "customer 1 at Airport and its twin");
    assert_eq!(twins[0].properties["Dutchie customerType"], "Adult Use");
    assert!(twins.iter().all(|c| c.person.customer_id.is_none()), "people are matched by email across locations");
    // The catalog once, whatever the number of locations; no coupon in it.
    let products: Vec<_> =
        records.iter().filter_map(|r| if let Record::Product(p) = r { Some(p) } else { None }).collect();
    assert_eq!(products.len(), 19);
}

#[tokio::test]
async fn a_transaction_dutchie_shows_late_is_read_by_the_next_window_s_overlap() {
    let sandbox = DutchieSandbox::start().await.unwrap();
    sandbox.seed(9, 9);
    sandbox.world().lock().unwrap().reporting_per_minute = 0;
    let account = account_with(config(&sandbox.base_url(), &sandbox_keys()), Arc::new(MemoryStore::new()));
    let mut checkpoints = HashMap::new();
    read_all(account.reader().as_mut(), &mut checkpoints).await;
    let (_, mut late) = tillflow_source_dutchie::sandbox::seeded_transaction(2, 9, jiff::Timestamp::now());
    late["transactionId"] = json!(777);
    sandbox.ring_up(LOCATIONS[2].0, late, false);
    let second = read_all(account.reader().as_mut(), &mut checkpoints).await;
    assert!(!second.iter().any(|r| r.identity().id == "103-777"), "not visible yet");
    sandbox.reveal();
    let third = read_all(account.reader().as_mut(), &mut checkpoints).await;
    assert!(third.iter().any(|r| r.identity().id == "103-777"), "the overlap caught it");
}

#[tokio::test]
async fn a_kill_switch_503_moves_nothing_and_the_next_read_goes_on() {
    let sandbox = DutchieSandbox::start().await.unwrap();
    sandbox.seed(9, 9);
    sandbox.world().lock().unwrap().reporting_per_minute = 0;
    let account = account_with(config(&sandbox.base_url(), &sandbox_keys()), Arc::new(MemoryStore::new()));
    let mut source = account.reader();
    let mut checkpoints = HashMap::new();
    let first = source.read("transactions", None).await.unwrap();
    checkpoints.insert("transactions".to_owned(), Some(first.checkpoint.clone()));
    sandbox.faults().inject_next(tillflow_http::sandbox::Fault::ServerError(503), 100);
    let error = source.read("transactions", Some(&first.checkpoint)).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient);
    assert!(error.message.contains("503"), "{}", error.message);
    sandbox.faults().set_plan(tillflow_http::sandbox::FaultPlan::none());
    let again = source.read("transactions", Some(&first.checkpoint)).await.expect("read again from the same place");
    assert_ne!(again.checkpoint, first.checkpoint, "and on from there");
}

#[tokio::test]
async fn keys_are_named_by_position_never_by_value_and_a_missing_role_by_name() {
    let sandbox = DutchieSandbox::start().await.unwrap();
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let foreign = account_with(config(&sandbox.base_url(), &["dk-downtown", FOREIGN_KEY]), state.clone());
    let error = foreign.check().await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(
        error.message.starts_with("sources.dispensary.locations[1].api_key: this key's location belongs to parent 9"),
        "{}",
        error.message
    );
    let wrong = account_with(config(&sandbox.base_url(), &["dk-downtown", "dk-wrong-secret-value"]), state.clone());
    let error = wrong.check().await.unwrap_err();
    assert!(error.message.contains("locations[1].api_key") && error.message.contains("401"), "{}", error.message);
    assert!(!error.message.contains("dk-wrong-secret-value"), "the key's value never shows");
    let no_role = account_with(config(&sandbox.base_url(), &[NO_REPORTING_KEY]), state);
    let error = no_role.check().await.unwrap_err();
    assert!(error.message.contains("lacks Dutchie's Reporting role"), "{}", error.message);
}

#[test]
fn a_429_waits_for_the_next_minute_and_config_errors_name_their_key() {
    use tillflow_source_dutchie::client::until_next_minute;
    assert_eq!(until_next_minute(0).as_secs(), 61);
    assert_eq!(until_next_minute(45).as_secs(), 16);
    assert_eq!(until_next_minute(59).as_secs(), 2);
    let mut bad = config("https://api.pos.dutchie.com", &["k"]);
    bad.history_start = Some("last year".into());
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "history_start: `last year` is not a date such as \"2024-01-01\""
    );
    let mut none = config("https://api.pos.dutchie.com", &[]);
    none.history_start = None;
    assert!(none.validate().unwrap_err().to_string().starts_with("locations: name at least one location"));
}

#[tokio::test]
async fn a_later_run_that_reads_a_few_changed_products_still_knows_every_product_of_its_sales() {
    let sandbox = DutchieSandbox::start().await.unwrap();
    sandbox.seed(9, 9);
    sandbox.world().lock().unwrap().reporting_per_minute = 0;
    let keys = sandbox_keys();
    let mut checkpoints = HashMap::new();
    let first = account_with(config(&sandbox.base_url(), &keys), Arc::new(MemoryStore::new()));
    read_all(first.reader().as_mut(), &mut checkpoints).await;
    // One product changed since; a sale of another one is rung up.
    {
        let world = sandbox.world();
        let mut world = world.lock().unwrap();
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S").to_string();
        world.products[2]["lastModifiedDateUTC"] = json!(now);
    }
    let (_, mut sale) = tillflow_source_dutchie::sandbox::seeded_transaction(4, 9, jiff::Timestamp::now());
    sale["transactionId"] = json!(4242);
    sale["items"] = json!([{"transactionItemId": 1, "productId": 5, "quantity": 1.0, "unitPrice": 15.0, "totalPrice": 15.0, "totalDiscount": 0.0, "isCoupon": false}]);
    sandbox.ring_up(LOCATIONS[1].0, sale, true);
    // A new run: a new reader, its caches empty.
    let second = account_with(config(&sandbox.base_url(), &keys), Arc::new(MemoryStore::new()));
    let records = read_all(second.reader().as_mut(), &mut checkpoints).await;
    let order = records
        .iter()
        .find_map(|r| match r {
            Record::Order(o) if o.identity.id == "102-4242" => Some(o),
            _ => None,
        })
        .expect("the new sale");
    assert_eq!(order.lines[0].properties["brandName"], "Brand 1", "product 5 is known though only product 3 changed");
}
