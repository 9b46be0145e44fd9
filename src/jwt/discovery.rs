//! OIDC discovery: reading `jwks_uri` out of
//! `{issuer}/.well-known/openid-configuration`.

use serde::Deserialize;

/// The discovery URL of `issuer` (OIDC Discovery §4: the well-known path is
/// appended to the issuer, keeping any path the issuer has).
///
/// ```
/// use iam_guard::jwt::discovery::discovery_url;
///
/// assert_eq!(
///     discovery_url("https://iam.example.com/realms/school/"),
///     "https://iam.example.com/realms/school/.well-known/openid-configuration"
/// );
/// ```
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
}

/// Extracts `jwks_uri` from a discovery document.
///
/// The document's `issuer` must equal the configured issuer exactly (OIDC
/// Discovery §4.3): otherwise a discovery endpoint could hand out the keys
/// of another issuer.
///
/// # Errors
///
/// A message naming what is wrong with the document.
pub fn jwks_uri_from(document: &[u8], expected_issuer: &str) -> Result<String, String> {
    let doc: Document = serde_json::from_slice(document)
        .map_err(|e| format!("discovery document is invalid: {e}"))?;
    if doc.issuer != expected_issuer {
        return Err(format!(
            "discovery document is for issuer {:?}, expected {:?}",
            doc.issuer, expected_issuer
        ));
    }
    if !(doc.jwks_uri.starts_with("https://") || doc.jwks_uri.starts_with("http://")) {
        return Err("discovery document has no absolute jwks_uri".into());
    }
    Ok(doc.jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_must_match_exactly() {
        let doc = br#"{"issuer":"https://iam.test","jwks_uri":"https://iam.test/jwks"}"#;
        assert_eq!(
            jwks_uri_from(doc, "https://iam.test").unwrap(),
            "https://iam.test/jwks"
        );
        assert!(jwks_uri_from(doc, "https://iam.test/").is_err());
        assert!(jwks_uri_from(doc, "https://evil.test").is_err());
    }

    #[test]
    fn bad_documents() {
        assert!(jwks_uri_from(b"<html>", "x").is_err());
        assert!(jwks_uri_from(br#"{"issuer":"x"}"#, "x").is_err());
        assert!(jwks_uri_from(br#"{"issuer":"x","jwks_uri":"/jwks"}"#, "x").is_err());
    }
}
