//! A sink's declaration: which events it sends under which names, how many
//! go in one delivery, how it identifies people, and what else the engine
//! must know. Declared once per sink; `accepts`, the request builder and the
//! demo's count check all read it.

use tillflow_core::EventKind;
use tillflow_core::model::Person;

/// Events per delivery, live and history (bulk endpoints take more).
#[derive(Clone, Copy, Debug)]
pub struct Batches {
    pub live: usize,
    pub history: usize,
}

/// How the platform recognises a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The source's customer id, else the email (a guest).
    CustomerIdOrEmail,
    /// Only an email.
    Email,
}

#[derive(Debug)]
pub struct SinkSpec {
    /// The config `type`.
    pub platform: &'static str,
    /// Each kind sent and the name the platform shows it under.
    pub events: &'static [(EventKind, &'static str)],
    pub batches: Batches,
    pub identity: Identity,
    /// The sink keeps purchase totals as profile attributes.
    pub person_totals: bool,
    /// Requests of one delivery in flight at once (the account's rate gates
    /// still hold every one of them).
    pub in_flight: usize,
}

impl SinkSpec {
    pub fn name(&self, kind: EventKind) -> Option<&'static str> {
        self.events.iter().find(|(k, _)| *k == kind).map(|(_, name)| *name)
    }

    pub fn accepts(&self, kind: EventKind) -> bool {
        self.name(kind).is_some()
    }

    pub fn identifies(&self, person: &Person) -> bool {
        match self.identity {
            Identity::CustomerIdOrEmail => person.customer_id.is_some() || person.has_email(),
            Identity::Email => person.has_email(),
        }
    }

    pub fn unidentified_reason(&self) -> &'static str {
        match self.identity {
            Identity::CustomerIdOrEmail => "no identifier",
            Identity::Email => "no email",
        }
    }
}
