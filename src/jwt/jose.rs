//! Compact JWS pieces shared by the token and DPoP proof checks: strict
//! base64url segments that hold a JSON object, RFC 7519 NumericDates, and
//! the clock they are compared with.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::Value;

use super::validation::VerifyError;

/// One segment of a compact JWS, decoded from strict unpadded base64url,
/// when it holds a JSON object.
///
/// serde reads a struct from a JSON array too, by position, so
/// `["RS256","k"]` would pass a struct's checks; a JOSE header and a
/// claims set are objects (RFC 7515 §4, RFC 7519 §7.2).
pub(super) fn object_segment(segment: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(segment).ok()?;
    holds_object(&raw).then_some(raw)
}

/// Whether decoded JSON text starts an object (whitespace first allowed).
fn holds_object(raw: &[u8]) -> bool {
    raw.trim_ascii_start().first() == Some(&b'{')
}

/// A segment decoded from strict unpadded base64url into `stack` when it
/// fits (the usual header and payload do: no allocation), else into
/// `heap`; `None` when it is not base64url or does not hold a JSON object
/// (as [`object_segment`]).
pub(super) fn object_segment_in<'b>(
    segment: &str,
    stack: &'b mut [u8],
    heap: &'b mut Vec<u8>,
) -> Option<&'b [u8]> {
    let raw: &[u8] = match URL_SAFE_NO_PAD.decode_slice(segment, stack) {
        Ok(len) => &stack[..len],
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            *heap = URL_SAFE_NO_PAD.decode(segment).ok()?;
            heap
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => return None,
    };
    holds_object(raw).then_some(raw)
}

/// The three segments of a compact JWS, and the signing input (header and
/// payload with the dot between them) as a slice of the token.
pub(super) struct Segments<'a> {
    pub(super) header: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
    pub(super) signing_input: &'a str,
}

/// Splits a token of exactly three segments.
pub(super) fn segments(token: &str) -> Result<Segments<'_>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    Ok(Segments {
        header,
        payload,
        signature,
        signing_input: &token[..header.len() + 1 + payload.len()],
    })
}

/// Segment `index` (0 the header, 1 the payload) of a token of exactly
/// three segments, as [`object_segment`] reads it.
pub(super) fn json_object_segment(token: &str, index: usize) -> Result<Vec<u8>, VerifyError> {
    let Segments {
        header, payload, ..
    } = segments(token)?;
    let segment = if index == 0 { header } else { payload };
    object_segment(segment).ok_or(VerifyError::Malformed)
}

/// Whether the JSON text `raw` nests arrays and objects at most `max`
/// deep. serde skips the members of a header we do not read without any
/// depth limit (it does so without recursing, so nothing overflows), and a
/// header of ten thousand brackets is no header: refused as malformed.
/// Brackets inside strings do not count.
pub(super) fn nesting_within(raw: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in raw {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// A NumericDate: a non-negative JSON number of seconds, fraction allowed.
pub(crate) fn numeric_date(value: &Value) -> Option<f64> {
    let n = value.as_number()?;
    match n.as_u64() {
        // Exact for every integer a clock will reach.
        Some(secs) => Some(secs as f64),
        None => n.as_f64().filter(|secs| secs.is_finite() && *secs >= 0.0),
    }
}

pub(crate) fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(nesting_within(br#"{"alg":"RS256","kid":"k"}"#, 1));
        assert!(nesting_within(br#"{"a":[{"b":[]}]}"#, 4));
        assert!(!nesting_within(br#"{"a":[{"b":[]}]}"#, 3));
        assert!(nesting_within(br#"{"kid":"[[[[[[\"[[[["}"#, 1));
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(!nesting_within(deep.as_bytes(), 16));
    }
}
