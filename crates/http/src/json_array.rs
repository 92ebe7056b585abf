//! A listing's JSON array decoded record by record in one pass, each
//! record's text found only when it is needed: a record that does not map is
//! kept as the text it came as.
//!
//! Decoding a listing as `Vec<Box<RawValue>>` first parsed every byte of it
//! (validating what the typed decoding then parsed again) and copied each
//! element out: 7% of a history import's instructions. Now a listing is
//! decoded once, as `Vec<T>`; only when that fails (a record of another
//! shape, or a body that is not JSON) is it taken apart — strings skipped
//! over, brackets counted — and each element decoded by itself. What the
//! splitter does not check, an element's own decoding does: one that is not
//! JSON fails with a syntax error, and the whole body is malformed, as when
//! it was decoded in one piece.

use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

/// A JSON array body, its elements delimited on first use.
#[derive(Debug)]
pub struct JsonArray {
    body: Bytes,
    /// Each element's place in `body`, without the whitespace around it, or
    /// what makes the body no JSON array.
    elements: OnceLock<Result<Vec<Range<usize>>, String>>,
}

/// A record's JSON text: an element of a listing, delimited when first
/// asked for (most records never are: only one kept as it came needs it), or
/// a record that came alone (a webhook's body).
#[derive(Clone, Copy, Debug)]
pub struct Element<'a>(Place<'a>);

#[derive(Clone, Copy, Debug)]
enum Place<'a> {
    Listed(&'a JsonArray, usize),
    Alone(&'a str),
}

impl<'a> Element<'a> {
    /// A record that came by itself, not in a listing.
    pub fn alone(text: &'a str) -> Self {
        Self(Place::Alone(text))
    }

    /// The record's JSON text.
    pub fn text(self) -> &'a str {
        match self.0 {
            Place::Alone(text) => text,
            Place::Listed(listing, index) => {
                // An element handed out by `decode_each` is one of a body found
                // to be UTF-8 and to hold it; its range begins and ends on a
                // character boundary (see `delimit`).
                let range = listing.elements().expect("a decoded listing is an array")[index].clone();
                std::str::from_utf8(&listing.body[range]).expect("a decoded listing is text")
            }
        }
    }
}

impl JsonArray {
    pub fn new(body: Bytes) -> Self {
        Self { body, elements: OnceLock::new() }
    }

    /// Each element decoded as `T`, with a handle on its text: in one pass
    /// when every element decodes (a listing's usual case); otherwise each by
    /// itself, so an element of another shape is an error of its own. Err:
    /// the body is not a JSON array, saying what is wrong and where.
    pub fn decode_each<'a, T: Deserialize<'a>>(&'a self) -> Result<Vec<(Element<'a>, serde_json::Result<T>)>, String> {
        let element = |index| Element(Place::Listed(self, index));
        // Checked once here, not string by string as decoding bytes would.
        let text = std::str::from_utf8(&self.body).map_err(|e| format!("not UTF-8 text: {e}"))?;
        if let Ok(all) = serde_json::from_str::<Vec<T>>(text) {
            return Ok(all.into_iter().enumerate().map(|(index, value)| (element(index), Ok(value))).collect());
        }
        let mut decoded = Vec::new();
        for (index, range) in self.elements()?.iter().enumerate() {
            let value = serde_json::from_str(&text[range.clone()]);
            if let Err(error) = &value
                && (error.is_syntax() || error.is_eof())
            {
                return Err(format!("element {index}: {error}"));
            }
            decoded.push((element(index), value));
        }
        Ok(decoded)
    }

    /// The whole body as text, for an error that shows it.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    fn elements(&self) -> Result<&[Range<usize>], String> {
        self.elements.get_or_init(|| delimit(&self.body)).as_deref().map_err(String::clone)
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The ranges of the top-level elements of the array `bytes` holds. Every
/// range starts after and ends before an ASCII byte (a bracket, a comma,
/// whitespace): on a character boundary.
fn delimit(bytes: &[u8]) -> Result<Vec<Range<usize>>, String> {
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return Err(format!("expected a JSON array at byte {at}"));
    }
    at = skip_whitespace(bytes, at + 1);
    let mut elements = Vec::new();
    if bytes.get(at) == Some(&b']') {
        return finish(bytes, at + 1, elements);
    }
    loop {
        let start = at;
        let mut depth = 0usize;
        // Up to the comma or bracket that ends the element at depth 0.
        let end = loop {
            let Some(&byte) = bytes.get(at) else {
                return Err("the array does not close: the body ends inside it".to_owned());
            };
            match byte {
                b'"' => at = string_end(bytes, at)?,
                b'{' | b'[' => {
                    depth += 1;
                    at += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    at += 1;
                }
                b',' | b']' if depth == 0 => break at,
                b'}' => return Err(format!("a `}}` at byte {at} closes nothing")),
                _ => at += 1,
            }
        };
        let mut trimmed = end;
        while trimmed > start && matches!(bytes[trimmed - 1], b' ' | b'\t' | b'\n' | b'\r') {
            trimmed -= 1;
        }
        if trimmed == start {
            return Err(format!("an empty element at byte {start}"));
        }
        elements.push(start..trimmed);
        if bytes[end] == b']' {
            return finish(bytes, end + 1, elements);
        }
        at = skip_whitespace(bytes, end + 1);
    }
}

/// One past the quote that closes the string opening at `open`.
fn string_end(bytes: &[u8], open: usize) -> Result<usize, String> {
    let mut at = open + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &bytes[at..]) {
            Some(offset) if bytes[at + offset] == b'"' => return Ok(at + offset + 1),
            // A backslash escapes the byte after it (a quote, a backslash, or
            // the letter of an escape that the element's decoding checks).
            Some(offset) => at += offset + 2,
            None => break,
        }
        if at > bytes.len() {
            break;
        }
    }
    Err(format!("the string opening at byte {open} does not close"))
}

fn finish(bytes: &[u8], after: usize, elements: Vec<Range<usize>>) -> Result<Vec<Range<usize>>, String> {
    let end = skip_whitespace(bytes, after);
    if end != bytes.len() {
        return Err(format!("text after the array at byte {end}"));
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use serde_json::value::RawValue;

    /// What the splitter makes of a listing: the elements, or that it is
    /// malformed (the splitter or an element's own decoding says so).
    fn split_then_decode(text: &str) -> Result<Vec<String>, ()> {
        let ranges = delimit(text.as_bytes()).map_err(|_| ())?;
        ranges
            .into_iter()
            .map(|range| {
                serde_json::from_str::<Value>(&text[range.clone()]).map_err(|_| ())?;
                Ok(text[range].to_owned())
            })
            .collect()
    }

    /// What decoding the whole listing as raw values makes of it.
    fn decode_whole(text: &str) -> Result<Vec<String>, ()> {
        let raw: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(|_| ())?;
        Ok(raw.iter().map(|element| element.get().to_owned()).collect())
    }

    fn listing(text: &str) -> JsonArray {
        JsonArray::new(Bytes::copy_from_slice(text.as_bytes()))
    }

    const LISTINGS: &[&str] = &[
        "[]",
        " [ ] ",
        r#"[{"id": 1, "name": "a \"quoted\" ] , } name", "lines": [{"x": [1, 2]}, {}]}]"#,
        "[1, \"two\", null, true, [3, [4]], {\"a\": {\"b\": []}}]\n",
        r#"[{"path": "C:\\dir\\"}, {"emoji": "\u00e9 é 😀"}]"#,
        r#"[ {"a":1} ,{"b":2}	]"#,
    ];

    #[test]
    fn a_valid_listing_splits_into_the_elements_a_full_decoding_finds() {
        for text in LISTINGS {
            assert!(split_then_decode(text).is_ok(), "{text}");
            assert_eq!(split_then_decode(text), decode_whole(text), "{text}");
        }
    }

    #[test]
    fn a_listing_is_malformed_for_the_splitter_exactly_when_it_is_for_a_full_decoding() {
        // Every listing above cut short at every byte, and with each byte
        // replaced by one of those that matter to JSON's grammar: both ways
        // of reading must agree on what is a listing and what it holds.
        let mut tried = 0;
        for text in LISTINGS {
            let bytes = text.as_bytes();
            let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|cut| bytes[..cut].to_vec()).collect();
            for at in 0..bytes.len() {
                for replacement in [b'"', b'\\', b'[', b']', b'{', b'}', b',', b' ', b'x', b'1'] {
                    let mut changed = bytes.to_vec();
                    changed[at] = replacement;
                    variants.push(changed);
                }
            }
            for variant in variants {
                let Ok(text) = std::str::from_utf8(&variant) else { continue };
                assert_eq!(split_then_decode(text), decode_whole(text), "{text:?}");
                tried += 1;
            }
        }
        assert!(tried > 2000, "{tried}");
    }

    #[test]
    fn a_record_of_another_shape_is_its_own_error_and_keeps_its_text() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Order {
            id: u64,
        }
        let all_good = listing(r#"[{"id": 1}, {"id": 2, "extra": [1]}]"#);
        let decoded = all_good.decode_each::<Order>().unwrap();
        let texts: Vec<&str> = decoded.iter().map(|(element, _)| element.text()).collect();
        assert_eq!(texts, [r#"{"id": 1}"#, r#"{"id": 2, "extra": [1]}"#]);
        assert!(decoded.iter().all(|(_, order)| order.is_ok()));

        let one_bad = listing(r#"[{"id": 1}, {"id": "two"}, {"id": 3}]"#);
        let decoded = one_bad.decode_each::<Order>().unwrap();
        assert_eq!(decoded[0].1.as_ref().unwrap(), &Order { id: 1 });
        assert!(decoded[1].1.as_ref().unwrap_err().is_data());
        assert_eq!(decoded[1].0.text(), r#"{"id": "two"}"#);
        assert_eq!(decoded[2].1.as_ref().unwrap(), &Order { id: 3 });
    }

    #[test]
    fn a_body_that_is_not_a_json_array_is_refused_saying_where() {
        let error = |text: &str| listing(text).decode_each::<Value>().unwrap_err();
        assert_eq!(error(r#"{"id": 1}"#), "expected a JSON array at byte 0");
        assert_eq!(error(r#"[{"id": 1}"#), "the array does not close: the body ends inside it");
        assert_eq!(error(r#"[{"id": "1}]"#), "the string opening at byte 8 does not close");
        assert_eq!(error("[1,,2]"), "an empty element at byte 3");
        assert_eq!(error("[1] x"), "text after the array at byte 4");
        assert_eq!(error("[1}]"), "a `}` at byte 2 closes nothing");
        assert!(error(r#"[{"id": 1}, {"id": 12..5}]"#).starts_with("element 1: "));
        let not_text = JsonArray::new(Bytes::from_static(b"[\"\xff\"]"));
        assert!(not_text.decode_each::<Value>().unwrap_err().starts_with("not UTF-8 text"));
    }
}
