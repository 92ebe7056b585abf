//! The top-level field names a wire struct reads, taken from its own
//! `Deserialize`, for platforms that answer only the fields asked for
//! (WordPress's `_fields`): the list cannot drift from the struct.

use serde::Deserialize;
use serde::de::{self, Visitor};

/// The names of the fields `T`'s derived `Deserialize` reads at the top
/// level, renames and aliases included, in declaration order. `None` when
/// `T` is not read as a struct (a map, a sequence, a flattened struct):
/// then every field may matter and nothing should be left out.
pub fn top_level_fields<T: Deserialize<'static>>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    // The probe fails by design once it has the names, or at once for
    // anything that is not a struct; either way nothing is decoded.
    let _ = T::deserialize(FieldProbe { fields: &mut fields });
    fields
}

/// [`top_level_fields`] as one comma-separated list, as `_fields` takes it.
pub fn top_level_field_list<T: Deserialize<'static>>() -> Option<String> {
    top_level_fields::<T>().map(|fields| fields.join(","))
}

/// A deserializer that answers nothing: it only notes the field names a
/// struct's `Deserialize` hands to `deserialize_struct`.
struct FieldProbe<'a> {
    fields: &'a mut Option<&'static [&'static str]>,
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.fields = Some(fields);
        Err(de::Error::custom("field names noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Order {
        id: u64,
        #[serde(rename = "date_modified_gmt")]
        modified: Option<String>,
        #[serde(default, alias = "lines")]
        line_items: Vec<Line>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Line {
        sku: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Flattened {
        id: u64,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    }

    #[test]
    fn a_struct_names_its_fields_as_they_are_read_renames_and_aliases_included() {
        let fields = top_level_fields::<Order>().unwrap();
        for name in ["id", "date_modified_gmt", "line_items", "lines"] {
            assert!(fields.contains(&name), "{name} missing from {fields:?}");
        }
        assert!(!fields.contains(&"modified") && !fields.contains(&"sku"), "{fields:?}");
        assert_eq!(top_level_field_list::<Line>().as_deref(), Some("sku"));
    }

    #[test]
    fn what_is_not_read_as_a_struct_names_nothing() {
        assert_eq!(top_level_fields::<Flattened>(), None, "a flattened struct reads every field");
        assert_eq!(top_level_fields::<BTreeMap<String, u64>>(), None);
        assert_eq!(top_level_fields::<Vec<u64>>(), None);
    }
}
