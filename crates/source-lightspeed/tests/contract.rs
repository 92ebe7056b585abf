//! Contract tests against a mock Lightspeed R-Series, from the official
//! examples (sale_277 and its refund sale_282) in shared/contracts/lightspeed-r.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::model::{Channel, OrderStatus, Record};
use tillflow_core::source::{Checkpoint, Source};
use tillflow_core::{ErrorClass, StateStore};
use tillflow_http::SecretString;
use tillflow_kit::{AccountContext, HttpTuning, SourceAccount};
use tillflow_source_lightspeed::{LightspeedAccount, LightspeedConfig, LightspeedSource};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::openapi::contract_json;
use tillflow_testkit::source_suite::{DeadLetterSample, SourceHarness, WebhookSample, run_source_suite};
use wiremock::matchers::{body_partial_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCOUNT: &str = "/API/V3/Account/123";

fn config(server: &MockServer) -> LightspeedConfig {
    config_for(&server.uri())
}

fn config_for(base_url: &str) -> LightspeedConfig {
    LightspeedConfig {
        account_id: "123".into(),
        client_id: "client".into(),
        client_secret: SecretString::from("secret"),
        refresh_token: SecretString::from("rt-config"),
        poll_interval: tillflow_core::duration::HumanDuration(Duration::from_secs(3600)),
        base_url: base_url.to_owned(),
        token_url: format!("{base_url}/auth/oauth/token"),
        currency: "USD".into(),
    }
}

fn account(server: &MockServer, store: Arc<dyn StateStore>) -> LightspeedAccount {
    let context = AccountContext::new("store", store).with_tuning(HttpTuning::fast());
    let currency = tillflow_core::model::Currency::new("USD").unwrap();
    LightspeedAccount::open(config(server), currency, &context)
}

fn source(server: &MockServer, store: Arc<MemoryStore>) -> LightspeedSource {
    account(server, store).source()
}

fn example(name: &str) -> Value {
    contract_json(&format!("lightspeed-r/examples/{name}"))
}

/// Token endpoint that rotates: each refresh token is good once and yields the next.
struct Rotating;
impl Respond for Rotating {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["grant_type"], "refresh_token");
        assert_eq!(body["client_id"], "client");
        assert_eq!(body["client_secret"], "secret");
        let given = body["refresh_token"].as_str().unwrap();
        let next = match given {
            "rt-config" => "rt-2",
            "rt-2" => "rt-3",
            _ => {
                return ResponseTemplate::new(400).set_body_json(
                    json!({"error": "invalid_grant", "error_description": "The refresh token is invalid."}),
                );
            }
        };
        ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer", "expires_in": 1800, "access_token": format!("at-{next}"), "refresh_token": next}))
    }
}

async fn mount_basics(server: &MockServer) {
    Mock::given(method("POST")).and(path("/auth/oauth/token")).respond_with(Rotating).mount(server).await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Category.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(example("category_list.json")))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Shop.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"@attributes": {"next": "", "previous": ""}, "Shop": {"shopID": "1", "name": "West Bolduc"}}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/SaleLine/275.json")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"@attributes": {"count": "1"}, "SaleLine": {"saleLineID": "275", "saleID": "277"}}),
            ),
        )
        .mount(server)
        .await;
}

fn sale_with_customer() -> Value {
    let mut sale = example("sale_277_completed_with_relations.json")["Sale"].clone();
    sale["Customer"]["Contact"] = json!({
        "noEmail": "false",
        "Emails": {"ContactEmail": {"address": "bram@example.com", "useType": "Primary"}},
        "Phones": {"ContactPhone": [{"number": "+1 500 555 0006", "useType": "Mobile"}, {"number": "555-1234", "useType": "Home"}]},
        "Addresses": {"ContactAddress": {"address1": "1 Main", "city": "Montreal", "stateCode": "QC", "zip": "H2X", "countryCode": "CA"}}
    });
    sale["SaleLines"]["SaleLine"][0]["Item"] =
        json!({"itemID": "12", "description": "Blue Shirt", "categoryID": "1", "customSku": "BS-1"});
    sale
}

#[tokio::test]
async fn sales_are_read_with_the_documented_query_and_next_is_followed_verbatim() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    let next = format!("{}{ACCOUNT}/Sale.json?after=WzEwMF0%3D&limit=100", server.uri());
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .and(query_param("sort", "timeStamp"))
        .and(query_param("limit", "100"))
        .and(query_param("load_relations", r#"["SaleLines","SaleLines.Item","SaleLines.Discount","SalePayments","Customer","Customer.Contact","ShipTo","Discount"]"#))
        .and(query_param_is_missing("after"))
        .and(query_param_is_missing("timeStamp"))
        .and(header("authorization", "Bearer at-rt-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"@attributes": {"next": next, "previous": ""}, "Sale": sale_with_customer()})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .and(query_param("after", "WzEwMF0="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"@attributes": {"next": "", "previous": ""}, "Sale": [example("sale_282_full_refund.json")["Sale"].clone()]})))
        .expect(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let mut source = source(&server, store.clone());
    let first = source.read("sales", None).await.unwrap();
    assert!(!first.last);
    let Ok(Record::Order(order)) = &first.items[0] else { panic!("{:?}", first.items[0]) };
    assert_eq!(order.identity.id, "277");
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.channel, Channel::InStore);
    assert_eq!(order.totals.total.amount.to_string(), "34.48");
    assert_eq!(order.totals.tax.amount.to_string(), "4.49");
    assert_eq!(order.location.as_ref().unwrap().name.as_deref(), Some("West Bolduc"));
    assert_eq!(order.register_id.as_deref(), Some("5"));
    assert_eq!(order.created_at.to_string(), "2016-11-10T13:51:54Z");
    assert_eq!(order.lines.len(), 2, "SaleLine as an array");
    assert_eq!(order.lines[0].name, "Blue Shirt");
    assert_eq!(order.lines[0].categories, vec!["Accesories".to_string()]);
    assert_eq!(order.lines[0].sku.as_deref(), Some("BS-1"));
    assert_eq!(order.person.customer_id.as_deref(), Some("8"));
    assert_eq!(order.person.email.as_deref(), Some("bram@example.com"));
    assert_eq!(order.person.phone.as_deref(), Some("+1 500 555 0006"), "the mobile number first");
    assert_eq!(order.person.address.country.as_deref(), Some("CA"));

    let second = source.read("sales", Some(&first.checkpoint)).await.unwrap();
    assert!(second.last);
    let Ok(Record::Refund(refund)) = &second.items[0] else { panic!("{:?}", second.items[0]) };
    assert_eq!(refund.identity.id, "282");
    assert_eq!(refund.order_id, "277", "the refund points at the sale its lines came from");
    assert_eq!(refund.amount.amount.to_string(), "34.48");
    assert_eq!(refund.lines.len(), 2);
    // The next pass starts at the newest timeStamp seen.
    assert_eq!(second.checkpoint.0["since"], "2016-11-10T14:07:38+00:00");
    assert_eq!(store.secret_get("lightspeed:store", "refresh_token").await.unwrap().as_deref(), Some("rt-2"));
}

/// A next-page link is followed verbatim, so where it leads decides where
/// the bearer token goes: a checkpoint edited (or an answer forged) to lead
/// elsewhere must not carry the token there.
#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_the_token_never_sent_there() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Sale": []})))
        .mount(&elsewhere)
        .await;
    let planted = format!("{}{ACCOUNT}/Sale.json?after=WzEwMF0%3D&limit=100", elsewhere.uri());
    let checkpoint = Checkpoint(json!({"v": 1, "next": planted}));
    let mut source = source(&server, Arc::new(MemoryStore::new()));
    let error = source.read("sales", Some(&checkpoint)).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config, "{error}");
    assert!(error.message.contains("leads away from this account's API"), "{error}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "nothing was sent to the other origin");

    // The same from an answer: the next link it gives is not followed off the API.
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Customer.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"@attributes": {"next": planted.replace("Sale", "Customer")}, "Customer": []})),
        )
        .mount(&server)
        .await;
    let first = source.read("customers", None).await.unwrap();
    let error = source.read("customers", Some(&first.checkpoint)).await.unwrap_err();
    assert!(error.message.contains("leads away from this account's API"), "{error}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "nothing was sent to the other origin");
}

#[tokio::test]
async fn the_incremental_filter_encodes_the_operator_and_the_plus() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"@attributes": {"next": "", "previous": ""}})))
        .mount(&server)
        .await;
    let mut source = source(&server, Arc::new(MemoryStore::new()));
    let checkpoint = Checkpoint(json!({"v": 1, "since": "2024-01-01T00:00:00+00:00"}));
    let page = source.read("sales", Some(&checkpoint)).await.unwrap();
    assert!(page.items.is_empty() && page.last);
    let requests = server.received_requests().await.unwrap();
    let sale = requests.iter().find(|r| r.url.path().ends_with("/Sale.json")).unwrap();
    let raw = sale.url.query().unwrap();
    assert!(raw.contains("timeStamp=%3E%3D%2C2024-01-01T00%3A00%3A00%2B00%3A00"), "{raw}");
    assert_eq!(page.checkpoint.0["since"], "2024-01-01T00:00:00+00:00", "nothing new: the cursor stays");
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_restart_and_a_401_refreshes_once() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    // The first access token is refused once (expired early), then accepted.
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .and(header("authorization", "Bearer at-rt-2"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "access_denied", "hint": "Access token could not be verified"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .and(header("authorization", "Bearer at-rt-3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"@attributes": {"next": ""}})))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    source(&server, store.clone()).read("sales", None).await.unwrap();
    assert_eq!(store.secret_get("lightspeed:store", "refresh_token").await.unwrap().as_deref(), Some("rt-3"));
    // A new process (a new source on the same state) uses the stored token,
    // not the revoked one from the config.
    Mock::given(method("POST"))
        .and(path("/auth/oauth/token"))
        .and(body_partial_json(json!({"refresh_token": "rt-config"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .expect(0)
        .named("the revoked config token")
        .mount(&server)
        .await;
    let error = source(&server, store.clone()).read("sales", None).await.unwrap_err();
    // rt-3 rotates to nothing in this mock: refused → a configuration error.
    assert_eq!(error.class, ErrorClass::Config);
    assert!(error.message.contains("refused the refresh token"), "{}", error.message);
    assert!(!error.message.contains("secret"));
}

#[tokio::test]
async fn voided_sales_cancel_and_shipped_sales_to_customers_ship() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    let mut voided = sale_with_customer();
    voided["saleID"] = json!("300");
    voided["voided"] = json!("true");
    let mut shipped = sale_with_customer();
    shipped["saleID"] = json!("301");
    shipped["shipToID"] = json!("3");
    shipped["ShipTo"] = json!({"shipToID": "3", "shipped": "true", "timeStamp": "2021-09-14T18:38:19+00:00", "customerID": "8", "saleID": "301"});
    let mut open = sale_with_customer();
    open["saleID"] = json!("302");
    open["completed"] = json!("false");
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}/Sale.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"@attributes": {"next": ""}, "Sale": [voided, shipped, open]})),
        )
        .mount(&server)
        .await;
    let page = source(&server, Arc::new(MemoryStore::new())).read("sales", None).await.unwrap();
    let records: Vec<&Record> = page.items.iter().map(|i| i.as_ref().unwrap()).collect();
    assert_eq!(records.len(), 3, "voided order, shipped order and its shipment; the open sale is nothing yet");
    assert!(matches!(records[0], Record::Order(o) if o.status == OrderStatus::Cancelled));
    let Record::Shipment(shipment) = records[2] else { panic!("{records:?}") };
    assert_eq!(shipment.order_id, "301");
    assert_eq!(shipment.shipped_at.to_string(), "2021-09-14T18:38:19Z");
    assert_eq!(
        shipment.items,
        vec!["Blue Shirt".to_string(), "Item 28".to_string()],
        "names, or the item id without one"
    );
}

/// A Sale.json listing over generated sales, paged by opaque `after` tokens.
struct Listing {
    base: String,
    total: usize,
}
impl Respond for Listing {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let start: usize =
            request.url.query_pairs().find(|(k, _)| k == "after").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
        let end = (start + 100).min(self.total);
        let sales: Vec<Value> = (start..end)
            .map(|n| {
                let mut sale = example("sale_277_completed_with_relations.json")["Sale"].clone();
                sale["saleID"] = json!((n + 1).to_string());
                sale["timeStamp"] = json!(format!("2024-01-01T00:{:02}:{:02}+00:00", n / 60 % 60, n % 60));
                sale
            })
            .collect();
        let next =
            if end < self.total { format!("{}{ACCOUNT}/Sale.json?after={end}", self.base) } else { String::new() };
        ResponseTemplate::new(200).set_body_json(json!({"@attributes": {"next": next}, "Sale": sales}))
    }
}

/// Lookups and a token endpoint that does not rotate, so every reader the
/// suite opens on one state store authenticates.
async fn mount_steady(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/auth/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "at", "expires_in": 1800})))
        .mount(server)
        .await;
    for (file, body) in [
        ("Category.json", example("category_list.json")),
        ("Shop.json", json!({"@attributes": {"next": ""}, "Shop": {"shopID": "1", "name": "West Bolduc"}})),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("{ACCOUNT}/{file}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("{ACCOUNT}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Account": {"accountID": "123"}})))
        .mount(server)
        .await;
}

struct Harness;

#[async_trait::async_trait]
impl SourceHarness for Harness {
    fn stream(&self) -> &str {
        "sales"
    }
    async fn mount(&self, server: &MockServer, count: usize) -> Vec<String> {
        mount_steady(server).await;
        Mock::given(method("GET"))
            .and(path(format!("{ACCOUNT}/Sale.json")))
            .respond_with(Listing { base: server.uri(), total: count })
            .mount(server)
            .await;
        (1..=count).map(|n| n.to_string()).collect()
    }
    fn account(&self, base_url: &str, state: Arc<dyn StateStore>) -> Arc<dyn SourceAccount> {
        let config = LightspeedConfig {
            base_url: base_url.to_owned(),
            token_url: format!("{base_url}/auth/oauth/token"),
            ..config_for(base_url)
        };
        let context = AccountContext::new("store", state).with_tuning(HttpTuning::fast());
        let currency = tillflow_core::model::Currency::new("USD").unwrap();
        Arc::new(LightspeedAccount::open(config, currency, &context))
    }
    fn webhook(&self) -> Option<WebhookSample> {
        None
    }
    fn dead_letter(&self) -> DeadLetterSample {
        DeadLetterSample { stream: "sales".into(), raw: sale_with_customer(), id: "277".into() }
    }
}

#[tokio::test]
async fn lightspeed_passes_the_source_conformance_suite() {
    run_source_suite(&Harness).await;
}

#[test]
fn a_sale_is_placed_when_it_is_completed_not_when_it_was_opened() {
    use tillflow_core::events::{DeriveContext, EventKind, derive_events};
    use tillflow_source_lightspeed::mapping::{Lookups, Mapped, sale};
    // Rung up on the 1st, parked as a layaway, paid for on the 20th.
    let mut raw = example("sale_277_completed_with_relations.json")["Sale"].clone();
    raw["createTime"] = json!("2016-11-01T09:00:00+00:00");
    raw["completeTime"] = json!("2016-11-20T16:30:00-05:00");
    raw["timeStamp"] = json!("2016-11-20T21:30:05+00:00");
    let currency = tillflow_core::model::Currency::new("USD").unwrap();
    let wire: tillflow_source_lightspeed::wire::Sale = serde_json::from_value(raw).unwrap();
    let Ok(Mapped::Records(records)) = sale("store", &wire, &Lookups::default(), &currency) else {
        panic!("a completed sale maps to records")
    };
    let Record::Order(order) = &records[0] else { panic!("{:?}", records[0]) };
    assert_eq!(order.created_at.to_string(), "2016-11-01T09:00:00Z");
    assert_eq!(order.placed_at.to_string(), "2016-11-20T21:30:00Z", "completeTime, with its offset");

    // The pipeline first started between opening and completion: the order is live.
    let started = "2016-11-10T00:00:00Z".parse().unwrap();
    let events = derive_events(records[0].clone(), &DeriveContext { pipeline_started_at: started });
    for event in events.iter().filter(|e| matches!(e.kind, EventKind::Placed | EventKind::OrderedProduct)) {
        assert_eq!(event.occurred_at, order.placed_at, "{:?}", event.kind);
        assert!(!event.history, "{:?} of a sale completed after the first start is live", event.kind);
    }
    assert!(events.iter().any(|e| e.kind == EventKind::Placed));
}
