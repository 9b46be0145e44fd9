//! The top-level field scanning behind FieldFilter and FieldWriteGuard,
//! as pure functions over JSON bytes.
//!
//! Fields are enforced at the scope-group level: a body's top-level
//! keys are scope groups (`anagraphic`, `sensitive`, ...) plus a few
//! system fields, and nothing below a group is ever examined. Both
//! functions here honour that literally: the inside of a group is scanned
//! only as far as needed to find where it ends and that it is valid JSON,
//! never materialized, and a kept group is written through byte for byte.
//! Filtering therefore costs one pass over the body (about ten instructions
//! a byte), not a parse into a `serde_json::Value` tree and a
//! re-serialization.
//!
//! - [`filter_document`] keeps the top-level members a predicate accepts,
//!   for a single object, an array of objects, or a page
//!   `{"data": [...], "meta": {...}}`.
//! - [`check_write`] reads the top-level keys of a write body and names
//!   the ones the caller may not write.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::fields::{check_write, filter_document, WriteError};
//!
//! let readable = |key: &str| matches!(key, "id" | "anagraphic");
//! let body = br#"{"id":7,"anagraphic":{"firstName":"Mario"},"sensitive":{"disabilityInfo":"ADHD"}}"#;
//! let filtered = filter_document(body, readable).unwrap();
//! assert_eq!(filtered, br#"{"id":7,"anagraphic":{"firstName":"Mario"}}"#);
//!
//! let writable = |scope: &str| scope == "anagraphic";
//! assert!(check_write(br#"{"anagraphic":{"firstName":"Mario"}}"#, writable).is_ok());
//! assert_eq!(
//!     check_write(br#"{"sensitive":{"disabilityInfo":"ADHD"}}"#, writable),
//!     Err(WriteError::Forbidden(vec!["sensitive".to_owned()]))
//! );
//! ```

use std::{borrow::Cow, fmt, ops::Range};

use super::json_scan::{trim_ws, Limits, Scan, ScanError, Scanner};

/// The top-level keys FieldFilter keeps whatever the caller's scopes.
pub const DEFAULT_ALWAYS_ALLOWED: [&str; 3] = ["id", "createdAt", "updatedAt"];

/// The top-level keys a write body may never carry: the server owns them.
pub const SYSTEM_FIELDS: [&str; 4] = ["id", "createdAt", "updatedAt", "tenantId"];

/// A response document that cannot be filtered: not JSON, or a shape
/// whose scope groups cannot be located (an array nested in an array).
///
/// FieldFilter answers it with 500: a document it cannot read must not be
/// sent unfiltered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot filter the document: {0}")]
pub struct FilterError(ScanError);

/// Keeps the top-level members of a JSON document that `keep` accepts.
///
/// The shapes it understands:
///
/// - an **object** is an entity: a member survives when `keep(key)` is
///   true (keys are compared after JSON unescaping, so `"sens\u0069tive"`
///   is `sensitive`);
/// - an **array** holds entities: each object element is filtered as
///   above, scalar elements are kept, and an array element is an error;
/// - a **page** is an object with exactly one `data` member that is an
///   array and a `meta` member: `data` is filtered as an array, `meta` is
///   kept verbatim, and any other member is judged by `keep` like an
///   entity's. (So an entity must not name its scope groups `data` and
///   `meta` at once.)
/// - a top-level scalar is kept.
///
/// Filtering only cuts: the output is the input (without surrounding
/// whitespace) with the dropped members and their commas removed, every
/// other byte as it was. Dropped values are checked as JSON all the same:
/// a malformed document is refused whole, never half filtered.
///
/// # Errors
///
/// [`FilterError`] when `input` is not exactly one JSON value (surrounding
/// whitespace allowed) or nests an array directly in an array.
pub fn filter_document<F>(input: &[u8], keep: F) -> Result<Vec<u8>, FilterError>
where
    F: Fn(&str) -> bool,
{
    filter_document_cow(input, keep).map(Cow::into_owned)
}

/// [`filter_document`] without a copy when nothing is dropped: the answer
/// then borrows `input` (trimmed of surrounding whitespace). This is the
/// common case for a caller who may read every group, and FieldFilter
/// passes such a body on without allocating.
///
/// # Errors
///
/// As [`filter_document`].
pub fn filter_document_cow<F>(input: &[u8], keep: F) -> Result<Cow<'_, [u8]>, FilterError>
where
    F: Fn(&str) -> bool,
{
    let input = trim_ws(input);
    let mut cuts = Vec::new();
    Scanner::new(input, Limits::GRAMMAR)
        .and_then(|mut s| {
            match s.peek() {
                Some(b'{') => root_object(&mut s, &keep, &mut cuts)?,
                Some(b'[') => entities(&mut s, &keep, &mut cuts)?,
                // A scalar carries no scope group.
                _ => {
                    s.value_range()?;
                }
            }
            s.end()
        })
        .map_err(FilterError)?;
    if cuts.is_empty() {
        return Ok(Cow::Borrowed(input));
    }
    let removed: usize = cuts.iter().map(ExactSizeIterator::len).sum();
    let mut out = Vec::with_capacity(input.len() - removed);
    let mut at = 0;
    for cut in cuts {
        out.extend_from_slice(&input[at..cut.start]);
        at = cut.end;
    }
    out.extend_from_slice(&input[at..]);
    Ok(Cow::Owned(out))
}

/// [`filter_document`] appending to `out`, so a caller can reuse a buffer.
///
/// # Errors
///
/// As [`filter_document`]; `out` is then left as it was.
pub fn filter_document_into<F>(input: &[u8], keep: F, out: &mut Vec<u8>) -> Result<(), FilterError>
where
    F: Fn(&str) -> bool,
{
    out.extend_from_slice(&filter_document_cow(input, keep)?);
    Ok(())
}

/// Why a write body is not a JSON object FieldWriteGuard can check.
///
/// The messages are safe to show the client: they describe the client's
/// own body and nothing of the caller's permissions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidBody {
    /// Empty, truncated, malformed, or nested deeper than serde_json's
    /// recursion limit (127 levels with the root).
    #[error("the request body is not valid JSON")]
    NotJson,
    /// Valid JSON, but `null`, an array, a string, a number or a boolean.
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// The same top-level key twice. Parsers disagree on which copy wins,
    /// so a second copy could carry a value past a check of the first.
    #[error("the request body repeats a top-level key")]
    DuplicateKey,
}

/// Why a write body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The body is not a checkable JSON object: 400 `INVALID_BODY`.
    Invalid(InvalidBody),
    /// These top-level keys (system fields, or groups without WRITE) may
    /// not be written: 403 `FORBIDDEN_FIELDS`. Sorted, without repeats.
    /// For the server's logs only: the 403 response does not name them.
    Forbidden(Vec<String>),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => e.fmt(f),
            Self::Forbidden(keys) => write!(f, "forbidden fields: {}", keys.join(", ")),
        }
    }
}

impl std::error::Error for WriteError {}

/// The top-level keys of a write body, unescaped, in body order.
///
/// Values are validated as the handler's serde_json will parse them
/// (grammar, UTF-8, paired surrogate escapes, its recursion limit), so a
/// truncated or malformed body is refused here, not half-way through the
/// handler, but they are not kept.
///
/// # Errors
///
/// [`InvalidBody`] when `body` is not a single JSON object, nests deeper
/// than serde_json's recursion limit, or repeats a top-level key.
pub fn top_level_keys(body: &[u8]) -> Result<Vec<Cow<'_, str>>, InvalidBody> {
    let mut s = Scanner::new(body, Limits::SERDE).map_err(|_| InvalidBody::NotJson)?;
    if s.peek() != Some(b'{') {
        // Tell "not JSON" from "JSON, but not an object".
        return Err(match s.value().and_then(|_| s.end()) {
            Ok(()) => InvalidBody::NotAnObject,
            Err(_) => InvalidBody::NotJson,
        });
    }
    let keys = object_keys(&mut s)
        .and_then(|keys| s.end().map(|()| keys))
        .map_err(|_| InvalidBody::NotJson)?;
    if has_duplicates(&keys) {
        return Err(InvalidBody::DuplicateKey);
    }
    Ok(keys)
}

fn object_keys<'a>(s: &mut Scanner<'a>) -> Scan<Vec<Cow<'a, str>>> {
    s.open(b'{')?;
    let mut keys = Vec::with_capacity(8);
    if s.close_if_empty(b'}') {
        return Ok(keys);
    }
    loop {
        let key = s.key()?;
        s.value_range()?;
        keys.push(key.name);
        if !s.next_or_close(b'}')? {
            return Ok(keys);
        }
    }
}

/// Checks a write body: it must be a JSON object whose every top-level
/// key is a scope group `can_write` accepts and none of
/// [`SYSTEM_FIELDS`] (those are refused whatever `can_write` says).
///
/// # Errors
///
/// [`WriteError::Invalid`] as in [`top_level_keys`];
/// [`WriteError::Forbidden`] with every offending key.
pub fn check_write<F>(body: &[u8], can_write: F) -> Result<(), WriteError>
where
    F: Fn(&str) -> bool,
{
    let keys = top_level_keys(body).map_err(WriteError::Invalid)?;
    let mut forbidden: Vec<String> = keys
        .iter()
        .filter(|k| SYSTEM_FIELDS.contains(&k.as_ref()) || !can_write(k))
        .map(|k| k.as_ref().to_owned())
        .collect();
    if forbidden.is_empty() {
        return Ok(());
    }
    forbidden.sort_unstable();
    forbidden.dedup();
    Err(WriteError::Forbidden(forbidden))
}

fn has_duplicates(keys: &[Cow<'_, str>]) -> bool {
    // Write bodies have a handful of groups: a quadratic scan beats
    // sorting until the count grows, and a body with thousands of keys
    // still costs only O(n log n).
    if keys.len() <= 16 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, k)| keys[i + 1..].contains(k));
    }
    let mut sorted: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

// ---------------------------------------------------------------------------
// Read filter: which byte ranges of the input to cut

/// Cuts for the members of one object, decided in order: a dropped member
/// takes the comma before it, or, while nothing before it is kept, the
/// comma after it, so what is left is always well formed.
#[derive(Default)]
struct ObjectCuts {
    kept_any: bool,
    /// Start of a dropped leading member, cut up to the next key.
    pending: Option<usize>,
    prev_end: usize,
}

impl ObjectCuts {
    fn member(
        &mut self,
        key_start: usize,
        value_end: usize,
        kept: bool,
        cuts: &mut Vec<Range<usize>>,
    ) {
        if let Some(start) = self.pending.take() {
            cuts.push(start..key_start);
        }
        if kept {
            self.kept_any = true;
        } else if self.kept_any {
            cuts.push(self.prev_end..value_end);
        } else {
            self.pending = Some(key_start);
        }
        self.prev_end = value_end;
    }

    fn close(self, cuts: &mut Vec<Range<usize>>) {
        if let Some(start) = self.pending {
            cuts.push(start..self.prev_end);
        }
    }
}

/// A member of the root object, held until we know whether it is a page.
struct RootMember {
    key_start: usize,
    value_end: usize,
    /// What `keep` said of its name.
    kept: bool,
    /// `meta`, or `data` holding an array: kept whole if this is a page.
    page_part: bool,
}

fn root_object<F: Fn(&str) -> bool>(
    s: &mut Scanner<'_>,
    keep: &F,
    cuts: &mut Vec<Range<usize>>,
) -> Scan<()> {
    s.open(b'{')?;
    let mut members: Vec<RootMember> = Vec::with_capacity(16);
    // `data` filtered speculatively, so a page costs one pass: we only
    // learn that the object is a page once `meta` has been seen.
    let mut data_cuts = Vec::new();
    let (mut datas, mut data_array, mut has_meta) = (0, None, false);
    if !s.close_if_empty(b'}') {
        loop {
            let key = s.key()?;
            let page_part = match &*key.name {
                "data" => {
                    datas += 1;
                    if s.peek() == Some(b'[') {
                        entities(s, keep, &mut data_cuts)?;
                        data_array = Some(members.len());
                        true
                    } else {
                        s.value_range()?;
                        false
                    }
                }
                "meta" => {
                    has_meta = true;
                    s.value_range()?;
                    true
                }
                _ => {
                    s.value_range()?;
                    false
                }
            };
            members.push(RootMember {
                key_start: key.start,
                value_end: s.position(),
                kept: keep(&key.name),
                page_part,
            });
            if !s.next_or_close(b'}')? {
                break;
            }
        }
    }

    let page_data = data_array.filter(|_| datas == 1 && has_meta);
    let mut object = ObjectCuts::default();
    for (i, m) in members.iter().enumerate() {
        let kept = m.kept || (page_data.is_some() && m.page_part);
        object.member(m.key_start, m.value_end, kept, cuts);
        if page_data == Some(i) {
            cuts.append(&mut data_cuts);
        }
    }
    object.close(cuts);
    Ok(())
}

/// An array of entities at the cursor: each object filtered, each scalar
/// kept.
fn entities<F: Fn(&str) -> bool>(
    s: &mut Scanner<'_>,
    keep: &F,
    cuts: &mut Vec<Range<usize>>,
) -> Scan<()> {
    s.open(b'[')?;
    if s.close_if_empty(b']') {
        return Ok(());
    }
    loop {
        match s.peek() {
            Some(b'{') => entity(s, keep, cuts)?,
            // Which member of `[[{..}]]` is a scope group? We cannot say,
            // so we refuse rather than pass it through unfiltered.
            Some(b'[') => {
                return Err(s.error("an array nested in an array has no scope groups to filter"))
            }
            _ => {
                s.value_range()?;
            }
        }
        if !s.next_or_close(b']')? {
            return Ok(());
        }
    }
}

/// One entity (an object at the cursor): the members `keep` rejects are cut.
fn entity<F: Fn(&str) -> bool>(
    s: &mut Scanner<'_>,
    keep: &F,
    cuts: &mut Vec<Range<usize>>,
) -> Scan<()> {
    s.open(b'{')?;
    if s.close_if_empty(b'}') {
        return Ok(());
    }
    let mut object = ObjectCuts::default();
    loop {
        let key = s.key()?;
        let end = s.value_range()?.end;
        object.member(key.start, end, keep(&key.name), cuts);
        if !s.next_or_close(b'}')? {
            object.close(cuts);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_ana(k: &str) -> bool {
        DEFAULT_ALWAYS_ALLOWED.contains(&k) || k == "anagraphic"
    }

    fn filtered(input: &str) -> String {
        String::from_utf8(filter_document(input.as_bytes(), keep_ana).unwrap()).unwrap()
    }

    #[test]
    fn object_keeps_readable_groups_verbatim() {
        let input = r#"{ "id" : 1, "anagraphic" : { "b" : [1, 2.50, "x\n"] }, "sensitive": {"x": 1}, "updatedAt": "t" }"#;
        assert_eq!(
            filtered(input),
            r#"{ "id" : 1, "anagraphic" : { "b" : [1, 2.50, "x\n"] }, "updatedAt": "t" }"#
        );
    }

    #[test]
    fn cuts_take_one_comma_each_whatever_is_dropped() {
        // First, middle, last, all, none, alternating.
        for (input, want) in [
            (r#"{"s1":1,"id":2}"#, r#"{"id":2}"#),
            (
                r#"{"id":1,"s1":2,"updatedAt":3}"#,
                r#"{"id":1,"updatedAt":3}"#,
            ),
            (r#"{"id":1,"s1":2}"#, r#"{"id":1}"#),
            (r#"{"s1":1,"s2":2,"s3":3}"#, r#"{}"#),
            (r#"{ "s1" : 1 , "s2" : 2 }"#, r#"{  }"#),
            (
                r#"{"s1":1,"s2":2,"id":3,"s3":4,"anagraphic":5,"s4":6}"#,
                r#"{"id":3,"anagraphic":5}"#,
            ),
            (
                r#"[{"s1":1},{"id":1,"s2":[1,{"id":2}]},{}]"#,
                r#"[{},{"id":1},{}]"#,
            ),
        ] {
            assert_eq!(filtered(input), want, "{input}");
        }
    }

    #[test]
    fn nothing_dropped_borrows_the_input() {
        let input = br#" {"id":1,"anagraphic":{"sensitive":2}} "#;
        match filter_document_cow(input, keep_ana).unwrap() {
            Cow::Borrowed(b) => assert_eq!(b, input.trim_ascii()),
            Cow::Owned(_) => panic!("copied a document with nothing to drop"),
        }
        assert!(matches!(
            filter_document_cow(br#"{"sensitive":1}"#, keep_ana).unwrap(),
            Cow::Owned(_)
        ));
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        assert_eq!(
            filtered(r#"{"sens\u0069tive":{"x":1},"an\u0061graphic":{}}"#),
            r#"{"an\u0061graphic":{}}"#
        );
    }

    #[test]
    fn arrays_filter_each_object_and_keep_scalars() {
        assert_eq!(
            filtered(r#"[{"id":1,"sensitive":2},{"anagraphic":3},null,"s\"",4,-5,1.5,true]"#),
            r#"[{"id":1},{"anagraphic":3},null,"s\"",4,-5,1.5,true]"#
        );
        assert_eq!(filtered("[]"), "[]");
        assert_eq!(filtered("[{}]"), "[{}]");
    }

    #[test]
    fn nested_arrays_are_refused() {
        assert!(filter_document(b"[[{\"sensitive\":1}]]", keep_ana).is_err());
    }

    #[test]
    fn pages_filter_data_and_keep_meta() {
        let input = r#"{"data":[{"id":1,"sensitive":{}}],"meta":{"total":1},"sensitive":1}"#;
        assert_eq!(filtered(input), r#"{"data":[{"id":1}],"meta":{"total":1}}"#);
        // Without meta it is an entity, and neither key is a readable group.
        assert_eq!(filtered(r#"{"data":[{"id":1}],"id":2}"#), r#"{"id":2}"#);
        // A page whose `data` is also a readable scope is filtered all the same.
        let keep = |k: &str| k == "data";
        let out = filter_document(br#"{"meta":{},"data":[{"data":1,"x":2}]}"#, keep).unwrap();
        assert_eq!(out, br#"{"meta":{},"data":[{"data":1}]}"#);
    }

    #[test]
    fn scalars_and_garbage() {
        assert_eq!(filtered(" null "), "null");
        assert_eq!(filtered("\"x\""), "\"x\"");
        for bad in ["", "{", "{\"a\":}", "{\"id\":1} x", "[1,]", "{\"id\":tru}"] {
            assert!(filter_document(bad.as_bytes(), keep_ana).is_err(), "{bad}");
        }
    }

    /// Found by `fuzz/` (target `fields`): a top-level number went through
    /// f64 and came out changed (`607e70` → `6.0700000000000001e72`).
    #[test]
    fn top_level_scalars_are_kept_byte_for_byte() {
        for kept in [
            "607e70",
            "707e69",
            "1e400",
            "12345678901234567890123",
            "-0.0",
            "1.50",
            "\"x\\u0041\"",
        ] {
            assert_eq!(filtered(kept), kept);
            assert_eq!(filtered(&format!(" \n{kept}\t ")), kept);
        }
        for bad in ["1 2", "01", "1.", "\"x", "nul"] {
            assert!(filter_document(bad.as_bytes(), keep_ana).is_err(), "{bad}");
        }
        // Found by the fuzzer after the fix above: a top-level string must
        // still be UTF-8.
        assert!(filter_document(b"\"\xdb\"", keep_ana).is_err());
        // A lone surrogate escape is grammatical JSON: kept inside a value,
        // but a member name holding one is no string to compare, so refused.
        assert_eq!(
            filtered(r#"{"anagraphic":"\ud800"}"#),
            r#"{"anagraphic":"\ud800"}"#
        );
        assert!(filter_document(br#"{"\ud800":1}"#, keep_ana).is_err());
        // Found by the fuzzer after the scanner rewrite: only JSON's four
        // whitespace bytes may surround a document, not a form feed.
        for bad in [&b"\x0c2"[..], b"2\x0c", b"\x0c{}", b"[]\x0b"] {
            assert!(filter_document(bad, keep_ana).is_err(), "{bad:?}");
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(bad).is_err());
        }
    }

    #[test]
    fn output_is_left_untouched_on_error() {
        let mut out = b"prefix".to_vec();
        assert!(filter_document_into(br#"[{"id":1},{"id":"#, keep_ana, &mut out).is_err());
        assert_eq!(out, b"prefix");
    }

    #[test]
    fn deep_nesting_inside_a_group_is_copied_without_recursion() {
        let depth = 100_000;
        let inner = "[".repeat(depth) + &"]".repeat(depth);
        let input = format!(r#"{{"anagraphic":{inner}}}"#);
        assert_eq!(filtered(&input), input);
    }

    #[test]
    fn write_check_decisions() {
        let writable = |k: &str| k == "anagraphic" || k == "id";
        assert_eq!(check_write(br#"{"anagraphic":{"a":1}}"#, writable), Ok(()));
        assert_eq!(check_write(b"{}", writable), Ok(()));
        assert_eq!(
            check_write(
                br#"{"id":1,"sensitive":{},"tenantId":"t","anagraphic":{}}"#,
                writable
            ),
            Err(WriteError::Forbidden(vec![
                "id".into(),
                "sensitive".into(),
                "tenantId".into()
            ]))
        );
        assert_eq!(
            check_write(br#"{"sens\u0069tive":{}}"#, writable),
            Err(WriteError::Forbidden(vec!["sensitive".into()]))
        );
    }

    #[test]
    fn invalid_write_bodies() {
        let all = |_: &str| true;
        let cases: [(&[u8], InvalidBody); 9] = [
            (b"", InvalidBody::NotJson),
            (b"null", InvalidBody::NotAnObject),
            (b"[]", InvalidBody::NotAnObject),
            (b"\"s\"", InvalidBody::NotAnObject),
            (b"12", InvalidBody::NotAnObject),
            (b"{\"a\":{\"b\":", InvalidBody::NotJson),
            (b"{\"a\":1}{}", InvalidBody::NotJson),
            (b"{\"a\":1,\"a\":2}", InvalidBody::DuplicateKey),
            (b"{\"a\":1,\"\\u0061\":2}", InvalidBody::DuplicateKey),
        ];
        for (body, want) in cases {
            assert_eq!(
                check_write(body, all),
                Err(WriteError::Invalid(want)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn duplicates_among_many_keys() {
        let mut body = String::from("{");
        for i in 0..100 {
            body.push_str(&format!("\"k{i}\":{i},"));
        }
        body.push_str("\"k42\":0}");
        assert_eq!(
            top_level_keys(body.as_bytes()),
            Err(InvalidBody::DuplicateKey)
        );
    }

    #[test]
    fn deep_write_bodies_hit_the_recursion_limit() {
        let depth = 100_000;
        let body = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(top_level_keys(body.as_bytes()), Err(InvalidBody::NotJson));
        let shallow = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(top_level_keys(shallow.as_bytes()).is_ok());
    }
}
