//! The kill soak: the demo's pipelines run continuously against sandboxes
//! that fail on purpose while sales keep ringing at every till (each posted
//! as a signed webhook too where the platform posts one), and the
//! process is SIGKILLed at random moments and restarted, cycle after cycle.
//! At the end every sink is compared with what a calm world given the same
//! sales stores: nothing may be missing and nothing recorded twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tillflow_http::sandbox::FaultPlan;
use tillflow_runner::demo::{DemoSize, DemoWorld, Received};
use tokio::process::Command;

/// What a soak did and found.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub cycles: u32,
    pub kills: u32,
    pub sales_rung: u64,
    /// Signed webhook deliveries the running process answered 2xx (a
    /// delivery that met a killed process is left to the next poll, as a
    /// platform's retry would be).
    pub webhooks_stored: u64,
    pub events_expected: u64,
    pub events_recorded: u64,
    pub recorded_twice: u64,
    pub missing: u64,
    /// Repeats the platforms recognised by their id and ignored (harmless).
    pub repeats_ignored: u64,
    /// (sink, event) pairs whose counts differ, for the message.
    pub differences: Vec<String>,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "cycles             {}", self.cycles)?;
        writeln!(f, "kills              {}", self.kills)?;
        writeln!(f, "sales rung         {}", self.sales_rung)?;
        writeln!(f, "webhooks stored    {}", self.webhooks_stored)?;
        writeln!(f, "events expected    {}", self.events_expected)?;
        writeln!(f, "events recorded    {}", self.events_recorded)?;
        writeln!(f, "recorded twice     {}", self.recorded_twice)?;
        writeln!(f, "missing            {}", self.missing)?;
        write!(f, "repeats the platforms ignored by id: {}", self.repeats_ignored)?;
        for difference in &self.differences {
            write!(f, "\n  {difference}")?;
        }
        Ok(())
    }
}

/// The demo config at `state`, every source polled every second, its server
/// on a free port (returned).
fn config(world: &DemoWorld, dir: &Path, name: &str) -> (std::path::PathBuf, u16) {
    let port = crate::free_port();
    let text = world.continuous_config(&format!("sqlite://{name}.db"), "1s", port);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    (path, port)
}

fn tillflow(program: &Path, config: &Path, once: bool) -> Command {
    let mut command = Command::new(program);
    command.arg("run");
    if once {
        command.arg("--once");
    }
    command
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `--once` until a pass completes (a platform may stay failing past a
/// pass's retries; the next resumes).
async fn settle(program: &Path, config: &Path) {
    for _ in 0..8 {
        if tillflow(program, config, true).status().await.unwrap().success() {
            return;
        }
    }
    panic!("no run completed in 8 attempts");
}

/// Soaks `cycles` kill-and-restart cycles of the demo at `size`; `seed`
/// picks the kill moments and the faults.
pub async fn soak(program: &Path, cycles: u32, size: DemoSize, seed: u64) -> SoakReport {
    let dir = tempfile::tempdir().unwrap();
    let mut random = fastrand::Rng::with_seed(seed);
    let stormy = DemoWorld::start(size).await.unwrap();
    let plan = FaultPlan::parse("429=0.02,storm=3,5xx=0.04,drop=0.02,lost=0.02,slow=0.02,slow-ms=30").unwrap();
    for (index, faults) in stormy.faults().iter().enumerate() {
        faults.set_plan(FaultPlan { seed: seed + index as u64, ..plan.clone() });
    }
    let (stormy_config, port) = config(&stormy, dir.path(), "stormy");
    let http = tillflow_http::reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let mut report = SoakReport { cycles, ..SoakReport::default() };
    let mut next_sale = 0u64;
    for _ in 0..cycles {
        let mut child = tillflow(program, &stormy_config, false).spawn().unwrap();
        // A random moment: at start-up, mid-import, mid-delivery, idle.
        let life = Duration::from_millis(random.u64(30..1500));
        let started = Instant::now();
        while started.elapsed() < life {
            if random.u8(0..4) == 0 {
                next_sale += 1;
                stormy.ring_sales(next_sale);
                for (source, delivery) in stormy.sale_webhooks(next_sale) {
                    let mut request =
                        http.post(format!("http://127.0.0.1:{port}/webhooks/{source}")).body(delivery.body);
                    for (name, value) in delivery.headers {
                        request = request.header(name, value);
                    }
                    if request.send().await.is_ok_and(|answer| answer.status().is_success()) {
                        report.webhooks_stored += 1;
                    }
                }
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap();
            report.kills += 1;
        }
        child.wait().await.unwrap();
    }
    report.sales_rung = next_sale;

    // Calm again: what was committed resumes, what was not is sent now.
    for faults in stormy.faults() {
        faults.set_plan(FaultPlan::default());
    }
    settle(program, &stormy_config).await;
    let recorded = stormy.received();

    let calm = DemoWorld::start(size).await.unwrap();
    for n in 1..=next_sale {
        calm.ring_sales(n);
    }
    settle(program, &config(&calm, dir.path(), "calm").0).await;
    compare(&mut report, &calm.received(), &recorded);
    report
}

/// Counts what `recorded` has missing or twice against `expected`, into `report`.
pub fn compare(report: &mut SoakReport, expected: &Received, recorded: &Received) {
    report.events_expected = expected.total_events();
    report.events_recorded = recorded.total_events();
    report.repeats_ignored = recorded.repeats_ignored;
    let keys: BTreeSet<_> = expected.events.keys().chain(recorded.events.keys()).collect();
    for key in keys {
        let want = expected.events.get(key).copied().unwrap_or(0);
        let got = recorded.events.get(key).copied().unwrap_or(0);
        report.recorded_twice += got.saturating_sub(want);
        report.missing += want.saturating_sub(got);
        if want != got {
            report.differences.push(format!("{} {}: expected {want}, recorded {got}", key.0, key.1));
        }
    }
    for (sink, want) in &expected.people {
        let got = recorded.people.get(sink).copied().unwrap_or(0);
        if *want != got {
            report.differences.push(format!("{sink} people: expected {want}, recorded {got}"));
        }
    }
}
