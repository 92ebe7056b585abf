//! The `tillflow` program, built inside this crate so its tests can run it
//! (Cargo exposes binaries only to their own package's tests).

fn main() -> std::process::ExitCode {
    tillflow_runner::cli::main()
}
