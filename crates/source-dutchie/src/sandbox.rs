//! A stateful in-memory Dutchie POS (feature `sandbox`): three child
//! locations of one parent, each with its own key (HTTP Basic, empty
//! password), `/whoami`, customers (some without an email, anonymous ones,
//! one person at two locations, medical and wholesale customers with their
//! medical fields filled in), the parent's products (a coupon, one without
//! an image, prices that differ by location), transactions with returns,
//! voids, a zero total, transfers and wholesale orders; transactions that
//! become visible only when revealed (Dutchie's data lags the till);
//! per-key, per-minute limits answered with Dutchie's 429 body and no
//! `Retry-After`; faults from the shared injector; `GET /sandbox/state`.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tillflow_http::sandbox::{SandboxServer, any_loopback_port};
use tillflow_kit::sandbox::{Sandbox, SandboxOptions, Starting};

/// The parent retailer every sandbox location belongs to.
pub const PARENT: (i64, &str) = (7, "Green Leaf Cannabis Co");
/// The locations: id, name, key.
pub const LOCATIONS: [(i64, &str, &str); 3] =
    [(101, "Downtown", "dk-downtown"), (102, "Airport", "dk-airport"), (103, "Uptown", "dk-uptown")];
/// A key of another parent's location, for tests.
pub const FOREIGN_KEY: &str = "dk-elsewhere";
/// A Downtown key without the Reporting role, for tests.
pub const NO_REPORTING_KEY: &str = "dk-downtown-crm";
/// The medical and identity values seeded customers hold: none may ever
/// reach a sink.
pub const MEDICAL_MARKERS: [&str; 4] = ["MMJ-SECRET", "Chronic pain (secret)", "dlh-secret", "note-secret"];

#[derive(Clone, Debug, Serialize)]
pub struct StoredTransaction {
    pub location: i64,
    pub record: Value,
    /// Dutchie shows it (its data lags the till).
    pub visible: bool,
}

#[derive(Default, Serialize)]
pub struct DutchieWorld {
    /// Per location id.
    pub customers: BTreeMap<i64, Vec<Value>>,
    pub products: Vec<Value>,
    pub transactions: Vec<StoredTransaction>,
    pub requests: u64,
    pub throttled: u64,
    /// `/reporting/*` requests per minute per key (the guide's 60); 0
    /// turns the limits off.
    pub reporting_per_minute: u32,
    /// Requests per (key, endpoint class) in the current clock minute.
    #[serde(skip)]
    minutes: HashMap<(String, &'static str), (i64, u32)>,
}

impl DutchieWorld {
    /// Another client of `key` spent this minute's `/reporting` budget.
    pub fn spend_minute(&mut self, key: &str) {
        let minute = jiff::Timestamp::now().as_second().div_euclid(60);
        self.minutes.insert((key.to_owned(), "reporting"), (minute, u32::MAX));
    }
}

impl DutchieWorld {
    pub fn transaction(&self, location: i64, id: i64) -> Option<&StoredTransaction> {
        self.transactions.iter().find(|t| t.location == location && t.record["transactionId"] == json!(id))
    }
}

fn iso(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

fn money(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

/// Customer `n` of the seed: its location, and its record.
pub fn seeded_customer(n: u64, start: jiff::Timestamp) -> (i64, Value) {
    let location = LOCATIONS[(n % 3) as usize].0;
    let modified = start - jiff::SignedDuration::from_mins(30 + n as i64);
    let email = if n.is_multiple_of(9) { String::new() } else { format!("Customer{n}@Example.com ") };
    let kind = if n.is_multiple_of(5) {
        "Medical"
    } else if n.is_multiple_of(7) {
        "Wholesale"
    } else {
        "Adult Use"
    };
    // Casing differs between endpoints: some rows say customerID.
    let id_key = if n.is_multiple_of(4) { "customerID" } else { "customerId" };
    (
        location,
        json!({
            id_key: n, "firstName": format!("First{n}"), "lastName": "Buyer", "emailAddress": email,
            "phone": format!("(555) 010-{:04}", n % 10_000), "cellPhone": null, "address1": "1 Main St", "city": "Denver",
            "state": "CO", "postalCode": "80202", "status": "Active", "customerType": kind,
            "dateOfBirth": "1990-01-01T00:00:00", "isLoyaltyMember": n.is_multiple_of(2), "isAnonymous": n.is_multiple_of(13),
            "createdAtLocation": LOCATIONS[(n % 3) as usize].1, "creationDate": iso(modified - jiff::SignedDuration::from_hours(24 * 300)),
            "lastModifiedDateUTC": iso(modified),
            "mmjidNumber": MEDICAL_MARKERS[0], "primaryQualifyingCondition": MEDICAL_MARKERS[1],
            "secondaryQualifyingConditions": [MEDICAL_MARKERS[1]], "driversLicenseHash": MEDICAL_MARKERS[2],
            "notes": MEDICAL_MARKERS[3], "mmjidExpirationDate": "2030-01-01T00:00:00", "optedIntoMarketing": true
        }),
    )
}

const STRAIN_TYPES: [&str; 3] = ["Indica", "Sativa", "Hybrid"];

/// Product `n` of the parent's catalog (20 of them; 20 is a coupon).
pub fn seeded_product(n: i64, start: jiff::Timestamp) -> Value {
    json!({
        "productId": n, "sku": format!("SKU-{n}"), "productName": format!("Product {n}"), "internalName": format!("product-{n}"),
        "description": if n % 3 == 0 { Value::Null } else { json!(format!("The {n}th product")) },
        "category": if n % 2 == 0 { "Flower" } else { "Edibles" }, "masterCategory": "Cannabis",
        "imageUrl": if n == 7 { Value::Null } else { json!(format!("https://img.example/{n}.png")) },
        "strain": format!("Strain {}", n % 5), "strainType": STRAIN_TYPES[(n % 3) as usize],
        "brandName": format!("Brand {}", n % 4), "vendorName": "Vendor Co", "price": money(1000 + n * 100),
        "recPrice": money(1000 + n * 100), "isActive": true, "isCoupon": n == 20, "isTestProduct": false,
        "lastModifiedDateUTC": iso(start - jiff::SignedDuration::from_hours(30))
    })
}

/// Transaction `n` of the seed at its location, over the day and a half
/// before `start`; with its items.
pub fn seeded_transaction(n: u64, customers: u64, start: jiff::Timestamp) -> (i64, Value) {
    let location_index = (n % 3) as usize;
    let location = LOCATIONS[location_index].0;
    // A customer of the same location.
    let customer = {
        let mut c = (n * 7) % customers.max(3) + 1;
        while c % 3 != n % 3 {
            c += 1;
        }
        c
    };
    let date = start - jiff::SignedDuration::from_mins(60 + (n as i64 * 2160 / 400) % 2160);
    let lines = n % 3 + 1;
    let zero = n.is_multiple_of(29);
    let mut items = Vec::new();
    let mut total = 0;
    for l in 0..lines {
        let product = ((n + l) % 19 + 1) as i64;
        let unit = if zero { 0 } else { 1000 + product * 100 };
        total += unit;
        items.push(json!({
            "transactionId": n, "transactionItemId": n * 10 + l, "productId": product, "inventoryId": 9,
            "packageId": format!("1A40{n:08}{l}"), "sourcePackageId": null, "quantity": 1.0, "unitPrice": money(unit),
            "totalPrice": money(unit), "totalDiscount": 0.0, "unitCost": money(unit / 3), "unitId": 1, "unitWeight": 3.5,
            "unitWeightUnit": "g", "flowerEquivalent": 3.5, "flowerEquivalentUnit": "g", "discounts": [], "taxes": [],
            "returnDate": null, "isReturned": false, "returnedByTransactionId": null, "returnReason": null,
            "batchName": format!("B{}", n % 9), "vendor": "Vendor Co", "isCoupon": false
        }));
    }
    if n.is_multiple_of(11) {
        items.push(json!({
            "transactionId": n, "transactionItemId": n * 10 + 9, "productId": 20, "quantity": 1.0, "unitPrice": 0.0,
            "totalPrice": 0.0, "totalDiscount": 1.0, "isCoupon": true, "discounts": [], "taxes": []
        }));
    }
    let kind = if n.is_multiple_of(17) {
        "Transfer"
    } else if n.is_multiple_of(19) {
        "WholesaleOrder"
    } else {
        "Retail"
    };
    let void = n.is_multiple_of(23);
    (
        location,
        json!({
            "transactionId": n, "customerId": customer, "employeeId": 1, "transactionDate": iso(date),
            "transactionDateLocalTime": iso(date - jiff::SignedDuration::from_hours(7)),
            "lastModifiedDateUTC": iso(date + jiff::SignedDuration::from_secs(40)), "isVoid": void,
            "voidDate": if void { json!(iso(date + jiff::SignedDuration::from_mins(5))) } else { Value::Null },
            "isReturn": false, "returnOnTransactionId": null, "transactionType": kind, "orderSource": "POS",
            "orderType": "InStore", "subtotal": money(total), "totalDiscount": 0.0, "totalBeforeTax": money(total),
            "tax": 0.0, "total": money(total), "paid": money(total), "changeDue": 0.0, "totalItems": lines,
            "terminalName": format!("Register {}", n % 2 + 1), "isMedical": n.is_multiple_of(5), "customerTypeId": 2,
            "items": items
        }),
    )
}

/// A return of `original` at its location, `minutes` after it: the return
/// transaction, and the original with its items marked returned.
fn returned(original: &Value, id: u64, minutes: i64) -> (Value, Value) {
    let date: jiff::civil::DateTime =
        original["transactionDate"].as_str().unwrap_or_default().parse().unwrap_or_default();
    let when = iso(date.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or_default()
        + jiff::SignedDuration::from_mins(minutes));
    let first = original["items"][0].clone();
    let mut back = original.clone();
    back["transactionId"] = json!(id);
    back["isReturn"] = json!(true);
    back["returnOnTransactionId"] = original["transactionId"].clone();
    back["transactionDate"] = json!(when);
    back["lastModifiedDateUTC"] = json!(when);
    back["total"] = json!(-first["totalPrice"].as_f64().unwrap_or(0.0));
    let mut line = first.clone();
    line["transactionId"] = json!(id);
    line["quantity"] = json!(-1.0);
    line["totalPrice"] = json!(-first["totalPrice"].as_f64().unwrap_or(0.0));
    line["returnReason"] = json!("Changed mind");
    back["items"] = json!([line]);
    let mut original = original.clone();
    original["items"][0]["isReturned"] = json!(true);
    original["items"][0]["returnDate"] = json!(when);
    original["items"][0]["returnedByTransactionId"] = json!(id);
    original["items"][0]["returnReason"] = json!("Changed mind");
    original["lastModifiedDateUTC"] = json!(when);
    (back, original)
}

pub struct DutchieSandbox {
    world: Arc<Mutex<DutchieWorld>>,
    server: SandboxServer,
    history_start: String,
}

/// Starts a seeded sandbox for the kit on `options.address`.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = DutchieSandbox::start_on(options.address).await?;
        sandbox.seed(options.customers, options.orders);
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for DutchieSandbox {
    fn ring_sale(&self, n: u64) -> bool {
        let customers = {
            let world = self.world.lock().expect("world");
            // Less the one customer seeded at two locations.
            (world.customers.values().map(Vec::len).sum::<usize>() as u64).saturating_sub(1)
        };
        let (location, record) = seeded_transaction(5_000_000 + n, customers, jiff::Timestamp::now());
        self.ring_up(location, record, true);
        true
    }

    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<tillflow_http::sandbox::Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        let mut keys =
            format!("base_url = \"{}\"\nhistory_start = \"{}\"\n", self.server.base_url(), self.history_start);
        for (_, _, key) in LOCATIONS {
            keys.push_str(&format!("[[sources.dutchie.locations]]\napi_key = \"{key}\"\n"));
        }
        keys
    }

    fn credentials(&self) -> String {
        let keys: Vec<&str> = LOCATIONS.iter().map(|(_, _, key)| *key).collect();
        format!("HTTP Basic, empty password; keys {}   (inspect: GET /sandbox/state)", keys.join(", "))
    }

    fn describe(&self) -> String {
        let world = self.world.lock().expect("world");
        format!(
            "{} transactions over {} customers at 3 locations of one parent",
            world.transactions.len(),
            world.customers.values().map(Vec::len).sum::<usize>()
        )
    }
}

impl DutchieSandbox {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(any_loopback_port()).await
    }

    pub async fn start_on(address: SocketAddr) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(DutchieWorld { reporting_per_minute: 60, ..DutchieWorld::default() }));
        let router = Router::new()
            .route("/whoami", get(whoami))
            .route("/reporting/transactions", get(transactions))
            .route("/reporting/products", get(products))
            .route("/customer/customers", get(customers))
            .route("/sandbox/state", get(state))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 2);
        let history_start = start.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        Ok(Self { world, server, history_start })
    }

    /// `customers` customers and `orders` transactions over three locations,
    /// every 31st transaction returned later.
    pub fn seed(&self, customers: u64, orders: u64) {
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
        let mut world = self.world.lock().expect("world");
        world.customers.clear();
        for n in 1..=customers {
            let (location, record) = seeded_customer(n, start);
            world.customers.entry(location).or_default().push(record);
        }
        // One person at two locations: customer 1's email at Airport too.
        let (_, mut twin) = seeded_customer(1, start);
        twin["customerId"] = json!(customers + 1);
        world.customers.entry(LOCATIONS[1].0).or_default().push(twin);
        world.products = (1..=20).map(|n| seeded_product(n, start)).collect();
        world.transactions.clear();
        let mut next = orders + 1;
        for n in 1..=orders {
            let (location, mut record) = seeded_transaction(n, customers, start);
            if n.is_multiple_of(31) && record["transactionType"] == "Retail" && record["isVoid"] == false {
                let (back, original) = returned(&record, next, 20);
                next += 1;
                record = original;
                world.transactions.push(StoredTransaction { location, record: back, visible: true });
            }
            world.transactions.push(StoredTransaction { location, record, visible: true });
        }
    }

    pub fn world(&self) -> Arc<Mutex<DutchieWorld>> {
        self.world.clone()
    }

    /// Adds a transaction at `location`, modified now; hidden until revealed.
    pub fn ring_up(&self, location: i64, mut record: Value, visible: bool) {
        let now = iso(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60));
        record["transactionDate"] = json!(now);
        record["lastModifiedDateUTC"] = json!(now);
        self.world.lock().expect("world").transactions.push(StoredTransaction { location, record, visible });
    }

    /// Shows every hidden transaction, as Dutchie catches up with the till.
    pub fn reveal(&self) {
        for transaction in &mut self.world.lock().expect("world").transactions {
            transaction.visible = true;
        }
    }
}

type Shared = State<Arc<Mutex<DutchieWorld>>>;

/// The key of an HTTP Basic header with an empty password.
fn key_of(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, password) = text.split_once(':')?;
    password.is_empty().then(|| key.to_owned())
}

/// The location of a key (the foreign key's belongs to another parent).
fn location_of(key: &str) -> Option<(i64, &'static str, i64, &'static str)> {
    if key == FOREIGN_KEY {
        return Some((901, "Elsewhere", 9, "Another Co"));
    }
    if key == NO_REPORTING_KEY {
        return Some((LOCATIONS[0].0, LOCATIONS[0].1, PARENT.0, PARENT.1));
    }
    LOCATIONS.iter().find(|(_, _, k)| *k == key).map(|(id, name, _)| (*id, *name, PARENT.0, PARENT.1))
}

/// The key, and the key's limit for this endpoint class.
#[allow(clippy::result_large_err)]
fn admit(world: &mut DutchieWorld, headers: &HeaderMap, class: &'static str, per_minute: u32) -> Result<i64, Response> {
    world.requests += 1;
    let key = key_of(headers).unwrap_or_default();
    let Some((location, ..)) = location_of(&key) else {
        return Err((StatusCode::UNAUTHORIZED, "Unauthorized").into_response());
    };
    if key == NO_REPORTING_KEY && class == "reporting" {
        return Err((StatusCode::FORBIDDEN, "Forbidden").into_response());
    }
    if world.reporting_per_minute > 0 {
        // Dutchie counts per clock minute, per key and endpoint class.
        let minute = jiff::Timestamp::now().as_second().div_euclid(60);
        let counted = world.minutes.entry((key, class)).or_insert((minute, 0));
        if counted.0 != minute {
            *counted = (minute, 0);
        }
        if counted.1 >= per_minute {
            world.throttled += 1;
            let body = json!({"Message": format!("Too many requests - only {per_minute} per minute allowed"), "TraceId": "0HM2AFJV13H6F:00000001"});
            return Err((StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response());
        }
        counted.1 += 1;
    }
    Ok(location)
}

async fn whoami(State(world): Shared, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    world.requests += 1;
    let Some((id, name, lsp, lsp_name)) = key_of(&headers).as_deref().and_then(location_of) else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    axum::Json(json!({"locationId": id, "locationName": name, "lspId": lsp, "lspName": lsp_name, "shareCustomerProfiles": false}))
        .into_response()
}

fn parse_time(text: Option<&String>) -> Option<jiff::Timestamp> {
    let text = text?;
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        text.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|c| c.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

fn modified(record: &Value) -> Option<jiff::Timestamp> {
    let text =
        record.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("lastModifiedDateUTC"))?.1.as_str()?.to_owned();
    parse_time(Some(&text))
}

fn in_window(record: &Value, from: Option<jiff::Timestamp>, to: Option<jiff::Timestamp>) -> bool {
    let Some(at) = modified(record) else { return false };
    from.is_none_or(|from| at >= from) && to.is_none_or(|to| at <= to)
}

async fn transactions(
    State(world): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut world = world.lock().expect("world");
    let per_minute = world.reporting_per_minute;
    let location = match admit(&mut world, &headers, "reporting", per_minute) {
        Ok(location) => location,
        Err(response) => return response,
    };
    let modified_window = query.contains_key("FromLastModifiedDateUTC") || query.contains_key("ToLastModifiedDateUTC");
    let date_window = query.contains_key("FromDateUTC") || query.contains_key("ToDateUTC");
    let by_id = query.contains_key("TransactionId");
    if [modified_window, date_window, by_id].iter().filter(|x| **x).count() > 1 {
        let body = json!({"isValid": false, "errors": [{"propertyName": "TransactionId", "errorMessage": "TransactionId, FromDateUTC/ToDateUTC and FromLastModifiedDateUTC/ToLastModifiedDateUTC are mutually exclusive", "severity": "Error"}], "ruleSetsExecuted": []});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let (from, to) = (parse_time(query.get("FromLastModifiedDateUTC")), parse_time(query.get("ToLastModifiedDateUTC")));
    let detail = query.get("IncludeDetail").is_some_and(|v| v == "true");
    let records: Vec<Value> = world
        .transactions
        .iter()
        .filter(|t| t.location == location && t.visible && in_window(&t.record, from, to))
        .map(|t| {
            let mut record = t.record.clone();
            if !detail {
                record["items"] = Value::Null;
            }
            record
        })
        .collect();
    axum::Json(Value::Array(records)).into_response()
}

async fn products(State(world): Shared, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = world.lock().expect("world");
    let per_minute = world.reporting_per_minute;
    let location = match admit(&mut world, &headers, "reporting", per_minute) {
        Ok(location) => location,
        Err(response) => return response,
    };
    let from = parse_time(query.get("fromLastModifiedDateUTC"));
    let records: Vec<Value> = world
        .products
        .iter()
        .filter(|p| in_window(p, from, None))
        .map(|p| {
            // Each location prices the parent's products its own way.
            let mut p = p.clone();
            if location == LOCATIONS[1].0 {
                p["price"] = json!(p["price"].as_f64().unwrap_or(0.0) + 1.0);
                p["recPrice"] = p["price"].clone();
            }
            p
        })
        .collect();
    axum::Json(Value::Array(records)).into_response()
}

async fn customers(State(world): Shared, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = world.lock().expect("world");
    let location = match admit(&mut world, &headers, "customers", 120) {
        Ok(location) => location,
        Err(response) => return response,
    };
    let all = world.customers.get(&location).cloned().unwrap_or_default();
    let id_of = |c: &Value| {
        c.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("customerId")).map(|(_, v)| v.clone()))
    };
    if let Some(id) = query.get("customerID").and_then(|id| id.parse::<u64>().ok()) {
        let found: Vec<Value> = all.into_iter().filter(|c| id_of(c) == Some(json!(id))).collect();
        return axum::Json(Value::Array(found)).into_response();
    }
    let (from, to) = (parse_time(query.get("fromLastModifiedDateUTC")), parse_time(query.get("toLastModifiedDateUTC")));
    if let (Some(from), Some(to)) = (from, to)
        && to.duration_since(from) > jiff::SignedDuration::from_hours(24 * 90)
    {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "The date range may not exceed 90 days"})))
            .into_response();
    }
    let anonymous = query.get("includeAnonymous").is_some_and(|v| v == "true");
    let records: Vec<Value> =
        all.into_iter().filter(|c| in_window(c, from, to) && (anonymous || c["isAnonymous"] != json!(true))).collect();
    axum::Json(Value::Array(records)).into_response()
}

async fn state(State(world): Shared) -> Response {
    let world = world.lock().expect("world");
    axum::Json(serde_json::to_value(&*world).expect("state serializes")).into_response()
}
