//! Retail POS → E-goi and → Customer.io end to end with the real binary,
//! consent synced and groups kept: E-goi tags each contact with its group
//! (`group_tags`) and sets its status from the preference; Customer.io keeps
//! `customer_group`, `accepts_marketing_email` and `unsubscribed`; an
//! opt-out and a group change at the source reach both once.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_sink_egoi::sandbox::{DOMAIN, EgoiSandbox, LIST_ID};
use tillflow_source_retail_pos::sandbox::{self as sb, RetailPosSandbox};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const CUSTOMERS: u64 = 30;

struct World {
    pos: RetailPosSandbox,
    egoi: EgoiSandbox,
    cio: CustomerIoSandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let pos = RetailPosSandbox::start().await.unwrap();
        pos.seed(CUSTOMERS, 40);
        let egoi = EgoiSandbox::start("egoi_e2e").await.unwrap();
        let cio = CustomerIoSandbox::start("site_e2e", "key_e2e").await.unwrap();
        Self { pos, egoi, cio, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        let text = format!(
            r#"[state]
url = "sqlite://state.db"

[sources.store]
type = "retail-pos"
domain_prefix = "sandbox"
base_url = "{store}"
personal_token = "{token}"
currency = "NZD"
ecom = {{ store_id = "{store_id}", token = "{ecom_token}", base_url = "{ecom}" }}

[sinks.egoi]
type = "egoi"
api_key = "egoi_e2e"
base_url = "{egoi}"
list_id = {LIST_ID}
domain = "{DOMAIN}"
store_url = "https://{DOMAIN}"
import_poll = "20ms"
group_tags = ["VIP", "Students"]
marketing_consent = "sync"

[sinks.cio]
type = "customerio"
site_id = "site_e2e"
api_key = "key_e2e"
base_url = "{cio}"
marketing_consent = "sync"

[[pipelines]]
name = "store-to-egoi"
source = "store"
sink = "egoi"

[[pipelines]]
name = "store-to-cio"
source = "store"
sink = "cio"
"#,
            store = self.pos.store_url(),
            token = sb::PERSONAL_TOKEN,
            store_id = sb::STORE_ID,
            ecom_token = sb::ECOM_TOKEN,
            ecom = self.pos.ecom_url(),
            egoi = self.egoi.base_url(),
            cio = self.cio.base_url(),
        );
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn run_once(&self) {
        let mut command = Command::new(TILLFLOW);
        command
            .args(["run", "--once", "--config"])
            .arg(self.config())
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn");
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        assert!(
            output.status.success(),
            "run --once failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn tags(&self, email: &str) -> Vec<String> {
        self.egoi.world().lock().unwrap().tags_of(email)
    }

    fn status(&self, email: &str) -> Option<String> {
        self.egoi.world().lock().unwrap().contact(email).map(|c| c.status.clone())
    }

    fn person(&self, n: u64) -> serde_json::Map<String, Value> {
        let world = self.cio.world();
        let world = world.lock().unwrap();
        world.people.get(&format!("id:{}", sb::pos_id(n))).map(|p| p.attributes.clone()).unwrap_or_default()
    }
}

fn title(n: u64) -> Option<&'static str> {
    let ecom_side = sb::in_both(n) && sb::ecom_newer(n);
    if ecom_side {
        sb::ECOM_GROUPS.iter().find(|g| g.0 == sb::ecom_group(n)).map(|g| g.1).filter(|t| *t != "General")
    } else {
        sb::GROUPS.iter().find(|g| g.0 == sb::pos_group(n)).map(|g| g.1).filter(|t| *t != "All Customers")
    }
}

fn marketing(n: u64) -> bool {
    let pos = !n.is_multiple_of(4);
    if sb::in_both(n) && sb::ecom_newer(n) { sb::ecom_marketing(n).unwrap_or(pos) } else { pos }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_become_e_goi_tags_and_preferences_both_sinks_own_consent_once_per_change() {
    let world = World::start().await;
    world.run_once().await;
    let mut tagged = 0;
    for n in 1..=CUSTOMERS {
        let Some(email) = sb::seeded_email(n) else { continue };
        let group = title(n);
        let want: Vec<String> =
            group.filter(|g| ["VIP", "Students"].contains(g)).map(str::to_owned).into_iter().collect();
        tagged += want.len();
        assert_eq!(world.tags(&email), want, "{email}: E-goi tags");
        let status = if marketing(n) { "active" } else { "unsubscribed" };
        assert_eq!(world.status(&email).as_deref(), Some(status), "{email}: E-goi status");
        let person = world.person(n);
        assert_eq!(person["customer_group"], group.map_or(Value::Null, |g| json!(g)), "{email}: Customer.io group");
        assert_eq!(person["accepts_marketing_email"], json!(marketing(n)), "{email}");
        assert_eq!(person["unsubscribed"], json!(!marketing(n)), "{email}: Customer.io unsubscribed");
    }
    assert!(tagged >= 5, "{tagged} tagged contacts");
    // People in both stores (eCom ids 5000 + n) who bought online are known
    // to Customer.io, which keys people by id, under their X-Series id only.
    let stray: Vec<String> =
        world.cio.world().lock().unwrap().people.keys().filter(|k| k.starts_with("id:ecom:5")).cloned().collect();
    assert!(stray.is_empty(), "a person in both stores was sent under an eCom id: {stray:?}");

    // An opt-out at the till and a group change in eCom, once each.
    world.pos.world().lock().unwrap().edit_customer(&sb::pos_id(2), |c| c["do_not_email"] = json!(true));
    world.pos.world().lock().unwrap().edit_ecom_customer(5006, |c| {
        c["customerGroupId"] = json!(sb::ECOM_GROUPS[2].0);
        c["customerGroupName"] = json!("Students");
    });
    let actions = world.egoi.world().lock().unwrap().contact_actions;
    world.run_once().await;
    assert_eq!(world.status("person2@example.com").as_deref(), Some("unsubscribed"));
    assert_eq!(world.person(2)["unsubscribed"], json!(true));
    assert_eq!(world.tags("person6@example.com"), vec!["Students".to_owned()]);
    let after = world.egoi.world().lock().unwrap().contact_actions;
    assert_eq!(after - actions, 3, "one unsubscribe; Students attached and VIP detached");
    world.run_once().await;
    assert_eq!(world.egoi.world().lock().unwrap().contact_actions, after, "nothing again");
}
