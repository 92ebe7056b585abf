//! The Track API service: one batch request on the account's client (Basic
//! auth with the site id and API key), and the region check.

use crate::request::TrackRoute;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tillflow_core::ConnectorError;
use tillflow_http::reqwest::Method;
use tillflow_http::{Answer, HttpClient, Tier};
use tillflow_kit::sink::Service;

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
}
