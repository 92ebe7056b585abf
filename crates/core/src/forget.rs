//! Tombstones for people who asked to be forgotten: the subjects a person is
//! known by, as the state stores them, and what a sink reports when asked to
//! delete someone.
//!
//! A tombstone must outlive the person's data yet not be that data, so an
//! email is kept only as a SHA-256 of its normalised form: enough to
//! recognise the address when a later order brings it, not enough to read it
//! back from the state. A customer id seen on such an order is tombstoned
//! too, so a later record that carries only the id is recognised as well.

use crate::model::Person;

pub use crate::subject::email_subject;

/// The reason counted for events about a forgotten person.
pub const FORGOTTEN: &str = "forgotten";

/// The tombstone subject of a customer id of one configured source.
pub fn customer_subject(source: &str, customer_id: &str) -> String {
    format!("customer:{source}:{customer_id}")
}

/// The subjects `person` is known by when read from `source`: the email's
/// first (it is what an operator names), then the customer id.
pub fn subjects(source: &str, person: &Person) -> Vec<String> {
    let mut subjects = Vec::with_capacity(2);
    if let Some(email) = person.email.as_deref().filter(|_| person.has_email()) {
        subjects.push(email_subject(email));
    }
    if let Some(id) = person.customer_id.as_deref().filter(|id| !id.is_empty()) {
        subjects.push(customer_subject(source, id));
    }
    subjects
}

/// Whether `address` reads as an email address an operator could mean.
pub fn plausible_email(address: &str) -> bool {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !address.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Whether `stored` (a dead letter's payload, a webhook's body, a source's
/// own state) names the address `email`: in any case, as written or
/// percent-encoded the way a form body carries it (X-Series webhooks send
/// their JSON as a form field), and only as a whole address, so forgetting
/// `ana@example.com` finds nothing of `joana@example.com`.
pub fn mentions(stored: &[u8], email: &str) -> bool {
    Purge::of(email).is_some_and(|purge| purge.names(&[stored]))
}

/// An address being purged from the state, normalised once: what every
/// store asks of each stored row, with one meaning of "names it" for all.
#[derive(Debug)]
pub struct Purge {
    address: String,
}

impl Purge {
    /// `None` for an empty address, which nothing names.
    pub fn of(email: &str) -> Option<Self> {
        let address = email.trim().to_lowercase();
        (!address.is_empty()).then_some(Self { address })
    }

    /// Whether any of a row's `parts` names the address, as [`mentions`]
    /// reads one.
    pub fn names(&self, parts: &[&[u8]]) -> bool {
        parts.iter().any(|stored| {
            let text = String::from_utf8_lossy(stored).to_lowercase();
            names_whole(&text, &self.address)
                || (text.contains('%') && names_whole(&percent_decoded(&text), &self.address))
        })
    }
}

/// The addresses `stored` names, lower case and each once, as written or
/// percent-encoded: what a record that could not be read is checked
/// against the tombstones by, since no person could be read from it.
pub fn addresses_in(stored: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stored).to_lowercase();
    let mut found = Vec::new();
    collect_addresses(&text, &mut found);
    if text.contains('%') {
        collect_addresses(&percent_decoded(&text), &mut found);
    }
    found.sort();
    found.dedup();
    found
}

/// The characters real local parts are made of. The rarer ones an address
/// may hold (`=`, `&`, `/`, …) are what forms and URLs put around a value,
/// so they count as edges.
fn in_local_part(c: char) -> bool {
    c.is_alphanumeric() || "._%+-".contains(c)
}

/// The characters of a domain; a full stop ends a sentence as well, so one
/// at an address's end is not part of it.
fn in_domain(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.'
}

fn collect_addresses(text: &str, found: &mut Vec<String>) {
    for (at, _) in text.match_indices('@') {
        let start =
            text[..at].char_indices().rev().take_while(|(_, c)| in_local_part(*c)).last().map_or(at, |(i, _)| i);
        let domain = text[at + 1..].char_indices().take_while(|(_, c)| in_domain(*c)).last();
        let end = domain.map_or(at + 1, |(i, c)| at + 1 + i + c.len_utf8());
        let address = text[start..end].trim_end_matches('.');
        if plausible_email(address) {
            found.push(address.to_owned());
        }
    }
}

/// Whether `address` occurs in `text` with no character of an address
/// touching it on either side.
fn names_whole(text: &str, address: &str) -> bool {
    text.match_indices(address).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + address.len()..].chars();
        let joined_after = match after.next() {
            // A full stop ends a sentence, or goes on to a longer domain.
            Some('.') => after.next().is_some_and(char::is_alphanumeric),
            Some(c) => in_domain(c) || c == '_',
            None => false,
        };
        !before.is_some_and(in_local_part) && !joined_after
    })
}

/// `text` with its `%XX` escapes and `+` spaces decoded, as a form body's
/// values read (bytes that are not UTF-8 after decoding are replaced).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |byte: u8| char::from(byte).to_digit(16);
        match bytes[at] {
            b'%' if at + 2 < bytes.len() => match (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                (Some(high), Some(low)) => {
                    decoded.push((high * 16 + low) as u8);
                    at += 3;
                    continue;
                }
                _ => decoded.push(b'%'),
            },
            b'+' => decoded.push(b' '),
            byte => decoded.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&decoded).to_lowercase()
}

/// What the state deleted because it named a forgotten address
/// (`StateStore::purge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub dead_letters: u64,
    /// Stored webhooks, processed or not: a forgotten person's would only be
    /// skipped.
    pub webhooks: u64,
    /// Entries a source keeps of its own (the Retail POS merge's people).
    pub source_entries: u64,
}

/// What one sink was asked when told to forget a person, and what it
/// answered, in words an operator can keep as a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgetReport {
    /// The platform call(s), e.g. `POST /api/data-privacy-deletion-jobs`.
    pub asked: String,
    /// The platform's answer, e.g. `202 Accepted: deletion job queued`.
    pub answered: String,
    /// False when the platform had no such person (nothing to delete).
    pub known: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_is_known_by_email_and_by_customer_id() {
        let person =
            Person { customer_id: Some("7".into()), email: Some("ana@example.com".into()), ..Person::default() };
        assert_eq!(subjects("shop", &person), vec![email_subject("ana@example.com"), "customer:shop:7".to_owned()]);
        let guest = Person { email: Some("no address".into()), ..Person::default() };
        assert!(subjects("shop", &guest).is_empty());
    }

    #[test]
    fn a_stored_body_mentions_an_address_whole_in_any_case_and_form_encoded() {
        let json = br#"{"billing":{"email":"Ana.Lima@Example.com","phone":""}}"#;
        assert!(mentions(json, "ana.lima@example.com"));
        assert!(mentions(json, " ANA.LIMA@example.COM "));
        assert!(!mentions(json, "lima@example.com"), "a longer address is another person");
        assert!(!mentions(json, "ana.lima@example.co"), "so is a shorter domain");
        assert!(!mentions(br#"{"email":"ana@example.com.br"}"#, "ana@example.com"));
        assert!(mentions(b"write to ana@example.com.", "ana@example.com"), "a full stop ends it");
        assert!(mentions(b"<ana@example.com>", "ana@example.com"));
        let form = b"payload=%7B%22email%22%3A%22Ana%40Example.com%22%7D&type=customer.update";
        assert!(mentions(form, "ana@example.com"));
        assert!(!mentions(form, "na@example.com"));
        assert!(mentions(b"email=ana%2Bshop%40example.com", "ana+shop@example.com"));
        assert!(!mentions(b"", "ana@example.com"));
        assert!(!mentions(b"{\"email\":\"ana@example.com\"}", ""));
    }

    #[test]
    fn the_addresses_a_body_names_are_found_as_mentions_finds_them() {
        let body = br#"{"billing":{"email":"Ana.Lima@Example.com"},"note":"cc bia@example.org. ok","x":"@","y":"a@b"}"#;
        assert_eq!(addresses_in(body), ["ana.lima@example.com", "bia@example.org"]);
        let form = b"payload=%7B%22email%22%3A%22Ana%2Bshop%40Example.com%22%7D";
        assert_eq!(addresses_in(form), ["ana+shop@example.com"]);
        for address in addresses_in(body).iter().chain(&addresses_in(form)) {
            assert!(mentions(body, address) || mentions(form, address), "{address}");
        }
        assert!(addresses_in(b"no address here").is_empty());
    }

    #[test]
    fn only_an_address_reads_as_an_email() {
        assert!(plausible_email("ana@example.com"));
        assert!(!plausible_email("ana"));
        assert!(!plausible_email("@example.com"));
        assert!(!plausible_email("ana@localhost"));
        assert!(!plausible_email("ana maria@example.com"));
    }
}
