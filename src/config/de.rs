//! Deserializes typed config structs out of a [`Node`] tree, so every type error carries the
//! field path and the location of the offending node, and every unknown name gets a suggestion.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::yaml::{Loc, Node, Seg, Value};
use crate::suggest::closest;

/// The newtype-struct name through which [`crate::config::Scalar`] asks for a scalar's text.
pub(crate) const SCALAR_MARKER: &str = "__mldeploy_scalar";

/// A type error found while reading the config.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// What went wrong.
    pub message: String,
    /// A suggestion (closest name, allowed values).
    pub hint: Option<String>,
    /// The path of the field, filled in on the way out.
    pub path: Vec<Seg>,
    /// Location of the offending node.
    pub loc: Option<Loc>,
    /// For "missing field" errors, the field.
    pub missing: Option<&'static str>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            hint: None,
            path: Vec::new(),
            loc: None,
            missing: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format!("unknown field `{field}`"));
        e.hint = Some(name_hint(field, expected, "valid fields"));
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format!("unknown value `{variant}`"));
        e.hint = Some(name_hint(variant, expected, "allowed values"));
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Self::custom(format!("missing required field `{field}`"));
        e.missing = Some(field);
        e
    }
}

fn name_hint(got: &str, expected: &[&str], what: &str) -> String {
    let list = expected.join(", ");
    match closest(got, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

impl DeError {
    fn at(mut self, loc: Loc) -> Self {
        if self.loc.is_none() {
            self.loc = Some(loc);
        }
        self
    }

    fn under(mut self, seg: Seg) -> Self {
        self.path.insert(0, seg);
        self
    }
}

/// Reads `T` from `node`; the error's path is relative to `node`.
pub fn from_node<'a, T: serde::Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node))
}

/// How many problems one item may report before we stop looking.
const MAX_ERRORS_PER_ITEM: usize = 100;

/// Reads `T` from `node` and returns every error, not just the first: after each error the
/// offending node is marked to be skipped and the read repeated (serde stops at the first).
/// Afterwards `node` reads without error unless an error could not be skipped.
pub fn all_errors<T: serde::de::DeserializeOwned>(node: &mut Node) -> Vec<DeError> {
    let mut errors: Vec<DeError> = Vec::new();
    for _ in 0..MAX_ERRORS_PER_ITEM {
        let e = match from_node::<T>(node) {
            Ok(_) => break,
            Err(e) => e,
        };
        // A field skipped because its value was wrong is now "missing": already reported, and
        // there is nothing left to skip, so the read stops here.
        let echo = e.missing.is_some_and(|field| {
            let mut full = e.path.clone();
            full.push(Seg::Key(field.to_string()));
            node.is_skipped(&full)
        });
        if echo {
            break;
        }
        let progressed = node.mark_skip(&e.path);
        errors.push(e);
        if !progressed {
            break;
        }
    }
    errors
}

/// A deserializer over one node.
struct NodeDe<'a>(&'a Node);

impl<'a> NodeDe<'a> {
    fn type_error(&self, want: &str) -> DeError {
        let n = self.0;
        let got = match (&n.value, &n.text) {
            (Value::Str(s), _) => format!("the string {s:?}"),
            (_, Some(t)) => format!("{} `{t}`", n.kind()),
            _ => n.kind().to_string(),
        };
        let mut e = <DeError as de::Error>::custom(format!("expected {want}, found {got}"));
        if want == "a string" && matches!(n.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
        {
            e.hint = Some(format!(
                "quote it to keep it as text: \"{}\"",
                n.text.as_deref().unwrap_or("")
            ));
        }
        e.at(n.loc)
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
            match self.0.value {
                Value::Int(i) => match <$ty>::try_from(i) {
                    Ok(x) => v.$visit::<DeError>(x).map_err(|e| e.at(self.0.loc)),
                    Err(_) => Err(<DeError as de::Error>::custom(format!(
                        "{i} is out of range (expected {} to {})",
                        <$ty>::MIN,
                        <$ty>::MAX
                    ))
                    .at(self.0.loc)),
                },
                _ => Err(self.type_error("a whole number")),
            }
        }
    };
}

impl<'a> Deserializer<'a> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        let loc = self.0.loc;
        let r = match &self.0.value {
            Value::Null => v.visit_unit::<DeError>(),
            Value::Bool(b) => v.visit_bool::<DeError>(*b),
            Value::Int(i) => v.visit_i64::<DeError>(*i),
            Value::Float(f) => v.visit_f64::<DeError>(*f),
            Value::Str(s) => v.visit_str::<DeError>(s),
            Value::Seq(items) => return v.visit_seq(SeqDe { items, index: 0 }),
            Value::Map(entries) => {
                return v.visit_map(MapDe {
                    entries,
                    index: 0,
                    value: None,
                });
            }
        };
        r.map_err(|e| e.at(loc))
    }

    fn deserialize_bool<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Bool(b) => v.visit_bool(b),
            _ => Err(self.type_error("true or false")),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Int(i) => v.visit_f64(i as f64),
            Value::Float(f) => v.visit_f64(f),
            _ => Err(self.type_error("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => v.visit_str::<DeError>(s).map_err(|e| e.at(self.0.loc)),
            _ => Err(self.type_error("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, _: V) -> Result<V::Value, DeError> {
        Err(self.type_error("bytes"))
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, _: V) -> Result<V::Value, DeError> {
        Err(self.type_error("bytes"))
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => v.visit_unit(),
            _ => Err(self.type_error("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        if name == SCALAR_MARKER {
            // A scalar as text, exactly as written: `1.30`, `yes`, `0755`, `2`.
            return match (&self.0.value, &self.0.text) {
                (Value::Str(s), _) => v.visit_str(s),
                (Value::Null, _) => Err(self.type_error("a value")),
                (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(t)) => v.visit_str(t),
                (Value::Bool(b), None) => v.visit_string(b.to_string()),
                (Value::Int(i), None) => v.visit_string(i.to_string()),
                (Value::Float(f), None) => v.visit_string(f.to_string()),
                _ => Err(self.type_error("a string or number")),
            };
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Seq(items) => v.visit_seq(SeqDe { items, index: 0 }),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Map(entries) => v
                .visit_map(MapDe {
                    entries,
                    index: 0,
                    value: None,
                })
                .map_err(|e| e.at(self.0.loc)),
            _ => Err(self.type_error("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => v
                .visit_enum(UnitVariant(s.as_str()))
                .map_err(|e| e.at(self.0.loc)),
            _ => Err(self.type_error("one of the allowed names")),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct SeqDe<'a> {
    items: &'a [Node],
    index: usize,
}

impl<'a> SeqAccess<'a> for SeqDe<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        while self.items.get(self.index).is_some_and(|n| n.skip) {
            self.index += 1;
        }
        let Some(node) = self.items.get(self.index) else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(NodeDe(node))
            .map(Some)
            .map_err(|e| e.at(node.loc).under(Seg::Index(i)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct MapDe<'a> {
    entries: &'a [(Node, Node)],
    index: usize,
    value: Option<(&'a Node, Seg)>,
}

impl<'a> MapAccess<'a> for MapDe<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while self.entries.get(self.index).is_some_and(|(_, v)| v.skip) {
            self.index += 1;
        }
        let Some((k, v)) = self.entries.get(self.index) else {
            return Ok(None);
        };
        self.index += 1;
        let seg = Seg::Key(k.as_key().unwrap_or_else(|| "?".to_string()));
        self.value = Some((v, seg.clone()));
        seed.deserialize(NodeDe(k))
            .map(Some)
            .map_err(|e| e.at(k.loc).under(seg))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((node, seg)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        seed.deserialize(NodeDe(node))
            .map_err(|e| e.at(node.loc).under(seg))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.index)
    }
}

struct UnitVariant<'a>(&'a str);

impl<'a> EnumAccess<'a> for UnitVariant<'a> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let de: de::value::StrDeserializer<'_, DeError> = self.0.into_deserializer();
        Ok((seed.deserialize(de)?, self))
    }
}

impl<'a> VariantAccess<'a> for UnitVariant<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, _: T) -> Result<T::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn tuple_variant<V: Visitor<'a>>(self, _: usize, _: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain name"))
    }
}
