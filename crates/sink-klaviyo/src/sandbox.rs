//! A stateful in-memory Klaviyo (feature `sandbox`): the endpoints the sink
//! uses, with the API-key header and pinned revision checked, events recorded
//! once per (metric, profile, `unique_id`), bulk event jobs refused whole when
//! a `unique_id` repeats, profile import jobs that complete on the first poll,
//! each endpoint's burst and steady limits (fixed one-second and one-minute
//! windows, 429 with `Retry-After` over them, scalable for fast tests),
//! data-privacy deletion jobs (the profile and its events go at once),
//! injected faults, and `GET /sandbox/state` to inspect what it holds.

use crate::service;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tillflow_http::Tier;
use tillflow_http::sandbox::{
    Faults, FixedWindows, SandboxServer, WindowLimit, any_loopback_port, retry_after_seconds,
};
use tillflow_kit::sandbox::{Received, Sandbox, SandboxOptions, Starting};

#[derive(Clone, Debug, Serialize)]
pub struct SandboxEvent {
    pub metric: String,
    pub email: Option<String>,
    pub unique_id: Option<String>,
    /// The event's `time`, as sent.
    pub time: Option<String>,
    pub backfill: bool,
    pub value: Value,
    pub properties: Value,
}

#[derive(Default, Serialize)]
pub struct KlaviyoWorld {
    /// Profiles by lower-cased email.
    pub profiles: BTreeMap<String, Map<String, Value>>,
    pub events: Vec<SandboxEvent>,
    pub list_members: BTreeMap<String, Vec<String>>,
    pub requests: u64,
    pub duplicate_events: u64,
    pub bulk_jobs: u64,
    /// Profiles created or updated by profile-import or bulk import jobs.
    pub profile_upserts: u64,
    /// Enforce each endpoint's rate limits (on by default).
    #[serde(skip)]
    pub enforce_rate_limits: bool,
    /// Multiplies every limit (tests raise it to stay fast).
    #[serde(skip)]
    pub rate_scale: f64,
    /// Requests refused for going over an endpoint's limit.
    pub throttled: u64,
    /// Catalog items by id (`$custom:::$default:::<external_id>`).
    pub catalog: BTreeMap<String, Map<String, Value>>,
    /// Catalog items created, or changed by update jobs.
    pub catalog_writes: u64,
    /// Requests to any subscription endpoint (none unless consent is synced).
    pub subscription_requests: u64,
    /// Email marketing consent by email, as subscription jobs left it.
    pub email_consent: BTreeMap<String, String>,
    #[serde(skip)]
    catalog_jobs: BTreeMap<String, Vec<Value>>,
    /// Events accepted (bulk and live), duplicates excluded.
    pub events_accepted: u64,
    /// Data-privacy deletion jobs accepted, and the emails they deleted.
    pub deletion_jobs: u64,
    pub deleted: std::collections::BTreeSet<String>,
    /// When each event bulk job was accepted, and how many events it carried.
    #[serde(skip)]
    pub event_jobs: Vec<(std::time::Instant, usize)>,
    #[serde(skip)]
    windows: FixedWindows,
    #[serde(skip)]
    seen: HashSet<(String, String, String)>,
    #[serde(skip)]
    api_key: String,
}

impl KlaviyoWorld {
    pub fn events_named(&self, metric: &str) -> Vec<&SandboxEvent> {
        self.events.iter().filter(|e| e.metric == metric).collect()
    }
}

pub struct KlaviyoSandbox {
    world: Arc<Mutex<KlaviyoWorld>>,
    server: SandboxServer,
    api_key: String,
}

/// The key of a sandbox started through the kit (`tillflow sandbox`, the demo).
pub const API_KEY: &str = "pk_sandbox";

/// Starts a sandbox for the kit: [`API_KEY`] on `options.address`.
pub fn launch(options: SandboxOptions) -> Starting {
    Box::pin(async move {
        let sandbox = KlaviyoSandbox::start_on(options.address, API_KEY).await?;
        Ok(Box::new(sandbox) as Box<dyn Sandbox>)
    })
}

impl Sandbox for KlaviyoSandbox {
    fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn faults(&self) -> Arc<Faults> {
        self.server.faults()
    }

    fn connector_keys(&self) -> String {
        format!(
            "api_key = \"{}\"\nbase_url = \"{}\"\ncatalog = true\ncatalog_url = \"https://shop.example.com/products/{{productId}}\"\n",
            self.api_key,
            self.server.base_url()
        )
    }

    fn credentials(&self) -> String {
        format!("api_key = \"{}\"   (inspect: GET /sandbox/state)", self.api_key)
    }

    fn describe(&self) -> String {
        "a Klaviyo account".into()
    }

    fn received(&self) -> Received {
        let world = self.world.lock().expect("world");
        let mut by_name = BTreeMap::new();
        for event in &world.events {
            *by_name.entry(event.metric.clone()).or_default() += 1;
        }
        by_name.insert("profile upsert".into(), world.profile_upserts);
        by_name.insert("catalog item".into(), world.catalog_writes);
        Received { by_name, people: world.profiles.len() as u64, repeats_ignored: world.duplicate_events }
    }
}

impl KlaviyoSandbox {
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), api_key).await
    }

    pub async fn start_on(address: SocketAddr, api_key: &str) -> std::io::Result<Self> {
        let world = Arc::new(Mutex::new(KlaviyoWorld {
            api_key: api_key.to_owned(),
            enforce_rate_limits: true,
            rate_scale: 1.0,
            ..KlaviyoWorld::default()
        }));
        let router = Router::new()
            .route("/api/events", post(create_event))
            .route("/api/event-bulk-create-jobs", post(bulk_events))
            .route("/api/profile-import", post(import_profile))
            .route("/api/profile-bulk-import-jobs", post(bulk_profiles))
            .route("/api/profile-bulk-import-jobs/{id}", get(job))
            .route("/api/profile-bulk-import-jobs/{id}/import-errors", get(no_errors))
            .route("/api/lists/{id}/relationships/profiles", post(add_to_list).delete(remove_from_list))
            .route("/api/accounts", get(accounts))
            .route("/api/catalog-item-bulk-create-jobs", post(catalog_create))
            .route("/api/catalog-item-bulk-update-jobs", post(catalog_update))
            .route("/api/catalog-item-bulk-create-jobs/{id}", get(catalog_job))
            .route("/api/catalog-item-bulk-update-jobs/{id}", get(catalog_job))
            .route("/api/profile-subscription-bulk-create-jobs", post(subscribe))
            .route("/api/profile-subscription-bulk-delete-jobs", post(unsubscribe))
            .route("/api/data-privacy-deletion-jobs", post(delete_profile))
            .route("/sandbox/state", get(state))
            .with_state(world.clone());
        let server = SandboxServer::serve(router, address).await?;
        Ok(Self { world, server, api_key: api_key.to_owned() })
    }

    pub fn world(&self) -> Arc<Mutex<KlaviyoWorld>> {
        self.world.clone()
    }
}

type Shared = State<Arc<Mutex<KlaviyoWorld>>>;

fn error(status: StatusCode, code: &str, detail: &str) -> Response {
    (status, axum::Json(json!({"errors": [{"id": "sandbox", "status": status.as_u16(), "code": code, "title": detail, "detail": detail, "source": {"pointer": "/data/"}}]})))
        .into_response()
}

/// Checks the endpoint's rate limits, the key and the revision; returns the
/// parsed body.
// Handlers return the refusal as is; boxing it would only add noise here.
#[allow(clippy::result_large_err)]
fn admit(world: &mut KlaviyoWorld, endpoint: &Tier, headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    world.requests += 1;
    if world.enforce_rate_limits {
        let limit =
            WindowLimit { per_second: endpoint.per_second, per_minute: endpoint.per_minute }.scaled(world.rate_scale);
        if let Err(wait) = world.windows.admit(endpoint.name, limit) {
            world.throttled += 1;
            let seconds = retry_after_seconds(wait);
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                &format!("Request was throttled. Expected available in {seconds} second."),
            );
            response.headers_mut().insert("retry-after", seconds.into());
            return Err(response);
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("authorization") != format!("Klaviyo-API-Key {}", world.api_key) {
        return Err(error(StatusCode::UNAUTHORIZED, "not_authenticated", "Incorrect authentication credentials."));
    }
    if header("revision").is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "invalid", "The revision header is required."));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, "invalid", &e.to_string()))
}

fn record(world: &mut KlaviyoWorld, email: Option<String>, attributes: &Value) -> Result<(), String> {
    let metric =
        attributes["metric"]["data"]["attributes"]["name"].as_str().ok_or("metric name is required")?.to_owned();
    let unique_id = attributes["unique_id"].as_str().map(str::to_owned);
    if let Some(id) = &unique_id
        && !world.seen.insert((metric.clone(), email.clone().unwrap_or_default(), id.clone()))
    {
        world.duplicate_events += 1;
        return Ok(());
    }
    if let Some(email) = &email {
        world.profiles.entry(email.to_lowercase()).or_default().insert("email".into(), json!(email));
    }
    world.events_accepted += 1;
    world.events.push(SandboxEvent {
        metric,
        email,
        unique_id,
        time: attributes["time"].as_str().map(str::to_owned),
        backfill: attributes["backfill"].as_bool().unwrap_or(false),
        value: attributes["value"].clone(),
        properties: attributes["properties"].clone(),
    });
    Ok(())
}

async fn create_event(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::EVENTS, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let attributes = &body["data"]["attributes"];
    let email = attributes["profile"]["data"]["attributes"]["email"].as_str().map(str::to_owned);
    match record(&mut world, email, attributes) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, "invalid", &message),
    }
}

async fn bulk_events(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::EVENT_BULK_JOBS, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let entries = body["data"]["attributes"]["events-bulk-create"]["data"].as_array().cloned().unwrap_or_default();
    let mut ids = HashSet::new();
    let mut count = 0;
    for entry in &entries {
        for event in entry["attributes"]["events"]["data"].as_array().into_iter().flatten() {
            count += 1;
            let id = event["attributes"]["unique_id"].as_str().unwrap_or("").to_owned();
            let metric = event["attributes"]["metric"]["data"]["attributes"]["name"].as_str().unwrap_or("").to_owned();
            if !id.is_empty() && !ids.insert((metric, id)) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "A unique_id is repeated in this job; no events were processed.",
                );
            }
        }
    }
    if count > 1000 {
        return error(StatusCode::BAD_REQUEST, "invalid", "At most 1,000 events per job.");
    }
    world.bulk_jobs += 1;
    world.event_jobs.push((std::time::Instant::now(), count));
    for entry in entries {
        let email = entry["attributes"]["profile"]["data"]["attributes"]["email"].as_str().map(str::to_owned);
        for event in entry["attributes"]["events"]["data"].as_array().into_iter().flatten() {
            if let Err(message) = record(&mut world, email.clone(), &event["attributes"]) {
                return error(StatusCode::BAD_REQUEST, "invalid", &message);
            }
        }
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"data": {"type": "event-bulk-create-job", "id": format!("job-{}", world.bulk_jobs)}})),
    )
        .into_response()
}

fn upsert(world: &mut KlaviyoWorld, attributes: &Value) -> Result<(String, bool), String> {
    let email = attributes["email"].as_str().ok_or("this sandbox keys profiles by email")?.to_lowercase();
    let created = !world.profiles.contains_key(&email);
    world.profile_upserts += 1;
    let profile = world.profiles.entry(email.clone()).or_default();
    if let Some(fields) = attributes.as_object() {
        profile.extend(fields.clone());
    }
    Ok((email, created))
}

async fn import_profile(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::PROFILE_IMPORT, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match upsert(&mut world, &body["data"]["attributes"]) {
        Ok((email, created)) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, axum::Json(json!({"data": {"type": "profile", "id": format!("P-{email}"), "attributes": {}}})))
                .into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, "invalid", &message),
    }
}

async fn bulk_profiles(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::PROFILE_BULK_JOBS, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let profiles = body["data"]["attributes"]["profiles"]["data"].as_array().cloned().unwrap_or_default();
    if profiles.len() > 10_000 {
        return error(StatusCode::BAD_REQUEST, "invalid", "At most 10,000 profiles per job.");
    }
    let list = body["data"]["relationships"]["lists"]["data"][0]["id"].as_str().map(str::to_owned);
    for profile in &profiles {
        if let Ok((email, _)) = upsert(&mut world, &profile["attributes"])
            && let Some(list) = &list
        {
            world.list_members.entry(list.clone()).or_default().push(format!("P-{email}"));
        }
    }
    world.bulk_jobs += 1;
    let id = format!("job-{}", world.bulk_jobs);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {"status": "queued"}}})),
    )
        .into_response()
}

async fn job(State(world): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &service::PROFILE_BULK_JOB_STATUS, &headers, b"") {
        return response;
    }
    axum::Json(json!({"data": {"type": "profile-bulk-import-job", "id": id, "attributes": {"status": "complete", "failed_count": 0}}})).into_response()
}

async fn no_errors(State(world): Shared, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &service::PROFILE_BULK_JOB_STATUS, &headers, b"") {
        return response;
    }
    axum::Json(json!({"data": [], "links": {"next": null}})).into_response()
}

async fn add_to_list(State(world): Shared, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::LIST_PROFILES, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let members: Vec<String> =
        body["data"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str().map(str::to_owned)).collect();
    let list = world.list_members.entry(id).or_default();
    for member in members {
        if !list.contains(&member) {
            list.push(member);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn accounts(State(world): Shared, headers: HeaderMap) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &service::ACCOUNTS, &headers, b"") {
        return response;
    }
    axum::Json(json!({"data": [{"type": "account", "id": "sandbox"}]})).into_response()
}

/// A catalog job's item error, placed by its position.
fn item_error(index: usize, code: &str, detail: &str) -> Value {
    json!({"id": "sandbox", "code": code, "title": detail, "detail": detail, "source": {"pointer": format!("/data/attributes/items/data/{index}")}})
}

// Handlers return the refusal as is; boxing it would only add noise here.
#[allow(clippy::result_large_err)]
fn catalog_items(world: &mut KlaviyoWorld, headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, Response> {
    let body = admit(world, &service::CATALOG_JOBS, headers, body)?;
    let items = body["data"]["attributes"]["items"]["data"].as_array().cloned().unwrap_or_default();
    if items.is_empty() || items.len() > 100 {
        return Err(error(StatusCode::BAD_REQUEST, "invalid", "A catalog job takes 1 to 100 items."));
    }
    Ok(items)
}

fn job_started(world: &mut KlaviyoWorld, kind: &str, errors: Vec<Value>) -> Response {
    world.bulk_jobs += 1;
    let id = format!("catalog-job-{}", world.bulk_jobs);
    world.catalog_jobs.insert(id.clone(), errors);
    (StatusCode::ACCEPTED, axum::Json(json!({"data": {"type": kind, "id": id, "attributes": {"status": "queued"}}})))
        .into_response()
}

async fn catalog_create(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let items = match catalog_items(&mut world, &headers, &body) {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let attributes = &item["attributes"];
        let missing = ["external_id", "title", "description", "url"]
            .into_iter()
            .find(|key| attributes[*key].as_str().is_none_or(|v| v.trim().is_empty()));
        if let Some(key) = missing {
            errors.push(item_error(index, "invalid", &format!("'{key}' is required and may not be empty")));
            continue;
        }
        let id = crate::catalog::item_id(attributes["external_id"].as_str().unwrap_or(""));
        if world.catalog.contains_key(&id) {
            errors.push(item_error(
                index,
                "duplicate_catalog_item",
                &format!("A catalog item already exists with ID {id}"),
            ));
            continue;
        }
        world.catalog.insert(id, attributes.as_object().cloned().unwrap_or_default());
        world.catalog_writes += 1;
    }
    job_started(&mut world, "catalog-item-bulk-create-job", errors)
}

async fn catalog_update(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let items = match catalog_items(&mut world, &headers, &body) {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let id = item["id"].as_str().unwrap_or("").to_owned();
        let Some(stored) = world.catalog.get_mut(&id) else {
            errors.push(item_error(index, "not_found", &format!("No catalog item with ID {id}")));
            continue;
        };
        let mut changed = false;
        for (key, value) in item["attributes"].as_object().into_iter().flatten() {
            changed |= stored.insert(key.clone(), value.clone()).as_ref() != Some(value);
        }
        // An update that changes nothing (a retry) is not a write.
        if changed {
            world.catalog_writes += 1;
        } else {
            world.duplicate_events += 1;
        }
    }
    job_started(&mut world, "catalog-item-bulk-update-job", errors)
}

async fn catalog_job(State(world): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut world = world.lock().expect("world");
    if let Err(response) = admit(&mut world, &service::CATALOG_JOBS, &headers, b"") {
        return response;
    }
    let errors = world.catalog_jobs.get(&id).cloned().unwrap_or_default();
    axum::Json(json!({"data": {"type": "catalog-item-bulk-create-job", "id": id, "attributes": {"status": "complete", "errors": errors, "failed_count": errors.len()}}})).into_response()
}

/// A subscription job: each profile's email consent set. `consented_at`
/// is refused unless the job is a historical import, as Klaviyo does.
fn consent_job(world: &Mutex<KlaviyoWorld>, headers: &HeaderMap, body: &Bytes, consent: &str) -> Response {
    let mut world = world.lock().expect("world");
    world.subscription_requests += 1;
    let body = match admit(&mut world, &service::SUBSCRIPTION_JOBS, headers, body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let attributes = &body["data"]["attributes"];
    let historical = attributes["historical_import"].as_bool().unwrap_or(false);
    let profiles = attributes["profiles"]["data"].as_array().cloned().unwrap_or_default();
    let mut emails = Vec::new();
    for profile in &profiles {
        let marketing = &profile["attributes"]["subscriptions"]["email"]["marketing"];
        if marketing["consent"] != consent {
            return error(StatusCode::BAD_REQUEST, "invalid", &format!("consent must be {consent}"));
        }
        if !marketing["consented_at"].is_null() && !historical {
            return error(StatusCode::BAD_REQUEST, "invalid", "consented_at is only allowed with historical_import");
        }
        match profile["attributes"]["email"].as_str() {
            Some(email) => emails.push(email.to_lowercase()),
            None => return error(StatusCode::BAD_REQUEST, "invalid", "this sandbox subscribes by email"),
        }
    }
    for email in emails {
        world.email_consent.insert(email, consent.to_owned());
    }
    StatusCode::ACCEPTED.into_response()
}

async fn subscribe(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    consent_job(&world, &headers, &body, "SUBSCRIBED")
}

async fn unsubscribe(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    consent_job(&world, &headers, &body, "UNSUBSCRIBED")
}

async fn remove_from_list(State(world): Shared, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::LIST_PROFILES, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let leaving: Vec<String> =
        body["data"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str().map(str::to_owned)).collect();
    if let Some(members) = world.list_members.get_mut(&id) {
        members.retain(|member| !leaving.contains(member));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /api/data-privacy-deletion-jobs`: exactly one identifier; the
/// profile with that email goes, with its events, list memberships and
/// consent (done at once here; Klaviyo does it in the background).
async fn delete_profile(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut world = world.lock().expect("world");
    let body = match admit(&mut world, &service::DELETION_JOBS, &headers, &body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body["data"]["type"] != "data-privacy-deletion-job" {
        return error(StatusCode::BAD_REQUEST, "invalid", "data.type must be data-privacy-deletion-job");
    }
    let profile = &body["data"]["attributes"]["profile"]["data"];
    let identifiers =
        profile["attributes"].as_object().map(|a| a.len()).unwrap_or(0) + usize::from(profile["id"].is_string());
    if profile["type"] != "profile" || identifiers != 1 {
        return error(StatusCode::BAD_REQUEST, "invalid", "exactly one of email, phone_number or id is required");
    }
    let Some(email) = profile["attributes"]["email"].as_str().map(str::to_lowercase) else {
        return error(StatusCode::BAD_REQUEST, "invalid", "the sandbox deletes by email only");
    };
    world.deletion_jobs += 1;
    world.profiles.remove(&email);
    world.events.retain(|event| event.email.as_deref().map(str::to_lowercase).as_deref() != Some(email.as_str()));
    let profile_id = format!("P-{email}");
    for members in world.list_members.values_mut() {
        members.retain(|member| member.to_lowercase() != profile_id);
    }
    world.email_consent.remove(&email);
    world.deleted.insert(email);
    StatusCode::ACCEPTED.into_response()
}

async fn state(State(world): Shared) -> Response {
    let world = world.lock().expect("world");
    axum::Json(serde_json::to_value(&*world).expect("state serializes")).into_response()
}
