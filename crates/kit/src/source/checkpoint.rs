//! The checkpoint codec: a source's cursor for one stream, persisted as
//! `{"v": VERSION, …its fields}`. A checkpoint from a newer tillflow is
//! refused rather than misread; older versions are read through the cursor
//! type's serde defaults. The state file is outside input like any other (a
//! file edited by hand, restored from elsewhere, damaged): a cursor that no
//! source could have written is refused with the reason, never computed with.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tillflow_core::ConnectorError;
use tillflow_core::source::Checkpoint;

/// A source's position in one stream.
pub trait Cursor: Serialize + DeserializeOwned + Default {
    /// The format this build writes; bump it when the fields change meaning.
    const VERSION: u32;

    /// Why this cursor cannot be one its source wrote; asked on every read,
    /// before any of its values is computed with.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The latest time a cursor may hold: far past any store's history, and
/// far enough inside the calendar that a window or an overlap added to it
/// or taken from it stays there.
const LATEST: Timestamp = Timestamp::constant(7_258_118_400, 0); // 2200-01-01

/// `at` as a cursor may hold it: from the UNIX epoch up to 2200.
pub fn plausible_time(field: &str, at: Timestamp) -> Result<(), String> {
    if at < Timestamp::UNIX_EPOCH || at >= LATEST {
        return Err(format!("`{field}` is {at}, outside any time a source records (1970 to 2200)"));
    }
    Ok(())
}

/// UNIX seconds as a cursor may hold them (see [`plausible_time`]).
pub fn plausible_seconds(field: &str, seconds: i64) -> Result<(), String> {
    match Timestamp::from_second(seconds) {
        Ok(at) => plausible_time(field, at),
        Err(_) => Err(format!("`{field}` is {seconds}, outside any time a source records (1970 to 2200)")),
    }
}

/// The cursor a checkpoint holds (the start of the stream when there is none).
pub fn decode<C: Cursor>(checkpoint: Option<&Checkpoint>, stream: &str) -> Result<C, ConnectorError> {
    let Some(checkpoint) = checkpoint else { return Ok(C::default()) };
    let mut fields = checkpoint.0.clone();
    let version = fields.as_object_mut().and_then(|object| object.remove("v")).and_then(|v| v.as_u64()).unwrap_or(0);
    if version > u64::from(C::VERSION) {
        return Err(ConnectorError::config(format!(
            "the {stream} checkpoint has format {version}, newer than this tillflow understands ({}); upgrade tillflow",
            C::VERSION
        )));
    }
    let unreadable = |why: String| ConnectorError::config(format!("the {stream} checkpoint is unreadable: {why}"));
    let cursor: C = serde_json::from_value(fields).map_err(|e| unreadable(e.to_string()))?;
    cursor.check().map_err(unreadable)?;
    Ok(cursor)
}

/// The checkpoint of `cursor`.
pub fn encode<C: Cursor>(cursor: &C) -> Checkpoint {
    let mut value = serde_json::to_value(cursor).expect("cursors serialize");
    let object = value.as_object_mut().expect("a cursor is a struct");
    let mut versioned = serde_json::Map::with_capacity(object.len() + 1);
    versioned.insert("v".into(), C::VERSION.into());
    versioned.append(object);
    Checkpoint(serde_json::Value::Object(versioned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Position {
        page: u32,
        since: Option<String>,
    }

    impl Cursor for Position {
        const VERSION: u32 = 2;

        fn check(&self) -> Result<(), String> {
            if self.page > 1000 { Err(format!("`page` is {}", self.page)) } else { Ok(()) }
        }
    }

    #[test]
    fn cursors_round_trip_with_their_version_and_newer_ones_are_refused() {
        let cursor = Position { page: 3, since: Some("x".into()) };
        let checkpoint = encode(&cursor);
        assert_eq!(checkpoint.0, json!({"v": 2, "page": 3, "since": "x"}));
        assert_eq!(decode::<Position>(Some(&checkpoint), "orders").unwrap(), cursor);
        assert_eq!(decode::<Position>(None, "orders").unwrap(), Position::default());
        let older = Checkpoint(json!({"v": 1, "page": 7}));
        assert_eq!(decode::<Position>(Some(&older), "orders").unwrap(), Position { page: 7, since: None });
        let newer = Checkpoint(json!({"v": 3, "page": 1}));
        let error = decode::<Position>(Some(&newer), "orders").unwrap_err();
        assert!(error.message.contains("format 3, newer"), "{error}");
        let garbage = Checkpoint(json!({"v": 1, "page": "three"}));
        assert!(decode::<Position>(Some(&garbage), "orders").unwrap_err().message.contains("unreadable"));
        let impossible = Checkpoint(json!({"v": 2, "page": 1001}));
        let error = decode::<Position>(Some(&impossible), "orders").unwrap_err();
        assert_eq!(error.message, "the orders checkpoint is unreadable: `page` is 1001");
    }

    #[test]
    fn times_outside_what_a_source_records_are_not_plausible() {
        assert!(plausible_time("since", "2026-11-30T10:00:00Z".parse().unwrap()).is_ok());
        assert!(plausible_time("since", Timestamp::MIN).unwrap_err().contains("`since` is -009999"));
        assert!(plausible_time("since", "2200-01-01T00:00:00Z".parse().unwrap()).is_err());
        assert!(plausible_time("since", "1969-12-31T23:59:59Z".parse().unwrap()).is_err());
        assert!(plausible_seconds("done", 1_764_500_000).is_ok());
        assert!(plausible_seconds("done", i64::MIN).unwrap_err().contains("`done` is -9223372036854775808"));
    }
}
