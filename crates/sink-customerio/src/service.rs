//! Sending one batch request and reading Customer.io's answer: 200 all
//! accepted; 207 some operations invalid (`errors[].batch_index`); 400 the
//! whole request invalid; 401 wrong credentials.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tillflow_core::ConnectorError;
use tillflow_http::{HttpClient, HttpError, Tier};

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<OperationError>,
}

#[derive(Debug, Deserialize)]
struct OperationError {
    batch_index: Option<usize>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

impl OperationError {
    fn describe(&self) -> String {
        let mut text = String::new();
        if !self.field.is_empty() {
            text.push_str(&self.field);
            text.push_str(": ");
        }
        text.push_str(if self.message.is_empty() { &self.reason } else { &self.message });
        if !self.reason.is_empty() && !self.message.is_empty() {
            text.push_str(&format!(" ({})", self.reason));
        }
        text
    }
}

/// What became of one request.
pub enum BatchAnswer {
    /// Everything accepted except these (index in the request, reason).
    Accepted { refused: Vec<(usize, String)> },
    /// The whole request was refused (400): every operation carries the reason.
    Refused(String),
}

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

    fn request(&self, method: tillflow_http::reqwest::Method, path: &str) -> tillflow_http::reqwest::RequestBuilder {
        self.client
            .reqwest()
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth(self.site_id.expose_secret(), Some(self.api_key.expose_secret()))
    }

    pub async fn send_batch(&self, body: Vec<u8>) -> Result<BatchAnswer, ConnectorError> {
        let request = self
            .request(tillflow_http::reqwest::Method::POST, "/api/v2/batch")
            .header("content-type", "application/json")
            .body(body)
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the batch request: {e}")))?;
        match self.client.send(&self.tier, request).await {
            Ok(response) => {
                if response.status().as_u16() != 207 {
                    return Ok(BatchAnswer::Accepted { refused: Vec::new() });
                }
                let text = response.text().await.unwrap_or_default();
                let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
                let refused = body
                    .errors
                    .iter()
                    .filter_map(|error| error.batch_index.map(|index| (index, error.describe())))
                    .collect();
                Ok(BatchAnswer::Accepted { refused })
            }
            Err(HttpError::Rejected { status: 400, message, .. }) => {
                let reason = serde_json::from_str::<ErrorBody>(&message)
                    .ok()
                    .filter(|body| !body.errors.is_empty())
                    .map(|body| body.errors.iter().map(OperationError::describe).collect::<Vec<_>>().join("; "))
                    .unwrap_or(message);
                Ok(BatchAnswer::Refused(format!("Customer.io refused the batch (HTTP 400): {reason}")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// `GET /api/v1/accounts/region`: reachable with these credentials?
    pub async fn check(&self) -> Result<(), ConnectorError> {
        let request = self
            .request(tillflow_http::reqwest::Method::GET, "/api/v1/accounts/region")
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the request: {e}")))?;
        self.client.send(&self.tier, request).await?;
        Ok(())
    }
}
