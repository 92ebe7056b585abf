//! Which configured values are credentials, however they were given (a
//! `${VAR}` or written in the file): what no output may print.

use super::Config;

/// A key naming a credential (`api_key`, `consumer_secret`, `refresh_token`,
/// `personal_token`, `password`…), and everything under one.
fn names_a_credential(key: &str) -> bool {
    ["key", "secret", "token", "password"].iter().any(|word| key.contains(word))
}

fn collect(value: &toml::Value, credential: bool, into: &mut Vec<String>) {
    match value {
        toml::Value::String(text) if credential => into.push(text.clone()),
        toml::Value::Table(table) => {
            for (key, value) in table {
                collect(value, credential || names_a_credential(key), into);
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| collect(item, credential, into)),
        _ => {}
    }
}

impl Config {
    /// The values of every connector's credential keys (four characters or
    /// more: shorter ones would blank out ordinary text).
    pub fn credential_values(&self) -> Vec<String> {
        let mut values = Vec::new();
        for table in self.sources.values().chain(self.sinks.values()) {
            collect(&toml::Value::Table(table.table.clone()), false, &mut values);
        }
        values.retain(|value| value.len() >= 4);
        values
    }

    /// `text` with every credential value (and every value from the
    /// environment) replaced by `***`.
    pub fn without_credentials(&self, text: &str) -> String {
        let mut clean = self.scrub(text);
        for credential in self.credential_values() {
            clean = clean.replace(credential.as_str(), "***");
        }
        clean
    }
}
