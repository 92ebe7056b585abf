//! Dutchie POS → Klaviyo end to end: the real `tillflow` program against
//! the Dutchie sandbox (three child locations of one parent) and the
//! Klaviyo sandbox with the catalog on.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_dutchie::sandbox::{DutchieSandbox, LOCATIONS, MEDICAL_MARKERS, seeded_transaction};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const CUSTOMERS: u64 = 30;
const TRANSACTIONS: u64 = 90;

struct World {
    dutchie: DutchieSandbox,
    klaviyo: KlaviyoSandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let dutchie = DutchieSandbox::start().await.unwrap();
        dutchie.seed(CUSTOMERS, TRANSACTIONS);
        let klaviyo = KlaviyoSandbox::start("pk_e2e").await.unwrap();
        Self { dutchie, klaviyo, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        let history =
            (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72)).to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut text = format!(
            "[sources.dispensary]\ntype = \"dutchie\"\nbase_url = \"{}\"\nhistory_start = \"{history}\"\n",
            self.dutchie.base_url()
        );
        for position in 0..LOCATIONS.len() {
            text.push_str(&format!("[[sources.dispensary.locations]]\napi_key = \"${{DUTCHIE_KEY_{position}}}\"\n"));
        }
        text.push_str(&format!(
            "\n[sinks.klaviyo]\ntype = \"klaviyo\"\napi_key = \"pk_e2e\"\nbase_url = \"{}\"\ncatalog = true\n\
             catalog_url = \"https://greenleaf.example/menu?product={{productId}}\"\n\n\
             [[pipelines]]\nname = \"dispensary-to-klaviyo\"\nsource = \"dispensary\"\nsink = \"klaviyo\"\n",
            self.klaviyo.base_url()
        ));
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn run_once(&self) -> String {
        let mut command = Command::new(TILLFLOW);
        command.args(["run", "--once", "--config"]).arg(self.config()).env("RUST_LOG", "warn");
        for (position, (_, _, key)) in LOCATIONS.iter().enumerate() {
            command.env(format!("DUTCHIE_KEY_{position}"), key);
        }
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "run --once failed: {stdout}\n{stderr}");
        for (_, _, key) in LOCATIONS {
            assert!(!stderr.contains(key) && !stdout.contains(key), "a key leaked");
        }
        stdout
    }

    fn placed(&self) -> Vec<Value> {
        let world = self.klaviyo.world();
        let world = world.lock().unwrap();
        world.events_named("Placed Order").iter().map(|e| e.properties.clone()).collect()
    }
}

/// What Klaviyo's integration sends of the seeded shops: Retail sales, not
/// voided, not returns, worth something, by a buyer with an email.
fn expected_orders(dutchie: &DutchieSandbox) -> HashSet<(i64, i64)> {
    let world = dutchie.world();
    let world = world.lock().unwrap();
    let buyer_ok = |location: i64, id: &Value| {
        world.customers.get(&location).into_iter().flatten().any(|c| {
            let same = c.get("customerId").or(c.get("customerID")) == Some(id);
            same && c["emailAddress"].as_str().is_some_and(|e| !e.trim().is_empty()) && c["isAnonymous"] != json!(true)
        })
    };
    world
        .transactions
        .iter()
        .filter(|t| t.visible)
        .map(|t| (t.location, &t.record))
        .filter(|(_, r)| r["transactionType"] == "Retail" && r["isVoid"] == false && r["isReturn"] == false)
        .filter(|(_, r)| r["total"].as_f64().unwrap_or(0.0) != 0.0)
        .filter(|(location, r)| buyer_ok(*location, &r["customerId"]))
        .map(|(location, r)| (location, r["transactionId"].as_i64().unwrap()))
        .collect()
}

fn location_name(id: i64) -> &'static str {
    LOCATIONS.iter().find(|(l, _, _)| *l == id).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_location_into_one_klaviyo_account_never_subscribed_and_never_medical() {
    let world = World::start().await;
    // Another client of the Airport key spent this minute's reporting
    // budget: Dutchie answers 429 with no Retry-After.
    world.dutchie.world().lock().unwrap().spend_minute(LOCATIONS[1].2);
    let want = expected_orders(&world.dutchie);

    let summary = world.run_once().await;
    assert!(world.dutchie.world().lock().unwrap().throttled >= 1, "the 429 came");
    assert!(summary.contains("transaction type not configured"), "{summary}");
    let placed = world.placed();
    let got: HashSet<(i64, i64)> = placed
        .iter()
        .map(|p| {
            let location = LOCATIONS.iter().find(|(_, name, _)| p["locationName"] == *name).expect("a location name").0;
            (location, p["OrderId"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(got, want, "every sale of every location once, after the 429 was waited out");
    assert_eq!(placed.len(), want.len());
    // The seed puts transaction n at location n % 3: the name is the sale's own.
    for properties in &placed {
        let n = properties["OrderId"].as_u64().unwrap();
        assert_eq!(properties["locationName"], location_name(LOCATIONS[(n % 3) as usize].0), "{properties}");
        let mut keys: Vec<&str> = properties.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["OrderId", "items", "locationName", "transactionType"]);
    }

    {
        let klaviyo = world.klaviyo.world();
        let klaviyo = klaviyo.lock().unwrap();
        // One profile per email, whatever the number of locations it shops at.
        let twin = klaviyo.profiles.get("customer1@example.com").expect("customer 1's profile");
        assert!(twin.get("properties").is_some_and(|p| p.get("Dutchie customerId").is_some()), "{twin:?}");
        assert_eq!(klaviyo.subscription_requests, 0, "nobody is subscribed");
        let everything = serde_json::to_string(&*klaviyo).unwrap();
        for marker in MEDICAL_MARKERS {
            assert!(!everything.contains(marker), "a medical field reached Klaviyo: {marker}");
        }
        assert!(!everything.contains("\"subscriptions\""));
        assert_eq!(klaviyo.catalog.len(), 19, "the parent's catalog once, without its coupon");
        assert!(klaviyo.events.iter().all(|e| e.backfill), "history carries backfill");
    }

    // A second run sends nothing.
    let requests = world.klaviyo.world().lock().unwrap().requests;
    world.run_once().await;
    assert_eq!(world.klaviyo.world().lock().unwrap().requests, requests, "the second run sent requests");

    // A sale Dutchie shows only minutes later is caught by the next window.
    let (_, mut late) = seeded_transaction(4, CUSTOMERS, jiff::Timestamp::now());
    late["transactionId"] = json!(9001);
    late["customerId"] = json!(4);
    world.dutchie.ring_up(LOCATIONS[1].0, late, false);
    world.run_once().await;
    assert!(!world.placed().iter().any(|p| p["OrderId"] == 9001), "not visible yet");
    world.dutchie.reveal();
    world.run_once().await;
    let late: Vec<Value> = world.placed().into_iter().filter(|p| p["OrderId"] == 9001).collect();
    assert_eq!(late.len(), 1, "the late sale arrived once");
    assert_eq!(late[0]["locationName"], "Airport");
    let counts: BTreeMap<String, usize> = world.placed().iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p["OrderId"].to_string()).or_default() += 1;
        m
    });
    assert!(counts.values().all(|n| *n == 1), "nothing twice");
}
