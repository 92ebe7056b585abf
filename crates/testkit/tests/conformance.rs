//! The suites run against the reference implementations in this crate, so a
//! broken suite shows up here before it misleads a connector.

use std::sync::{Arc, Mutex};
use tillflow_core::Source;
use tillflow_testkit::recorder::RecorderHarness;
use tillflow_testkit::sink_suite::run_sink_suite;
use tillflow_testkit::source_suite::{pagination_reads_every_record, resume_from_checkpoint_loses_nothing};
use tillflow_testkit::{FakeSource, FakeWorld};

#[tokio::test]
async fn recorder_sink_passes_the_sink_suite() {
    run_sink_suite(&RecorderHarness).await;
}

#[tokio::test]
async fn fake_source_passes_the_source_suite() {
    let world = Arc::new(Mutex::new(FakeWorld::sample("shop", 5, 95)));
    let expected: Vec<String> = (1..=95).map(|n| n.to_string()).collect();
    let mut source = FakeSource::new(world.clone(), 10);
    pagination_reads_every_record(&mut source, "orders", &expected).await;
    let make = || Box::new(FakeSource::new(world.clone(), 10)) as Box<dyn Source>;
    resume_from_checkpoint_loses_nothing(&make, "orders", &expected, 4).await;
}
