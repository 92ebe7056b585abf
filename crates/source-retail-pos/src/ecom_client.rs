//! The eCom (Ecwid API v3) store as tillflow reaches it: its own HTTP
//! client (eCom limits each token apart from X-Series), the `secret_…`
//! token as a bearer token, 600 requests a minute, and typed GETs.

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tillflow_core::ConnectorError;
use tillflow_http::{HttpClient, Tier};

/// 600 requests per minute per token.
const ECOM_TIER: Tier = Tier::unlimited("ecom-api").with_per_minute(600);

pub struct EcomClient {
    pub(crate) client: HttpClient,
    /// `{base_url}/{store_id}`.
    pub(crate) api: String,
    token: SecretString,
    /// `sources.<name>.ecom`, for messages.
    key_path: String,
}

impl EcomClient {
    pub fn new(source: &str, client: HttpClient, base_url: &str, store_id: &str, token: SecretString) -> Self {
        Self {
            client,
            api: format!("{}/{}", base_url.trim_end_matches('/'), store_id.trim()),
            token,
            key_path: format!("sources.{source}.ecom"),
        }
    }

    /// GET `{api}{path}` decoded as `T`; `None` on a 404.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ConnectorError> {
        self.fetch(path, query, &[404]).await
    }

    /// GET of something a store's plan may lack: `None` on a 404 or a 402
    /// (eCom answers 402 for customer groups on plans without them).
    pub async fn get_plan_feature<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ConnectorError> {
        self.fetch(path, query, &[402, 404]).await
    }

    async fn fetch<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        absent: &[u16],
    ) -> Result<Option<T>, ConnectorError> {
        let request = self
            .client
            .reqwest()
            .get(format!("{}{path}", self.api))
            .query(query)
            .bearer_auth(self.token.expose_secret())
            .header("accept", "application/json")
            .build()
            .map_err(|e| ConnectorError::config(format!("{}.base_url: {e}", self.key_path)))?;
        match self.client.send_json::<T>(&ECOM_TIER, request).await {
            Ok((_, body)) => Ok(Some(body)),
            Err(error) if error.status().is_some_and(|status| absent.contains(&status)) => Ok(None),
            Err(error) if matches!(error.status(), Some(401 | 403)) => Err(ConnectorError::config(format!(
                "{}.token: eCom refused it ({})",
                self.key_path,
                error.status().unwrap_or(0)
            ))),
            Err(error) => Err(error.into()),
        }
    }
}
