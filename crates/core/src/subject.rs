//! How a person's email address is kept in the state: as `email:` and a
//! SHA-256 of its normalised form, never the address itself. A tombstone is
//! kept so, and so is a guest's key in the facts and totals of their orders,
//! so forgetting a guest leaves no address behind and the state never holds
//! one it would have to find again.

use crate::hex::push_hex;
use sha2::{Digest, Sha256};

/// The subject of an email address (case and surrounding blanks do not
/// matter, as for every platform here).
pub fn email_subject(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut subject = String::with_capacity(6 + 64);
    subject.push_str("email:");
    push_hex(&mut subject, &digest);
    subject
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
}
