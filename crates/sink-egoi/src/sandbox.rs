//! A stateful in-memory E-goi (feature `sandbox`): the `Apikey` header,
//! one list with its fields and connected sites, contacts unique by email
//! (409 naming the holder), asynchronous bulk contact imports that finish
//! only as `GET /operations` is polled, both order endpoints checked the way
//! the spec's schemas say (statuses, required fields, revenue above zero,
//! integer quantities, phone pattern), orders kept per contact with their
//! status history, the client and account rate windows in the headers of
//! every answer (429 over them), 413 over the size cap, contacts forgotten
//! with their orders (`…/actions/forget`), injected faults, and
//! `GET /sandbox/state` to inspect it all.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tillflow_http::sandbox::{SandboxServer, any_loopback_port, retry_after_seconds};
use tillflow_kit::sandbox::{Received, Sandbox, SandboxOptions, Starting};

/// The key of a sandbox started through the kit (`tillflow sandbox`, the demo).
pub const API_KEY: &str = "egoi-sandbox-key";
/// The sandbox's list.
pub const LIST_ID: u64 = 1;
/// The store the demo connects.
pub const DOMAIN: &str = "shop.example.com";
/// E-goi's stream limit.
pub const MAX_BODY: usize = 20 * 1024 * 1024;
const STATUSES: [&str; 5] = ["created", "pending", "canceled", "completed", "unknown"];

#[derive(Clone, Debug, Serialize)]
pub struct SandboxContact {
    pub contact_id: String,
    pub email: String,
    pub base: Map<String, Value>,
    /// Extra field id → value.
    pub extra: BTreeMap<u64, Value>,
    /// Tag ids attached.
    pub tags: std::collections::BTreeSet<u64>,
    /// `active` or `unsubscribed`.
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SandboxOrder {
    pub order_id: String,
    /// The buyer's email.
    pub contact: String,
    pub status: String,
    pub total: Value,
    /// The order's date as E-goi keeps it: the sync date for imported orders.
    pub date: String,
    pub items: Value,
    /// `bulk` or `live`, the last endpoint that wrote it.
    pub via: &'static str,
    /// Every status it was posted with, in order.
    pub statuses: Vec<String>,
    /// Every total it was posted with, in order.
    pub totals: Vec<Value>,
}

impl SandboxOrder {
    /// An order as one post of it says.
    fn posted(body: &Value, contact: String, total: &Value, date: String, items: &Value, via: &'static str) -> Self {
        let status = body["order_status"].as_str().unwrap_or("unknown").to_owned();
        Self {
            order_id: body["order_id"].as_str().unwrap_or("").to_owned(),
            contact,
            statuses: vec![status.clone()],
            totals: vec![total.clone()],
            status,
            total: total.clone(),
            date,
            items: items.clone(),
            via,
        }
    }
}

/// A contact import waiting in E-goi's queue.
#[derive(Clone, Debug, Serialize)]
pub struct QueuedImport {
    pub operation_id: u64,
    pub mode: String,
    pub contacts: Vec<Value>,
    /// `GET /operations` answers it is still running this many more times.
    pub polls_left: u32,
}

/// A request budget in fixed windows, as E-goi counts.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Budget {
    pub limit: u32,
    pub window: Duration,
    #[serde(skip)]
    started: Option<Instant>,
    used: u32,
}

impl Budget {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, started: None, used: 0 }
    }

    /// The window started now and is already spent (another client of the
    /// account used it).
    pub fn spend_all(&mut self) {
        self.started = Some(Instant::now());
        self.used = self.limit;
    }

    fn roll(&mut self, now: Instant) {
        if self.started.is_none_or(|started| now.duration_since(started) >= self.window) {
            self.started = Some(now);
            self.used = 0;
        }
    }

    fn reset_in(&self, now: Instant) -> u64 {
        let started = self.started.unwrap_or(now);
        retry_after_seconds(self.window.saturating_sub(now.duration_since(started)))
    }
}

#[derive(Default, Serialize)]
pub struct EgoiWorld {
    /// Tags by id (`/tags`).
    pub tags: BTreeMap<u64, String>,
    /// Status and tag changes made by contact actions.
    pub contact_actions: u64,
    /// Emails of the contacts forgotten (`…/actions/forget`).
    pub forgotten: Vec<String>,
    pub fields: Vec<Value>,
    /// Connected sites: domain → list.
    pub connected: BTreeMap<String, u64>,
    pub contacts: BTreeMap<String, SandboxContact>,
    pub orders: BTreeMap<String, SandboxOrder>,
    pub queue: Vec<QueuedImport>,
    pub requests: u64,
    /// Order writes that created an order or changed what E-goi keeps of it
    /// (status, total, buyer, items); a re-post of the same order is an
    /// idempotent upsert and counts under `identical_writes`.
    pub order_writes: u64,
    /// Contact writes from the contact endpoints: creates, PATCHes and
    /// contacts of `update` imports.
    pub contact_writes: u64,
    /// Order writes that changed nothing (a retry after a lost answer).
    pub identical_writes: u64,
    /// Buyers added ahead of imported orders (`add` imports and by-field).
    pub buyer_writes: u64,
    pub conflicts: u64,
    /// Imported orders whose `contact_id` was no contact of the list.
    pub orphan_orders: u64,
    /// Requests refused: over a budget (429), over the size cap (413),
    /// invalid (400/422).
    pub throttled: u64,
    pub too_large: u64,
    pub invalid: u64,
    /// The client window and the hourly account window.
    pub rate: Option<Budget>,
    pub account: Option<Budget>,
    pub max_body: usize,
    /// How many `GET /operations` answers show an import still running.
    pub import_polls: u32,
    #[serde(skip)]
    api_key: String,
    #[serde(skip)]
    next_contact: u64,
    #[serde(skip)]
    next_operation: u64,
}

impl EgoiWorld {
    /// The orders a contact holds.
    pub fn orders_of(&self, email: &str) -> Vec<&SandboxOrder> {
        self.orders.values().filter(|order| order.contact == email).collect()
    }

    pub fn contact(&self, email: &str) -> Option<&SandboxContact> {
        self.contacts.values().find(|contact| contact.email == email)
    }
}

/// The list's fields: email unique, the names and cellphone, and two extras.
pub fn default_fields() -> Vec<Value> {
    vec![
        json!({"field_id": "email", "name": "email", "format": "email", "unique": true, "type": "base"}),
        json!({"field_id": "first_name", "name": "first_name", "format": "text", "unique": false, "type": "base"}),
        json!({"field_id": "last_name", "name": "last_name", "format": "text", "unique": false, "type": "base"}),
        json!({"field_id": "cellphone", "name": "cellphone", "format": "cellphone", "unique": false, "type": "base"}),
        json!({"field_id": "extra_1", "name": "Cidade", "format": "text", "unique": false, "type": "extra"}),
        json!({"field_id": "extra_2", "name": "Client number", "format": "text", "unique": false, "type": "extra"}),
    ]
}

pub struct EgoiSandbox {
    world: Arc<Mutex<EgoiWorld>>,
    server: SandboxServer,
    api_key: String,
}

/// Starts a sandbox for the kit: [`API_KEY`] on `options.address`.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = EgoiSandbox::start_on(options.address, API_KEY).await?;
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for EgoiSandbox {
    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<tillflow_http::sandbox::Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        format!(
            "api_key = \"{}\"\nbase_url = \"{}\"\nlist_id = {LIST_ID}\ndomain = \"{DOMAIN}\"\nstore_url = \"https://{DOMAIN}\"\nimport_poll = \"20ms\"\norder_ids = \"prefixed\"\n",
            self.api_key,
            self.server.base_url()
        )
    }

    fn credentials(&self) -> String {
        format!("Apikey: {}   list {LIST_ID}   (inspect: GET /sandbox/state)", self.api_key)
    }

    fn describe(&self) -> String {
        format!("an E-goi account with list {LIST_ID}")
    }

    fn received(&self) -> Received {
        let world = self.world.lock().expect("world");
        let by_name =
            BTreeMap::from([("order".to_owned(), world.order_writes), ("contact".to_owned(), world.contact_writes)]);
        Received { by_name, people: world.contacts.len() as u64, repeats_ignored: world.identical_writes }
    }
}

impl EgoiSandbox {
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), api_key).await
    }

    pub async fn start_on(address: SocketAddr, api_key: &str) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(EgoiWorld {
            api_key: api_key.to_owned(),
            fields: default_fields(),
            max_body: MAX_BODY,
            import_polls: 1,
            ..EgoiWorld::default()
        }));
        let router = Router::new()
            .route("/lists/{list}/fields", get(fields))
            .route("/lists/{list}/contacts", post(create_contact))
            .route("/lists/{list}/contacts/{contact}", patch(patch_contact))
            .route("/lists/{list}/contacts/by-field", post(contact_by_field))
            .route("/lists/{list}/contacts/actions/import-bulk", post(import_contacts))
            .route("/lists/{list}/contacts/actions/{action}", post(contact_action))
            .route("/contacts/search", get(search_contacts))
            .route("/tags", get(list_tags).post(create_tag))
            .route("/lists/{list}/orders", post(import_orders))
            .route("/operations", get(operations))
            .route("/connectedsites", post(connect_site))
            .route("/connectedsites/{domain}", get(connected_site))
            .route("/{domain}/orders", post(create_order))
            .route("/sandbox/state", get(state))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        Ok(Self { world, server, api_key: api_key.to_owned() })
    }

    pub fn world(&self) -> Arc<Mutex<EgoiWorld>> {
        self.world.clone()
    }
}

type Shared = State<Arc<Mutex<EgoiWorld>>>;

fn problem(status: StatusCode, title: &str, detail: &str, errors: Option<Value>) -> Response {
    let mut body = json!({
        "type": "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(errors) = errors {
        body["errors"] = errors;
    }
    (status, axum::Json(body)).into_response()
}

/// Every answer carries both windows' headers.
fn with_rate_headers(world: &EgoiWorld, mut response: Response) -> Response {
    let now = Instant::now();
    let headers = response.headers_mut();
    for (budget, prefix) in [(&world.rate, "x-ratelimit"), (&world.account, "x-account")] {
        let (limit, remaining, reset) = match budget {
            Some(budget) => (budget.limit, budget.limit.saturating_sub(budget.used), budget.reset_in(now)),
            None => (100_000, 100_000, 3600),
        };
        for (suffix, value) in [("limit", u64::from(limit)), ("remaining", u64::from(remaining)), ("reset", reset)] {
            let name = axum::http::HeaderName::try_from(format!("{prefix}-{suffix}")).expect("a header name");
            headers.insert(name, HeaderValue::from(value));
        }
    }
    response
}

/// Counts the request against both windows and checks the key and size.
// Handlers return the refusal as is; boxing it would only add noise here.
#[allow(clippy::result_large_err)]
fn admit(world: &mut EgoiWorld, headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    world.requests += 1;
    let now = Instant::now();
    let mut over = false;
    for budget in [&mut world.rate, &mut world.account].into_iter().flatten() {
        budget.roll(now);
        over |= budget.used >= budget.limit;
    }
    if over {
        world.throttled += 1;
        let response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "The user has sent too many requests in a given amount of time",
            None,
        );
        return Err(with_rate_headers(world, response));
    }
    for budget in [&mut world.rate, &mut world.account].into_iter().flatten() {
        budget.used += 1;
    }
    let key = headers.get("apikey").and_then(|v| v.to_str().ok()).unwrap_or("");
    if key != world.api_key {
        return Err(with_rate_headers(
            world,
            problem(StatusCode::UNAUTHORIZED, "Unauthorized", "Invalid API key", None),
        ));
    }
    if body.len() > world.max_body {
        world.too_large += 1;
        let response = problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            "The request is larger than the stream limit",
            None,
        );
        return Err(with_rate_headers(world, response));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        world.invalid += 1;
        with_rate_headers(world, problem(StatusCode::BAD_REQUEST, "Bad Request", &e.to_string(), None))
    })
}

fn answer(world: &EgoiWorld, status: StatusCode, body: Value) -> Response {
    with_rate_headers(world, (status, axum::Json(body)).into_response())
}

fn invalid(world: &mut EgoiWorld, errors: Value) -> Response {
    world.invalid += 1;
    let response =
        problem(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity", "The request is invalid", Some(errors));
    with_rate_headers(world, response)
}

/// [`admit`], then the list in the path must be the sandbox's.
#[allow(clippy::result_large_err)]
fn admit_on_list(world: &mut EgoiWorld, headers: &HeaderMap, list: u64, body: &[u8]) -> Result<Value, Response> {
    let body = admit(world, headers, body)?;
    if list != LIST_ID {
        return Err(with_rate_headers(world, problem(StatusCode::NOT_FOUND, "Not Found", "List not found", None)));
    }
    Ok(body)
}

fn cellphone_ok(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.split_once('-').is_some_and(|(code, number)| {
            (1..=3).contains(&code.len())
                && (4..=20).contains(&number.len())
                && code.bytes().chain(number.bytes()).all(|b| b.is_ascii_digit())
        })
    })
}

/// Base and extra fields as the contact schemas take them.
fn check_contact(contact: &Value) -> Result<(), String> {
    let base = contact["base"].as_object().ok_or("base is required")?;
    for (key, value) in base {
        match key.as_str() {
            "email" | "first_name" | "last_name" if value.is_string() => {}
            "cellphone" | "phone" if cellphone_ok(value) => {}
            "cellphone" | "phone" => return Err(format!("base.{key} must match ^(\\d){{1,3}}-(\\d){{4,20}}$")),
            "status" | "consent" => return Err(format!("base.{key} is not something tillflow may send")),
            other => return Err(format!("base.{other} is not a base field this sandbox knows")),
        }
    }
    for extra in contact["extra"].as_array().into_iter().flatten() {
        if !extra["field_id"].is_u64() || extra["value"].is_null() {
            return Err("extra items are {field_id: integer, value}".into());
        }
    }
    Ok(())
}

/// Writes `contact` (base and extra) onto the contact holding its email, or
/// a new one; returns its id and whether it was created or changed.
fn upsert_contact(world: &mut EgoiWorld, contact: &Value, replace: bool) -> Option<(String, bool)> {
    let email = contact["base"]["email"].as_str()?.trim().to_lowercase();
    let existing = world.contact(&email).map(|c| c.contact_id.clone());
    let (id, created) = match existing {
        Some(id) if !replace => return Some((id, false)),
        Some(id) => (id, false),
        None => {
            world.next_contact += 1;
            let id = format!("{:010x}", 0x8f_3a00_0000_u64 + world.next_contact);
            let fresh = SandboxContact {
                contact_id: id.clone(),
                email: email.clone(),
                base: Map::new(),
                extra: BTreeMap::new(),
                tags: Default::default(),
                status: "active".into(),
            };
            world.contacts.insert(id.clone(), fresh);
            (id, true)
        }
    };
    let stored = world.contacts.get_mut(&id).expect("just found or made");
    let changed = apply_fields(stored, contact);
    Some((id, created || changed))
}

/// Whether anything changed.
fn apply_fields(stored: &mut SandboxContact, contact: &Value) -> bool {
    let mut changed = false;
    for (key, value) in contact["base"].as_object().into_iter().flatten() {
        changed |= stored.base.insert(key.clone(), value.clone()).as_ref() != Some(value);
    }
    for extra in contact["extra"].as_array().into_iter().flatten() {
        if let Some(id) = extra["field_id"].as_u64() {
            changed |= stored.extra.insert(id, extra["value"].clone()).as_ref() != Some(&extra["value"]);
        }
    }
    changed
}

async fn fields(State(world): Shared, headers: HeaderMap, Path(list): Path<u64>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit_on_list(&mut world, &headers, list, b"") {
        return response;
    }
    answer(&world, StatusCode::OK, Value::Array(world.fields.clone()))
}

async fn create_contact(State(world): Shared, headers: HeaderMap, Path(list): Path<u64>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(message) = check_contact(&body) {
        return invalid(&mut world, json!({"contact": message}));
    }
    let Some(email) = body["base"]["email"].as_str().map(|e| e.trim().to_lowercase()) else {
        return invalid(&mut world, json!({"email": "the list's unique field email is required"}));
    };
    if let Some(holder) = world.contact(&email).map(|c| c.contact_id.clone()) {
        world.conflicts += 1;
        let errors = json!({"unique_field_in_use": "A unique field is already being used", "field_id": "email", "contacts": [holder]});
        let response = problem(StatusCode::CONFLICT, "Conflict", "A unique field is already being used", Some(errors));
        return with_rate_headers(&world, response);
    }
    let (id, _) = upsert_contact(&mut world, &body, true).expect("an email");
    world.contact_writes += 1;
    answer(&world, StatusCode::CREATED, json!({"contact_id": id}))
}

async fn patch_contact(
    State(world): Shared,
    headers: HeaderMap,
    Path((list, contact)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(message) = check_contact(&body) {
        return invalid(&mut world, json!({"contact": message}));
    }
    let Some(stored) = world.contacts.get_mut(&contact) else {
        return with_rate_headers(&world, problem(StatusCode::NOT_FOUND, "Not Found", "Contact not found", None));
    };
    apply_fields(stored, &body);
    world.contact_writes += 1;
    answer(&world, StatusCode::OK, json!({"contact_id": contact}))
}

async fn contact_by_field(State(world): Shared, headers: HeaderMap, Path(list): Path<u64>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body["compare_field"]["field_id"].as_str() != Some("email") || !body["compare_field"]["value"].is_string() {
        return invalid(&mut world, json!({"compare_field": "must name a unique field and its value"}));
    }
    if let Err(message) = check_contact(&body) {
        return invalid(&mut world, json!({"contact": message}));
    }
    let Some((id, _)) = upsert_contact(&mut world, &body, true) else {
        return invalid(&mut world, json!({"email": "required"}));
    };
    world.buyer_writes += 1;
    answer(&world, StatusCode::CREATED, json!({"contact_id": id}))
}

async fn import_contacts(State(world): Shared, headers: HeaderMap, Path(list): Path<u64>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let contacts = body["contacts"].as_array().cloned().unwrap_or_default();
    let mode = body["mode"].as_str().unwrap_or("");
    if !["add", "update", "update_only"].contains(&mode) || body["compare_field"].as_str() != Some("email") {
        return invalid(
            &mut world,
            json!({"mode": "mode add|update|update_only and compare_field email are required"}),
        );
    }
    if contacts.len() < 2 {
        world.invalid += 1;
        let response =
            problem(StatusCode::BAD_REQUEST, "Bad Request", "Minimum of 2 contacts to use this method", None);
        return with_rate_headers(&world, response);
    }
    if let Some((index, message)) =
        contacts.iter().enumerate().find_map(|(i, c)| check_contact(c).err().map(|m| (i, m)))
    {
        return invalid(&mut world, json!({ "contacts": { index.to_string(): message } }));
    }
    world.next_operation += 1;
    let operation = QueuedImport {
        operation_id: world.next_operation,
        mode: mode.to_owned(),
        contacts,
        polls_left: world.import_polls,
    };
    world.queue.push(operation);
    answer(&world, StatusCode::ACCEPTED, json!({"result": "success"}))
}

/// Applies a finished import: `add` leaves existing contacts alone.
fn apply_import(world: &mut EgoiWorld, import: QueuedImport) {
    for contact in &import.contacts {
        let replace = import.mode != "add";
        let exists = contact["base"]["email"].as_str().and_then(|e| world.contact(&e.trim().to_lowercase())).is_some();
        if import.mode == "update_only" && !exists {
            continue;
        }
        if let Some((_, changed)) = upsert_contact(world, contact, replace) {
            if import.mode == "add" {
                world.buyer_writes += u64::from(changed);
            } else {
                world.contact_writes += 1;
            }
        }
    }
}

async fn operations(State(world): Shared, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers, b"") {
        return response;
    }
    let queue = std::mem::take(&mut world.queue);
    let mut running = Vec::new();
    for mut import in queue {
        if import.polls_left == 0 {
            apply_import(&mut world, import);
        } else {
            import.polls_left -= 1;
            running.push(import);
        }
    }
    let items: Vec<Value> = running
        .iter()
        .map(|op| json!({"operation_id": op.operation_id, "type": "import_contacts", "status": "processing"}))
        .collect();
    world.queue = running;
    answer(&world, StatusCode::OK, json!({"total_items": items.len(), "items": items}))
}

async fn connected_site(State(world): Shared, headers: HeaderMap, Path(domain): Path<String>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers, b"") {
        return response;
    }
    match world.connected.get(&domain) {
        Some(list) => {
            answer(&world, StatusCode::OK, json!({"domain": domain, "list_id": list.to_string(), "features": []}))
        }
        None => with_rate_headers(&world, problem(StatusCode::NOT_FOUND, "Not Found", "Domain not found", None)),
    }
}

async fn connect_site(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let list = body["list_id"].as_str().and_then(|list| list.parse::<u64>().ok());
    let (Some(domain), Some(list)) = (body["domain"].as_str(), list) else {
        return invalid(&mut world, json!({"domain": "domain and list_id (a string) are required"}));
    };
    if domain.contains("://") || list != LIST_ID {
        return invalid(&mut world, json!({"domain": "a host without protocol, on an existing list"}));
    }
    world.connected.insert(domain.to_owned(), list);
    answer(&world, StatusCode::OK, json!({"domain": domain, "list_id": list.to_string()}))
}

fn is_date_time(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.parse::<jiff::Timestamp>().is_ok())
}

/// One element of `POST /lists/{list_id}/orders`, as its schema says.
fn check_imported_order(order: &Value) -> Result<(), String> {
    for key in ["order_id", "contact_id", "store_url"] {
        if order[key].as_str().is_none_or(str::is_empty) {
            return Err(format!("{key} is required"));
        }
    }
    if !order["revenue"].as_f64().is_some_and(|revenue| revenue > 0.0) {
        return Err("revenue must be greater than 0".into());
    }
    if !is_date_time(&order["date"]) {
        return Err("date must be a date-time".into());
    }
    if let Some(status) = order.get("order_status")
        && !STATUSES.iter().any(|s| status == s)
    {
        return Err(format!("order_status {status} is not one of {STATUSES:?}"));
    }
    let items = order["items"].as_array().ok_or("items is required")?;
    for item in items {
        if !item["id"].is_string() || !item["name"].is_string() {
            return Err("items need id and name".into());
        }
        if item.get("quantity").is_some_and(|q| !q.is_u64()) {
            return Err("items' quantity must be an integer".into());
        }
        if item.get("price").is_some_and(|p| !p.as_f64().is_some_and(|p| p >= 0.0)) {
            return Err("items' price must be a number of at least 0".into());
        }
    }
    Ok(())
}

/// A body of `POST /{domain}/orders`, as its schema says, with the list's
/// unique fields on the contact.
fn check_posted_order(order: &Value) -> Result<(), String> {
    if order["order_id"].as_str().is_none_or(str::is_empty) {
        return Err("order_id must be a non-empty string".into());
    }
    if let Some(status) = order.get("order_status")
        && !STATUSES.iter().any(|s| status == s)
    {
        return Err(format!("order_status {status} is not one of {STATUSES:?}"));
    }
    if order.get("order_total").is_some_and(|total| !total.is_number()) {
        return Err("order_total must be a number".into());
    }
    if order.get("order_date").is_some_and(|date| !is_date_time(date)) {
        return Err("order_date must be a date-time with its offset".into());
    }
    check_contact(&order["contact"])?;
    if !order["contact"]["base"]["email"].is_string() {
        return Err("contact must carry the list's unique fields (email)".into());
    }
    for product in order["products"].as_array().into_iter().flatten() {
        if !product["product_identifier"].is_string() || !product["name"].is_string() {
            return Err("products need product_identifier and name".into());
        }
        for key in ["price", "quantity"] {
            if product.get(key).is_some_and(|v| !v.is_number()) {
                return Err(format!("products' {key} must be a number"));
            }
        }
    }
    Ok(())
}

fn write_order(world: &mut EgoiWorld, order: SandboxOrder) {
    let same = world.orders.get(&order.order_id).is_some_and(|stored| {
        let number = |v: &Value| v.as_f64();
        stored.status == order.status
            && number(&stored.total) == number(&order.total)
            && stored.contact == order.contact
            && (stored.via != order.via || stored.items == order.items)
    });
    if same {
        world.identical_writes += 1;
        return;
    }
    world.order_writes += 1;
    match world.orders.get_mut(&order.order_id) {
        Some(stored) => {
            stored.statuses.push(order.status.clone());
            stored.totals.push(order.total.clone());
            stored.contact = order.contact;
            stored.status = order.status;
            stored.total = order.total;
            stored.items = order.items;
            stored.via = order.via;
            if order.via == "live" {
                stored.date = order.date;
            }
        }
        None => {
            world.orders.insert(order.order_id.clone(), order);
        }
    }
}

async fn import_orders(State(world): Shared, headers: HeaderMap, Path(list): Path<u64>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(orders) = body.as_array() else {
        return invalid(&mut world, json!({"body": "an array of orders"}));
    };
    let errors: Map<String, Value> = orders
        .iter()
        .enumerate()
        .filter_map(|(index, order)| check_imported_order(order).err().map(|e| (index.to_string(), json!(e))))
        .collect();
    if !errors.is_empty() {
        return invalid(&mut world, Value::Object(errors));
    }
    // "For technical reasons, all orders synchronized will have the date of
    // synchronization."
    let synced = jiff::Timestamp::now().to_string();
    for order in orders {
        let email = order["contact_id"].as_str().unwrap_or("").trim().to_lowercase();
        if world.contact(&email).is_none() {
            world.orphan_orders += 1;
        }
        let posted = SandboxOrder::posted(order, email, &order["revenue"], synced.clone(), &order["items"], "bulk");
        write_order(&mut world, posted);
    }
    answer(&world, StatusCode::ACCEPTED, json!({"result": "success"}))
}

async fn create_order(State(world): Shared, headers: HeaderMap, Path(domain): Path<String>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if !world.connected.contains_key(&domain) {
        return with_rate_headers(&world, problem(StatusCode::NOT_FOUND, "Not Found", "Domain not found", None));
    }
    if let Err(message) = check_posted_order(&body) {
        return invalid(&mut world, json!({"order": message}));
    }
    // "if the contact properties are specified, we'll create the user, if
    // its already in your list it will get the correct contact".
    let (contact, _) = upsert_contact(&mut world, &body["contact"], false).expect("checked");
    let email = world.contacts[&contact].email.clone();
    let date = body["order_date"].as_str().unwrap_or("").to_owned();
    let posted = SandboxOrder::posted(&body, email, &body["order_total"], date, &body["products"], "live");
    write_order(&mut world, posted);
    answer(&world, StatusCode::ACCEPTED, json!({"result": "success"}))
}

async fn state(State(world): Shared) -> Response {
    let world = world.lock().expect("world");
    axum::Json(serde_json::to_value(&*world).expect("state serializes")).into_response()
}

/// `GET /contacts/search?type=email&contact=…`.
async fn search_contacts(
    State(world): Shared,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers, b"") {
        return response;
    }
    let email = query.get("contact").map(|e| e.trim().to_lowercase()).unwrap_or_default();
    let items: Vec<Value> =
        world.contact(&email).map(|c| json!({"list_id": LIST_ID, "contact_id": c.contact_id})).into_iter().collect();
    answer(&world, StatusCode::OK, json!({ "items": items }))
}

async fn list_tags(State(world): Shared, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &headers, b"") {
        return response;
    }
    let items: Vec<Value> =
        world.tags.iter().map(|(id, name)| json!({"tag_id": id, "name": name, "color": "#FFFFFF"})).collect();
    answer(&world, StatusCode::OK, json!({"total_items": items.len(), "items": items}))
}

async fn create_tag(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(name) = body["name"].as_str().map(str::to_owned) else {
        return invalid(&mut world, json!({"name": "required"}));
    };
    if world.tags.values().any(|existing| *existing == name) {
        return with_rate_headers(&world, problem(StatusCode::CONFLICT, "Conflict", "Tag already exists", None));
    }
    let id = world.tags.keys().max().map_or(1, |max| max + 1);
    world.tags.insert(id, name.clone());
    answer(&world, StatusCode::CREATED, json!({"tag_id": id, "name": name, "color": "#FFFFFF"}))
}

/// `attach-tag`, `detach-tag`, `unsubscribe`, `activate` on listed contacts.
async fn contact_action(
    State(world): Shared,
    headers: HeaderMap,
    Path((list, action)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit_on_list(&mut world, &headers, list, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let ids: Vec<String> = match action.as_str() {
        "unsubscribe" => body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["contact_id"].as_str().map(str::to_owned))
            .collect(),
        _ => body["contacts"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
    };
    if ids.is_empty() || ids.iter().any(|id| !world.contacts.contains_key(id)) {
        return invalid(&mut world, json!({"contacts": "unknown or missing contacts"}));
    }
    if action == "forget" {
        // E-goi's GDPR erasure: the contacts go, with what the list held of them.
        for id in &ids {
            let contact = world.contacts.remove(id).expect("checked");
            world.orders.retain(|_, order| !order.contact.eq_ignore_ascii_case(&contact.email));
            world.forgotten.push(contact.email);
        }
        return answer(&world, StatusCode::ACCEPTED, json!({"result": "success"}));
    }
    let tag = body["tag_id"].as_u64();
    if matches!(action.as_str(), "attach-tag" | "detach-tag") && tag.is_none_or(|t| !world.tags.contains_key(&t)) {
        return invalid(&mut world, json!({"tag_id": "unknown tag"}));
    }
    for id in &ids {
        let contact = world.contacts.get_mut(id).expect("checked");
        match action.as_str() {
            "attach-tag" => {
                contact.tags.insert(tag.expect("checked"));
            }
            "detach-tag" => {
                contact.tags.remove(&tag.expect("checked"));
            }
            "unsubscribe" => contact.status = "unsubscribed".into(),
            "activate" => contact.status = "active".into(),
            _ => return with_rate_headers(&world, problem(StatusCode::NOT_FOUND, "Not Found", "No such action", None)),
        }
    }
    world.contact_actions += 1;
    answer(&world, StatusCode::OK, json!({"result": "success"}))
}

impl EgoiWorld {
    /// The titles of the tags a contact carries.
    pub fn tags_of(&self, email: &str) -> Vec<String> {
        self.contact(email)
            .map(|c| c.tags.iter().filter_map(|t| self.tags.get(t).cloned()).collect())
            .unwrap_or_default()
    }
}
