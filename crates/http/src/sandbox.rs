//! What every platform sandbox shares (feature `sandbox`): serving a router on
//! loopback, injecting faults on request, and counting requests in the fixed
//! one-second and one-minute windows platforms enforce their limits in.
//!
//! The sandboxes themselves live in their platform's crate; this module knows
//! nothing about any platform.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A sandbox's HTTP server on its own task, behind its fault injector
/// (nothing injected until a plan is set); dropping it stops the server.
pub struct SandboxServer {
    address: SocketAddr,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SandboxServer {
    /// Binds `address` (port 0 picks a free one) and serves `router` until
    /// dropped, every route but `/sandbox/…` behind the fault injector.
    pub async fn serve(router: Router, address: SocketAddr) -> std::io::Result<Self> {
        Self::serve_on(tokio::net::TcpListener::bind(address).await?, router)
    }

    /// Serves `router` on a listener already bound (when the router must
    /// know its own address, e.g. for absolute `next` links).
    pub fn serve_on(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let faults = Faults::new(FaultPlan::none());
        let router = with_faults(router, faults.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, faults, task })
    }

    /// The fault injector in front of the sandbox's platform routes.
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// The loopback address with a port the system picks.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Which faults a sandbox injects, each as the probability that a request
/// meets it. Written as `429=0.05,5xx=0.05,drop=0.02,lost=0.02,slow=0.05`
/// with the optional `storm=N` (requests refused per 429 storm),
/// `retry-after=S`, `slow-ms=M` and `seed=N`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// A request starts a storm: it and the next `storm_length - 1` requests
    /// are answered 429 with `Retry-After`.
    pub too_many_requests: f64,
    pub storm_length: u32,
    pub retry_after_seconds: u32,
    /// 500, 502 or 503 without the request being applied.
    pub server_errors: f64,
    /// The answer comes `slow_by` late.
    pub slow: f64,
    pub slow_by: Duration,
    /// The connection drops before the request is applied.
    pub dropped_connections: f64,
    /// The request is applied, then the connection drops before the answer:
    /// the client cannot know it succeeded.
    pub lost_answers: f64,
    pub seed: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            too_many_requests: 0.0,
            storm_length: 3,
            retry_after_seconds: 1,
            server_errors: 0.0,
            slow: 0.0,
            slow_by: Duration::from_millis(300),
            dropped_connections: 0.0,
            lost_answers: 0.0,
            seed: 1,
        }
    }
}

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.too_many_requests == 0.0
            && self.server_errors == 0.0
            && self.slow == 0.0
            && self.dropped_connections == 0.0
            && self.lost_answers == 0.0
    }

    /// Parses the `--faults` notation; the error names the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut plan = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) =
                part.split_once('=').ok_or_else(|| format!("fault `{part}`: expected NAME=VALUE, e.g. 429=0.05"))?;
            let probability = || -> Result<f64, String> {
                let p: f64 = value.parse().map_err(|_| format!("fault `{name}`: `{value}` is not a number"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("fault `{name}`: {value} is not a probability between 0 and 1"))
                }
            };
            let whole = || -> Result<u64, String> {
                value.parse().map_err(|_| format!("fault `{name}`: `{value}` is not a whole number"))
            };
            match name {
                "429" => plan.too_many_requests = probability()?,
                "5xx" => plan.server_errors = probability()?,
                "slow" => plan.slow = probability()?,
                "drop" => plan.dropped_connections = probability()?,
                "lost" => plan.lost_answers = probability()?,
                "storm" => plan.storm_length = u32::try_from(whole()?.max(1)).unwrap_or(u32::MAX),
                "retry-after" => plan.retry_after_seconds = u32::try_from(whole()?).unwrap_or(u32::MAX),
                "slow-ms" => plan.slow_by = Duration::from_millis(whole()?),
                "seed" => plan.seed = whole()?,
                other => {
                    return Err(format!(
                        "unknown fault `{other}`: expected one of 429, 5xx, slow, drop, lost, storm, retry-after, slow-ms, seed"
                    ));
                }
            }
        }
        Ok(plan)
    }
}

/// How many of each fault a sandbox injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    pub too_many_requests: u64,
    pub server_errors: u64,
    pub slow: u64,
    pub dropped_connections: u64,
    pub lost_answers: u64,
}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.too_many_requests + self.server_errors + self.slow + self.dropped_connections + self.lost_answers
    }
}

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After`.
    TooManyRequests,
    /// This status (500, 502 or 503), the request not applied.
    ServerError(u16),
    /// The answer comes late.
    Slow,
    /// The connection drops before the request is applied.
    Dropped,
    /// The request is applied, then the connection drops before the answer.
    LostAnswer,
}

struct FaultState {
    plan: FaultPlan,
    random: SplitMix64,
    queued: std::collections::VecDeque<Fault>,
    counts: FaultCounts,
}

/// A sandbox's fault injector; shared by its middleware and its owner, who
/// may change the plan while it serves.
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        let random = SplitMix64(plan.seed);
        Arc::new(Self {
            state: Mutex::new(FaultState { plan, random, queued: Default::default(), counts: FaultCounts::default() }),
        })
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        let mut state = self.state.lock().expect("fault state");
        state.random = SplitMix64(plan.seed);
        state.queued.clear();
        state.plan = plan;
    }

    pub fn counts(&self) -> FaultCounts {
        self.state.lock().expect("fault state").counts.clone()
    }

    /// The next `times` requests meet `fault`, whatever the plan says.
    pub fn inject_next(&self, fault: Fault, times: u32) {
        let mut state = self.state.lock().expect("fault state");
        state.queued.extend(std::iter::repeat_n(fault, times as usize));
    }

    fn draw(&self) -> Option<Fault> {
        let mut state = self.state.lock().expect("fault state");
        let fault = if let Some(queued) = state.queued.pop_front() {
            Some(queued)
        } else {
            let roll = state.random.next_unit();
            let plan = &state.plan;
            let mut threshold = 0.0;
            let mut pick = None;
            for (probability, fault) in [
                (plan.too_many_requests, Fault::TooManyRequests),
                (plan.server_errors, Fault::ServerError(0)),
                (plan.slow, Fault::Slow),
                (plan.dropped_connections, Fault::Dropped),
                (plan.lost_answers, Fault::LostAnswer),
            ] {
                threshold += probability;
                if roll < threshold {
                    pick = Some(fault);
                    break;
                }
            }
            match pick {
                Some(Fault::TooManyRequests) => {
                    let rest = state.plan.storm_length.saturating_sub(1) as usize;
                    state.queued.extend(std::iter::repeat_n(Fault::TooManyRequests, rest));
                }
                Some(Fault::ServerError(_)) => {
                    pick = Some(Fault::ServerError([500, 502, 503][(state.random.next() % 3) as usize]));
                }
                _ => {}
            }
            pick
        };
        let counts = &mut state.counts;
        match fault {
            Some(Fault::TooManyRequests) => counts.too_many_requests += 1,
            Some(Fault::ServerError(_)) => counts.server_errors += 1,
            Some(Fault::Slow) => counts.slow += 1,
            Some(Fault::Dropped) => counts.dropped_connections += 1,
            Some(Fault::LostAnswer) => counts.lost_answers += 1,
            None => {}
        }
        fault
    }

    fn retry_after_seconds(&self) -> u32 {
        self.state.lock().expect("fault state").plan.retry_after_seconds
    }

    fn slow_by(&self) -> Duration {
        self.state.lock().expect("fault state").plan.slow_by
    }
}

/// Wraps every route of `router` but the `/sandbox/…` inspection endpoints in
/// `faults`.
fn with_faults(router: Router, faults: Arc<Faults>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(faults, inject))
}

async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/sandbox/") {
        return next.run(request).await;
    }
    match faults.draw() {
        None => next.run(request).await,
        Some(Fault::TooManyRequests) => {
            let seconds = faults.retry_after_seconds();
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "sandbox: too many requests").into_response();
            response.headers_mut().insert("retry-after", seconds.into());
            response
        }
        Some(Fault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, "sandbox: injected server error").into_response()
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(faults.slow_by()).await;
            next.run(request).await
        }
        Some(Fault::Dropped) => broken_connection(),
        Some(Fault::LostAnswer) => {
            let _applied = next.run(request).await;
            broken_connection()
        }
    }
}

/// A response whose body fails at once: the server closes the connection
/// mid-answer, which the client sees as a dropped connection.
fn broken_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sandbox: dropped"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    *response.status_mut() = StatusCode::OK;
    response
}

/// Counts requests per endpoint family in fixed one-second and one-minute
/// windows, as platforms do, and says when one is over its limit.
#[derive(Debug, Default)]
pub struct FixedWindows {
    windows: HashMap<&'static str, WindowCounts>,
}

#[derive(Debug)]
struct WindowCounts {
    second_started: Instant,
    in_second: u32,
    minute_started: Instant,
    in_minute: u32,
}

/// A limit of `per_second` in any fixed one-second window and `per_minute`
/// in any fixed minute; zero means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    pub per_second: u32,
    pub per_minute: u32,
}

impl WindowLimit {
    /// The limit multiplied by `scale` (a sandbox scaled up to keep tests fast).
    pub fn scaled(self, scale: f64) -> Self {
        let scale_one = |limit: u32| if limit == 0 { 0 } else { ((f64::from(limit) * scale).round() as u32).max(1) };
        Self { per_second: scale_one(self.per_second), per_minute: scale_one(self.per_minute) }
    }
}

impl FixedWindows {
    /// Counts one request of `family`; over the limit it is not counted and
    /// the answer is how long until the window that refused it closes.
    pub fn admit(&mut self, family: &'static str, limit: WindowLimit) -> Result<(), Duration> {
        let now = Instant::now();
        let counts = self.windows.entry(family).or_insert(WindowCounts {
            second_started: now,
            in_second: 0,
            minute_started: now,
            in_minute: 0,
        });
        if now.duration_since(counts.second_started) >= Duration::from_secs(1) {
            counts.second_started = now;
            counts.in_second = 0;
        }
        if now.duration_since(counts.minute_started) >= Duration::from_secs(60) {
            counts.minute_started = now;
            counts.in_minute = 0;
        }
        if limit.per_second > 0 && counts.in_second >= limit.per_second {
            return Err(Duration::from_secs(1).saturating_sub(now.duration_since(counts.second_started)));
        }
        if limit.per_minute > 0 && counts.in_minute >= limit.per_minute {
            return Err(Duration::from_secs(60).saturating_sub(now.duration_since(counts.minute_started)));
        }
        counts.in_second += 1;
        counts.in_minute += 1;
        Ok(())
    }
}

/// Whole seconds for a `Retry-After` header, never zero.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// A small deterministic generator: the same seed injects the same faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_notation_parses_and_names_what_is_wrong() {
        let plan =
            FaultPlan::parse("429=0.05, 5xx=0.1,drop=0.02,lost=0.01,slow=0.2,slow-ms=50,storm=4,seed=9").unwrap();
        assert_eq!(plan.too_many_requests, 0.05);
        assert_eq!(plan.server_errors, 0.1);
        assert_eq!(plan.dropped_connections, 0.02);
        assert_eq!(plan.lost_answers, 0.01);
        assert_eq!(plan.slow, 0.2);
        assert_eq!(plan.slow_by, Duration::from_millis(50));
        assert_eq!(plan.storm_length, 4);
        assert_eq!(plan.seed, 9);
        assert!(FaultPlan::parse("").unwrap().is_empty());
        assert!(FaultPlan::parse("5xx=2").unwrap_err().contains("not a probability"));
        assert!(FaultPlan::parse("teapot=0.1").unwrap_err().contains("unknown fault `teapot`"));
        assert!(FaultPlan::parse("drop").unwrap_err().contains("NAME=VALUE"));
    }

    #[test]
    fn faults_come_at_their_rates_and_a_storm_refuses_its_length() {
        let faults = Faults::new(FaultPlan { server_errors: 0.25, ..FaultPlan::default() });
        let drawn = (0..4000).filter(|_| faults.draw().is_some()).count();
        assert!((800..1200).contains(&drawn), "about a quarter of 4000, got {drawn}");
        assert_eq!(faults.counts().server_errors, drawn as u64);

        let storm = Faults::new(FaultPlan { too_many_requests: 1.0, storm_length: 5, ..FaultPlan::default() });
        storm.set_plan(FaultPlan { too_many_requests: 0.0, ..FaultPlan::default() });
        storm.inject_next(Fault::TooManyRequests, 5);
        let refused: Vec<bool> = (0..7).map(|_| storm.draw() == Some(Fault::TooManyRequests)).collect();
        assert_eq!(refused, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn fixed_windows_refuse_past_the_limit_and_say_how_long_to_wait() {
        let mut windows = FixedWindows::default();
        let limit = WindowLimit { per_second: 3, per_minute: 0 };
        for _ in 0..3 {
            windows.admit("jobs", limit).unwrap();
        }
        let wait = windows.admit("jobs", limit).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        windows.admit("other", limit).unwrap();
        assert_eq!(retry_after_seconds(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(
            WindowLimit { per_second: 10, per_minute: 150 }.scaled(2.0),
            WindowLimit { per_second: 20, per_minute: 300 }
        );
    }

    async fn echo_sandbox(applied: Arc<std::sync::atomic::AtomicU32>) -> SandboxServer {
        let router = Router::new().route(
            "/apply",
            axum::routing::post(move || {
                let applied = applied.clone();
                async move {
                    applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    "applied"
                }
            }),
        );
        SandboxServer::serve(router, any_loopback_port()).await.unwrap()
    }

    #[tokio::test]
    async fn a_dropped_connection_and_a_lost_answer_are_retried_by_the_client() {
        use crate::{HttpClient, HttpConfig, RetryConfig, Tier};
        let applied = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let server = echo_sandbox(applied.clone()).await;
        let faults = server.faults();
        let mut config = HttpConfig::new("test");
        config.retry = RetryConfig { base_delay: Duration::from_millis(1), ..RetryConfig::default() };
        let client = HttpClient::new(config);
        let tier = Tier::unlimited("apply");

        faults.inject_next(Fault::Dropped, 2);
        let request = client.reqwest().post(format!("{}/apply", server.base_url())).build().unwrap();
        let body = client.send(&tier, request).await.unwrap().text().await.unwrap();
        assert_eq!(body, "applied");
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), 1, "dropped requests were never applied");

        faults.inject_next(Fault::LostAnswer, 1);
        let request = client.reqwest().post(format!("{}/apply", server.base_url())).build().unwrap();
        assert_eq!(client.send(&tier, request).await.unwrap().text().await.unwrap(), "applied");
        assert_eq!(
            applied.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "the lost answer's request was applied and then sent again: only an id the platform dedupes makes that safe"
        );
        assert_eq!(faults.counts(), FaultCounts { dropped_connections: 2, lost_answers: 1, ..FaultCounts::default() });
    }
}
