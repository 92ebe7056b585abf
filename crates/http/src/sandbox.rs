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
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::faults::{Fault, FaultCounts, FaultPlan, Faults};

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

#[cfg(test)]
mod tests {
    use super::*;

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
