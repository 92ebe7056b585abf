//! `cargo xtask new-connector`: stamps a platform crate.

pub fn run(_root: &std::path::Path, _arguments: &[String]) -> bool {
    false
}
