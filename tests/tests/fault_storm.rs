//! The demo's four pipelines against sandboxes that fail on purpose (429
//! storms with Retry-After, 5xx, slow answers, connections dropped before the
//! request is applied and after it, with the answer lost), the process
//! SIGKILLed mid-import and restarted: every event is stored exactly once —
//! the same events, as many of each, as a run without faults stores.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tillflow_http::sandbox::{Fault, FaultCounts, FaultPlan};
use tillflow_runner::demo::{DemoSize, DemoWorld};
use tokio::process::Command;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

/// Three tenths of the demo's stores: 600 WooCommerce orders, 450 Lightspeed sales.
const SIZE: DemoSize = DemoSize { fraction: 0.3 };

/// A `run --once` whose errors go to `log` (shown when a run fails).
fn run_once(config: &Path, log: &Path) -> Command {
    let mut command = Command::new(TILLFLOW);
    command
        .args(["run", "--once", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true);
    command
}

/// The end of a run's error log, for a failure message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn write_config(world: &DemoWorld, dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, world.config(&format!("sqlite://{name}.db"))).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly_once_through_a_fault_storm_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();

    // The reference: the same seeded shops, nothing failing.
    let calm = DemoWorld::start(SIZE).await.unwrap();
    let log = dir.path().join("calm.log");
    let status = run_once(&write_config(&calm, dir.path(), "calm"), &log).status().await.unwrap();
    assert!(status.success(), "the run without faults failed: {status}\n{}", tail(&log));
    let reference = calm.received();
    assert!(reference.total_events() > 1_000, "{reference:?}");
    assert_eq!(reference.repeats_ignored, 0);

    let stormy = DemoWorld::start(SIZE).await.unwrap();
    let plan = FaultPlan::parse("429=0.02,storm=3,5xx=0.06,drop=0.03,lost=0.03,slow=0.03,slow-ms=40").unwrap();
    for (seed, faults) in stormy.faults().iter().enumerate() {
        faults.set_plan(FaultPlan { seed: seed as u64 + 11, ..plan.clone() });
        // The sinks see few requests (bulk batches): each also meets these
        // first, whatever the dice say.
        faults.inject_next(Fault::LostAnswer, 1);
        faults.inject_next(Fault::TooManyRequests, 2);
    }
    let config = write_config(&stormy, dir.path(), "stormy");

    // Killed (SIGKILL) once a third of the events have arrived.
    let log = dir.path().join("stormy.log");
    let mut first = run_once(&config, &log).spawn().unwrap();
    let kill_point = reference.total_events() / 3;
    loop {
        if stormy.received().total_events() >= kill_point {
            break;
        }
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first run ended ({status}) before a third of the events had arrived\n{}", tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let at_kill = stormy.received().total_events();
    assert!(at_kill < reference.total_events(), "the kill came after the import had finished");

    for faults in stormy.faults() {
        faults.inject_next(Fault::Dropped, 1);
        faults.inject_next(Fault::ServerError(503), 1);
        faults.inject_next(Fault::LostAnswer, 1);
    }

    // Restarted until a run completes: a pass may stop early when a platform
    // keeps failing past the retries, and the next one resumes.
    let mut runs = 0;
    loop {
        runs += 1;
        let status = run_once(&config, &log).status().await.unwrap();
        if status.success() {
            break;
        }
        assert!(runs < 8, "no run completed in {runs} attempts (last: {status})\n{}", tail(&log));
    }

    let received = stormy.received();
    assert_eq!(received.events, reference.events, "every event exactly once, as many of each as without faults");
    assert_eq!(received.people, reference.people, "as many people and profiles in every sink");

    // The storm really happened, on every platform.
    let mut injected = FaultCounts::default();
    for faults in stormy.faults() {
        let counts = faults.counts();
        assert!(counts.total() > 0, "a sandbox injected no fault: {counts:?}");
        injected.too_many_requests += counts.too_many_requests;
        injected.server_errors += counts.server_errors;
        injected.slow += counts.slow;
        injected.dropped_connections += counts.dropped_connections;
        injected.lost_answers += counts.lost_answers;
    }
    assert!(
        injected.too_many_requests > 0
            && injected.server_errors > 0
            && injected.dropped_connections > 0
            && injected.lost_answers > 0
            && injected.slow > 0,
        "{injected:?}"
    );
    eprintln!(
        "killed at {at_kill} of {} events; {runs} more run(s); faults {injected:?}; repeats the platforms ignored by id: {}",
        reference.total_events(),
        received.repeats_ignored
    );
}
