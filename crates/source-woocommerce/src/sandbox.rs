//! A stateful in-memory WooCommerce (feature `sandbox`): the REST API v3
//! routes tillflow reads, with real auth, `modified_after`/`offset`/`page`
//! paging, `X-WP-Total(Pages)` headers, WordPress's `_fields` and the
//! official JSON shapes, over
//! deterministic seeded data with Oliver POS and online orders. Tests and the
//! demo change it through [`WooSandbox`]'s methods.
//!
//! Seeded orders and customers are generated when served (a million-order
//! history costs a few bytes an order), and the listing is kept in
//! modification order so a `modified_after` page is a binary search.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tillflow_http::sandbox::{Faults, SandboxServer, any_loopback_port};
use tillflow_kit::sandbox::{Sandbox, SandboxOptions, Starting};

mod fields;
mod seeded;
use fields::Fields;
use seeded::{Gmt, SeededCustomer, SeededOrder, dated};

/// One order of the listing: a seeded order is generated when served; an
/// order changed or added since is kept whole.
enum StoredOrder {
    Seeded(u64),
    Kept(Box<Value>),
}

/// An order as a listing page writes it.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Served<'a> {
    Seeded(Box<SeededOrder>),
    Kept(&'a Value),
}

/// The webhook secret the sandbox signs its deliveries with.
pub const WEBHOOK_SECRET: &str = "whsec_sandbox";

/// How the seeded orders' dates follow their ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum History {
    /// Order `n` is dated by `n` modulo 1,000 across the year, so a thousand
    /// orders share each date and a page listed by date holds ids from the
    /// whole history: ties at every page boundary, and the state's rows
    /// (keyed by order id) of one page on as many B-tree leaves as it has
    /// rows. The shape the tests page and checkpoint through.
    #[default]
    Interleaved,
    /// As a real shop's: ids rise with the dates across the year, each
    /// [`CHRONOLOGICAL_RUN`] consecutive orders sharing a minute, so pages
    /// still meet ties but hold neighbouring ids.
    Chronological,
}

/// Orders sharing each date in a [`History::Chronological`] history.
pub const CHRONOLOGICAL_RUN: u64 = 10;

/// What the seeded history was made from.
#[derive(Clone, Copy)]
struct Seed {
    orders: u64,
    customers: u64,
    start: jiff::Timestamp,
    history: History,
}

impl Seed {
    /// When seeded order `n` was created (and last modified).
    fn created(&self, n: u64) -> jiff::Timestamp {
        match self.history {
            History::Interleaved => seeded_created(n, self.start),
            History::Chronological => {
                let first_of_run = (n - 1) / CHRONOLOGICAL_RUN * CHRONOLOGICAL_RUN;
                let minutes = YEAR_MINUTES * (self.orders - first_of_run) / self.orders.max(1);
                self.start - jiff::SignedDuration::from_mins(minutes as i64 + 1)
            }
        }
    }

    fn order(&self, n: u64) -> SeededOrder {
        SeededOrder::new(n, self.customers, self.created(n))
    }
}

const YEAR_MINUTES: u64 = 365 * 24 * 60;

/// What the sandbox holds.
#[derive(Default)]
pub struct WooWorld {
    /// (date_modified_gmt in epoch seconds, order), in modification order
    /// (a change moves an order to the end).
    listing: Vec<(i64, StoredOrder)>,
    /// Order ids added after seeding.
    added: HashSet<u64>,
    seed: Option<Seed>,
    pub refunds: HashMap<u64, Vec<Value>>,
    next_refund_id: u64,
    consumer_key: String,
    consumer_secret: String,
}

/// Order `n` of the seeded history (see [`SeededOrder::new`]) as a JSON
/// value, for tests that change it before putting it back.
pub fn seeded_order(n: u64, customers: u64, start: jiff::Timestamp) -> Value {
    serde_json::to_value(SeededOrder::new(n, customers, seeded_created(n, start))).expect("a seeded order serializes")
}

/// A running sandbox on a loopback port.
pub struct WooSandbox {
    world: Arc<Mutex<WooWorld>>,
    server: SandboxServer,
}

/// The credentials of a sandbox started through the kit (`tillflow sandbox`, the demo).
pub const CONSUMER_KEY: &str = "ck_sandbox";
pub const CONSUMER_SECRET: &str = "cs_sandbox";

/// Starts a sandbox for the kit, seeded with `options.orders` orders over
/// `options.customers` customers.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = WooSandbox::start_on(options.address, CONSUMER_KEY, CONSUMER_SECRET).await?;
        sandbox.seed(options.customers, options.orders);
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for WooSandbox {
    /// A completed Oliver POS sale to a known customer (the seeded order
    /// number is picked so it is neither a guest's nor worth 0).
    fn ring_sale(&self, n: u64) -> bool {
        let customers = self.world.lock().expect("world").seed.map_or(1, |seed| seed.customers);
        let now = jiff::Timestamp::now();
        let mut order = seeded_order(10_000_002 + 30 * n, customers, now);
        let (id, customer) = (9_000_000 + n, n % customers.max(1) + 1);
        order["id"] = json!(id);
        order["number"] = json!(id.to_string());
        order["status"] = json!("completed");
        for field in ["date_created", "date_paid", "date_completed"] {
            dated(&mut order, field, now);
        }
        order["customer_id"] = json!(customer);
        order["billing"]["email"] = json!(format!("customer{customer}@example.com"));
        self.put_order(order);
        true
    }

    /// WooCommerce's `order.created` delivery of the live sale, signed with
    /// the webhook secret the sandbox's connector keys configure.
    fn sale_webhook(&self, n: u64) -> Option<tillflow_kit::sandbox::SandboxWebhook> {
        let body = serde_json::to_vec(&self.order(9_000_000 + n)?).ok()?;
        let secret = tillflow_http::SecretString::from(WEBHOOK_SECRET);
        let signature = tillflow_http::webhook::sign_hmac_sha256_base64(&secret, &body);
        let headers = [
            ("content-type", "application/json"),
            ("x-wc-webhook-topic", "order.created"),
            ("x-wc-webhook-signature", signature.as_str()),
        ];
        Some(tillflow_kit::sandbox::SandboxWebhook {
            headers: headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            body,
        })
    }

    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        let world = self.world.lock().expect("world");
        // The sandbox has no rate limit; a real shop's host may.
        format!(
            "base_url = \"{}\"\nconsumer_key = \"{}\"\nconsumer_secret = \"{}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\nrequests_per_second = 500\n",
            self.server.base_url(),
            world.consumer_key,
            world.consumer_secret
        )
    }

    fn credentials(&self) -> String {
        let world = self.world.lock().expect("world");
        format!("consumer_key = \"{}\"   consumer_secret = \"{}\"", world.consumer_key, world.consumer_secret)
    }

    fn describe(&self) -> String {
        let world = self.world.lock().expect("world");
        let (orders, customers) = world.seed.map(|seed| (seed.orders, seed.customers)).unwrap_or_default();
        format!("a WooCommerce shop with {orders} orders (Oliver POS and online) over {customers} customers")
    }
}

impl WooSandbox {
    /// Starts an empty sandbox that accepts these credentials.
    pub async fn start(consumer_key: &str, consumer_secret: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), consumer_key, consumer_secret).await
    }

    pub async fn start_on(address: SocketAddr, consumer_key: &str, consumer_secret: &str) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(WooWorld {
            consumer_key: consumer_key.to_owned(),
            consumer_secret: consumer_secret.to_owned(),
            next_refund_id: 100_000,
            ..WooWorld::default()
        }));
        let router = Router::new()
            .route("/wp-json/wc/v3/orders", get(list_orders))
            .route("/wp-json/wc/v3/orders/{id}/refunds", get(list_refunds))
            .route("/wp-json/wc/v3/customers", get(list_customers))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        Ok(Self { world, server })
    }

    /// Seeds `orders` orders over `customers` customers, in the past
    /// ([`History::Interleaved`]); every 20th order (+3) gets a refund of
    /// its first line.
    pub fn seed(&self, customers: u64, orders: u64) {
        self.seed_history(customers, orders, History::Interleaved);
    }

    /// Seeds as [`WooSandbox::seed`] does, the orders dated as `history` says.
    pub fn seed_history(&self, customers: u64, orders: u64, history: History) {
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let mut world = self.world.lock().expect("world");
        let seed = Seed { orders, customers, start, history };
        world.seed = Some(seed);
        world.added.clear();
        world.listing = (1..=orders).map(|n| (seed.created(n).as_second(), StoredOrder::Seeded(n))).collect();
        world.listing.sort_by_key(|(modified, _)| *modified);
        world.refunds.clear();
        for id in (1..=orders).filter(|n| n % 20 == 3) {
            let order = seed.order(id);
            let (amount, created) = (order.first_line_total().to_string(), order.created().to_string());
            world.add_refund_at(id, &amount, "Oliver POS Refund", &created, false);
        }
    }

    /// Changes an order as the shop would: its modification time becomes now
    /// and it moves to the end of the modified-ascending listing.
    pub fn update_order(&self, id: u64, change: impl FnOnce(&mut Value)) {
        let mut world = self.world.lock().expect("world");
        world.touch(id, change);
    }

    /// Adds (or replaces) an order, modified now.
    pub fn put_order(&self, mut order: Value) {
        let mut world = self.world.lock().expect("world");
        let id = order["id"].as_u64().expect("an order has a numeric id");
        if let Some(index) = world.position(id) {
            world.listing.remove(index);
        }
        let now = jiff::Timestamp::now();
        dated(&mut order, "date_modified", now);
        world.added.insert(id);
        world.listing.push((now.as_second(), StoredOrder::Kept(Box::new(order))));
    }

    /// Refunds `amount` ("12.50") of order `id` now; returns the refund id.
    pub fn refund(&self, id: u64, amount: &str, reason: &str) -> u64 {
        let mut world = self.world.lock().expect("world");
        let now = Gmt(jiff::Timestamp::now()).to_string();
        world.add_refund_at(id, amount, reason, &now, true)
    }

    pub fn order(&self, id: u64) -> Option<Value> {
        let world = self.world.lock().expect("world");
        world.position(id).map(|index| world.materialize(&world.listing[index].1))
    }

    pub fn world(&self) -> Arc<Mutex<WooWorld>> {
        self.world.clone()
    }
}

impl WooWorld {
    /// Every order as served, in modification order.
    pub fn orders(&self) -> impl Iterator<Item = Value> + '_ {
        self.listing.iter().map(|(_, stored)| self.materialize(stored))
    }

    fn exists(&self, id: u64) -> bool {
        self.added.contains(&id) || self.seed.is_some_and(|seed| (1..=seed.orders).contains(&id))
    }

    fn position(&self, id: u64) -> Option<usize> {
        if !self.exists(id) {
            return None;
        }
        self.listing.iter().position(|(_, stored)| match stored {
            StoredOrder::Seeded(n) => *n == id,
            StoredOrder::Kept(order) => order["id"] == json!(id),
        })
    }

    fn materialize(&self, stored: &StoredOrder) -> Value {
        match self.served(stored) {
            Served::Kept(order) => order.clone(),
            Served::Seeded(order) => serde_json::to_value(order).expect("a seeded order serializes"),
        }
    }

    /// `stored` as a listing serves it: a seeded order generated with the
    /// refunds made since seeding, a kept one as it is.
    fn served<'a>(&'a self, stored: &'a StoredOrder) -> Served<'a> {
        match stored {
            StoredOrder::Kept(order) => Served::Kept(order),
            StoredOrder::Seeded(n) => {
                let seed = self.seed.expect("seeded orders come from a seed");
                let mut order = seed.order(*n);
                order.refunds = self.refunds.get(n).into_iter().flatten().map(refund_summary).collect();
                Served::Seeded(Box::new(order))
            }
        }
    }

    fn touch(&mut self, id: u64, change: impl FnOnce(&mut Value)) {
        let index = self.position(id).expect("order exists");
        let (_, stored) = self.listing.remove(index);
        let mut order = self.materialize(&stored);
        change(&mut order);
        let now = jiff::Timestamp::now();
        dated(&mut order, "date_modified", now);
        self.added.insert(id);
        self.listing.push((now.as_second(), StoredOrder::Kept(Box::new(order))));
    }

    fn add_refund_at(&mut self, id: u64, amount: &str, reason: &str, at: &str, touch: bool) -> u64 {
        self.next_refund_id += 1;
        let refund_id = self.next_refund_id;
        self.refunds.entry(id).or_default().push(json!({
            "id": refund_id, "date_created_gmt": at, "amount": amount, "reason": reason,
            "refunded_by": 1, "refunded_payment": true, "meta_data": [], "line_items": []
        }));
        if touch {
            let summary = json!({"id": refund_id, "reason": reason, "total": format!("-{amount}")});
            self.touch(id, |order| order["refunds"].as_array_mut().expect("refunds").push(summary));
        }
        refund_id
    }

    fn authorized(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
        if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
            let expected = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.consumer_key, self.consumer_secret));
            return value == format!("Basic {expected}");
        }
        query.get("consumer_key") == Some(&self.consumer_key)
            && query.get("consumer_secret") == Some(&self.consumer_secret)
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})),
    )
        .into_response()
}

fn bad_param(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"code": "rest_invalid_param", "message": message, "data": {"status": 400}})),
    )
        .into_response()
}

/// When order `n` of an interleaved history was created (and last modified).
fn seeded_created(n: u64, start: jiff::Timestamp) -> jiff::Timestamp {
    start - jiff::SignedDuration::from_mins((YEAR_MINUTES * (n % 1000) / 1000) as i64 + 1)
}

/// How an order lists one of its refunds.
fn refund_summary(refund: &Value) -> Value {
    let amount = refund["amount"].as_str().unwrap_or("0");
    json!({"id": refund["id"], "reason": refund["reason"], "total": format!("-{amount}")})
}

/// The page `query` asks for out of `total` items, each with only the
/// fields its `_fields` names; `fetch(offset, count)` generates only the
/// page's items.
fn page_of<T: serde::Serialize>(
    total: usize,
    query: &HashMap<String, String>,
    fetch: impl FnOnce(usize, usize) -> Vec<T>,
) -> Response {
    let per_page: usize = query.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(10);
    if per_page == 0 || per_page > 100 {
        return bad_param("Invalid parameter(s): per_page");
    }
    let offset = match query.get("offset") {
        Some(offset) => offset.parse().unwrap_or(0),
        None => (query.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1) - 1) * per_page,
    };
    let offset = offset.min(total);
    let page = fetch(offset, per_page.min(total - offset));
    let mut response = match Fields::parse(query.get("_fields").map(String::as_str)) {
        None => axum::Json(page).into_response(),
        Some(fields) => axum::Json(page.iter().map(|item| fields.only(item)).collect::<Vec<_>>()).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert("x-wp-total", total.into());
    headers.insert("x-wp-totalpages", total.div_ceil(per_page).into());
    response
}

async fn list_orders(
    State(world): State<Arc<Mutex<WooWorld>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let world = world.lock().expect("world");
    if !world.authorized(&headers, &query) {
        return unauthorized();
    }
    if query.get("dates_are_gmt").map(String::as_str) != Some("true") && query.contains_key("modified_after") {
        return bad_param("this sandbox only answers modified_after with dates_are_gmt=true");
    }
    let first = match query.get("modified_after") {
        None => 0,
        Some(after) => match after.parse::<jiff::civil::DateTime>().and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC)) {
            Ok(after) => world.listing.partition_point(|(modified, _)| *modified <= after.timestamp().as_second()),
            Err(_) => return bad_param("Invalid parameter(s): modified_after"),
        },
    };
    let status = query.get("status").cloned().unwrap_or_else(|| "any".into());
    let listed = &world.listing[first..];
    if status == "any" {
        return page_of(listed.len(), &query, |offset, count| {
            listed[offset..offset + count].iter().map(|(_, stored)| world.served(stored)).collect()
        });
    }
    let matching: Vec<Value> =
        listed.iter().map(|(_, stored)| world.materialize(stored)).filter(|o| o["status"] == json!(status)).collect();
    page_of(matching.len(), &query, |offset, count| matching[offset..offset + count].to_vec())
}

async fn list_refunds(
    State(world): State<Arc<Mutex<WooWorld>>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let world = world.lock().expect("world");
    if !world.authorized(&headers, &query) {
        return unauthorized();
    }
    if !world.exists(id) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID."})),
        )
            .into_response();
    }
    let refunds = world.refunds.get(&id).map(Vec::as_slice).unwrap_or_default();
    page_of(refunds.len(), &query, |offset, count| refunds[offset..offset + count].to_vec())
}

async fn list_customers(
    State(world): State<Arc<Mutex<WooWorld>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let world = world.lock().expect("world");
    if !world.authorized(&headers, &query) {
        return unauthorized();
    }
    let (total, start) = world.seed.map_or((0, jiff::Timestamp::UNIX_EPOCH), |seed| (seed.customers, seed.start));
    page_of(total as usize, &query, |offset, count| {
        (offset as u64 + 1..=(offset + count) as u64).map(|n| SeededCustomer::new(n, start)).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client with the credentials "ck:cs" asking `query` sends.
    fn request(query: &[(&str, &str)]) -> (HeaderMap, Query<HashMap<String, String>>) {
        let mut headers = HeaderMap::new();
        let credentials = base64::engine::general_purpose::STANDARD.encode("ck:cs");
        headers.insert("authorization", format!("Basic {credentials}").parse().unwrap());
        (headers, Query(query.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()))
    }

    async fn body_of(response: Response) -> Vec<Value> {
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// A listing page's orders as a client reads them.
    async fn listed(world: &Arc<Mutex<WooWorld>>, query: &[(&str, &str)]) -> Vec<Value> {
        let (headers, query) = request(query);
        body_of(list_orders(State(world.clone()), headers, query).await).await
    }

    #[tokio::test]
    async fn the_customer_listing_pages_the_seeded_customers() {
        let sandbox = WooSandbox::start("ck", "cs").await.unwrap();
        sandbox.seed(25, 60);
        let (headers, query) = request(&[("per_page", "10"), ("page", "2")]);
        let response = list_customers(State(sandbox.world()), headers, query).await;
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!((header("x-wp-total"), header("x-wp-totalpages")), ("25".to_owned(), "3".to_owned()));
        let page = body_of(response).await;
        let ids: Vec<u64> = page.iter().map(|customer| customer["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (11..=20).collect::<Vec<_>>());
        // Every 17th customer has no address of its own; its billing address does.
        let customer = |id: u64| page.iter().find(|customer| customer["id"] == id).unwrap();
        assert_eq!(
            (customer(17)["email"].as_str(), customer(17)["billing"]["email"].as_str()),
            (Some(""), Some("customer17@example.com"))
        );
        assert_eq!(customer(18)["email"], "customer18@example.com");
        assert_eq!(
            (customer(18)["first_name"].as_str(), customer(18)["username"].as_str()),
            (Some("First18"), Some("user18"))
        );
        assert!(customer(18)["date_created_gmt"].as_str().unwrap().parse::<jiff::civil::DateTime>().is_ok());
    }

    /// A chronological history lists its orders by id, runs of
    /// `CHRONOLOGICAL_RUN` sharing a date, across the year before seeding;
    /// the interleaved one (the tests' shape) does not.
    #[tokio::test]
    async fn a_chronological_history_dates_its_orders_in_the_order_of_their_ids() {
        let sandbox = WooSandbox::start("ck", "cs").await.unwrap();
        sandbox.seed_history(10, 60, History::Chronological);
        let world = sandbox.world();
        let page = listed(&world, &[("per_page", "100")]).await;
        let ids: Vec<u64> = page.iter().map(|order| order["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (1..=60).collect::<Vec<_>>());
        let modified = |id: u64| page[id as usize - 1]["date_modified_gmt"].as_str().unwrap().to_owned();
        let run = CHRONOLOGICAL_RUN;
        assert_eq!(modified(1), modified(run), "a run shares its date");
        assert!(modified(run) < modified(run + 1), "the next run is later");
        let oldest: jiff::civil::DateTime = modified(1).parse().unwrap();
        let age = jiff::Timestamp::now().duration_since(oldest.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp());
        assert!(age > jiff::SignedDuration::from_hours(24 * 360), "the history spans the year: {age:?}");
        assert_eq!(page[22]["refunds"][0]["reason"], "Oliver POS Refund", "refunds are seeded alike");

        sandbox.seed(10, 60);
        let interleaved = listed(&world, &[("per_page", "100")]).await;
        assert_ne!(interleaved.iter().map(|order| order["id"].as_u64().unwrap()).collect::<Vec<_>>(), ids);
    }

    /// A seeded order has the official example's fields, in its order, its
    /// site-local times three hours behind the GMT ones; `_fields` leaves
    /// only those named, a seeded order and a changed (kept) one alike.
    #[tokio::test]
    async fn an_order_is_served_in_the_documented_fields_or_only_those_asked_for() {
        let sandbox = WooSandbox::start("ck", "cs").await.unwrap();
        sandbox.seed(10, 60);
        sandbox.update_order(8, |order| order["customer_note"] = json!("leave at the door"));
        let world = sandbox.world();
        let page = listed(&world, &[("per_page", "100")]).await;
        let example = tillflow_testkit::openapi::contract_json("woocommerce/examples/order_retrieve.json");
        let keys = |order: &Value| order.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&page[0]), keys(&example));
        let order = page.iter().find(|order| order["id"] == 5).unwrap();
        let at = |field: &str| order[field].as_str().unwrap().parse::<jiff::civil::DateTime>().unwrap();
        assert_eq!(
            at("date_created").checked_add(jiff::SignedDuration::from_hours(3)).unwrap(),
            at("date_created_gmt")
        );
        assert_eq!(at("date_paid_gmt"), at("date_created_gmt"));

        let asked = listed(&world, &[("per_page", "100"), ("_fields", "id,customer_note,date_modified_gmt")]).await;
        assert_eq!(asked.len(), 60);
        assert!(
            asked.iter().all(|order| keys(order) == ["customer_note", "date_modified_gmt", "id"]),
            "{:?}",
            asked[0]
        );
        let changed = asked.iter().find(|order| order["id"] == 8).unwrap();
        assert_eq!(changed["customer_note"], "leave at the door");
    }

    #[tokio::test]
    async fn a_listing_serves_each_order_as_it_is_materialized_refunds_and_changes_included() {
        let sandbox = WooSandbox::start("ck", "cs").await.unwrap();
        sandbox.seed(10, 60);
        sandbox.update_order(8, |order| order["status"] = json!("refunded"));
        let world = sandbox.world();
        let page = listed(&world, &[("per_page", "100")]).await;
        let materialized: Vec<Value> = world.lock().unwrap().orders().collect();
        assert_eq!(page.len(), 60);
        assert_eq!(page, materialized);

        // Seeded orders 3, 23 and 43 were refunded their first line when
        // seeded; they are served with the refund listed, the rest without.
        let order = |id: u64| page.iter().find(|order| order["id"] == id).unwrap().clone();
        let first_line_total = order(23)["line_items"][0]["total"].as_str().unwrap().to_owned();
        assert_eq!(order(23)["refunds"][0]["total"], format!("-{first_line_total}"));
        assert_eq!(order(23)["refunds"][0]["reason"], "Oliver POS Refund");
        assert_eq!(order(24)["refunds"], json!([]));
        assert_eq!((order(8)["status"].as_str(), page.last().unwrap()["id"].as_u64()), (Some("refunded"), Some(8)));
        assert_eq!(listed(&world, &[("per_page", "100"), ("status", "refunded")]).await, vec![order(8)]);
    }
}
