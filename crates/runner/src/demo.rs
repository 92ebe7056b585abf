//! `tillflow demo`: a sandbox of every platform in the registry on loopback
//! ports, a temporary config running every source × sink pair, one real pass
//! of each with embedded SQLite state, a table of what happened, and a check
//! of the sandboxes' own counts against it.

use crate::commands::{PassResult, outcome_of, pass_once};
use crate::exit::Failure;
use crate::registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tillflow_core::{EventKind, PassReport};
use tillflow_http::sandbox::Faults;
use tillflow_kit::sandbox::{Sandbox, SandboxOptions};
use tillflow_kit::{SinkDescriptor, SourceDescriptor};

/// How big the demo's seeded stores are: each source platform's demo scale
/// times `fraction`.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    pub fraction: f64,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self { fraction: 1.0 }
    }
}

/// A sandbox of every platform, seeded, on loopback ports.
pub struct DemoWorld {
    pub sources: Vec<(&'static SourceDescriptor, Box<dyn Sandbox>)>,
    pub sinks: Vec<(&'static SinkDescriptor, Box<dyn Sandbox>)>,
}

/// What the sink sandboxes hold: stored events per sink and name (profile
/// updates apart: their count depends on how often a person changed), the
/// people each holds, and the repeats they recognised by id and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub events: BTreeMap<(&'static str, String), u64>,
    pub people: BTreeMap<&'static str, u64>,
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

fn loopback(customers: u64, orders: u64) -> SandboxOptions {
    SandboxOptions { address: tillflow_http::sandbox::any_loopback_port(), customers, orders }
}

impl DemoWorld {
    pub async fn start(size: DemoSize) -> Result<Self, Failure> {
        let scale = |n: u64| ((n as f64 * size.fraction).round() as u64).max(1);
        let mut sources = Vec::new();
        for descriptor in registry::SOURCES {
            if let Some(start) = descriptor.sandbox {
                let options = loopback(scale(descriptor.demo.customers), scale(descriptor.demo.orders));
                sources.push((descriptor, start(options).await.map_err(sandbox_error)?));
            }
        }
        let mut sinks = Vec::new();
        for descriptor in registry::SINKS {
            if let Some(start) = descriptor.sandbox {
                sinks.push((descriptor, start(loopback(0, 0)).await.map_err(sandbox_error)?));
            }
        }
        Ok(Self { sources, sinks })
    }

    /// Rings the `n`-th live sale at every source; how many rang.
    pub fn ring_sales(&self, n: u64) -> usize {
        self.sources.iter().filter(|(_, sandbox)| sandbox.ring_sale(n)).count()
    }

    /// The deliveries the sources would post for the `n`-th live sale, with
    /// the name of the source each is for (its type name in the demo config).
    pub fn sale_webhooks(&self, n: u64) -> Vec<(&'static str, tillflow_kit::sandbox::SandboxWebhook)> {
        self.sources
            .iter()
            .filter_map(|(descriptor, sandbox)| Some((descriptor.type_name, sandbox.sale_webhook(n)?)))
            .collect()
    }

    /// The sandboxes' fault injectors, sources first.
    pub fn faults(&self) -> Vec<Arc<Faults>> {
        let sources = self.sources.iter().map(|(_, sandbox)| sandbox.faults());
        sources.chain(self.sinks.iter().map(|(_, sandbox)| sandbox.faults())).collect()
    }

    /// The pipeline of each source × sink pair, named `<source>-to-<sink>`.
    pub fn pipelines(&self) -> Vec<(String, &'static str, &'static str)> {
        let mut pipelines = Vec::new();
        for (source, _) in &self.sources {
            for (sink, _) in &self.sinks {
                pipelines.push((
                    format!("{}-to-{}", source.type_name, sink.type_name),
                    source.type_name,
                    sink.type_name,
                ));
            }
        }
        pipelines
    }

    /// A config running every pair against these sandboxes, state at `state_url`.
    pub fn config(&self, state_url: &str) -> String {
        let mut text = format!("[state]\nurl = \"{state_url}\"\n");
        for (descriptor, sandbox) in &self.sources {
            let name = descriptor.type_name;
            text.push_str(&format!("\n[sources.{name}]\ntype = \"{name}\"\n{}", sandbox.connector_keys()));
        }
        for (descriptor, sandbox) in &self.sinks {
            let name = descriptor.type_name;
            text.push_str(&format!("\n[sinks.{name}]\ntype = \"{name}\"\n{}", sandbox.connector_keys()));
        }
        for (name, source, sink) in self.pipelines() {
            text.push_str(&format!("\n[[pipelines]]\nname = \"{name}\"\nsource = \"{source}\"\nsink = \"{sink}\"\n"));
        }
        text
    }

    /// The same for a continuous run: every source polled every
    /// `poll_interval` (e.g. "2s"), the server on loopback `port`.
    pub fn continuous_config(&self, state_url: &str, poll_interval: &str, port: u16) -> String {
        let mut text = self.config(state_url);
        for (descriptor, _) in &self.sources {
            let table = format!("[sources.{}]\n", descriptor.type_name);
            text = text.replacen(&table, &format!("{table}poll_interval = \"{poll_interval}\"\n"), 1);
        }
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n{text}")
    }

    pub fn received(&self) -> Received {
        let mut received = Received::default();
        for (descriptor, sandbox) in &self.sinks {
            let stored = sandbox.received();
            for name in descriptor.events.iter().filter(|(kind, _)| *kind != EventKind::ProfileUpdated).map(|(_, n)| n)
            {
                let count = stored.by_name.get(*name).copied().unwrap_or(0);
                if count > 0 {
                    received.events.insert((descriptor.type_name, (*name).to_owned()), count);
                }
            }
            received.people.insert(descriptor.type_name, stored.people);
            received.repeats_ignored += stored.repeats_ignored;
        }
        received
    }

    /// Every count `results` reports against what the sink sandboxes hold;
    /// one line per mismatch.
    pub fn mismatches(&self, results: &[PassResult]) -> Vec<String> {
        let mut mismatches = Vec::new();
        for (descriptor, sandbox) in &self.sinks {
            let stored = sandbox.received();
            let suffix = format!("-to-{}", descriptor.type_name);
            for (kind, name) in descriptor.events {
                let reported: u64 = results
                    .iter()
                    .filter(|(pipeline, _)| pipeline.ends_with(&suffix))
                    .filter_map(|(_, result)| result.as_ref().ok())
                    .map(|report| report.delivered.get(kind).copied().unwrap_or(0))
                    .sum();
                let held = stored.by_name.get(*name).copied().unwrap_or(0);
                if reported != held {
                    mismatches
                        .push(format!("reported {reported} {} {name}, the sandbox holds {held}", descriptor.title));
                }
            }
            if stored.repeats_ignored > 0 {
                mismatches.push(format!("{} received {} repeated events", descriptor.title, stored.repeats_ignored));
            }
        }
        mismatches
    }
}

/// The demo's sandboxes after its import, and the folder of its config and
/// state, removed when this goes.
pub struct Imported {
    pub world: Arc<DemoWorld>,
    pub dir: PathBuf,
}

impl Drop for Imported {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tillflow demo`.
pub async fn demo(show_progress: bool) -> Result<(), Failure> {
    import(show_progress).await.map(drop)
}

/// The sandboxes, one pass of every pair, its table and the sandboxes'
/// check of it.
pub async fn import(show_progress: bool) -> Result<Imported, Failure> {
    let started = Instant::now();
    let world = DemoWorld::start(DemoSize::default()).await?;
    let imported = Imported {
        world: Arc::new(world),
        dir: std::env::temp_dir().join(format!("tillflow-demo-{}", std::process::id())),
    };
    let (world, dir) = (&imported.world, &imported.dir);
    std::fs::create_dir_all(dir).map_err(|e| Failure::pipeline(format!("demo: {}: {e}", dir.display())))?;
    let config = dir.join("tillflow.toml");
    std::fs::write(&config, world.config("sqlite://demo.db"))
        .map_err(|e| Failure::pipeline(format!("demo: {}: {e}", config.display())))?;
    let stores: Vec<String> = world.sources.iter().map(|(_, sandbox)| sandbox.describe()).collect();
    match stores.split_last() {
        Some((last, [])) => println!("tillflow demo: {last}"),
        Some((last, rest)) => println!("tillflow demo: {},\nand {last}", rest.join(",\n")),
        None => println!("tillflow demo: no source in this build has a sandbox"),
    }
    for (title, sandbox) in
        world.sources.iter().map(|(d, s)| (d.title, s)).chain(world.sinks.iter().map(|(d, s)| (d.title, s)))
    {
        println!("  {:<28} {}", format!("{title} sandbox"), sandbox.base_url());
    }
    println!("  {:<28} {}", "state", dir.join("demo.db").display());
    println!();
    let results = pass_once(&config, None, show_progress).await?;
    print_table(&results);
    println!();
    let mismatches = world.mismatches(&results);
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
    outcome_of(&results)?;
    Ok(imported)
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
