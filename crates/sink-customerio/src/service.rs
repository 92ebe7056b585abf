//! The Track API service: one batch request on the account's client (Basic
//! auth with the site id and API key), the region check, and forgetting a
//! person (a `suppress` entity operation).

use crate::request::TrackRoute;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tillflow_core::ConnectorError;
use tillflow_core::forget::ForgetReport;
use tillflow_http::reqwest::Method;
use tillflow_http::{Answer, HttpClient, Tier};
use tillflow_kit::sink::{Service, refused_reason};

pub struct TrackService {
    client: HttpClient,
    base_url: String,
    site_id: SecretString,
    api_key: SecretString,
    tier: Tier,
}

impl TrackService {
    pub fn new(client: HttpClient, base_url: String, site_id: SecretString, api_key: SecretString, tier: Tier) -> Self {
        Self { client, base_url, site_id, api_key, tier }
    }

    fn request(&self, method: Method, path: &str) -> tillflow_http::reqwest::RequestBuilder {
        self.client
            .reqwest()
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth(self.site_id.expose_secret(), Some(self.api_key.expose_secret()))
    }
}

#[async_trait]
impl Service<TrackRoute> for TrackService {
    async fn call(&self, _route: TrackRoute, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let request = self
            .request(Method::POST, "/api/v2/batch")
            .header("content-type", "application/json")
            .body(body)
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the batch request: {e}")))?;
        Ok(self.client.exchange(&self.tier, request).await?)
    }

    /// `GET /api/v1/accounts/region`: reachable with these credentials?
    async fn check(&self) -> Result<(), ConnectorError> {
        let request = self
            .request(Method::GET, "/api/v1/accounts/region")
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the request: {e}")))?;
        self.client.send(&self.tier, request).await?;
        Ok(())
    }

    /// `POST /api/v2/entity` with the person `suppress` action, addressed by
    /// email: Customer.io deletes the person and keeps the identifier from
    /// being added back, which is what "forget" asks (a plain `delete` would
    /// let the next order re-create them). An email reaches a person whom
    /// tillflow identified by customer id in workspaces that accept email as
    /// an identifier (the default "email or ID"); elsewhere Customer.io
    /// refuses the call and the report says so.
    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        let operation = json!({"type": "person", "identifiers": {"email": email}, "action": "suppress"});
        let request = self
            .request(Method::POST, "/api/v2/entity")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&operation).expect("JSON"))
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the request: {e}")))?;
        let answer = self.client.exchange(&self.tier, request).await?;
        let asked = "POST /api/v2/entity (person, identified by email, action suppress)".to_owned();
        if !answer.is_success() {
            return Err(ConnectorError::permanent(format!("{asked}: {}", refused_reason("Customer.io", &answer))));
        }
        Ok(ForgetReport {
            asked,
            answered: format!("HTTP {}: the person is deleted and their email suppressed", answer.status),
            known: true,
        })
    }
}
