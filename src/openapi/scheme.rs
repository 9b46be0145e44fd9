//! The security schemes: HTTP bearer (JWT) always, OAuth 2.0 when the
//! service names where its tokens come from.

use utoipa::openapi::security::{
    AuthorizationCode, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes,
    SecurityScheme,
};

/// Where clients get a token: one OAuth 2.0 flow of the `oauth2` security
/// scheme. Its URLs are the IAM's (its discovery document's
/// `authorization_endpoint` and `token_endpoint`): the document never
/// guesses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Flow(FlowKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum FlowKind {
    AuthorizationCode {
        authorization_url: String,
        token_url: String,
    },
    ClientCredentials {
        token_url: String,
    },
}

impl OAuth2Flow {
    /// The authorization code flow (with PKCE, for people at a browser).
    pub fn authorization_code(
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Self {
        Self(FlowKind::AuthorizationCode {
            authorization_url: authorization_url.into(),
            token_url: token_url.into(),
        })
    }

    /// The client credentials flow (for services).
    pub fn client_credentials(token_url: impl Into<String>) -> Self {
        Self(FlowKind::ClientCredentials {
            token_url: token_url.into(),
        })
    }

    /// The flow's URLs, to be checked before they are published.
    pub(crate) fn urls(&self) -> Vec<&str> {
        match &self.0 {
            FlowKind::AuthorizationCode {
                authorization_url,
                token_url,
            } => vec![authorization_url, token_url],
            FlowKind::ClientCredentials { token_url } => vec![token_url],
        }
    }

    fn to_flow(&self, scopes: Scopes) -> Flow {
        match &self.0 {
            FlowKind::AuthorizationCode {
                authorization_url,
                token_url,
            } => Flow::AuthorizationCode(AuthorizationCode::new(
                authorization_url,
                token_url,
                scopes,
            )),
            FlowKind::ClientCredentials { token_url } => {
                Flow::ClientCredentials(ClientCredentials::new(token_url, scopes))
            }
        }
    }
}

/// Whether `url` can be published as a flow URL: absolute http(s) with a
/// host.
pub(crate) fn is_absolute_http(url: &str) -> bool {
    match url.parse::<http::Uri>() {
        Ok(uri) => {
            matches!(uri.scheme_str(), Some("https" | "http"))
                && uri.host().is_some_and(|h| !h.is_empty())
        }
        Err(_) => false,
    }
}

/// The HTTP bearer scheme for JWT access tokens.
pub(crate) fn bearer() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token from the IAM, verified by iam-guard against the IAM's keys",
            ))
            .build(),
    )
}

/// The OAuth 2.0 scheme: every flow offers every scope (`(name,
/// description)`).
pub(crate) fn oauth2(flows: &[OAuth2Flow], scopes: &[(String, String)]) -> SecurityScheme {
    let flows = flows.iter().map(|flow| {
        flow.to_flow(
            scopes
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str()))
                .collect(),
        )
    });
    SecurityScheme::OAuth2(OAuth2::new(flows))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flow_urls_must_be_absolute_http() {
        assert!(is_absolute_http("https://iam.example.com/token"));
        assert!(is_absolute_http("http://127.0.0.1:4000/token"));
        for bad in [
            "",
            "/token",
            "iam.example.com/token",
            "ftp://iam/token",
            "https://",
        ] {
            assert!(!is_absolute_http(bad), "{bad:?}");
        }
    }

    #[test]
    fn each_flow_lists_every_scope() {
        let scheme = oauth2(
            &[
                OAuth2Flow::authorization_code("https://iam/auth", "https://iam/token"),
                OAuth2Flow::client_credentials("https://iam/token"),
            ],
            &[("students:read".into(), "read students".into())],
        );
        let json = serde_json::to_value(scheme).unwrap();
        assert_eq!(json["type"], "oauth2");
        assert_eq!(
            json["flows"]["authorizationCode"],
            json!({"authorizationUrl": "https://iam/auth", "tokenUrl": "https://iam/token",
                   "scopes": {"students:read": "read students"}})
        );
        assert_eq!(
            json["flows"]["clientCredentials"]["scopes"],
            json!({"students:read": "read students"})
        );
    }

    #[test]
    fn bearer_is_a_jwt() {
        let json = serde_json::to_value(bearer()).unwrap();
        assert_eq!(
            (&json["type"], &json["scheme"], &json["bearerFormat"]),
            (&json!("http"), &json!("bearer"), &json!("JWT"))
        );
    }
}
