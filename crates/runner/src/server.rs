//! The HTTP routes of `tillflow run`: `POST /webhooks/<source>`, `GET /healthz`,
//! `GET /metrics` and the status page at `GET /` (`status_page`); with
//! `[server] admin_token` set, the page and `/metrics` ask for it (bearer or
//! `?token=`, compared in constant time). A webhook is verified, then written to the durable inbox,
//! and only then answered 2xx; nothing unverified is ever stored, and a body
//! is read within the `[server]` limits (`webhook_body`). Connections, their
//! cap and header timeout are the accept loop's (`listener`).

use crate::config::ServerLimits;
use crate::webhook_body::{self, BodyRefused, InFlight};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tillflow_core::{StateStore, WebhookRequest, WebhookVerdict};
use tillflow_kit::SourceAccount;
use tokio::sync::Notify;

/// Counters exposed at `/metrics` in the Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    /// `labels` is already formatted, e.g. `pipeline="p",event="placed"`.
    pub fn add(&self, name: &str, labels: String, value: u64) {
        *self.counters.lock().expect("metrics lock").entry((name.to_owned(), labels)).or_default() += value;
    }

    pub fn render(&self) -> String {
        let counters = self.counters.lock().expect("metrics lock");
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in counters.iter() {
            if name != last {
                out.push_str(&format!("# TYPE {name} counter\n"));
                last = name;
            }
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
        out
    }
}

pub struct WebhookSource {
    /// The source's account: the pipelines read through it, the server
    /// verifies with it.
    pub account: Arc<dyn SourceAccount>,
    /// Woken when a webhook for this source is stored.
    pub notify: Vec<Arc<Notify>>,
}

#[derive(Clone)]
pub struct ServerState {
    pub sources: Arc<HashMap<String, WebhookSource>>,
    pub state: Arc<dyn StateStore>,
    pub metrics: Arc<Metrics>,
    /// The config the status page shows (and whose admin token guards it);
    /// `None`: no page.
    pub config: Option<Arc<crate::config::Config>>,
}

#[derive(Clone)]
struct Routed {
    server: ServerState,
    limits: ServerLimits,
    in_flight: InFlight,
}

pub fn router(state: ServerState, limits: &ServerLimits) -> Router {
    let routed = Routed { server: state, limits: limits.clone(), in_flight: InFlight::new(limits.max_in_flight) };
    Router::new()
        .route("/webhooks/{source}", post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/", get(status_page))
        .with_state(routed)
}

/// Query parameters of the guarded pages.
#[derive(serde::Deserialize)]
struct PageQuery {
    tz: Option<String>,
    token: Option<String>,
}

/// Whether the request carries the admin token, when one is set.
fn admitted(server: &ServerState, headers: &HeaderMap, query: &PageQuery) -> bool {
    use secrecy::ExposeSecret;
    let Some(expected) = server.config.as_ref().and_then(|config| config.server.admin_token.as_ref()) else {
        return true;
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(given) = bearer.or(query.token.as_deref()) else { return false };
    // Both through one HMAC and compared in constant time: equal MACs, equal tokens.
    let mark = tillflow_http::webhook::sign_hmac_sha256_base64(expected, expected.expose_secret().as_bytes());
    tillflow_http::webhook::verify_hmac_sha256_base64(expected, given.as_bytes(), &mark)
}

const ASK_FOR_THE_TOKEN: (StatusCode, &str) =
    (StatusCode::UNAUTHORIZED, "the admin token is asked for: Authorization: Bearer <token>, or ?token=\n");

async fn metrics(
    State(routed): State<Routed>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !admitted(&routed.server, &headers, &query) {
        return ASK_FOR_THE_TOKEN.into_response();
    }
    routed.server.metrics.render().into_response()
}

async fn status_page(
    State(routed): State<Routed>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let server = &routed.server;
    let Some(config) = &server.config else { return (StatusCode::NOT_FOUND, "no status page\n").into_response() };
    if !admitted(server, &headers, &query) {
        return ASK_FOR_THE_TOKEN.into_response();
    }
    match crate::status_page::render(config, server.state.as_ref(), query.tz.as_deref(), query.token.as_deref()).await {
        Ok(html) => axum::response::Html(html).into_response(),
        Err(failure) => (StatusCode::SERVICE_UNAVAILABLE, format!("the state cannot be read: {}\n", failure.message))
            .into_response(),
    }
}

async fn webhook(
    State(routed): State<Routed>,
    Path(source_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (status, text) = webhook_answer(routed, source_name, headers, body).await;
    let mut response = (status, text).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Refused for load or a state that could not be written: come back shortly.
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    response
}

async fn webhook_answer(
    routed: Routed,
    source_name: String,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, &'static str) {
    let server = &routed.server;
    let Some(source) = server.sources.get(&source_name) else {
        return (StatusCode::NOT_FOUND, "no such source\n");
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limits = &routed.limits;
    let body = match webhook_body::read(body, declared, limits.max_body, &routed.in_flight, limits.read_timeout).await {
        Ok(body) => body,
        Err(refused) => {
            server.metrics.add(
                "tillflow_webhooks_refused_total",
                format!("source=\"{source_name}\",reason=\"{refused:?}\""),
                1,
            );
            return match refused {
                BodyRefused::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
                BodyRefused::Busy => {
                    tracing::warn!(source = %source_name, "webhook bodies in flight at server.max_in_flight; asking to retry");
                    (StatusCode::SERVICE_UNAVAILABLE, "busy, retry\n")
                }
                BodyRefused::TooSlow => (StatusCode::REQUEST_TIMEOUT, "body too slow\n"),
                BodyRefused::Broken => (StatusCode::BAD_REQUEST, "body broken off\n"),
            };
        }
    };
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.bytes,
    };
    let verdict = source.account.verify_webhook(&request);
    let outcome = match &verdict {
        WebhookVerdict::Accept => "accepted",
        WebhookVerdict::Ping => "ping",
        WebhookVerdict::Unauthorized => "unauthorized",
        WebhookVerdict::Rejected(_) => "rejected",
        WebhookVerdict::Unsupported => "unsupported",
    };
    server.metrics.add("tillflow_webhooks_total", format!("source=\"{source_name}\",outcome=\"{outcome}\""), 1);
    match verdict {
        WebhookVerdict::Accept => {
            // Durable first: the 2xx promises the platform we have it.
            match server.state.inbox_push(&source_name, &request.headers, &request.body, jiff::Timestamp::now()).await {
                Ok(_) => {
                    for notify in &source.notify {
                        notify.notify_one();
                    }
                    (StatusCode::OK, "stored\n")
                }
                Err(error) => {
                    tracing::error!(source = %source_name, %error, "could not store a webhook; asking the platform to retry");
                    (StatusCode::SERVICE_UNAVAILABLE, "could not store\n")
                }
            }
        }
        WebhookVerdict::Ping => (StatusCode::OK, "ok\n"),
        WebhookVerdict::Unauthorized => {
            tracing::warn!(source = %source_name, "webhook with a missing or wrong signature refused");
            (StatusCode::UNAUTHORIZED, "invalid signature\n")
        }
        WebhookVerdict::Rejected(reason) => {
            tracing::warn!(source = %source_name, %reason, "webhook rejected");
            (StatusCode::BAD_REQUEST, "rejected\n")
        }
        WebhookVerdict::Unsupported => (StatusCode::NOT_FOUND, "this source takes no webhooks\n"),
    }
}
