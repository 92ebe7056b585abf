//! The HTTP server of `tillflow run`: `POST /webhooks/<source>`, `GET /healthz`,
//! `GET /metrics`. A webhook is verified, then written to the durable inbox,
//! and only then answered 2xx; nothing unverified is ever stored.

use axum::Router;
use axum::body::Bytes;
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
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/webhooks/{source}", post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<ServerState>) -> String {
    state.metrics.render()
}

async fn webhook(
    State(server): State<ServerState>,
    Path(source_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(source) = server.sources.get(&source_name) else {
        return (StatusCode::NOT_FOUND, "no such source\n");
    };
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
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
