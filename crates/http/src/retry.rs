//! The retry policy: which failures are retried, how long to wait, and when to
//! give up.

use crate::tier::Attempt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tower::BoxError;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};

#[derive(Clone, Debug)]
pub struct RetryConfig {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out: the request fails
    /// as unavailable and the pass resumes from its checkpoint next time.
    pub max_wait: Duration,
    /// Retries may add at most this fraction on top of first attempts…
    pub budget_ratio: f32,
    /// …but at least this many retries a second are always allowed.
    pub budget_min_per_second: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_secs(15 * 60),
            budget_ratio: 0.5,
            budget_min_per_second: 10,
        }
    }
}

/// `Retry-After` as delta-seconds or as an HTTP-date; a date in the past is 0.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = date.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The retry layer's verdict that a wait was too long, carried as the error.
#[derive(Debug)]
pub(crate) struct WaitTooLong {
    pub wait: Duration,
    pub limit: Duration,
}
impl std::fmt::Display for WaitTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "asked to wait {:?} (limit {:?})", self.wait, self.limit)
    }
}
impl std::error::Error for WaitTooLong {}

#[derive(Clone)]
pub(crate) struct RetryPolicy {
    config: Arc<RetryConfig>,
    budget: Arc<TpsBudget>,
    attempt: u32,
}

impl RetryPolicy {
    pub(crate) fn new(config: RetryConfig) -> Self {
        let budget = TpsBudget::new(Duration::from_secs(10), config.budget_min_per_second, config.budget_ratio);
        Self { config: Arc::new(config), budget: Arc::new(budget), attempt: 0 }
    }

    fn backoff(&self) -> Duration {
        let exponential = self.config.base_delay.saturating_mul(1 << self.attempt.min(16));
        let capped = exponential.min(self.config.max_delay);
        // Equal jitter: half fixed, half random, so retries spread but never
        // collapse to zero.
        capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
    }
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && !matches!(status, 501 | 505)
}

fn is_retryable_error(error: &BoxError) -> bool {
    if error.is::<tower::timeout::error::Elapsed>() {
        return true;
    }
    match error.downcast_ref::<reqwest::Error>() {
        Some(error) => error.is_timeout() || error.is_connect() || error.is_request() || error.is_body(),
        None => false,
    }
}

impl Policy<Attempt, reqwest::Response, BoxError> for RetryPolicy {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        _request: &mut Attempt,
        result: &mut Result<reqwest::Response, BoxError>,
    ) -> Option<Self::Future> {
        if self.attempt == 0 {
            self.budget.deposit();
        }
        let wait = match result {
            Ok(response) => {
                if !is_retryable_status(response.status().as_u16()) {
                    return None;
                }
                parse_retry_after(response.headers()).unwrap_or_else(|| self.backoff())
            }
            Err(error) => {
                if !is_retryable_error(error) {
                    return None;
                }
                self.backoff()
            }
        };
        self.attempt += 1;
        if self.attempt >= self.config.max_attempts {
            return None;
        }
        if wait > self.config.max_wait {
            *result = Err(Box::new(WaitTooLong { wait, limit: self.config.max_wait }));
            return None;
        }
        if !self.budget.withdraw() {
            tracing::warn!("retry budget exhausted; not retrying");
            return None;
        }
        Some(Box::pin(tokio::time::sleep(wait)))
    }

    fn clone_request(&mut self, request: &Attempt) -> Option<Attempt> {
        request.request.try_clone().map(|clone| Attempt { tier: request.tier.clone(), request: clone })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&headers("-3")), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_http_date() {
        let in_a_minute = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&in_a_minute).unwrap();
        let wait = parse_retry_after(&headers(&date)).unwrap();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60), "{wait:?}");
        assert_eq!(parse_retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut policy = RetryPolicy::new(RetryConfig::default());
        let first = policy.backoff();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        policy.attempt = 30;
        let late = policy.backoff();
        assert!(late >= Duration::from_secs(15) && late <= Duration::from_secs(30));
    }

    #[test]
    fn which_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
