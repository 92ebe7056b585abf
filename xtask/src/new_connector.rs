//! `cargo xtask new-connector --source NAME | --sink NAME`: stamps a platform
//! crate with the whole anatomy from `xtask/templates/` — config, request
//! building or wire and mapping, service or client and account, the sink or
//! source, its sandbox, `tests/contract.rs` running the kit's conformance
//! suite, and `docs/connectors/NAME.md` — then registers it: its line in the
//! runner's registry and its dependency line in the runner's Cargo.toml.
//! The stamped crate builds and its tests pass; the contributor replaces the
//! placeholder platform API with the real one.

use std::path::Path;

/// A template file: its path in the new crate and its text.
type Template = (&'static str, &'static str);

const SINK: &[Template] = &[
    ("Cargo.toml", include_str!("../templates/sink/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../templates/sink/src/lib.rs.tmpl")),
    ("src/config.rs", include_str!("../templates/sink/src/config.rs.tmpl")),
    ("src/spec.rs", include_str!("../templates/sink/src/spec.rs.tmpl")),
    ("src/request.rs", include_str!("../templates/sink/src/request.rs.tmpl")),
    ("src/service.rs", include_str!("../templates/sink/src/service.rs.tmpl")),
    ("src/response.rs", include_str!("../templates/sink/src/response.rs.tmpl")),
    ("src/sink.rs", include_str!("../templates/sink/src/sink.rs.tmpl")),
    ("src/sandbox.rs", include_str!("../templates/sink/src/sandbox.rs.tmpl")),
    ("tests/contract.rs", include_str!("../templates/sink/tests/contract.rs.tmpl")),
];

const SOURCE: &[Template] = &[
    ("Cargo.toml", include_str!("../templates/source/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../templates/source/src/lib.rs.tmpl")),
    ("src/config.rs", include_str!("../templates/source/src/config.rs.tmpl")),
    ("src/client.rs", include_str!("../templates/source/src/client.rs.tmpl")),
    ("src/account.rs", include_str!("../templates/source/src/account.rs.tmpl")),
    ("src/wire.rs", include_str!("../templates/source/src/wire.rs.tmpl")),
    ("src/mapping.rs", include_str!("../templates/source/src/mapping.rs.tmpl")),
    ("src/source.rs", include_str!("../templates/source/src/source.rs.tmpl")),
    ("src/sandbox.rs", include_str!("../templates/source/src/sandbox.rs.tmpl")),
    ("tests/contract.rs", include_str!("../templates/source/tests/contract.rs.tmpl")),
];

const SINK_PAGE: &str = include_str!("../templates/sink.md.tmpl");
const SOURCE_PAGE: &str = include_str!("../templates/source.md.tmpl");

/// The names a template's placeholders take for one platform.
struct Names {
    /// `my-crm`: the config `type`, directory and crate name part.
    name: String,
    /// `my_crm`: the crate's Rust name part.
    ident: String,
    /// `MyCrm`: type names.
    camel: String,
}

impl Names {
    fn parse(name: &str) -> Result<Self, String> {
        let valid = name.len() >= 2
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.contains("--");
        if !valid {
            return Err(format!(
                "`{name}` is not a platform name: lower-case letters, digits and single dashes, e.g. `my-crm`"
            ));
        }
        let camel = name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        Ok(Self { name: name.to_owned(), ident: name.replace('-', "_"), camel })
    }

    fn fill(&self, template: &str) -> String {
        template.replace("{{name}}", &self.name).replace("{{ident}}", &self.ident).replace("{{Camel}}", &self.camel)
    }
}

fn write(root: &Path, relative: &str, text: &str, written: &mut Vec<String>) -> Result<(), String> {
    let path = root.join(relative);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    written.push(relative.to_owned());
    Ok(())
}

/// Adds `line` to the registry list that starts with `list` (`pub const SINKS`).
fn register(registry: &str, list: &str, line: &str) -> Result<String, String> {
    let start = registry.find(list).ok_or_else(|| format!("the registry has no `{list}`"))?;
    let end = start + registry[start..].find("\n];").ok_or_else(|| format!("`{list}` is not one line per platform"))?;
    if registry[start..end].contains(line.trim()) {
        return Err(format!("`{}` is registered already", line.trim()));
    }
    Ok(format!("{}\n{line}{}", &registry[..end], &registry[end..]))
}

/// Adds the dependency after the runner's last platform dependency.
fn depend(manifest: &str, line: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = manifest.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("tillflow-source-") || l.starts_with("tillflow-sink-"))
        .ok_or("the runner's Cargo.toml lists no platform crate")?;
    lines.insert(last + 1, line);
    Ok(lines.join("\n") + "\n")
}

fn stamp(root: &Path, kind: &str, names: &Names) -> Result<Vec<String>, String> {
    let directory = format!("crates/{kind}-{}", names.name);
    if root.join(&directory).exists() {
        return Err(format!("{directory} exists already"));
    }
    let registry_path = root.join("crates/runner/src/registry.rs");
    let manifest_path = root.join("crates/runner/Cargo.toml");
    let registry = std::fs::read_to_string(&registry_path).map_err(|e| format!("{}: {e}", registry_path.display()))?;
    let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let list = if kind == "sink" { "pub const SINKS" } else { "pub const SOURCES" };
    let registry = register(&registry, list, &format!("    tillflow_{kind}_{}::DESCRIPTOR,", names.ident))?;
    let manifest = depend(
        &manifest,
        &format!("tillflow-{kind}-{0} = {{ path = \"../{kind}-{0}\", features = [\"sandbox\"] }}", names.name),
    )?;
    let (templates, page) = if kind == "sink" { (SINK, SINK_PAGE) } else { (SOURCE, SOURCE_PAGE) };
    let mut written = Vec::new();
    for (relative, template) in templates {
        write(root, &format!("{directory}/{relative}"), &names.fill(template), &mut written)?;
    }
    write(root, &format!("docs/connectors/{}.md", names.name), &names.fill(page), &mut written)?;
    std::fs::write(&registry_path, registry).map_err(|e| format!("{}: {e}", registry_path.display()))?;
    std::fs::write(&manifest_path, manifest).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    written.push("crates/runner/src/registry.rs (one line)".into());
    written.push("crates/runner/Cargo.toml (one line)".into());
    Ok(written)
}

pub fn run(root: &Path, arguments: &[String]) -> bool {
    let (kind, name) = match arguments {
        [flag, name] if flag == "--sink" => ("sink", name),
        [flag, name] if flag == "--source" => ("source", name),
        _ => {
            eprintln!("usage: cargo xtask new-connector --source NAME | --sink NAME");
            return false;
        }
    };
    let result = Names::parse(name).and_then(|names| stamp(root, kind, &names).map(|written| (names, written)));
    match result {
        Ok((names, written)) => {
            let package = format!("tillflow-{kind}-{}", names.name);
            // Long names can push lines past the width: the stamped code is formatted.
            let formatted = crate::ci::cargo(&["fmt", "-p", &package]);
            println!("stamped {package}:");
            for file in &written {
                println!("  {file}");
            }
            println!("next:");
            println!(
                "  cargo test -p {package} --features sandbox   # its contract tests, against a mock and the sandbox"
            );
            println!("  tillflow sandbox --platform {}                # the simulator on its own", names.name);
            println!("  then replace the placeholder API with the platform's (docs/adding-a-connector.md)");
            formatted
        }
        Err(message) => {
            eprintln!("xtask new-connector: {message}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_every_form_and_bad_ones_are_refused() {
        let names = Names::parse("my-crm2").unwrap();
        assert_eq!((names.ident.as_str(), names.camel.as_str()), ("my_crm2", "MyCrm2"));
        assert_eq!(names.fill("tillflow_sink_{{ident}} {{Camel}} {{name}}"), "tillflow_sink_my_crm2 MyCrm2 my-crm2");
        for bad in ["My", "x", "-a", "a-", "a--b", "a_b", "2a"] {
            assert!(Names::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_registry_gets_one_line_at_the_end_of_its_list() {
        let registry = "pub const SOURCES: &[S] = &[\n    a::DESCRIPTOR,\n];\n\npub const SINKS: &[S] = &[\n    b::DESCRIPTOR,\n];\n";
        let added = register(registry, "pub const SINKS", "    c::DESCRIPTOR,").unwrap();
        assert!(added.ends_with("    b::DESCRIPTOR,\n    c::DESCRIPTOR,\n];\n"), "{added}");
        assert!(register(&added, "pub const SINKS", "    c::DESCRIPTOR,").is_err(), "twice");
    }
}
