//! `tillflow demo`: the sandboxes on loopback ports, a temporary config, one
//! real pass of every pair with embedded SQLite state, a table of what
//! happened, and a check of the sandboxes' own counts against it.

use crate::commands::{Failure, PassResult, outcome_of, pass_once};
use std::time::Instant;
use tillflow_core::{EventKind, PassReport};
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_lightspeed::sandbox::LightspeedSandbox;
use tillflow_source_woocommerce::sandbox::WooSandbox;

const CUSTOMERS: u64 = 500;
const ORDERS: u64 = 2_000;
const LIGHTSPEED_CUSTOMERS: u64 = 300;
const SALES: u64 = 1_500;

fn sandbox_error(error: std::io::Error) -> Failure {
    Failure::pipeline(format!("demo: cannot start a sandbox on a loopback port: {error}"))
}

pub async fn demo(show_progress: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let woo = WooSandbox::start("ck_demo", "cs_demo").await.map_err(sandbox_error)?;
    woo.seed(CUSTOMERS, ORDERS);
    let cio = CustomerIoSandbox::start("site_demo", "key_demo").await.map_err(sandbox_error)?;
    let klaviyo = KlaviyoSandbox::start("pk_demo").await.map_err(sandbox_error)?;
    let lightspeed = LightspeedSandbox::start("4242", "ls_secret_demo", "rt-demo").await.map_err(sandbox_error)?;
    lightspeed.seed(LIGHTSPEED_CUSTOMERS, SALES);
    let dir = std::env::temp_dir().join(format!("tillflow-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::pipeline(format!("demo: {}: {e}", dir.display())))?;
    let config = dir.join("tillflow.toml");
    let text = format!(
        r#"[state]
url = "sqlite://demo.db"

[sources.woocommerce]
type = "woocommerce"
base_url = "{woo}"
consumer_key = "ck_demo"
consumer_secret = "cs_demo"
requests_per_second = 500

[sources.lightspeed]
type = "lightspeed"
account_id = "4242"
client_id = "demo"
client_secret = "ls_secret_demo"
refresh_token = "rt-demo"
base_url = "{lightspeed}"
token_url = "{lightspeed_token}"

[sinks.customerio]
type = "customerio"
site_id = "site_demo"
api_key = "key_demo"
requests_per_second = 1000
base_url = "{cio}"

[sinks.klaviyo]
type = "klaviyo"
api_key = "pk_demo"
base_url = "{klaviyo}"

[[pipelines]]
name = "woocommerce-to-customerio"
source = "woocommerce"
sink = "customerio"

[[pipelines]]
name = "woocommerce-to-klaviyo"
source = "woocommerce"
sink = "klaviyo"

[[pipelines]]
name = "lightspeed-to-klaviyo"
source = "lightspeed"
sink = "klaviyo"

[[pipelines]]
name = "lightspeed-to-customerio"
source = "lightspeed"
sink = "customerio"
"#,
        woo = woo.base_url(),
        cio = cio.base_url(),
        klaviyo = klaviyo.base_url(),
        lightspeed = lightspeed.base_url(),
        lightspeed_token = lightspeed.token_url()
    );
    std::fs::write(&config, text).map_err(|e| Failure::pipeline(format!("demo: {}: {e}", config.display())))?;
    println!(
        "tillflow demo: a WooCommerce shop with {ORDERS} orders (Oliver POS and online) over {CUSTOMERS} customers,"
    );
    println!(
        "and a Lightspeed R-Series store with {SALES} sales (refunds, voids, shipments) over {LIGHTSPEED_CUSTOMERS} customers"
    );
    println!("  Lightspeed sandbox   {}", lightspeed.base_url());
    println!("  WooCommerce sandbox  {}", woo.base_url());
    println!("  Customer.io sandbox  {}", cio.base_url());
    println!("  Klaviyo sandbox      {}", klaviyo.base_url());
    println!("  state                {}", dir.join("demo.db").display());
    println!();
    let results = pass_once(&config, None, show_progress).await;
    let _ = std::fs::remove_dir_all(&dir);
    let results = results?;
    print_table(&results);

    // Pipelines sharing a sink are summed: the sandbox sees them together.
    let mut mismatches = Vec::new();
    let total = |suffix: &str, kind: EventKind| -> u64 {
        results
            .iter()
            .filter(|(name, _)| name.ends_with(suffix))
            .filter_map(|(_, result)| result.as_ref().ok())
            .map(|report| report.delivered.get(&kind).copied().unwrap_or(0))
            .sum()
    };
    let mut compare = |what: String, reported: u64, received: u64| {
        if reported != received {
            mismatches.push(format!("reported {reported} {what}, the sandbox holds {received}"));
        }
    };
    {
        let world = cio.world();
        let world = world.lock().expect("sandbox state");
        for (kind, event) in [
            (EventKind::Placed, "Order Placed"),
            (EventKind::Completed, "Order Completed"),
            (EventKind::Canceled, "Order Cancelled"),
            (EventKind::Refunded, "Order Refunded"),
            (EventKind::Shipped, "Order Shipped"),
            (EventKind::CustomerCreated, "Customer Created"),
        ] {
            compare(format!("Customer.io {event}"), total("customerio", kind), world.events_named(event).len() as u64);
        }
        compare(
            "Customer.io profile updates".into(),
            total("customerio", EventKind::ProfileUpdated),
            world.identify_operations,
        );
        compare("Customer.io duplicate events".into(), 0, world.duplicate_events);
    }
    {
        let world = klaviyo.world();
        let world = world.lock().expect("sandbox state");
        for (kind, metric) in [
            (EventKind::Placed, "Placed Order"),
            (EventKind::OrderedProduct, "Ordered Product"),
            (EventKind::Refunded, "Refunded Order"),
            (EventKind::Shipped, "Shipped Order"),
        ] {
            compare(format!("Klaviyo {metric}"), total("klaviyo", kind), world.events_named(metric).len() as u64);
        }
        compare("Klaviyo profile updates".into(), total("klaviyo", EventKind::ProfileUpdated), world.profile_upserts);
        compare("Klaviyo duplicate events".into(), 0, world.duplicate_events);
    }
    println!();
    if mismatches.is_empty() {
        println!(
            "sandbox check: every count above matches what the sandboxes received ({:.1}s in all)",
            started.elapsed().as_secs_f64()
        );
    } else {
        for mismatch in &mismatches {
            println!("MISMATCH {mismatch}");
        }
        return Err(Failure::pipeline(format!("demo: {} count(s) do not match the sandboxes", mismatches.len())));
    }
    outcome_of(&results)
}

fn counts(report: &PassReport) -> (String, u64, String) {
    let events: Vec<String> = report
        .delivered
        .iter()
        .filter(|(kind, _)| **kind != EventKind::ProfileUpdated)
        .map(|(kind, n)| format!("{} {n}", kind.as_str()))
        .collect();
    let profiles = report.delivered.get(&EventKind::ProfileUpdated).copied().unwrap_or(0);
    let skipped: Vec<String> = report.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    (
        if events.is_empty() { "-".into() } else { events.join(", ") },
        profiles,
        if skipped.is_empty() { "-".into() } else { skipped.join(", ") },
    )
}

fn print_table(results: &[PassResult]) {
    println!(
        "{:<28} {:>8}  {:<58} {:>8}  {:<34} {:>5}  {:>7}",
        "pipeline", "read", "events delivered", "profiles", "skipped", "dead", "elapsed"
    );
    for (name, result) in results {
        match result {
            Ok(report) => {
                let (events, profiles, skipped) = counts(report);
                println!(
                    "{:<28} {:>8}  {:<58} {:>8}  {:<34} {:>5}  {:>6.1}s",
                    name,
                    report.records_read,
                    events,
                    profiles,
                    skipped,
                    report.dead_lettered,
                    report.elapsed.as_secs_f64()
                );
            }
            Err(error) => println!("{name:<28} FAILED: {error}"),
        }
    }
}
