//! The Klaviyo service: the pinned revision and JSON:API headers on every
//! request, one rate tier per endpoint (burst per second and steady per
//! minute from the spec's `x-klaviyo-ratelimit`), bulk profile jobs polled to
//! the end, new live profiles put on the configured list, consent jobs,
//! group list membership (the profile's id, then its lists), and deletion
//! requests for a person who asked to be forgotten.

use crate::request::KlaviyoRoute;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::forget::ForgetReport;
use tillflow_http::reqwest::Method;
use tillflow_http::{Answer, HttpClient, Tier};
use tillflow_kit::sink::Service;

pub const PROFILE_IMPORT: Tier = Tier::new("profile-import", 75).with_per_minute(750);
pub const EVENTS: Tier = Tier::new("events", 350).with_per_minute(3500);
pub const EVENT_BULK_JOBS: Tier = Tier::new("event-bulk-create-jobs", 10).with_per_minute(150);
pub const PROFILE_BULK_JOBS: Tier = Tier::new("profile-bulk-import-jobs", 10).with_per_minute(150);
pub const PROFILE_BULK_JOB_STATUS: Tier = Tier::new("profile-bulk-import-job", 10).with_per_minute(150);
pub const LIST_PROFILES: Tier = Tier::new("list-profiles", 10).with_per_minute(150);
pub const ACCOUNTS: Tier = Tier::new("accounts", 1).with_per_minute(15);
pub const CATALOG_JOBS: Tier = Tier::new("catalog-item-bulk-jobs", 75).with_per_minute(750);
pub const SUBSCRIPTION_JOBS: Tier = Tier::new("profile-subscription-bulk-jobs", 75).with_per_minute(750);
pub const DELETION_JOBS: Tier = Tier::new("data-privacy-deletion-jobs", 3).with_per_minute(60);

const MEDIA: &str = "application/vnd.api+json";

pub struct KlaviyoService {
    client: HttpClient,
    base_url: String,
    api_key: SecretString,
    job_poll: Duration,
    list_id: Option<String>,
    /// Group title → list id.
    group_lists: BTreeMap<String, String>,
}

impl KlaviyoService {
    pub fn new(
        client: HttpClient,
        base_url: String,
        api_key: SecretString,
        job_poll: Duration,
        list_id: Option<String>,
    ) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            job_poll,
            list_id,
            group_lists: BTreeMap::new(),
        }
    }

    pub fn with_group_lists(mut self, group_lists: BTreeMap<String, String>) -> Self {
        self.group_lists = group_lists;
        self
    }

    /// The person's profile id (upserted by email), then their group's list
    /// joined and every other group list left: removing someone who is not
    /// on a list changes nothing, so no record of the old group is needed.
    async fn group_lists(&self, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let wanted: Value = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::permanent(format!("a group change for Klaviyo: {e}")))?;
        let profile = json!({"data": {"type": "profile", "attributes": {"email": wanted["email"]}}});
        let imported = self
            .exchange(
                &PROFILE_IMPORT,
                Method::POST,
                "/api/profile-import",
                Some(serde_json::to_vec(&profile).expect("JSON")),
            )
            .await?;
        if !imported.is_success() {
            return Ok(imported);
        }
        let id = imported.json()["data"]["id"]
            .as_str()
            .ok_or_else(|| ConnectorError::transient("Klaviyo imported a profile without an id"))?
            .to_owned();
        let members = serde_json::to_vec(&json!({"data": [{"type": "profile", "id": id}]})).expect("JSON");
        let group = wanted["group"].as_str();
        let mut last = imported;
        for (title, list) in &self.group_lists {
            let method = if Some(title.as_str()) == group { Method::POST } else { Method::DELETE };
            let path = format!("/api/lists/{list}/relationships/profiles");
            last = self.exchange(&LIST_PROFILES, method, &path, Some(members.clone())).await?;
            if !last.is_success() {
                return Ok(last);
            }
        }
        Ok(last)
    }

    /// One exchange under `tier`; a refused key is a configuration error in
    /// one readable line.
    async fn exchange(
        &self,
        tier: &Tier,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ConnectorError> {
        let mut request = self
            .client
            .reqwest()
            .request(method, format!("{}{path}", self.base_url))
            .header("authorization", format!("Klaviyo-API-Key {}", self.api_key.expose_secret()))
            .header("revision", crate::REVISION)
            .header("accept", MEDIA);
        if let Some(body) = body {
            request = request.header("content-type", MEDIA).body(body);
        }
        let request =
            request.build().map_err(|e| ConnectorError::permanent(format!("building a Klaviyo request: {e}")))?;
        match self.client.exchange(tier, request).await {
            Ok(answer) => Ok(answer),
            Err(tillflow_http::HttpError::Unauthorized { status, message, .. }) => Err(ConnectorError::config(
                format!("Klaviyo refused the API key (HTTP {status}): {}", crate::response::readable_errors(&message)),
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// A GET that must succeed (job status, import errors).
    async fn get(&self, tier: &Tier, path: &str) -> Result<Value, ConnectorError> {
        let answer = self.exchange(tier, Method::GET, path, None).await?;
        if !answer.is_success() {
            return Err(ConnectorError::transient(format!(
                "Klaviyo answered HTTP {} to GET {path}: {}",
                answer.status,
                crate::response::readable_errors(&answer.text())
            )));
        }
        Ok(answer.json())
    }

    /// Starts a bulk profile import and polls it to the end. The answer's
    /// body becomes `{"import_errors": [{"payload", "reason"}]}` for the
    /// classifier; a refused job is returned as it came.
    async fn bulk_import_profiles(&self, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let started =
            self.exchange(&PROFILE_BULK_JOBS, Method::POST, "/api/profile-bulk-import-jobs", Some(body)).await?;
        if !started.is_success() {
            return Ok(started);
        }
        let job = started.json()["data"]["id"]
            .as_str()
            .ok_or_else(|| ConnectorError::transient("Klaviyo started a bulk import job without an id"))?
            .to_owned();
        loop {
            let state = self.get(&PROFILE_BULK_JOB_STATUS, &format!("/api/profile-bulk-import-jobs/{job}")).await?;
            let attributes = &state["data"]["attributes"];
            match attributes["status"].as_str() {
                Some("complete") => {
                    let errors = if attributes["failed_count"].as_u64().unwrap_or(0) == 0 {
                        Vec::new()
                    } else {
                        self.import_errors(&job).await?
                    };
                    let body = serde_json::to_vec(&json!({ "import_errors": errors })).expect("JSON serializes");
                    return Ok(Answer { status: 200, headers: started.headers, body: body.into() });
                }
                Some("cancelled") => {
                    return Err(ConnectorError::transient(format!("Klaviyo cancelled bulk import job {job}")));
                }
                _ => tokio::time::sleep(self.job_poll).await,
            }
        }
    }

    /// Starts a catalog bulk job (`jobs` = `catalog-item-bulk-create-jobs`
    /// or `…-update-jobs`) and polls it to the end. The answer's body
    /// becomes `{"item_errors": [{"index", "code", "detail"}]}`, each error
    /// placed by its item's position in the job; a refused job is returned
    /// as it came.
    async fn catalog_job(&self, jobs: &str, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let started = self.exchange(&CATALOG_JOBS, Method::POST, &format!("/api/{jobs}"), Some(body)).await?;
        if !started.is_success() {
            return Ok(started);
        }
        let job = started.json()["data"]["id"]
            .as_str()
            .ok_or_else(|| ConnectorError::transient("Klaviyo started a catalog job without an id"))?
            .to_owned();
        loop {
            let state = self.get(&CATALOG_JOBS, &format!("/api/{jobs}/{job}")).await?;
            let attributes = &state["data"]["attributes"];
            match attributes["status"].as_str() {
                Some("complete") => {
                    let errors: Vec<Value> = attributes["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|error| {
                            let index = error["source"]["pointer"]
                                .as_str()
                                .and_then(|pointer| pointer.strip_prefix("/data/attributes/items/data/"))
                                .and_then(|rest| rest.split('/').next())
                                .and_then(|n| n.parse::<u64>().ok());
                            json!({"index": index, "code": error["code"], "detail": error["detail"].as_str().or(error["title"].as_str())})
                        })
                        .collect();
                    let body = serde_json::to_vec(&json!({ "item_errors": errors })).expect("JSON serializes");
                    return Ok(Answer { status: 200, headers: started.headers, body: body.into() });
                }
                Some("cancelled") => {
                    return Err(ConnectorError::transient(format!("Klaviyo cancelled catalog job {job}")));
                }
                _ => tokio::time::sleep(self.job_poll).await,
            }
        }
    }

    async fn import_errors(&self, job: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut errors = Vec::new();
        let mut path = format!("/api/profile-bulk-import-jobs/{job}/import-errors");
        loop {
            let page = self.get(&PROFILE_BULK_JOB_STATUS, &path).await?;
            for error in page["data"].as_array().into_iter().flatten() {
                let attributes = &error["attributes"];
                let reason = format!(
                    "{}: {}",
                    attributes["code"].as_str().unwrap_or("invalid"),
                    attributes["detail"].as_str().or(attributes["title"].as_str()).unwrap_or("")
                );
                errors.push(json!({"payload": attributes["original_payload"], "reason": reason}));
            }
            match page["links"]["next"].as_str().filter(|n| !n.is_empty()) {
                Some(next) => path = next.strip_prefix(&self.base_url).unwrap_or(next).to_owned(),
                None => return Ok(errors),
            }
        }
    }
}

#[async_trait]
impl Service<KlaviyoRoute> for KlaviyoService {
    async fn call(&self, route: KlaviyoRoute, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        match route {
            KlaviyoRoute::ProfileImport => {
                self.exchange(&PROFILE_IMPORT, Method::POST, "/api/profile-import", Some(body)).await
            }
            KlaviyoRoute::Event => self.exchange(&EVENTS, Method::POST, "/api/events", Some(body)).await,
            KlaviyoRoute::EventBulk => {
                self.exchange(&EVENT_BULK_JOBS, Method::POST, "/api/event-bulk-create-jobs", Some(body)).await
            }
            KlaviyoRoute::ProfileBulk => self.bulk_import_profiles(body).await,
            KlaviyoRoute::CatalogCreate => self.catalog_job("catalog-item-bulk-create-jobs", body).await,
            KlaviyoRoute::CatalogUpdate => self.catalog_job("catalog-item-bulk-update-jobs", body).await,
            KlaviyoRoute::Subscribe => {
                let path = "/api/profile-subscription-bulk-create-jobs";
                self.exchange(&SUBSCRIPTION_JOBS, Method::POST, path, Some(body)).await
            }
            KlaviyoRoute::Unsubscribe => {
                let path = "/api/profile-subscription-bulk-delete-jobs";
                self.exchange(&SUBSCRIPTION_JOBS, Method::POST, path, Some(body)).await
            }
            KlaviyoRoute::GroupLists => self.group_lists(body).await,
        }
    }

    /// Profiles a live import created (201) join the configured list; no
    /// consent is given, so nobody is subscribed.
    async fn settle(&self, route: KlaviyoRoute, accepted: Vec<Answer>) -> Result<(), ConnectorError> {
        let (KlaviyoRoute::ProfileImport, Some(list)) = (route, &self.list_id) else { return Ok(()) };
        let created: Vec<String> = accepted
            .iter()
            .filter(|answer| answer.status == 201)
            .filter_map(|answer| answer.json()["data"]["id"].as_str().map(str::to_owned))
            .collect();
        for chunk in created.chunks(1000) {
            let data: Vec<Value> = chunk.iter().map(|id| json!({"type": "profile", "id": id})).collect();
            let body = serde_json::to_vec(&json!({ "data": data })).expect("JSON serializes");
            let path = format!("/api/lists/{list}/relationships/profiles");
            let answer = self.exchange(&LIST_PROFILES, Method::POST, &path, Some(body)).await?;
            if !answer.is_success() {
                return Err(ConnectorError::permanent(format!(
                    "Klaviyo refused to add new profiles to list {list} (HTTP {}): {}",
                    answer.status,
                    crate::response::readable_errors(&answer.text())
                )));
            }
        }
        Ok(())
    }

    /// `GET /api/accounts`: is the key accepted?
    async fn check(&self) -> Result<(), ConnectorError> {
        let answer = self.exchange(&ACCOUNTS, Method::GET, "/api/accounts", None).await?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(ConnectorError::config(format!(
                "Klaviyo answered HTTP {}: {}",
                answer.status,
                crate::response::readable_errors(&answer.text())
            )))
        }
    }

    /// `POST /api/data-privacy-deletion-jobs` for the profile with this
    /// email: Klaviyo deletes every profile holding it, asynchronously (the
    /// deletion then shows on the account's Deleted Profiles page). The
    /// answer does not say whether a profile existed; a 404, should Klaviyo
    /// send one, is read as "no such person".
    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        let job = json!({"data": {"type": "data-privacy-deletion-job", "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}}
        }}});
        let path = "/api/data-privacy-deletion-jobs";
        let body = serde_json::to_vec(&job).expect("JSON");
        let answer = self.exchange(&DELETION_JOBS, Method::POST, path, Some(body)).await?;
        let asked = format!("POST {path} (the profile with this email)");
        match answer.status {
            200..=299 => Ok(ForgetReport {
                asked,
                answered: format!(
                    "HTTP {}: deletion job accepted; Klaviyo deletes every profile with this email",
                    answer.status
                ),
                known: true,
            }),
            404 => Ok(ForgetReport {
                asked,
                answered: "HTTP 404: Klaviyo has no profile with this email".into(),
                known: false,
            }),
            status => Err(ConnectorError::permanent(format!(
                "{asked}: Klaviyo answered HTTP {status}: {}",
                crate::response::readable_errors(&answer.text())
            ))),
        }
    }
}
