//! `cargo xtask tidy`: the rules the compiler does not check. Every Rust file
//! opens with a `//!` line saying what it is for; no platform crate depends
//! on another platform crate or on a state store; core depends on no network
//! or database crate; and within a crate no module imports from a module that
//! imports it back (re-exports — `pub use` — are the crate's surface, not
//! imports, and do not count).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates core must not depend on: it does no network or database I/O.
const IO_CRATES: [&str; 14] = [
    "reqwest",
    "hyper",
    "axum",
    "tower",
    "tower-http",
    "governor",
    "http",
    "sqlx",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "wiremock",
    "ureq",
    "redis",
];

pub fn run(root: &Path) -> bool {
    let mut problems = Vec::new();
    problems.extend(module_docs(root));
    problems.extend(crate_boundaries(root));
    problems.extend(import_cycles(root));
    if problems.is_empty() {
        println!("tidy: every module says what it is for; crate boundaries hold; no import cycles");
        true
    } else {
        for problem in &problems {
            println!("tidy: {problem}");
        }
        println!("tidy: {} problem(s)", problems.len());
        false
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The directories whose Rust files are the project's own code.
fn code_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = crates(root);
    dirs.push(root.join("xtask"));
    dirs.push(root.join("tests"));
    dirs
}

fn crates(root: &Path) -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("Cargo.toml").exists()).collect()
        })
        .unwrap_or_default();
    crates.sort();
    crates
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

fn module_docs(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in code_dirs(root) {
        rust_files(&dir, &mut files);
    }
    files
        .into_iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            !text.lines().find(|line| !line.trim().is_empty()).is_some_and(|line| line.starts_with("//!"))
        })
        .map(|file| format!("{}: does not open with a `//!` line saying what it is for", shown(root, &file)))
        .collect()
}

/// The names of a manifest's dependencies (every dependency table), with the
/// tokio features it asks for.
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_deps = trimmed.trim_matches(['[', ']']).ends_with("dependencies");
            continue;
        }
        if !in_deps || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((name, rest)) = trimmed.split_once(['=', '.']) {
            deps.push((name.trim().trim_matches('"').to_owned(), rest.to_owned()));
        }
    }
    deps
}

fn crate_boundaries(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in crates(root) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let own = format!("tillflow-{name}");
        let deps = dependencies(&manifest);
        if name.starts_with("source-") || name.starts_with("sink-") {
            for (dep, _) in &deps {
                let platform = dep.starts_with("tillflow-source-") || dep.starts_with("tillflow-sink-");
                if (platform && *dep != own) || dep.starts_with("tillflow-state-") {
                    problems.push(format!(
                        "crates/{name} depends on {dep}: a platform crate knows only core, http and kit"
                    ));
                }
            }
        }
        if name == "core" {
            let normal = manifest.split("[dev-dependencies]").next().unwrap_or("");
            for (dep, rest) in dependencies(normal) {
                if IO_CRATES.contains(&dep.as_str()) || dep.starts_with("tillflow-") {
                    problems.push(format!("crates/core depends on {dep}: core does no network or database I/O"));
                }
                if dep == "tokio" && ["\"net\"", "\"process\"", "\"fs\"", "\"full\""].iter().any(|f| rest.contains(f)) {
                    problems.push("crates/core asks tokio for I/O features: core does no I/O".to_owned());
                }
            }
        }
    }
    problems
}

/// A module of one crate, as the path of names from the crate root.
type Module = Vec<String>;

/// The modules of the crate rooted at `src` (lib.rs, else main.rs) by file.
fn module_files(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let mut parts: Vec<String> =
            relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
            parts.pop();
        }
        modules.insert(parts, file);
    }
    modules
}

/// Code without comments, string contents or `pub use` items.
fn imports_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    // Re-exports are the module's surface, not its imports.
    let mut kept = String::new();
    let mut rest = out.as_str();
    while let Some(start) = rest.find("pub") {
        let after = &rest[start..];
        let is_reexport = after.starts_with("pub use ")
            || after.starts_with("pub(crate) use ")
            || after.starts_with("pub(super) use ");
        if is_reexport {
            kept.push_str(&rest[..start]);
            rest = after.find(';').map(|end| &after[end + 1..]).unwrap_or("");
        } else {
            kept.push_str(&rest[..start + 3]);
            rest = &rest[start + 3..];
        }
    }
    kept.push_str(rest);
    kept
}

/// Every path a use tree like `crate::{a::B, c::{d, e}}` names.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else { return vec![tree] };
    let prefix = &tree[..open];
    let mut inner = &tree[open + 1..];
    if let Some(close) = inner.rfind('}') {
        inner = &inner[..close];
    }
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).flat_map(|part| expand(&format!("{prefix}{part}"))).collect()
}

/// The modules `module` imports: `use` trees and inline `crate::`/`super::` paths.
fn imports(module: &Module, text: &str, modules: &BTreeMap<Module, PathBuf>) -> BTreeSet<Module> {
    let text = imports_text(text);
    let mut paths = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("use ") {
        let boundary =
            start == 0 || !rest.as_bytes()[start - 1].is_ascii_alphanumeric() && rest.as_bytes()[start - 1] != b'_';
        let after = &rest[start + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if boundary {
            paths.extend(expand(&after[..end]));
        }
        rest = &after[end.min(after.len())..];
    }
    for marker in ["crate::", "super::"] {
        let mut rest = text.as_str();
        while let Some(start) = rest.find(marker) {
            let after = &rest[start..];
            let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(after.len());
            paths.push(after[..end].to_owned());
            rest = &after[end.max(1)..];
        }
    }
    let mut targets = BTreeSet::new();
    for path in paths {
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<String> = match segments.first().copied() {
            Some("crate") => Vec::new(),
            Some("super") => {
                let mut base = module.clone();
                while segments.first() == Some(&"super") {
                    base.pop();
                    segments.remove(0);
                }
                segments.insert(0, "super");
                base
            }
            Some("self") => module.clone(),
            _ => continue,
        };
        for segment in segments.iter().skip(1) {
            let mut candidate = base.clone();
            candidate.push((*segment).to_owned());
            if modules.contains_key(&candidate) {
                base = candidate;
            } else {
                break;
            }
        }
        if base != *module {
            targets.insert(base);
        }
    }
    targets
}

fn import_cycles(root: &Path) -> Vec<String> {
    let mut roots: Vec<PathBuf> = crates(root).into_iter().map(|c| c.join("src")).collect();
    roots.push(root.join("xtask/src"));
    roots.push(root.join("tests/src"));
    let mut problems = Vec::new();
    for src in roots {
        let modules = module_files(&src);
        let graph: BTreeMap<Module, BTreeSet<Module>> = modules
            .iter()
            .map(|(module, file)| {
                (module.clone(), imports(module, &std::fs::read_to_string(file).unwrap_or_default(), &modules))
            })
            .collect();
        let mut reported = BTreeSet::new();
        for (module, targets) in &graph {
            for target in targets {
                if let Some(path) = path_back(&graph, target, module) {
                    let mut cycle: Vec<Module> = vec![module.clone()];
                    cycle.extend(path);
                    let mut key = cycle.clone();
                    key.sort();
                    if reported.insert(key) {
                        let name = |m: &Module| if m.is_empty() { "(crate root)".to_owned() } else { m.join("::") };
                        let shown_cycle: Vec<String> = cycle.iter().map(name).collect();
                        problems.push(format!(
                            "{}: modules import each other: {} → {}",
                            shown(root, &src),
                            shown_cycle.join(" → "),
                            name(module)
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// A path of imports from `from` back to `to`, if there is one.
fn path_back(graph: &BTreeMap<Module, BTreeSet<Module>>, from: &Module, to: &Module) -> Option<Vec<Module>> {
    let mut stack = vec![(from.clone(), vec![from.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        if &node == to {
            let mut path = path;
            path.pop();
            return Some(path);
        }
        if !seen.insert(node.clone()) {
            continue;
        }
        for next in graph.get(&node).into_iter().flatten() {
            let mut next_path = path.clone();
            next_path.push(next.clone());
            stack.push((next.clone(), next_path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_expand_to_every_path() {
        let mut paths = expand("crate::{a::B, c::{d, e::F}}");
        paths.sort();
        assert_eq!(paths, ["crate::a::B", "crate::c::d", "crate::c::e::F"]);
        assert_eq!(expand("super::x"), ["super::x"]);
    }

    #[test]
    fn reexports_are_not_imports() {
        let text = "pub use crate::a::X;\nuse crate::b::Y; // crate::c in a comment\nfn f() { crate::d::g(); }";
        let kept = imports_text(text);
        assert!(!kept.contains("crate::a") && kept.contains("crate::b") && !kept.contains("crate::c"));
        assert!(kept.contains("crate::d"));
    }
}
