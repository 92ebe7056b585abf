//! `cargo xtask new-connector` in a copy of the workspace: the stamped sink
//! and source crates build, register (the runner builds with them), and pass
//! their own contract tests — the kit's conformance suites among them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies the workspace, without build output or version control.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The target directory this test was built in: the copy builds there too,
/// so the registry's compiled dependencies are reused.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_owned()
}

fn cargo(root: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(arguments)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn stamped_connectors_build_register_and_pass_their_tests() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tillflow");
    copy_tree(workspace, &root);

    for kind in ["--sink", "--source"] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["new-connector", kind, "example"])
            .current_dir(&root)
            .output()
            .unwrap();
        let said = text(&output);
        assert!(output.status.success(), "new-connector {kind} failed:\n{said}");
        assert!(said.contains("docs/connectors/example.md"), "{said}");
        assert!(said.contains("crates/runner/src/registry.rs (one line)"), "{said}");
    }
    // Nothing outside the two crates, their page and the two registry lines changed.
    let registry = std::fs::read_to_string(root.join("crates/runner/src/registry.rs")).unwrap();
    assert!(registry.contains("    tillflow_sink_example::DESCRIPTOR,\n];"), "{registry}");
    assert!(registry.contains("    tillflow_source_example::DESCRIPTOR,\n];"), "{registry}");
    for file in
        ["crates/sink-example/src/request.rs", "crates/source-example/src/wire.rs", "docs/connectors/example.md"]
    {
        assert!(root.join(file).exists(), "{file} was not stamped");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
        std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap(),
        "the workspace manifest is untouched"
    );

    // The runner builds with both registered; the stamped crates pass their tests.
    let build = cargo(&root, &["build", "--offline", "-p", "tillflow-runner"]);
    assert!(build.status.success(), "the runner does not build with the stamped crates:\n{}", text(&build));
    let test = cargo(
        &root,
        &[
            "test",
            "--offline",
            "-p",
            "tillflow-sink-example",
            "-p",
            "tillflow-source-example",
            "--features",
            "tillflow-sink-example/sandbox,tillflow-source-example/sandbox",
        ],
    );
    let said = text(&test);
    assert!(test.status.success(), "the stamped tests fail:\n{said}");
    for passed in
        ["example_passes_the_sink_conformance_suite ... ok", "example_passes_the_source_conformance_suite ... ok"]
    {
        assert!(said.contains(passed), "{passed} missing:\n{said}");
    }
    let tidy = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("tidy").current_dir(&root).output().unwrap();
    assert!(tidy.status.success(), "the stamped crates break tidy:\n{}", text(&tidy));
}
