//! Retail POS (X-Series + eCom) → Klaviyo end to end: the real `tillflow`
//! program against the Retail POS sandbox (both stores, rotating OAuth
//! tokens) and the Klaviyo sandbox. The merged view's group and preference
//! per email follow the merge rules; an opt-out at the till reaches Klaviyo
//! once; a group change in eCom moves the profile's group; a second run
//! sends nothing; `tillflow status` lists the group conflicts; with
//! `marketing_consent = "sync"` and `group_lists`, each preference and group
//! change at the source is applied once as consent and list membership, and
//! nobody who unsubscribed in Klaviyo is re-subscribed by an unchanged
//! record; a running tillflow refuses a forged eCom webhook and applies a
//! signed one.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tillflow_e2e::{Running, eventually};
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_retail_pos::mapping::CLOSED;
use tillflow_source_retail_pos::sandbox::{self as sb, RetailPosSandbox};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const CUSTOMERS: u64 = 45;
const SALES: u64 = 60;

struct World {
    pos: RetailPosSandbox,
    klaviyo: KlaviyoSandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let pos = RetailPosSandbox::start().await.unwrap();
        pos.seed(CUSTOMERS, SALES);
        let klaviyo = KlaviyoSandbox::start("pk_e2e").await.unwrap();
        Self { pos, klaviyo, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self, listen: Option<u16>) -> PathBuf {
        self.config_with(listen, "")
    }

    /// The config with more keys for the Klaviyo sink.
    fn config_with(&self, listen: Option<u16>, klaviyo_keys: &str) -> PathBuf {
        let server = listen.map(|port| format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n")).unwrap_or_default();
        let text = format!(
            r#"[state]
url = "sqlite://state.db"

{server}[sources.store]
type = "retail-pos"
domain_prefix = "sandbox"
base_url = "{store}"
client_id = "{client_id}"
client_secret = "${{XS_CLIENT_SECRET}}"
refresh_token = "{refresh}"
currency = "NZD"
poll_interval = "1h"

[sources.store.ecom]
store_id = "{store_id}"
token = "${{ECOM_TOKEN}}"
client_secret = "${{ECOM_CLIENT_SECRET}}"
base_url = "{ecom}"

[sinks.klaviyo]
type = "klaviyo"
api_key = "pk_e2e"
base_url = "{klaviyo}"
{klaviyo_keys}
[[pipelines]]
name = "store-to-klaviyo"
source = "store"
sink = "klaviyo"
"#,
            store = self.pos.store_url(),
            client_id = sb::CLIENT_ID,
            refresh = sb::FIRST_REFRESH_TOKEN,
            store_id = sb::STORE_ID,
            ecom = self.pos.ecom_url(),
            klaviyo = self.klaviyo.base_url(),
        );
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, config: &Path, arguments: &[&str]) -> Command {
        let mut command = Command::new(TILLFLOW);
        command
            .args(arguments)
            .arg("--config")
            .arg(config)
            .current_dir(self.dir.path())
            .env("XS_CLIENT_SECRET", sb::CLIENT_SECRET)
            .env("ECOM_TOKEN", sb::ECOM_TOKEN)
            .env("ECOM_CLIENT_SECRET", sb::ECOM_CLIENT_SECRET)
            .env("RUST_LOG", "warn");
        command
    }

    async fn run(&self, config: &Path, arguments: &[&str]) -> String {
        let mut command = self.command(config, arguments);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{arguments:?} failed: {stdout}\n{stderr}");
        for secret in [sb::CLIENT_SECRET, sb::ECOM_TOKEN, sb::ECOM_CLIENT_SECRET] {
            assert!(!stdout.contains(secret) && !stderr.contains(secret), "a secret leaked");
        }
        stdout
    }

    fn profile(&self, email: &str) -> Option<serde_json::Map<String, Value>> {
        let world = self.klaviyo.world();
        let world = world.lock().unwrap();
        world.profiles.get(email).cloned()
    }

    fn property(&self, email: &str, name: &str) -> Value {
        self.profile(email).map(|p| p["properties"][name].clone()).unwrap_or(Value::Null)
    }

    fn upserts(&self) -> u64 {
        self.klaviyo.world().lock().unwrap().profile_upserts
    }

    fn placed(&self) -> usize {
        self.klaviyo.world().lock().unwrap().events_named("Placed Order").len()
    }
}

fn title(groups: &[(&str, &str)], id: &str) -> Value {
    groups
        .iter()
        .find(|(group, _)| *group == id)
        .map(|(_, name)| *name)
        .filter(|name| *name != "All Customers" && *name != "General")
        .map_or(Value::Null, |name| json!(name))
}

/// The group and preference the merge rules give seeded customer `n`.
fn expected(n: u64) -> (Value, bool) {
    let pos_groups: Vec<(&str, &str)> = sb::GROUPS.iter().map(|(id, name, _)| (*id, *name)).collect();
    let pos_group = title(&pos_groups, sb::pos_group(n));
    let pos_marketing = !n.is_multiple_of(4);
    if !sb::in_both(n) || !sb::ecom_newer(n) {
        return (pos_group, pos_marketing);
    }
    let ecom_groups: Vec<(String, &str)> = sb::ECOM_GROUPS.iter().map(|(id, name)| (id.to_string(), *name)).collect();
    let ecom_groups: Vec<(&str, &str)> = ecom_groups.iter().map(|(id, name)| (id.as_str(), *name)).collect();
    let ecom_group = title(&ecom_groups, &sb::ecom_group(n).to_string());
    (ecom_group, sb::ecom_marketing(n).unwrap_or(pos_marketing))
}

/// Closed sales, not returns, by a customer with an email.
fn expected_placed(pos: &RetailPosSandbox) -> usize {
    let world = pos.world();
    let world = world.lock().unwrap();
    world
        .sales
        .iter()
        .map(|v| &v.record)
        .filter(|sale| CLOSED.contains(&sale["status"].as_str().unwrap_or("")) && sale["return_for"].is_null())
        .filter(|sale| {
            sale["customer_id"].as_str().and_then(|id| world.customer(id)).is_some_and(|c| c["email"].is_string())
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_view_of_pos_and_ecom_customers_reaches_klaviyo_and_changes_arrive_once() {
    let world = World::start().await;
    let config = world.config(None);
    world.run(&config, &["run", "--once"]).await;

    let mut checked = 0;
    for n in 1..=CUSTOMERS {
        let Some(email) = sb::seeded_email(n) else { continue };
        if n.is_multiple_of(41) {
            continue;
        }
        let (group, marketing) = expected(n);
        assert_eq!(world.property(&email, "customer_group"), group, "{email}: customer_group");
        assert_eq!(world.property(&email, "accepts_marketing_email"), json!(marketing), "{email}: preference");
        let known = if sb::in_both(n) { "both" } else { "pos" };
        assert_eq!(world.property(&email, "known_in"), json!(known), "{email}: known_in");
        checked += 1;
    }
    assert!(checked > 30, "{checked} people checked");
    assert!(world.profile("online1@example.com").is_some(), "an eCom-only buyer is in Klaviyo");
    assert!(world.profile("online3@example.com").is_some(), "admitted by an order eCom's counters do not show yet");
    assert!(world.profile("online2@example.com").is_none(), "an eCom-only person who never bought is not");
    assert_eq!(world.placed(), expected_placed(&world.pos), "every closed sale with a buyer, once");
    assert_eq!(world.klaviyo.world().lock().unwrap().subscription_requests, 0, "consent is a property by default");

    // A second run sends nothing.
    let (upserts, placed) = (world.upserts(), world.placed());
    world.run(&config, &["run", "--once"]).await;
    assert_eq!((world.upserts(), world.placed()), (upserts, placed), "a second run sends nothing");

    // An opt-out at the till reaches Klaviyo once.
    assert_eq!(world.property("person2@example.com", "accepts_marketing_email"), json!(true));
    world.pos.world().lock().unwrap().edit_customer(&sb::pos_id(2), |c| c["do_not_email"] = json!(true));
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(world.property("person2@example.com", "accepts_marketing_email"), json!(false));
    assert_eq!(world.upserts(), upserts + 1, "one profile update");
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(world.upserts(), upserts + 1, "and only once");

    // A group change in eCom (now the newer side) moves the profile's group.
    let person3 = "person3@example.com";
    assert_eq!(world.property(person3, "customer_group"), Value::Null);
    world.pos.world().lock().unwrap().edit_ecom_customer(5003, |c| {
        c["customerGroupId"] = json!(sb::ECOM_GROUPS[1].0);
        c["customerGroupName"] = json!("VIP");
    });
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(world.property(person3, "customer_group"), json!("VIP"));

    // status lists the group conflicts, emails redacted.
    let status: Value = serde_json::from_str(&world.run(&config, &["status", "--json"]).await).unwrap();
    let notices = status[0]["source_notices"].as_array().unwrap().clone();
    assert!(notices.iter().any(|n| n.as_str().unwrap().contains("group conflict for p***@example.com")), "{notices:?}");
    assert!(notices.iter().any(|n| n.as_str().unwrap().contains("x-0040 and x-0041")), "{notices:?}");
    assert!(!status.to_string().contains("person3@"), "status shows no email");
}

impl World {
    fn consent(&self, email: &str) -> Option<String> {
        self.klaviyo.world().lock().unwrap().email_consent.get(email).cloned()
    }

    fn on_list(&self, list: &str, email: &str) -> bool {
        let world = self.klaviyo.world();
        let world = world.lock().unwrap();
        world.list_members.get(list).is_some_and(|members| members.contains(&format!("P-{email}")))
    }

    fn subscription_requests(&self) -> u64 {
        self.klaviyo.world().lock().unwrap().subscription_requests
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_consent_synced_and_group_lists_each_change_at_the_source_is_applied_once() {
    let world = World::start().await;
    let config = world.config_with(
        None,
        "marketing_consent = \"sync\"\ngroup_lists = { \"VIP\" = \"LIST_VIP\", \"Students\" = \"LIST_STUDENTS\" }\n",
    );
    world.run(&config, &["run", "--once"]).await;

    // The first import applies each explicit preference once, and each group.
    for n in 1..=CUSTOMERS {
        let Some(email) = sb::seeded_email(n) else { continue };
        if n.is_multiple_of(41) {
            continue;
        }
        let (group, marketing) = expected(n);
        let want = if marketing { "SUBSCRIBED" } else { "UNSUBSCRIBED" };
        assert_eq!(world.consent(&email).as_deref(), Some(want), "{email}: consent");
        assert_eq!(world.on_list("LIST_VIP", &email), group == json!("VIP"), "{email}: the VIP list");
        assert_eq!(world.on_list("LIST_STUDENTS", &email), group == json!("Students"), "{email}: the Students list");
    }
    // eCom's null is no statement: nothing is asked for online3 (k = 3, null).
    assert_eq!(world.consent("online3@example.com"), None, "eCom's null makes no call");
    assert_eq!(world.consent("online1@example.com").as_deref(), Some("SUBSCRIBED"));

    // Someone who unsubscribed in Klaviyo since is not re-subscribed by a
    // change that leaves the preference as it was (a new phone number).
    let person5 = "person5@example.com";
    assert_eq!(world.consent(person5).as_deref(), Some("SUBSCRIBED"));
    world.klaviyo.world().lock().unwrap().email_consent.insert(person5.into(), "UNSUBSCRIBED".into());
    world.pos.world().lock().unwrap().edit_customer(&sb::pos_id(5), |c| c["phone"] = json!("+64 9 555 9999"));
    let requests = world.subscription_requests();
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(
        world.consent(person5).as_deref(),
        Some("UNSUBSCRIBED"),
        "never re-subscribed by an unchanged preference"
    );
    assert_eq!(world.subscription_requests(), requests, "no consent call at all");

    // An opt-out at the till is applied once.
    world.pos.world().lock().unwrap().edit_customer(&sb::pos_id(2), |c| c["do_not_email"] = json!(true));
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(world.consent("person2@example.com").as_deref(), Some("UNSUBSCRIBED"));
    assert_eq!(world.subscription_requests(), requests + 1);
    world.run(&config, &["run", "--once"]).await;
    assert_eq!(world.subscription_requests(), requests + 1, "and only once");

    // A group change in eCom moves the profile from list to list.
    let person3 = "person3@example.com";
    assert!(!world.on_list("LIST_VIP", person3) && !world.on_list("LIST_STUDENTS", person3));
    world.pos.world().lock().unwrap().edit_ecom_customer(5003, |c| {
        c["customerGroupId"] = json!(sb::ECOM_GROUPS[1].0);
        c["customerGroupName"] = json!("VIP");
    });
    world.run(&config, &["run", "--once"]).await;
    assert!(world.on_list("LIST_VIP", person3), "joined VIP's list");
    world.pos.world().lock().unwrap().edit_ecom_customer(5003, |c| {
        c["customerGroupId"] = json!(sb::ECOM_GROUPS[2].0);
        c["customerGroupName"] = json!("Students");
    });
    world.run(&config, &["run", "--once"]).await;
    assert!(world.on_list("LIST_STUDENTS", person3) && !world.on_list("LIST_VIP", person3), "moved to Students' list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tillflow_refuses_a_forged_ecom_webhook_and_fetches_what_a_signed_one_names() {
    let world = World::start().await;
    let port = tillflow_e2e::free_port();
    let config = world.config(Some(port));
    let child = world.command(&config, &["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let _running = Running(child);
    let placed = expected_placed(&world.pos);
    eventually(Duration::from_secs(90), "the history import", || world.placed() == placed).await;

    let http = tillflow_http::reqwest::Client::new();
    let post = |(headers, body): (Vec<(String, String)>, Vec<u8>)| {
        let mut request = http.post(format!("http://127.0.0.1:{port}/webhooks/store"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(body).send()
    };
    // eCom changes person6's group; a forged webhook says so first.
    world.pos.world().lock().unwrap().edit_ecom_customer(5006, |c| {
        c["customerGroupId"] = json!(sb::ECOM_GROUPS[2].0);
        c["customerGroupName"] = json!("Students");
    });
    let forged = sb::ecom_webhook("customer.updated", 5006, "guessed-secret");
    assert_eq!(post(forged).await.unwrap().status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        world.property("person6@example.com", "customer_group"),
        Value::Null,
        "a forged webhook changes nothing"
    );
    let signed = sb::ecom_webhook("customer.updated", 5006, sb::ECOM_CLIENT_SECRET);
    assert_eq!(post(signed).await.unwrap().status().as_u16(), 200);
    eventually(Duration::from_secs(30), "person6's new group in Klaviyo", || {
        world.property("person6@example.com", "customer_group") == json!("Students")
    })
    .await;
}
