//! The HTTP server of `tillflow run`: `POST /webhooks/<source>`, `GET /healthz`,
//! `GET /metrics`. A webhook is verified, then written to the durable inbox,
//! and only then answered 2xx; nothing unverified is ever stored, and a body
//! over `[server] max_body` is answered 413 before it is read whole.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
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

pub fn router(state: ServerState, max_body: usize) -> Router {
    Router::new()
        .route("/webhooks/{source}", post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tillflow_core::ConnectorError;
    use tower::ServiceExt;

    /// A source that takes every webhook: only the body limit can refuse one.
    struct TakesAll;

    #[async_trait::async_trait]
    impl SourceAccount for TakesAll {
        fn platform(&self) -> &'static str {
            "test"
        }
        fn poll_interval(&self) -> std::time::Duration {
            std::time::Duration::from_secs(60)
        }
        fn reader(&self) -> Box<dyn tillflow_core::Source> {
            unimplemented!("the server never reads")
        }
        fn verify_webhook(&self, _request: &WebhookRequest) -> WebhookVerdict {
            WebhookVerdict::Accept
        }
        async fn check(&self) -> Result<(), ConnectorError> {
            Ok(())
        }
    }

    fn server(max_body: usize) -> (Router, Arc<dyn StateStore>) {
        let state: Arc<dyn StateStore> = Arc::new(tillflow_testkit::MemoryStore::new());
        let sources =
            HashMap::from([("shop".to_owned(), WebhookSource { account: Arc::new(TakesAll), notify: Vec::new() })]);
        let router =
            router(ServerState { sources: Arc::new(sources), state: state.clone(), metrics: Arc::default() }, max_body);
        (router, state)
    }

    async fn post(router: Router, body: Vec<u8>, declared: bool) -> StatusCode {
        let mut request = Request::post("/webhooks/shop").header("content-type", "application/json");
        if declared {
            request = request.header("content-length", body.len());
        }
        let body = if declared {
            Body::from(body)
        } else {
            // A body that does not say its length, as a chunked sender's.
            Body::from_stream(futures_stream(body))
        };
        router.oneshot(request.body(body).unwrap()).await.unwrap().status()
    }

    fn futures_stream(body: Vec<u8>) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(1000).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
        futures_util::stream::iter(chunks)
    }

    #[tokio::test]
    async fn a_body_over_max_body_is_answered_413_and_nothing_is_stored() {
        for declared in [true, false] {
            let (router, state) = server(4096);
            assert_eq!(post(router.clone(), vec![b'x'; 4097], declared).await, StatusCode::PAYLOAD_TOO_LARGE);
            assert!(state.inbox_pending("p", "shop", 10).await.unwrap().is_empty(), "nothing stored");
            assert_eq!(post(router, vec![b'x'; 4096], declared).await, StatusCode::OK, "at the limit it is taken");
            assert_eq!(state.inbox_pending("p", "shop", 10).await.unwrap().len(), 1);
        }
    }
}
