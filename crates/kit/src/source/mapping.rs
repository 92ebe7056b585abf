//! The small helpers every source's mapping uses: trimmed text, decimals and
//! money that name the field they failed on, timestamps with their offset
//! (or a documented zone), and record identity.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use std::fmt;
use tillflow_core::model::{Currency, Money, SourceIdentity, Text, parse_decimal};

/// The text trimmed, `None` when empty.
pub fn non_empty(text: &str) -> Option<Text> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| Text::new(trimmed))
}

/// A platform's decimal text ("" is zero); the error names `what`, which is
/// only written out on an error (callers pass `format_args!`: a context
/// formatted for every field read was a tenth of an order's mapping).
pub fn decimal(text: &str, what: impl fmt::Display) -> Result<Decimal, String> {
    parse_decimal(text).ok_or_else(|| format!("{what} `{}` is not a decimal number", text.trim()))
}

pub fn money(text: &str, currency: &Currency, what: impl fmt::Display) -> Result<Money, String> {
    Ok(Money::new(decimal(text, what)?, *currency))
}

/// A timestamp that must carry its offset (`2016-11-10T13:51:54+00:00`);
/// `None` for "".
pub fn timestamp_with_offset(text: &str, what: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<Timestamp>().map(Some).map_err(|_| format!("{what} `{text}` is not a timestamp with an offset"))
}

/// A timestamp without an offset read in `zone` (the platform's documented
/// zone; UTC for fields documented as GMT); one with an offset or `Z` is
/// honoured as written. `None` for "".
pub fn timestamp_in_zone(text: &str, zone: &TimeZone, what: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let in_zone = || text.parse::<DateTime>().and_then(|civil| civil.to_zoned(zone.clone())).map(|z| z.timestamp());
    // The parse that fails is not tried first: a failed parse builds an
    // error (an allocation and its message), and most platforms' times are
    // one kind or the other every time (WooCommerce's `*_gmt` carry none).
    let parsed = if may_carry_offset(text) {
        text.parse::<Timestamp>().or_else(|_| in_zone())
    } else {
        in_zone().or_else(|_| text.parse::<Timestamp>())
    };
    parsed.map(Some).map_err(|_| format!("{what} `{text}` is not a timestamp"))
}

/// Whether the text after a date could hold an offset (`Z`, `+hh`, `-hh`,
/// or the minus sign U+2212): a text with none of them cannot be a
/// timestamp with an offset.
fn may_carry_offset(text: &str) -> bool {
    text.get(10..).is_none_or(|time| time.contains(['Z', 'z', '+', '-', '\u{2212}']))
}

/// Where a record came from: the platform, the configured source name and
/// the platform's id.
pub fn identity(platform: &str, source: &str, id: impl fmt::Display) -> SourceIdentity {
    SourceIdentity { platform: platform.into(), source: source.into(), id: Text::display(id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_their_offset_or_take_the_zone() {
        let utc = TimeZone::UTC;
        assert_eq!(
            timestamp_in_zone("2017-03-22T19:28:02", &utc, "date").unwrap().unwrap().to_string(),
            "2017-03-22T19:28:02Z"
        );
        assert_eq!(
            timestamp_in_zone("2017-03-22T19:28:02+02:00", &utc, "date").unwrap().unwrap().to_string(),
            "2017-03-22T17:28:02Z"
        );
        // An offset anywhere it may be written is honoured, whichever parse is tried first.
        for (text, utc_text) in [
            ("2017-03-22T19:28:02Z", "2017-03-22T19:28:02Z"),
            ("2017-03-22T19:28:02z", "2017-03-22T19:28:02Z"),
            ("2017-03-22T19:28:02-05:00", "2017-03-23T00:28:02Z"),
            ("2017-03-22 19:28:02.5+01", "2017-03-22T18:28:02.5Z"),
            ("20170322T192802-0500", "2017-03-23T00:28:02Z"),
            ("20170322T192802", "2017-03-22T19:28:02Z"),
        ] {
            assert_eq!(timestamp_in_zone(text, &utc, "date").unwrap().unwrap().to_string(), utc_text, "{text}");
        }
        let lisbon = TimeZone::get("Europe/Lisbon").unwrap();
        assert_eq!(
            timestamp_in_zone("2026-07-01T12:00:00", &lisbon, "date").unwrap().unwrap().to_string(),
            "2026-07-01T11:00:00Z",
            "summer time"
        );
        assert!(timestamp_in_zone("yesterday", &utc, "date_created").unwrap_err().contains("date_created `yesterday`"));
        assert_eq!(timestamp_with_offset("", "x").unwrap(), None);
        assert!(timestamp_with_offset("2016-11-10T13:51:54", "createTime").is_err(), "an offset is required");
    }

    #[test]
    fn a_field_is_written_out_only_when_it_failed() {
        struct Counted(std::cell::Cell<u32>);
        impl fmt::Display for Counted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.set(self.0.get() + 1);
                f.write_str("order 7 total")
            }
        }
        let what = Counted(std::cell::Cell::new(0));
        let usd = Currency::new("USD").unwrap();
        assert_eq!(money("12.50", &usd, &what).unwrap().amount, Decimal::new(1250, 2));
        assert_eq!(what.0.get(), 0, "nothing written for a field that read");
        assert_eq!(money("twelve", &usd, &what).unwrap_err(), "order 7 total `twelve` is not a decimal number");
        assert_eq!(what.0.get(), 1);
    }

    #[test]
    fn decimals_name_the_field_they_failed_on() {
        assert_eq!(decimal(" 12.50 ", "total").unwrap(), Decimal::new(1250, 2));
        assert_eq!(decimal("", "total").unwrap(), Decimal::ZERO);
        assert_eq!(decimal("12,50", "order 7 total").unwrap_err(), "order 7 total `12,50` is not a decimal number");
    }
}
