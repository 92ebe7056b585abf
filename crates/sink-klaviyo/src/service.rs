//! HTTP exchanges with Klaviyo: the pinned revision and JSON:API headers on
//! every request, one rate tier per endpoint (burst per second and steady per
//! minute from the spec's `x-klaviyo-ratelimit`), bulk job polling, and
//! JSON:API error bodies turned into one readable line.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_http::reqwest::Method;
use tillflow_http::{HttpClient, HttpError, Tier};

pub const PROFILE_IMPORT: Tier = Tier::new("profile-import", 75).with_per_minute(750);
pub const EVENTS: Tier = Tier::new("events", 350).with_per_minute(3500);
pub const EVENT_BULK_JOBS: Tier = Tier::new("event-bulk-create-jobs", 10).with_per_minute(150);
pub const PROFILE_BULK_JOBS: Tier = Tier::new("profile-bulk-import-jobs", 10).with_per_minute(150);
pub const PROFILE_BULK_JOB_STATUS: Tier = Tier::new("profile-bulk-import-job", 10).with_per_minute(150);
pub const LIST_PROFILES: Tier = Tier::new("list-profiles", 10).with_per_minute(150);
pub const ACCOUNTS: Tier = Tier::new("accounts", 1).with_per_minute(15);

const MEDIA: &str = "application/vnd.api+json";

/// `{"errors":[{"code","title","detail","source":{"pointer"}}]}` → one line.
pub fn readable_errors(body: &str) -> String {
    let Ok(document) = serde_json::from_str::<Value>(body) else { return body.to_owned() };
    let Some(errors) = document["errors"].as_array().filter(|e| !e.is_empty()) else { return body.to_owned() };
    errors
        .iter()
        .map(|error| {
            let code = error["code"].as_str().unwrap_or("error");
            let detail = error["detail"].as_str().or(error["title"].as_str()).unwrap_or("");
            match error["source"]["pointer"].as_str().filter(|p| !p.is_empty() && *p != "/data/") {
                Some(pointer) => format!("{code}: {detail} (at {pointer})"),
                None => format!("{code}: {detail}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why one request failed.
pub enum Failure {
    /// The request itself was refused (4xx): dead-letter its items.
    Refused(String),
    /// Anything else ends the batch (credentials, unavailability).
    Stop(ConnectorError),
}

fn classify(error: HttpError) -> Failure {
    match error {
        HttpError::Rejected { status, message, .. } => {
            Failure::Refused(format!("Klaviyo refused it (HTTP {status}): {}", readable_errors(&message)))
        }
        HttpError::Unauthorized { status, message, .. } => Failure::Stop(ConnectorError::config(format!(
            "Klaviyo refused the API key (HTTP {status}): {}",
            readable_errors(&message)
        ))),
        other => Failure::Stop(other.into()),
    }
}

pub struct KlaviyoService {
    client: HttpClient,
    base_url: String,
    api_key: SecretString,
    job_poll: Duration,
}

impl KlaviyoService {
    pub fn new(client: HttpClient, base_url: String, api_key: SecretString, job_poll: Duration) -> Self {
        Self { client, base_url: base_url.trim_end_matches('/').to_owned(), api_key, job_poll }
    }

    async fn call(
        &self,
        tier: &Tier,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let mut request = self
            .client
            .reqwest()
            .request(method, format!("{}{path}", self.base_url))
            .header("authorization", format!("Klaviyo-API-Key {}", self.api_key.expose_secret()))
            .header("revision", crate::REVISION)
            .header("accept", MEDIA);
        if let Some(body) = body {
            request = request.header("content-type", MEDIA).body(serde_json::to_vec(body).expect("bodies serialize"));
        }
        let request = request
            .build()
            .map_err(|e| Failure::Stop(ConnectorError::permanent(format!("building a Klaviyo request: {e}"))))?;
        let response = self.client.send(tier, request).await.map_err(classify)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok((status, value))
    }

    pub async fn create_event(&self, body: &Value) -> Result<(), Failure> {
        self.call(&EVENTS, Method::POST, "/api/events", Some(body)).await.map(|_| ())
    }

    /// Upserts a profile; returns its id and whether it was created (201).
    pub async fn import_profile(&self, body: &Value) -> Result<(Option<String>, bool), Failure> {
        let (status, answer) = self.call(&PROFILE_IMPORT, Method::POST, "/api/profile-import", Some(body)).await?;
        Ok((answer["data"]["id"].as_str().map(str::to_owned), status == 201))
    }

    pub async fn add_to_list(&self, list_id: &str, profile_ids: &[String]) -> Result<(), Failure> {
        for chunk in profile_ids.chunks(1000) {
            let data: Vec<Value> = chunk.iter().map(|id| serde_json::json!({"type": "profile", "id": id})).collect();
            let body = serde_json::json!({ "data": data });
            self.call(
                &LIST_PROFILES,
                Method::POST,
                &format!("/api/lists/{list_id}/relationships/profiles"),
                Some(&body),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn bulk_create_events(&self, body: &Value) -> Result<(), Failure> {
        self.call(&EVENT_BULK_JOBS, Method::POST, "/api/event-bulk-create-jobs", Some(body)).await.map(|_| ())
    }

    /// Starts a bulk profile import, polls it to the end, and returns the
    /// import errors as (original payload, reason).
    pub async fn bulk_import_profiles(&self, body: &Value) -> Result<Vec<(Value, String)>, Failure> {
        let (_, answer) =
            self.call(&PROFILE_BULK_JOBS, Method::POST, "/api/profile-bulk-import-jobs", Some(body)).await?;
        let job = answer["data"]["id"]
            .as_str()
            .ok_or_else(|| Failure::Stop(ConnectorError::transient("Klaviyo started a bulk import job without an id")))?
            .to_owned();
        loop {
            let (_, job_state) = self
                .call(&PROFILE_BULK_JOB_STATUS, Method::GET, &format!("/api/profile-bulk-import-jobs/{job}"), None)
                .await?;
            let attributes = &job_state["data"]["attributes"];
            match attributes["status"].as_str() {
                Some("complete") => {
                    if attributes["failed_count"].as_u64().unwrap_or(0) == 0 {
                        return Ok(Vec::new());
                    }
                    return self.import_errors(&job).await;
                }
                Some("cancelled") => {
                    return Err(Failure::Stop(ConnectorError::transient(format!(
                        "Klaviyo cancelled bulk import job {job}"
                    ))));
                }
                _ => tokio::time::sleep(self.job_poll).await,
            }
        }
    }

    async fn import_errors(&self, job: &str) -> Result<Vec<(Value, String)>, Failure> {
        let mut errors = Vec::new();
        let mut path = format!("/api/profile-bulk-import-jobs/{job}/import-errors");
        loop {
            let (_, page) = self.call(&PROFILE_BULK_JOB_STATUS, Method::GET, &path, None).await?;
            for error in page["data"].as_array().into_iter().flatten() {
                let attributes = &error["attributes"];
                let reason = format!(
                    "{}: {}",
                    attributes["code"].as_str().unwrap_or("invalid"),
                    attributes["detail"].as_str().or(attributes["title"].as_str()).unwrap_or("")
                );
                errors.push((attributes["original_payload"].clone(), reason));
            }
            match page["links"]["next"].as_str().filter(|n| !n.is_empty()) {
                Some(next) => path = next.strip_prefix(&self.base_url).unwrap_or(next).to_owned(),
                None => return Ok(errors),
            }
        }
    }

    /// `GET /api/accounts`: is the key accepted?
    pub async fn check(&self) -> Result<(), ConnectorError> {
        match self.call(&ACCOUNTS, Method::GET, "/api/accounts", None).await {
            Ok(_) => Ok(()),
            Err(Failure::Stop(error)) => Err(error),
            Err(Failure::Refused(reason)) => Err(ConnectorError::config(reason)),
        }
    }
}
