//! `tillflow demo --live`: after the demo's history import the sandboxes
//! stay up and a continuous `tillflow run` goes on over them, while a sale
//! rings at a till every few seconds, one source after another (posted as a
//! webhook too where the platform posts one). Each event is printed as it
//! lands at a sink, with the time from the sale to the sink's answer. Ctrl-C
//! stops the run, the ringing and the sandboxes.

use crate::commands::run_observed;
use crate::config::Config;
use crate::demo::{DemoWorld, import};
use crate::exit::Failure;
use crate::registry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::Progress;
use tillflow_core::events::{Event, Subject};
use tillflow_core::model::Channel;

/// Time between two sales.
const RING_EVERY: Duration = Duration::from_secs(3);

/// What a live line says of a pipeline: its source's and sink's titles, and
/// the sink's type (whose names the events go by).
struct PipelineTitles {
    source: &'static str,
    sink: &'static str,
    sink_type: &'static str,
}

/// Prints each event the sinks acknowledge after the history (live events).
struct LivePrinter {
    pipelines: HashMap<String, PipelineTitles>,
}

impl LivePrinter {
    fn new(config: &Config) -> Self {
        let mut pipelines = HashMap::new();
        for spec in &config.pipelines {
            let source = config.sources.get(&spec.source).and_then(|t| registry::source(&t.type_name));
            let sink = config.sinks.get(&spec.sink).and_then(|t| registry::sink(&t.type_name));
            if let (Some(source), Some(sink)) = (source, sink) {
                let titles = PipelineTitles { source: source.title, sink: sink.title, sink_type: sink.type_name };
                pipelines.insert(spec.name.clone(), titles);
            }
        }
        Self { pipelines }
    }
}

/// What an event is about, as a person reads it ("order 9000001 (at a till)").
fn about(subject: &Subject) -> String {
    let order = |order: &tillflow_core::model::Order| {
        let number = order.number.clone().unwrap_or_else(|| order.identity.id.clone());
        let till = if order.channel == Channel::InStore { " (at a till)" } else { "" };
        format!("order {number}{till}")
    };
    match subject {
        Subject::Order { order: o } => order(o),
        Subject::OrderLine { order: o, line } => {
            format!("{}, line {}", order(o), o.lines.get(*line).map_or("?", |l| l.name.as_str()))
        }
        Subject::Refund { refund } => format!("refund {} of order {}", refund.identity.id, refund.order_id),
        Subject::Shipment { shipment } => format!("shipment of order {}", shipment.order_id),
        Subject::Customer { customer } => format!("customer {}", customer.identity.id),
        Subject::PersonTotals { person, .. } => {
            format!("customer {}", person.customer_id.as_deref().unwrap_or("(by email)"))
        }
        Subject::Product { product } => format!("product {}", product.identity.id),
    }
}

impl Progress for LivePrinter {
    fn delivered(&self, pipeline: &str, events: &[&Event]) {
        let Some(titles) = self.pipelines.get(pipeline) else { return };
        let now = jiff::Timestamp::now();
        let clock = now.to_zoned(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string();
        for event in events.iter().filter(|event| !event.history) {
            let name = registry::sink_event_name(titles.sink_type, event.kind);
            let latency = now.duration_since(event.occurred_at).as_millis();
            println!("{clock}  {} {} → {} {name}  {latency} ms", titles.source, about(&event.subject), titles.sink);
        }
    }
}

/// Rings a sale every [`RING_EVERY`], one source after another, and posts
/// each platform's webhook of it to the run's server.
async fn ring(world: Arc<DemoWorld>, port: u16) {
    let http = tillflow_http::reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("a client");
    let mut n = 0u64;
    loop {
        tokio::time::sleep(RING_EVERY).await;
        n += 1;
        let (descriptor, sandbox) = &world.sources[(n as usize - 1) % world.sources.len()];
        if !sandbox.ring_sale(n) {
            continue;
        }
        if let Some(delivery) = sandbox.sale_webhook(n) {
            let mut request = http.post(format!("http://127.0.0.1:{port}/webhooks/{}", descriptor.type_name));
            for (name, value) in delivery.headers {
                request = request.header(name, value);
            }
            // A delivery that goes unanswered is the next poll's to find.
            let _ = request.body(delivery.body).send().await;
        }
    }
}

/// `tillflow demo --live`: the demo's import, then the live run until Ctrl-C.
pub async fn demo_live(show_progress: bool) -> Result<(), Failure> {
    let imported = import(show_progress).await?;
    live(&imported.world, &imported.dir).await
}

/// Runs the live part of the demo on `world`, in `dir` (where the import
/// left its state), until Ctrl-C.
async fn live(world: &Arc<DemoWorld>, dir: &Path) -> Result<(), Failure> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| Failure::pipeline(format!("demo: a free loopback port: {e}")))?
        .port();
    let config_path = dir.join("tillflow.toml");
    let text = world.continuous_config("sqlite://demo.db", "2s", port);
    std::fs::write(&config_path, &text)
        .map_err(|e| Failure::pipeline(format!("demo: {}: {e}", config_path.display())))?;
    let config = Config::load(&config_path).map_err(Failure::config)?;
    let shown = config_path.display();
    println!(
        "\nlive: the run goes on; a sale rings at a till every {}s. Its config, {shown} (credentials shown as ***):\n",
        RING_EVERY.as_secs()
    );
    for line in config.without_credentials(&text).lines() {
        println!("    {line}");
    }
    println!("\nTry beside it (another terminal):");
    println!("    tillflow status --config {shown}");
    println!("    tillflow report --config {shown} --pipeline woocommerce-to-klaviyo --tz Europe/Lisbon");
    println!("    tillflow dead-letters --config {shown} list");
    println!("    curl http://127.0.0.1:{port}/metrics");
    println!("Ctrl-C stops everything.\n");
    let ringer = tokio::spawn(ring(world.clone(), port));
    let outcome = run_observed(&config_path, Arc::new(LivePrinter::new(&config))).await;
    ringer.abort();
    println!("\nlive: stopped; the sandboxes are gone and {} with them", dir.display());
    outcome
}
