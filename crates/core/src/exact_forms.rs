//! How a time or an amount of the model serializes: as its text to JSON and
//! every other human-readable format, as its exact numbers to one that is
//! not (the fingerprint encoding from format 4 on, which no one reads).
//!
//! Why: the content hash encodes every record read, and formatting its times
//! (RFC 3339) and amounts (decimal text) was two fifths of the encoding. The
//! numbers say as much: a time's nanoseconds tell apart the times its text
//! does, a decimal's sixteen bytes (sign, scale, mantissa) the amounts its
//! text does ("10.5" and "10.50" included). Used with `serialize_with`, so a
//! type keeps its derived shape and JSON reads as it always did. (`Currency`,
//! a type of the model's own, does the same in its `Serialize`: its three
//! bytes where no one reads them.)

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// A time: RFC 3339 text, or its nanoseconds since the Unix epoch.
pub fn timestamp<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        time.serialize(serializer)
    } else {
        serializer.serialize_i128(time.as_nanosecond())
    }
}

/// An optional time, as `Option` itself serializes (`None`, or `Some` of the time).
pub fn optional_timestamp<S: Serializer>(time: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_some(&ExactTime(*time)),
        None => serializer.serialize_none(),
    }
}

/// A decimal: its text, or rust_decimal's sixteen-byte form of it.
pub fn decimal<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        Serialize::serialize(value, serializer)
    } else {
        serializer.serialize_bytes(&value.serialize())
    }
}

/// A time that serializes by [`timestamp`], inside an `Option`.
struct ExactTime(Timestamp);

impl Serialize for ExactTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        timestamp(&self.0, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Forms {
        #[serde(serialize_with = "timestamp")]
        at: Timestamp,
        #[serde(serialize_with = "optional_timestamp")]
        maybe: Option<Timestamp>,
        #[serde(serialize_with = "optional_timestamp")]
        never: Option<Timestamp>,
        #[serde(serialize_with = "decimal")]
        amount: Decimal,
    }

    #[derive(Serialize)]
    struct Plain {
        at: Timestamp,
        maybe: Option<Timestamp>,
        never: Option<Timestamp>,
        amount: Decimal,
    }

    fn forms(at: &str, amount: &str) -> (Forms, Plain) {
        let at: Timestamp = at.parse().unwrap();
        let amount: Decimal = amount.parse().unwrap();
        (Forms { at, maybe: Some(at), never: None, amount }, Plain { at, maybe: Some(at), never: None, amount })
    }

    #[test]
    fn json_reads_as_the_derived_forms_write_it() {
        for (at, amount) in [("2026-03-01T09:05:01.123456789Z", "-10.50"), ("1970-01-01T00:00:00Z", "0")] {
            let (exact, plain) = forms(at, amount);
            assert_eq!(serde_json::to_string(&exact).unwrap(), serde_json::to_string(&plain).unwrap());
        }
    }

    #[test]
    fn the_exact_forms_tell_apart_what_the_text_does() {
        let encode = |value: &Forms| {
            let mut out = Vec::new();
            crate::fingerprint::write(&mut out, value);
            out
        };
        let base = encode(&forms("2026-03-01T09:05:01Z", "10.5").0);
        for (at, amount) in [("2026-03-01T09:05:01.000000001Z", "10.5"), ("2026-03-01T09:05:01Z", "10.50")] {
            assert_ne!(encode(&forms(at, amount).0), base, "{at} {amount}");
        }
        assert_eq!(encode(&forms("2026-03-01T09:05:01Z", "10.5").0), base);
    }
}
