//! Contract tests of the client stack against a mock server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tillflow_http::{HttpClient, HttpConfig, HttpError, RetryConfig, Tier};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TIER: Tier = Tier::unlimited("test");

fn client() -> HttpClient {
    let mut config = HttpConfig::new("test");
    config.retry = RetryConfig {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..RetryConfig::default()
    };
    config.attempt_timeout = Duration::from_millis(500);
    HttpClient::new(config)
}

fn get(client: &HttpClient, url: String) -> reqwest::Request {
    client.reqwest().get(url).build().unwrap()
}

/// Answers the listed responses in turn, then the last one forever.
struct Sequence {
    responses: Vec<ResponseTemplate>,
    calls: Arc<AtomicUsize>,
}
impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.responses[call.min(self.responses.len() - 1)].clone()
    }
}

async fn server_with(responses: Vec<ResponseTemplate>) -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/thing"))
        .respond_with(Sequence { responses, calls: calls.clone() })
        .mount(&server)
        .await;
    (server, calls)
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (server, calls) = server_with(vec![
        ResponseTemplate::new(503),
        ResponseTemplate::new(500),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let client = client();
    let response = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retry_after_seconds_is_waited_out() {
    let (server, calls) =
        server_with(vec![ResponseTemplate::new(429).insert_header("Retry-After", "1"), ResponseTemplate::new(200)])
            .await;
    let client = client();
    let started = Instant::now();
    client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A lower bound only: the retry cannot have come before Retry-After.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn unauthorized_is_a_configuration_error_and_never_retried() {
    let (server, calls) =
        server_with(vec![ResponseTemplate::new(401).set_body_string("{\"error\":\"bad key\"}")]).await;
    let client = client();
    let error = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap_err();
    assert!(matches!(error, HttpError::Unauthorized { status: 401, .. }), "{error:?}");
    assert!(error.to_string().contains("bad key"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let connector: tillflow_core::ConnectorError = error.into();
    assert_eq!(connector.class, tillflow_core::ErrorClass::Config);
}

#[tokio::test]
async fn client_errors_are_rejected_without_retry() {
    let (server, calls) = server_with(vec![ResponseTemplate::new(422).set_body_string("bad field")]).await;
    let client = client();
    let error = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap_err();
    assert!(matches!(error, HttpError::Rejected { status: 422, .. }), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_absurd_retry_after_gives_up_at_once() {
    let (server, calls) = server_with(vec![ResponseTemplate::new(429).insert_header("Retry-After", "86400")]).await;
    let client = client();
    let error = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap_err();
    assert!(matches!(error, HttpError::WaitTooLong { .. }), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn persistent_failure_ends_as_unavailable_after_bounded_attempts() {
    let (server, calls) = server_with(vec![ResponseTemplate::new(502)]).await;
    let client = client();
    let error = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap_err();
    assert!(matches!(error, HttpError::Unavailable { .. }), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), RetryConfig::default().max_attempts as usize);
}

#[tokio::test]
async fn slow_responses_time_out_per_attempt_and_are_retried() {
    let (server, calls) = server_with(vec![
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        ResponseTemplate::new(200).set_body_string("fast"),
    ])
    .await;
    let client = client();
    let response = client.send(&TIER, get(&client, format!("{}/thing", server.uri()))).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "fast");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_without_secrets() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = client();
    let url = format!("http://127.0.0.1:{port}/thing?consumer_secret=cs_topsecret");
    let error = client.send(&TIER, get(&client, url)).await.unwrap_err();
    assert!(matches!(error, HttpError::Unavailable { .. }), "{error:?}");
    assert!(!error.to_string().contains("cs_topsecret"), "{error}");
}

/// Records when each request arrived.
struct Arrivals(Arc<std::sync::Mutex<Vec<Instant>>>);
impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200)
    }
}

#[tokio::test]
async fn no_one_second_window_holds_more_than_the_tier_allows() {
    let server = MockServer::start().await;
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("GET")).respond_with(Arrivals(arrivals.clone())).mount(&server).await;
    let client = client();
    let tier = Tier::new("five-a-second", 5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = client.clone();
        let request = get(&client, format!("{}/thing", server.uri()));
        let tier = tier.clone();
        tasks.spawn(async move { client.send(&tier, request).await.map(|_| ()) });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let mut arrivals = arrivals.lock().unwrap().clone();
    arrivals.sort();
    assert_eq!(arrivals.len(), 12);
    // Fixed windows, as platforms count: any 6 requests span at least a second.
    for window in arrivals.windows(6) {
        assert!(
            window[5].duration_since(window[0]) >= Duration::from_millis(990),
            "{:?}",
            window[5].duration_since(window[0])
        );
    }
}
