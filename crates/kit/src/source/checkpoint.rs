//! The checkpoint codec: a source's cursor for one stream, persisted as
//! `{"v": VERSION, …its fields}`. A checkpoint from a newer tillflow is
//! refused rather than misread; older versions are read through the cursor
//! type's serde defaults.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tillflow_core::ConnectorError;
use tillflow_core::source::Checkpoint;

/// A source's position in one stream.
pub trait Cursor: Serialize + DeserializeOwned + Default {
    /// The format this build writes; bump it when the fields change meaning.
    const VERSION: u32;
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
    serde_json::from_value(fields)
        .map_err(|e| ConnectorError::config(format!("the {stream} checkpoint is unreadable: {e}")))
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
    }
}
