//! The content hash formats a ledger can hold: each older one is still
//! computed byte for byte as it was written, so a ledger row of that format
//! is compared with what its record hashes to now (nothing unchanged is
//! resent after an upgrade, no change is missed).

use std::sync::Arc;
use tillflow_core::Subject;
use tillflow_core::keys::{content_hash, content_hash_v3, hash_format};
use tillflow_core::model::{PersonTotals, Record};

/// Records of every kind, with every optional time and amount set somewhere,
/// amounts of several scales and signs and times down to the nanosecond.
fn records() -> Vec<Record> {
    serde_json::from_str(include_str!("fixtures/hashed-records.json")).expect("the fixture records read")
}

/// A person's totals event subject, as `pipeline::totals` hashes it.
fn totals_subject() -> Subject {
    let Record::Customer(customer) = &records()[2] else { panic!("the third fixture is a customer") };
    Subject::PersonTotals {
        person: Arc::new(customer.person.clone()),
        totals: PersonTotals {
            revenue: "12.120".parse().unwrap(),
            currency: Some(tillflow_core::model::Currency::new("EUR").unwrap()),
            orders: 2,
            last_order_at: Some("2026-03-01T09:05:01.123456789Z".parse().unwrap()),
        },
    }
}

/// What format 3 gave the fixture records and the totals subject when it was
/// the current format (computed by 76fc0cc): ledgers written since hold these.
const FORMAT_3: [&str; 7] = [
    "v37a41a8e37fc9e464d56f50187c3c77",
    "v3bc2a1df03560f2e8c640a0e99721d9",
    "v319f8365639f2b5765d65520acf4780",
    "v3989f5cb6b2b6d245bd92429e92b55f",
    "v32b8b1e75a439a3e23f09963ab5c52d",
    "v33e559c986675ef15a6c6254af4b93a",
    "v3e6ecd09277259910a76cf178c19d05",
];

#[test]
fn format_3_hashes_are_what_ledgers_hold() {
    let mut hashes: Vec<String> = records().iter().map(content_hash_v3).collect();
    hashes.push(content_hash_v3(&totals_subject()));
    assert_eq!(hashes, FORMAT_3);
}

/// Format 4 encodes times and amounts as their numbers: every record hashes
/// to another value than format 3's, and what format 3 told apart (a
/// nanosecond, an amount's scale) format 4 tells apart too.
#[test]
fn format_4_tells_apart_what_format_3_did() {
    let records = records();
    for record in &records {
        let (v3, v4) = (content_hash_v3(record), content_hash(record));
        assert!(hash_format(&v4) == 4 && v4.len() == 32, "{v4}");
        assert_ne!(v3[2..], v4[2..]);
    }
    let fixture: serde_json::Value = serde_json::from_str(include_str!("fixtures/hashed-records.json")).unwrap();
    let variants = [
        ("/0/placed_at", "2026-03-01T09:05:01.123456788Z"),
        ("/0/completed_at", "2026-03-01T18:30:00.0010Z"),
        ("/0/lines/0/quantity", "1.50"),
        ("/0/totals/tax/amount", "2.47"),
        ("/0/refunded/amount", "1.10"),
        ("/2/group_changed_at", "2025-12-24T00:00:01Z"),
        ("/3/lines/0/quantity", "-0.50"),
        ("/5/price/amount", "10.5"),
    ];
    let mut seen = (false, false);
    for (pointer, changed) in variants {
        let mut json = fixture.clone();
        let record = pointer.split('/').nth(1).unwrap().parse::<usize>().unwrap();
        let field = json.pointer_mut(pointer).unwrap();
        let same_text = field.as_str() == Some(changed);
        *field = changed.into();
        let variant: Vec<Record> = serde_json::from_value(json).unwrap();
        let (before, after) = (&records[record], &variant[record]);
        // What the record writes tells apart what the hashes must: "1.50"
        // from "1.5" (which compare equal as decimals), not "...0010Z" from
        // "...001Z" (one time, written back the same).
        let same_value = serde_json::to_value(before).unwrap() == serde_json::to_value(after).unwrap();
        assert!(!same_text);
        seen = (seen.0 || same_value, seen.1 || !same_value);
        assert_eq!(content_hash_v3(before) == content_hash_v3(after), same_value, "{pointer}");
        assert_eq!(content_hash(before) == content_hash(after), same_value, "{pointer}");
    }
    assert_eq!(seen, (true, true), "the variants hold a change of text alone and changes of value");
}

/// The model's JSON (what sinks, dead letters and the state read) keeps the
/// text of times and amounts: the records write back what they were read from.
#[test]
fn json_keeps_times_and_amounts_as_text() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!("fixtures/hashed-records.json")).unwrap();
    let written: serde_json::Value = serde_json::to_value(records()).unwrap();
    assert_eq!(written, fixture);
}
