//! The server's accept loop: HTTP/1 connections with a header read timeout
//! (an idle or trickling client loses its connection), and a cap on open
//! connections kept below the process's open-file limit. At the cap, the
//! oldest connection with no request in progress is closed to make room, so
//! a flood of idle connections can never keep a platform's webhook out.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// File descriptors kept for everything but server connections: the state
/// file, the platforms' HTTP clients, logs.
const RESERVED_DESCRIPTORS: usize = 128;

/// The connection cap for a process whose open-file limit is `open_files`.
pub fn connection_cap(open_files: Option<usize>, configured: Option<usize>) -> usize {
    let ceiling =
        open_files.map_or(usize::MAX, |limit| limit.saturating_sub(RESERVED_DESCRIPTORS.max(limit / 8)).max(4));
    match configured {
        Some(configured) if configured > ceiling => {
            tracing::warn!(
                configured,
                ceiling,
                "server.max_connections is above what the open-file limit allows; using the lower figure"
            );
            ceiling
        }
        Some(configured) => configured,
        None => ceiling.min(4096),
    }
}

/// The soft `Max open files` limit of this process, from `/proc/self/limits`.
pub fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One open connection, as the accept loop sees it.
struct Open {
    /// Requests being handled on it now.
    in_request: Arc<AtomicUsize>,
    /// Closes it when notified.
    close: Arc<Notify>,
}

#[derive(Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Open>>,
    /// Notified when a connection ends.
    ended: Notify,
}

impl Connections {
    fn count(&self) -> usize {
        self.open.lock().expect("connections").len()
    }

    /// Closes the oldest connection not handling a request; false if every
    /// one is busy.
    fn evict_oldest_idle(&self) -> bool {
        let open = self.open.lock().expect("connections");
        match open.values().find(|connection| connection.in_request.load(Ordering::SeqCst) == 0) {
            Some(idle) => {
                idle.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cap: usize,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Connections::default());
    let mut next_id = 0u64;
    loop {
        // At the cap: make room by closing an idle connection, or wait for one
        // to end; new clients wait in the kernel's backlog meanwhile.
        while connections.count() >= cap {
            let ended = connections.ended.notified();
            tokio::pin!(ended);
            // Registered before evicting, so the end it causes is not missed.
            ended.as_mut().enable();
            if !connections.evict_oldest_idle() {
                tracing::debug!(cap, "connection cap reached with every connection busy");
            }
            tokio::select! {
                _ = ended => {}
                _ = stopped(&mut shutdown) => return,
            }
        }
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a transient error: the backlog
                    // keeps the client; try again shortly.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        next_id += 1;
        let id = next_id;
        let in_request = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        connections
            .open
            .lock()
            .expect("connections")
            .insert(id, Open { in_request: in_request.clone(), close: close.clone() });
        let router = router.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let router = router.clone();
                let in_request = in_request.clone();
                in_request.fetch_add(1, Ordering::SeqCst);
                async move {
                    let response = router.oneshot(request.map(axum::body::Body::new)).await;
                    in_request.fetch_sub(1, Ordering::SeqCst);
                    response
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended");
                    }
                }
                // Dropping the connection closes the socket.
                _ = close.notified() => tracing::debug!("idle connection closed to make room"),
            }
            connections.open.lock().expect("connections").remove(&id);
            connections.ended.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(Some(1024), None), 896, "systemd's default limit keeps 128 descriptors");
        assert_eq!(connection_cap(Some(20_000), None), 4096, "a high limit is not an invitation");
        assert_eq!(connection_cap(Some(1024), Some(5000)), 896, "the configured figure cannot pass the limit");
        assert_eq!(connection_cap(Some(1024), Some(64)), 64);
        assert_eq!(connection_cap(None, None), 4096);
    }
}
