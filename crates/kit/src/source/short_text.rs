//! Short text kept inline: most scalars a platform sends (ids, prices,
//! quantities, flags) fit in 22 bytes, and a `String` for each was an
//! allocation per field of every record read.

use std::fmt;

/// Bytes kept inline; longer text goes to the heap. With the length byte and
/// the tag this is the size of a `String`.
const INLINE: usize = 22;

/// Text of any length, held without an allocation when it is short.
#[derive(Clone)]
pub struct ShortText(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl ShortText {
    pub fn new(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Self(Repr::Inline { len: text.len() as u8, bytes })
        } else {
            Self(Repr::Heap(text.into()))
        }
    }

    /// The text `write!` would make of `value`, without a `String` between.
    pub fn display(value: impl fmt::Display) -> Self {
        let mut builder = Builder { len: 0, bytes: [0; INLINE], spilled: None };
        fmt::write(&mut builder, format_args!("{value}")).expect("writing into memory cannot fail");
        match builder.spilled {
            Some(text) => Self(Repr::Heap(text.into_boxed_str())),
            None => Self(Repr::Inline { len: builder.len as u8, bytes: builder.bytes }),
        }
    }

    /// The decimal text of an integer, the text `display` makes of it,
    /// written digit by digit: platforms send most ids and quantities as
    /// JSON numbers, and going through the formatter for each was 1% of a
    /// history import's instructions (callgrind).
    pub fn unsigned(value: u64) -> Self {
        Self::integer(value, false)
    }

    /// See [`ShortText::unsigned`].
    pub fn signed(value: i64) -> Self {
        Self::integer(value.unsigned_abs(), value < 0)
    }

    fn integer(magnitude: u64, negative: bool) -> Self {
        // u64::MAX has 20 digits: with a sign, 21 bytes, inline.
        let mut bytes = [0; INLINE];
        let mut start = INLINE;
        let mut rest = magnitude;
        loop {
            start -= 1;
            bytes[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if negative {
            start -= 1;
            bytes[start] = b'-';
        }
        bytes.copy_within(start.., 0);
        Self(Repr::Inline { len: (INLINE - start) as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only whole `str`s are ever copied in, so the bytes are UTF-8.
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).expect("copied from a str"),
            Repr::Heap(text) => text,
        }
    }
}

/// Collects formatted text inline until it outgrows the buffer.
struct Builder {
    len: usize,
    bytes: [u8; INLINE],
    spilled: Option<String>,
}

impl fmt::Write for Builder {
    fn write_str(&mut self, part: &str) -> fmt::Result {
        if let Some(text) = &mut self.spilled {
            text.push_str(part);
        } else if self.len + part.len() <= INLINE {
            self.bytes[self.len..self.len + part.len()].copy_from_slice(part.as_bytes());
            self.len += part.len();
        } else {
            let mut text = String::with_capacity(self.len + part.len());
            text.push_str(std::str::from_utf8(&self.bytes[..self.len]).expect("copied from a str"));
            text.push_str(part);
            self.spilled = Some(text);
        }
        Ok(())
    }
}

impl Default for ShortText {
    fn default() -> Self {
        Self::new("")
    }
}

impl From<&str> for ShortText {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for ShortText {
    fn from(text: String) -> Self {
        if text.len() <= INLINE { Self::new(&text) } else { Self(Repr::Heap(text.into_boxed_str())) }
    }
}

impl PartialEq for ShortText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ShortText {}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ShortText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_the_formatter_writes_them() {
        for value in [0, 7, 10, 99, 100, 1_000_000_007, u64::MAX / 10, u64::MAX] {
            assert_eq!(ShortText::unsigned(value).as_str(), value.to_string());
        }
        for value in [0, -1, 1, -10, 42, -1_000_000_007, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(ShortText::signed(value).as_str(), value.to_string());
        }
    }

    #[test]
    fn text_reads_back_as_given_at_every_length() {
        let long = "é".repeat(40);
        for length in 0..=long.len() {
            let Some(text) = long.get(..length) else { continue };
            assert_eq!(ShortText::new(text).as_str(), text);
            assert_eq!(ShortText::from(text.to_owned()).as_str(), text);
            assert_eq!(ShortText::display(text).as_str(), text);
        }
        assert_eq!(std::mem::size_of::<ShortText>(), std::mem::size_of::<String>());
    }

    #[test]
    fn formatted_numbers_read_as_their_text_even_past_the_inline_bytes() {
        assert_eq!(ShortText::display(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(ShortText::display(-12.5).as_str(), "-12.5");
        let long = format!("{}{}", u64::MAX, u64::MAX);
        assert_eq!(ShortText::display(format_args!("{}{}", u64::MAX, u64::MAX)).as_str(), long);
    }
}
