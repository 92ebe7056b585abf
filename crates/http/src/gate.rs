//! The rate gate: governor quotas per endpoint tier, a pause shared by every
//! request of a tier after a 429, and slow-downs the platform's headers ask for.
//!
//! It sits inside the retry layer, so every attempt (retries included) pays.

use crate::client::Tier;
use crate::retry::parse_retry_after;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Reads a platform's rate-limit headers and says how long to hold back the
/// tier before the next request, if at all.
pub trait RateSignals: Send + Sync + 'static {
    fn pause_after(&self, status: u16, headers: &HeaderMap) -> Option<Duration>;
}

/// `RateLimit-Remaining`/`RateLimit-Reset` (IETF draft, Klaviyo) and
/// `X-RateLimit-Remaining`/`X-RateLimit-Reset` (E-goi and others): when nothing
/// remains, wait for the reset instead of spending a request on a 429.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardRateLimitHeaders;

impl RateSignals for StandardRateLimitHeaders {
    fn pause_after(&self, _status: u16, headers: &HeaderMap) -> Option<Duration> {
        let number = |name: &str| -> Option<u64> {
            headers.get(name)?.to_str().ok()?.split([',', ';']).next()?.trim().parse().ok()
        };
        for (remaining, reset) in
            [("ratelimit-remaining", "ratelimit-reset"), ("x-ratelimit-remaining", "x-ratelimit-reset")]
        {
            if number(remaining) == Some(0) {
                let reset = number(reset).unwrap_or(1);
                // Some platforms send an epoch second, others a delta.
                let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
                let wait = if reset > 1_000_000_000 { reset.saturating_sub(now) } else { reset };
                return Some(Duration::from_secs(wait.max(1)));
            }
        }
        None
    }
}

/// A limiter that never lets more than `limit` requests into any window of
/// length `window`, whatever the window's phase (platforms count in fixed
/// windows we cannot see): requests go one at a time (a GCRA bucket of burst
/// 1), at least `window / limit` apart, so `limit + 1` of them span a whole
/// window. A 2% margin keeps arrival jitter from crossing the limit; for small
/// limits `limit - 1` per window would waste far more than that.
fn window_limiter(limit: u32, window: Duration) -> Option<DefaultDirectRateLimiter> {
    let limit = NonZeroU32::new(limit)?;
    let exact = window / limit.get();
    let with_margin = exact.mul_f64(1.02);
    let period = match limit.get() {
        1 => with_margin,
        n => with_margin.min(window / (n - 1)),
    };
    Some(RateLimiter::direct(Quota::with_period(period)?.allow_burst(NonZeroU32::MIN)))
}

pub(crate) struct TierGate {
    per_second: Option<DefaultDirectRateLimiter>,
    per_minute: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl TierGate {
    fn new(tier: &Tier) -> Self {
        Self {
            per_second: window_limiter(tier.per_second, Duration::from_secs(1)),
            per_minute: window_limiter(tier.per_minute, Duration::from_secs(60)),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the tier is not paused and both quotas have a cell.
    pub(crate) async fn admit(&self) {
        loop {
            let until = *self.paused_until.lock().expect("pause lock");
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        if let Some(limiter) = &self.per_second {
            limiter.until_ready().await;
        }
        if let Some(limiter) = &self.per_minute {
            limiter.until_ready().await;
        }
    }

    /// Holds back every request of this tier for `wait` (never shortens a pause).
    pub(crate) fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().expect("pause lock");
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

pub(crate) struct Gate {
    platform: &'static str,
    tiers: Mutex<HashMap<&'static str, Arc<TierGate>>>,
    signals: Option<Arc<dyn RateSignals>>,
}

impl Gate {
    pub(crate) fn new(platform: &'static str, signals: Option<Arc<dyn RateSignals>>) -> Self {
        Self { platform, tiers: Mutex::new(HashMap::new()), signals }
    }

    pub(crate) fn tier(&self, tier: &Tier) -> Arc<TierGate> {
        self.tiers
            .lock()
            .expect("tier map lock")
            .entry(tier.name)
            .or_insert_with(|| Arc::new(TierGate::new(tier)))
            .clone()
    }

    /// Learns from a response: a 429 pauses the whole tier for its Retry-After.
    pub(crate) fn observe(&self, tier: &Tier, gate: &TierGate, status: u16, headers: &HeaderMap) {
        if status == 429 {
            let wait = parse_retry_after(headers).unwrap_or(Duration::from_secs(1));
            tracing::info!(platform = self.platform, tier = tier.name, ?wait, "rate limited (429); pausing the tier");
            gate.pause(wait);
        } else if let Some(wait) = self.signals.as_ref().and_then(|s| s.pause_after(status, headers)) {
            tracing::debug!(
                platform = self.platform,
                tier = tier.name,
                ?wait,
                "slowing down as the platform's headers ask"
            );
            gate.pause(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_of_the_tier() {
        let gate = Gate::new("test", None);
        let tier = Tier::unlimited("orders");
        let other = Tier::unlimited("customers");
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "30".parse().unwrap());
        gate.observe(&tier, &gate.tier(&tier), 429, &headers);

        let started = Instant::now();
        gate.tier(&other).admit().await;
        assert_eq!(started.elapsed(), Duration::ZERO, "another tier is not paused");
        gate.tier(&tier).admit().await;
        assert!(started.elapsed() >= Duration::from_secs(30), "every request of the tier waits");
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_headers_slow_down_before_a_429() {
        let gate = Gate::new("test", Some(Arc::new(StandardRateLimitHeaders)));
        let tier = Tier::unlimited("events");
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-remaining", "0".parse().unwrap());
        headers.insert("ratelimit-reset", "12".parse().unwrap());
        gate.observe(&tier, &gate.tier(&tier), 202, &headers);
        let started = Instant::now();
        gate.tier(&tier).admit().await;
        assert!(started.elapsed() >= Duration::from_secs(12));
    }
}
