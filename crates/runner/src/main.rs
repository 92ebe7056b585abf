//! The `tillflow` binary.

fn main() -> std::process::ExitCode {
    tillflow_runner::cli::main()
}
