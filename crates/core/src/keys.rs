//! Deterministic idempotency keys, content hashes and the ULIDs sinks use as event ids.
//!
//! A key is derived only from source identity (platform, source name, entity, id,
//! event, optional sub-part), so the same fact always gets the same key no matter
//! how often or by which runner it is read.

use crate::hex::push_hex;
use crate::model::SourceIdentity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The hasher of the maps a pass fills once per event, fact or person:
/// foldhash, not the standard SipHash, which over keys of 30 to 60 bytes was
/// a percent of the pass for the event keys alone and 3.6% of the engine's
/// thread for a page's people (`pipeline::forgotten`). foldhash's quality
/// variant keeps a random seed per map, so ids a source sends cannot be
/// chosen to collide.
pub type SeededHash = foldhash::quality::RandomState;

/// A map keyed by event keys (see [`SeededHash`]).
pub type KeyMap<V> = std::collections::HashMap<IdempotencyKey, V, SeededHash>;

/// e.g. `woocommerce:shop:order:727:placed` or
/// `woocommerce:shop:order:727:ordered-product:line-5`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn new(identity: &SourceIdentity, entity: &str, event: &str, part: Option<&str>) -> Self {
        // Written part by part into one string: a key is made for every
        // event, and formatting it through escaped copies cost an allocation
        // per part.
        let length = identity.platform.len()
            + identity.source.len()
            + entity.len()
            + identity.id.len()
            + event.len()
            + part.map_or(0, |part| part.len() + 1)
            + 4;
        let mut key = String::with_capacity(length);
        push_escaped(&mut key, &identity.platform);
        key.push(':');
        push_escaped(&mut key, &identity.source);
        key.push(':');
        key.push_str(entity);
        key.push(':');
        push_escaped(&mut key, &identity.id);
        key.push(':');
        key.push_str(event);
        if let Some(part) = part {
            key.push(':');
            push_escaped(&mut key, part);
        }
        Self(key)
    }
    /// The key's text, given up (what a store binds without copying it).
    pub fn into_string(self) -> String {
        self.0
    }
    /// Rebuilds a key read back from the state store.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A ULID that is a pure function of this key and the event time: Customer.io
    /// (and anyone else deduplicating on ULIDs) sees the same id on every resend.
    pub fn ulid(&self, at: jiff::Timestamp) -> Ulid {
        let digest = Sha256::digest(self.0.as_bytes());
        let millis = u128::try_from(at.as_millisecond().max(0)).unwrap_or(0) & ((1 << 48) - 1);
        let mut random: u128 = 0;
        for byte in &digest[..10] {
            random = (random << 8) | u128::from(*byte);
        }
        let value = (millis << 80) | random;
        crockford_base32(value)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Colons separate key parts, so a colon inside an id is percent-encoded.
fn push_escaped(key: &mut String, part: &str) {
    if !part.contains([':', '%']) {
        key.push_str(part);
        return;
    }
    for character in part.chars() {
        match character {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            other => key.push(other),
        }
    }
}

/// A ULID's 26 characters, held inline: one is made for every event sent to
/// Customer.io, and as a `String` each was an allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ulid([u8; 26]);

impl Ulid {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("Crockford's alphabet is ASCII")
    }
}

/// As its text, wherever a request's JSON carries it.
impl Serialize for Ulid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

fn crockford_base32(mut value: u128) -> Ulid {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    Ulid(out)
}

/// What a format-2 content hash starts with; a hash without a prefix is format 1.
const FORMAT_2: &str = "v2";

/// What a format-3 content hash starts with.
const FORMAT_3: &str = "v3";

/// What a format-4 content hash starts with.
const FORMAT_4: &str = "v4";

/// A short, stable fingerprint of a serializable value, format 4: `v4` and
/// the hex of the first 15 bytes of XXH3-128 over its fingerprint encoding
/// (`crate::fingerprint`: binary, positional, no field names; times and
/// amounts as their exact numbers), 32 characters like every format. A
/// content hash tells a changed record from an unchanged one; nothing trusts
/// it against forgery. XXH3 is a fixed specification, so a hash stored today
/// is the hash computed in ten years.
pub fn content_hash<T: Serialize + ?Sized>(value: &T) -> String {
    xxh3_hash(FORMAT_4, crate::fingerprint::write, value)
}

/// Format 3, what ledger rows written before format 4 hold: format 4 with
/// times and amounts encoded as their text, whose formatting was two fifths
/// of the encoding. (Format 3 replaced format 2's SHA-256, which on a CPU
/// without SHA instructions was a seventh of a history import.)
pub fn content_hash_v3<T: Serialize + ?Sized>(value: &T) -> String {
    xxh3_hash(FORMAT_3, crate::fingerprint::write_with_text_forms, value)
}

/// Formats 3 and 4: `prefix` and the first 15 bytes of XXH3-128 over what
/// `encode` writes of `value`.
fn xxh3_hash<T: Serialize + ?Sized>(prefix: &str, encode: fn(&mut Vec<u8>, &T), value: &T) -> String {
    let digest = with_buffer(|buffer| {
        encode(buffer, value);
        xxhash_rust::xxh3::xxh3_128(buffer).to_be_bytes()
    });
    stored_hash(prefix, &digest[..15])
}

/// Format 2, what ledger rows written before format 3 hold: `v2` and the
/// hex of the first 15 bytes of SHA-256 over format 3's encoding.
pub fn content_hash_v2<T: Serialize + ?Sized>(value: &T) -> String {
    let digest = with_buffer(|buffer| {
        crate::fingerprint::write_with_text_forms(buffer, value);
        Sha256::digest(buffer.as_slice())
    });
    stored_hash(FORMAT_2, &digest[..15])
}

/// Format 1, what every ledger row written before format 2 holds: hex of the
/// first 16 bytes of SHA-256 over the value's JSON. serde_json writes struct
/// fields in declaration order and maps sorted (BTreeMap), so equal values
/// hash equally. Still what a sink's own fingerprint is, where one is kept
/// (E-goi's order facts): the rows it wrote stay comparable.
pub fn content_hash_v1<T: Serialize + ?Sized>(value: &T) -> String {
    let digest = with_buffer(|buffer| {
        serde_json::to_writer(&mut *buffer, value).expect("model values always serialize");
        Sha256::digest(buffer.as_slice())
    });
    stored_hash("", &digest[..16])
}

/// A content hash as the ledger stores it: the format's prefix, then the hex
/// of `digest`, 32 characters in every format.
fn stored_hash(prefix: &str, digest: &[u8]) -> String {
    let mut hex = String::with_capacity(32);
    hex.push_str(prefix);
    push_hex(&mut hex, digest);
    hex
}

/// The format a stored content hash was made with: 1 to 4.
pub fn hash_format(hash: &str) -> u8 {
    if hash.starts_with(FORMAT_4) {
        4
    } else if hash.starts_with(FORMAT_3) {
        3
    } else if hash.starts_with(FORMAT_2) {
        2
    } else {
        1
    }
}

/// Runs `hash` over a buffer this thread keeps (cleared first): a value is
/// encoded whole and hashed in one call, with no allocation per record and
/// without feeding SHA-256 the hundreds of small pieces an encoder writes.
fn with_buffer<R>(hash: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            let result = hash(&mut buffer);
            // A rare huge record does not keep its buffer for the thread's life.
            if buffer.capacity() > 1 << 20 {
                *buffer = Vec::new();
            }
            result
        }
        // Hashed while hashing (a Serialize impl that hashes): a buffer of its own.
        Err(_) => hash(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_hash_is_the_one_every_older_ledger_row_holds() {
        // The definition the ledger was written with: hex of the first 16
        // bytes of SHA-256 over the whole JSON.
        let value = serde_json::json!({"id": 727, "lines": [{"sku": "SKU-1", "total": "12.50"}], "note": "é \"q\""});
        let json = serde_json::to_vec(&value).unwrap();
        let expected: String = Sha256::digest(&json)[..16].iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(content_hash_v1(&value), expected);
        assert_eq!(hash_format(&expected), 1, "format 1 is hex alone");
    }

    #[test]
    fn a_format_2_hash_says_so_and_is_as_long_as_format_1() {
        let value = serde_json::json!({"id": 727});
        let hash = content_hash_v2(&value);
        assert!(hash_format(&hash) == 2 && hash.len() == 32, "{hash}");
        assert!(hash[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(content_hash_v2(&serde_json::json!({"id": 728})), hash);
    }

    const PINNED_FORMAT_3: &str = "v31adbbb85909be3dcfaf2cfc27706aa";

    /// Stored hashes outlive builds: the format-3 hash of a value is pinned
    /// here, so a change of encoding or of XXH3's crate that would make every
    /// stored row look changed (and resend it) fails this test first.
    #[test]
    fn a_format_3_hash_says_so_and_never_changes() {
        let value = serde_json::json!({"id": 727, "lines": [{"sku": "SKU-1", "total": "12.50"}], "note": "é \"q\""});
        let hash = content_hash_v3(&value);
        assert!(hash_format(&hash) == 3 && hash.len() == 32, "{hash}");
        assert_eq!(hash, PINNED_FORMAT_3);
        assert_ne!(content_hash_v3(&serde_json::json!({"id": 728})), hash);
        assert_ne!(content_hash_v2(&value)[2..], hash[2..], "another hash than format 2's");
    }

    const PINNED_FORMAT_4: &str = "v478dbca3e00651a57401d8f933e0ca3";

    /// As format 3's: a format-4 hash is pinned (over a record of the
    /// model, whose times and amounts are what the format encodes anew).
    #[test]
    fn a_format_4_hash_says_so_and_never_changes() {
        let value = crate::model::Money::new("12.50".parse().unwrap(), crate::model::Currency::new("EUR").unwrap());
        let hash = content_hash(&value);
        assert!(hash_format(&hash) == 4 && hash.len() == 32, "{hash}");
        assert_eq!(hash, PINNED_FORMAT_4);
        assert_ne!(content_hash_v3(&value)[2..], hash[2..], "another hash than format 3's");
    }

    /// The definition stored hashes were made with.
    fn hash_of_json(value: &impl Serialize) -> String {
        let json = serde_json::to_vec(value).unwrap();
        Sha256::digest(&json)[..16].iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn the_buffer_a_thread_reuses_leaves_nothing_of_the_last_value() {
        let long = "x".repeat(5_000);
        assert_eq!(content_hash_v1(&long), hash_of_json(&long));
        assert_eq!(content_hash_v1("short"), hash_of_json(&"short"));
    }

    /// A value whose serialization hashes something itself.
    struct HashesInside;
    impl Serialize for HashesInside {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&content_hash_v1(&("inner", 1)))
        }
    }

    #[test]
    fn hashing_while_hashing_uses_a_buffer_of_its_own() {
        let inner = hash_of_json(&("inner", 1));
        assert_eq!(content_hash_v1(&HashesInside), hash_of_json(&inner));
    }

    fn identity(id: &str) -> SourceIdentity {
        SourceIdentity { platform: "woocommerce".into(), source: "shop".into(), id: id.into() }
    }

    #[test]
    fn key_has_the_documented_shape() {
        let key = IdempotencyKey::new(&identity("727"), "order", "placed", None);
        assert_eq!(key.as_str(), "woocommerce:shop:order:727:placed");
        let line = IdempotencyKey::new(&identity("727"), "order", "ordered-product", Some("5"));
        assert_eq!(line.as_str(), "woocommerce:shop:order:727:ordered-product:5");
    }

    #[test]
    fn colons_inside_ids_cannot_forge_another_key() {
        let tricky = IdempotencyKey::new(&identity("1:placed"), "order", "x", None);
        assert_eq!(tricky.as_str(), "woocommerce:shop:order:1%3Aplaced:x");
        let percent = IdempotencyKey::new(&identity("50%:3A"), "order", "x", Some("a:%"));
        assert_eq!(percent.as_str(), "woocommerce:shop:order:50%25%3A3A:x:a%3A%25");
    }

    #[test]
    fn ulid_is_deterministic_valid_and_distinct_per_key() {
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let a = IdempotencyKey::new(&identity("1"), "order", "placed", None);
        let b = IdempotencyKey::new(&identity("2"), "order", "placed", None);
        assert_eq!(a.ulid(at), a.ulid(at));
        assert_ne!(a.ulid(at), b.ulid(at));
        let ulid = a.ulid(at);
        let ulid = ulid.as_str();
        assert_eq!(ulid.len(), 26);
        // The first 10 characters encode the millisecond timestamp.
        assert!(ulid.starts_with("01HF"), "{ulid}");
        assert!(ulid.bytes().all(|c| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&c)));
        assert_eq!(serde_json::to_value(a.ulid(at)).unwrap(), ulid, "JSON carries its text");
    }

    #[test]
    fn content_hash_changes_with_content() {
        assert_eq!(content_hash(&("a", 1)), content_hash(&("a", 1)));
        assert_ne!(content_hash(&("a", 1)), content_hash(&("a", 2)));
    }
}
