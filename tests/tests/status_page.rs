//! The status page `tillflow run` serves at `/`, in a real headless browser
//! (Debian's `chromium`; `.ci/run` installs it): it renders, its chart has a
//! bar group per day, its numbers are `tillflow status --json`'s, it shows no
//! email; and a server other machines can reach asks for the admin token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tillflow_e2e::woo_cio::World;
use tillflow_e2e::{Running, free_port};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const TOKEN: &str = "status-page-admin-token-e2e";

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().map(|name| PathBuf::from("/usr/bin").join(name)).find(|path| path.exists())
}

/// The world's config with the `[server]` table `server`, saved as `name`.
fn with_server(world: &World, server: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(world.config(None)).unwrap();
    let text = text.replacen("[sources.shop]", &format!("[server]\n{server}\n\n[sources.shop]"), 1);
    let path = world.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn serving(port: u16) {
    let client = tillflow_http::reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut up = false;
    for _ in 0..300 {
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the run serves /healthz");
}

/// The page as the browser has it, and a screenshot in `dir`.
fn browse(chromium: &Path, url: &str, dir: &Path) -> String {
    let profile = dir.join("chromium-profile");
    let common = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,1800"];
    let dom = Command::new(chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(dom.status.success(), "chromium: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = dir.join("status-page.png");
    let status = Command::new(chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(status.status.success(), "chromium screenshot: {}", String::from_utf8_lossy(&status.stderr));
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
    if let Ok(keep) = std::env::var("TILLFLOW_STATUS_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    String::from_utf8(dom.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_the_status_numbers_and_a_bar_group_per_day() {
    let Some(chromium) = chromium() else {
        assert!(std::env::var("TILLFLOW_REQUIRE_CHROMIUM").is_err(), "chromium is required here and missing");
        eprintln!("no chromium here: the status page test does not run (.ci/run installs it)");
        return;
    };
    let world = World::start(TILLFLOW).await;
    let port = free_port();
    let config = with_server(&world, &format!("listen = \"127.0.0.1:{port}\""), "page.toml");
    world.run_once(&config).await;
    let _run = Running(world.command(&config, &["run"]).spawn().unwrap());
    serving(port).await;

    let dom = browse(&chromium, &format!("http://127.0.0.1:{port}/?tz=Europe/Lisbon"), world.dir.path());
    assert!(dom.contains("data-pipeline=\"shop-to-crm\""), "{dom}");
    assert_eq!(dom.matches("<g class=\"day\"").count(), 14, "a bar group per day of the chart");
    assert!(dom.contains("Orders per day in Europe/Lisbon"), "the zone the form asked for");
    assert!(!dom.contains("@example.com"), "no email on the page");

    let status = world.command(&config, &["status", "--json"]).output().unwrap();
    let documents: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let document = &documents[0];
    let delivered = document["delivered"].as_object().unwrap();
    assert!(!delivered.is_empty());
    for (kind, count) in delivered {
        assert!(dom.contains(&format!("data-event=\"{kind}\" data-count=\"{count}\"")), "{kind} {count} in\n{dom}");
    }
    for (reason, count) in document["skipped"].as_object().unwrap() {
        assert!(dom.contains(&format!("data-reason=\"{reason}\" data-count=\"{count}\"")), "{reason} {count}");
    }
    assert!(dom.contains(&format!("data-dead-letters=\"{}\"", document["dead_letters"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_other_machines_reach_asks_for_the_admin_token() {
    let world = World::start(TILLFLOW).await;
    let port = free_port();
    // Without a token, run refuses to start, and makes no state.
    let open = with_server(&world, &format!("listen = \"0.0.0.0:{port}\""), "open.toml");
    let refused = world.command(&open, &["run"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("admin_token"));
    assert!(!world.dir.path().join("state.db").exists(), "nothing was opened");

    let guarded =
        with_server(&world, &format!("listen = \"0.0.0.0:{port}\"\nadmin_token = \"{TOKEN}\""), "guarded.toml");
    let _run = Running(world.command(&guarded, &["run"]).spawn().unwrap());
    serving(port).await;
    let client = tillflow_http::reqwest::Client::new();
    let get = |path: String| client.get(format!("http://127.0.0.1:{port}{path}"));
    assert_eq!(get("/".into()).send().await.unwrap().status(), 401);
    assert_eq!(get("/metrics".into()).send().await.unwrap().status(), 401);
    assert_eq!(get("/?token=not-the-token-at-all".into()).send().await.unwrap().status(), 401);
    assert_eq!(get(format!("/?token={TOKEN}")).send().await.unwrap().status(), 200);
    assert_eq!(get("/metrics".into()).bearer_auth(TOKEN).send().await.unwrap().status(), 200);
    let page = get("/".into()).bearer_auth(TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("tillflow status") && !page.contains(TOKEN), "the page does not echo a bearer token");
}
