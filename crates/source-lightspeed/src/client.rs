//! The Lightspeed account: one HTTP client under the account's leaky bucket,
//! one token manager (rotating refresh tokens), the account's API root and
//! currency, and the reachability check. Every pipeline reading this account
//! reads through it.

use crate::auth::TokenManager;
use crate::config::LightspeedConfig;
use crate::source::LightspeedSource;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Currency;
use tillflow_core::source::Source;
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::{HttpClient, RateSignals, Tier};
use tillflow_kit::{AccountContext, SourceAccount};

/// GETs cost one drip; relations add more. The bucket headers do the fine
/// tuning; this keeps the 1-second burst limiter happy.
const API: Tier = Tier::new("ls-api", 10);

/// Slows down before the leaky bucket is full: above three quarters, wait
/// until it has drained to half at the advertised drip rate.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeakyBucket;

impl RateSignals for LeakyBucket {
    fn pause_after(&self, _status: u16, headers: &HeaderMap) -> Option<Duration> {
        let level = headers.get("x-ls-api-bucket-level")?.to_str().ok()?;
        let (used, capacity) = level.split_once('/')?;
        let used: f64 = used.trim().parse().ok()?;
        let capacity: f64 = capacity.trim().parse().ok()?;
        let drip: f64 = headers
            .get("x-ls-api-drip-rate")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .filter(|d: &f64| *d > 0.0)
            .unwrap_or(1.0);
        (capacity > 0.0 && used / capacity >= 0.75).then(|| Duration::from_secs_f64((used - capacity / 2.0) / drip))
    }
}

/// The account's API as this tillflow reaches it.
pub struct LightspeedClient {
    /// The configured source name (`store` in `[sources.store]`).
    pub name: String,
    client: HttpClient,
    auth: TokenManager,
    /// `{base_url}/API/V3/Account/{account_id}`.
    pub api: String,
    /// Sales carry no currency; the account's.
    pub currency: Currency,
}

impl LightspeedClient {
    /// GET with the bearer token, decoded as `T`; one refresh and retry on a 401.
    pub async fn get<T: DeserializeOwned>(&self, url: &str, query: &[(&str, String)]) -> Result<T, ConnectorError> {
        for attempt in 0..2 {
            let token = self.auth.access_token().await?;
            let request = self
                .client
                .reqwest()
                .get(url)
                .query(query)
                .bearer_auth(token.expose_secret())
                .header("accept", "application/json")
                .build()
                .map_err(|e| ConnectorError::config(format!("base_url: {e}")))?;
            match self.client.send_json::<T>(&API, request).await {
                Ok((_, body)) => return Ok(body),
                Err(error) if attempt == 0 && error.status() == Some(401) => {
                    tracing::info!(source = %self.name, "access token refused; refreshing once");
                    self.auth.invalidate().await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("the second attempt returns")
    }
}

pub struct LightspeedAccount {
    client: Arc<LightspeedClient>,
    poll_interval: Duration,
}

impl LightspeedAccount {
    pub fn open(config: LightspeedConfig, currency: Currency, context: &AccountContext) -> Self {
        let mut http = context.http(crate::PLATFORM);
        http.signals = Some(Arc::new(LeakyBucket));
        http.max_concurrency = 2;
        let client = HttpClient::new(http);
        let auth = TokenManager::new(
            client.clone(),
            config.token_url,
            config.client_id,
            config.client_secret,
            config.refresh_token,
            context.state.clone(),
            &context.name,
        );
        let client = LightspeedClient {
            name: context.name.clone(),
            client,
            auth,
            api: format!("{}/API/V3/Account/{}", config.base_url.trim_end_matches('/'), config.account_id),
            currency,
        };
        Self { client: Arc::new(client), poll_interval: config.poll_interval.0 }
    }

    /// A reader of its own, typed (tests drive it directly).
    pub fn source(&self) -> LightspeedSource {
        LightspeedSource::new(self.client.clone())
    }
}

#[async_trait]
impl SourceAccount for LightspeedAccount {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn reader(&self) -> Box<dyn Source> {
        Box::new(self.source())
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.get::<serde::de::IgnoredAny>(&format!("{}.json", self.client.api), &[]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillflow_http::reqwest::header::HeaderValue;

    fn headers(level: &str, drip: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ls-api-bucket-level", HeaderValue::from_str(level).unwrap());
        headers.insert("x-ls-api-drip-rate", HeaderValue::from_str(drip).unwrap());
        headers
    }

    #[test]
    fn the_bucket_is_let_drain_before_it_fills() {
        assert_eq!(LeakyBucket.pause_after(200, &headers("10/90", "1")), None);
        assert_eq!(LeakyBucket.pause_after(200, &headers("81/90", "1")), Some(Duration::from_secs(36)));
        assert_eq!(LeakyBucket.pause_after(200, &headers("81/90", "2")), Some(Duration::from_secs(18)));
    }
}
