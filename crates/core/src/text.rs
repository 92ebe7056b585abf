//! The model's text: kept inline when short. Most texts a platform sends
//! (ids, names, SKUs, postcodes, prices, quantities) fit in 23 bytes, and a
//! `String` for each was an allocation per field of every record read and a
//! free when it was done with.

use smol_str::{SmolStr, SmolStrBuilder};
use std::fmt;

/// Text of any length, held without an allocation up to 23 bytes (longer
/// text is shared, so a clone is a count, not a copy). smol_str, not a type
/// of our own: reading an inline text back as `&str` without checking its
/// UTF-8 again takes `unsafe`, which this workspace forbids, and that check
/// on every read cost half of what the allocations saved (callgrind).
/// Compared, ordered and hashed as smol_str does, which is as its str (so a
/// map keyed by `Text` is searched by `&str`), two inline texts compared
/// whole without reading them as `str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(SmolStr);

impl Text {
    pub fn new(text: &str) -> Self {
        Self(SmolStr::new(text))
    }

    /// The text `write!` would make of `value`, without a `String` between.
    pub fn display(value: impl fmt::Display) -> Self {
        let mut builder = SmolStrBuilder::new();
        fmt::write(&mut builder, format_args!("{value}")).expect("writing into memory cannot fail");
        Self(builder.finish())
    }

    /// The decimal text of an integer, the text `display` makes of it,
    /// written digit by digit: platforms send most ids and quantities as
    /// JSON numbers, and going through the formatter for each was 1% of a
    /// history import's instructions (callgrind).
    pub fn unsigned(value: u64) -> Self {
        Self::integer(value, false)
    }

    /// See [`Text::unsigned`].
    pub fn signed(value: i64) -> Self {
        Self::integer(value.unsigned_abs(), value < 0)
    }

    fn integer(magnitude: u64, negative: bool) -> Self {
        // u64::MAX has 20 digits: with a sign, 21 bytes, inline.
        let mut bytes = [0u8; 21];
        let mut start = bytes.len();
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
        Self::new(std::str::from_utf8(&bytes[start..]).expect("digits and a sign are ASCII"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(SmolStr::from(text))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.as_str().to_owned()
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text::new(text))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text, E> {
                Ok(Text::from(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_the_formatter_writes_them() {
        for value in [0, 7, 10, 99, 100, 1_000_000_007, u64::MAX / 10, u64::MAX] {
            assert_eq!(Text::unsigned(value).as_str(), value.to_string());
        }
        for value in [0, -1, 1, -10, 42, -1_000_000_007, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(Text::signed(value).as_str(), value.to_string());
        }
    }

    #[test]
    fn text_reads_back_as_given_at_every_length() {
        let long = "é".repeat(40);
        for length in 0..=long.len() {
            let Some(text) = long.get(..length) else { continue };
            assert_eq!(Text::new(text).as_str(), text);
            assert_eq!(Text::from(text.to_owned()).as_str(), text);
            assert_eq!(Text::display(text).as_str(), text);
        }
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<String>());
        assert_eq!(std::mem::size_of::<Option<Text>>(), std::mem::size_of::<Option<String>>());
    }

    #[test]
    fn text_is_written_read_hashed_and_ordered_as_its_str() {
        for text in ["", "7", "Ana", "a text longer than twenty-three bytes", "quote \" and é"] {
            let ours = Text::new(text);
            assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(text).unwrap());
            assert_eq!(format!("{ours:?}"), format!("{text:?}"));
            let read: Text = serde_json::from_str(&serde_json::to_string(text).unwrap()).unwrap();
            assert_eq!(read, text);
            let lookup = std::collections::HashMap::from([(ours.clone(), 1)]);
            assert_eq!(lookup.get(text), Some(&1), "found by its str");
            assert_eq!(String::from(ours), text);
        }
        assert!(serde_json::from_str::<Text>("7").is_err(), "a number is not text");
        assert!(Text::new("a") < Text::new("b") && Text::new("b") < Text::new("ba"));
    }

    #[test]
    fn formatted_numbers_read_as_their_text_even_past_the_inline_bytes() {
        assert_eq!(Text::display(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(Text::display(-12.5).as_str(), "-12.5");
        let long = format!("{}{}", u64::MAX, u64::MAX);
        assert_eq!(Text::display(format_args!("{}{}", u64::MAX, u64::MAX)).as_str(), long);
    }
}
