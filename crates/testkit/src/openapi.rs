//! Request bodies checked against the platforms' official OpenAPI specs in
//! `shared/contracts/` (JSON or YAML): a request the official schema
//! rejects is a bug.
//!
//! A small JSON-Schema validator covering what those specs use: `$ref`,
//! `type` (3.0 and 3.1 forms, `nullable`), `enum`, `const`, `properties`,
//! `required`, `additionalProperties`, `items`, `anyOf`, `oneOf`, `allOf`,
//! string lengths, numeric bounds and item counts. Formats and patterns are
//! not checked.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// `shared/contracts/<relative>`, found by walking up from the crate.
pub fn contract_path(relative: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("TILLFLOW_CONTRACTS") {
        return Path::new(&dir).join(relative);
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared").join("contracts");
        if candidate.is_dir() {
            return candidate.join(relative);
        }
        let sibling = dir.join("..").join("shared").join("contracts");
        if sibling.is_dir() {
            return sibling.join(relative);
        }
        if !dir.pop() {
            panic!("shared/contracts not found above {}; set TILLFLOW_CONTRACTS", env!("CARGO_MANIFEST_DIR"));
        }
    }
}

/// Reads a JSON file from `shared/contracts/`.
pub fn contract_json(relative: &str) -> Value {
    let path = contract_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct OpenApi {
    document: Value,
}

impl OpenApi {
    /// Loads a JSON or YAML spec from `shared/contracts/`.
    pub fn load(relative: &str) -> Self {
        if relative.ends_with(".yaml") || relative.ends_with(".yml") {
            let path = contract_path(relative);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let document = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return Self { document };
        }
        Self { document: contract_json(relative) }
    }

    /// The JSON request-body schema of `method path` (path as written in the
    /// spec, e.g. `/api/v2/batch`).
    pub fn request_schema(&self, method: &str, path: &str) -> &Value {
        let operation = &self.document["paths"][path][method.to_ascii_lowercase()];
        assert!(!operation.is_null(), "the spec has no {method} {path}");
        let content = &operation["requestBody"]["content"];
        let media = content
            .as_object()
            .and_then(|media| media.iter().find(|(name, _)| name.contains("json")).map(|(_, body)| body))
            .unwrap_or_else(|| panic!("{method} {path} takes no JSON body"));
        &media["schema"]
    }

    /// Checks `body` against the request schema of `method path`.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Result<(), String> {
        let schema = self.request_schema(method, path);
        self.check(schema, body).map_err(|errors| format!("{method} {path}: {}", errors.join("; ")))
    }

    /// Checks `value` against `schema` (which may hold `$ref`s into this spec).
    pub fn check(&self, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.validate(schema, value, "$", &mut errors, 0);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        for _ in 0..32 {
            match current.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {reference}"));
                    current = self.document.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"));
                }
                None => return current,
            }
        }
        panic!("$ref chain too deep")
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>, depth: usize) {
        if depth > 64 {
            errors.push(format!("{at}: schema nesting too deep"));
            return;
        }
        let schema = self.resolve(schema);
        let Some(rules) = schema.as_object() else { return };
        if value.is_null() && rules.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(kind) = rules.get("type") {
            let allowed: Vec<&str> = match kind {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|k| type_matches(k, value)) {
                errors.push(format!("{at}: expected {}, got {}", allowed.join(" or "), describe(value)));
                return;
            }
        }
        if let Some(options) = rules.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {}", Value::Array(options.clone())));
        }
        if let Some(constant) = rules.get("const")
            && constant != value
        {
            errors.push(format!("{at}: expected {constant}, got {value}"));
        }
        if let Some(all) = rules.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.validate(sub, value, at, errors, depth + 1);
            }
        }
        for (keyword, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(options) = rules.get(keyword).and_then(Value::as_array) {
                let mut failures = Vec::new();
                let matched = options
                    .iter()
                    .filter(|option| {
                        let mut sub = Vec::new();
                        self.validate(option, value, at, &mut sub, depth + 1);
                        let ok = sub.is_empty();
                        if !ok {
                            failures.push(sub.join(", "));
                        }
                        ok
                    })
                    .count();
                if matched == 0 {
                    let shortest = failures.iter().min_by_key(|f| f.len()).cloned().unwrap_or_default();
                    errors.push(format!("{at}: matches none of the {keyword} alternatives (closest: {shortest})"));
                } else if exactly_one && matched > 1 {
                    // Loose oneOf schemas are common in published specs; only
                    // a value matching nothing is treated as wrong.
                }
            }
        }
        match value {
            Value::Object(object) => {
                let properties = rules.get("properties").and_then(Value::as_object);
                if let Some(required) = rules.get("required").and_then(Value::as_array) {
                    for name in required.iter().filter_map(Value::as_str) {
                        if !object.contains_key(name) {
                            errors.push(format!("{at}: missing required `{name}`"));
                        }
                    }
                }
                for (name, item) in object {
                    let path = format!("{at}.{name}");
                    match properties.and_then(|p| p.get(name)) {
                        Some(sub) => self.validate(sub, item, &path, errors, depth + 1),
                        None => match rules.get("additionalProperties") {
                            Some(Value::Bool(false)) => errors.push(format!("{at}: unexpected property `{name}`")),
                            Some(sub @ Value::Object(_)) => self.validate(sub, item, &path, errors, depth + 1),
                            _ => {}
                        },
                    }
                }
            }
            Value::Array(items) => {
                if let Some(sub) = rules.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.validate(sub, item, &format!("{at}[{index}]"), errors, depth + 1);
                    }
                }
                if let Some(max) = rules.get("maxItems").and_then(Value::as_u64)
                    && items.len() as u64 > max
                {
                    errors.push(format!("{at}: {} items, at most {max} allowed", items.len()));
                }
                if let Some(min) = rules.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    errors.push(format!("{at}: {} items, at least {min} required", items.len()));
                }
            }
            Value::String(text) => {
                let length = text.chars().count() as u64;
                if let Some(max) = rules.get("maxLength").and_then(Value::as_u64)
                    && length > max
                {
                    errors.push(format!("{at}: {length} characters, at most {max}"));
                }
                if let Some(min) = rules.get("minLength").and_then(Value::as_u64)
                    && length < min
                {
                    errors.push(format!("{at}: {length} characters, at least {min}"));
                }
            }
            Value::Number(number) => {
                let number = number.as_f64().unwrap_or_default();
                if let Some(min) = rules.get("minimum").and_then(Value::as_f64)
                    && number < min
                {
                    errors.push(format!("{at}: {number} is below the minimum {min}"));
                }
                if let Some(max) = rules.get("maximum").and_then(Value::as_f64)
                    && number > max
                {
                    errors.push(format!("{at}: {number} is above the maximum {max}"));
                }
            }
            _ => {}
        }
    }
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> OpenApi {
        OpenApi {
            document: json!({
                "components": {"schemas": {
                    "person": {"type": "object", "required": ["id"], "additionalProperties": false,
                               "properties": {"id": {"type": "string", "maxLength": 3}, "age": {"type": ["integer", "null"]}}}
                }},
                "paths": {}
            }),
        }
    }

    #[test]
    fn refs_required_types_and_extra_properties_are_checked() {
        let spec = spec();
        let schema = json!({"$ref": "#/components/schemas/person"});
        assert!(spec.check(&schema, &json!({"id": "abc", "age": null})).is_ok());
        let errors = spec.check(&schema, &json!({"age": 1.5, "name": "x"})).unwrap_err().join("\n");
        assert!(errors.contains("missing required `id`"), "{errors}");
        assert!(errors.contains("unexpected property `name`"), "{errors}");
        assert!(errors.contains("$.age: expected integer or null"), "{errors}");
        assert!(spec.check(&schema, &json!({"id": "abcd"})).unwrap_err()[0].contains("at most 3"));
    }

    #[test]
    fn any_of_needs_one_match() {
        let spec = spec();
        let schema = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        assert!(spec.check(&schema, &json!(3)).is_ok());
        assert!(spec.check(&schema, &json!(true)).is_err());
    }
}
