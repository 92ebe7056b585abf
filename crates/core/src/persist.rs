//! Versioned documents for what the state store keeps as JSON (dead-lettered
//! events and records). Readers accept every format version they know; a newer
//! one is refused with a clear message instead of being misread.

use crate::events::Event;
use crate::source::BadRecord;
use serde::{Deserialize, Serialize};

pub const DOCUMENT_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Document<T> {
    format: u32,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize, Deserialize)]
struct EventBody {
    event: Event,
}

#[derive(Serialize, Deserialize)]
struct BadRecordBody {
    bad_record: BadRecord,
}

pub fn event_document(event: &Event) -> serde_json::Value {
    serde_json::to_value(Document { format: DOCUMENT_FORMAT, body: EventBody { event: event.clone() } })
        .expect("events always serialize")
}

pub fn bad_record_document(bad: &BadRecord) -> serde_json::Value {
    serde_json::to_value(Document { format: DOCUMENT_FORMAT, body: BadRecordBody { bad_record: bad.clone() } })
        .expect("bad records always serialize")
}

fn check_format(value: &serde_json::Value) -> Result<(), String> {
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(format) if format <= u64::from(DOCUMENT_FORMAT) => Ok(()),
        Some(format) => {
            Err(format!("stored document has format {format}; this tillflow reads up to {DOCUMENT_FORMAT}"))
        }
        None => Err("stored document has no format version".into()),
    }
}

pub fn read_event_document(value: &serde_json::Value) -> Result<Event, String> {
    check_format(value)?;
    let document: Document<EventBody> =
        serde_json::from_value(value.clone()).map_err(|e| format!("stored event: {e}"))?;
    Ok(document.body.event)
}

pub fn read_bad_record_document(value: &serde_json::Value) -> Result<BadRecord, String> {
    check_format(value)?;
    let document: Document<BadRecordBody> =
        serde_json::from_value(value.clone()).map_err(|e| format!("stored record: {e}"))?;
    Ok(document.body.bad_record)
}
