//! Serializing a value to JSON with only the top-level members a caller
//! may read: the typed counterpart of
//! [`filter_document`](super::fields::filter_document).
//!
//! [`filter_document`](super::fields::filter_document) cuts scope groups
//! out of JSON bytes a handler already produced, at the price of one pass
//! over them. A handler that still holds the value can do better: skip
//! the groups while serializing, so that what the caller may not read is
//! never written at all. [`to_vec`] does that for the same shapes — an
//! object (a struct, a map, an externally tagged enum variant), an array
//! of them with scalars kept, a top-level scalar — and gives the same
//! bytes as serializing everything with `serde_json::to_vec` and then
//! filtering. [`page_to_vec`] writes a page `{"data": [...], "meta":
//! {...}}`. Nothing below a top-level member is looked at: a kept group
//! is serialized as it is.
//!
//! What cannot be filtered is an error, never written unfiltered: an
//! array directly in an array, an object key that is not a string or a
//! number, or a `serde_json::value::RawValue` where a member should be
//! (its text is opaque, so its groups could not be cut).
//!
//! [`ReadView`](crate::guard::field_filter::ReadView) serves these bytes
//! from an axum handler.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::{fields::filter_document, filtered_json};
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Student {
//!     id: u32,
//!     anagraphic: Anagraphic,
//!     sensitive: Sensitive,
//! }
//! #[derive(Serialize)]
//! struct Anagraphic {
//!     #[serde(rename = "firstName")]
//!     first_name: &'static str,
//! }
//! #[derive(Serialize)]
//! struct Sensitive {
//!     #[serde(rename = "disabilityInfo")]
//!     disability_info: &'static str,
//! }
//!
//! let student = Student {
//!     id: 7,
//!     anagraphic: Anagraphic { first_name: "Mario" },
//!     sensitive: Sensitive { disability_info: "ADHD" },
//! };
//! let readable = |key: &str| matches!(key, "id" | "anagraphic");
//! let typed = filtered_json::to_vec(&student, readable).unwrap();
//! assert_eq!(typed, br#"{"id":7,"anagraphic":{"firstName":"Mario"}}"#);
//!
//! // The same bytes as serializing everything, then cutting.
//! let everything = serde_json::to_vec(&student).unwrap();
//! assert_eq!(typed, filter_document(&everything, readable).unwrap());
//! ```

mod key;

use key::KeyJudge;
use serde::ser::{
    Error as _, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// The output buffer's first size: a typical entity (one to a few KB)
/// then grows once or not at all, instead of four times from serde_json's
/// default.
const INITIAL_CAPACITY: usize = 1024;

/// `value` as compact JSON, keeping the top-level members `keep` accepts.
///
/// The shapes are those of
/// [`filter_document`](super::fields::filter_document): an object keeps a
/// member when `keep(key)` is true; an array filters each object element
/// and keeps scalar elements; a top-level scalar is kept. The bytes are
/// the same as `filter_document(&serde_json::to_vec(value)?, keep)` for
/// every value that is not a page; a page goes through [`page_to_vec`]
/// (here an object with `data` and `meta` members is an entity like any
/// other, so nothing in it is kept without `keep`'s word).
///
/// # Errors
///
/// The value's own serialization error, or a shape that cannot be
/// filtered: an array directly in an array, an object key that is not a
/// string or a number, a raw JSON value in place of an object or member.
pub fn to_vec<T, F>(value: &T, keep: F) -> serde_json::Result<Vec<u8>>
where
    T: Serialize + ?Sized,
    F: Fn(&str) -> bool,
{
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    value.serialize(Filter {
        inner: &mut serde_json::Serializer::new(&mut out),
        keep: &keep,
        at: At::Root,
    })?;
    Ok(out)
}

/// The page `{"data": [...], "meta": {...}}`: `data` filtered as an array
/// (each object element keeps the members `keep` accepts), `meta` written
/// as it is.
///
/// [`filter_document`](super::fields::filter_document) gives the same
/// bytes on the unfiltered page.
///
/// # Errors
///
/// As [`to_vec`], and when `data` does not serialize as an array.
pub fn page_to_vec<D, M, F>(data: &D, meta: &M, keep: F) -> serde_json::Result<Vec<u8>>
where
    D: Serialize + ?Sized,
    M: Serialize + ?Sized,
    F: Fn(&str) -> bool,
{
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    let mut ser = serde_json::Serializer::new(&mut out);
    let mut page = (&mut ser).serialize_struct("Page", 2)?;
    SerializeStruct::serialize_field(
        &mut page,
        "data",
        &Member {
            value: data,
            keep: &keep,
            at: At::PageData,
        },
    )?;
    SerializeStruct::serialize_field(&mut page, "meta", meta)?;
    SerializeStruct::end(page)?;
    Ok(out)
}

/// Where a value sits in the document: what its shape may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// The whole document: an entity, an array of entities, a scalar.
    Root,
    /// An element of the top-level array: an entity or a scalar.
    Element,
    /// A page's `data`: an array of entities and scalars only.
    PageData,
}

/// A value serialized by a [`Filter`] (an array element, a page's data).
struct Member<'a, T: ?Sized, F> {
    value: &'a T,
    keep: &'a F,
    at: At,
}

impl<T, F> Serialize for Member<'_, T, F>
where
    T: Serialize + ?Sized,
    F: Fn(&str) -> bool,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Filter {
            inner: serializer,
            keep: self.keep,
            at: self.at,
        })
    }
}

/// serde_json's marker for a `RawValue`: opaque JSON text.
const RAW_VALUE: &str = "$serde_json::private::RawValue";
/// serde_json's marker for an arbitrary-precision number: a scalar.
const NUMBER: &str = "$serde_json::private::Number";

const ARRAY_IN_ARRAY: &str = "cannot filter an array directly in an array";
const PAGE_DATA: &str = "a page's data must be an array";
const RAW: &str = "cannot filter a raw JSON value where an entity or its member should be";

/// The serializer in front of the real one: cuts members out of the
/// objects it meets at its level, and hands everything below to `inner`.
struct Filter<'k, S, F> {
    inner: S,
    keep: &'k F,
    at: At,
}

impl<S: Serializer, F> Filter<'_, S, F> {
    /// A scalar: kept where it is, refused as a page's data.
    fn scalar(self, write: impl FnOnce(S) -> Result<S::Ok, S::Error>) -> Result<S::Ok, S::Error> {
        if self.at == At::PageData {
            return Err(S::Error::custom(PAGE_DATA));
        }
        write(self.inner)
    }

    /// An object may sit here (not as a page's data).
    fn object_allowed(&self) -> Result<(), S::Error> {
        if self.at == At::PageData {
            return Err(S::Error::custom(PAGE_DATA));
        }
        Ok(())
    }

    /// An array may sit here (at the root or as a page's data).
    fn array_allowed(&self) -> Result<(), S::Error> {
        if self.at == At::Element {
            return Err(S::Error::custom(ARRAY_IN_ARRAY));
        }
        Ok(())
    }
}

macro_rules! scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
                self.scalar(|inner| inner.$method(v))
            }
        )*
    };
}

impl<'k, S, F> Serializer for Filter<'k, S, F>
where
    S: Serializer,
    F: Fn(&str) -> bool,
{
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Elements<'k, S::SerializeSeq, F>;
    type SerializeTuple = Elements<'k, S::SerializeSeq, F>;
    type SerializeTupleStruct = Elements<'k, S::SerializeSeq, F>;
    type SerializeTupleVariant = Variant<S::SerializeTupleVariant, S::SerializeMap>;
    type SerializeMap = Entries<'k, S::SerializeMap, F>;
    type SerializeStruct = Fields<'k, S::SerializeStruct, F>;
    type SerializeStructVariant = Variant<S::SerializeStructVariant, S::SerializeMap>;

    scalars! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_str(&str), serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.scalar(S::serialize_none)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.scalar(S::serialize_unit)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.scalar(|inner| inner.serialize_unit_variant(name, index, variant))
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.scalar(|inner| inner.collect_str(value))
    }

    // Transparent wrappers: what they wrap is judged here.
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    // `{"Variant": value}`: one member, named by the variant.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.object_allowed()?;
        if (self.keep)(variant) {
            self.inner
                .serialize_newtype_variant(name, index, variant, value)
        } else {
            self.inner.serialize_map(Some(0))?.end()
        }
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.array_allowed()?;
        Ok(Elements {
            inner: self.inner.serialize_seq(len)?,
            keep: self.keep,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.object_allowed()?;
        Ok(if (self.keep)(variant) {
            Variant::Kept(
                self.inner
                    .serialize_tuple_variant(name, index, variant, len)?,
            )
        } else {
            Variant::Dropped(self.inner.serialize_map(Some(0))?)
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.object_allowed()?;
        Ok(Entries {
            inner: self.inner.serialize_map(len)?,
            keep: self.keep,
            skip_value: false,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        match name {
            // A number in disguise: a scalar, written through.
            NUMBER => {
                if self.at == At::PageData {
                    return Err(S::Error::custom(PAGE_DATA));
                }
                Ok(Fields {
                    inner: self.inner.serialize_struct(name, len)?,
                    keep: self.keep,
                    through: true,
                })
            }
            // Opaque text: its members cannot be seen, so not cut.
            RAW_VALUE => Err(S::Error::custom(RAW)),
            _ => {
                self.object_allowed()?;
                Ok(Fields {
                    inner: self.inner.serialize_struct(name, len)?,
                    keep: self.keep,
                    through: false,
                })
            }
        }
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.object_allowed()?;
        Ok(if (self.keep)(variant) {
            Variant::Kept(
                self.inner
                    .serialize_struct_variant(name, index, variant, len)?,
            )
        } else {
            Variant::Dropped(self.inner.serialize_map(Some(0))?)
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The elements of an array at the root or in a page's data: each is an
/// entity (filtered) or a scalar (kept).
struct Elements<'k, A, F> {
    inner: A,
    keep: &'k F,
}

impl<A: SerializeSeq, F: Fn(&str) -> bool> Elements<'_, A, F> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), A::Error> {
        self.inner.serialize_element(&Member {
            value,
            keep: self.keep,
            at: At::Element,
        })
    }
}

// An array, a tuple and a tuple struct are all a JSON array: one body.
macro_rules! elements_as {
    ($($trait:ident::$method:ident),*) => {
        $(
            impl<A: SerializeSeq, F: Fn(&str) -> bool> $trait for Elements<'_, A, F> {
                type Ok = A::Ok;
                type Error = A::Error;

                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), A::Error> {
                    self.element(value)
                }

                fn end(self) -> Result<A::Ok, A::Error> {
                    self.inner.end()
                }
            }
        )*
    };
}

elements_as!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// A struct's fields: those `keep` refuses are skipped, never serialized.
struct Fields<'k, A, F> {
    inner: A,
    keep: &'k F,
    /// A scalar in struct form (an arbitrary-precision number).
    through: bool,
}

impl<A: SerializeStruct, F: Fn(&str) -> bool> SerializeStruct for Fields<'_, A, F> {
    type Ok = A::Ok;
    type Error = A::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), A::Error> {
        if self.through || (self.keep)(key) {
            self.inner.serialize_field(key, value)
        } else {
            self.inner.skip_field(key)
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), A::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<A::Ok, A::Error> {
        self.inner.end()
    }
}

/// A map's entries (a `serde_json::Map`, a `HashMap`, flattened fields):
/// the key is judged as it would be written, and a refused entry is not
/// serialized at all.
struct Entries<'k, A, F> {
    inner: A,
    keep: &'k F,
    /// The key just given was refused: its value goes nowhere.
    skip_value: bool,
}

impl<A: SerializeMap, F: Fn(&str) -> bool> Entries<'_, A, F> {
    fn kept<K: Serialize + ?Sized>(&self, key: &K) -> Result<bool, A::Error> {
        key.serialize(KeyJudge { keep: self.keep })
            .map_err(A::Error::custom)
    }
}

impl<A: SerializeMap, F: Fn(&str) -> bool> SerializeMap for Entries<'_, A, F> {
    type Ok = A::Ok;
    type Error = A::Error;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), A::Error> {
        self.skip_value = !self.kept(key)?;
        if self.skip_value {
            Ok(())
        } else {
            self.inner.serialize_key(key)
        }
    }

    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), A::Error> {
        if std::mem::take(&mut self.skip_value) {
            Ok(())
        } else {
            self.inner.serialize_value(value)
        }
    }

    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), A::Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        if self.kept(key)? {
            self.inner.serialize_entry(key, value)
        } else {
            Ok(())
        }
    }

    fn end(self) -> Result<A::Ok, A::Error> {
        self.inner.end()
    }
}

/// A one-member object `{"Variant": ...}`: written whole, or `{}`.
enum Variant<V, M> {
    Kept(V),
    Dropped(M),
}

impl<V, M> SerializeTupleVariant for Variant<V, M>
where
    V: SerializeTupleVariant,
    M: SerializeMap<Ok = V::Ok, Error = V::Error>,
{
    type Ok = V::Ok;
    type Error = V::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), V::Error> {
        match self {
            Self::Kept(inner) => inner.serialize_field(value),
            Self::Dropped(_) => Ok(()),
        }
    }

    fn end(self) -> Result<V::Ok, V::Error> {
        match self {
            Self::Kept(inner) => inner.end(),
            Self::Dropped(empty) => empty.end(),
        }
    }
}

impl<V, M> SerializeStructVariant for Variant<V, M>
where
    V: SerializeStructVariant,
    M: SerializeMap<Ok = V::Ok, Error = V::Error>,
{
    type Ok = V::Ok;
    type Error = V::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), V::Error> {
        match self {
            Self::Kept(inner) => inner.serialize_field(key, value),
            Self::Dropped(_) => Ok(()),
        }
    }

    fn end(self) -> Result<V::Ok, V::Error> {
        match self {
            Self::Kept(inner) => inner.end(),
            Self::Dropped(empty) => empty.end(),
        }
    }
}

#[cfg(test)]
mod tests;
