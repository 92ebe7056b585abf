//! A stateful in-memory Customer.io Track API (feature `sandbox`): Basic auth,
//! `POST /api/v2/batch` with its byte limits and 207 partial failures,
//! attribute updates ordered by timestamp (older ones silently dropped, as the
//! real one does), events deduplicated by `id`, an optional request budget,
//! injected faults, `POST /api/v2/entity` for a single operation (`suppress`
//! and `delete` remove the person, by email also whoever holds that email;
//! later operations for a suppressed identifier are dropped), and
//! `GET /sandbox/state` to inspect what it holds.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tillflow_http::sandbox::{
    Faults, FixedWindows, SandboxServer, WindowLimit, any_loopback_port, retry_after_seconds,
};
use tillflow_kit::sandbox::{Received, Sandbox, SandboxOptions, Starting};

#[derive(Clone, Debug, Default, Serialize)]
pub struct SandboxPerson {
    pub attributes: Map<String, Value>,
    /// Timestamp of the newest attribute update applied.
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SandboxEvent {
    pub id: Option<String>,
    /// `id:<id>` or `email:<email>`.
    pub person: String,
    pub name: String,
    pub timestamp: Option<i64>,
    pub attributes: Value,
    /// When the sandbox received it (for latency measurements).
    #[serde(skip)]
    pub received_at: Option<std::time::Instant>,
}

#[derive(Default, Serialize)]
pub struct CustomerIoWorld {
    pub people: BTreeMap<String, SandboxPerson>,
    pub events: Vec<SandboxEvent>,
    /// Requests to `/api/v2/batch`, accepted or not.
    pub batch_requests: u64,
    /// Events whose `id` had been seen already (ignored, as Customer.io does).
    pub duplicate_events: u64,
    /// Identify operations dropped for carrying an older timestamp.
    pub stale_updates: u64,
    /// Identify operations applied.
    pub identify_operations: u64,
    /// Identifiers suppressed (`id:…`, `email:…`): operations for them are
    /// dropped, as Customer.io drops them.
    pub suppressed: std::collections::BTreeSet<String>,
    /// Operations that arrived for a suppressed identifier (what a sync
    /// should never send after forgetting someone).
    pub operations_for_suppressed: u64,
    /// `suppress` and `delete` operations received.
    pub forget_operations: u64,
    /// The Track API request budget to enforce (requests per one-second
    /// window); `None` enforces nothing. Over it: 429 with Retry-After.
    #[serde(skip)]
    pub requests_per_second: Option<u32>,
    /// Requests refused for going over the budget.
    pub throttled: u64,
    /// When each batch request within the budget arrived.
    #[serde(skip)]
    pub admitted_at: Vec<std::time::Instant>,
    #[serde(skip)]
    windows: FixedWindows,
    /// Keep each event's attributes (off for very large benchmarks).
    #[serde(skip)]
    pub keep_event_data: bool,
    #[serde(skip)]
    seen_ids: HashSet<String>,
    #[serde(skip)]
    authorization: String,
}

impl CustomerIoWorld {
    pub fn events_named(&self, name: &str) -> Vec<&SandboxEvent> {
        self.events.iter().filter(|e| e.name == name).collect()
    }
}

pub struct CustomerIoSandbox {
    world: Arc<Mutex<CustomerIoWorld>>,
    server: SandboxServer,
    site_id: String,
    api_key: String,
}

/// The credentials of a sandbox started through the kit (`tillflow sandbox`, the demo).
pub const SITE_ID: &str = "site_sandbox";
pub const API_KEY: &str = "key_sandbox";

/// Starts a sandbox for the kit: [`SITE_ID`] and [`API_KEY`] on `options.address`.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = CustomerIoSandbox::start_on(options.address, SITE_ID, API_KEY).await?;
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for CustomerIoSandbox {
    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        // The workspace budget of a real account would be 100 requests a
        // second; the sandbox enforces none unless asked.
        format!(
            "site_id = \"{}\"\napi_key = \"{}\"\nbase_url = \"{}\"\nrequests_per_second = 1000\n",
            self.site_id,
            self.api_key,
            self.server.base_url()
        )
    }

    fn credentials(&self) -> String {
        format!("site_id = \"{}\"   api_key = \"{}\"   (inspect: GET /sandbox/state)", self.site_id, self.api_key)
    }

    fn describe(&self) -> String {
        "a Customer.io workspace".into()
    }

    fn received(&self) -> Received {
        let world = self.world.lock().expect("world");
        let mut by_name = BTreeMap::new();
        for event in &world.events {
            *by_name.entry(event.name.clone()).or_default() += 1;
        }
        by_name.insert("identify".into(), world.identify_operations);
        Received { by_name, people: world.people.len() as u64, repeats_ignored: world.duplicate_events }
    }
}

impl CustomerIoSandbox {
    pub async fn start(site_id: &str, api_key: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), site_id, api_key).await
    }

    pub async fn start_on(address: SocketAddr, site_id: &str, api_key: &str) -> std::io::Result<Self> {
        let authorization =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{site_id}:{api_key}")));
        let world = Arc::new(Mutex::new(CustomerIoWorld {
            authorization,
            keep_event_data: true,
            ..CustomerIoWorld::default()
        }));
        let router = Router::new()
            .route("/api/v2/batch", post(batch))
            .route("/api/v2/entity", post(entity))
            .route("/api/v1/accounts/region", get(region))
            .route("/sandbox/state", get(state))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        Ok(Self { world, server, site_id: site_id.to_owned(), api_key: api_key.to_owned() })
    }

    pub fn world(&self) -> Arc<Mutex<CustomerIoWorld>> {
        self.world.clone()
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"meta": {"error": "Unauthorized request"}}))).into_response()
}

async fn region(State(world): State<Arc<Mutex<CustomerIoWorld>>>, headers: HeaderMap) -> Response {
    let world = world.lock().expect("world");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(world.authorization.as_str()) {
        return unauthorized();
    }
    axum::Json(json!({"url": "https://track.customer.io", "data_center": "us", "environment_id": 1})).into_response()
}

async fn state(State(world): State<Arc<Mutex<CustomerIoWorld>>>) -> Response {
    let world = world.lock().expect("world");
    axum::Json(serde_json::to_value(&*world).expect("state serializes")).into_response()
}

fn person_key(identifiers: &Value) -> Result<String, String> {
    let object = identifiers.as_object().ok_or("identifiers must be an object")?;
    if object.len() != 1 {
        return Err("identifiers must hold exactly one of id, email, cio_id".into());
    }
    let (kind, value) = object.iter().next().expect("one entry");
    let value = match value {
        Value::String(text) if !text.is_empty() => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return Err(format!("identifier {kind} must be a non-empty string")),
    };
    match kind.as_str() {
        "id" | "cio_id" => Ok(format!("{kind}:{value}")),
        "email" => Ok(format!("email:{}", value.to_lowercase())),
        other => Err(format!("unknown identifier `{other}`")),
    }
}

/// What the sandbox reads of an operation. Its attributes stay raw until
/// they are kept or looked into: a benchmark's events are counted, not kept,
/// and parsing every one into a `Value` tree was most of a batch's cost.
#[derive(Default, Deserialize)]
#[serde(default)]
struct OperationView<'a> {
    #[serde(rename = "type")]
    kind: Value,
    action: Value,
    identifiers: Value,
    name: Value,
    id: Value,
    timestamp: Value,
    #[serde(borrow)]
    attributes: Option<&'a RawValue>,
}

impl OperationView<'_> {
    /// The attributes as an object (none unless they are one).
    fn attribute_map(&self) -> Map<String, Value> {
        self.attributes.and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default()
    }

    /// The `email` attribute, where it is a string.
    fn attribute_email(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Email {
            #[serde(default)]
            email: Value,
        }
        let email: Email = serde_json::from_str(self.attributes?.get()).ok()?;
        email.email.as_str().map(str::to_owned)
    }
}

fn apply(world: &mut CustomerIoWorld, operation: &RawValue) -> Result<(), String> {
    // Customer.io counts an operation's bytes as sent.
    let size = operation.get().len();
    if size > 32 * 1024 {
        return Err(format!("operation is {size} bytes; the limit is 32 KB"));
    }
    // A derived struct would also take an array, its items as the fields.
    if !operation.get().starts_with('{') {
        return Err("an operation must be an object".into());
    }
    let operation: OperationView =
        serde_json::from_str(operation.get()).map_err(|e| format!("the operation does not parse: {e}"))?;
    if operation.kind != "person" {
        return Err("only person operations are simulated".into());
    }
    let person = person_key(&operation.identifiers)?;
    let action = operation.action.as_str();
    if let Some(action @ ("suppress" | "delete")) = action {
        world.forget_operations += 1;
        remove_person(world, &person, action == "suppress");
        return Ok(());
    }
    if !world.suppressed.is_empty() {
        let email_key = operation.attribute_email().map(|email| format!("email:{}", email.to_lowercase()));
        if world.suppressed.contains(&person) || email_key.is_some_and(|key| world.suppressed.contains(&key)) {
            world.operations_for_suppressed += 1;
            return Ok(());
        }
    }
    match action {
        Some("identify") => {
            let timestamp = operation.timestamp.as_i64().unwrap_or_else(|| jiff::Timestamp::now().as_second());
            let attributes = operation.attribute_map();
            let entry = world.people.entry(person).or_default();
            if timestamp < entry.updated_at {
                world.stale_updates += 1;
                return Ok(());
            }
            entry.updated_at = timestamp;
            entry.attributes.extend(attributes);
            world.identify_operations += 1;
            Ok(())
        }
        Some("event") => {
            let name = operation.name.as_str().filter(|n| !n.trim().is_empty()).ok_or("event needs a name")?;
            let id = operation.id.as_str().map(str::to_owned);
            if let Some(id) = &id
                && !world.seen_ids.insert(id.clone())
            {
                world.duplicate_events += 1;
                return Ok(());
            }
            world.people.entry(person.clone()).or_default();
            let attributes = match operation.attributes {
                Some(raw) if world.keep_event_data => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            world.events.push(SandboxEvent {
                id,
                person,
                name: name.trim().to_owned(),
                timestamp: operation.timestamp.as_i64(),
                attributes,
                received_at: Some(std::time::Instant::now()),
            });
            Ok(())
        }
        other => Err(format!("action {other:?} is not simulated")),
    }
}

/// Removes the person `key` names (by email: also every person whose email
/// attribute is that address) with their events; `suppress` keeps every
/// identifier they had from coming back.
fn remove_person(world: &mut CustomerIoWorld, key: &str, suppress: bool) {
    let email = key.strip_prefix("email:");
    let holders: Vec<String> = world
        .people
        .iter()
        .filter(|(person, profile)| {
            person.as_str() == key
                || email.is_some_and(|email| {
                    profile.attributes.get("email").and_then(Value::as_str).map(str::to_lowercase).as_deref()
                        == Some(email)
                })
        })
        .map(|(person, _)| person.clone())
        .collect();
    for holder in &holders {
        world.people.remove(holder);
    }
    world.events.retain(|event| event.person != key && !holders.contains(&event.person));
    if suppress {
        world.suppressed.insert(key.to_owned());
        world.suppressed.extend(holders);
    }
}

/// `POST /api/v2/entity`: one operation, 200 `{}` or 400 with the reason.
async fn entity(State(world): State<Arc<Mutex<CustomerIoWorld>>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(world.authorization.as_str()) {
        return unauthorized();
    }
    let result = serde_json::from_slice::<&RawValue>(&body)
        .map_err(|e| e.to_string())
        .and_then(|operation| apply(&mut world, operation));
    match result {
        Ok(()) => axum::Json(json!({})).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"errors": [{"reason": "invalid", "field": "", "message": message}]})),
        )
            .into_response(),
    }
}

/// A batch request's body: its `batch` kept raw, so that one that is not an
/// array is answered as Customer.io answers it.
#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow, default)]
    batch: Option<&'a RawValue>,
}

async fn batch(State(world): State<Arc<Mutex<CustomerIoWorld>>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    world.batch_requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(world.authorization.as_str()) {
        return unauthorized();
    }
    if let Some(budget) = world.requests_per_second
        && let Err(wait) = world.windows.admit("track", WindowLimit { per_second: budget, per_minute: 0 })
    {
        world.throttled += 1;
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"meta": {"error": "rate limited"}}))).into_response();
        response.headers_mut().insert("retry-after", retry_after_seconds(wait).into());
        return response;
    }
    world.admitted_at.push(std::time::Instant::now());
    if body.len() > 500 * 1024 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"errors": [{"reason": "too_large", "field": "batch", "message": "request exceeds 500 KB"}]}),
            ),
        )
            .into_response();
    }
    let parsed: BatchBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"errors": [{"reason": "invalid", "field": "batch", "message": e.to_string()}]})),
            )
                .into_response();
        }
    };
    let Some(operations) = parsed.batch.and_then(|batch| serde_json::from_str::<Vec<&RawValue>>(batch.get()).ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"errors": [{"reason": "required", "field": "batch", "message": "batch must be an array"}]}),
            ),
        )
            .into_response();
    };
    let mut errors = Vec::new();
    for (index, operation) in operations.into_iter().enumerate() {
        if let Err(message) = apply(&mut world, operation) {
            errors.push(json!({"batch_index": index, "reason": "invalid", "field": "", "message": message}));
        }
    }
    if errors.is_empty() {
        axum::Json(json!({})).into_response()
    } else {
        (StatusCode::MULTI_STATUS, axum::Json(json!({ "errors": errors }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_text(world: &mut CustomerIoWorld, operation: &str) -> Result<(), String> {
        let raw: &RawValue = serde_json::from_str(operation).expect("test operations are JSON");
        apply(world, raw)
    }

    #[test]
    fn an_event_keeps_its_attributes_only_where_the_world_keeps_event_data() {
        let event = r#"{"type":"person","action":"event","identifiers":{"id":"7"},"name":"placed","id":"E1","timestamp":1700000000,"attributes":{"total":"12.50","items":[1,2]}}"#;
        let mut world = CustomerIoWorld { keep_event_data: true, ..CustomerIoWorld::default() };
        apply_text(&mut world, event).unwrap();
        assert_eq!(world.events[0].attributes, json!({"total": "12.50", "items": [1, 2]}));
        assert_eq!((world.events[0].person.as_str(), world.events[0].timestamp), ("id:7", Some(1_700_000_000)));

        let mut counted_only = CustomerIoWorld { keep_event_data: false, ..CustomerIoWorld::default() };
        apply_text(&mut counted_only, event).unwrap();
        apply_text(&mut counted_only, event).unwrap();
        assert_eq!(counted_only.events.len(), 1, "the same id twice is one event");
        assert_eq!((counted_only.events[0].attributes.clone(), counted_only.duplicate_events), (Value::Null, 1));
    }

    #[test]
    fn a_suppressed_address_drops_later_operations_that_carry_it_as_an_attribute() {
        let mut world = CustomerIoWorld::default();
        apply_text(&mut world, r#"{"type":"person","action":"suppress","identifiers":{"email":"Ana@Example.com"}}"#)
            .unwrap();
        let identify = r#"{"type":"person","action":"identify","identifiers":{"id":"9"},"timestamp":5,"attributes":{"email":"ANA@example.com","first_name":"Ana"}}"#;
        apply_text(&mut world, identify).unwrap();
        assert_eq!((world.operations_for_suppressed, world.identify_operations), (1, 0));
        assert!(world.people.is_empty());

        apply_text(&mut world, &identify.replace("ANA@example.com", "bea@example.com")).unwrap();
        assert_eq!(world.people["id:9"].attributes["first_name"], "Ana");
        assert_eq!(world.people["id:9"].updated_at, 5);
    }

    #[test]
    fn an_operation_is_measured_by_its_bytes_as_sent_and_must_be_an_object() {
        let mut world = CustomerIoWorld::default();
        let padding = "x".repeat(32 * 1024);
        let large = format!(
            r#"{{"type":"person","action":"identify","identifiers":{{"id":"1"}},"attributes":{{"note":"{padding}"}}}}"#
        );
        assert!(apply_text(&mut world, &large).unwrap_err().contains("32 KB"));
        assert!(apply_text(&mut world, "[1, 2]").unwrap_err().contains("must be an object"));
        assert_eq!(
            apply_text(&mut world, r#"{"type":"object","identifiers":{"id":"1"}}"#).unwrap_err(),
            "only person operations are simulated"
        );
        assert!(world.people.is_empty() && world.events.is_empty());
    }
}
