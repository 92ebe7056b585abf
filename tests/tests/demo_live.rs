//! `tillflow demo --live`: after the import the run goes on, sales ring at
//! the tills of one source after another, each event is printed as it lands
//! at a sink with its latency, and Ctrl-C stops everything with exit 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tillflow_e2e::Running;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

/// A live line: "HH:MM:SS  <source> <what> → <sink> <event>  <n> ms".
fn live_event(line: &str) -> Option<(String, u128)> {
    let (before, after) = line.split_once(" → ")?;
    let latency = after.strip_suffix(" ms")?.rsplit_once("  ")?.1.parse().ok()?;
    let source = before.split_whitespace().nth(1)?.to_owned();
    Some((source, latency))
}

#[test]
fn the_live_demo_prints_sales_as_they_land_and_stops_on_ctrl_c() {
    let mut child = Running(
        Command::new(TILLFLOW)
            .args(["demo", "--live"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut output = Vec::new();
    let mut sources = std::collections::BTreeSet::new();
    let mut latencies = Vec::new();
    while sources.len() < 2 || latencies.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line =
            received.recv_timeout(left).unwrap_or_else(|_| panic!("no live lines in time:\n{}", output.join("\n")));
        let live = output.iter().any(|l: &String| l.starts_with("live:"));
        if live && let Some((source, latency)) = live_event(&line) {
            sources.insert(source);
            latencies.push(latency);
        }
        output.push(line);
    }
    let text = output.join("\n");
    // The sandboxes' credentials, the same whatever the demo's size, are never printed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world =
        runtime.block_on(tillflow_runner::demo::DemoWorld::start(tillflow_runner::demo::DemoSize { fraction: 0.01 }));
    let config = world.unwrap().config("sqlite://x.db");
    let credentials: Vec<&str> =
        ["ck_sandbox", "cs_sandbox", "whsec_sandbox", "key_sandbox", "pk_sandbox", "secret_sandbox"]
            .into_iter()
            .filter(|credential| config.contains(credential))
            .collect();
    assert!(credentials.len() >= 5, "the demo's credentials are known: {credentials:?}");
    for credential in credentials {
        assert!(!text.contains(credential), "{credential} printed:\n{text}");
    }
    assert!(text.contains("sandbox check: every count above matches"), "the import ran first:\n{text}");
    assert!(text.contains("poll_interval = \"2s\"") && text.contains("[server]"), "its config is printed:\n{text}");
    assert!(text.contains("tillflow status --config"), "the commands to try are printed:\n{text}");
    assert!(latencies.iter().all(|ms| *ms < 60_000), "sale → sink latencies {latencies:?}");

    let status = Command::new("kill").args(["-INT", &child.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "Ctrl-C stopped it within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "exit {exit:?}");
    let rest: Vec<String> = received.try_iter().collect();
    assert!(rest.iter().any(|line| line.starts_with("live: stopped")), "{}", rest.join("\n"));
}
