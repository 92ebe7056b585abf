//! Several `tillflow run` processes on one Postgres state (a database of the
//! test's own): the demo's twelve pipelines spread over three runners, one
//! runner SIGKILLed mid-import, its pipelines resumed by the others within
//! two lease lifetimes; a runner SIGSTOPped past its leases, whose commits
//! are refused once it wakes; every sink compared with a calm run: nothing
//! lost, nothing recorded twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tillflow_e2e::soak::{SoakReport, compare};
use tillflow_e2e::{Running, free_port};
use tillflow_runner::demo::{DemoSize, DemoWorld};
use tillflow_testkit::postgres::fresh_database;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const LEASE_TTL: Duration = Duration::from_secs(3);

/// The demo's config on `state_url`, sources polled every second, this
/// runner's server on a port of its own.
fn runner_config(world: &DemoWorld, dir: &Path, state_url: &str, runner: usize) -> PathBuf {
    let text = world.continuous_config(state_url, "1s", free_port());
    let text = text.replacen("[state]\n", &format!("[state]\nlease_ttl = \"{}s\"\n", LEASE_TTL.as_secs()), 1);
    let path = dir.join(format!("runner-{runner}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start_runner(config: &Path, log: &Path) -> Child {
    Command::new(TILLFLOW)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Who holds each pipeline now, from `tillflow status --json`.
fn holders(config: &Path) -> Vec<(String, Option<String>)> {
    let output = Command::new(TILLFLOW).args(["status", "--json", "--config"]).arg(config).output().unwrap();
    assert!(output.status.success(), "status: {}", String::from_utf8_lossy(&output.stderr));
    let documents: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    documents
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["pipeline"].as_str().unwrap().to_owned(), d["lease"]["runner"].as_str().map(String::from)))
        .collect()
}

fn per_runner(holders: &[(String, Option<String>)]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (_, holder) in holders {
        *counts.entry(holder.clone().unwrap_or_else(|| "nobody".into())).or_insert(0) += 1;
    }
    counts
}

async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_share_twelve_pipelines_and_survive_a_sigkill() {
    let Some(state_url) = fresh_database("runners").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let size = DemoSize { fraction: 0.1 };
    let world = DemoWorld::start(size).await.unwrap();
    let configs: Vec<PathBuf> = (0..3).map(|n| runner_config(&world, dir.path(), &state_url, n)).collect();
    let logs: Vec<PathBuf> = (0..3).map(|n| dir.path().join(format!("runner-{n}.log"))).collect();
    let mut runners: Vec<Running> =
        configs.iter().zip(&logs).map(|(config, log)| Running(start_runner(config, log))).collect();

    // The twelve pipelines spread: four each, once all three have joined.
    let spread = std::cell::RefCell::new(Vec::new());
    wait_for(Duration::from_secs(60), "the pipelines spread over three runners", || {
        *spread.borrow_mut() = holders(&configs[0]);
        let counts = per_runner(&spread.borrow());
        counts.len() == 3 && counts.values().all(|n| *n == 4) && !counts.contains_key("nobody")
    })
    .await;
    let spread = spread.into_inner();
    assert_eq!(spread.len(), 12);

    // SIGKILL one runner mid-import: its pipelines go to the others.
    let victim_pid = runners[1].0.id();
    let victim = spread.iter().filter_map(|(_, h)| h.clone()).find(|h| h.contains(&format!("-{victim_pid}-")));
    let victim = victim.expect("the killed runner held pipelines");
    let orphans: Vec<String> =
        spread.iter().filter(|(_, h)| h.as_deref() == Some(victim.as_str())).map(|(p, _)| p.clone()).collect();
    runners[1].0.kill().unwrap();
    runners[1].0.wait().unwrap();
    let failover = wait_for(2 * LEASE_TTL + Duration::from_secs(5), "the orphaned pipelines taken over", || {
        let now = holders(&configs[0]);
        orphans
            .iter()
            .all(|orphan| now.iter().any(|(p, h)| p == orphan && h.as_deref().is_some_and(|h| h != victim.as_str())))
    })
    .await;
    eprintln!("{} pipelines of the killed runner taken over {failover:?} after the kill", orphans.len());
    assert!(failover <= 2 * LEASE_TTL, "taken over within two lease lifetimes, not {failover:?}");

    // Every sink ends as a calm single run leaves its own sandboxes.
    let report = sinks_end_as_a_calm_run(&world, size, dir.path(), "the two runners left to finish the import").await;
    assert!(report.events_expected > 100, "{report}");
    assert_eq!((report.missing, report.recorded_twice), (0, 0), "{report}");
    let logs: Vec<String> = logs.iter().map(|log| std::fs::read_to_string(log).unwrap()).collect();
    let taken: usize = logs.iter().map(|log| log.matches("lease taken").count()).sum();
    assert!(taken >= 12 + orphans.len(), "every pipeline taken, the orphans again: {taken} takes logged");
    for (index, log) in logs.iter().enumerate().filter(|(index, _)| *index != 1) {
        let splits: Vec<&str> =
            log.lines().filter(|line| line.contains("rate budget split among the live runners")).collect();
        for runners in ["runners=3", "runners=2"] {
            assert!(splits.iter().any(|line| line.ends_with(runners)), "runner {index}: {runners} in {splits:?}");
        }
    }
}

/// Waits (saying `what`) until every sink of `world` holds what a calm single
/// run leaves in a world of its own; what it found.
async fn sinks_end_as_a_calm_run(world: &DemoWorld, size: DemoSize, dir: &Path, what: &str) -> SoakReport {
    let expected = calm_expectation(size, dir).await;
    let mut report = SoakReport::default();
    wait_for(Duration::from_secs(240), what, || {
        report = SoakReport::default();
        compare(&mut report, &expected, &world.received());
        report.differences.is_empty()
    })
    .await;
    eprintln!("{report}");
    report
}

/// The calm expectation for a world of `size`: a single `run --once`.
async fn calm_expectation(size: DemoSize, dir: &Path) -> tillflow_runner::demo::Received {
    let calm = DemoWorld::start(size).await.unwrap();
    let config = dir.join("calm.toml");
    std::fs::write(&config, calm.config("sqlite://calm.db")).unwrap();
    let status = Command::new(TILLFLOW).args(["run", "--once", "--config"]).arg(&config).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    calm.received()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_paused_past_its_leases_cannot_commit_when_it_wakes() {
    let Some(state_url) = fresh_database("paused").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let size = DemoSize { fraction: 0.05 };
    let world = DemoWorld::start(size).await.unwrap();
    // Slow answers: the first runner is surely mid-pass when it is stopped.
    let slow = tillflow_http::sandbox::FaultPlan::parse("slow=1,slow-ms=150").unwrap();
    for faults in world.faults() {
        faults.set_plan(slow.clone());
    }
    let configs: Vec<PathBuf> = (0..2).map(|n| runner_config(&world, dir.path(), &state_url, n)).collect();
    let logs: Vec<PathBuf> = (0..2).map(|n| dir.path().join(format!("runner-{n}.log"))).collect();
    let paused = Running(start_runner(&configs[0], &logs[0]));
    wait_for(Duration::from_secs(60), "the first runner holding all twelve and delivering", || {
        !per_runner(&holders(&configs[0])).contains_key("nobody") && world.received().total_events() > 0
    })
    .await;
    signal(&paused.0, "STOP");

    // Past its leases, a second runner takes every pipeline over.
    let _second = Running(start_runner(&configs[1], &logs[1]));
    let first = holders(&configs[0])[0].1.clone().unwrap();
    wait_for(3 * LEASE_TTL + Duration::from_secs(10), "the second runner holding all twelve", || {
        holders(&configs[0]).iter().all(|(_, holder)| holder.as_deref().is_some_and(|h| h != first))
    })
    .await;
    for faults in world.faults() {
        faults.set_plan(tillflow_http::sandbox::FaultPlan::default());
    }
    signal(&paused.0, "CONT");

    let report = sinks_end_as_a_calm_run(&world, size, dir.path(), "both runners to finish the import").await;
    assert_eq!((report.missing, report.recorded_twice), (0, 0), "{report}");
    // Woken mid-pass, its commit is refused by the token ("has moved on"),
    // or, when its lease round ran first and found the leases gone, because
    // it no longer holds them.
    let woken = std::fs::read_to_string(&logs[0]).unwrap();
    let refused = woken.lines().filter(|line| line.contains("has moved on") || line.contains("holds no lease")).count();
    assert!(refused > 0, "the woken runner's commit was refused: {woken}");
    assert!(woken.contains("lease lost") || woken.contains("lets the pipeline go"), "{woken}");
}

/// Postgres going away mid-run — every connection dropped, new ones refused
/// for longer than a lease and than a connection is waited for — and coming
/// back: the runners reconnect, take the
/// pipelines again and finish, nothing lost and nothing recorded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_ride_out_postgres_going_away_and_coming_back() {
    let Some(direct) = fresh_database("outage").await else { return };
    let mut url = tillflow_http::reqwest::Url::parse(&direct).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = tillflow_e2e::tcp_cut::TcpCut::start(upstream.parse().unwrap()).await;
    url.set_port(Some(relay.address().port())).unwrap();
    let through_relay = url.to_string();

    let dir = tempfile::tempdir().unwrap();
    let size = DemoSize { fraction: 0.05 };
    let world = DemoWorld::start(size).await.unwrap();
    let slow = tillflow_http::sandbox::FaultPlan::parse("slow=1,slow-ms=40").unwrap();
    for faults in world.faults() {
        faults.set_plan(slow.clone());
    }
    let configs: Vec<PathBuf> = (0..2).map(|n| runner_config(&world, dir.path(), &through_relay, n)).collect();
    let logs: Vec<PathBuf> = (0..2).map(|n| dir.path().join(format!("runner-{n}.log"))).collect();
    let _runners: Vec<Running> =
        configs.iter().zip(&logs).map(|(config, log)| Running(start_runner(config, log))).collect();
    wait_for(Duration::from_secs(60), "the pipelines spread over two runners", || {
        let counts = per_runner(&holders(&configs[0]));
        counts.len() == 2 && counts.values().all(|n| *n == 6)
    })
    .await;

    // Longer than a lease, and than the store's 10 s wait for a connection:
    // writes and lease rounds fail, not only wait.
    relay.cut();
    tokio::time::sleep(Duration::from_secs(12)).await;
    relay.restore().await;
    for faults in world.faults() {
        faults.set_plan(tillflow_http::sandbox::FaultPlan::default());
    }

    let report = sinks_end_as_a_calm_run(&world, size, dir.path(), "the runners to finish after the outage").await;
    assert_eq!((report.missing, report.recorded_twice), (0, 0), "{report}");
    for log in &logs {
        let log = std::fs::read_to_string(log).unwrap();
        assert!(log.contains("lease round failed"), "the runner met the outage: {log}");
    }
    assert!(!per_runner(&holders(&configs[0])).contains_key("nobody"), "every pipeline held again");
}

/// Two runners sharing a Lightspeed account (rotating refresh tokens, each
/// good once) refresh at the same moments, again and again: each waits for
/// the other's refresh and uses the token it stored, so none is burned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_refreshing_one_rotating_token_never_burn_it() {
    use tillflow_kit::auth::{TokenEncoding, TokenManager, TokenPlatform};
    let Some(url) = fresh_database("tokens").await else { return };
    let sandbox = tillflow_source_lightspeed::sandbox::LightspeedSandbox::start("4242", "ls-secret", "ls-refresh-0")
        .await
        .unwrap();
    let platform = TokenPlatform { platform: "lightspeed", title: "Lightspeed", encoding: TokenEncoding::Json };
    let mut managers = Vec::new();
    for runner in ["a", "b"] {
        // Each its own connections, as two processes have.
        let store = tillflow_state_postgres::PgStore::open(&url).await.unwrap().for_runner(runner);
        managers.push(TokenManager::new(
            platform,
            tillflow_http::HttpClient::new(tillflow_http::HttpConfig::new("lightspeed")),
            sandbox.token_url(),
            "tillflow".into(),
            tillflow_http::SecretString::from("ls-secret"),
            tillflow_http::SecretString::from("ls-refresh-0"),
            std::sync::Arc::new(store),
            "store",
        ));
    }
    for round in 0..8 {
        let (a, b) = tokio::join!(managers[0].access_token(), managers[1].access_token());
        assert!(a.is_ok() && b.is_ok(), "round {round}: {:?} / {:?}", a.err(), b.err());
        for manager in &managers {
            manager.invalidate().await;
        }
    }
}
