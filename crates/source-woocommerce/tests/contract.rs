//! Contract tests against a mock WooCommerce, from the official examples in
//! shared/contracts/woocommerce/examples.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tillflow_core::model::{Channel, OrderStatus, Record};
use tillflow_core::source::{Source, WebhookRequest, WebhookVerdict};
use tillflow_core::{ErrorClass, InboxItem};
use tillflow_http::SecretString;
use tillflow_http::webhook::sign_hmac_sha256_base64;
use tillflow_kit::{AccountContext, HttpTuning, SourceAccount};
use tillflow_source_woocommerce::{AuthMode, WooCommerceAccount, WooCommerceConfig, WooCommerceSource};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::openapi::contract_json;
use tillflow_testkit::source_suite::{DeadLetterSample, SourceHarness, WebhookSample, read_to_end, run_source_suite};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BASIC: &str = "Basic Y2tfdGVzdDpjc190ZXN0"; // base64("ck_test:cs_test")

fn config(server: &MockServer) -> WooCommerceConfig {
    config_for(&server.uri())
}

fn config_for(base_url: &str) -> WooCommerceConfig {
    WooCommerceConfig {
        base_url: base_url.to_owned(),
        consumer_key: SecretString::from("ck_test"),
        consumer_secret: SecretString::from("cs_test"),
        webhook_secret: Some(SecretString::from("whsec")),
        poll_interval: tillflow_core::duration::HumanDuration(Duration::from_secs(300)),
        auth: AuthMode::Basic,
        overlap: tillflow_core::duration::HumanDuration(Duration::from_secs(600)),
        requests_per_second: 1000,
    }
}

fn account_with(config: WooCommerceConfig) -> WooCommerceAccount {
    let context = AccountContext::new("shop", Arc::new(MemoryStore::new())).with_tuning(HttpTuning::fast());
    WooCommerceAccount::open(config, &context)
}

fn source(server: &MockServer) -> WooCommerceSource {
    account_with(config(server)).source()
}

fn source_with(config: WooCommerceConfig) -> WooCommerceSource {
    account_with(config).source()
}

fn example(name: &str) -> Value {
    contract_json(&format!("woocommerce/examples/{name}"))
}

/// A WooCommerce order listing over a shared, mutable list ordered by
/// modification: honours `modified_after`, `offset` and `per_page`.
#[derive(Clone)]
struct Listing {
    orders: Arc<Mutex<Vec<Value>>>,
}

impl Respond for Listing {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: std::collections::HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let after = query.get("modified_after").cloned();
        let offset: usize = query.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let per_page: usize = query.get("per_page").and_then(|o| o.parse().ok()).unwrap_or(10);
        let orders = self.orders.lock().unwrap();
        let matching: Vec<&Value> = orders
            .iter()
            .filter(|o| after.as_deref().is_none_or(|after| o["date_modified_gmt"].as_str().unwrap() > after))
            .collect();
        let page: Vec<&Value> = matching.iter().skip(offset).take(per_page).copied().collect();
        ResponseTemplate::new(200)
            .insert_header("X-WP-Total", matching.len().to_string().as_str())
            .insert_header("X-WP-TotalPages", matching.len().div_ceil(per_page).to_string().as_str())
            .set_body_json(page)
    }
}

fn generated_order(id: u64, modified: &str) -> Value {
    let mut order = example("order_retrieve.json");
    order["id"] = json!(id);
    order["number"] = json!(id.to_string());
    order["date_modified_gmt"] = json!(modified);
    order["refunds"] = json!([]);
    order
}

fn minute(n: u64) -> String {
    format!("2024-01-{:02}T{:02}:{:02}:00", 1 + n / 1440, (n / 60) % 24, n % 60)
}

async fn mount_listing(server: &MockServer, count: u64) -> Listing {
    let listing =
        Listing { orders: Arc::new(Mutex::new((1..=count).map(|n| generated_order(n, &minute(n))).collect())) };
    Mock::given(method("GET")).and(path("/wp-json/wc/v3/orders")).respond_with(listing.clone()).mount(server).await;
    listing
}

async fn listing_server(count: u64) -> (MockServer, Listing) {
    let server = MockServer::start().await;
    let listing = mount_listing(&server, count).await;
    (server, listing)
}

struct Harness;

#[async_trait::async_trait]
impl SourceHarness for Harness {
    fn stream(&self) -> &str {
        "orders"
    }
    async fn mount(&self, server: &MockServer, count: usize) -> Vec<String> {
        mount_listing(server, count as u64).await;
        (1..=count).map(|n| n.to_string()).collect()
    }
    fn account(&self, base_url: &str, state: Arc<dyn tillflow_core::StateStore>) -> Arc<dyn SourceAccount> {
        let context = AccountContext::new("shop", state).with_tuning(HttpTuning::fast());
        Arc::new(WooCommerceAccount::open(
            WooCommerceConfig { base_url: base_url.to_owned(), ..config_for("") },
            &context,
        ))
    }
    fn webhook(&self) -> Option<WebhookSample> {
        let mut order = example("order_retrieve.json");
        order["refunds"] = json!([]);
        let body = serde_json::to_vec(&order).unwrap();
        let signed = sign_hmac_sha256_base64(&SecretString::from("whsec"), &body);
        let forged = sign_hmac_sha256_base64(&SecretString::from("guess"), &body);
        Some(WebhookSample {
            signed: webhook(Some("order.updated"), &body, Some(signed)),
            forged: webhook(Some("order.updated"), &body, Some(forged)),
            id: "727".into(),
        })
    }
    fn dead_letter(&self) -> DeadLetterSample {
        let mut order = example("order_retrieve.json");
        order["refunds"] = json!([]);
        DeadLetterSample { stream: "orders".into(), raw: order, id: "727".into() }
    }
}

#[tokio::test]
async fn woocommerce_passes_the_source_conformance_suite() {
    run_source_suite(&Harness).await;
}

#[tokio::test]
async fn orders_are_listed_with_the_documented_query_and_mapped_from_the_official_example() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .and(header("authorization", BASIC))
        .and(query_param("dates_are_gmt", "true"))
        .and(query_param("orderby", "modified"))
        .and(query_param("order", "asc"))
        .and(query_param("per_page", "100"))
        .and(query_param("status", "any"))
        .and(query_param("offset", "0"))
        .and(query_param_is_missing("modified_after"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-WP-Total", "1")
                .insert_header("X-WP-TotalPages", "1")
                .set_body_json(json!([example("order_retrieve.json")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(&server);
    let page = source.read("orders", None).await.unwrap();
    assert!(page.last);
    let Ok(Record::Order(order)) = &page.items[0] else { panic!("{:?}", page.items[0]) };
    assert_eq!(order.identity.id, "727");
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(order.totals.total.amount.to_string(), "29.35");
    assert_eq!(order.totals.total.currency.as_str(), "USD");
    assert_eq!(order.totals.shipping.amount.to_string(), "10.00");
    assert_eq!(order.created_at.to_string(), "2017-03-22T19:28:02Z", "GMT read as UTC");
    assert_eq!(order.channel, Channel::Online);
    assert_eq!(order.person.customer_id, None, "customer_id 0 is a guest");
    assert_eq!(order.person.email.as_deref(), Some("john.doe@example.com"));
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].quantity.to_string(), "2");
    assert_eq!(order.lines[0].unit_price.amount.to_string(), "3");
    // The next pass starts from this pass's start minus the overlap window.
    let next = &page.checkpoint.0;
    assert_eq!(next["v"], 1);
    assert!(next["modified_after"].as_str().is_some(), "{next}");
}

#[tokio::test]
async fn oliver_pos_sales_are_in_store_by_meta_or_by_payment_method() {
    let server = MockServer::start().await;
    let mut by_meta = example("order_retrieve.json");
    by_meta["id"] = json!(801);
    by_meta["refunds"] = json!([]);
    by_meta["meta_data"] = json!([
        {"id": 1, "key": "_oliver_pos_receipt_id", "value": "R-99"},
        {"id": 2, "key": "location_id", "value": "12"},
        {"id": 3, "key": "register_id", "value": 4}
    ]);
    let mut by_suffix = example("order_retrieve.json");
    by_suffix["id"] = json!(802);
    by_suffix["refunds"] = json!([]);
    by_suffix["meta_data"] = json!([]);
    by_suffix["payment_method"] = json!("cash,card (POS)");
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("X-WP-Total", "2").set_body_json(json!([by_meta, by_suffix])),
        )
        .mount(&server)
        .await;
    let page = source(&server).read("orders", None).await.unwrap();
    let orders: Vec<_> = page
        .items
        .iter()
        .filter_map(|i| match i {
            Ok(Record::Order(o)) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(orders[0].channel, Channel::InStore);
    assert_eq!(orders[0].location.as_ref().map(|l| l.id.as_str()), Some("12"));
    assert_eq!(orders[0].register_id.as_deref(), Some("4"));
    assert_eq!(orders[1].channel, Channel::InStore, "HPOS sites may hide the meta; the (POS) suffix still tells");
}

#[tokio::test]
async fn query_string_auth_sends_no_authorization_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .and(query_param("consumer_key", "ck_test"))
        .and(query_param("consumer_secret", "cs_test"))
        .respond_with(|request: &Request| {
            assert!(!request.headers.contains_key("authorization"));
            ResponseTemplate::new(200).insert_header("X-WP-Total", "0").set_body_json(json!([]))
        })
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.auth = AuthMode::Query;
    let page = source_with(config).read("orders", None).await.unwrap();
    assert!(page.items.is_empty() && page.last);
}

#[tokio::test]
async fn an_order_modified_while_paging_shifts_nothing_out_of_the_pass() {
    let (server, listing) = listing_server(250).await;
    let mut source = source(&server);
    let first = source.read("orders", None).await.unwrap();
    let mut seen: Vec<String> =
        first.items.iter().filter_map(|i| i.as_ref().ok()).map(|r| r.identity().id.to_string()).collect();
    // Orders 5 and 150 change: they move to the end of the listing, shifting
    // everything after them back by one or two places.
    {
        let mut orders = listing.orders.lock().unwrap();
        for id in [5u64, 150] {
            let index = orders.iter().position(|o| o["id"] == json!(id)).unwrap();
            let mut order = orders.remove(index);
            order["date_modified_gmt"] = json!("2024-02-01T00:00:00");
            orders.push(order);
        }
    }
    let (rest, _, _) = read_to_end(&mut source, "orders", Some(first.checkpoint), 100).await;
    seen.extend(rest);
    for n in 1..=250u64 {
        assert!(seen.contains(&n.to_string()), "order {n} was skipped");
    }
}

#[tokio::test]
async fn the_next_pass_asks_only_for_recent_changes() {
    let (server, _) = listing_server(3).await;
    let mut source = source(&server);
    let page = source.read("orders", None).await.unwrap();
    assert!(page.last);
    let second = source.read("orders", Some(&page.checkpoint)).await.unwrap();
    assert!(second.items.is_empty(), "orders modified long ago are not listed again");
    let requests = server.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    let after = last.url.query_pairs().find(|(k, _)| k == "modified_after").map(|(_, v)| v.into_owned()).unwrap();
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let after = tillflow_source_woocommerce::mapping::parse_gmt(&after).unwrap();
    assert!(
        after <= started + jiff::SignedDuration::from_secs(5) && after > started - jiff::SignedDuration::from_mins(1)
    );
}

#[tokio::test]
async fn each_refund_of_an_order_is_read_with_amount_reason_and_lines() {
    let server = MockServer::start().await;
    let mut order = example("order_retrieve.json");
    order["id"] = json!(723);
    order["refunds"] =
        json!([{"id": 726, "reason": "", "total": "-10.00"}, {"id": 724, "reason": "", "total": "-10.00"}]);
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(ResponseTemplate::new(200).insert_header("X-WP-Total", "1").set_body_json(json!([order])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders/723/refunds"))
        .and(header("authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_json(example("refunds_list.json")))
        .expect(1)
        .mount(&server)
        .await;
    let page = source(&server).read("orders", None).await.unwrap();
    let refunds: Vec<_> = page
        .items
        .iter()
        .filter_map(|i| match i {
            Ok(Record::Refund(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0].identity.id, "726");
    assert_eq!(refunds[0].order_id, "723");
    assert_eq!(refunds[0].amount.amount.to_string(), "10.00");
    assert_eq!(refunds[0].created_at.to_string(), "2017-03-21T20:07:11Z");
    assert_eq!(refunds[0].person.email.as_deref(), Some("john.doe@example.com"), "the buyer comes from the order");
    let order = page
        .items
        .iter()
        .find_map(|i| match i {
            Ok(Record::Order(o)) => Some(o),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        order.refunded.as_ref().map(|m| m.amount.to_string()),
        Some("20.00".into()),
        "the order's refunds summed"
    );
    assert_eq!(order.net_total().amount, order.totals.total.amount - rust_decimal::Decimal::from(20));
}

/// A WordPress route: `_fields` keeps only the named top-level fields of
/// each item (a site too old for it serves everything, as `honours: false`
/// does); every request's `_fields` is noted, and the bytes served counted.
#[derive(Clone)]
struct Route {
    items: Value,
    honours: bool,
    asked: Arc<Mutex<Vec<Option<String>>>>,
    bytes_served: Arc<Mutex<usize>>,
}

impl Respond for Route {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked = request.url.query_pairs().find(|(name, _)| name == "_fields").map(|(_, list)| list.into_owned());
        self.asked.lock().unwrap().push(asked.clone());
        let mut items = self.items.clone();
        if let Some(asked) = asked.filter(|_| self.honours) {
            let names: Vec<&str> = asked.split(',').collect();
            for item in items.as_array_mut().unwrap() {
                item.as_object_mut().unwrap().retain(|name, _| names.contains(&name.as_str()));
            }
        }
        *self.bytes_served.lock().unwrap() += serde_json::to_vec(&items).unwrap().len();
        ResponseTemplate::new(200)
            .insert_header("X-WP-Total", "1")
            .insert_header("X-WP-TotalPages", "1")
            .set_body_json(items)
    }
}

/// A shop with the official example order (refunded twice) and customer,
/// its three routes honouring `_fields` or not.
async fn shop(honours: bool) -> (MockServer, Vec<Route>) {
    let server = MockServer::start().await;
    let mut order = example("order_retrieve.json");
    order["id"] = json!(723);
    order["refunds"] =
        json!([{"id": 726, "reason": "", "total": "-10.00"}, {"id": 724, "reason": "", "total": "-10.00"}]);
    let mut routes = Vec::new();
    for (route, items) in [
        ("/wp-json/wc/v3/orders", json!([order])),
        ("/wp-json/wc/v3/orders/723/refunds", example("refunds_list.json")),
        ("/wp-json/wc/v3/customers", json!([example("customer_retrieve.json")])),
    ] {
        let served = Route { items, honours, asked: Default::default(), bytes_served: Default::default() };
        Mock::given(method("GET")).and(path(route)).respond_with(served.clone()).mount(&server).await;
        routes.push(served);
    }
    (server, routes)
}

#[tokio::test]
async fn a_listing_asks_the_shop_only_for_the_fields_it_maps_and_maps_them_alike() {
    let (honouring, honoured) = shop(true).await;
    let (old, _) = shop(false).await;
    let mut read = Vec::new();
    for server in [&honouring, &old] {
        let mut source = source(server);
        let mut items = source.read("orders", None).await.unwrap().items;
        items.extend(source.read("customers", None).await.unwrap().items);
        read.push(items.into_iter().map(Result::unwrap).collect::<Vec<_>>());
    }
    assert_eq!(read[0].len(), 4, "the order, its two refunds and the customer: {:?}", read[0]);
    assert_eq!(read[0], read[1], "records read from the fields asked for are those read from whole ones");

    for (route, must_ask) in honoured.iter().zip([
        &["id", "date_modified_gmt", "status", "billing", "line_items", "meta_data", "refunds"][..],
        &["id", "amount", "reason", "date_created_gmt", "line_items"][..],
        &["id", "email", "billing", "role"][..],
    ]) {
        let asked = route.asked.lock().unwrap().clone();
        let [Some(list)] = asked.as_slice() else { panic!("one request with `_fields`: {asked:?}") };
        let names: Vec<&str> = list.split(',').collect();
        for name in must_ask {
            assert!(names.contains(name), "{name} not asked for: {list}");
        }
        for unread in ["_links", "customer_ip_address", "customer_user_agent", "tax_lines", "shipping_lines"] {
            assert!(!names.contains(&unread), "{unread} asked for: {list}");
        }
    }
    let served = *honoured[0].bytes_served.lock().unwrap();
    let whole = serde_json::to_vec(&honoured[0].items).unwrap().len();
    assert!(served * 10 < whole * 6, "the order listing sent {served} bytes of {whole}");
}

#[tokio::test]
async fn customers_are_scanned_by_id_page_by_page() {
    let server = MockServer::start().await;
    let customer = example("customer_retrieve.json");
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/customers"))
        .and(query_param("orderby", "id"))
        .and(query_param("order", "asc"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).insert_header("X-WP-TotalPages", "1").set_body_json(json!([customer])))
        .mount(&server)
        .await;
    let page = source(&server).read("customers", None).await.unwrap();
    assert!(page.last);
    assert_eq!(page.checkpoint.0["page"], 1, "the next pass scans again from the first page");
    let Ok(Record::Customer(customer)) = &page.items[0] else { panic!() };
    assert_eq!(customer.person.customer_id.as_deref(), Some("25"));
    assert_eq!(customer.person.email.as_deref(), Some("john.doe@example.com"));
    assert_eq!(customer.person.address.city.as_deref(), Some("San Francisco"));
}

#[tokio::test]
async fn a_bad_order_becomes_a_bad_record_naming_the_field_and_the_rest_flows() {
    let server = MockServer::start().await;
    let mut bad = example("order_retrieve.json");
    bad["id"] = json!(900);
    bad["refunds"] = json!([]);
    bad["total"] = json!("29,35");
    let mut good = example("order_retrieve.json");
    good["id"] = json!(901);
    good["refunds"] = json!([]);
    good["unexpected_new_field"] = json!({"tolerated": true});
    Mock::given(method("GET"))
        .and(path("/wp-json/wc/v3/orders"))
        .respond_with(ResponseTemplate::new(200).insert_header("X-WP-Total", "2").set_body_json(json!([bad, good])))
        .mount(&server)
        .await;
    let page = source(&server).read("orders", None).await.unwrap();
    let Err(bad) = &page.items[0] else { panic!("{:?}", page.items[0]) };
    assert!(bad.reason.contains("order 900 total `29,35`"), "{}", bad.reason);
    assert_eq!(bad.raw["id"], 900);
    assert!(matches!(&page.items[1], Ok(Record::Order(o)) if o.identity.id == "901"));
}

#[tokio::test]
async fn a_listing_that_is_not_json_fails_the_page_and_dead_letters_nothing() {
    // Each order is decoded by itself; text that is not JSON inside one of
    // them (its brackets balanced, so only its own decoding can tell) is a
    // malformed answer, refused as a whole as when the listing was decoded in
    // one piece, never a bad record that lets the checkpoint move past it.
    let mut good = example("order_retrieve.json");
    good["refunds"] = json!([]);
    let good = good.to_string();
    let not_json = format!(r#"[{good}, {{"id": 902, "total": 29..35}}]"#);
    let cut_short = format!("[{good}, {}", &good[..good.len() / 2]);
    for body in [not_json, cut_short] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/wp-json/wc/v3/orders"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("X-WP-Total", "2")
                    .set_body_raw(body.clone(), "application/json"),
            )
            .mount(&server)
            .await;
        let error = source(&server).read("orders", None).await.unwrap_err();
        assert_eq!(error.class, ErrorClass::Permanent, "{body}");
        assert!(error.message.contains("unexpected response body"), "{}", error.message);
    }
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = source(&server).read("orders", None).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Config);
    assert!(error.message.contains("cannot list resources"), "{}", error.message);
    assert!(!error.message.contains("cs_test"));
}

#[tokio::test]
async fn a_429_and_a_503_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).insert_header("X-WP-Total", "0").set_body_json(json!([])))
        .mount(&server)
        .await;
    assert!(source(&server).read("orders", None).await.unwrap().last);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

fn webhook(topic: Option<&str>, body: &[u8], signature: Option<String>) -> WebhookRequest {
    let mut headers = Vec::new();
    if let Some(topic) = topic {
        headers.push(("x-wc-webhook-topic".to_string(), topic.to_string()));
    }
    if let Some(signature) = signature {
        headers.push(("x-wc-webhook-signature".to_string(), signature));
    }
    WebhookRequest { headers, body: body.to_vec() }
}

#[tokio::test]
async fn webhooks_are_verified_in_constant_time_and_pings_accepted() {
    let server = MockServer::start().await;
    let account = account_with(config(&server));
    let mut source = account.source();
    let mut order = example("order_retrieve.json");
    order["refunds"] = json!([]);
    let body = serde_json::to_vec(&order).unwrap();
    let secret = SecretString::from("whsec");
    let good = sign_hmac_sha256_base64(&secret, &body);
    assert_eq!(
        account.verify_webhook(&webhook(Some("order.updated"), &body, Some(good.clone()))),
        WebhookVerdict::Accept
    );
    assert_eq!(account.verify_webhook(&webhook(Some("order.updated"), &body, None)), WebhookVerdict::Unauthorized);
    let forged = sign_hmac_sha256_base64(&SecretString::from("guess"), &body);
    assert_eq!(
        account.verify_webhook(&webhook(Some("order.updated"), &body, Some(forged))),
        WebhookVerdict::Unauthorized
    );
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        account.verify_webhook(&webhook(Some("order.updated"), &tampered, Some(good.clone()))),
        WebhookVerdict::Unauthorized
    );
    assert_eq!(account.verify_webhook(&webhook(None, b"webhook_id=142", None)), WebhookVerdict::Ping);
    assert!(matches!(
        account.verify_webhook(&webhook(Some("coupon.created"), &body, Some(good.clone()))),
        WebhookVerdict::Rejected(_)
    ));

    let item = InboxItem {
        id: 1,
        source: "shop".into(),
        received_at: jiff::Timestamp::now(),
        headers: vec![("x-wc-webhook-topic".into(), "order.updated".into())],
        body,
    };
    let records = source.parse_webhook(&item).await.unwrap();
    assert!(matches!(&records[0], Ok(Record::Order(o)) if o.identity.id == "727"));
    let deleted = InboxItem {
        body: b"{\"id\":727}".to_vec(),
        headers: vec![("x-wc-webhook-topic".into(), "order.deleted".into())],
        ..item
    };
    assert!(source.parse_webhook(&deleted).await.unwrap().is_empty());

    // A customer webhook that does not map is dead-lettered under the
    // customers stream, so a replay reads it as a customer again.
    let mut customer = example("customer_retrieve.json");
    customer["date_created_gmt"] = json!("not a date");
    let bad = InboxItem {
        body: serde_json::to_vec(&customer).unwrap(),
        headers: vec![("x-wc-webhook-topic".into(), "customer.updated".into())],
        ..deleted
    };
    let items = source.parse_webhook(&bad).await.unwrap();
    let Err(letter) = &items[0] else { panic!("{items:?}") };
    assert_eq!(letter.stream, "customers");
    assert!(letter.reason.contains("not a date"), "{}", letter.reason);
    let mut fixed = letter.raw.clone();
    fixed["date_created_gmt"] = json!("2017-03-22T16:28:02");
    let again = source.reparse(&letter.stream, &fixed).await.unwrap();
    let id = customer["id"].to_string();
    assert!(matches!(&again[0], Ok(Record::Customer(c)) if c.identity.id == id), "{again:?}");
}
