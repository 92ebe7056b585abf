//! End-to-end tests across crates. The helper binary `crash-child` runs one
//! real pipeline (fake source → recorder sink over HTTP, SQLite state) so
//! tests can SIGKILL it at exact failpoints and restart it.
