//! Lightspeed R-Series → Klaviyo end to end: the real `tillflow` program
//! against both sandboxes.

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use tillflow_http::sandbox::Fault;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_lightspeed::sandbox::LightspeedSandbox;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

struct World {
    lightspeed: LightspeedSandbox,
    klaviyo: KlaviyoSandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let lightspeed = LightspeedSandbox::start("77", "ls_secret", "rt-0").await.unwrap();
        lightspeed.seed(40, 150);
        let klaviyo = KlaviyoSandbox::start("pk_e2e").await.unwrap();
        Self { lightspeed, klaviyo, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        let text = format!(
            r#"[sources.store]
type = "lightspeed"
account_id = "77"
client_id = "tillflow"
client_secret = "${{LS_CLIENT_SECRET}}"
refresh_token = "${{LS_REFRESH_TOKEN}}"
base_url = "{base}"
token_url = "{token}"

[sinks.klaviyo]
type = "klaviyo"
api_key = "${{KLAVIYO_API_KEY}}"
base_url = "{klaviyo}"
new_profiles_list_id = "NEWPOS"

[[pipelines]]
name = "store-to-klaviyo"
source = "store"
sink = "klaviyo"
"#,
            base = self.lightspeed.base_url(),
            token = self.lightspeed.token_url(),
            klaviyo = self.klaviyo.base_url()
        );
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn run_once(&self) -> String {
        let mut command = Command::new(TILLFLOW);
        command
            .args(["run", "--once", "--config"])
            .arg(self.config())
            .env("LS_CLIENT_SECRET", "ls_secret")
            .env("LS_REFRESH_TOKEN", "rt-0")
            .env("KLAVIYO_API_KEY", "pk_e2e")
            .env("RUST_LOG", "warn");
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "run --once failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    fn status_json(&self) -> serde_json::Value {
        let output = Command::new(TILLFLOW)
            .args(["status", "--json", "--config"])
            .arg(self.config())
            .env("LS_CLIENT_SECRET", "ls_secret")
            .env("LS_REFRESH_TOKEN", "rt-0")
            .env("KLAVIYO_API_KEY", "pk_e2e")
            .output()
            .unwrap();
        assert!(output.status.success());
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_by_bulk_jobs_then_live_sales_with_rotating_tokens_and_429s_waited_out() {
    let world = World::start().await;
    // `check` reaches both platforms with the configured credentials.
    let check = Command::new(TILLFLOW)
        .args(["check", "--config"])
        .arg(world.config())
        .env("LS_CLIENT_SECRET", "ls_secret")
        .env("LS_REFRESH_TOKEN", "rt-0")
        .env("KLAVIYO_API_KEY", "pk_e2e")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{text}{}", String::from_utf8_lossy(&check.stderr));
    assert!(
        text.contains("ok    source store (lightspeed)") && text.contains("ok    sink klaviyo (klaviyo)"),
        "{text}"
    );

    let summary = world.run_once().await;
    let klaviyo = world.klaviyo.world();

    // History: bulk jobs, every event backfilled, each recorded once.
    {
        let k = klaviyo.lock().unwrap();
        assert!(k.bulk_jobs > 0, "history goes through bulk jobs");
        assert!(!k.events.is_empty());
        assert!(k.events.iter().all(|e| e.backfill), "old purchases never fire flows");
        assert_eq!(k.duplicate_events, 0);
        let placed = k.events_named("Placed Order");
        let sample = &placed[0].properties;
        for key in [
            "OrderId",
            "Categories",
            "Discount Codes",
            "Email Domain",
            "Is Discounted",
            "Items",
            "Item Count",
            "Shop",
            "ShopID",
            "Total Discounts",
        ] {
            assert!(sample.get(key).is_some(), "Placed Order lacks {key}: {sample}");
        }
        assert!(placed.iter().any(|e| e.properties["Shop"] == "Mission Street"));
        assert!(!k.events_named("Ordered Product").is_empty());
        assert!(!k.events_named("Refunded Order").is_empty(), "refund sales become Refunded Order");
        assert!(!k.events_named("Shipped Order").is_empty());
        assert!(k.events_named("Shipped Order").iter().all(|e| e.properties["shipped"] == true));
        assert!(k.list_members.get("NEWPOS").is_some_and(|m| !m.is_empty()), "new profiles join the list");
    }
    assert!(summary.contains("no email"), "sales without an email are skipped by reason: {summary}");
    assert!(summary.contains("zero total"), "sales worth 0 are skipped by reason: {summary}");
    let status = world.status_json();
    assert!(status[0]["skipped"]["no email"].as_u64().unwrap() > 0, "{status}");
    assert!(status[0]["skipped"]["zero total"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(world.lightspeed.world().lock().unwrap().refreshes, 2, "check refreshed once, the run once");

    // The reconciliation report: per local day, read = delivered + skipped.
    let report = Command::new(TILLFLOW)
        .args(["report", "--pipeline", "store-to-klaviyo", "--tz", "America/New_York", "--days", "400", "--config"])
        .arg(world.config())
        .env("LS_CLIENT_SECRET", "ls_secret")
        .env("LS_REFRESH_TOKEN", "rt-0")
        .env("KLAVIYO_API_KEY", "pk_e2e")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{text}");
    assert!(text.contains("orders per day in America/New_York"), "{text}");
    let rows: Vec<Vec<i64>> = text
        .lines()
        .filter(|line| line.starts_with("20"))
        .map(|line| line.split_whitespace().skip(1).take(3).map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 400);
    let read: i64 = rows.iter().map(|r| r[0]).sum();
    let accounted: i64 = rows.iter().map(|r| r[1] + r[2]).sum();
    assert!(read > 100, "{text}");
    assert_eq!(read, accounted, "every order read was delivered or skipped");

    // The second run sends nothing, and authenticates with the rotated token
    // (the configured rt-0 is revoked by now).
    let requests = klaviyo.lock().unwrap().requests;
    world.run_once().await;
    assert_eq!(klaviyo.lock().unwrap().requests, requests, "the second run sent something to Klaviyo");
    assert_eq!(world.lightspeed.world().lock().unwrap().refreshes, 3, "the stored refresh token was used");

    // A new sale goes live, without backfill, through 429s from both sides.
    // It was rung up (parked as a layaway) three days before the pipeline
    // first started and paid for now: it is placed now, so it is live and
    // carries its completion time.
    let completed = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let opened = completed - jiff::SignedDuration::from_hours(72);
    let sale =
        world.lightspeed.world().lock().unwrap().add_sale_opened(Some(3), &[(4, 2_500), (5, 1_000)], opened, completed);
    world.lightspeed.faults().inject_next(Fault::TooManyRequests, 2);
    world.klaviyo.faults().inject_next(Fault::TooManyRequests, 2);
    world.run_once().await;
    let k = klaviyo.lock().unwrap();
    let live: Vec<_> = k
        .events_named("Placed Order")
        .into_iter()
        .filter(|e| e.properties["OrderId"] == json!(sale.to_string()))
        .collect();
    assert_eq!(live.len(), 1, "the new sale arrives exactly once");
    assert!(!live[0].backfill, "a sale completed after the first start is live and may fire flows");
    assert_eq!(
        live[0].time.as_deref().map(|t| t.parse::<jiff::Timestamp>().unwrap()),
        Some(completed),
        "Placed Order carries the time the sale was completed, not when it was opened"
    );
    assert_eq!(live[0].value, json!(35));
    assert_eq!(
        k.events_named("Ordered Product").iter().filter(|e| e.properties["OrderId"] == json!(sale.to_string())).count(),
        2
    );
    assert_eq!(world.klaviyo.faults().counts().too_many_requests, 2, "Klaviyo's 429s were met and waited out");
    assert_eq!(world.lightspeed.faults().counts().too_many_requests, 2);
    assert_eq!(k.duplicate_events, 0);
}

/// Lightspeed revokes a refresh token once an access token it bought is
/// used: a refresh whose answers were lost (applied, the new tokens never
/// seen) leaves the token tillflow holds valid, however many times in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_answers_lost_twice_in_a_row_leave_the_grant_working() {
    let world = World::start().await;
    world.lightspeed.faults().inject_next(Fault::LostAnswer, 2);
    world.run_once().await;
    assert_eq!(world.lightspeed.faults().counts().lost_answers, 2);
    assert_eq!(world.lightspeed.world().lock().unwrap().refreshes, 3, "two refreshes lost, the third seen");
    assert!(!world.klaviyo.world().lock().unwrap().events.is_empty());

    // The access token the third refresh bought is in use: the configured
    // refresh token that bought it is revoked, and the next run refreshes
    // with the stored one.
    let refused = tillflow_http::reqwest::Client::new()
        .post(world.lightspeed.token_url())
        .json(&json!({"grant_type": "refresh_token", "client_id": "tillflow", "client_secret": "ls_secret", "refresh_token": "rt-0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "rt-0 is revoked once an access token it bought is used");
    world.run_once().await;
    assert_eq!(world.lightspeed.world().lock().unwrap().refreshes, 4);
}
