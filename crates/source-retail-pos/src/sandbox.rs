//! A stateful in-memory Retail POS (feature `sandbox`): an X-Series store
//! (API 2.0 lists on one global, gapped `version` counter, an empty page's
//! `version` null; personal token or rotating OAuth refresh tokens at
//! `/api/1.0/token`; 300 × registers + 50 requests per five minutes, a 429
//! with an HTTP-date `Retry-After`) and its eCom store (the Ecwid v3
//! customers, groups and orders, `updatedFrom`/offset paging, 600 a
//! minute, a 429 with `Retry-After` seconds), from one seed: people in
//! both with matching and mismatching group titles and first names,
//! preferences that differ with either side newer, POS-only people,
//! duplicate POS emails, eCom-only people with and without online orders
//! (one whose counters lag its order), voids, returns, lay-bys, eCom
//! orders as sales; webhook builders for both; `GET /sandbox/state`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tillflow_http::sandbox::{
    Faults, FixedWindows, SandboxServer, WindowLimit, any_loopback_port, retry_after_seconds,
};
use tillflow_kit::sandbox::{Sandbox, SandboxOptions, Starting};

pub const PERSONAL_TOKEN: &str = "lsxs_pt_sandbox";
pub const CLIENT_ID: &str = "tillflow";
pub const CLIENT_SECRET: &str = "xs-client-secret";
pub const FIRST_REFRESH_TOKEN: &str = "xs-refresh-0";
pub const STORE_ID: &str = "1003";
pub const ECOM_TOKEN: &str = "secret_sandbox";
/// The eCom app's client secret: it signs eCom webhooks.
pub const ECOM_CLIENT_SECRET: &str = "ecom-client-secret";

/// X-Series groups: id, title, code. The first is the default.
pub const GROUPS: [(&str, &str, &str); 4] = [
    ("g-all", "All Customers", "1111111111"),
    ("g-vip", "VIP", "VIP-Y968"),
    ("g-students", "Students", "Students-2SFG"),
    ("g-wholesale", "Wholesale", "Wholesale-7QX1"),
];
/// eCom groups: id, title (0 is the default; "Vip " matches no POS title).
pub const ECOM_GROUPS: [(i64, &str); 4] =
    [(0, "General"), (9_367_001, "VIP"), (9_367_002, "Students"), (9_367_003, "Vip ")];
pub const OUTLETS: [(&str, &str); 2] = [("o-main", "Main Street"), ("o-harbour", "Harbour")];
pub const REGISTERS: [(&str, &str); 2] = [("r-main", "o-main"), ("r-harbour", "o-harbour")];
pub const TIME_ZONE: &str = "Pacific/Auckland";
/// Registers (tills) per outlet.
pub const REGISTERS_PER_OUTLET: usize = 5;

/// A stored record and the version it was last written at.
#[derive(Clone, Debug)]
pub struct Versioned {
    pub version: u64,
    pub record: Value,
}

#[derive(Default)]
pub struct RetailPosWorld {
    version: u64,
    pub customers: Vec<Versioned>,
    pub groups: Vec<Versioned>,
    pub outlets: Vec<Versioned>,
    pub registers: Vec<Versioned>,
    pub products: Vec<Versioned>,
    pub sales: Vec<Versioned>,
    pub ecom_customers: Vec<Value>,
    pub ecom_orders: Vec<Value>,
    /// The refresh token that works now (the one before is revoked).
    pub refresh_token: String,
    next_token: u64,
    pub access_tokens: Vec<String>,
    /// Requests answered, and 429s.
    pub requests: u64,
    pub throttled: u64,
    /// The next N X-Series requests get a 429 (HTTP-date `Retry-After`).
    pub throttle_next: u32,
    /// The store's five-minute window: when it began and what it counted.
    window: Option<(Instant, u32)>,
    ecom_windows: FixedWindows,
}

fn stamp(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn ecom_stamp(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S +0000").to_string()
}

fn money(cents: i64) -> Value {
    // A JSON number, as X-Series sends it (serde_json prints 12.5, not 12.50).
    let text = format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100);
    serde_json::from_str(&text).expect("a number")
}

/// The POS id of seeded customer `n`.
pub fn pos_id(n: u64) -> String {
    format!("x-{n:04}")
}

/// Seeded customer `n`'s email: none for every 17th; every 41st shares the
/// one before's (a duplicate in X-Series).
pub fn seeded_email(n: u64) -> Option<String> {
    if n.is_multiple_of(17) {
        None
    } else if n.is_multiple_of(41) {
        seeded_email(n - 1)
    } else {
        Some(format!("person{n}@example.com"))
    }
}

/// Whether seeded customer `n` is in the eCom store too.
pub fn in_both(n: u64) -> bool {
    n.is_multiple_of(3) && seeded_email(n).is_some() && !n.is_multiple_of(41)
}

/// The POS group of seeded customer `n`.
pub fn pos_group(n: u64) -> &'static str {
    if n.is_multiple_of(5) {
        "g-vip"
    } else if n.is_multiple_of(7) {
        "g-students"
    } else {
        "g-all"
    }
}

/// The eCom group of seeded customer `n` (in both): VIP matches on even
/// multiples of 5, "Vip " mismatches on odd ones; Students people are
/// "General" online on multiples of 14.
pub fn ecom_group(n: u64) -> i64 {
    if n.is_multiple_of(5) {
        if n.is_multiple_of(2) { ECOM_GROUPS[1].0 } else { ECOM_GROUPS[3].0 }
    } else if n.is_multiple_of(7) && !n.is_multiple_of(14) {
        ECOM_GROUPS[2].0
    } else {
        0
    }
}

/// eCom's `acceptMarketing` of seeded customer `n`: false, null or true.
pub fn ecom_marketing(n: u64) -> Option<bool> {
    if n.is_multiple_of(6) {
        Some(false)
    } else if n.is_multiple_of(9) {
        None
    } else {
        Some(true)
    }
}

/// Whether eCom changed seeded customer `n` after the POS did.
pub fn ecom_newer(n: u64) -> bool {
    n.is_multiple_of(2)
}

/// When the POS last changed seeded customer `n`.
pub fn pos_changed(n: u64, start: jiff::Timestamp) -> jiff::Timestamp {
    let base = start + jiff::SignedDuration::from_mins(n as i64 * 7);
    // A duplicate email's second customer is the older one.
    if n.is_multiple_of(41) { base - jiff::SignedDuration::from_hours(24) } else { base }
}

pub fn seeded_customer(n: u64, start: jiff::Timestamp) -> Value {
    let changed = stamp(pos_changed(n, start));
    json!({
        "id": pos_id(n), "customer_code": format!("TILL-{n}"),
        "first_name": format!("Till{n}"), "last_name": "Walker", "name": format!("Till{n} Walker"),
        "email": seeded_email(n), "phone": format!("+64 9 555 {:04}", n % 10000), "mobile": null,
        "do_not_email": n.is_multiple_of(4), "customer_group_id": GROUPS.iter().find(|g| g.0 == pos_group(n)).map(|g| g.0),
        "physical_city": "Auckland", "physical_country_id": "NZ", "company_name": null,
        "year_to_date": 0, "balance": 0, "loyalty_balance": 0, "enable_loyalty": true,
        "date_of_birth": "1980-01-01", "note": "",
        "created_at": stamp(start), "updated_at": changed, "deleted_at": null,
    })
}

pub fn seeded_ecom_customer(n: u64, start: jiff::Timestamp, online_orders: u64) -> Value {
    let pos = pos_changed(n, start);
    let updated = if ecom_newer(n) {
        pos + jiff::SignedDuration::from_mins(30)
    } else {
        pos - jiff::SignedDuration::from_mins(30)
    };
    let email = seeded_email(n).expect("people in both have an email");
    // eCom may hold the same address in other letters.
    let email = if n.is_multiple_of(9) { email.to_uppercase() } else { email };
    let group = ecom_group(n);
    json!({
        "id": 5000 + n, "name": format!("Online{n} Walker"), "email": email,
        "registered": ecom_stamp(start), "updated": ecom_stamp(updated),
        "totalOrderCount": online_orders, "customerGroupId": group,
        "customerGroupName": ECOM_GROUPS.iter().find(|g| g.0 == group).map(|g| g.1),
        "billingPerson": {"name": format!("Online{n} Walker"), "firstName": format!("Online{n}"), "lastName": "Walker", "city": "Wellington", "countryCode": "NZ"},
        "shippingAddresses": [], "contacts": [],
        "acceptMarketing": ecom_marketing(n),
        "stats": {"numberOfOrders": online_orders, "salesValue": 0, "averageOrderValue": 0},
    })
}

/// eCom-only person `k`: odd ones bought online (every `k % 4 == 3` one's
/// counters still say 0, as eCom's can lag); even ones never did.
pub fn seeded_ecom_only(k: u64, start: jiff::Timestamp) -> Value {
    let counted = if k % 4 == 1 { 1 } else { 0 };
    json!({
        "id": 9000 + k, "name": format!("Web{k} Only"), "email": format!("online{k}@example.com"),
        "registered": ecom_stamp(start), "updated": ecom_stamp(start + jiff::SignedDuration::from_mins(k as i64 * 11)),
        "totalOrderCount": counted, "customerGroupId": if k.is_multiple_of(5) { ECOM_GROUPS[1].0 } else { 0 },
        "customerGroupName": if k.is_multiple_of(5) { "VIP" } else { "General" },
        "billingPerson": {"name": format!("Web{k} Only")},
        "acceptMarketing": if k.is_multiple_of(3) { Value::Null } else { json!(true) },
        "stats": {"numberOfOrders": counted},
    })
}

pub struct RetailPosSandbox {
    world: Arc<Mutex<RetailPosWorld>>,
    server: SandboxServer,
}

/// Starts a seeded sandbox for the kit on `options.address`.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = RetailPosSandbox::start_on(options.address).await?;
        sandbox.seed(options.customers, options.orders);
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl RetailPosWorld {
    /// The next version: global and gapped, as X-Series' is.
    pub fn bump(&mut self) -> u64 {
        self.version += 7;
        self.version
    }

    fn put(list: &mut Vec<Versioned>, version: u64, record: Value) {
        list.retain(|v| v.record["id"] != record["id"]);
        list.push(Versioned { version, record });
    }

    pub fn put_customer(&mut self, record: Value) {
        let version = self.bump();
        let mut record = record;
        record["version"] = json!(version);
        Self::put(&mut self.customers, version, record);
    }

    pub fn put_sale(&mut self, record: Value) {
        let version = self.bump();
        let mut record = record;
        record["version"] = json!(version);
        Self::put(&mut self.sales, version, record);
    }

    pub fn customer(&self, id: &str) -> Option<Value> {
        self.customers.iter().find(|c| c.record["id"] == id).map(|c| c.record.clone())
    }

    pub fn sale(&self, id: &str) -> Option<Value> {
        self.sales.iter().find(|c| c.record["id"] == id).map(|c| c.record.clone())
    }

    /// Changes a POS customer now (a new version, `updated_at` now).
    pub fn edit_customer(&mut self, id: &str, edit: impl FnOnce(&mut Value)) {
        let Some(mut record) = self.customer(id) else { return };
        edit(&mut record);
        record["updated_at"] = json!(stamp(jiff::Timestamp::now()));
        self.put_customer(record);
    }

    /// Changes an eCom customer now (`updated` now).
    pub fn edit_ecom_customer(&mut self, id: u64, edit: impl FnOnce(&mut Value)) {
        if let Some(record) = self.ecom_customers.iter_mut().find(|c| c["id"] == id) {
            edit(record);
            record["updated"] = json!(ecom_stamp(jiff::Timestamp::now()));
        }
    }

    /// Voids a sale now.
    pub fn void_sale(&mut self, id: &str) {
        if let Some(mut sale) = self.sale(id) {
            sale["status"] = json!("VOIDED");
            sale["updated_at"] = json!(stamp(jiff::Timestamp::now()));
            self.put_sale(sale);
        }
    }

    /// A sale of `lines` (product number, quantity, unit cents) to
    /// `customer` at `outlet`, rung up at `at`.
    pub fn sale_record(
        id: &str,
        customer: Option<&str>,
        outlet: usize,
        lines: &[(u64, i64, i64)],
        at: jiff::Timestamp,
    ) -> Value {
        let items: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (product, quantity, cents))| {
                let total = quantity * cents;
                json!({
                    "id": format!("{id}-{i}"), "product_id": format!("p-{product}"), "quantity": quantity,
                    "unit_price": money(*cents), "price": money(*cents), "total_price": money(total), "price_total": money(total),
                    "unit_tax": money(cents * 15 / 100), "total_tax": money(total * 15 / 100), "tax_total": money(total * 15 / 100),
                    "discount_total": 0, "is_return": *quantity < 0, "status": "CONFIRMED", "sequence": i,
                })
            })
            .collect();
        let total: i64 = lines.iter().map(|(_, q, c)| q * c).sum();
        let tax: i64 = lines.iter().map(|(_, q, c)| q * c * 15 / 100).sum();
        json!({
            "id": id, "outlet_id": OUTLETS[outlet % 2].0, "register_id": REGISTERS[outlet % 2].0, "user_id": "u-1",
            "customer_id": customer, "invoice_number": id.trim_start_matches("s-"), "status": "CLOSED", "source": "USER",
            "return_for": null, "total_price": money(total), "total_tax": money(tax), "total_loyalty": 0,
            "created_at": stamp(at), "updated_at": stamp(at), "sale_date": stamp(at),
            "line_items": items, "payments": [{"name": "Cash", "amount": money(total + tax)}],
            "taxes": [], "note": "",
        })
    }

    fn admit_x(&mut self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        self.requests += 1;
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let token_ok = token.is_some_and(|t| t == PERSONAL_TOKEN || self.access_tokens.iter().any(|a| a == t));
        if !token_ok {
            return Err(Box::new(
                (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Unauthorized"}))).into_response(),
            ));
        }
        let limit = 300 * self.registers.len() as u32 + 50;
        let now = Instant::now();
        let (started, count) = match self.window {
            Some((started, count)) if now.duration_since(started) < Duration::from_secs(300) => (started, count),
            _ => (now, 0),
        };
        if self.throttle_next > 0 || count >= limit {
            self.throttle_next = self.throttle_next.saturating_sub(1);
            self.throttled += 1;
            let wait = if count >= limit {
                Duration::from_secs(300).saturating_sub(now.duration_since(started))
            } else {
                Duration::from_secs(1)
            };
            let until = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(retry_after_seconds(wait) as i64 + 1);
            let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&until).expect("a date");
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "Too Many Requests", "message": "Rate limiting enforced"})),
            )
                .into_response();
            response.headers_mut().insert("retry-after", date.parse().expect("a header"));
            return Err(Box::new(response));
        }
        self.window = Some((started, count + 1));
        Ok(())
    }

    fn admit_ecom(&mut self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        self.requests += 1;
        let expected = format!("Bearer {ECOM_TOKEN}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return Err(Box::new(
                (StatusCode::FORBIDDEN, axum::Json(json!({"errorMessage": "Invalid token"}))).into_response(),
            ));
        }
        if let Err(wait) = self.ecom_windows.admit("ecom", WindowLimit { per_second: 0, per_minute: 600 }) {
            self.throttled += 1;
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "").into_response();
            response
                .headers_mut()
                .insert("retry-after", retry_after_seconds(wait).to_string().parse().expect("a header"));
            return Err(Box::new(response));
        }
        Ok(())
    }
}

impl RetailPosSandbox {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(any_loopback_port()).await
    }

    pub async fn start_on(address: SocketAddr) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(RetailPosWorld {
            version: 1000,
            refresh_token: FIRST_REFRESH_TOKEN.to_owned(),
            ..RetailPosWorld::default()
        }));
        let router = Router::new()
            .route("/api/1.0/token", post(token))
            .route("/api/2.0/{list}", get(x_list))
            .route("/api/2.0/{list}/{id}", get(x_one))
            .route("/api/v3/{store}/{list}", get(ecom_list))
            .route("/api/v3/{store}/{list}/{id}", get(ecom_one))
            .route("/sandbox/state", get(state))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        Ok(Self { world, server })
    }

    /// `customers` POS customers (a third of them online too, a fifth as
    /// many eCom-only people) and `orders` sales over the last month.
    pub fn seed(&self, customers: u64, orders: u64) {
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 30);
        let mut world = self.world.lock().expect("world");
        for (id, name, code) in GROUPS {
            let version = world.bump();
            RetailPosWorld::put(
                &mut world.groups,
                version,
                json!({"id": id, "name": name, "group_id": code, "version": version, "created_at": stamp(start), "updated_at": stamp(start)}),
            );
        }
        for (id, name) in OUTLETS {
            let version = world.bump();
            RetailPosWorld::put(
                &mut world.outlets,
                version,
                json!({"id": id, "name": name, "currency": "NZD", "time_zone": TIME_ZONE, "version": version}),
            );
        }
        // Five tills an outlet: the store's budget is 300 × 10 + 50 per five minutes.
        for (id, outlet) in REGISTERS {
            for till in 1..=REGISTERS_PER_OUTLET {
                let id = if till == 1 { id.to_owned() } else { format!("{id}-{till}") };
                let version = world.bump();
                RetailPosWorld::put(
                    &mut world.registers,
                    version,
                    json!({"id": id, "name": id, "outlet_id": outlet, "version": version}),
                );
            }
        }
        for p in 1..=20u64 {
            let version = world.bump();
            RetailPosWorld::put(
                &mut world.products,
                version,
                json!({"id": format!("p-{p}"), "name": format!("Product {p}"), "variant_name": null, "sku": format!("SKU{p}"), "version": version}),
            );
        }
        for n in 1..=customers {
            world.put_customer(seeded_customer(n, start));
        }
        let mut next_order = 7000;
        for n in (1..=customers).filter(|n| in_both(*n)) {
            // Every sixth person in both (n % 6 == 3) bought online too.
            let bought = n % 6 == 3;
            world.ecom_customers.push(seeded_ecom_customer(n, start, u64::from(bought)));
            if bought {
                next_order += 1;
                let email = seeded_email(n).expect("an email");
                let at = pos_changed(n, start) + jiff::SignedDuration::from_mins(5);
                world.ecom_orders.push(json!({"id": next_order, "orderNumber": next_order, "email": email, "customerId": 5000 + n, "paymentStatus": "PAID", "createTimestamp": at.as_second(), "updateTimestamp": at.as_second()}));
                let mut sale = RetailPosWorld::sale_record(
                    &format!("s-web-{next_order}"),
                    Some(&pos_id(n)),
                    0,
                    &[(3, 1, 2500)],
                    at,
                );
                sale["source"] = json!("ECOMMERCE");
                sale["source_id"] = json!(next_order.to_string());
                world.put_sale(sale);
            }
        }
        for k in 1..=(customers / 5).max(1) {
            world.ecom_customers.push(seeded_ecom_only(k, start));
            if k % 2 == 1 {
                next_order += 1;
                let at = start + jiff::SignedDuration::from_mins(k as i64 * 11);
                world.ecom_orders.push(json!({"id": next_order, "orderNumber": next_order, "email": format!("online{k}@example.com"), "customerId": 9000 + k, "paymentStatus": "PAID", "createTimestamp": at.as_second(), "updateTimestamp": at.as_second()}));
            }
        }
        let step = (30 * 24 * 60) / (orders.max(1) as i64 + 1);
        for m in 1..=orders {
            let at = start + jiff::SignedDuration::from_mins(step * m as i64);
            let customer = (!m.is_multiple_of(11)).then(|| pos_id((m * 7) % customers.max(1) + 1));
            let lines: Vec<(u64, i64, i64)> =
                (0..1 + m % 3).map(|i| ((m + i) % 20 + 1, 1 + (i % 2) as i64, 1000 + (m % 5) as i64 * 250)).collect();
            let id = format!("s-{m:05}");
            let mut sale = RetailPosWorld::sale_record(&id, customer.as_deref(), m as usize, &lines, at);
            sale["status"] = json!(if m.is_multiple_of(13) {
                "LAYBY"
            } else if m.is_multiple_of(19) {
                "ONACCOUNT_CLOSED"
            } else if m.is_multiple_of(29) {
                "VOIDED"
            } else {
                "CLOSED"
            });
            let returned = m.is_multiple_of(23) && sale["status"] == "CLOSED";
            world.put_sale(sale);
            if returned {
                let back: Vec<(u64, i64, i64)> = lines.iter().take(1).map(|(p, q, c)| (*p, -q, *c)).collect();
                let mut refund = RetailPosWorld::sale_record(
                    &format!("s-{m:05}-r"),
                    customer.as_deref(),
                    m as usize,
                    &back,
                    at + jiff::SignedDuration::from_hours(2),
                );
                refund["return_for"] = json!(id);
                world.put_sale(refund);
            }
        }
    }

    pub fn world(&self) -> Arc<Mutex<RetailPosWorld>> {
        self.world.clone()
    }

    /// The X-Series store's root (`base_url`).
    pub fn store_url(&self) -> String {
        self.server.base_url()
    }

    /// The eCom API root (`ecom.base_url`).
    pub fn ecom_url(&self) -> String {
        format!("{}/api/v3", self.server.base_url())
    }
}

/// An X-Series webhook as it arrives: a form with `payload` (API 1.0 JSON).
pub fn pos_webhook(payload: &Value) -> (Vec<(String, String)>, Vec<u8>) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("environment", "production")
        .append_pair("domain_prefix", "sandbox")
        .append_pair("payload", &payload.to_string())
        .finish();
    (vec![("content-type".into(), "application/x-www-form-urlencoded".into())], body.into_bytes())
}

/// An eCom webhook signed with `secret` (the app's client secret).
pub fn ecom_webhook(event_type: &str, entity_id: u64, secret: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let event_id = format!("ev-{event_type}-{entity_id}-{}", jiff::Timestamp::now().as_millisecond());
    let created = jiff::Timestamp::now().as_second();
    let body = json!({"eventId": event_id, "eventCreated": created, "storeId": STORE_ID.parse::<u64>().expect("digits"), "entityId": entity_id, "eventType": event_type, "data": {}});
    let signature = tillflow_http::webhook::sign_hmac_sha256_base64(
        &secrecy::SecretString::from(secret.to_owned()),
        crate::webhook::ecom_signed_text(&created.to_string(), &event_id).as_bytes(),
    );
    (
        vec![("content-type".into(), "application/json".into()), (crate::webhook::ECOM_SIGNATURE.into(), signature)],
        body.to_string().into_bytes(),
    )
}

impl Sandbox for RetailPosSandbox {
    fn ring_sale(&self, n: u64) -> bool {
        let mut world = self.world.lock().expect("world");
        let customer = pos_id(n % (world.customers.len() as u64).max(1) + 1);
        let sale = RetailPosWorld::sale_record(
            &format!("s-live-{n}"),
            Some(&customer),
            n as usize,
            &[(n % 20 + 1, 1, 1500)],
            jiff::Timestamp::now(),
        );
        world.put_sale(sale);
        true
    }

    /// X-Series's `sale.update` delivery of the live sale: its `payload`
    /// holds the sale in the API 1.0 shape, with the fields a receiver tells
    /// a sale by; X-Series signs none.
    fn sale_webhook(&self, n: u64) -> Option<tillflow_kit::sandbox::SandboxWebhook> {
        let id = format!("s-live-{n}");
        let sale = self.world.lock().expect("world").sales.iter().find(|s| s.record["id"] == id)?.record.clone();
        let (headers, body) = pos_webhook(&json!({
            "id": sale["id"], "register_id": sale["register_id"], "customer_id": sale["customer_id"],
            "sale_date": sale["sale_date"], "status": sale["status"], "invoice_number": sale["invoice_number"],
            "taxes": [], "register_sale_products": [],
        }));
        Some(tillflow_kit::sandbox::SandboxWebhook { headers, body })
    }

    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<Faults> {
        self.server.faults()
    }

    /// The personal token: X-Series revokes a refresh token as soon as it
    /// issues the next, so an answer lost on the way (the fault storm's
    /// `lost`) ends an OAuth grant for good; a single store uses a personal
    /// token. Rotating OAuth is tested apart, without lost answers.
    fn connector_keys(&self) -> String {
        let base = self.server.base_url();
        format!(
            "domain_prefix = \"sandbox\"\nbase_url = \"{base}\"\npersonal_token = \"{PERSONAL_TOKEN}\"\ncurrency = \"NZD\"\necom = {{ store_id = \"{STORE_ID}\", token = \"{ECOM_TOKEN}\", client_secret = \"{ECOM_CLIENT_SECRET}\", base_url = \"{base}/api/v3\" }}\n"
        )
    }

    fn credentials(&self) -> String {
        format!(
            "X-Series: personal_token = \"{PERSONAL_TOKEN}\" (or OAuth client_secret = \"{CLIENT_SECRET}\", refresh_token = \"{}\"); eCom: store {STORE_ID}, token = \"{ECOM_TOKEN}\"   (inspect: GET /sandbox/state)",
            self.world.lock().expect("world").refresh_token
        )
    }

    fn describe(&self) -> String {
        let world = self.world.lock().expect("world");
        format!(
            "{} sales over {} POS customers and {} eCom customers ({} online orders)",
            world.sales.len(),
            world.customers.len(),
            world.ecom_customers.len(),
            world.ecom_orders.len()
        )
    }
}

type Shared = State<Arc<Mutex<RetailPosWorld>>>;

/// `POST /api/1.0/token`: form `grant_type=refresh_token`; the refresh
/// token used is revoked as the new one is issued.
async fn token(State(world): Shared, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let mut world = world.lock().expect("world");
    world.requests += 1;
    let field = |key: &str| form.get(key).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "refresh_token"
        || field("client_id") != CLIENT_ID
        || field("client_secret") != CLIENT_SECRET
    {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    if field("refresh_token") != world.refresh_token {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "refresh token revoked"})),
        )
            .into_response();
    }
    world.next_token += 1;
    let access = format!("xs-access-{}", world.next_token);
    world.refresh_token = format!("xs-refresh-{}", world.next_token);
    world.access_tokens.push(access.clone());
    let expires = jiff::Timestamp::now().as_second() + 604_800;
    axum::Json(json!({"access_token": access, "token_type": "Bearer", "expires": expires, "expires_in": 604_800, "refresh_token": world.refresh_token, "domain_prefix": "sandbox"})).into_response()
}

fn list_of<'a>(world: &'a RetailPosWorld, list: &str) -> Option<&'a Vec<Versioned>> {
    Some(match list {
        "customers" => &world.customers,
        "customer_groups" => &world.groups,
        "outlets" => &world.outlets,
        "registers" => &world.registers,
        "products" => &world.products,
        "sales" => &world.sales,
        _ => return None,
    })
}

/// `GET /api/2.0/{list}?after&page_size`: ascending by version; an empty
/// page has a null version.
async fn x_list(
    State(world): Shared,
    Path(list): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(refused) = world.admit_x(&headers) {
        return *refused;
    }
    let Some(records) = list_of(&world, &list) else { return StatusCode::NOT_FOUND.into_response() };
    let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let size: usize = query.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(100).clamp(1, 1000);
    let mut page: Vec<&Versioned> = records.iter().filter(|v| v.version > after).collect();
    page.sort_by_key(|v| v.version);
    page.truncate(size);
    let version = match (page.first(), page.last()) {
        (Some(first), Some(last)) => json!({"min": first.version, "max": last.version}),
        _ => json!({"min": null, "max": null}),
    };
    let data: Vec<&Value> = page.iter().map(|v| &v.record).collect();
    axum::Json(json!({"data": data, "version": version})).into_response()
}

async fn x_one(State(world): Shared, Path((list, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(refused) = world.admit_x(&headers) {
        return *refused;
    }
    match list_of(&world, &list).and_then(|records| records.iter().find(|v| v.record["id"] == id.as_str())) {
        Some(found) => axum::Json(json!({"data": found.record})).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Not Found"}))).into_response(),
    }
}

fn ecom_updated(record: &Value, key: &str) -> i64 {
    match &record[key] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(text) => crate::mapping::ecom_time(text, key).ok().flatten().map_or(0, |t| t.as_second()),
        _ => 0,
    }
}

/// `GET /api/v3/{store}/customers|orders|customer_groups`.
async fn ecom_list(
    State(world): Shared,
    Path((store, list)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(refused) = world.admit_ecom(&headers) {
        return *refused;
    }
    if store != STORE_ID {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"errorMessage": "Store not found"}))).into_response();
    }
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<i64>().ok());
    let (records, updated_key): (Vec<Value>, &str) = match list.as_str() {
        "customers" => (world.ecom_customers.clone(), "updated"),
        "orders" => (world.ecom_orders.clone(), "updateTimestamp"),
        "customer_groups" => (ECOM_GROUPS.iter().map(|(id, name)| json!({"id": id, "name": name})).collect(), ""),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut matching: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            updated_key.is_empty() || number("updatedFrom").is_none_or(|from| ecom_updated(r, updated_key) >= from)
        })
        .filter(|r| updated_key.is_empty() || number("updatedTo").is_none_or(|to| ecom_updated(r, updated_key) <= to))
        .collect();
    if query.get("sortBy").map(String::as_str) == Some("UPDATED_DATE_ASC") {
        matching.sort_by_key(|r| (ecom_updated(r, updated_key), r["id"].as_i64().unwrap_or(0)));
    }
    let offset = number("offset").unwrap_or(0).max(0) as usize;
    let limit = number("limit").unwrap_or(10).clamp(1, 100) as usize;
    let items: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    axum::Json(json!({"total": matching.len(), "count": items.len(), "offset": offset, "limit": limit, "items": items}))
        .into_response()
}

async fn ecom_one(
    State(world): Shared,
    Path((store, list, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(refused) = world.admit_ecom(&headers) {
        return *refused;
    }
    let records = match (store == STORE_ID, list.as_str()) {
        (true, "customers") => &world.ecom_customers,
        (true, "orders") => &world.ecom_orders,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match records.iter().find(|r| r["id"].as_u64().is_some_and(|n| n.to_string() == id)) {
        Some(found) => axum::Json(found.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"errorMessage": "Not found"}))).into_response(),
    }
}

async fn state(State(world): Shared) -> Response {
    let world = world.lock().expect("world");
    axum::Json(json!({
        "customers": world.customers.len(), "sales": world.sales.len(),
        "ecom_customers": world.ecom_customers.len(), "ecom_orders": world.ecom_orders.len(),
        "requests": world.requests, "throttled": world.throttled, "version": world.version,
    }))
    .into_response()
}
