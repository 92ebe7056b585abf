//! End-to-end tests across crates. The helper binary `crash-child` runs one
//! real pipeline (fake source → recorder sink over HTTP, SQLite state) so
//! tests can SIGKILL it at exact failpoints and restart it.
//!
//! The helpers below are shared by the tests that start a continuous
//! `tillflow run`: a free port for its server, the process killed when the
//! test ends, and waiting for what it should do.

use std::time::{Duration, Instant};

pub mod cost_bench;
pub mod fuzz;
pub mod fuzz_live;
pub mod runner_bench;
pub mod soak;
pub mod state_statements;
pub mod state_worker;
pub mod tcp_cut;
pub mod woo_cio;

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `condition`, checking every 20 ms, failing after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A process a test started, killed when the test ends however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}
