//! `${VAR}` in config values: replaced by the environment's value (`$${` is a
//! literal `${`), every value read this way remembered so messages can
//! scrub it.

use super::PathPart;

/// Replaces `${NAME}` with the environment's value; `$${` is a literal `${`.
pub(super) fn substitute_env(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest.as_bytes()[start - 1] == b'$' {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "has `${` without a closing `}`".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{name}}}` is not a valid environment variable reference"));
        }
        let resolved = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        secrets.push(resolved.clone());
        out.push_str(&resolved);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes `${VAR}` in every string inside `table`; on an error `at`
/// is the path of the value that has it.
pub(super) fn substitute_value(
    table: &mut toml::Table,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
    at: &mut Vec<PathPart>,
) -> Result<(), String> {
    fn value(
        item: &mut toml::Value,
        env: &dyn Fn(&str) -> Option<String>,
        secrets: &mut Vec<String>,
        at: &mut Vec<PathPart>,
    ) -> Result<(), String> {
        match item {
            toml::Value::String(text) => *text = substitute_env(text, env, secrets)?,
            toml::Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    at.push(PathPart::Index(index));
                    value(item, env, secrets, at)?;
                    at.pop();
                }
            }
            toml::Value::Table(table) => substitute_value(table, env, secrets, at)?,
            _ => {}
        }
        Ok(())
    }
    for (key, item) in table.iter_mut() {
        at.push(PathPart::Key(key.clone()));
        value(item, env, secrets, at)?;
        at.pop();
    }
    Ok(())
}
