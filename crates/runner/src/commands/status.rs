//! `tillflow status`: per pipeline, its cursors and their lag, counts by
//! event and skip reason, dead letters, queued webhooks and its source's
//! notices (group conflicts, shared emails), and on Postgres which runner
//! holds it, since when, until when. It reads the state store and never
//! creates one.

use super::{load, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;

pub async fn status(path: &Path, json: bool, only: Option<&str>) -> CommandResult {
    let (config, _) = load(path)?;
    let specs = selected(&config, only)?;
    let state = state_store::open_existing(&config, Access::Shared).await?;
    let holders = match state_store::open_postgres_existing(&config).await? {
        Some(store) => Some(store.holders().await.map_err(Failure::pipeline)?),
        None => None,
    };
    let documents = crate::status_data::documents(&specs, state.as_deref(), holders.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::Value::Array(documents)).expect("json"));
        return Ok(());
    }
    for document in documents {
        let field = |key: &str| document[key].as_str().unwrap_or("never").to_owned();
        println!("pipeline {} ({} → {})", field("pipeline"), field("source"), field("sink"));
        if let Some(lease) = document["lease"].as_object() {
            match lease.get("runner").and_then(|runner| runner.as_str()) {
                Some(runner) => println!(
                    "  held by         {runner} since {} (lease until {}, token {})",
                    lease["since"].as_str().unwrap_or(""),
                    lease["expires_at"].as_str().unwrap_or(""),
                    lease["token"]
                ),
                None => println!("  held by         no runner now"),
            }
        }
        println!("  first started   {}", field("started_at"));
        println!("  last delivery   {}", field("last_delivery_at"));
        for stream in document["streams"].as_array().into_iter().flatten() {
            println!(
                "  stream {:<10} checkpoint {}  (committed {}s ago)",
                stream["stream"].as_str().unwrap_or(""),
                stream["checkpoint"],
                stream["lag_seconds"]
            );
        }
        let counts = |key: &str| -> String {
            let map = document[key].as_object().cloned().unwrap_or_default();
            if map.is_empty() {
                "none".into()
            } else {
                map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            }
        };
        println!("  delivered       {}", counts("delivered"));
        println!("  skipped         {}", counts("skipped"));
        println!("  dead letters    {}", document["dead_letters"]);
        println!("  webhooks queued {}", document["webhooks_pending"]);
        let notices = document["source_notices"].as_array().cloned().unwrap_or_default();
        if !notices.is_empty() {
            println!("  source notices  {}", notices.len());
            for notice in notices {
                println!("    {}", notice.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}
