//! The WooCommerce REST API v3 as one account reaches it: one HTTP client
//! for the shop (the consumer key and secret in Basic auth or the query
//! string, the shop's request rate) and its listings, each record decoded
//! once.

use crate::config::AuthMode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_http::json_array::{Element, JsonArray};
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
    /// GET the listing at `path` under `/wp-json/wc/v3`, its elements
    /// delimited (decoded by `decode_each`), with the headers.
    pub async fn list(&self, path: &str, query: &[(&str, String)]) -> Result<(HeaderMap, JsonArray), ConnectorError> {
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
        Ok(self.client.send_json_array(&self.tier, request).await?)
    }

    /// Each element of `listing` with its decoding as `T`: JSON of another
    /// shape is that record's own error (it is dead-lettered), while a body
    /// that is not a JSON array is refused as a whole.
    pub fn decode_each<'a, T: Deserialize<'a>>(
        &self,
        listing: &'a JsonArray,
    ) -> Result<Vec<(Element<'a>, serde_json::Result<T>)>, ConnectorError> {
        listing.decode_each().map_err(|reason| self.client.unexpected_body(reason, &listing.text()).into())
    }
}
