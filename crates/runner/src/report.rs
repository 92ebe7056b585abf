//! `tillflow report`: orders per local day in a chosen time zone, as read from
//! the source and as delivered, side by side. A day that does not match the
//! store's own total is almost always a time-zone mismatch; this shows it in
//! one command.

use crate::exit::Failure;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub day: Date,
    pub read: u64,
    pub delivered: u64,
    pub skipped: u64,
}

/// Counts per local day for the `days` days ending with `today`.
pub fn day_rows(
    zone: &TimeZone,
    today: Date,
    days: u32,
    read: &[Timestamp],
    delivered: &[Timestamp],
    skipped: &[Timestamp],
) -> Vec<DayRow> {
    let first = today.checked_sub(((days.max(1) - 1) as i64).days()).unwrap_or(today);
    let mut rows: BTreeMap<Date, DayRow> = BTreeMap::new();
    let mut day = first;
    while day <= today {
        rows.insert(day, DayRow { day, read: 0, delivered: 0, skipped: 0 });
        day = match day.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    let local = |at: &Timestamp| at.to_zoned(zone.clone()).date();
    for at in read {
        if let Some(row) = rows.get_mut(&local(at)) {
            row.read += 1;
        }
    }
    for at in delivered {
        if let Some(row) = rows.get_mut(&local(at)) {
            row.delivered += 1;
        }
    }
    for at in skipped {
        if let Some(row) = rows.get_mut(&local(at)) {
            row.skipped += 1;
        }
    }
    rows.into_values().collect()
}

/// The UTC instant the local day `first` starts in `zone`.
pub fn start_of(zone: &TimeZone, first: Date) -> Timestamp {
    first.to_zoned(zone.clone()).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn zone(name: &str) -> Result<TimeZone, Failure> {
    TimeZone::get(name).map_err(|_| {
        Failure::config(format!("--tz: `{name}` is not an IANA time zone (e.g. Europe/Lisbon, America/New_York, UTC)"))
    })
}

pub fn print(pipeline: &str, zone_name: &str, rows: &[DayRow]) {
    println!("orders per day in {zone_name}, pipeline {pipeline}");
    println!("{:<12} {:>16} {:>10} {:>8} {:>11}", "day", "read (source)", "delivered", "skipped", "difference");
    for row in rows {
        let difference = row.read as i64 - row.delivered as i64 - row.skipped as i64;
        println!(
            "{:<12} {:>16} {:>10} {:>8} {:>11}",
            row.day.to_string(),
            row.read,
            row.delivered,
            row.skipped,
            if difference == 0 { "0".to_owned() } else { format!("{difference:+}") }
        );
    }
    println!(
        "A day that differs from the store's own total is usually a time-zone mismatch: these days are in {zone_name}."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_fall_on_their_local_day() {
        let new_york = TimeZone::get("America/New_York").unwrap();
        // 03:30 UTC on March 10th is the evening of March 9th in New York.
        let late = "2024-03-10T03:30:00Z".parse::<Timestamp>().unwrap();
        let noon = "2024-03-10T16:00:00Z".parse::<Timestamp>().unwrap();
        let today = Date::new(2024, 3, 10).unwrap();
        let rows = day_rows(&new_york, today, 2, &[late, noon], &[late], &[noon]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], DayRow { day: Date::new(2024, 3, 9).unwrap(), read: 1, delivered: 1, skipped: 0 });
        assert_eq!(rows[1], DayRow { day: today, read: 1, delivered: 0, skipped: 1 });
        let utc = day_rows(&TimeZone::UTC, today, 2, &[late, noon], &[late], &[noon]);
        assert_eq!(utc[1].read, 2, "in UTC both are on the 10th");
    }

    #[test]
    fn a_day_starts_at_local_midnight() {
        let lisbon = TimeZone::get("Europe/Lisbon").unwrap();
        let start = start_of(&lisbon, Date::new(2024, 7, 1).unwrap());
        assert_eq!(start.to_string(), "2024-06-30T23:00:00Z");
    }

    #[test]
    fn an_unknown_zone_is_a_configuration_error() {
        assert_eq!(zone("Mars/Olympus").unwrap_err().code, 2);
    }
}
