//! The bytes a content hash is taken over: any serializable value written
//! as a compact, self-delimiting binary, without the field names, quotes and
//! escapes its JSON carries.
//!
//! Every value starts with a tag byte; text and bytes carry their length;
//! sequences, maps and structs end with an end byte; a struct's fields go by
//! position, a field left out (`skip_serializing_if`) as a byte of its own,
//! so two values of one type write the same bytes only when they are equal.
//! Variants are written by name, so reordering an enum changes nothing.
//!
//! Two modes, the one difference between the formats that use them: [`write`]
//! (format 4) says it is not human-readable, so the model's times and amounts
//! write their exact numbers (`crate::exact_forms`); [`write_with_text_forms`]
//! (formats 2 and 3, what older ledger rows hold) writes their text.

use serde::ser::{self, Serialize};
use std::fmt;

const END: u8 = b'e';

/// Writes `value` in the fingerprint encoding onto `out`, times and amounts
/// as their numbers (format 4).
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    encode(out, value, false);
}

/// Writes `value` as formats 2 and 3 encoded it: times and amounts as their text.
pub fn write_with_text_forms<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    encode(out, value, true);
}

fn encode<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T, text_forms: bool) {
    value.serialize(&mut Fingerprinter { out, text_forms }).expect("the fingerprint encoding accepts every value");
}

struct Fingerprinter<'a> {
    out: &'a mut Vec<u8>,
    /// What `is_human_readable` answers (see the module's opening).
    text_forms: bool,
}

/// Never raised: every value has an encoding. Serde needs the type.
#[derive(Debug)]
pub struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unreachable")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_message: T) -> Self {
        Never
    }
}

impl Fingerprinter<'_> {
    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    fn text(&mut self, tag: u8, bytes: &[u8]) {
        // Nearly every text is shorter than 128 bytes: its length is then
        // one byte, written with the tag (the LEB128 below writes the same).
        match u8::try_from(bytes.len()) {
            Ok(length) if length < 0x80 => self.out.extend_from_slice(&[tag, length]),
            _ => {
                self.out.push(tag);
                push_length(self.out, bytes.len());
            }
        }
        self.out.extend_from_slice(bytes);
    }
}

/// A length as LEB128: one byte below 128, which nearly every text is.
fn push_length(out: &mut Vec<u8>, length: usize) {
    let (bytes, count) = leb128(length);
    out.extend_from_slice(&bytes[..count]);
}

fn leb128(length: usize) -> ([u8; 10], usize) {
    let mut bytes = [0; 10];
    let mut rest = length as u64;
    let mut count = 0;
    while rest >= 0x80 {
        bytes[count] = (rest as u8) | 0x80;
        rest >>= 7;
        count += 1;
    }
    bytes[count] = rest as u8;
    (bytes, count + 1)
}

/// `collect_str`'s text written in place, its length set once known.
struct InPlace<'a>(&'a mut Vec<u8>);

impl fmt::Write for InPlace<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

type Done = Result<(), Never>;

impl<'a, 'b> ser::Serializer for &'a mut Fingerprinter<'b> {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        self.text_forms
    }
    fn serialize_bool(self, value: bool) -> Done {
        self.out.extend_from_slice(&[b'b', u8::from(value)]);
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i16(self, value: i16) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i32(self, value: i32) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i64(self, value: i64) -> Done {
        self.tag(b'i');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, value: i128) -> Done {
        self.tag(b'I');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, value: u8) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u16(self, value: u16) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u32(self, value: u32) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u64(self, value: u64) -> Done {
        self.tag(b'u');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, value: u128) -> Done {
        self.tag(b'U');
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, value: f32) -> Done {
        self.serialize_f64(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Done {
        self.tag(b'f');
        self.out.extend_from_slice(&value.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, value: char) -> Done {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Done {
        self.text(b's', value.as_bytes());
        Ok(())
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Done {
        // Timestamps and decimals: formatted straight into the buffer, where
        // the default would build a String for each.
        self.tag(b's');
        let start = self.out.len();
        fmt::Write::write_fmt(&mut InPlace(self.out), format_args!("{value}")).map_err(|_| Never)?;
        // The length goes before the text once known (a few bytes moved).
        let (length, count) = leb128(self.out.len() - start);
        self.out.splice(start..start, length[..count].iter().copied());
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Done {
        self.text(b'y', value);
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.tag(b'n');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        self.tag(b'S');
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.tag(b'0');
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Done {
        self.text(b'v', variant.as_bytes());
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.text(b'V', variant.as_bytes());
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, Never> {
        self.tag(b'q');
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, Never> {
        self.tag(b't');
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Never> {
        self.tag(b't');
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, Never> {
        self.text(b'T', variant.as_bytes());
        Ok(self)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self, Never> {
        self.tag(b'm');
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Never> {
        self.tag(b'r');
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, Never> {
        self.text(b'R', variant.as_bytes());
        Ok(self)
    }
}

/// A sequence, tuple, map or struct: its parts one after another (each
/// delimits itself), then the end byte; a struct's fields by position, one
/// left out as a byte of its own.
macro_rules! compound {
    ($trait:ident { $($part:ident),+ }) => {
        impl ser::$trait for &mut Fingerprinter<'_> {
            type Ok = ();
            type Error = Never;
            $(
                fn $part<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                    value.serialize(&mut **self)
                }
            )+
            fn end(self) -> Done {
                self.tag(END);
                Ok(())
            }
        }
    };
    ($trait:ident by field name) => {
        impl ser::$trait for &mut Fingerprinter<'_> {
            type Ok = ();
            type Error = Never;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn skip_field(&mut self, _key: &'static str) -> Done {
                self.tag(b'k');
                Ok(())
            }
            fn end(self) -> Done {
                self.tag(END);
                Ok(())
            }
        }
    };
}

compound!(SerializeSeq { serialize_element });
compound!(SerializeTuple { serialize_element });
compound!(SerializeTupleStruct { serialize_field });
compound!(SerializeTupleVariant { serialize_field });
compound!(SerializeMap { serialize_key, serialize_value });
compound!(SerializeStruct by field name);
compound!(SerializeStructVariant by field name);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    fn bytes(value: &impl Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, value);
        out
    }

    #[derive(Serialize)]
    struct Two {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<String>,
    }

    #[test]
    fn a_field_left_out_keeps_its_place() {
        let first = Two { a: Some("x".into()), b: None };
        let second = Two { a: None, b: Some("x".into()) };
        assert_ne!(bytes(&first), bytes(&second));
    }

    #[test]
    fn the_encoding_is_the_one_stored_format_2_hashes_were_taken_over() {
        let two = Two { a: Some("x".into()), b: None };
        assert_eq!(bytes(&two), b"rSs\x01xke");
        let map: std::collections::BTreeMap<&str, Vec<u8>> = [("k", vec![1])].into();
        assert_eq!(bytes(&map), b"ms\x01kqu\x01\0\0\0\0\0\0\0ee");
        assert_eq!(bytes(&(true, ())), b"tb\x010e");
    }

    #[test]
    fn text_carries_its_length_so_no_split_of_it_reads_alike() {
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_ne!(bytes(&vec![vec!["a"], vec![]]), bytes(&vec![vec![], vec!["a"]]));
    }

    #[test]
    fn lengths_take_a_byte_below_128_and_more_above() {
        assert_eq!(bytes(&"ab"), b"s\x02ab");
        let long = "x".repeat(300);
        assert_eq!(&bytes(&long.as_str())[..3], b"s\xac\x02");
        assert_eq!(bytes(&long.as_str()).len(), 303);
    }

    #[test]
    fn formatted_text_is_the_text_itself() {
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(bytes(&at), bytes(&at.to_string()));
        let amount = rust_decimal::Decimal::new(1250, 2);
        assert_eq!(bytes(&amount), bytes(&"12.50"));
    }
}
