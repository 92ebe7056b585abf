//! WordPress's `_fields` query parameter as the sandbox answers it: each
//! item of a response keeps only the fields named, a dotted name keeping
//! one field of an object (WordPress 5.3 and later), filtered while the
//! item is written, so a seeded order is never built as a JSON tree.
//!
//! The rules are `rest_filter_response_fields`': names are separated by
//! commas or spaces; a name kept whole wins over its dotted sub-names; a
//! nested filter applies to an object's keys, and to a list's indexes, as
//! PHP's `array_intersect_key` does; a value that is neither is kept whole.

use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use std::cell::RefCell;
use std::collections::HashMap;

/// The fields a request named: for each, the whole value or some of its own.
#[derive(Debug, Default)]
pub struct Fields {
    named: HashMap<String, Field>,
    /// What became of each field of the struct last written, by its place:
    /// every item of a page is the same struct, naming the same fields in
    /// the same order by the same static texts, so each is looked up once a
    /// page, not once an item (the lookups were most of a filtered page's cost).
    seen: RefCell<Vec<(&'static str, Decision)>>,
}

/// What a struct's field gets under the filter.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Decision {
    Left,
    Whole,
    Nested,
}

#[derive(Debug)]
enum Field {
    Whole,
    Some(Fields),
}

impl Fields {
    /// The filter `_fields` asks for; `None` when it is absent or names
    /// nothing, and every field is served.
    pub fn parse(list: Option<&str>) -> Option<Self> {
        let mut fields = Fields::default();
        for name in list?.split([',', ' ', '\t', '\n', '\r']).map(str::trim).filter(|name| !name.is_empty()) {
            fields.add(&name.split('.').collect::<Vec<_>>());
        }
        (!fields.named.is_empty()).then_some(fields)
    }

    fn add(&mut self, parts: &[&str]) {
        let Some((first, rest)) = parts.split_first() else { return };
        if rest.is_empty() {
            self.named.insert((*first).to_owned(), Field::Whole);
            return;
        }
        match self.named.entry((*first).to_owned()).or_insert_with(|| Field::Some(Fields::default())) {
            Field::Whole => {}
            Field::Some(nested) => nested.add(rest),
        }
    }

    /// `value` as served under this filter.
    pub fn only<'a, T: Serialize + ?Sized>(&'a self, value: &'a T) -> Only<'a, T> {
        Only { value, fields: self }
    }

    fn keeps(&self, key: &str) -> Option<&Field> {
        self.named.get(key)
    }

    /// What the field `key`, the struct's `place`th, gets.
    fn decision(&self, place: usize, key: &'static str) -> Decision {
        let mut seen = self.seen.borrow_mut();
        if let Some((known, decision)) = seen.get(place)
            && std::ptr::eq(*known, key)
        {
            return *decision;
        }
        let decision = match self.keeps(key) {
            None => Decision::Left,
            Some(Field::Whole) => Decision::Whole,
            Some(Field::Some(_)) => Decision::Nested,
        };
        if place < seen.len() {
            seen[place] = (key, decision);
        } else if place == seen.len() {
            seen.push((key, decision));
        }
        decision
    }
}

/// A value written with only the fields [`Fields`] keeps.
pub struct Only<'a, T: ?Sized> {
    value: &'a T,
    fields: &'a Fields,
}

impl<T: Serialize + ?Sized> Serialize for Only<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Filtering { inner: serializer, fields: self.fields })
    }
}

/// A field's value under what its name keeps of it.
fn kept<'a, T: Serialize + ?Sized>(value: &'a T, field: &'a Field) -> Kept<'a, T> {
    Kept { value, field }
}

struct Kept<'a, T: ?Sized> {
    value: &'a T,
    field: &'a Field,
}

impl<T: Serialize + ?Sized> Serialize for Kept<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.field {
            Field::Whole => self.value.serialize(serializer),
            Field::Some(fields) => fields.only(self.value).serialize(serializer),
        }
    }
}

/// A serializer that passes everything on to `inner` but the keys of the
/// objects (structs, maps) and the indexes of the lists it writes, which
/// it filters.
struct Filtering<'a, S> {
    inner: S,
    fields: &'a Fields,
}

/// Writes a map key to the text `_fields` compares it with.
fn key_text<K: Serialize + ?Sized>(key: &K) -> Result<String, String> {
    match serde_json::to_value(key).map_err(|e| e.to_string())? {
        serde_json::Value::String(text) => Ok(text),
        other => Ok(other.to_string()),
    }
}

macro_rules! pass_on {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> { self.inner.$method($($arg),*) })*
    };
}

impl<'a, S: Serializer> Serializer for Filtering<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = FilteredSeq<'a, S::SerializeSeq>;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = FilteredMap<'a, S::SerializeMap>;
    type SerializeStruct = FilteredStruct<'a, S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    pass_on! {
        serialize_bool(v: bool); serialize_i8(v: i8); serialize_i16(v: i16); serialize_i32(v: i32);
        serialize_i64(v: i64); serialize_i128(v: i128); serialize_u8(v: u8); serialize_u16(v: u16);
        serialize_u32(v: u32); serialize_u64(v: u64); serialize_u128(v: u128); serialize_f32(v: f32);
        serialize_f64(v: f64); serialize_char(v: char); serialize_str(v: &str); serialize_bytes(v: &[u8]);
        serialize_none(); serialize_unit(); serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&self.fields.only(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_struct(name, &self.fields.only(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_variant(name, index, variant, value)
    }

    /// How many elements (or entries) are kept is not known before they are
    /// seen, so the length is not passed on.
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(FilteredSeq { inner: self.inner.serialize_seq(None)?, fields: self.fields, index: 0 })
    }

    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.inner.serialize_tuple(len)
    }

    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<S::SerializeTupleStruct, S::Error> {
        self.inner.serialize_tuple_struct(name, len)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.inner.serialize_tuple_variant(name, index, variant, len)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(FilteredMap { inner: self.inner.serialize_map(None)?, fields: self.fields, key: None })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        Ok(FilteredStruct { inner: self.inner.serialize_struct(name, len)?, fields: self.fields, place: 0 })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.inner.serialize_struct_variant(name, index, variant, len)
    }
}

/// A struct's fields, those named written.
struct FilteredStruct<'a, S> {
    inner: S,
    fields: &'a Fields,
    /// The place of the next field.
    place: usize,
}

impl<S: SerializeStruct> SerializeStruct for FilteredStruct<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), S::Error> {
        let decision = self.fields.decision(self.place, key);
        self.place += 1;
        match decision {
            Decision::Left => Ok(()),
            Decision::Whole => self.inner.serialize_field(key, value),
            Decision::Nested => match self.fields.keeps(key) {
                Some(field) => self.inner.serialize_field(key, &kept(value, field)),
                None => Ok(()),
            },
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// A map's entries, those whose key is named written.
struct FilteredMap<'a, S> {
    inner: S,
    fields: &'a Fields,
    /// The key just given, while its value is awaited.
    key: Option<String>,
}

impl<S: SerializeMap> SerializeMap for FilteredMap<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.key = Some(key_text(key).map_err(ser::Error::custom)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let key = self.key.take().ok_or_else(|| ser::Error::custom("a map value came without its key"))?;
        match self.fields.keeps(&key) {
            Some(field) => self.inner.serialize_entry(&key, &kept(value, field)),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

/// A list under a nested filter: PHP's lists are arrays keyed by index, so
/// only the elements whose index is named are written.
struct FilteredSeq<'a, S> {
    inner: S,
    fields: &'a Fields,
    index: usize,
}

impl<S: SerializeSeq> SerializeSeq for FilteredSeq<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let index = self.index.to_string();
        self.index += 1;
        match self.fields.keeps(&index) {
            Some(field) => self.inner.serialize_element(&kept(value, field)),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    #[derive(Serialize)]
    struct Address {
        email: &'static str,
        city: &'static str,
    }

    #[derive(Serialize)]
    struct Order {
        id: u64,
        status: &'static str,
        billing: Address,
        note: Option<Address>,
        lines: Vec<Address>,
    }

    fn order() -> Order {
        Order {
            id: 7,
            status: "completed",
            billing: Address { email: "ann@example.com", city: "Porto" },
            note: Some(Address { email: "x@example.com", city: "Braga" }),
            lines: vec![Address { email: "a", city: "b" }, Address { email: "c", city: "d" }],
        }
    }

    fn served(value: &impl Serialize, list: &str) -> Value {
        let fields = Fields::parse(Some(list)).unwrap();
        serde_json::to_value(fields.only(value)).unwrap()
    }

    #[test]
    fn only_the_named_fields_are_written_a_struct_and_a_json_object_alike() {
        let whole = serde_json::to_value(order()).unwrap();
        for value in [served(&order(), "id,billing"), served(&whole, "id,billing")] {
            assert_eq!(value, json!({"id": 7, "billing": {"email": "ann@example.com", "city": "Porto"}}));
        }
        assert_eq!(served(&order(), " status , nothing-such"), json!({"status": "completed"}));
        assert!(Fields::parse(None).is_none());
        assert!(Fields::parse(Some(" , ")).is_none(), "naming nothing serves everything");
    }

    /// What a field gets is remembered by its place for the next item; an
    /// item of another shape at the same places is filtered by its own names.
    #[test]
    fn items_of_different_shapes_under_one_filter_each_keep_their_named_fields() {
        let fields = Fields::parse(Some("email,status,billing.city")).unwrap();
        let address = Address { email: "b@example.com", city: "Faro" };
        let written: Vec<Value> = (0..2)
            .flat_map(|_| {
                [
                    serde_json::to_value(fields.only(&order())).unwrap(),
                    serde_json::to_value(fields.only(&address)).unwrap(),
                ]
            })
            .collect();
        for pair in written.chunks(2) {
            assert_eq!(pair[0], json!({"status": "completed", "billing": {"city": "Porto"}}));
            assert_eq!(pair[1], json!({"email": "b@example.com"}));
        }
    }

    #[test]
    fn a_dotted_name_keeps_one_field_of_an_object_and_a_whole_name_wins() {
        assert_eq!(served(&order(), "billing.email,id"), json!({"id": 7, "billing": {"email": "ann@example.com"}}));
        assert_eq!(served(&order(), "note.city"), json!({"note": {"city": "Braga"}}));
        assert_eq!(
            served(&order(), "billing,billing.email"),
            json!({"billing": {"email": "ann@example.com", "city": "Porto"}})
        );
        assert_eq!(
            served(&order(), "billing.email,billing"),
            json!({"billing": {"email": "ann@example.com", "city": "Porto"}})
        );
        // WordPress intersects a list's indexes, not its elements' keys.
        assert_eq!(served(&order(), "lines.email"), json!({"lines": []}));
        assert_eq!(served(&order(), "lines.1"), json!({"lines": [{"email": "c", "city": "d"}]}));
        assert_eq!(served(&order(), "id.x"), json!({"id": 7}), "a scalar under a nested name is kept whole");
    }
}
