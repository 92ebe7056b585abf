//! A stateful in-memory Lightspeed R-Series (feature `sandbox`): OAuth with
//! rotating refresh tokens (the old one revoked once the new access token is
//! used), `Sale.json`/`Customer.json` with `timeStamp` filters, `sort`,
//! `limit` and opaque `next` links, the string-typed one-or-many JSON, a leaky
//! bucket with its headers and 429s, and deterministic seeded sales with
//! refunds, voids, shipments, sales worth 0, customers without an email, and
//! a `createTime` (rung up) minutes to weeks before `completeTime` (paid).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tillflow_http::sandbox::{Faults, SandboxServer, any_loopback_port};
use tillflow_kit::sandbox::{Sandbox, SandboxOptions, Starting};

pub const CATEGORIES: [&str; 5] = ["Shirts", "Shoes", "Accessories", "Bags", "Hats"];

pub struct LightspeedWorld {
    pub sales: Vec<Value>,
    pub customers: Vec<Value>,
    /// saleLineID → saleID.
    pub lines: HashMap<String, String>,
    client_secret: String,
    /// Refresh tokens that still buy access tokens: every one issued, until
    /// an access token bought with it is used (Lightspeed's rule: "once the
    /// new access token is used to authenticate a request, the old refresh
    /// token will be revoked"). A refresh whose answer was lost thus leaves
    /// the token the client holds valid.
    refresh_tokens: HashSet<String>,
    /// The refresh token the account started with the account started with (what an operator configures).
    first_refresh_token: String,
    /// How many sales `seed` made (refunds not counted).
    pub seeded_sales: u64,
    access_tokens: HashSet<String>,
    /// Access token → the refresh token that bought it, revoked at its first use.
    revokes_on_use: HashMap<String, String>,
    next_token: u64,
    pub refreshes: u64,
    pub requests: u64,
    bucket: f64,
    bucket_at: Instant,
    /// Drips per second; the real API drips 1 a second.
    pub drip_rate: f64,
    pub bucket_size: f64,
    next_sale: u64,
    next_line: u64,
    base: String,
    account: String,
}

fn stamp(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

pub fn seeded_customer(n: u64, at: jiff::Timestamp) -> Value {
    let emails = if n.is_multiple_of(11) {
        json!("")
    } else {
        json!({"ContactEmail": {"address": format!("shopper{n}@example.com"), "useType": "Primary"}})
    };
    json!({
        "customerID": n.to_string(), "firstName": format!("Shopper{n}"), "lastName": "Lane", "title": "", "company": if n.is_multiple_of(5) { "Acme" } else { "" },
        "createTime": stamp(at), "timeStamp": stamp(at), "archived": "false", "customerTypeID": "0",
        "Contact": {"noEmail": "false", "noPhone": "false", "noMail": "false", "Emails": emails,
                    "Phones": {"ContactPhone": {"number": format!("+1 415 555 {:04}", n % 10000), "useType": "Mobile"}},
                    "Addresses": {"ContactAddress": {"address1": "1 Market St", "city": "San Francisco", "stateCode": "CA", "zip": "94105", "countryCode": "US"}}}
    })
}

impl LightspeedWorld {
    fn customer(&self, id: u64) -> Option<Value> {
        self.customers.iter().find(|c| c["customerID"] == json!(id.to_string())).cloned()
    }

    fn line(&mut self, sale: u64, item: u64, quantity: i64, cents: i64, parent: Option<&str>) -> Value {
        self.next_line += 1;
        let id = self.next_line.to_string();
        self.lines.insert(id.clone(), sale.to_string());
        let category = (item % CATEGORIES.len() as u64) + 1;
        json!({
            "saleLineID": id, "unitQuantity": quantity.to_string(), "unitPrice": money(cents), "calcSubtotal": money(cents * quantity),
            "calcLineDiscount": "0", "calcTotal": money(cents * quantity), "itemID": item.to_string(), "saleID": sale.to_string(),
            "parentSaleLineID": parent.unwrap_or("0"), "shopID": "1",
            "Item": {"itemID": item.to_string(), "description": format!("{} #{item}", CATEGORIES[(category - 1) as usize]), "categoryID": category.to_string(), "customSku": format!("SKU{item}")}
        })
    }

    /// Adds a sale completed at `at`, rung up a few minutes before (every
    /// 50th was parked as a layaway three weeks before); returns its id.
    pub fn add_sale(&mut self, customer: Option<u64>, items: &[(u64, i64)], at: jiff::Timestamp) -> u64 {
        let id = self.next_sale + 1;
        let opened = if id.is_multiple_of(50) {
            at - jiff::SignedDuration::from_hours(24 * 21)
        } else {
            at - jiff::SignedDuration::from_mins((id % 25 + 2) as i64)
        };
        self.add_sale_opened(customer, items, opened, at)
    }

    /// Adds a sale opened (`createTime`) at `opened` and completed at
    /// `completed`; returns its id.
    pub fn add_sale_opened(
        &mut self,
        customer: Option<u64>,
        items: &[(u64, i64)],
        opened: jiff::Timestamp,
        completed: jiff::Timestamp,
    ) -> u64 {
        let at = completed;
        self.next_sale += 1;
        let id = self.next_sale;
        let lines: Vec<Value> = items.iter().map(|(item, cents)| self.line(id, *item, 1, *cents, None)).collect();
        let total: i64 = items.iter().map(|(_, cents)| cents).sum();
        let mut sale = json!({
            "saleID": id.to_string(), "timeStamp": stamp(at), "createTime": stamp(opened), "completeTime": stamp(at), "updateTime": stamp(at),
            "completed": "true", "voided": "false", "archived": "false", "ticketNumber": format!("2200{id:08}"),
            "calcSubtotal": money(total), "calcDiscount": "0", "calcTax1": "0", "calcTax2": "0", "calcTotal": money(total), "total": money(total),
            "customerID": customer.map(|c| c.to_string()).unwrap_or_else(|| "0".into()),
            "shopID": if id.is_multiple_of(2) { "1" } else { "2" }, "registerID": "5", "shipToID": "0",
            "SaleLines": {"SaleLine": if lines.len() == 1 { lines[0].clone() } else { Value::Array(lines) }},
            "SalePayments": {"SalePayment": {"salePaymentID": id.to_string(), "amount": money(total)}}
        });
        if let Some(customer) = customer.and_then(|c| self.customer(c)) {
            sale["Customer"] = customer;
        }
        self.sales.push(sale);
        id
    }

    /// Refunds every line of sale `id` with a new sale; returns its id.
    pub fn refund_sale(&mut self, id: u64, at: jiff::Timestamp) -> u64 {
        let original = self.sales.iter().find(|s| s["saleID"] == json!(id.to_string())).cloned().expect("sale exists");
        let lines = match &original["SaleLines"]["SaleLine"] {
            Value::Array(lines) => lines.clone(),
            line @ Value::Object(_) => vec![line.clone()],
            _ => Vec::new(),
        };
        self.next_sale += 1;
        let refund = self.next_sale;
        let mut refund_lines = Vec::new();
        let mut total = 0;
        for line in &lines {
            let text = |key: &str| line[key].as_str().unwrap_or("").to_owned();
            let cents = (text("unitPrice").parse::<f64>().unwrap_or(0.0) * 100.0).round() as i64;
            let item = text("itemID").parse().unwrap_or(0);
            let parent = text("saleLineID");
            refund_lines.push(self.line(refund, item, -1, cents, Some(&parent)));
            total -= cents;
        }
        let mut sale = original.clone();
        for (key, value) in [
            ("saleID", json!(refund.to_string())),
            ("timeStamp", json!(stamp(at))),
            ("createTime", json!(stamp(at - jiff::SignedDuration::from_mins(3)))),
            ("completeTime", json!(stamp(at))),
            ("updateTime", json!(stamp(at))),
            ("calcSubtotal", json!(money(total))),
            ("calcTotal", json!(money(total))),
            ("total", json!(money(total))),
            ("SaleLines", json!({"SaleLine": refund_lines})),
        ] {
            sale[key] = value;
        }
        self.sales.push(sale);
        refund
    }

    fn admit_bucket(&mut self) -> Result<(f64, f64), u64> {
        let now = Instant::now();
        let drained = now.duration_since(self.bucket_at).as_secs_f64() * self.drip_rate;
        self.bucket = (self.bucket - drained).max(0.0);
        self.bucket_at = now;
        if self.bucket + 1.0 > self.bucket_size {
            return Err(((self.bucket + 1.0 - self.bucket_size) / self.drip_rate).ceil().max(1.0) as u64);
        }
        self.bucket += 1.0;
        Ok((self.bucket, self.bucket_size))
    }
}

pub struct LightspeedSandbox {
    world: Arc<Mutex<LightspeedWorld>>,
    server: SandboxServer,
}

/// The account and credentials of a sandbox started through the kit.
pub const ACCOUNT: &str = "4242";
pub const CLIENT_SECRET: &str = "ls_secret_sandbox";
pub const REFRESH_TOKEN: &str = "rt-sandbox";

/// Starts a sandbox for the kit, seeded with `options.orders` sales over
/// `options.customers` customers.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = LightspeedSandbox::start_on(options.address, ACCOUNT, CLIENT_SECRET, REFRESH_TOKEN).await?;
        sandbox.seed(options.customers, options.orders);
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for LightspeedSandbox {
    fn ring_sale(&self, n: u64) -> bool {
        let mut world = self.world.lock().expect("world");
        let customer = n % (world.customers.len() as u64).max(1) + 1;
        world.add_sale(Some(customer), &[(n % 20 + 1, 1750)], jiff::Timestamp::now());
        true
    }

    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        let world = self.world.lock().expect("world");
        format!(
            "account_id = \"{}\"\nclient_id = \"tillflow\"\nclient_secret = \"{}\"\nrefresh_token = \"{}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"\n",
            world.account,
            world.client_secret,
            world.first_refresh_token,
            self.server.base_url(),
            self.token_url()
        )
    }

    fn credentials(&self) -> String {
        let world = self.world.lock().expect("world");
        format!(
            "account_id = \"{}\"   client_secret = \"{}\"   refresh_token = \"{}\"   token_url = \"{}\"",
            world.account,
            world.client_secret,
            world.first_refresh_token,
            self.token_url()
        )
    }

    fn describe(&self) -> String {
        let world = self.world.lock().expect("world");
        format!(
            "a Lightspeed R-Series store with {} sales (refunds, voids, shipments) over {} customers",
            world.seeded_sales,
            world.customers.len()
        )
    }
}

impl LightspeedSandbox {
    /// Starts an empty account `account` whose first refresh token is `refresh_token`.
    pub async fn start(account: &str, client_secret: &str, refresh_token: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), account, client_secret, refresh_token).await
    }

    pub async fn start_on(
        address: SocketAddr,
        account: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let world = Arc::new(Mutex::new(LightspeedWorld {
            sales: Vec::new(),
            customers: Vec::new(),
            lines: HashMap::new(),
            client_secret: client_secret.to_owned(),
            refresh_tokens: HashSet::from([refresh_token.to_owned()]),
            first_refresh_token: refresh_token.to_owned(),
            seeded_sales: 0,
            access_tokens: HashSet::new(),
            revokes_on_use: HashMap::new(),
            next_token: 0,
            refreshes: 0,
            requests: 0,
            bucket: 0.0,
            bucket_at: Instant::now(),
            drip_rate: 1_000.0,
            bucket_size: 90.0,
            next_sale: 0,
            next_line: 0,
            base: format!("http://{address}"),
            account: account.to_owned(),
        }));
        let router = Router::new()
            .route("/auth/oauth/token", post(token))
            .route("/API/V3/Account/{account}", get(account_info))
            .route("/API/V3/Account/{account}/Sale.json", get(sales))
            .route("/API/V3/Account/{account}/Customer.json", get(customers))
            .route("/API/V3/Account/{account}/Category.json", get(categories))
            .route("/API/V3/Account/{account}/Shop.json", get(shops))
            .route("/API/V3/Account/{account}/SaleLine/{line}", get(sale_line))
            .with_state(world.clone());
        let server = SandboxServer::serve_on(listener, router)?;
        Ok(Self { world, server })
    }

    pub fn token_url(&self) -> String {
        format!("{}/auth/oauth/token", self.server.base_url())
    }

    pub fn world(&self) -> Arc<Mutex<LightspeedWorld>> {
        self.world.clone()
    }

    /// `customers` customers and `sales` sales in the past year; every 9th
    /// sale has no customer, every 40th is worth 0, every 30th is voided,
    /// every 12th is shipped, and every 15th is refunded by a later sale.
    pub fn seed(&self, customers: u64, sales: u64) {
        let mut world = self.world.lock().expect("world");
        world.seeded_sales = sales;
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 365);
        world.customers = (1..=customers).map(|n| seeded_customer(n, start)).collect();
        let step = (365 * 24 * 3600) / (sales.max(1) as i64 + 1);
        let mut refunds = Vec::new();
        for n in 1..=sales {
            let at = start + jiff::SignedDuration::from_secs(step * n as i64);
            let customer = (!n.is_multiple_of(9)).then_some(n % customers.max(1) + 1);
            let cents = if n.is_multiple_of(40) { 0 } else { 1500 + (n % 9) as i64 * 250 };
            let items: Vec<(u64, i64)> = (0..(n % 3 + 1)).map(|k| (n % 20 + k + 1, cents)).collect();
            let id = world.add_sale(customer, &items, at);
            let sale = world.sales.last_mut().expect("just added");
            if n.is_multiple_of(30) {
                sale["voided"] = json!("true");
            } else if n.is_multiple_of(12) && customer.is_some() {
                sale["shipToID"] = json!(n.to_string());
                sale["ShipTo"] = json!({"shipToID": n.to_string(), "shipped": "true", "timeStamp": stamp(at), "customerID": customer.unwrap_or(0).to_string(), "saleID": id.to_string()});
            } else if n.is_multiple_of(15) {
                refunds.push((id, at + jiff::SignedDuration::from_hours(2)));
            }
        }
        for (id, at) in refunds {
            world.refund_sale(id, at);
        }
        world.sales.sort_by(|a, b| a["timeStamp"].as_str().cmp(&b["timeStamp"].as_str()));
    }
}

type Shared = State<Arc<Mutex<LightspeedWorld>>>;

fn too_many(wait: u64) -> Response {
    let mut response =
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"httpCode": "429", "message": "Rate limit exceeded"})))
            .into_response();
    response.headers_mut().insert("retry-after", wait.into());
    response.headers_mut().insert("x-ls-api-ratelimit-type", "api-leaky-bucket".parse().expect("header"));
    response
}

/// Auth and the bucket; `Err` is the response to send instead.
#[allow(clippy::result_large_err)]
fn admit(world: &mut LightspeedWorld, headers: &HeaderMap) -> Result<(f64, f64), Response> {
    world.requests += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !world.access_tokens.contains(token) {
        return Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "access_denied", "hint": "Access token could not be verified"})),
        )
            .into_response());
    }
    if let Some(spent) = world.revokes_on_use.remove(token) {
        world.refresh_tokens.remove(&spent);
    }
    world.admit_bucket().map_err(too_many)
}

fn listing(
    world: &LightspeedWorld,
    kind: &str,
    items: Vec<&Value>,
    query: &HashMap<String, String>,
    level: (f64, f64),
    path: &str,
) -> Response {
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100).min(100);
    let after: usize = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(after).take(limit).map(|item| (*item).clone()).collect();
    let next = if after + limit < items.len() {
        let mut carried: Vec<String> =
            query.iter().filter(|(k, _)| *k != "after").map(|(k, v)| format!("{k}={}", encode(v))).collect();
        carried.sort();
        format!("{}/API/V3/Account/{}/{path}?{}&after={}", world.base, world.account, carried.join("&"), after + limit)
    } else {
        String::new()
    };
    let mut body = json!({"@attributes": {"next": next, "previous": ""}});
    if page.len() == 1 {
        body[kind] = page[0].clone();
    } else if !page.is_empty() {
        body[kind] = Value::Array(page);
    }
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-ls-api-bucket-level", format!("{}/{}", level.0, level.1).parse().expect("header"));
    headers.insert("x-ls-api-drip-rate", format!("{}", world.drip_rate).parse().expect("header"));
    response
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `timeStamp=>=,<value>` (and `>`) filter.
fn since_filter(query: &HashMap<String, String>) -> Option<(bool, String)> {
    let raw = query.get("timeStamp")?;
    let (operator, value) = raw.split_once(',')?;
    Some((operator == ">=", value.to_owned()))
}

fn filtered<'a>(items: &'a [Value], query: &HashMap<String, String>) -> Vec<&'a Value> {
    let filter = since_filter(query);
    let mut selected: Vec<&Value> = items
        .iter()
        .filter(|item| match &filter {
            Some((inclusive, since)) => {
                let stamp = item["timeStamp"].as_str().unwrap_or("");
                if *inclusive { stamp >= since.as_str() } else { stamp > since.as_str() }
            }
            None => true,
        })
        .collect();
    if query.get("sort").map(String::as_str) == Some("timeStamp") {
        selected.sort_by(|a, b| a["timeStamp"].as_str().cmp(&b["timeStamp"].as_str()));
    }
    selected
}

async fn token(State(world): Shared, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let given = body["refresh_token"].as_str().unwrap_or("");
    let valid = world.refresh_tokens.contains(given);
    if body["grant_type"] != "refresh_token" || body["client_secret"] != json!(world.client_secret) || !valid {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "The refresh token is invalid."})),
        )
            .into_response();
    }
    world.refreshes += 1;
    world.next_token += 1;
    let refresh = format!("rt-{}", world.next_token);
    let access = format!("at-{}", world.next_token);
    world.refresh_tokens.insert(refresh.clone());
    world.access_tokens.insert(access.clone());
    world.revokes_on_use.insert(access.clone(), given.to_owned());
    axum::Json(json!({"token_type": "Bearer", "expires_in": 1800, "access_token": access, "refresh_token": refresh}))
        .into_response()
}

async fn sales(State(world): Shared, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = world.lock().expect("world");
    let level = match admit(&mut world, &headers) {
        Ok(level) => level,
        Err(response) => return response,
    };
    let items = filtered(&world.sales, &query);
    listing(&world, "Sale", items, &query, level, "Sale.json")
}

async fn customers(State(world): Shared, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = world.lock().expect("world");
    let level = match admit(&mut world, &headers) {
        Ok(level) => level,
        Err(response) => return response,
    };
    let items = filtered(&world.customers, &query);
    listing(&world, "Customer", items, &query, level, "Customer.json")
}

async fn categories(
    State(world): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut world = world.lock().expect("world");
    let level = match admit(&mut world, &headers) {
        Ok(level) => level,
        Err(response) => return response,
    };
    let items: Vec<Value> = CATEGORIES
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"categoryID": (i + 1).to_string(), "name": name}))
        .collect();
    listing(&world, "Category", items.iter().collect(), &query, level, "Category.json")
}

async fn shops(State(world): Shared, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = world.lock().expect("world");
    let level = match admit(&mut world, &headers) {
        Ok(level) => level,
        Err(response) => return response,
    };
    let items = [json!({"shopID": "1", "name": "Mission Street"}), json!({"shopID": "2", "name": "Ferry Building"})];
    listing(&world, "Shop", items.iter().collect(), &query, level, "Shop.json")
}

/// `GET /API/V3/Account/{id}.json` (what `tillflow check` calls).
async fn account_info(State(world): Shared, headers: HeaderMap, Path(file): Path<String>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers) {
        return response;
    }
    match file.strip_suffix(".json") {
        Some(id) if id == world.account => {
            axum::Json(json!({"@attributes": {"count": "1"}, "Account": {"accountID": id, "name": "Sandbox store"}}))
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, axum::Json(json!({"httpCode": "404", "message": "Account not found"})))
            .into_response(),
    }
}

async fn sale_line(State(world): Shared, headers: HeaderMap, Path((_, line)): Path<(String, String)>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers) {
        return response;
    }
    let id = line.trim_end_matches(".json");
    match world.lines.get(id) {
        Some(sale) => {
            axum::Json(json!({"@attributes": {"count": "1"}, "SaleLine": {"saleLineID": id, "saleID": sale}}))
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"httpCode": "404", "message": "SaleLine not found"})))
            .into_response(),
    }
}
