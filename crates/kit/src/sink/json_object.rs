//! A request's JSON object written field by field, keys in the order the
//! caller gives them: texts go through `json_text` (copied as they are
//! unless they need an escape), everything else through serde_json. Built
//! for the sink encoders that write one object per event, where serde's
//! derive sent every key and text value through serde_json's escaping, a
//! byte at a time.

use serde::Serialize;
use tillflow_core::json_text::write_str;

/// An object being written into `out`; `end` closes it.
pub struct JsonObject<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> JsonObject<'o> {
    pub fn begin(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes the field's key; its value is written next into what this
    /// returns.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub fn text(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_str(out, value);
    }

    /// The field when there is a value; no field at all when there is none.
    pub fn text_if_some(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(key, value);
        }
    }

    /// The field, `null` when there is no value.
    pub fn text_or_null(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.text(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    /// A list of texts.
    pub fn texts<'t>(&mut self, key: &str, values: impl IntoIterator<Item = &'t str>) {
        self.array(key, values, write_str);
    }

    /// A list, each element written by `element`.
    pub fn array<T>(
        &mut self,
        key: &str,
        elements: impl IntoIterator<Item = T>,
        mut element: impl FnMut(&mut Vec<u8>, T),
    ) {
        let out = self.key(key);
        out.push(b'[');
        for (index, value) in elements.into_iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            element(out, value);
        }
        out.push(b']');
    }

    /// Any other value (numbers, booleans, a source's own JSON), as
    /// serde_json writes it.
    pub fn value(&mut self, key: &str, value: &(impl Serialize + ?Sized)) {
        let out = self.key(key);
        serde_json::to_writer(out, value).expect("a value serializes into memory");
    }

    /// An object as the field's value; it is closed by its own `end`.
    pub fn object(&mut self, key: &str) -> JsonObject<'_> {
        JsonObject::begin(self.key(key))
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_reads_as_serde_json_writes_it() {
        let mut out = Vec::new();
        let mut object = JsonObject::begin(&mut out);
        object.text("a \"quoted\" key", "tab\there");
        object.text_if_some("absent", None);
        object.text_if_some("present", Some("é"));
        object.text_or_null("nothing", None);
        object.texts("codes", ["A", "B\\"]);
        object.texts("none", []);
        object.array("pairs", [(1, true), (2, false)], |out, (number, flag)| {
            let mut pair = JsonObject::begin(out);
            pair.value("number", &number);
            pair.value("flag", &flag);
            pair.end();
        });
        let mut nested = object.object("nested");
        nested.value("json", &json!({"x": [1.5, null]}));
        nested.end();
        object.object("empty").end();
        object.end();
        let expected = r#"{"a \"quoted\" key":"tab\there","present":"é","nothing":null,"codes":["A","B\\"],"none":[],"pairs":[{"number":1,"flag":true},{"number":2,"flag":false}],"nested":{"json":{"x":[1.5,null]}},"empty":{}}"#;
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let parsed: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(parsed["a \"quoted\" key"], "tab\there");
    }
}
