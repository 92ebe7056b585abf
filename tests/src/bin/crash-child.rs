//! Runs one pass of a pipeline over a deterministic fake world into the
//! recorder sink, with SQLite state; honours `TILLFLOW_FAILPOINT`.
//! Usage: crash-child <state-file> <recorder-base-url> <orders>

use std::sync::{Arc, Mutex};
use tillflow_core::failpoint::Failpoint;
use tillflow_core::{Pipeline, PipelineOptions, Rules};
use tillflow_state_sqlite::SqliteStore;
use tillflow_testkit::recorder::RecorderSink;
use tillflow_testkit::{FakeSource, FakeWorld};

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, state_path, base_url, orders] = arguments.as_slice() else {
        eprintln!("usage: crash-child <state-file> <recorder-base-url> <orders>");
        std::process::exit(2);
    };
    let orders: u64 = orders.parse().expect("orders is a number");
    let failpoint = match std::env::var("TILLFLOW_FAILPOINT") {
        Ok(spec) => Failpoint::parse(&spec).expect("valid failpoint"),
        Err(_) => Failpoint::disarmed(),
    };
    let store = SqliteStore::open(std::path::Path::new(state_path)).await.expect("state opens");
    let world = Arc::new(Mutex::new(FakeWorld::sample("shop", 10, orders)));
    let mut pipeline = Pipeline::new(
        "crash",
        "shop",
        Box::new(FakeSource::new(world, 10)),
        Box::new(RecorderSink::new(base_url, "test-token", 7)),
        Arc::new(store),
        Rules::default(),
        PipelineOptions { failpoint: Arc::new(failpoint), ..PipelineOptions::default() },
    );
    match pipeline.run_pass().await {
        Ok(report) => println!("delivered {}", report.delivered_total()),
        Err(error) => {
            eprintln!("pass failed: {error}");
            std::process::exit(1);
        }
    }
}
