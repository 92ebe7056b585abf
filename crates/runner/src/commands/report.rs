//! `tillflow report`: orders per local day in a time zone, as read from the
//! source and as delivered and skipped (the figures come from
//! `crate::report`).

use super::{load, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;
use tillflow_core::state::OutcomeKind;

pub async fn report(path: &Path, pipeline: &str, zone_name: &str, days: u32) -> CommandResult {
    let (config, _) = load(path)?;
    selected(&config, Some(pipeline))?;
    let zone = crate::report::zone(zone_name)?;
    let Some(state) = state_store::open_existing(&config, Access::Shared).await? else { return Ok(()) };
    let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
    let first = today.checked_sub(jiff::Span::new().days(i64::from(days.max(1)) - 1)).unwrap_or(today);
    let since = crate::report::start_of(&zone, first);
    let read = state.orders_read_times(pipeline, since).await.map_err(Failure::pipeline)?;
    let delivered = state
        .event_times(pipeline, tillflow_core::EventKind::Placed, OutcomeKind::Delivered, since)
        .await
        .map_err(Failure::pipeline)?;
    let skipped = state
        .event_times(pipeline, tillflow_core::EventKind::Placed, OutcomeKind::Skipped, since)
        .await
        .map_err(Failure::pipeline)?;
    let rows = crate::report::day_rows(&zone, today, days, &read, &delivered, &skipped);
    crate::report::print(pipeline, zone_name, &rows);
    Ok(())
}
