//! Two pipelines naming one sink account share that account's rate budget:
//! together they never put more requests into any one-second window than the
//! platform's limit times `rate_share`, and a 429 answered to one pauses the
//! other. The real `tillflow` program against a Customer.io sandbox that
//! counts requests in fixed one-second windows, as Customer.io does.

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tillflow_http::sandbox::{Fault, FaultPlan};
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_source_woocommerce::sandbox::{WooSandbox, seeded_order};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
/// The workspace's documented budget in this test, and the share tillflow may use.
const BUDGET: u32 = 4;
const SHARE: f64 = 0.5;
const RETRY_AFTER: u64 = 2;

fn config(dir: &tempfile::TempDir, woo: &WooSandbox, cio: &CustomerIoSandbox) -> PathBuf {
    let shop = |name: &str| {
        format!(
            "[sources.{name}]\ntype = \"woocommerce\"\nbase_url = \"{}\"\nconsumer_key = \"ck\"\nconsumer_secret = \"cs\"\nrequests_per_second = 1000\n\n",
            woo.base_url()
        )
    };
    let text = format!(
        "{}{}[sinks.crm]\ntype = \"customerio\"\nsite_id = \"site\"\napi_key = \"key\"\nbase_url = \"{}\"\nrequests_per_second = {BUDGET}\nrate_share = {SHARE}\n\n\
         [[pipelines]]\nname = \"north-to-crm\"\nsource = \"north\"\nsink = \"crm\"\n\n\
         [[pipelines]]\nname = \"south-to-crm\"\nsource = \"south\"\nsink = \"crm\"\n",
        shop("north"),
        shop("south"),
        cio.base_url()
    );
    let path = dir.path().join("tillflow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn run_once(config: &PathBuf) {
    let mut command = Command::new(TILLFLOW);
    command.args(["run", "--once", "--config"]).arg(config).env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(
        output.status.success(),
        "run --once failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipelines_into_one_account_share_its_budget_and_its_429_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let woo = WooSandbox::start("ck", "cs").await.unwrap();
    let cio = CustomerIoSandbox::start("site", "key").await.unwrap();
    // The sandbox enforces the share of the budget tillflow may use: over
    // it, a 429 with Retry-After, counted.
    let allowed = (f64::from(BUDGET) * SHARE) as u32;
    cio.world().lock().unwrap().requests_per_second = Some(allowed);
    let config = config(&dir, &woo, &cio);

    // A first pass records when both pipelines started: what comes later is live.
    run_once(&config).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = jiff::Timestamp::now();
    let created = now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S").to_string();
    for n in 1..=250u64 {
        let mut order = seeded_order(n, 60, now);
        order["date_created_gmt"] = json!(created);
        if order["status"] == "completed" {
            order["date_completed_gmt"] = json!(created);
        }
        woo.put_order(order);
    }

    // Live batches are small: each pipeline sends several requests, both at once.
    let faults = cio.faults();
    faults.set_plan(FaultPlan { retry_after_seconds: RETRY_AFTER as u32, ..FaultPlan::none() });
    faults.record_arrivals();
    faults.inject_next(Fault::TooManyRequests, 1);
    run_once(&config).await;

    let world = cio.world();
    let world = world.lock().unwrap();
    let arrivals = faults.arrivals();
    eprintln!(
        "{} requests, {} placed, {} identify",
        arrivals.len(),
        world.events_named("Order Placed").len(),
        world.identify_operations
    );
    assert!(arrivals.len() >= 8, "both pipelines sent several requests: {}", arrivals.len());
    assert!(world.events_named("Order Placed").len() >= 400, "both pipelines delivered");
    assert_eq!(
        world.throttled, 0,
        "together the two pipelines never went over {allowed} requests in a one-second window"
    );

    // Nothing reached the account while the 429's Retry-After ran, from either pipeline.
    let (refused_at, _) = arrivals.iter().find(|(_, fault)| *fault == Some(Fault::TooManyRequests)).unwrap();
    let next = arrivals.iter().find(|(at, _)| at > refused_at).map(|(at, _)| *at).unwrap();
    let quiet = next.duration_since(*refused_at);
    assert!(
        quiet >= Duration::from_secs(RETRY_AFTER) - Duration::from_millis(20),
        "a request came {quiet:?} after the 429, inside its {RETRY_AFTER}s Retry-After"
    );
}
