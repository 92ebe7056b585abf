//! A TCP relay a test can cut: every connection through it dropped and new
//! ones refused until it is restored — what a client of a database sees
//! while the server restarts (or a network partition), without touching the
//! server other tests use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct TcpCut {
    address: SocketAddr,
    upstream: SocketAddr,
    relay: Arc<Mutex<Option<JoinSet<()>>>>,
}

impl TcpCut {
    /// Relays a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Self { address, upstream, relay: Arc::new(Mutex::new(None)) };
        cut.serve(listener);
        cut
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        *self.relay.lock().unwrap() = Some(tasks);
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        // Dropping the set aborts the accept loop (closing the port) and,
        // with it, every relayed connection.
        self.relay.lock().unwrap().take();
    }

    /// Accepts connections again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}
