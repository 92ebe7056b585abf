//! What `tillflow status` knows of each pipeline, as one JSON document
//! each: its cursors and their lag, counts by event and skip reason, dead
//! letters, queued webhooks, its source's notices and, on Postgres, its
//! lease. The command prints them; the status page draws them.

use crate::config::PipelineConfig;
use crate::exit::Failure;
use tillflow_core::StateStore;
use tillflow_core::state::{EventCount, Outcome, PipelineStatus, SOURCE_NOTICE_PREFIX};
use tillflow_state_postgres::LeaseHolder;

/// Notices listed per source, at most.
const NOTICES_SHOWN: u32 = 500;

/// The documents of `specs`, read from `state` (all empty when there is none yet).
pub async fn documents(
    specs: &[&PipelineConfig],
    state: Option<&dyn StateStore>,
    holders: Option<&[LeaseHolder]>,
) -> Result<Vec<serde_json::Value>, Failure> {
    let now = jiff::Timestamp::now();
    let mut documents = Vec::new();
    for spec in specs {
        let (status, pending, notices) = match state {
            Some(state) => (
                state.status(&spec.name).await.map_err(Failure::pipeline)?,
                state.inbox_pending_count(&spec.name, &spec.source).await.map_err(Failure::pipeline)?,
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
        let lease = holders.map(|holders| match holders.iter().find(|h| h.pipeline == spec.name) {
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
    Ok(documents)
}
