//! `tillflow status`: per pipeline, its cursors and their lag, counts by
//! event and skip reason, dead letters, queued webhooks and its source's
//! notices (group conflicts, shared emails), and on Postgres which runner
//! holds it, since when, until when. It reads the state store and never
//! creates one.

use super::{load, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;
use tillflow_core::state::{EventCount, Outcome, PipelineStatus, SOURCE_NOTICE_PREFIX};

/// Notices listed per source, at most.
const NOTICES_SHOWN: u32 = 500;

pub async fn status(path: &Path, json: bool, only: Option<&str>) -> CommandResult {
    let (config, _) = load(path)?;
    let specs = selected(&config, only)?;
    let state = state_store::open_existing(&config, Access::Shared).await?;
    let holders = match state_store::open_postgres_existing(&config).await? {
        Some(store) => Some(store.holders().await.map_err(Failure::pipeline)?),
        None => None,
    };
    let now = jiff::Timestamp::now();
    let mut documents = Vec::new();
    for spec in specs {
        let (status, pending, notices) = match &state {
            Some(state) => (
                state.status(&spec.name).await.map_err(Failure::pipeline)?,
                state.inbox_pending(&spec.name, &spec.source, 10_000).await.map_err(Failure::pipeline)?.len(),
                state
                    .source_state_scan(&spec.source, SOURCE_NOTICE_PREFIX, NOTICES_SHOWN)
                    .await
                    .map_err(Failure::pipeline)?
                    .into_iter()
                    .map(|(_, text)| text)
                    .filter(|text| !text.is_empty())
                    .collect::<Vec<String>>(),
            ),
            None => (PipelineStatus::default(), 0, Vec::new()),
        };
        let streams: Vec<serde_json::Value> = status
            .streams
            .iter()
            .map(|s| {
                serde_json::json!({
                    "stream": s.stream,
                    "checkpoint": s.checkpoint.0,
                    "updated_at": s.updated_at.to_string(),
                    "lag_seconds": now.duration_since(s.updated_at).as_secs(),
                })
            })
            .collect();
        let mut delivered = serde_json::Map::new();
        let mut skipped = serde_json::Map::new();
        let mut dead_lettered_events = 0u64;
        for EventCount { kind, outcome, count } in &status.counts {
            match outcome {
                Outcome::Delivered => {
                    delivered.insert(kind.as_str().to_owned(), (*count).into());
                }
                Outcome::Skipped(reason) => {
                    let slot = skipped.entry(reason.clone()).or_insert(0u64.into());
                    *slot = (slot.as_u64().unwrap_or(0) + count).into();
                }
                Outcome::DeadLettered => dead_lettered_events += count,
            }
        }
        let lease = holders.as_ref().map(|holders| match holders.iter().find(|h| h.pipeline == spec.name) {
            Some(lease) if lease.holder.is_some() => serde_json::json!({
                "runner": lease.holder,
                "since": lease.since.to_string(),
                "expires_at": lease.expires_at.to_string(),
                "token": lease.token,
            }),
            _ => serde_json::json!({"runner": null}),
        });
        documents.push(serde_json::json!({
            "lease": lease,
            "pipeline": spec.name,
            "source": spec.source,
            "sink": spec.sink,
            "started_at": status.started_at.map(|t| t.to_string()),
            "last_delivery_at": status.last_delivery_at.map(|t| t.to_string()),
            "streams": streams,
            "delivered": delivered,
            "skipped": skipped,
            "dead_lettered_events": dead_lettered_events,
            "dead_letters": status.dead_letters,
            "webhooks_pending": pending,
            "source_notices": notices,
        }));
    }
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
