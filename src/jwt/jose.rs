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
    (raw.trim_ascii_start().first() == Some(&b'{')).then_some(raw)
}

/// Segment `index` (0 the header, 1 the payload) of a token of exactly
/// three segments, as [`object_segment`] reads it.
pub(super) fn json_object_segment(token: &str, index: usize) -> Result<Vec<u8>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let segment = if index == 0 { header } else { payload };
    object_segment(segment).ok_or(VerifyError::Malformed)
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
