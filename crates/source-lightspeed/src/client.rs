//! The Lightspeed API as one account reaches it: one HTTP client under the
//! account's leaky bucket, one token manager (rotating refresh tokens), the
//! account's API root and currency, and typed GETs.

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Currency;
use tillflow_http::redact;
use tillflow_http::reqwest::Url;
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::{HttpClient, RateSignals, Tier};
use tillflow_kit::auth::TokenManager;

/// GETs cost one drip; relations add more. The bucket headers do the fine
/// tuning; this keeps the 1-second burst limiter happy.
pub(crate) const API: Tier = Tier::new("ls-api", 10);

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
    pub(crate) client: HttpClient,
    pub(crate) auth: TokenManager,
    /// `{base_url}/API/V3/Account/{account_id}`.
    pub api: String,
    /// Sales carry no currency; the account's.
    pub currency: Currency,
}

impl LightspeedClient {
    /// GET with the bearer token, decoded as `T`; one refresh and retry on a 401.
    pub async fn get<T: DeserializeOwned>(&self, url: &str, query: &[(&str, String)]) -> Result<T, ConnectorError> {
        self.on_the_api(url)?;
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

impl LightspeedClient {
    /// The bearer token goes to the account's API and nowhere else: a
    /// next-page link read back from the state file (or sent by anyone
    /// answering as Lightspeed) that leads to another origin is refused.
    fn on_the_api(&self, url: &str) -> Result<(), ConnectorError> {
        let origin = |text: &str| Url::parse(text).ok().map(|url| url.origin());
        match (origin(url), origin(&self.api)) {
            (Some(asked), Some(api)) if asked == api => Ok(()),
            _ => Err(ConnectorError::config(format!(
                "a next-page link leads away from this account's API ({}): {}; the token is not sent there — \
                 reset this pipeline's checkpoints if the state file was edited",
                self.api,
                Url::parse(url).map_or_else(|_| "not a URL".to_owned(), |url| redact::url(&url)),
            ))),
        }
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
