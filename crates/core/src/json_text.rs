//! JSON strings written straight from their text where they need no escape,
//! which a test of eight bytes at a time tells: serde_json's own writer
//! looks at every byte in turn, and the texts tillflow writes (keys,
//! subjects, request fields) almost never hold a quote, a backslash or a
//! control character.

/// Whether JSON must escape a byte of `text`: a quote, a backslash or a
/// control character. Eight bytes at a time: a byte-by-byte test over every
/// key and subject of a page cost more than the serde_json it replaced.
pub fn needs_escape(text: &str) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    // Whether a byte of `word` is zero (the high bit of some byte is set
    // here exactly when one is: a classic bit trick).
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGH_BITS != 0;
    let mut words = text.as_bytes().chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS != 0;
        if control || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * u64::from(b'\\'))) {
            return true;
        }
    }
    words.remainder().iter().any(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
}

/// Writes `text` as a JSON string, quotes included, byte for byte what
/// serde_json writes (which writes it when it needs an escape).
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text) {
        serde_json::to_writer(out, text).expect("a string serializes into memory");
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte that needs an escape is found wherever it stands in a
    /// word of eight or in the bytes after the last, and no other is.
    #[test]
    fn every_byte_that_needs_an_escape_is_found_at_every_position() {
        for length in 1..=20 {
            for position in 0..length {
                for byte in 0..=0x7f_u8 {
                    let mut text = vec![b'k'; length];
                    text[position] = byte;
                    let text = String::from_utf8(text).unwrap();
                    let escaped = serde_json::to_string(&text).unwrap().len() != text.len() + 2;
                    assert_eq!(needs_escape(&text), escaped, "{byte:#x} at {position} of {length}");
                }
                let mut text = "é".repeat(length);
                text.insert(position * 2, '"');
                assert!(needs_escape(&text));
                assert!(!needs_escape(&"é☕".repeat(length)));
            }
        }
    }

    #[test]
    fn a_string_is_written_as_serde_json_writes_it() {
        for text in [
            "",
            "woocommerce:shop:order:727:placed",
            "say \"hi\"",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "é ☕",
            "\u{7f}",
        ] {
            let mut out = b"x".to_vec();
            write_str(&mut out, text);
            assert_eq!(out, [&b"x"[..], &serde_json::to_vec(text).unwrap()].concat(), "{text:?}");
        }
    }
}
