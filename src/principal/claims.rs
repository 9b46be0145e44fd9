//! The verified [`Claims`] of a token and the [`ClaimPath`] that names one
//! of them.

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ClaimLookup;

/// The verified claims of a token, with typed access to custom claims.
///
/// Kept as compact JSON text and parsed on first access, once per cached
/// token: a parsed map costs about five times the text's bytes, and
/// most requests never read a claim beyond what the
/// [`ClaimMapping`](super::ClaimMapping) already took out of it (user,
/// tenant, roles, scopes), so a verified-token cache of 10,000 entries
/// holds 10,000 short strings instead of 10,000 maps.
pub struct Claims {
    /// The claims as JSON; empty when `parsed` was set at once.
    text: Text,
    /// Boxed: an identity holds claims inline, and most stay unparsed.
    parsed: OnceLock<Box<Map<String, Value>>>,
}

/// Where the claims' JSON text is.
#[derive(Clone)]
enum Text {
    /// Held here.
    Own(Box<str>),
    /// The payload of this verified token, whose text the verified-token
    /// cache already holds as its key: decoded again on first read rather
    /// than kept twice.
    Payload(Arc<str>),
}

impl Text {
    /// Runs `f` on the JSON bytes; an empty object if the token's payload
    /// cannot be decoded, which a verified token's always can.
    fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Self::Own(text) => f(text.as_bytes()),
            Self::Payload(token) => {
                use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
                let payload = token.split('.').nth(1).unwrap_or_default();
                match URL_SAFE_NO_PAD.decode(payload) {
                    Ok(json) => f(&json),
                    Err(_) => f(b"{}"),
                }
            }
        }
    }

    /// The length of the JSON text.
    fn len(&self) -> usize {
        match self {
            Self::Own(text) => text.len(),
            Self::Payload(token) => token.split('.').nth(1).map_or(0, |p| p.len() * 3 / 4),
        }
    }

    /// Heap bytes held for the text itself.
    fn heap_bytes(&self) -> usize {
        match self {
            Self::Own(text) => crate::cache_bound::alloc_bytes(text.len()),
            // Shared with the token cache's key, weighed there.
            Self::Payload(_) => 0,
        }
    }
}

impl Claims {
    /// Claims kept as text: `map` is written out compactly and dropped.
    pub(crate) fn new(map: Map<String, Value>) -> Self {
        match serde_json::to_string(&map) {
            Ok(text) => Self {
                text: Text::Own(text.into_boxed_str()),
                parsed: OnceLock::new(),
            },
            // A map of JSON values always serializes; were it ever not to,
            // the map itself is kept.
            Err(_) => Self {
                text: Text::Own(Box::from("")),
                parsed: OnceLock::from(Box::new(map)),
            },
        }
    }

    /// The claims of the verified `token`, read from its payload (which a
    /// map of them was parsed from) when first asked for.
    pub(crate) fn from_token(token: Arc<str>) -> Self {
        Self {
            text: Text::Payload(token),
            parsed: OnceLock::new(),
        }
    }

    /// The parsed claims, parsed now if this is the first access.
    fn map(&self) -> &Map<String, Value> {
        // The text was written by serde_json from a map that serde_json
        // had parsed (same depth, same numbers), so it parses back; the
        // empty map is only there so that nothing can panic.
        self.parsed.get_or_init(|| {
            Box::new(
                self.text
                    .with(|json| serde_json::from_slice(json))
                    .unwrap_or_default(),
            )
        })
    }

    /// Runs `f` on the claims without keeping them parsed: a component
    /// that reads a claim or two once per token (revocation checks) does
    /// not make the cached token hold a parsed map for its lifetime.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Map<String, Value>) -> R) -> R {
        match self.parsed.get() {
            Some(map) => f(map),
            None => f(&self
                .text
                .with(|json| serde_json::from_slice(json))
                .unwrap_or_default()),
        }
    }

    /// Heap bytes held: the text, and the parsed map once something has
    /// read it, estimated at five times the text (the parsed claims of
    /// `benches/memory.rs`'s tokens, 313 bytes as text, took some 1,600).
    pub(crate) fn heap_bytes(&self) -> usize {
        let parsed = if self.parsed.get().is_some() {
            5 * self.text.len().max(64)
        } else {
            0
        };
        self.text.heap_bytes() + parsed
    }

    /// The raw claim at `path`; see [`ClaimPath`] for the two path forms
    /// (`"realm_access.roles"`, `"/https:~1~1example.com~1roles"`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        ClaimPath::new(path).lookup(self.map())
    }

    /// The claim at `path` deserialized as `T`.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Missing`] when the claim is absent or `null`,
    /// [`ClaimError::Type`] when it does not deserialize as `T`.
    pub fn claim<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClaimError> {
        let value = self
            .get(path)
            .filter(|v| !v.is_null())
            .ok_or_else(|| ClaimError::Missing(path.to_owned()))?;
        T::deserialize(value).map_err(|e| ClaimError::Type(path.to_owned(), e.to_string()))
    }

    /// All claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map()
    }
}

impl Clone for Claims {
    fn clone(&self) -> Self {
        Self {
            text: self.text.clone(),
            parsed: self.parsed.clone(),
        }
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

impl fmt::Debug for Claims {
    // Claims are not secrets, but a `Debug` of the whole map is noise in
    // logs; names are enough to tell what a token carried.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.peek(|map| f.debug_set().entries(map.keys()).finish())
    }
}

/// Reading a typed claim failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The claim is absent or `null`.
    #[error("claim `{0}` is missing")]
    Missing(String),
    /// The claim has another type.
    #[error("claim `{0}` has the wrong type: {1}")]
    Type(String, String),
}

/// Names one claim, wherever it sits in the token.
///
/// Three forms, accepted everywhere a claim is configured
/// ([`ClaimMapping`](super::ClaimMapping),
/// [`ClaimsSource`](crate::ClaimsSource), [`Principal::claim`](super::Principal::claim),
/// the token's claim checks):
///
/// | written as | means |
/// |---|---|
/// | `"roles"`, `"realm_access.roles"` | a name, or a dot path into nested objects |
/// | `"/https:~1~1school.example~1roles"` | an RFC 6901 JSON Pointer (it starts with `/`): `~1` is `/`, `~0` is `~`, so names with dots or slashes can be addressed; a number indexes an array |
/// | [`ClaimPath::name`]`("https://school.example/roles")` | exactly one top-level name, taken verbatim |
///
/// A pointer with an invalid escape (`~` not followed by `0` or `1`)
/// names no claim at all: a path that cannot be read grants nothing.
///
/// ```
/// use iam_guard::principal::ClaimPath;
/// use serde_json::json;
///
/// let claims = json!({
///     "https://school.example/roles": ["teacher"],
///     "realm_access": {"roles": ["admin"]},
/// });
/// let claims = claims.as_object().unwrap();
/// assert_eq!(ClaimPath::new("realm_access.roles").get(claims), Some(&json!(["admin"])));
/// assert_eq!(
///     ClaimPath::new("/https:~1~1school.example~1roles").get(claims),
///     Some(&json!(["teacher"]))
/// );
/// assert_eq!(ClaimPath::name("https://school.example/roles").get(claims), Some(&json!(["teacher"])));
/// // A dot path splits at every dot, so it cannot name this claim.
/// assert_eq!(ClaimPath::new("https://school.example/roles").get(claims), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimPath(Arc<Inner>);

#[derive(PartialEq, Eq)]
struct Inner {
    /// The path as configured, for logs and errors.
    text: Box<str>,
    /// `None` for a pointer with an invalid escape: it names nothing.
    segments: Option<Box<[Box<str>]>>,
    /// Pointers may index arrays; dot paths only walk objects.
    pointer: bool,
}

impl ClaimPath {
    /// Parses a dot path (`"realm_access.roles"`) or, when `path` starts
    /// with `/`, an RFC 6901 JSON Pointer.
    pub fn new(path: &str) -> Self {
        let (segments, pointer) = match path.strip_prefix('/') {
            Some(pointer) => (pointer.split('/').map(unescape).collect(), true),
            None => (Some(path.split('.').map(Box::from).collect()), false),
        };
        Self(Arc::new(Inner {
            text: path.into(),
            segments,
            pointer,
        }))
    }

    /// Exactly one top-level claim called `name`, dots and slashes
    /// included (Auth0's namespaced claims, say).
    pub fn name(name: &str) -> Self {
        Self(Arc::new(Inner {
            text: name.into(),
            segments: Some(Box::new([name.into()])),
            pointer: false,
        }))
    }

    /// The path as it was written.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// The value this path names in `claims`, if any.
    pub fn get<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        self.lookup(claims)
    }

    pub(crate) fn lookup<'a, C: ClaimLookup + ?Sized>(&self, claims: &'a C) -> Option<&'a Value> {
        let (first, rest) = self.0.segments.as_deref()?.split_first()?;
        let mut value = claims.claim(first)?;
        for segment in rest {
            value = match value {
                Value::Object(map) => map.get(&**segment)?,
                Value::Array(items) if self.0.pointer => items.get(index(segment)?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
fn index(segment: &str) -> Option<usize> {
    let leading_zero = segment.len() > 1 && segment.starts_with('0');
    if leading_zero || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// One pointer segment with `~1` → `/` and `~0` → `~` (in that order of
/// precedence, RFC 6901 §4); `None` for any other use of `~`.
fn unescape(segment: &str) -> Option<Box<str>> {
    if !segment.contains('~') {
        return Some(segment.into());
    }
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out.into())
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.text)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl From<&str> for ClaimPath {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl From<String> for ClaimPath {
    fn from(path: String) -> Self {
        Self::new(&path)
    }
}

impl From<&String> for ClaimPath {
    fn from(path: &String) -> Self {
        Self::new(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({
            "a.b": {"c": 1},
            "a": {"b": {"c": 2}},
            "x/y": "slash",
            "m~n": "tilde",
            "list": [{"id": "first"}, {"id": "second"}],
            "": "empty",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn dot_paths_walk_objects_only() {
        let c = claims();
        assert_eq!(ClaimPath::new("a.b.c").lookup(&c), Some(&json!(2)));
        assert_eq!(ClaimPath::new("list.0.id").lookup(&c), None);
        assert_eq!(ClaimPath::new("a.b.c.d").lookup(&c), None);
    }

    #[test]
    fn pointers_name_dotted_and_escaped_names_and_index_arrays() {
        let c = claims();
        assert_eq!(ClaimPath::new("/a.b/c").lookup(&c), Some(&json!(1)));
        assert_eq!(ClaimPath::new("/x~1y").lookup(&c), Some(&json!("slash")));
        assert_eq!(ClaimPath::new("/m~0n").lookup(&c), Some(&json!("tilde")));
        assert_eq!(
            ClaimPath::new("/list/1/id").lookup(&c),
            Some(&json!("second"))
        );
        assert_eq!(ClaimPath::new("/").lookup(&c), Some(&json!("empty")));
        for nothing in [
            "/list/01/id",
            "/list/-/id",
            "/list/2",
            "/a~2b",
            "/a~",
            "/nope",
        ] {
            assert_eq!(ClaimPath::new(nothing).lookup(&c), None, "{nothing}");
        }
    }

    #[test]
    fn a_name_is_taken_verbatim() {
        let c = claims();
        assert_eq!(ClaimPath::name("a.b").lookup(&c), Some(&json!({"c": 1})));
        assert_eq!(ClaimPath::name("x/y").lookup(&c), Some(&json!("slash")));
        assert_eq!(format!("{:?}", ClaimPath::name("a.b")), "\"a.b\"");
        assert_eq!(ClaimPath::new("/x~1y").as_str(), "/x~1y");
    }
}

#[cfg(test)]
mod lazy_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_kept_as_text_until_read_and_read_back_the_same() {
        let map = json!({"sub": "u", "n": 1.5, "deep": {"a": [1, "x", null]}})
            .as_object()
            .unwrap()
            .clone();
        let claims = Claims::new(map.clone());
        assert!(claims.parsed.get().is_none());
        let small = claims.heap_bytes();
        // Peeking parses for the call only.
        assert_eq!(claims.peek(|m| m.len()), 3);
        assert!(claims.parsed.get().is_none());
        assert_eq!(claims.as_map(), &map);
        assert_eq!(claims.get("deep.a"), Some(&json!([1, "x", null])));
        assert!(claims.heap_bytes() > small);
        assert_eq!(claims.clone(), claims);
        // Read from a token's payload: the same claims, and no text of
        // their own (the token is the token cache's key).
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub": "u", "n":1.5, "deep":{"a":[1,"x",null]}}"#);
        let from_token = Claims::from_token(format!("e30.{payload}.c2ln").into());
        assert_eq!(from_token.heap_bytes(), 0);
        assert_eq!(from_token.peek(|m| m.len()), 3);
        assert_eq!(from_token, claims);
        // A payload that does not decode reads as no claims, never a panic.
        assert!(Claims::from_token("a.%%%.b".into()).as_map().is_empty());
    }
}
