//! The sink kit, after Vector's sinks: every sink is the same loop
//! ([`SinkLoop`]) over three parts of its own — a [`RequestBuilder`] (events
//! → routes and items, each event serialized once, packed by the one
//! [`pack`] under count and byte limits), a [`Service`] (one HTTP exchange
//! per request on the account's client) and a [`ResponseClassifier`] (an
//! answer → per-item outcomes, 2xx-with-failures-inside, conflicts and
//! whole-request refusals included) — plus a declarative [`SinkSpec`]
//! (event names, batch sizes, identity).

mod driver;
mod json_object;
mod pack;
mod request;
mod response;
mod service;
mod spec;

pub use driver::SinkLoop;
pub use json_object::JsonObject;
pub use pack::{Envelope, Packed, Packing, pack};
pub use request::{RequestBuilder, RouteError};
pub use response::{ItemVerdict, ResponseClassifier, Verdict, refused_reason};
pub use service::Service;
pub use spec::{Batches, Identity, SinkSpec};
