//! `HttpClient`: the assembled tower stack for one platform account.

use crate::answer::Answer;
use crate::error::HttpError;
use crate::gate::{Gate, RateSignals};
use crate::json_array::JsonArray;
use crate::redact;
use crate::retry::{RetryConfig, RetryPolicy, WaitTooLong, is_retryable_status};
use crate::tier::{Attempt, Tier};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

pub struct HttpConfig {
    /// Used in messages, e.g. "klaviyo".
    pub platform: &'static str,
    pub max_concurrency: usize,
    pub attempt_timeout: Duration,
    pub retry: RetryConfig,
    pub signals: Option<Arc<dyn RateSignals>>,
    /// The fraction of the platform's limits this client may use: an
    /// account is often shared with other tools spending the same budget.
    pub rate_share: f64,
}

impl HttpConfig {
    pub fn new(platform: &'static str) -> Self {
        Self {
            platform,
            max_concurrency: 8,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            signals: None,
            rate_share: 1.0,
        }
    }
}

/// The tier gate as a tower service wrapping the per-attempt timeout.
#[derive(Clone)]
struct GateService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Service<Attempt> for GateService<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = reqwest::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is decided per tier inside `call`, after the tier is known.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, attempt: Attempt) -> Self::Future {
        let gate = self.gate.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let tier_gate = gate.tier(&attempt.tier);
            tier_gate.admit().await;
            let response = inner.oneshot(attempt.request).await?;
            gate.observe(&attempt.tier, &tier_gate, response.status().as_u16(), response.headers());
            // Reading the body inside the attempt makes a connection dropped
            // mid-answer an attempt failure, which the retry layer retries.
            Ok(buffered(response).await?)
        })
    }
}

async fn buffered(response: reqwest::Response) -> Result<reqwest::Response, reqwest::Error> {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    Ok(reqwest::Response::from(rebuilt))
}

/// Cheap to clone; clones share limits, pauses and the retry budget.
#[derive(Clone)]
pub struct HttpClient {
    platform: &'static str,
    reqwest: reqwest::Client,
    service: BoxCloneSyncService<Attempt, reqwest::Response, BoxError>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("platform", &self.platform).finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(config: HttpConfig) -> Self {
        let reqwest = reqwest::Client::builder()
            .user_agent(concat!("tillflow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.attempt_timeout.min(Duration::from_secs(10)))
            .timeout(config.attempt_timeout.saturating_mul(2))
            .pool_max_idle_per_host(config.max_concurrency.max(1))
            .build()
            .expect("a TLS backend is compiled in");
        let gate = Arc::new(Gate::new(config.platform, config.signals.clone(), config.rate_share));
        let attempt = ServiceBuilder::new().timeout(config.attempt_timeout).service(reqwest.clone());
        let service = ServiceBuilder::new()
            .concurrency_limit(config.max_concurrency.max(1))
            .retry(RetryPolicy::new(config.retry.clone()))
            .service(GateService { inner: attempt, gate });
        Self { platform: config.platform, reqwest, service: BoxCloneSyncService::new(service) }
    }

    pub fn platform(&self) -> &'static str {
        self.platform
    }

    /// The underlying reqwest client, to build requests with.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.reqwest
    }

    /// Sends through the whole stack and returns the platform's answer for
    /// the caller to judge: 2xx, 3xx, and 4xx about the request itself.
    /// Wrong credentials (401/403) and unavailability (429, 5xx, timeouts and
    /// broken connections that outlasted the retries) are errors.
    pub async fn exchange(&self, tier: &Tier, request: reqwest::Request) -> Result<Answer, HttpError> {
        let method = request.method().clone();
        let shown_url = redact::url(request.url());
        match self.send(tier, request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.map_err(|e| HttpError::Unavailable {
                    platform: self.platform,
                    message: format!("{method} {shown_url}: reading the answer: {}", describe(&e)),
                })?;
                Ok(Answer { status, headers, body })
            }
            Err(HttpError::Rejected { status, answer: Some(answer), .. }) if status == answer.status => Ok(*answer),
            Err(error) => Err(error),
        }
    }

    /// Sends through the whole stack. Returns the response for 2xx/3xx; every
    /// other outcome is an [`HttpError`] already classified.
    pub async fn send(&self, tier: &Tier, request: reqwest::Request) -> Result<reqwest::Response, HttpError> {
        let method = request.method().clone();
        let shown_url = redact::url(request.url());
        let started = Instant::now();
        let result = self.service.clone().oneshot(Attempt { tier: Arc::new(tier.clone()), request }).await;
        let platform = self.platform;
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::debug!(platform, %method, url = %shown_url, status, elapsed_ms = started.elapsed().as_millis() as u64, "http");
                if response.status().is_success() || response.status().is_redirection() {
                    return Ok(response);
                }
                let headers = response.headers().clone();
                let body = response.bytes().await.unwrap_or_default();
                let answer = Answer { status, headers, body };
                let message = answer.snippet();
                Err(match status {
                    401 | 403 => HttpError::Unauthorized { platform, status, message },
                    status if is_retryable_status(status) => HttpError::Unavailable {
                        platform,
                        message: format!("HTTP {status} on {method} {shown_url} after retries: {message}"),
                    },
                    status => HttpError::Rejected { platform, status, message, answer: Some(Box::new(answer)) },
                })
            }
            Err(error) => {
                if let Some(too_long) = error.downcast_ref::<WaitTooLong>() {
                    return Err(HttpError::WaitTooLong { platform, wait: too_long.wait, limit: too_long.limit });
                }
                if error.is::<tower::timeout::error::Elapsed>() {
                    return Err(HttpError::Unavailable {
                        platform,
                        message: format!("{method} {shown_url} timed out after retries"),
                    });
                }
                if let Some(error) = error.downcast_ref::<reqwest::Error>() {
                    if error.is_builder() {
                        return Err(HttpError::Invalid { platform, message: error.to_string() });
                    }
                    return Err(HttpError::Unavailable {
                        platform,
                        message: format!("{method} {shown_url}: {}", describe(error)),
                    });
                }
                Err(HttpError::Unavailable { platform, message: format!("{method} {shown_url}: {error}") })
            }
        }
    }

    /// `send`, then decodes a JSON body.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        tier: &Tier,
        request: reqwest::Request,
    ) -> Result<(reqwest::header::HeaderMap, T), HttpError> {
        let (headers, bytes) = self.send_for_body(tier, request).await?;
        let value =
            serde_json::from_slice(&bytes).map_err(|e| self.unexpected_body(&e, &String::from_utf8_lossy(&bytes)))?;
        Ok((headers, value))
    }

    /// `send`, keeping a JSON array body (a listing) for
    /// `JsonArray::decode_each`, which decodes each record once and says
    /// when the body is malformed: answer `unexpected_body` then.
    pub async fn send_json_array(
        &self,
        tier: &Tier,
        request: reqwest::Request,
    ) -> Result<(reqwest::header::HeaderMap, JsonArray), HttpError> {
        let (headers, bytes) = self.send_for_body(tier, request).await?;
        Ok((headers, JsonArray::new(bytes)))
    }

    /// A 200 answer whose body is not what the API documents: refused, not
    /// retried (the same request gets the same body), with the start of the
    /// body, redacted, to show what came instead.
    pub fn unexpected_body(&self, reason: impl std::fmt::Display, body: &str) -> HttpError {
        HttpError::Rejected {
            platform: self.platform,
            status: 200,
            message: format!("unexpected response body ({reason}): {}", redact::body_snippet(body)),
            answer: None,
        }
    }

    async fn send_for_body(
        &self,
        tier: &Tier,
        request: reqwest::Request,
    ) -> Result<(reqwest::header::HeaderMap, bytes::Bytes), HttpError> {
        let response = self.send(tier, request).await?;
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| HttpError::Unavailable {
            platform: self.platform,
            message: format!("reading the response body: {}", describe(&e)),
        })?;
        Ok((headers, bytes))
    }
}

/// reqwest errors print the URL (which may hold query-string keys); this
/// describes the error without it.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "broken response body"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind} ({detail})") }
}
