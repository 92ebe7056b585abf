//! The rate gate: governor quotas per endpoint tier, a pause shared by every
//! request of a tier after a 429, and slow-downs the platform's headers ask for.
//!
//! It sits inside the retry layer, so every attempt (retries included) pays.

use crate::retry::parse_retry_after;
use crate::tier::Tier;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Reads a platform's rate-limit headers: how long to hold back the tier
/// before the next request, and the limit the platform says the account has.
pub trait RateSignals: Send + Sync + 'static {
    fn pause_after(&self, status: u16, headers: &HeaderMap) -> Option<Duration>;

    /// The limit the platform advertises for a window, when its answer says
    /// so. A tier lowers itself to it (times the rate share) when it is
    /// lower than the documented one: the account's plan may be smaller.
    fn advertised(&self, _headers: &HeaderMap) -> Option<Advertised> {
        None
    }
}

/// A limit a platform advertises: `limit` requests per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertised {
    pub limit: u32,
    pub window: Duration,
}

/// `RateLimit-Limit`/`-Remaining`/`-Reset` (IETF draft, Klaviyo) and
/// `X-RateLimit-*` (E-goi and others): when nothing remains, wait for the
/// reset instead of spending a request on a 429; adapt to the advertised
/// limit when the window it counts is known.
#[derive(Debug, Clone, Copy)]
pub struct StandardRateLimitHeaders {
    /// The window `…-Limit` counts when the header does not say (`;w=N`).
    window: Option<Duration>,
}

impl StandardRateLimitHeaders {
    /// Klaviyo's headers describe the steady, one-minute window.
    pub const fn per_minute() -> Self {
        Self { window: Some(Duration::from_secs(60)) }
    }

    /// The window is not documented: pause when nothing remains, never adapt
    /// to a limit whose window is unknown.
    pub const fn unknown_window() -> Self {
        Self { window: None }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// The first number of a structured header value (`"700, 700;w=60"` → 700).
fn first_number(value: &str) -> Option<u64> {
    value.split([',', ';']).next()?.trim().parse().ok()
}

impl RateSignals for StandardRateLimitHeaders {
    fn pause_after(&self, _status: u16, headers: &HeaderMap) -> Option<Duration> {
        for (remaining, reset) in
            [("ratelimit-remaining", "ratelimit-reset"), ("x-ratelimit-remaining", "x-ratelimit-reset")]
        {
            if header_text(headers, remaining).and_then(first_number) == Some(0) {
                let reset = header_text(headers, reset).and_then(first_number).unwrap_or(1);
                // Some platforms send an epoch second, others a delta.
                let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
                let wait = if reset > 1_000_000_000 { reset.saturating_sub(now) } else { reset };
                return Some(Duration::from_secs(wait.max(1)));
            }
        }
        None
    }

    fn advertised(&self, headers: &HeaderMap) -> Option<Advertised> {
        let value = header_text(headers, "ratelimit-limit").or_else(|| header_text(headers, "x-ratelimit-limit"))?;
        let limit = u32::try_from(first_number(value)?).ok().filter(|limit| *limit > 0)?;
        let stated = value
            .split([',', ';'])
            .find_map(|part| part.trim().strip_prefix("w=").and_then(|w| w.trim().parse::<u64>().ok()))
            .map(Duration::from_secs);
        let window = stated.or(self.window).filter(|w| !w.is_zero())?;
        Some(Advertised { limit, window })
    }
}

/// How far a request's arrival at the platform may slip against the one
/// before it (send-side scheduling, connection reuse, the network) without
/// `limit + 1` of them landing in one of the platform's windows.
const ARRIVAL_JITTER: Duration = Duration::from_millis(50);

/// What a quota of `limit + 1` requests spans beyond its window: the arrival
/// jitter, or a hundredth of a long window, whichever is more. A window of a
/// minute is counted on the platform's clock, perhaps in whole seconds, which
/// we cannot see; a hundredth of it is 600 ms, what the 2% margin capped at
/// one request a window gave a limit of 100 a minute.
fn slack(window: Duration) -> Duration {
    ARRIVAL_JITTER.max(window / 100)
}

/// The spacing of a quota of `limit` requests per `window`: `limit + 1`
/// requests span the whole window plus its [`slack`]. The 2% margin capped
/// at one request a window left 20 ms at two a second: two arrivals
/// compressed by that much put three requests in one second, a 429 the gate
/// was there to spare (seen in CI under load); and it left 10 ms at 100 a
/// second. A one-second quota runs at 95% of its limit, a minute's at 99%.
fn window_quota(limit: u32, window: Duration) -> Option<Quota> {
    let limit = NonZeroU32::new(limit)?;
    let span = window + slack(window);
    // Rounded up: a nanosecond short, `limit + 1` requests fall short of the span.
    let spacing = u64::try_from(span.as_nanos().div_ceil(u128::from(limit.get()))).ok()?;
    Some(Quota::with_period(Duration::from_nanos(spacing))?.allow_burst(NonZeroU32::MIN))
}

/// One quota of a tier: a limiter that never lets more than `limit`
/// requests into any window of length `window`, whatever the window's phase
/// (platforms count in fixed windows we cannot see): requests go one at a
/// time (a GCRA bucket of burst 1), spaced as [`window_quota`] says.
struct WindowQuota {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl WindowQuota {
    fn new(limit: u32, window: Duration) -> Option<Self> {
        window_quota(limit, window).map(|quota| Self { limiter: Arc::new(RateLimiter::direct(quota)) })
    }
}

/// How many runners share every platform account this process uses: each
/// tier keeps to 1/N of the account's limits. One unless a runner on shared
/// state says otherwise.
static RUNNERS: AtomicU32 = AtomicU32::new(1);

/// Tells every rate gate of this process that `runners` processes share the
/// platform accounts (the live runners on one Postgres state): from the next
/// request on, each tier admits 1/`runners` of the account's limits, so all
/// of them together never send more than the platform allows.
pub fn share_accounts_among_runners(runners: u32) {
    RUNNERS.store(runners.max(1), Ordering::SeqCst);
}

/// The runners this process shares its accounts with (itself included).
pub fn runners_sharing_accounts() -> u32 {
    RUNNERS.load(Ordering::SeqCst)
}

/// A tier's quotas: the account's limits (documented, or lower when the
/// platform advertised less) and the limiters for this process's part of them.
struct Quotas {
    account: Tier,
    runners: u32,
    /// This process's part of the account's limits (0: no quota).
    part: Tier,
    per_second: Option<WindowQuota>,
    per_minute: Option<WindowQuota>,
}

impl Quotas {
    fn build(account: Tier, share: f64, runners: u32) -> Self {
        let part = account.scaled(share / f64::from(runners.max(1)));
        Self {
            per_second: WindowQuota::new(part.per_second, Duration::from_secs(1)),
            per_minute: WindowQuota::new(part.per_minute, Duration::from_secs(60)),
            account,
            runners,
            part,
        }
    }
}

pub(crate) struct TierGate {
    quotas: Mutex<Quotas>,
    paused_until: Mutex<Option<Instant>>,
    share: f64,
}

impl TierGate {
    fn new(tier: &Tier, share: f64) -> Self {
        Self {
            quotas: Mutex::new(Quotas::build(tier.clone(), share, runners_sharing_accounts())),
            paused_until: Mutex::new(None),
            share,
        }
    }

    /// The limiters of this process's part, rebuilt when the runners sharing
    /// the accounts changed.
    fn limiters(&self) -> [Option<Arc<DefaultDirectRateLimiter>>; 2] {
        let mut quotas = self.quotas.lock().expect("quota lock");
        let runners = runners_sharing_accounts();
        if quotas.runners != runners {
            *quotas = Quotas::build(quotas.account.clone(), self.share, runners);
            tracing::debug!(
                tier = quotas.part.name,
                runners,
                per_second = quotas.part.per_second,
                per_minute = quotas.part.per_minute,
                "this runner's part of the account's limits"
            );
        }
        [&quotas.per_second, &quotas.per_minute].map(|quota| quota.as_ref().map(|q| q.limiter.clone()))
    }

    /// The moment the tier's pause ends, if it is paused now.
    fn paused(&self) -> Option<Instant> {
        self.paused_until.lock().expect("pause lock").filter(|until| *until > Instant::now())
    }

    /// Waits until the tier is not paused and both quotas have a cell. A
    /// pause that begins while a request waits for its cell holds it too:
    /// the request that got the 429 is not the only one in the queue.
    pub(crate) async fn admit(&self) {
        loop {
            while let Some(until) = self.paused() {
                tokio::time::sleep_until(until).await;
            }
            for limiter in self.limiters().into_iter().flatten() {
                limiter.until_ready().await;
            }
            if self.paused().is_none() {
                return;
            }
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

    /// Lowers the account's limit for `advertised.window` to the advertised
    /// one when that is lower (a window other than a second or a minute is
    /// counted as its per-minute equivalent), and this process's part with
    /// it. Returns whether it did.
    fn adopt(&self, advertised: Advertised) -> bool {
        let seconds = advertised.window.as_secs_f64().max(0.001);
        let per_second = advertised.window <= Duration::from_secs(1);
        let limit = if per_second {
            f64::from(advertised.limit) / seconds
        } else {
            f64::from(advertised.limit) * 60.0 / seconds
        };
        let limit = (limit.floor() as u32).max(1);
        let mut quotas = self.quotas.lock().expect("quota lock");
        let mut account = quotas.account.clone();
        let slot = if per_second { &mut account.per_second } else { &mut account.per_minute };
        if *slot != 0 && *slot <= limit {
            return false;
        }
        *slot = limit;
        *quotas = Quotas::build(account, self.share, quotas.runners);
        true
    }
}

pub(crate) struct Gate {
    platform: &'static str,
    tiers: Mutex<HashMap<&'static str, Arc<TierGate>>>,
    signals: Option<Arc<dyn RateSignals>>,
    share: f64,
}

impl Gate {
    pub(crate) fn new(platform: &'static str, signals: Option<Arc<dyn RateSignals>>, share: f64) -> Self {
        let share = if share.is_finite() && share > 0.0 { share.min(1.0) } else { 1.0 };
        Self { platform, tiers: Mutex::new(HashMap::new()), signals, share }
    }

    pub(crate) fn tier(&self, tier: &Tier) -> Arc<TierGate> {
        self.tiers
            .lock()
            .expect("tier map lock")
            .entry(tier.name)
            .or_insert_with(|| Arc::new(TierGate::new(tier, self.share)))
            .clone()
    }

    /// Learns from a response: a 429 pauses the whole tier for its
    /// Retry-After (else for what the platform's rate headers say, else a
    /// second); headers may ask to slow down or advertise a lower limit.
    pub(crate) fn observe(&self, tier: &Tier, gate: &TierGate, status: u16, headers: &HeaderMap) {
        if status == 429 {
            let wait = parse_retry_after(headers)
                .or_else(|| self.signals.as_ref().and_then(|signals| signals.pause_after(status, headers)))
                .unwrap_or(Duration::from_secs(1));
            tracing::info!(platform = self.platform, tier = tier.name, ?wait, "rate limited (429); pausing the tier");
            gate.pause(wait);
            return;
        }
        let Some(signals) = &self.signals else { return };
        if let Some(advertised) = signals.advertised(headers)
            && gate.adopt(advertised)
        {
            tracing::info!(
                platform = self.platform,
                tier = tier.name,
                limit = advertised.limit,
                window = ?advertised.window,
                "the platform advertises a lower limit for this account; keeping under it"
            );
        }
        if let Some(wait) = signals.pause_after(status, headers) {
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
        let gate = Gate::new("test", None, 1.0);
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
        let gate = Gate::new("test", Some(Arc::new(StandardRateLimitHeaders::per_minute())), 1.0);
        let tier = Tier::unlimited("events");
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-remaining", "0".parse().unwrap());
        headers.insert("ratelimit-reset", "12".parse().unwrap());
        gate.observe(&tier, &gate.tier(&tier), 202, &headers);
        let started = Instant::now();
        gate.tier(&tier).admit().await;
        assert!(started.elapsed() >= Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_pauses_for_what_the_rate_headers_say() {
        let gate = Gate::new("test", Some(Arc::new(StandardRateLimitHeaders::unknown_window())), 1.0);
        let tier = Tier::unlimited("api");
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "40".parse().unwrap());
        gate.observe(&tier, &gate.tier(&tier), 429, &headers);
        let started = Instant::now();
        gate.tier(&tier).admit().await;
        assert!(started.elapsed() >= Duration::from_secs(40), "{:?}", started.elapsed());
    }

    #[test]
    fn a_quota_leaves_room_for_arrival_jitter_in_every_window() {
        for window in [Duration::from_secs(1), Duration::from_secs(60)] {
            for limit in [1, 2, 3, 5, 10, 20, 37, 75, 100, 350, 700] {
                let spacing = window_quota(limit, window).unwrap().replenish_interval();
                let span = spacing * limit;
                assert!(
                    span >= window + ARRIVAL_JITTER && span >= window.mul_f64(1.01),
                    "{limit} per {window:?}: {} requests span {span:?}, no room for jitter",
                    limit + 1
                );
                assert!(
                    span <= window + slack(window) + Duration::from_nanos(u64::from(limit)),
                    "{limit} per {window:?}: spaced {spacing:?}, more than the slack asks"
                );
            }
        }
    }

    fn limits(tier_gate: &TierGate) -> (Option<u32>, Option<u32>) {
        let quotas = tier_gate.quotas.lock().unwrap();
        let limit = |limit: u32| (limit > 0).then_some(limit);
        (limit(quotas.part.per_second), limit(quotas.part.per_minute))
    }

    #[test]
    fn a_rate_share_scales_every_quota_of_the_tier() {
        let tier = Tier::new("events", 10).with_per_minute(600);
        assert_eq!(tier.scaled(0.5), Tier::new("events", 5).with_per_minute(300));
        assert_eq!(Tier::new("tiny", 1).scaled(0.1).per_second, 1, "never below one per window");
        assert_eq!(limits(&Gate::new("test", None, 1.0).tier(&tier)), (Some(10), Some(600)));
        assert_eq!(limits(&Gate::new("test", None, 0.5).tier(&tier)), (Some(5), Some(300)));
        assert_eq!(limits(&Gate::new("test", None, 7.0).tier(&tier)), (Some(10), Some(600)), "never above the limit");
    }

    #[test]
    fn runners_sharing_the_accounts_each_keep_to_their_part() {
        let tier = Tier::new("events", 10).with_per_minute(600);
        let part = |runners| {
            let quotas = Quotas::build(tier.clone(), 1.0, runners);
            (Some(quotas.part.per_second), Some(quotas.part.per_minute))
        };
        assert_eq!(part(1), (Some(10), Some(600)));
        assert_eq!(part(3), (Some(3), Some(200)), "three runners: a third each, rounded down");
        assert_eq!(part(20), (Some(1), Some(30)), "never below one request per window");
        let halved = Quotas::build(tier.clone(), 0.5, 2);
        assert_eq!(halved.part.per_minute, 150, "rate_share and the runners multiply");
    }

    #[test]
    fn an_advertised_lower_limit_is_adopted_times_the_share_and_a_higher_one_ignored() {
        let gate = Gate::new("test", Some(Arc::new(StandardRateLimitHeaders::per_minute())), 0.5);
        let tier = Tier::new("profiles", 75).with_per_minute(700);
        let tier_gate = gate.tier(&tier);
        let mut higher = HeaderMap::new();
        higher.insert("ratelimit-limit", "1000".parse().unwrap());
        gate.observe(&tier, &tier_gate, 200, &higher);
        assert_eq!(limits(&tier_gate), (Some(37), Some(350)), "75 and 700, × 0.5, stay");
        let mut lower = HeaderMap::new();
        lower.insert("ratelimit-limit", "120, 120;w=60".parse().unwrap());
        lower.insert("ratelimit-remaining", "80".parse().unwrap());
        gate.observe(&tier, &tier_gate, 200, &lower);
        assert_eq!(limits(&tier_gate), (Some(37), Some(60)), "the minute quota follows 120 × 0.5");

        let unknown = StandardRateLimitHeaders::unknown_window();
        let mut egoi = HeaderMap::new();
        egoi.insert("x-ratelimit-limit", "100".parse().unwrap());
        assert_eq!(unknown.advertised(&egoi), None, "a limit whose window is unknown is not adopted");
        egoi.insert("x-ratelimit-limit", "100;w=10".parse().unwrap());
        assert_eq!(unknown.advertised(&egoi), Some(Advertised { limit: 100, window: Duration::from_secs(10) }));
    }
}
