//! The development IAM's permissions endpoint: `GET /permissions`, what a
//! real IAM answers a [`RemoteSource`](crate::permissions::remote::RemoteSource).
//!
//! | request | answer |
//! |---|---|
//! | `GET /permissions?userId=<sub>&tenantId=<tenant>` | 200 with the [permissions document](crate::model::permissions_document) of that user in that tenant |
//! | `GET /permissions?userId=<sub>` | the same against the system catalogue (no tenant) |
//! | `GET /permissions?userId=<sub>&tenantId=<tenant>` of a user it does not know, or who is not a member of that tenant | 200 `{}`: no permissions |
//! | no `userId` | 400 `{"error": "invalid_request", ...}` |
//!
//! The user is the demo user ([`TestIam::add_user`], `PUT /users/{name}`)
//! whose claims carry that `sub` (`user-1` when they carry none, as in the
//! tokens `POST /token` mints for them). They are a member of the tenant
//! of their `tenantId` claim and of those their `organizations` claim
//! lists, as the default [`ClaimMapping`] reads them; their
//! `role_assignments` claim
//! when present, else their `roles`, are compiled by
//! [`CatalogueSource::compile_at`] against the tenant's catalogue in the
//! version the IAM serves now (`GET /catalogue`; the system catalogue for
//! a tenant without roles of its own), so a role change (`PUT
//! /users/{name}`) or a catalogue change (`PUT /catalogue/...`) shows in
//! the next answer. A temporal assignment puts `validUntil` in the
//! document, and each entity lists the `customFieldDefinitions` of the
//! scopes the user reads, as the catalogue declares them. 503 when the
//! published catalogue is not a valid one.
//!
//! The answer depends on what the IAM knows of the user, not on any
//! token: that is why a service may cache it across requests (and
//! replicas), and why the IAM invalidates it when the user's roles change.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};

use super::{loopback::Shared, TestIam};
use crate::{
    model::{custom_fields::EntityCustomFields, TenantCatalogues},
    permissions::source::CatalogueSource,
    principal::ClaimMapping,
    Principal,
};

/// What the permissions endpoint keeps: its request counter.
#[derive(Default)]
pub(super) struct PermissionsState {
    hits: AtomicUsize,
}

/// `GET /permissions`, merged into the development endpoints.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/permissions", get(serve))
}

impl TestIam {
    /// The URL of the IAM's permissions endpoint (`GET /permissions`), for
    /// [`RemoteSource::builder`](crate::permissions::remote::RemoteSource::builder):
    /// the permissions document of a demo user in a tenant, compiled from
    /// the roles this IAM holds for them against the catalogue it serves.
    /// See the [module docs](crate::test_util) and `PUT /users/{name}`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use iam_guard::{test_util::TestIam, JwtAuthGuardLayer, RemoteSource};
    /// use serde_json::json;
    ///
    /// let iam = TestIam::start().await;
    /// iam.add_user("teacher", json!({"sub": "u-teacher", "roles": ["internal_teacher"]}));
    /// let auth = JwtAuthGuardLayer::new(iam.verifier())
    ///     .permissions(RemoteSource::builder(iam.permissions_url()).build().unwrap());
    /// # let _ = auth;
    /// # }
    /// ```
    pub fn permissions_url(&self) -> String {
        format!("{}/permissions", self.shared.issuer)
    }

    /// `GET /permissions` requests served so far, whatever the answer: how
    /// often the services asked this IAM rather than a cache.
    pub fn permissions_fetches(&self) -> usize {
        self.shared.dev.permissions.hits.load(Ordering::SeqCst)
    }
}

/// What the request asks for.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    user: String,
    tenant: Option<String>,
}

/// Reads `userId` and `tenantId` from the query string (the first of
/// each; an empty `tenantId` is no tenant).
fn asked(query: Option<&str>) -> Result<Asked, String> {
    let (mut user, mut tenant) = (None, None);
    if let Some(query) = query {
        // The query as a URL's, for its percent- and plus-decoding.
        let url = reqwest::Url::parse(&format!("http://iam.invalid/?{query}"))
            .map_err(|e| format!("unreadable query string: {e}"))?;
        for (key, value) in url.query_pairs() {
            match &*key {
                "userId" if user.is_none() => user = Some(value.into_owned()),
                "tenantId" if tenant.is_none() => tenant = Some(value.into_owned()),
                _ => {}
            }
        }
    }
    match user {
        Some(user) if !user.trim().is_empty() => Ok(Asked {
            user,
            tenant: tenant.filter(|t| !t.is_empty()),
        }),
        Some(_) => Err("\"userId\" must not be empty".into()),
        None => Err("send ?userId=<sub>, optionally with &tenantId=<tenant>".into()),
    }
}

impl Shared {
    /// The permissions document of `asked`: `{}` for a user this IAM does
    /// not know.
    fn permissions_document(&self, asked: &Asked) -> Result<Value, String> {
        let Some(claims) = self.dev.claims_of_sub(&asked.user) else {
            return Ok(json!({}));
        };
        let Value::Object(claims) = claims else {
            return Ok(json!({}));
        };
        let identity = match ClaimMapping::default().identity(claims) {
            Ok(identity) => identity,
            Err(why) => {
                tracing::warn!(
                    target: "iam_guard::test_util",
                    user = %asked.user,
                    "the demo user's claims are unusable ({why}): no permissions"
                );
                return Ok(json!({}));
            }
        };
        let principal = Principal::new(Arc::new(identity), None);
        if let Some(tenant) = &asked.tenant {
            if !principal.is_member_of(tenant) {
                return Ok(json!({}));
            }
        }
        let catalogues = TenantCatalogues::from_slice(&self.catalogue.body())
            .map_err(|e| format!("the published catalogue is invalid: {e}"))?;
        let catalogue = catalogues.for_tenant(asked.tenant.as_deref()).clone();
        let now = crate::jwt::verify::unix_now();
        // As a real IAM answers: with the custom field definitions of the
        // scopes the user reads (a `RemoteSource` ignores them).
        let fields = EntityCustomFields::from_catalogue(&catalogue);
        Ok(CatalogueSource::new(catalogue)
            .compile_at(&principal, now)
            .to_document_with_custom_fields(&fields))
    }
}

/// `GET /permissions`: see the [module docs](self).
async fn serve(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    shared.dev.permissions.hits.fetch_add(1, Ordering::SeqCst);
    let asked = match asked(query.as_deref()) {
        Ok(asked) => asked,
        Err(why) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": why})),
            )
                .into_response()
        }
    };
    match shared.permissions_document(&asked) {
        Ok(doc) => Json(doc).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "temporarily_unavailable", "error_description": why})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(user: &str, tenant: Option<&str>) -> Asked {
        Asked {
            user: user.into(),
            tenant: tenant.map(Into::into),
        }
    }

    #[test]
    fn the_query_names_the_user_and_optionally_the_tenant() {
        assert_eq!(
            asked(Some("userId=u-1&tenantId=school-1")),
            Ok(ask("u-1", Some("school-1")))
        );
        assert_eq!(asked(Some("userId=u%201&x=y")), Ok(ask("u 1", None)));
        assert_eq!(asked(Some("userId=a+b&tenantId=")), Ok(ask("a b", None)));
        assert_eq!(
            asked(Some("userId=first&userId=second")),
            Ok(ask("first", None))
        );
        for query in [None, Some(""), Some("tenantId=school-1"), Some("userId=")] {
            assert!(asked(query).is_err(), "{query:?}");
        }
    }
}
