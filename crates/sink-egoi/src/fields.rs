//! The list's shape as `GET /lists/{list_id}/fields` tells it: the ids of
//! the extra fields `field_map` names, the unique fields every order's
//! contact must carry, the email field's id. Read once per account, before
//! anything is built; a name the list does not have is a configuration
//! error naming the key.

use crate::config::CanonicalField;
use serde_json::Value;
use std::collections::BTreeMap;

/// One field of the list, as E-goi lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListField {
    pub field_id: String,
    pub name: String,
    pub unique: bool,
    /// `base` or `extra`.
    pub kind: String,
}

impl ListField {
    pub fn from_json(value: &Value) -> Option<Self> {
        let field_id = match &value["field_id"] {
            Value::String(id) => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => return None,
        };
        Some(Self {
            field_id,
            name: value["name"].as_str()?.to_owned(),
            unique: value["unique"].as_bool().unwrap_or(false),
            kind: value["type"].as_str().unwrap_or("extra").to_owned(),
        })
    }

    /// An extra field's numeric id (`"3"` or `"extra_3"`), as contact
    /// bodies take it.
    pub fn extra_id(&self) -> Option<u64> {
        self.field_id.strip_prefix("extra_").unwrap_or(&self.field_id).parse().ok()
    }
}

/// What requests need of the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListShape {
    /// Mapped canonical fields and the extra field ids they go to.
    pub extras: Vec<(CanonicalField, u64)>,
    /// The id `compare_field` names for the email (E-goi's plugins send `email`).
    pub email_field: String,
}

/// The list's fields against the operator's `field_map`. Errors name the key
/// (`sinks.<sink>.field_map.<field>`) and what the list has instead.
pub fn resolve(
    sink: &str,
    list_id: u64,
    fields: &[ListField],
    field_map: &BTreeMap<CanonicalField, String>,
) -> Result<ListShape, String> {
    let extras_named: Vec<&str> = fields.iter().filter(|f| f.kind == "extra").map(|f| f.name.as_str()).collect();
    let mut extras = Vec::new();
    for (canonical, name) in field_map {
        let key = format!("sinks.{sink}.field_map.{}", canonical.as_str());
        let field = fields.iter().find(|f| f.kind == "extra" && f.name.trim().eq_ignore_ascii_case(name.trim()));
        let Some(field) = field else {
            return Err(format!(
                "{key}: E-goi list {list_id} has no extra field named `{name}` (its extra fields: {})",
                if extras_named.is_empty() { "none".to_owned() } else { extras_named.join(", ") }
            ));
        };
        let id = field
            .extra_id()
            .ok_or_else(|| format!("{key}: E-goi gave field `{name}` the id `{}`, not a number", field.field_id))?;
        extras.push((*canonical, id));
    }
    // Orders posted live must carry every unique field of the list: one we
    // cannot fill would have every order refused.
    for field in fields.iter().filter(|f| f.unique) {
        let base_we_send = field.kind == "base" && matches!(field.name.as_str(), "email" | "cellphone");
        let mapped = field.kind == "extra" && field.extra_id().is_some_and(|id| extras.iter().any(|(_, e)| *e == id));
        if !base_we_send && !mapped {
            return Err(format!(
                "sinks.{sink}.field_map: E-goi list {list_id} has the unique field `{}`, which every order's \
                 contact must carry; map a customer field to it (for example customer_id = \"{}\")",
                field.name, field.name
            ));
        }
    }
    let email_field = fields
        .iter()
        .find(|f| f.kind == "base" && f.name == "email")
        .map_or_else(|| "email".to_owned(), |f| f.field_id.clone());
    Ok(ListShape { extras, email_field })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> Vec<ListField> {
        [
            json!({"field_id": "email", "name": "email", "format": "email", "unique": true, "type": "base"}),
            json!({"field_id": "first_name", "name": "first_name", "format": "text", "unique": false, "type": "base"}),
            json!({"field_id": "extra_3", "name": "Cidade", "format": "text", "unique": false, "type": "extra"}),
            json!({"field_id": "7", "name": "Client number", "format": "text", "unique": false, "type": "extra"}),
        ]
        .iter()
        .map(|f| ListField::from_json(f).unwrap())
        .collect()
    }

    #[test]
    fn mapped_names_become_extra_field_ids() {
        let map = BTreeMap::from([
            (CanonicalField::City, "cidade".to_owned()),
            (CanonicalField::CustomerId, "Client number".to_owned()),
        ]);
        let shape = resolve("crm", 4, &fields(), &map).unwrap();
        assert_eq!(shape.extras, vec![(CanonicalField::CustomerId, 7), (CanonicalField::City, 3)]);
        assert_eq!(shape.email_field, "email");
    }

    #[test]
    fn a_missing_name_or_an_unfillable_unique_field_is_a_configuration_error() {
        let map = BTreeMap::from([(CanonicalField::City, "Town".to_owned())]);
        let error = resolve("crm", 4, &fields(), &map).unwrap_err();
        assert_eq!(
            error,
            "sinks.crm.field_map.city: E-goi list 4 has no extra field named `Town` (its extra fields: Cidade, Client number)"
        );
        let mut unique = fields();
        unique[3].unique = true;
        let error = resolve("crm", 4, &unique, &BTreeMap::new()).unwrap_err();
        assert!(error.starts_with("sinks.crm.field_map: E-goi list 4 has the unique field `Client number`"), "{error}");
        let map = BTreeMap::from([(CanonicalField::CustomerId, "Client number".to_owned())]);
        assert!(resolve("crm", 4, &unique, &map).is_ok(), "mapped, it is carried");
    }
}
