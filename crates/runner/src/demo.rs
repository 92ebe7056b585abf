//! `tillflow demo`: the sandboxes on loopback ports, a temporary config, one
//! real pass of every pair with embedded SQLite state, a table of what
//! happened, and a check of the sandboxes' own counts against it.

use crate::commands::{Failure, PassResult, outcome_of, pass_once};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tillflow_core::{EventKind, PassReport};
use tillflow_http::sandbox::Faults;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_lightspeed::sandbox::LightspeedSandbox;
use tillflow_source_woocommerce::sandbox::WooSandbox;

/// How big the demo's seeded shops are.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    pub woocommerce_customers: u64,
    pub woocommerce_orders: u64,
    pub lightspeed_customers: u64,
    pub lightspeed_sales: u64,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self {
            woocommerce_customers: 500,
            woocommerce_orders: 2_000,
            lightspeed_customers: 300,
            lightspeed_sales: 1_500,
        }
    }
}

/// The four sandboxes of the demo, seeded, on loopback ports.
pub struct DemoWorld {
    pub woocommerce: WooSandbox,
    pub lightspeed: LightspeedSandbox,
    pub customerio: CustomerIoSandbox,
    pub klaviyo: KlaviyoSandbox,
    pub size: DemoSize,
}

/// What the sink sandboxes hold: stored events per sink and name, profiles,
/// and the repeats they recognised by id and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub events: BTreeMap<(&'static str, String), u64>,
    pub customerio_people: usize,
    pub klaviyo_profiles: usize,
    pub repeats_ignored: u64,
}

impl Received {
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }
}

fn sandbox_error(error: std::io::Error) -> Failure {
    Failure::pipeline(format!("demo: cannot start a sandbox on a loopback port: {error}"))
}

impl DemoWorld {
    pub async fn start(size: DemoSize) -> Result<Self, Failure> {
        let woocommerce = WooSandbox::start("ck_demo", "cs_demo").await.map_err(sandbox_error)?;
        woocommerce.seed(size.woocommerce_customers, size.woocommerce_orders);
        let customerio = CustomerIoSandbox::start("site_demo", "key_demo").await.map_err(sandbox_error)?;
        let klaviyo = KlaviyoSandbox::start("pk_demo").await.map_err(sandbox_error)?;
        let lightspeed = LightspeedSandbox::start("4242", "ls_secret_demo", "rt-demo").await.map_err(sandbox_error)?;
        lightspeed.seed(size.lightspeed_customers, size.lightspeed_sales);
        Ok(Self { woocommerce, lightspeed, customerio, klaviyo, size })
    }

    /// The sandboxes' fault injectors, sources first.
    pub fn faults(&self) -> [Arc<Faults>; 4] {
        [self.woocommerce.faults(), self.lightspeed.faults(), self.customerio.faults(), self.klaviyo.faults()]
    }

    /// A config running the four pairs against these sandboxes, state at `state_url`.
    pub fn config(&self, state_url: &str) -> String {
        format!(
            r#"[state]
url = "{state_url}"

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
            woo = self.woocommerce.base_url(),
            cio = self.customerio.base_url(),
            klaviyo = self.klaviyo.base_url(),
            lightspeed = self.lightspeed.base_url(),
            lightspeed_token = self.lightspeed.token_url()
        )
    }

    pub fn received(&self) -> Received {
        let mut received = Received::default();
        {
            let world = self.customerio.world();
            let world = world.lock().expect("sandbox state");
            for event in &world.events {
                *received.events.entry(("customerio", event.name.clone())).or_default() += 1;
            }
            received.customerio_people = world.people.len();
            received.repeats_ignored += world.duplicate_events;
        }
        {
            let world = self.klaviyo.world();
            let world = world.lock().expect("sandbox state");
            for event in &world.events {
                *received.events.entry(("klaviyo", event.metric.clone())).or_default() += 1;
            }
            received.klaviyo_profiles = world.profiles.len();
            received.repeats_ignored += world.duplicate_events;
        }
        received
    }
}

pub async fn demo(show_progress: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let world = DemoWorld::start(DemoSize::default()).await?;
    let DemoSize { woocommerce_customers, woocommerce_orders, lightspeed_customers, lightspeed_sales } = world.size;
    let dir = std::env::temp_dir().join(format!("tillflow-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::pipeline(format!("demo: {}: {e}", dir.display())))?;
    let config = dir.join("tillflow.toml");
    std::fs::write(&config, world.config("sqlite://demo.db"))
        .map_err(|e| Failure::pipeline(format!("demo: {}: {e}", config.display())))?;
    println!(
        "tillflow demo: a WooCommerce shop with {woocommerce_orders} orders (Oliver POS and online) over {woocommerce_customers} customers,"
    );
    println!(
        "and a Lightspeed R-Series store with {lightspeed_sales} sales (refunds, voids, shipments) over {lightspeed_customers} customers"
    );
    println!("  Lightspeed sandbox   {}", world.lightspeed.base_url());
    println!("  WooCommerce sandbox  {}", world.woocommerce.base_url());
    println!("  Customer.io sandbox  {}", world.customerio.base_url());
    println!("  Klaviyo sandbox      {}", world.klaviyo.base_url());
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
    let received = world.received();
    let held = |sink: &'static str, name: &str| received.events.get(&(sink, name.to_owned())).copied().unwrap_or(0);
    for (kind, event) in [
        (EventKind::Placed, "Order Placed"),
        (EventKind::Completed, "Order Completed"),
        (EventKind::Canceled, "Order Cancelled"),
        (EventKind::Refunded, "Order Refunded"),
        (EventKind::Shipped, "Order Shipped"),
        (EventKind::CustomerCreated, "Customer Created"),
    ] {
        compare(format!("Customer.io {event}"), total("customerio", kind), held("customerio", event));
    }
    compare(
        "Customer.io profile updates".into(),
        total("customerio", EventKind::ProfileUpdated),
        world.customerio.world().lock().expect("sandbox state").identify_operations,
    );
    for (kind, metric) in [
        (EventKind::Placed, "Placed Order"),
        (EventKind::OrderedProduct, "Ordered Product"),
        (EventKind::Refunded, "Refunded Order"),
        (EventKind::Shipped, "Shipped Order"),
    ] {
        compare(format!("Klaviyo {metric}"), total("klaviyo", kind), held("klaviyo", metric));
    }
    compare(
        "Klaviyo profile updates".into(),
        total("klaviyo", EventKind::ProfileUpdated),
        world.klaviyo.world().lock().expect("sandbox state").profile_upserts,
    );
    compare("repeated events".into(), 0, received.repeats_ignored);
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
