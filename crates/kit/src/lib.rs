//! tillflow-kit: the connector author's contract. A platform crate exports
//! one descriptor ([`descriptor`]) whose parsed config opens an account
//! ([`account`]): one HTTP client with its rate gates, one token manager,
//! shared by every pipeline naming it. Sinks are built from the sink kit
//! ([`sink`]: request building, service, response classification, one sink
//! loop), sources from the source kit ([`source`]: checkpoints, lenient wire
//! types, mapping helpers; [`auth`]: OAuth with rotating refresh tokens).
//! The runner only ever speaks these types.

pub mod account;
pub mod auth;
pub mod config;
pub mod descriptor;
pub mod sandbox;
pub mod sink;
pub mod source;

pub use account::{AccountContext, HttpTuning, SinkAccount, SourceAccount};
pub use config::{ConfigProblem, PathPart};
pub use descriptor::{SinkDescriptor, SinkPlatform, SourceDescriptor, SourcePlatform};
