//! Reading Lightspeed JSON: every scalar is a string, and a relation with one
//! child is an object while several are an array. These helpers accept both
//! everywhere.

use serde_json::Value;

/// A field as text ("" when absent or null); numbers and booleans as written.
pub fn text<'a>(value: &'a Value, key: &str) -> std::borrow::Cow<'a, str> {
    match value.get(key) {
        Some(Value::String(text)) => std::borrow::Cow::Borrowed(text.as_str()),
        Some(Value::Number(number)) => std::borrow::Cow::Owned(number.to_string()),
        Some(Value::Bool(flag)) => std::borrow::Cow::Owned(flag.to_string()),
        _ => std::borrow::Cow::Borrowed(""),
    }
}

/// A field as a non-empty string, `None` for "", "0" ids and absent values.
pub fn id(value: &Value, key: &str) -> Option<String> {
    let text = text(value, key);
    (!text.is_empty() && text != "0").then(|| text.into_owned())
}

/// `"true"` / `true`.
pub fn flag(value: &Value, key: &str) -> bool {
    text(value, key) == "true"
}

/// The children of `value[relation][child]`, whether one object or an array.
pub fn many<'a>(value: &'a Value, relation: &str, child: &str) -> Vec<&'a Value> {
    match value.get(relation).and_then(|r| r.get(child)) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(object @ Value::Object(_)) => vec![object],
        _ => Vec::new(),
    }
}

/// The top-level records of a list response (`{"Sale": {...}}` or `[...]`).
pub fn records<'a>(page: &'a Value, kind: &str) -> Vec<&'a Value> {
    match page.get(kind) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(object @ Value::Object(_)) => vec![object],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_child_is_an_object_several_an_array() {
        let one = json!({"SaleLines": {"SaleLine": {"saleLineID": "1"}}});
        let two = json!({"SaleLines": {"SaleLine": [{"saleLineID": "1"}, {"saleLineID": "2"}]}});
        assert_eq!(many(&one, "SaleLines", "SaleLine").len(), 1);
        assert_eq!(many(&two, "SaleLines", "SaleLine").len(), 2);
        assert!(many(&json!({"SaleLines": ""}), "SaleLines", "SaleLine").is_empty());
    }

    #[test]
    fn scalars_are_strings_and_zero_ids_are_absent() {
        let sale = json!({"customerID": "0", "shopID": "1", "completed": "true", "total": 3});
        assert_eq!(id(&sale, "customerID"), None);
        assert_eq!(id(&sale, "shopID").as_deref(), Some("1"));
        assert!(flag(&sale, "completed"));
        assert_eq!(text(&sale, "total"), "3");
    }
}
