//! The WooCommerce REST API v3 as one account reaches it: one HTTP client
//! for the shop (the consumer key and secret in Basic auth or the query
//! string, the shop's request rate) and typed GETs.

use crate::config::AuthMode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::{HttpClient, Tier};

/// The shop's REST API v3 as this account reaches it.
pub struct WooClient {
    /// The configured source name (`shop` in `[sources.shop]`).
    pub name: String,
    pub(crate) client: HttpClient,
    pub(crate) api: String,
    pub(crate) consumer_key: SecretString,
    pub(crate) consumer_secret: SecretString,
    pub(crate) auth: AuthMode,
    pub(crate) tier: Tier,
    /// How far before the previous pass's start the next one looks again.
    pub overlap: Duration,
}

impl WooClient {
    /// GET `path` under `/wp-json/wc/v3`, decoded as `T`, with the headers.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(HeaderMap, T), ConnectorError> {
        let mut request = self.client.reqwest().get(format!("{}{path}", self.api)).query(query);
        request = match self.auth {
            AuthMode::Basic => {
                request.basic_auth(self.consumer_key.expose_secret(), Some(self.consumer_secret.expose_secret()))
            }
            AuthMode::Query => request.query(&[
                ("consumer_key", self.consumer_key.expose_secret()),
                ("consumer_secret", self.consumer_secret.expose_secret()),
            ]),
        };
        let request = request.build().map_err(|e| ConnectorError::permanent(format!("building a request: {e}")))?;
        Ok(self.client.send_json(&self.tier, request).await?)
    }
}
