//! How the ledger stores a row's kind, outcome and content hash: fixed small
//! numbers and packed bytes, not their names and hex text.
//!
//! Why: a history import writes two or three ledger rows an order, each to a
//! random leaf of the table's B-tree, and every leaf a transaction touches is
//! written twice (journal and file). Names and hex made a row ~120 bytes;
//! packed it is ~90, so the same rows fill a quarter fewer leaves. The codes
//! are stored data: a code once given never changes meaning (pinned by a test
//! and by migration 10, which wrote them into the rows it converted).

use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::state::OutcomeKind;

/// The stored number of an event kind.
pub(crate) fn kind_code(kind: EventKind) -> i64 {
    match kind {
        EventKind::Placed => 0,
        EventKind::OrderedProduct => 1,
        EventKind::Completed => 2,
        EventKind::Refunded => 3,
        EventKind::Shipped => 4,
        EventKind::Canceled => 5,
        EventKind::CustomerCreated => 6,
        EventKind::ProfileUpdated => 7,
        EventKind::OrderState => 8,
        EventKind::CatalogItem => 9,
        EventKind::ConsentChanged => 10,
        EventKind::GroupChanged => 11,
    }
}

/// The event kind a stored number names.
pub(crate) fn kind_of(code: i64) -> Result<EventKind, StateError> {
    named_by(EventKind::ALL, kind_code, code, "event kind")
}

/// The stored number of an outcome.
pub(crate) fn outcome_code(outcome: OutcomeKind) -> i64 {
    match outcome {
        OutcomeKind::Delivered => 0,
        OutcomeKind::Skipped => 1,
        OutcomeKind::DeadLettered => 2,
    }
}

/// The outcome a stored number names.
pub(crate) fn outcome_of(code: i64) -> Result<OutcomeKind, StateError> {
    named_by(OutcomeKind::ALL, outcome_code, code, "outcome")
}

/// The one of `all` whose stored number is `code`.
fn named_by<T: Copy, const N: usize>(
    all: [T; N],
    code_of: fn(T) -> i64,
    code: i64,
    what: &str,
) -> Result<T, StateError> {
    all.into_iter()
        .find(|each| code_of(*each) == code)
        .ok_or_else(|| StateError::new(format!("ledger: unknown {what} number {code}")))
}

/// Tag of a hash stored as its text's own bytes (one that is not hex).
const AS_TEXT: u8 = 0;
/// Tag of a hash that is lower-case hex alone (format 1): its bytes follow.
const HEX: u8 = 1;

/// A content hash packed for the ledger, in the hash's own buffer (one is
/// packed for every ledger row written, and a new buffer each was one more
/// allocation a row). `v<c><hex>` (formats 2 and up, and sink fingerprints)
/// becomes `v`, `c` and the hex's bytes; lower-case hex alone becomes tag 1
/// and its bytes; anything else tag 0 and its own text. The first byte tells
/// the three apart: `v` is neither 0 nor 1.
pub(crate) fn pack_hash(hash: String) -> Vec<u8> {
    let mut bytes = hash.into_bytes();
    match bytes.as_slice() {
        [b'v', format, hex @ ..] if format.is_ascii() && is_hex(hex) => decode_hex_in_place(&mut bytes, 2, 2),
        hex if is_hex(hex) => {
            decode_hex_in_place(&mut bytes, 0, 1);
            bytes[0] = HEX;
        }
        _ => bytes.insert(0, AS_TEXT),
    }
    bytes
}

/// The content hash `pack_hash` packed.
pub(crate) fn unpack_hash(packed: &[u8]) -> Result<String, StateError> {
    let corrupt = || StateError::new("ledger: a content hash that is not one tillflow packed");
    match packed {
        [AS_TEXT, text @ ..] => String::from_utf8(text.to_vec()).map_err(|_| corrupt()),
        [HEX, bytes @ ..] => {
            let mut hash = String::with_capacity(bytes.len() * 2);
            tillflow_core::hex::push_hex(&mut hash, bytes);
            Ok(hash)
        }
        [b'v', format, bytes @ ..] if format.is_ascii() => {
            let mut hash = String::with_capacity(2 + bytes.len() * 2);
            hash.push('v');
            hash.push(char::from(*format));
            tillflow_core::hex::push_hex(&mut hash, bytes);
            Ok(hash)
        }
        _ => Err(corrupt()),
    }
}

/// Whether `hex` is lower-case hex of whole bytes (so unpacking writes the
/// same text back).
fn is_hex(hex: &[u8]) -> bool {
    !hex.is_empty() && hex.len().is_multiple_of(2) && hex.iter().all(|digit| matches!(digit, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes the hex from `bytes[from..]` into bytes from `bytes[to]` on and
/// drops the rest. `to <= from + 1`: each pair is read before its byte is
/// written, and no write reaches a pair not yet read.
fn decode_hex_in_place(bytes: &mut Vec<u8>, from: usize, to: usize) {
    fn nibble(digit: u8) -> u8 {
        if digit.is_ascii_digit() { digit - b'0' } else { digit - b'a' + 10 }
    }
    let decoded = (bytes.len() - from) / 2;
    for index in 0..decoded {
        let pair = from + 2 * index;
        bytes[to + index] = nibble(bytes[pair]) << 4 | nibble(bytes[pair + 1]);
    }
    bytes.truncate(to + decoded);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers are stored data: what each kind and outcome was given
    /// must never change, and no two may share one.
    #[test]
    fn every_kind_and_outcome_keeps_the_number_it_was_stored_with() {
        let kinds: Vec<(&str, i64)> = EventKind::ALL.iter().map(|kind| (kind.as_str(), kind_code(*kind))).collect();
        assert_eq!(
            kinds,
            [
                ("placed", 0),
                ("ordered-product", 1),
                ("completed", 2),
                ("refunded", 3),
                ("shipped", 4),
                ("canceled", 5),
                ("customer-created", 6),
                ("profile-updated", 7),
                ("order-state", 8),
                ("catalog-item", 9),
                ("consent", 10),
                ("group", 11),
            ]
        );
        let outcomes: Vec<(&str, i64)> =
            OutcomeKind::ALL.iter().map(|outcome| (outcome.as_str(), outcome_code(*outcome))).collect();
        assert_eq!(outcomes, [("delivered", 0), ("skipped", 1), ("dead-lettered", 2)]);
        for kind in EventKind::ALL {
            assert_eq!(kind_of(kind_code(kind)).unwrap(), kind);
        }
        for outcome in OutcomeKind::ALL {
            assert_eq!(outcome_of(outcome_code(outcome)).unwrap(), outcome);
        }
        assert!(kind_of(12).is_err() && outcome_of(3).is_err());
    }

    /// Every hash comes back as the text it was, and the hashes tillflow
    /// writes (formats 1 to 4) take their bytes, not their hex.
    #[test]
    fn a_packed_hash_unpacks_to_its_own_text_and_hex_is_stored_as_bytes() {
        let v4 = tillflow_core::keys::content_hash(&"an order");
        let v3 = tillflow_core::keys::content_hash_v3(&"an order");
        let v1 = tillflow_core::keys::content_hash_v1(&"an order");
        for hash in [
            v4.as_str(),
            v3.as_str(),
            v1.as_str(),
            "v2000102030405060708090a0b0c0d0e",
            "",
            "v",
            "v3",
            "v3abc",
            "v3ABCD",
            "ABCD",
            "0",
            "not a hash",
            "v\u{e9}00",
            "\u{0}\u{1}",
        ] {
            let packed = pack_hash(hash.to_owned());
            assert_eq!(unpack_hash(&packed).unwrap(), hash, "{packed:?}");
        }
        for hash in [&v4, &v3] {
            assert_eq!(pack_hash(hash.clone()).len(), 2 + (hash.len() - 2) / 2, "{hash}");
        }
        assert_eq!(pack_hash(v1.clone()).len(), 1 + v1.len() / 2, "{v1}");
        assert!(unpack_hash(&[7, 1]).is_err() && unpack_hash(&[]).is_err());
    }
}
