//! The webhook server over real TCP, under the abuse a public endpoint gets:
//! oversized bodies, many large bodies at once, clients that trickle or idle,
//! more connections than the process has descriptors for, and requests to
//! anything but `POST /webhooks/<source>`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::{ConnectorError, StateStore, WebhookRequest, WebhookVerdict};
use tillflow_kit::SourceAccount;
use tillflow_runner::config::ServerLimits;
use tillflow_runner::server::{ServerState, WebhookSource, router};
use tokio::sync::watch;

/// A source that takes every webhook: only the server's limits refuse one.
struct TakesAll;

#[async_trait::async_trait]
impl SourceAccount for TakesAll {
    fn platform(&self) -> &'static str {
        "test"
    }
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(60)
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

struct Server {
    address: SocketAddr,
    state: Arc<dyn StateStore>,
    _stop: watch::Sender<bool>,
}

impl Server {
    async fn start(limits: ServerLimits, cap: usize) -> Self {
        let state: Arc<dyn StateStore> = Arc::new(tillflow_testkit::MemoryStore::new());
        let sources =
            HashMap::from([("shop".to_owned(), WebhookSource { account: Arc::new(TakesAll), notify: Vec::new() })]);
        let server_state =
            ServerState { sources: Arc::new(sources), state: state.clone(), metrics: Arc::default(), config: None };
        let router = router(server_state, &limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(tillflow_runner::listener::serve(listener, router, cap, limits.read_timeout, shutdown));
        Self { address, state, _stop: stop }
    }

    async fn stored(&self) -> u64 {
        self.state.inbox_pending_count("p", "shop").await.unwrap()
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        // A safety net: every test expects the server to act well before.
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
    }
}

fn limits(max_body: usize, max_in_flight: usize, read_timeout: Duration) -> ServerLimits {
    ServerLimits { max_body, max_in_flight, read_timeout, max_connections: None }
}

fn head(method: &str, path: &str, length: Option<usize>) -> Vec<u8> {
    let length =
        length.map(|n| format!("content-length: {n}\r\n")).unwrap_or_else(|| "transfer-encoding: chunked\r\n".into());
    format!("{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n{length}\r\n").into_bytes()
}

/// Reads until the server closes or the answer's status line is in.
fn status_of(stream: &mut TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock || error.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the server neither answered nor closed the connection")
            }
            Err(_) => break,
        }
    }
    let line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned();
    line.split_whitespace().nth(1).and_then(|code| code.parse().ok())
}

/// True when the server has closed the connection (reads end).
fn closed(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock || error.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Sends `parts` in order until the server stops reading. A server that
/// refuses a body may answer and close before it has read the rest, as HTTP
/// allows; the client then sees a broken pipe, and the answer is still there
/// to read.
fn send_until_refused(stream: &mut TcpStream, parts: Vec<Vec<u8>>) {
    for part in parts {
        if stream.write_all(&part).is_err() {
            return;
        }
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_is_answered_413_and_nothing_is_stored() {
    let server = Server::start(limits(4096, 1 << 20, Duration::from_secs(10)), 64).await;
    for declared in [true, false] {
        for (size, want) in [(4097, 413), (4096, 200)] {
            let mut stream = server.connect();
            let body = vec![b'x'; size];
            let answer = blocking(move || {
                let mut parts = Vec::new();
                if declared {
                    parts.push(head("POST", "/webhooks/shop", Some(body.len())));
                    parts.push(body);
                } else {
                    // A sender that does not say its length: chunked.
                    parts.push(head("POST", "/webhooks/shop", None));
                    for chunk in body.chunks(1000) {
                        parts.push([format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat());
                    }
                    parts.push(b"0\r\n\r\n".to_vec());
                }
                send_until_refused(&mut stream, parts);
                status_of(&mut stream)
            })
            .await;
            assert_eq!(answer, Some(want), "{size} bytes, declared {declared}");
        }
    }
    assert_eq!(server.stored().await, 2, "only the bodies at the limit were stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_flight_are_capped_together_and_their_bytes_come_back() {
    // 64 KiB for everyone; three clients each park 25 KiB of a 30 KiB body.
    let server = Server::start(limits(48 * 1024, 64 * 1024, Duration::from_secs(30)), 64).await;
    let mut parked = Vec::new();
    for _ in 0..3 {
        let mut stream = server.connect();
        stream.write_all(&head("POST", "/webhooks/shop", Some(30 * 1024))).unwrap();
        stream.write_all(&vec![b'x'; 25 * 1024]).unwrap();
        parked.push(stream);
    }
    // The one that went over the budget is answered 503 at once; the others
    // wait for the rest of their bodies (a second refusal shows below as a 503).
    let mut refused = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while refused.is_none() && std::time::Instant::now() < deadline {
        for (index, stream) in parked.iter_mut().enumerate() {
            stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buffer = [0u8; 256];
            if let Ok(n) = stream.read(&mut buffer)
                && n > 0
            {
                let answer = String::from_utf8_lossy(&buffer[..n]).into_owned();
                assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
                assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
                refused = Some(index);
                break;
            }
        }
    }
    let refused = refused.expect("the third parked body was refused");
    parked.remove(refused);
    // The other two finish within the budget.
    for mut stream in parked {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let answer = blocking(move || {
            stream.write_all(&vec![b'x'; 5 * 1024]).unwrap();
            status_of(&mut stream)
        })
        .await;
        assert_eq!(answer, Some(200));
    }
    assert_eq!(server.stored().await, 2);
    // Every byte came back: a body as large as the whole budget allows fits again.
    let mut stream = server.connect();
    let answer = blocking(move || {
        stream.write_all(&head("POST", "/webhooks/shop", Some(48 * 1024))).unwrap();
        stream.write_all(&vec![b'x'; 48 * 1024]).unwrap();
        status_of(&mut stream)
    })
    .await;
    assert_eq!(answer, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_or_a_body_or_idling_loses_its_connection() {
    let server = Server::start(limits(4096, 1 << 20, Duration::from_secs(1)), 64).await;
    let mut idle = server.connect();
    let mut trickling_head = server.connect();
    trickling_head.write_all(b"POST /webhooks/shop HTTP/1.1\r\nhost: te").unwrap();
    let mut trickling_body = server.connect();
    trickling_body.write_all(&head("POST", "/webhooks/shop", Some(1000))).unwrap();
    trickling_body.write_all(b"{\"id\":").unwrap();
    let (idle_closed, head_closed, body_answer) =
        blocking(move || (closed(&mut idle), closed(&mut trickling_head), status_of(&mut trickling_body))).await;
    assert!(idle_closed, "an idle connection is closed after read_timeout");
    assert!(head_closed, "headers sent slower than read_timeout lose the connection");
    assert_eq!(body_answer, Some(408), "a body sent slower than read_timeout is answered 408");
    assert_eq!(server.stored().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_for_a_valid_webhook() {
    // A read timeout far longer than the test: only making room can let the webhook in.
    let server = Server::start(limits(4096, 1 << 20, Duration::from_secs(120)), 16).await;
    let idle: Vec<TcpStream> = (0..40).map(|_| server.connect()).collect();
    let mut stream = server.connect();
    let answer = blocking(move || {
        let body = br#"{"id":1}"#;
        stream.write_all(&head("POST", "/webhooks/shop", Some(body.len()))).unwrap();
        stream.write_all(body).unwrap();
        status_of(&mut stream)
    })
    .await;
    assert_eq!(answer, Some(200), "the webhook was answered despite 40 idle connections over a cap of 16");
    assert_eq!(server.stored().await, 1);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_post_to_a_webhook_path_stores_anything() {
    let server = Server::start(limits(4096, 1 << 20, Duration::from_secs(10)), 64).await;
    for (method, path, want) in [
        ("GET", "/webhooks/shop", 405),
        ("PUT", "/webhooks/shop", 405),
        ("POST", "/metrics", 405),
        ("POST", "/healthz", 405),
        ("POST", "/webhooks/elsewhere", 404),
        ("POST", "/", 405),
        ("POST", "/nowhere", 404),
    ] {
        let mut stream = server.connect();
        let answer = blocking(move || {
            stream.write_all(&head(method, path, Some(2))).unwrap();
            stream.write_all(b"{}").unwrap();
            status_of(&mut stream)
        })
        .await;
        assert_eq!(answer, Some(want), "{method} {path}");
    }
    assert_eq!(server.stored().await, 0);
}
