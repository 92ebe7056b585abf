//! Contract tests for the Retail POS source: the kit's source conformance
//! suite against a mock X-Series + eCom store shaped by the API 2.0
//! OpenAPI document and the official examples; the examples mapped
//! (tax-exclusive totals, the three-state eCom preference); then the
//! sandbox: the merged view per email equals the merge rules, eCom-only
//! people admitted by an online order (even when eCom's counters lag),
//! duplicate POS emails and group conflicts listed, rotating refresh tokens
//! stored before use, a 429 with an HTTP-date `Retry-After` waited out, a
//! version feed that ends on an empty page, and a second pass that reads
//! nothing new.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tillflow_core::StateStore;
use tillflow_core::model::{Customer, OrderStatus, Record, Text};
use tillflow_core::source::{Checkpoint, Source, WebhookRequest, WebhookVerdict};
use tillflow_http::SecretString;
use tillflow_kit::sandbox::Sandbox;
use tillflow_kit::{AccountContext, HttpTuning, SourceAccount};
use tillflow_source_retail_pos::config::EcomConfig;
use tillflow_source_retail_pos::mapping::{self, SaleContext};
use tillflow_source_retail_pos::merge::{ECOM_DEFAULT_GROUP, POS_DEFAULT_GROUP};
use tillflow_source_retail_pos::people::People;
use tillflow_source_retail_pos::sandbox::{self as sb, RetailPosSandbox};
use tillflow_source_retail_pos::{RetailPosAccount, RetailPosConfig, ecom_wire, wire};
use tillflow_testkit::MemoryStore;
use tillflow_testkit::openapi::contract_json;
use tillflow_testkit::source_suite::{DeadLetterSample, SourceHarness, WebhookSample, run_source_suite};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MOCK_TOKEN: &str = "pt-mock";
const MOCK_ECOM_SECRET: &str = "mock-ecom-secret";

fn config(store_url: &str, ecom_url: Option<&str>) -> RetailPosConfig {
    RetailPosConfig {
        domain_prefix: "mock".into(),
        personal_token: Some(SecretString::from(MOCK_TOKEN)),
        client_id: None,
        client_secret: None,
        refresh_token: None,
        base_url: Some(store_url.to_owned()),
        token_url: None,
        poll_interval: tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(300)),
        currency: "NZD".into(),
        page_size: 20,
        ecom: ecom_url.map(|url| EcomConfig {
            store_id: sb::STORE_ID.into(),
            token: SecretString::from(sb::ECOM_TOKEN),
            client_secret: Some(SecretString::from(MOCK_ECOM_SECRET)),
            base_url: url.to_owned(),
            overlap: tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(120)),
        }),
    }
}

fn open(config: RetailPosConfig, state: Arc<dyn StateStore>) -> RetailPosAccount {
    let context = AccountContext::new("store", state).with_tuning(HttpTuning::fast());
    RetailPosAccount::open(config, &context).expect("a valid config")
}

fn mock_sale(n: usize) -> Value {
    let at = jiff::Timestamp::from_second(1_704_067_200 + n as i64 * 3600).unwrap().to_string();
    json!({
        "id": format!("sale-{n}"), "outlet_id": "o-1", "register_id": "r-1", "customer_id": null, "invoice_number": n.to_string(),
        "status": "CLOSED", "total_price": 200, "total_tax": 30, "created_at": at, "updated_at": at, "sale_date": at,
        "line_items": [{"id": format!("l-{n}"), "product_id": "p-1", "quantity": 1, "unit_price": 200, "total_price": 200, "total_tax": 30, "status": "CONFIRMED", "is_return": false}],
        "payments": [{"name": "Cash", "amount": 230}], "version": 10 * n as u64,
    })
}

/// A mock store: the reference lists, one customer, `count` sales on the
/// version cursor, an eCom store with one customer who bought online.
struct MockStore {
    count: usize,
    /// The eCom plan has no customer groups (402).
    no_groups: bool,
}

fn versioned_page(records: &[Value], query: &HashMap<String, String>) -> Value {
    let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let size: usize = query.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(100);
    let page: Vec<&Value> = records.iter().filter(|r| r["version"].as_u64().unwrap_or(0) > after).take(size).collect();
    let version = match (page.first(), page.last()) {
        (Some(first), Some(last)) => json!({"min": first["version"], "max": last["version"]}),
        _ => json!({"min": null, "max": null}),
    };
    json!({"data": page, "version": version})
}

fn mock_ecom_customer() -> Value {
    json!({"id": 77, "email": "web@example.com", "updated": "2024-06-04 21:15:10 +0000", "registered": "2024-06-01 10:00:00 +0000",
           "customerGroupId": 0, "customerGroupName": "General", "acceptMarketing": null, "totalOrderCount": 1,
           "billingPerson": {"name": "Web Shopper"}})
}

impl Respond for MockStore {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let path = request.url.path();
        if let Some(ecom) = path.strip_prefix(&format!("/api/v3/{}", sb::STORE_ID)) {
            if auth != format!("Bearer {}", sb::ECOM_TOKEN) {
                return ResponseTemplate::new(403);
            }
            let envelope = |items: Vec<Value>| json!({"total": items.len(), "count": items.len(), "offset": 0, "limit": 100, "items": items});
            return match ecom {
                "/customer_groups" if self.no_groups => {
                    ResponseTemplate::new(402).set_body_json(json!({"errorMessage": "Payment Required"}))
                }
                "/customer_groups" => {
                    ResponseTemplate::new(200).set_body_json(envelope(vec![json!({"id": 0, "name": "General"})]))
                }
                "/customers" | "/orders" => ResponseTemplate::new(200).set_body_json(envelope(Vec::new())),
                "/customers/77" => ResponseTemplate::new(200).set_body_json(mock_ecom_customer()),
                _ => ResponseTemplate::new(404),
            };
        }
        if auth != format!("Bearer {MOCK_TOKEN}") {
            return ResponseTemplate::new(401);
        }
        let customer = json!({"id": "c-1", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "do_not_email": false,
                              "customer_group_id": "g-1", "created_at": "2023-01-01T00:00:00+00:00", "updated_at": "2023-06-01T00:00:00+00:00", "version": 5});
        let sales: Vec<Value> = (1..=self.count).map(mock_sale).collect();
        let list = |records: Vec<Value>| ResponseTemplate::new(200).set_body_json(versioned_page(&records, &query));
        match path {
            // Twenty tills: a budget of 6,050 requests per five minutes.
            "/api/2.0/registers" => {
                list((1..=20).map(|r| json!({"id": format!("r-{r}"), "outlet_id": "o-1", "version": r})).collect())
            }
            "/api/2.0/outlets" => list(vec![
                json!({"id": "o-1", "name": "Main", "currency": "NZD", "time_zone": "Pacific/Auckland", "version": 2}),
            ]),
            "/api/2.0/customer_groups" => {
                list(vec![json!({"id": "g-1", "name": "All Customers", "group_id": "1111111111", "version": 23})])
            }
            "/api/2.0/products" => {
                list(vec![json!({"id": "p-1", "name": "Coffee beans", "sku": "CB-1", "version": 24})])
            }
            "/api/2.0/customers" => list(vec![customer]),
            "/api/2.0/customers/c-1" => ResponseTemplate::new(200).set_body_json(json!({"data": customer})),
            "/api/2.0/sales" => list(sales),
            other => match other.strip_prefix("/api/2.0/sales/") {
                Some(id) => match sales.iter().find(|s| s["id"] == id) {
                    Some(sale) => ResponseTemplate::new(200).set_body_json(json!({"data": sale})),
                    None => ResponseTemplate::new(404),
                },
                None => ResponseTemplate::new(404),
            },
        }
    }
}

struct Harness;

#[async_trait::async_trait]
impl SourceHarness for Harness {
    fn stream(&self) -> &str {
        "sales"
    }
    async fn mount(&self, server: &MockServer, count: usize) -> Vec<String> {
        Mock::given(wiremock::matchers::any()).respond_with(MockStore { count, no_groups: false }).mount(server).await;
        (1..=count).map(|n| format!("sale-{n}")).collect()
    }
    fn count(&self) -> usize {
        50
    }
    fn account(&self, base_url: &str, state: Arc<dyn StateStore>) -> Arc<dyn SourceAccount> {
        Arc::new(open(config(base_url, Some(&format!("{base_url}/api/v3"))), state))
    }
    /// eCom's signature covers `"{eventCreated}.{eventId}"`, not the body
    /// (the platform's choice; the body only names what to fetch again).
    /// The sample's event id is long enough that the suite's tampered byte
    /// lands in it, a signed part.
    fn webhook(&self) -> Option<WebhookSample> {
        let event_id = format!("ev-{}", "7".repeat(400));
        let body = json!({"eventId": event_id, "eventCreated": 1_234_567, "storeId": 1003, "entityId": 77, "eventType": "customer.updated", "data": {}});
        let sign = |secret: &str| {
            tillflow_http::webhook::sign_hmac_sha256_base64(
                &SecretString::from(secret),
                tillflow_source_retail_pos::webhook::ecom_signed_text("1234567", &event_id).as_bytes(),
            )
        };
        let request = |signature: String| WebhookRequest {
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-ecwid-webhook-signature".into(), signature),
            ],
            body: body.to_string().into_bytes(),
        };
        Some(WebhookSample {
            signed: request(sign(MOCK_ECOM_SECRET)),
            forged: request(sign("guessed")),
            id: "ecom:77".into(),
        })
    }
    fn dead_letter(&self) -> DeadLetterSample {
        DeadLetterSample { stream: "sales".into(), raw: mock_sale(7), id: "sale-7".into() }
    }
}

#[tokio::test]
async fn retail_pos_passes_the_source_conformance_suite() {
    run_source_suite(&Harness).await;
}

#[test]
fn the_cursor_parameters_sent_are_the_specs() {
    let spec = contract_json("retail-pos-x-series/xseries-api-2.0-openapi.json");
    let parameters = &spec["components"]["parameters"];
    for path in ["/customers", "/sales", "/customer_groups", "/outlets", "/products", "/registers"] {
        let listed = spec["paths"][path]["get"]["parameters"].as_array().cloned().unwrap_or_default();
        let names: Vec<String> = listed
            .iter()
            .map(|p| match p.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    parameters[reference.rsplit('/').next().unwrap()]["name"].as_str().unwrap_or("").to_owned()
                }
                None => p["name"].as_str().unwrap_or("").to_owned(),
            })
            .collect();
        for sent in ["after", "page_size"] {
            assert!(names.iter().any(|n| n == sent), "GET {path} takes `{sent}`: {names:?}");
        }
    }
}

#[test]
fn the_official_sale_example_is_an_order_whose_total_includes_tax() {
    let example = contract_json("retail-pos-x-series/examples/sales_list.json");
    let sale: wire::Sale = serde_json::from_value(example["data"][0].clone()).unwrap();
    let products = HashMap::new();
    let outlets = HashMap::new();
    let currency = tillflow_core::model::Currency::new("NZD").unwrap();
    let context =
        SaleContext { source: "store", currency: &currency, outlets: &outlets, products: &products, buyer: None };
    let Some(Record::Order(order)) = mapping::sale(&context, &sale).unwrap() else { panic!("an order") };
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.totals.total.amount.to_string(), "230", "total_price 200 excludes the tax of 30");
    assert_eq!(order.totals.tax.amount.to_string(), "30");
    assert_eq!(order.placed_at.to_string(), "2014-09-18T01:37:56Z", "the sale's date, not its creation");
    assert_eq!(order.lines.len(), 2);
    let page: wire::Page = serde_json::from_value(example).unwrap();
    assert_eq!(page.version.unwrap().max, Some(29316));
}

#[test]
fn the_official_customer_examples_give_groups_by_title_and_preferences() {
    let groups_example = contract_json("retail-pos-x-series/examples/customer_groups_list.json");
    let groups: HashMap<Text, Text> = groups_example["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (Text::new(g["id"].as_str().unwrap()), Text::new(g["name"].as_str().unwrap())))
        .collect();
    let customers = contract_json("retail-pos-x-series/examples/customers_list.json");
    let tony: wire::Customer = serde_json::from_value(customers["data"][0].clone()).unwrap();
    let side = mapping::pos_side(&tony, &groups).unwrap();
    assert_eq!(side.group, None, "`{POS_DEFAULT_GROUP}` is no group");
    assert_eq!(side.marketing, Some(true), "do_not_email false");
    let ecom = contract_json("retail-pos-ecom-e-series/examples/customers_search_response.json");
    let first: ecom_wire::Customer = serde_json::from_value(ecom["items"][0].clone()).unwrap();
    let second: ecom_wire::Customer = serde_json::from_value(ecom["items"][1].clone()).unwrap();
    let ecom_groups = HashMap::from([(Text::new("0"), Text::new(ECOM_DEFAULT_GROUP))]);
    assert_eq!(mapping::ecom_side(&first, &ecom_groups).unwrap().marketing, Some(false));
    assert_eq!(mapping::ecom_side(&second, &ecom_groups).unwrap().marketing, None, "absent: no statement");
    assert_eq!(mapping::ecom_side(&first, &ecom_groups).unwrap().group, None, "`{ECOM_DEFAULT_GROUP}` is no group");
    assert_eq!(
        mapping::ecom_side(&first, &ecom_groups).unwrap().changed_at.unwrap().to_string(),
        "2024-06-04T21:15:10Z"
    );
}

/// Reads every stream to its end once; returns the records and the pages.
async fn pass(
    source: &mut dyn Source,
    checkpoints: &mut HashMap<String, Option<Checkpoint>>,
) -> (Vec<Record>, Vec<usize>) {
    let mut records = Vec::new();
    let mut last_page_sizes = Vec::new();
    for stream in source.streams() {
        loop {
            let checkpoint = checkpoints.get(&stream).cloned().flatten();
            let page = source.read(&stream, checkpoint.as_ref()).await.unwrap();
            let size = page.items.len();
            for item in page.items {
                records.push(item.unwrap_or_else(|bad| panic!("bad {} record: {}", bad.stream, bad.reason)));
            }
            checkpoints.insert(stream.clone(), Some(page.checkpoint));
            if page.last {
                last_page_sizes.push(size);
                break;
            }
        }
    }
    (records, last_page_sizes)
}

/// The latest customer record of each email.
fn by_email(records: &[Record]) -> BTreeMap<String, Customer> {
    let mut view = BTreeMap::new();
    for record in records {
        if let Record::Customer(customer) = record
            && let Some(email) = &customer.person.email
        {
            view.insert(email.to_lowercase(), customer.clone());
        }
    }
    view
}

fn group_title(id: &str) -> Option<Text> {
    sb::GROUPS.iter().find(|g| g.0 == id).map(|g| Text::new(g.1)).filter(|t| t != POS_DEFAULT_GROUP)
}

fn ecom_title(id: i64) -> Option<Text> {
    sb::ECOM_GROUPS.iter().find(|g| g.0 == id).map(|g| Text::new(g.1)).filter(|t| t != ECOM_DEFAULT_GROUP)
}

fn sandbox_config(sandbox: &RetailPosSandbox) -> RetailPosConfig {
    let mut config = config(&sandbox.store_url(), Some(&sandbox.ecom_url()));
    config.personal_token = Some(SecretString::from(sb::PERSONAL_TOKEN));
    config.page_size = 25;
    config
}

/// The sandbox's X-Series store alone, through rotating OAuth.
fn oauth_config(sandbox: &RetailPosSandbox) -> RetailPosConfig {
    let mut oauth = sandbox_config(sandbox);
    oauth.ecom = None;
    oauth.personal_token = None;
    oauth.client_id = Some(sb::CLIENT_ID.into());
    oauth.client_secret = Some(SecretString::from(sb::CLIENT_SECRET));
    oauth.refresh_token = Some(SecretString::from(sb::FIRST_REFRESH_TOKEN));
    oauth
}

async fn sandbox_source(sandbox: &RetailPosSandbox, state: Arc<dyn StateStore>) -> (RetailPosAccount, Box<dyn Source>) {
    let account = open(sandbox_config(sandbox), state);
    let reader = account.reader();
    (account, reader)
}

#[tokio::test]
async fn the_merged_view_follows_the_rules_for_every_seeded_person() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(90, 120);
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let (_account, mut source) = sandbox_source(&sandbox, state.clone()).await;
    let mut checkpoints = HashMap::new();
    let (records, _) = pass(source.as_mut(), &mut checkpoints).await;
    let view = by_email(&records);
    let mut checked = (0, 0, 0);
    for n in 1..=90u64 {
        let Some(email) = sb::seeded_email(n) else { continue };
        if n.is_multiple_of(41) {
            continue; // the older of two POS customers with one email
        }
        let customer = view.get(&email).unwrap_or_else(|| panic!("{email} is in the view"));
        let pos_group = group_title(sb::pos_group(n));
        let pos_marketing = !n.is_multiple_of(4);
        if sb::in_both(n) {
            let ecom_group = ecom_title(sb::ecom_group(n));
            let newer_is_ecom = sb::ecom_newer(n);
            let expected_group = if newer_is_ecom { ecom_group.clone() } else { pos_group.clone() };
            assert_eq!(customer.group, expected_group, "{email}: the group of the side changed last");
            let expected_first = if newer_is_ecom { format!("Online{n}") } else { format!("Till{n}") };
            assert_eq!(customer.person.first_name.as_deref(), Some(expected_first.as_str()), "{email}: first name");
            let expected_marketing = match (newer_is_ecom, sb::ecom_marketing(n)) {
                (true, Some(ecom)) => ecom,
                _ => pos_marketing,
            };
            assert_eq!(customer.accepts_marketing, Some(expected_marketing), "{email}: preference");
            assert_eq!(customer.properties["known_in"], json!("both"));
            assert_eq!(customer.identity.id, sb::pos_id(n), "the X-Series id");
            checked.0 += 1;
            if ecom_group != pos_group {
                checked.2 += 1;
            }
        } else {
            assert_eq!(customer.group, pos_group, "{email}: POS only");
            assert_eq!(customer.accepts_marketing, Some(pos_marketing), "{email}: POS only");
            assert_eq!(customer.properties["known_in"], json!("pos"));
            checked.1 += 1;
        }
        assert_eq!(customer.properties["customer_group"], customer.group.clone().map_or(Value::Null, |g| json!(g)));
    }
    assert!(checked.0 >= 20 && checked.1 >= 40 && checked.2 >= 5, "the seed covers every rule: {checked:?}");
    // eCom-only people: odd ones bought online (k % 4 == 3 only by an order eCom's counters do not show yet).
    for k in 1..=18u64 {
        let email = format!("online{k}@example.com");
        match view.get(&email) {
            Some(customer) => {
                assert_eq!(k % 2, 1, "{email} never bought online, yet is in the view");
                assert_eq!(customer.identity.id, format!("ecom:{}", 9000 + k));
                assert_eq!(customer.properties["known_in"], json!("ecom"));
            }
            None => assert_eq!(k % 2, 0, "{email} bought online, yet is missing"),
        }
    }
    let notices = People::notices(state.as_ref(), "store", 500).await.unwrap();
    let rows = state.source_state_scan("store", "notice:", 10_000).await.unwrap();
    assert_eq!(rows.len(), notices.len(), "no empty notice row per person to crowd a listing");
    let conflicts = notices.iter().filter(|n| n.starts_with("group conflict")).count();
    assert_eq!(conflicts, checked.2, "every group conflict is listed: {notices:#?}");
    assert!(
        notices.iter().any(|n| n.contains("x-0041") && n.contains("x-0040") && n.contains("p***@example.com")),
        "{notices:#?}"
    );
    assert!(notices.iter().all(|n| !n.contains("person40@")), "notices show no email");
}

#[tokio::test]
async fn sales_become_orders_voids_cancel_and_returns_refund_the_original() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(30, 60);
    let (_account, mut source) = sandbox_source(&sandbox, Arc::new(MemoryStore::new())).await;
    let mut checkpoints = HashMap::new();
    let (records, _) = pass(source.as_mut(), &mut checkpoints).await;
    let order = |id: &str| {
        records.iter().find_map(|r| match r {
            Record::Order(o) if o.identity.id == id => Some(o.clone()),
            _ => None,
        })
    };
    let first = order("s-00001").unwrap();
    assert_eq!(first.status, OrderStatus::Completed);
    assert_eq!(
        first.totals.total.amount,
        first.totals.subtotal.amount + first.totals.tax.amount,
        "total = total_price + total_tax"
    );
    assert_eq!(first.totals.total.currency.as_str(), "NZD", "the outlet's currency");
    assert_eq!(first.lines[0].name, "Product 2", "line names from the products");
    assert_eq!(first.person.email.as_deref(), Some("person8@example.com"), "the buyer through the merge");
    assert_eq!(order("s-00013").unwrap().status, OrderStatus::Pending, "a lay-by is not an order yet");
    assert_eq!(order("s-00029").unwrap().status, OrderStatus::Cancelled, "a void");
    assert_eq!(order("s-00019").unwrap().status, OrderStatus::Completed, "ONACCOUNT_CLOSED is closed");
    let refund = records
        .iter()
        .find_map(|r| match r {
            Record::Refund(refund) if refund.order_id == "s-00023" => Some(refund.clone()),
            _ => None,
        })
        .expect("the return of sale 23");
    assert!(refund.amount.amount > rust_decimal::Decimal::ZERO);
    assert!(order("s-00011").unwrap().person.email.is_none(), "a walk-in sale has no buyer");
    let web = records.iter().find_map(|r| match r {
        Record::Order(o) if o.identity.id.starts_with("s-web-") => Some(o.clone()),
        _ => None,
    });
    assert_eq!(web.unwrap().channel, tillflow_core::model::Channel::Online, "eCom orders arrive as ECOMMERCE sales");
}

#[tokio::test]
async fn a_version_feed_ends_on_an_empty_page_and_a_second_pass_reads_nothing_new() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(30, 60);
    let (_account, mut source) = sandbox_source(&sandbox, Arc::new(MemoryStore::new())).await;
    let mut checkpoints = HashMap::new();
    let (_, last_pages) = pass(source.as_mut(), &mut checkpoints).await;
    assert_eq!(last_pages[0], 0, "the customers feed ends on a page with no data");
    assert_eq!(*last_pages.last().unwrap(), 0, "so does the sales feed");
    let (again, _) = pass(source.as_mut(), &mut checkpoints).await;
    let orders = again.iter().filter(|r| matches!(r, Record::Order(_) | Record::Refund(_))).count();
    assert_eq!(orders, 0, "no sale is read twice");
    // A sale voided since: read again, once, as a cancellation.
    sandbox.world().lock().unwrap().void_sale("s-00001");
    let (third, _) = pass(source.as_mut(), &mut checkpoints).await;
    let changed: Vec<(String, OrderStatus)> = third
        .iter()
        .filter_map(|r| match r {
            Record::Order(o) => Some((o.identity.id.to_string(), o.status.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(changed, vec![("s-00001".to_owned(), OrderStatus::Cancelled)]);
}

#[tokio::test]
async fn rotating_refresh_tokens_are_stored_before_use_and_a_dated_429_is_waited_out() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(10, 10);
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let oauth = oauth_config(&sandbox);
    sandbox.world().lock().unwrap().throttle_next = 2;
    let account = open(oauth.clone(), state.clone());
    let mut checkpoints = HashMap::new();
    let (records, _) = pass(account.reader().as_mut(), &mut checkpoints).await;
    assert!(records.iter().any(|r| matches!(r, Record::Order(_))));
    let world = sandbox.world();
    assert_eq!(world.lock().unwrap().throttled, 2, "two 429s with an HTTP-date Retry-After, then the pass went on");
    let stored = state.secret_get("retail-pos:store", "refresh_token").await.unwrap();
    assert_eq!(stored.as_deref(), Some(world.lock().unwrap().refresh_token.as_str()), "the rotated token is kept");
    // A new process starts from the stored token (the configured one is revoked).
    let again = open(oauth, state.clone());
    again.check().await.expect("the stored refresh token works after a restart");
}

#[tokio::test]
async fn webhooks_only_trigger_a_fetch_and_a_forged_ecom_one_is_refused() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(30, 30);
    let mut config = sandbox_config(&sandbox);
    config.ecom.as_mut().unwrap().client_secret = Some(SecretString::from(sb::ECOM_CLIENT_SECRET));
    let account = open(config, Arc::new(MemoryStore::new()));
    // A POS payload claiming another email: the record is fetched, the claim ignored.
    let (headers, body) = sb::pos_webhook(
        &json!({"id": sb::pos_id(2), "customer_code": "TILL-2", "email": "forged@evil.test", "contact_first_name": "Mallory"}),
    );
    let request = WebhookRequest { headers: headers.clone(), body: body.clone() };
    assert_eq!(account.verify_webhook(&request), WebhookVerdict::Accept);
    let item = tillflow_core::source::InboxItem {
        id: 1,
        source: "store".into(),
        received_at: jiff::Timestamp::now(),
        headers,
        body,
    };
    let records = account.reader().parse_webhook(&item).await.unwrap();
    let Some(Ok(Record::Customer(customer))) = records.first() else { panic!("the customer, fetched: {records:?}") };
    assert_eq!(customer.person.email.as_deref(), Some("person2@example.com"));
    assert_eq!(customer.person.first_name.as_deref(), Some("Till2"));
    let (headers, body) = sb::ecom_webhook("customer.updated", 5003, "not-the-secret");
    assert_eq!(account.verify_webhook(&WebhookRequest { headers, body }), WebhookVerdict::Unauthorized);
    let (headers, body) = sb::ecom_webhook("customer.updated", 5003, sb::ECOM_CLIENT_SECRET);
    assert_eq!(account.verify_webhook(&WebhookRequest { headers, body }), WebhookVerdict::Accept);
}

/// The soak posts the sandbox's own delivery of each live sale: it must be
/// one the source accepts and turns into that sale, fetched.
#[tokio::test]
async fn a_live_sales_webhook_is_accepted_and_fetches_that_sale() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(30, 30);
    let account = open(sandbox_config(&sandbox), Arc::new(MemoryStore::new()));
    assert!(sandbox.sale_webhook(7).is_none(), "no delivery before the sale is rung");
    assert!(sandbox.ring_sale(7));
    let delivery = sandbox.sale_webhook(7).expect("the sale's delivery");
    let request = WebhookRequest { headers: delivery.headers.clone(), body: delivery.body.clone() };
    assert_eq!(account.verify_webhook(&request), WebhookVerdict::Accept);
    let item = tillflow_core::source::InboxItem {
        id: 1,
        source: "store".into(),
        received_at: jiff::Timestamp::now(),
        headers: delivery.headers,
        body: delivery.body,
    };
    let records = account.reader().parse_webhook(&item).await.unwrap();
    let orders: Vec<&str> = records
        .iter()
        .filter_map(|record| match record {
            Ok(Record::Order(order)) => Some(order.identity.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(orders, ["s-live-7"], "the sale, fetched (its buyer beside it): {records:?}");
}

#[test]
fn a_config_names_what_is_wrong() {
    let mut both = config("https://mock.example", None);
    both.client_id = Some("id".into());
    let problem = both.validate().unwrap_err().to_string();
    assert!(problem.contains("personal_token") && problem.contains("client_id"), "{problem}");
    let mut half = config("https://mock.example", None);
    half.personal_token = None;
    half.client_id = Some("id".into());
    half.client_secret = Some(SecretString::from("s"));
    assert!(half.validate().unwrap_err().to_string().contains("refresh_token"));
    let mut store = config("https://mock.example", Some("https://ecom.example"));
    store.ecom.as_mut().unwrap().store_id = "abc".into();
    assert!(store.validate().unwrap_err().to_string().contains("ecom.store_id"));
}

#[tokio::test]
async fn an_ecom_plan_without_customer_groups_is_read_as_no_groups() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(MockStore { count: 3, no_groups: true }).mount(&server).await;
    let account = open(config(&server.uri(), Some(&format!("{}/api/v3", server.uri()))), Arc::new(MemoryStore::new()));
    let mut source = account.reader();
    let mut checkpoints = HashMap::new();
    let (records, _) = pass(source.as_mut(), &mut checkpoints).await;
    assert_eq!(records.iter().filter(|r| matches!(r, Record::Order(_))).count(), 3, "the pass goes on");
}

#[tokio::test]
async fn a_refresh_token_authorized_anew_in_the_config_takes_over_from_the_stored_one() {
    let sandbox = RetailPosSandbox::start().await.unwrap();
    sandbox.seed(5, 5);
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let mut oauth = oauth_config(&sandbox);
    open(oauth.clone(), state.clone()).check().await.expect("the first grant works");
    // The grant is lost (an answer lost on the wire); the operator authorizes
    // tillflow again and puts the new refresh token in the config.
    sandbox.world().lock().unwrap().refresh_token = "xs-reauthorized".into();
    let stale = open(oauth.clone(), state.clone()).check().await.unwrap_err();
    assert!(stale.to_string().contains("authorize tillflow again"), "{stale}");
    oauth.refresh_token = Some(SecretString::from("xs-reauthorized"));
    open(oauth.clone(), state.clone()).check().await.expect("the new token is used, not the stored revoked one");
    // And from then on its rotations are kept as before.
    let rotated = state.secret_get("retail-pos:store", "refresh_token").await.unwrap();
    assert_eq!(rotated.as_deref(), Some(sandbox.world().lock().unwrap().refresh_token.as_str()));
    open(oauth, state).check().await.expect("a restart uses the stored rotation of the new grant");
}
