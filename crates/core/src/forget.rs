//! Tombstones for people who asked to be forgotten: the subjects a person is
//! known by, as the state stores them, and what a sink reports when asked to
//! delete someone.
//!
//! A tombstone must outlive the person's data yet not be that data, so an
//! email is kept only as a SHA-256 of its normalised form: enough to
//! recognise the address when a later order brings it, not enough to read it
//! back from the state. A customer id seen on such an order is tombstoned
//! too, so a later record that carries only the id is recognised as well.

use crate::keys::push_hex;
use crate::model::Person;
use sha2::{Digest, Sha256};

/// The reason counted for events about a forgotten person.
pub const FORGOTTEN: &str = "forgotten";

/// The tombstone subject of an email address (case and surrounding blanks
/// do not matter, as for every platform here).
pub fn email_subject(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut subject = String::with_capacity(6 + 64);
    subject.push_str("email:");
    push_hex(&mut subject, &digest);
    subject
}

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
    fn an_email_subject_ignores_case_and_blanks_and_does_not_hold_the_address() {
        let subject = email_subject(" Ana@Example.com ");
        assert_eq!(subject, email_subject("ana@example.com"));
        assert_ne!(subject, email_subject("ana@example.org"));
        assert!(!subject.contains("ana"), "{subject}");
        assert_eq!(subject.len(), "email:".len() + 64);
        // The definition stored tombstones were written with.
        let written: String = Sha256::digest(b"ana@example.com").iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(subject, format!("email:{written}"));
    }

    #[test]
    fn a_person_is_known_by_email_and_by_customer_id() {
        let person =
            Person { customer_id: Some("7".into()), email: Some("ana@example.com".into()), ..Person::default() };
        assert_eq!(subjects("shop", &person), vec![email_subject("ana@example.com"), "customer:shop:7".to_owned()]);
        let guest = Person { email: Some("no address".into()), ..Person::default() };
        assert!(subjects("shop", &guest).is_empty());
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
