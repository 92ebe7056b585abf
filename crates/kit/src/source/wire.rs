//! Lenient types for platform JSON read into typed structs: scalars that come
//! as strings, numbers or booleans ([`Loose`]); a relation that holds one
//! child as an object and several as an array, or is an empty string when it
//! has none ([`Many`]); an object that may be replaced by `""` or `null`
//! ([`Maybe`]); text that may be null and borrows from the page
//! ([`optional_text`]).

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use tillflow_core::model::Text;

/// A scalar that may arrive as a string, a number, a boolean or null; kept as
/// its text ("" for null or absent), inline when short (most are).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Loose(pub Text);

impl Loose {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The text trimmed, `None` when empty.
    pub fn text(&self) -> Option<Text> {
        crate::source::mapping::non_empty(self.as_str())
    }

    /// An id: `None` for "", "0" and null (platforms write 0 for "none").
    pub fn id(&self) -> Option<Text> {
        let text = self.as_str().trim();
        (!text.is_empty() && text != "0").then(|| Text::new(text))
    }

    /// `true` or `"true"`.
    pub fn is_true(&self) -> bool {
        self.as_str().trim().eq_ignore_ascii_case("true")
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl<'de> Visitor<'de> for Scalar {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Loose, E> {
                Ok(Loose(Text::new(text)))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Loose, E> {
                Ok(Loose(text.into()))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Loose, E> {
                Ok(Loose(Text::unsigned(number)))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Loose, E> {
                Ok(Loose(Text::signed(number)))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Loose, E> {
                // serde_json prints the shortest text that reads back as this double.
                Ok(Loose(serde_json::Number::from_f64(number).map(Text::display).unwrap_or_default()))
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Loose, E> {
                Ok(Loose(Text::new(if flag { "true" } else { "false" })))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::default())
            }
        }
        deserializer.deserialize_any(Scalar)
    }
}

/// The children of a relation: `{"Child": {…}}` (one), `{"Child": [{…}, …]}`
/// (several), or `""`/`null`/absent (none). The child's key is not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Many<T>(pub Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Many<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
    pub fn first(&self) -> Option<&T> {
        self.0.first()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One object or an array of them.
struct OneOrMany<T>(Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Children<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Children<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(child) = seq.next_element::<T>()? {
                    all.push(child);
                }
                Ok(OneOrMany(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|one| OneOrMany(vec![one]))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
        }
        deserializer.deserialize_any(Children(PhantomData))
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Relation<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Relation<T> {
            type Value = Many<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a relation object, an empty string or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut children = Vec::new();
                while let Some((_, OneOrMany(more))) = map.next_entry::<IgnoredAny, OneOrMany<T>>()? {
                    children.extend(more);
                }
                Ok(Many(children))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Many(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Many(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Many(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Many(Vec::new()))
            }
        }
        deserializer.deserialize_any(Relation(PhantomData))
    }
}

/// An object, or `None` when the platform wrote `""`, `null`, a number or
/// left it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maybe<T>(pub Option<T>);

impl<T> Default for Maybe<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Maybe<T> {
    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Maybe<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Object<T> {
            type Value = Maybe<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object, an empty string or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|object| Maybe(Some(object)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Maybe(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }
        }
        deserializer.deserialize_any(Object(PhantomData))
    }
}

/// For `#[serde(borrow, deserialize_with = "optional_text")]` on an
/// `Option<Cow<'a, str>>`: the text borrowed from the page's JSON where it
/// has no escapes, `None` for null. serde's `borrow` borrows a bare
/// `Cow<str>` only; inside an `Option` it copied every string, and the
/// dates, SKUs and emails of a WooCommerce page were a tenth of a history
/// import's allocations.
pub fn optional_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(text)))
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(text.to_owned())))
        }
        fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(text)))
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(Text)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_option(Text)
}

/// The records of a listing field that holds one record as an object and
/// several as an array (`{"Sale": {…}}` or `{"Sale": [{…}, …]}`), each kept
/// raw so one that does not decode can be dead-lettered alone.
pub fn raw_records(field: &RawValue) -> Result<Vec<Box<RawValue>>, serde_json::Error> {
    match field.get().trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(field.get()),
        Some(b'{') => Ok(vec![field.to_owned()]),
        _ => Ok(Vec::new()),
    }
}

/// A raw record as a JSON value for its dead letter (its text when it is
/// not even JSON).
pub fn raw_value(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| serde_json::Value::String(raw.get().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Line {
        #[serde(rename = "saleLineID")]
        id: Loose,
    }

    #[derive(Debug, Deserialize)]
    struct Sale {
        #[serde(rename = "SaleLines", default)]
        lines: Many<Line>,
        #[serde(rename = "Customer", default)]
        customer: Maybe<Line>,
        #[serde(default)]
        total: Loose,
        #[serde(default)]
        completed: Loose,
    }

    fn sale(value: serde_json::Value) -> Sale {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn one_child_is_an_object_several_an_array_none_an_empty_string() {
        assert_eq!(sale(json!({"SaleLines": {"SaleLine": {"saleLineID": "1"}}})).lines.0.len(), 1);
        assert_eq!(sale(json!({"SaleLines": {"SaleLine": [{"saleLineID": "1"}, {"saleLineID": 2}]}})).lines.0.len(), 2);
        assert!(sale(json!({"SaleLines": ""})).lines.is_empty());
        assert!(sale(json!({})).lines.is_empty());
    }

    #[test]
    fn a_listing_field_holds_one_record_or_several() {
        let one: Box<RawValue> = serde_json::from_str(r#"{"saleID": "1"}"#).unwrap();
        let many: Box<RawValue> = serde_json::from_str(r#"[{"saleID": "1"}, {"saleID": "2"}]"#).unwrap();
        let none: Box<RawValue> = serde_json::from_str("\"\"").unwrap();
        assert_eq!(raw_records(&one).unwrap().len(), 1);
        assert_eq!(raw_records(&many).unwrap()[1].get(), r#"{"saleID": "2"}"#);
        assert!(raw_records(&none).unwrap().is_empty());
    }

    #[derive(Debug, Deserialize)]
    struct Dated<'a> {
        #[serde(default, borrow, deserialize_with = "optional_text")]
        at: Option<Cow<'a, str>>,
    }

    #[test]
    fn optional_text_borrows_what_it_can_and_reads_null_as_none() {
        let plain: Dated = serde_json::from_str(r#"{"at": "2017-03-22T19:28:02"}"#).unwrap();
        assert!(matches!(plain.at, Some(Cow::Borrowed("2017-03-22T19:28:02"))), "{:?}", plain.at);
        let escaped: Dated = serde_json::from_str(r#"{"at": "a\"b\u00e9"}"#).unwrap();
        assert!(matches!(escaped.at.as_deref(), Some("a\"b\u{e9}")), "{:?}", escaped.at);
        assert!(serde_json::from_str::<Dated>(r#"{"at": null}"#).unwrap().at.is_none());
        assert!(serde_json::from_str::<Dated>("{}").unwrap().at.is_none());
        let error = serde_json::from_str::<Dated>(r#"{"at": 3}"#).unwrap_err().to_string();
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn scalars_keep_their_text_and_objects_may_be_empty_strings() {
        let parsed = sale(json!({"total": 3.5, "completed": true, "Customer": ""}));
        assert_eq!(parsed.total.as_str(), "3.5");
        assert!(parsed.completed.is_true());
        assert_eq!(parsed.customer.0, None);
        let with = sale(json!({"Customer": {"saleLineID": "0"}, "total": null}));
        assert_eq!(with.customer.as_ref().unwrap().id.id(), None, "a 0 id is no id");
        assert_eq!(with.total.as_str(), "");
    }
}
