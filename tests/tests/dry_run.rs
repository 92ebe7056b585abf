//! `tillflow run --once --dry-run`: derives everything a pass would and
//! sends nothing, commits nothing — the sink sandbox receives not one
//! request, the state file is neither made nor changed — and what it says
//! would be sent is what the real run then sends.

use std::collections::BTreeMap;
use tillflow_e2e::woo_cio::World;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

/// `would send  Order Placed 120, …` → {"Order Placed": 120, …}
fn would_send(output: &str) -> BTreeMap<String, u64> {
    let line = output.lines().find(|line| line.trim_start().starts_with("would send")).expect("a would-send line");
    let list = line.trim_start().trim_start_matches("would send").trim();
    if list == "none" {
        return BTreeMap::new();
    }
    list.split(", ")
        .map(|item| {
            let (name, count) = item.rsplit_once(' ').unwrap();
            (name.to_owned(), count.parse().unwrap())
        })
        .collect()
}

/// `delivered: order-placed 120, …` of a real run's summary line.
fn delivered(summary: &str) -> u64 {
    let part = summary.split("delivered: ").nth(1).unwrap().split(';').next().unwrap();
    part.split(", ").filter_map(|item| item.rsplit_once(' ')?.1.parse::<u64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_changes_nothing_and_foretells_the_real_run() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    let state = world.dir.path().join("state.db");

    let mut command = world.command(&config, &["run", "--once", "--dry-run", "--show", "2"]);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("{stdout}");
    assert!(stdout.contains("nothing was sent, and the state was not changed"), "{stdout}");
    assert_eq!(world.batch_requests(), 0, "the sink received nothing");
    assert!(world.events("Order Placed").is_empty());
    assert!(!state.exists(), "no state file was made");
    let foretold = would_send(&stdout);
    assert!(foretold.get("Order Placed").copied().unwrap_or(0) > 0, "{stdout}");
    // Two request bodies, as Customer.io's batch API takes them, secrets out.
    assert!(stdout.contains("request 1 of 2") && stdout.contains("request 2 of 2"), "{stdout}");
    assert!(stdout.contains("\"batch\""), "{stdout}");
    for secret in ["key_e2e", "cs_e2e", "whsec_e2e"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }

    // The real run sends what the dry run said it would.
    let summary = world.run_once(&config).await;
    assert_eq!(delivered(&summary), foretold.values().sum::<u64>(), "{summary}\n{stdout}");

    // Now everything was sent: a dry run says so, and leaves the file as it was.
    let before = std::fs::read(&state).unwrap();
    let requests = world.batch_requests();
    let mut command = world.command(&config, &["run", "--once", "--dry-run"]);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    assert!(would_send(&stdout).is_empty(), "{stdout}");
    assert_eq!(world.batch_requests(), requests, "nothing sent");
    assert_eq!(std::fs::read(&state).unwrap(), before, "the state file is byte for byte the same");

    // --dry-run goes with --once; --show with --dry-run.
    let alone = world.command(&config, &["run", "--dry-run"]).output().unwrap();
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--dry-run goes with --once"));
}
