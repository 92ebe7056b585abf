//! The one batch packer: items already serialized once, packed in order into
//! request bodies under a platform's count and byte limits, and, where the
//! platform refuses a repeated id in one request, never one event key twice.

use std::collections::HashSet;
use tillflow_core::keys::SeededHash;

/// How a request body wraps its items: `open` item `separator` item … `close`.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub open: Vec<u8>,
    pub separator: &'static [u8],
    pub close: Vec<u8>,
}

impl Envelope {
    pub fn new(open: impl Into<Vec<u8>>, close: impl Into<Vec<u8>>) -> Self {
        Self { open: open.into(), separator: b",", close: close.into() }
    }
}

/// One request family's limits.
#[derive(Clone, Debug)]
pub struct Packing {
    /// Fewer go through the builder's `isolate` route one by one (a bulk
    /// endpoint that refuses a batch of one).
    pub min_items: usize,
    pub max_items: usize,
    /// The whole body, envelope included.
    pub max_bytes: usize,
    /// One item; a larger one is refused before anything is sent.
    pub max_item_bytes: usize,
    /// How the limit above is named in the refusal ("Customer.io's 32 KB").
    pub item_limit_name: &'static str,
    /// The platform refuses a request carrying one id twice (Klaviyo's bulk
    /// jobs fail whole): a repeated event key starts a new request.
    pub distinct_keys: bool,
    pub envelope: Envelope,
}

impl Packing {
    /// One item per request, wrapped in `envelope`.
    pub fn single(envelope: Envelope, max_bytes: usize, item_limit_name: &'static str) -> Self {
        Self {
            min_items: 1,
            max_items: 1,
            max_bytes,
            max_item_bytes: max_bytes,
            item_limit_name,
            distinct_keys: false,
            envelope,
        }
    }
}

/// A request body and the positions (in the delivered batch) of its items.
#[derive(Clone, Debug)]
pub struct Packed {
    pub positions: Vec<usize>,
    pub body: Vec<u8>,
}

/// Packs `items` — (position, event key, serialized item) in batch order —
/// into bodies. Returns the bodies and the items refused for their size.
pub fn pack(items: Vec<(usize, &str, Vec<u8>)>, packing: &Packing) -> (Vec<Packed>, Vec<(usize, String)>) {
    let envelope = &packing.envelope;
    let fixed = envelope.open.len() + envelope.close.len();
    let mut requests = Vec::new();
    let mut refused = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut positions: Vec<usize> = Vec::new();
    let mut keys: HashSet<&str, SeededHash> = HashSet::with_capacity_and_hasher(items.len(), SeededHash::default());
    // Bytes of the items before each one: a body is given, when it starts,
    // room for the most it can hold from there, instead of doubling its way
    // up through a dozen copies of itself.
    let mut bytes = 0;
    let before: Vec<usize> = std::iter::once(0)
        .chain(items.iter().map(|(_, _, item)| {
            bytes += item.len() + envelope.separator.len();
            bytes
        }))
        .collect();
    let finish = |body: &mut Vec<u8>, positions: &mut Vec<usize>, requests: &mut Vec<Packed>| {
        if !positions.is_empty() {
            body.extend_from_slice(&envelope.close);
            requests.push(Packed { positions: std::mem::take(positions), body: std::mem::take(body) });
        }
    };
    for (index, (position, key, item)) in items.into_iter().enumerate() {
        let limit = packing.max_item_bytes.min(packing.max_bytes.saturating_sub(fixed));
        if item.len() > limit {
            refused.push((
                position,
                format!("this item is {} bytes, more than {} limit", item.len(), packing.item_limit_name),
            ));
            continue;
        }
        let grown = body.len() + envelope.separator.len() + item.len() + envelope.close.len();
        let repeated = packing.distinct_keys && keys.contains(key);
        if !positions.is_empty() && (positions.len() >= packing.max_items || grown > packing.max_bytes || repeated) {
            finish(&mut body, &mut positions, &mut requests);
            keys.clear();
        }
        if positions.is_empty() {
            let most = before[index.saturating_add(packing.max_items).min(before.len() - 1)] - before[index];
            body.reserve((most + fixed).min(packing.max_bytes));
            body.extend_from_slice(&envelope.open);
        } else {
            body.extend_from_slice(envelope.separator);
        }
        body.extend_from_slice(&item);
        positions.push(position);
        if packing.distinct_keys {
            keys.insert(key);
        }
    }
    finish(&mut body, &mut positions, &mut requests);
    (requests, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packing(max_items: usize, max_bytes: usize) -> Packing {
        Packing {
            min_items: 1,
            max_items,
            max_bytes,
            max_item_bytes: 40,
            item_limit_name: "the test's 40-byte",
            distinct_keys: true,
            envelope: Envelope::new(&b"{\"batch\":["[..], &b"]}"[..]),
        }
    }

    fn item(n: usize, size: usize) -> (usize, String, Vec<u8>) {
        let text = format!("\"{}\"", "x".repeat(size - 2));
        (n, format!("key-{n}"), text.into_bytes())
    }

    fn pack_owned(items: &[(usize, String, Vec<u8>)], packing: &Packing) -> (Vec<Packed>, Vec<(usize, String)>) {
        pack(items.iter().map(|(p, k, b)| (*p, k.as_str(), b.clone())).collect(), packing)
    }

    #[test]
    fn bodies_respect_the_byte_and_count_limits_and_keep_the_order() {
        let items: Vec<_> = (0..10).map(|n| item(n, 20)).collect();
        let (requests, refused) = pack_owned(&items, &packing(3, 100));
        assert!(refused.is_empty());
        let mut seen = Vec::new();
        for request in &requests {
            assert!(request.body.len() <= 100, "{}", request.body.len());
            assert!(request.positions.len() <= 3);
            let parsed: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(parsed["batch"].as_array().unwrap().len(), request.positions.len());
            seen.extend(request.positions.iter().copied());
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        // 12 bytes of envelope + 4 × 20 + 3 separators = 95 fits, but the count limit is 3.
        assert_eq!(requests[0].positions, vec![0, 1, 2]);
        let (by_bytes, _) = pack_owned(&items, &packing(100, 60));
        assert_eq!(by_bytes[0].positions, vec![0, 1], "12 + 20 + 1 + 20 = 53; a third would make 74");
    }

    #[test]
    fn an_oversized_item_is_refused_and_a_repeated_key_starts_a_new_request() {
        let mut items = vec![item(0, 20), item(1, 41), item(2, 20)];
        items[2].1 = "key-0".into();
        let (requests, refused) = pack_owned(&items, &packing(10, 1000));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 1);
        assert!(refused[0].1.contains("41 bytes, more than the test's 40-byte limit"), "{}", refused[0].1);
        assert_eq!(requests.iter().map(|r| r.positions.clone()).collect::<Vec<_>>(), vec![vec![0], vec![2]]);
    }
}
