//! A connector's config table as its crate sees it: a neutral JSON value
//! deserialized into the connector's own type, every problem carrying the
//! path of the key it is about, so the runner can name the key and its line.

use serde::de::DeserializeOwned;
use std::fmt;

/// One step of a path into a config table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// What is wrong with a connector's config, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// From the connector's table down to the key (empty: the table itself).
    pub path: Vec<PathPart>,
    pub message: String,
}

impl ConfigProblem {
    /// A problem with the top-level key `key` of the connector's table.
    pub fn at(key: &str, message: impl fmt::Display) -> Self {
        Self { path: vec![PathPart::Key(key.to_owned())], message: message.to_string() }
    }

    /// A problem with the table as a whole.
    pub fn table(message: impl fmt::Display) -> Self {
        Self { path: Vec::new(), message: message.to_string() }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, part) in self.path.iter().enumerate() {
            match part {
                PathPart::Key(key) if index == 0 => write!(f, "{key}")?,
                PathPart::Key(key) => write!(f, ".{key}")?,
                PathPart::Index(position) => write!(f, "[{position}]")?,
            }
        }
        if !self.path.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Deserializes a connector's table into `T`. A value of the wrong type is
/// reported at its own key, an unknown or missing field at the key it names.
pub fn parse<T: DeserializeOwned>(table: serde_json::Value) -> Result<T, ConfigProblem> {
    serde_path_to_error::deserialize(table).map_err(|error| {
        let message = error.inner().to_string();
        ConfigProblem { path: path_of(error.path(), &message), message }
    })
}

/// The path of a deserialization error as config path parts. serde reports
/// a missing field at the table that lacks it, so the field named in the
/// message is added; the private keys of span-keeping wrappers are left out.
pub fn path_of(path: &serde_path_to_error::Path, message: &str) -> Vec<PathPart> {
    let mut parts: Vec<PathPart> = path
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } if !key.starts_with("$__") => Some(PathPart::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(PathPart::Index(*index)),
            _ => None,
        })
        .collect();
    for lead in ["unknown field `", "missing field `"] {
        if let Some(field) = message.strip_prefix(lead).and_then(|rest| rest.split('`').next())
            && parts.last() != Some(&PathPart::Key(field.to_owned()))
        {
            parts.push(PathPart::Key(field.to_owned()));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Location {
        api_key: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        base_url: String,
        poll_interval: Option<tillflow_core::duration::HumanDuration>,
        #[serde(default)]
        locations: Vec<Location>,
    }

    #[test]
    fn a_wrong_type_is_reported_at_its_own_key_with_the_expected_form() {
        let problem = parse::<Table>(json!({"base_url": "x", "poll_interval": 300})).unwrap_err();
        assert_eq!(problem.path, vec![PathPart::Key("poll_interval".into())]);
        assert!(problem.message.contains("integer `300`"), "{problem}");
        assert!(problem.message.contains("\"5m\""), "{problem}");
    }

    #[test]
    fn nested_keys_unknown_and_missing_fields_have_full_paths() {
        let nested = parse::<Table>(json!({"base_url": "x", "locations": [{"api_key": "a"}, {"api_key": 5}]}));
        assert_eq!(
            nested.unwrap_err().to_string(),
            "locations[1].api_key: invalid type: integer `5`, expected a string"
        );
        let unknown = parse::<Table>(json!({"base_url": "x", "locations": [{"api_kee": "a"}]})).unwrap_err();
        assert_eq!(
            unknown.path,
            vec![PathPart::Key("locations".into()), PathPart::Index(0), PathPart::Key("api_kee".into())]
        );
        let missing = parse::<Table>(json!({})).unwrap_err();
        assert_eq!(missing.path, vec![PathPart::Key("base_url".into())]);
    }
}

/// How a source's marketing-email preference reaches a sink (the sink key
/// `marketing_consent`): `"property"` (default) sends it as a profile
/// property only; `"sync"` also applies it as the platform's email consent,
/// once per change at the source (the first import applies each explicit
/// preference once), so a person who unsubscribed in the sink since is
/// never re-subscribed by an unchanged record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarketingConsent {
    #[default]
    Property,
    Sync,
}
