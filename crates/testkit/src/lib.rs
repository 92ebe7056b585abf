//! tillflow-testkit: the conformance suites every Source, Sink and
//! StateStore must pass, in-memory fakes (source, sink, state store) and
//! mock-platform helpers.

pub mod fake_sink;
pub mod fake_source;
pub mod memory_store;
pub mod mock;
pub mod openapi;
pub mod postgres;
pub mod recorder;
pub mod sink_suite;
pub mod source_suite;
pub mod state_suite;

pub use fake_sink::{FakeSink, FakeSinkLog};
pub use fake_source::{FakeSource, FakeWorld};
pub use memory_store::MemoryStore;
pub use mock::{Fault, MockPlatform};
