//! A test IAM: key generation, token minting, and JWKS + OIDC discovery
//! served on an ephemeral loopback port.
//!
//! **For tests and local development only.** It mints a valid token for
//! anyone who asks: [`TestIam::mint`] signs whatever claims it is given, and
//! the IAM's own `POST /token` endpoint does the same for any HTTP client.
//! A service that trusted it would trust everybody, so the `test-util`
//! feature must never be enabled in a production build.
//!
//! Service teams use it to test their own routers end to end; the crate's
//! own tests use it for every JWKS behaviour (outages, slow answers,
//! garbage, rotation), counting the fetches it serves.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use iam_guard::test_util::TestIam;
//! use serde_json::json;
//!
//! let iam = TestIam::start().await;
//! let token = iam.mint(json!({"sub": "teacher-1", "roles": ["teacher"]}));
//! let verifier = iam.verifier();
//! # let _ = (token, verifier);
//! # }
//! ```
//!
//! - [`TestKey`] generates RS256, PS256, ES256, ES384, ES512 and EdDSA keys, publishes
//!   them as JWKs and signs any header and claims; [`sign_hs256`] forges
//!   HMAC tokens for algorithm-confusion tests.
//! - [`DpopKey`] is a DPoP client's key: honest proofs for a request, or
//!   any header and claims for attack tests, and the `cnf.jkt` that binds
//!   a token to it.
//! - [`TestIam`] serves the JWKS and the discovery document on loopback,
//!   with the faults of [`IamMode`], fetch counters and key rotation.
//! - As a development IAM it also answers `POST /token` (demo users
//!   registered with [`TestIam::add_user`], or arbitrary claims),
//!   `PUT /users/{name}` (a demo user's claims, roles included, replaced)
//!   and `POST /rotate`.
//! - It serves an RBAC catalogue too (`GET /catalogue`, with ETags;
//!   [`TestIam::set_catalogue`], [`TestIam::catalogue_fetches`]), which
//!   `PUT /catalogue/tenants/{tenant}/roles/{role}` changes; see
//!   [`TestIam::catalogue_url`].
//! - It answers `GET /permissions?userId=…&tenantId=…` as an IAM answers a
//!   [`RemoteSource`](crate::permissions::remote::RemoteSource): the demo
//!   user's roles compiled against the catalogue it serves; see
//!   [`TestIam::permissions_url`] and [`TestIam::permissions_fetches`].
//! - `POST /revoke` and `POST /invalidate` revoke tokens and invalidate
//!   cached permissions, in one process ([`TestIam::revoke_into`]) or on
//!   every replica through Redis (`TestIam::publish_to`, feature
//!   `redis`), which also makes `PUT /users/{name}` and the catalogue
//!   changes invalidate what they change.
//! - [`IntrospectionEndpoint`] is an RFC 7662 introspection endpoint on
//!   its own loopback port, answering opaque tokens as the test says, with
//!   client authentication, faults and a request counter, for
//!   [`Introspector`](crate::jwt::introspection::Introspector) tests.
//! - Opaque tokens: `POST /token` with `"format": "opaque"` (or
//!   [`TestIam::mint_opaque`]) issues a random token, and
//!   `POST /introspect` answers RFC 7662 introspection for it to the
//!   client [`DEV_CLIENT_ID`] ([`TestIam::introspection_url`]).
//! - [`principal`], [`merge`] and [`claims`] build principals and claims
//!   without a token.

mod catalogue;
mod dev_iam;
mod dpop;
mod introspection;
mod keys;
mod loopback;
mod opaque;
mod permissions;
mod revoke;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use dpop::{access_token_hash, DpopKey};
pub use introspection::{
    IntrospectionEndpoint, IntrospectionRequest, TEST_CLIENT_ID, TEST_CLIENT_SECRET,
};
pub use keys::{sign_hs256, TestKey};
pub use loopback::{IamMode, TestIam};
pub use opaque::{DEV_CLIENT_ID, DEV_CLIENT_SECRET};

/// The audience [`TestIam::mint`] puts in tokens by default.
pub const TEST_AUDIENCE: &str = "test-api";

/// A [`Principal`](crate::Principal) built straight from `claims` with the
/// default claim mapping, as if a token carrying them had been verified:
/// for unit tests of handlers, permission sources and policies.
///
/// # Panics
///
/// When `claims` has no string `sub` or an unusable `roles` claim.
pub fn principal(claims: Value) -> crate::Principal {
    let Value::Object(map) = claims else {
        panic!("claims must be a JSON object")
    };
    let identity = crate::ClaimMapping::default()
        .identity(map)
        .unwrap_or_else(|e| panic!("unusable claims: {e}"));
    crate::Principal::new(Arc::new(identity), None)
}

/// Merges `patch` into `base` at the top level; `null` removes a claim.
pub fn merge(mut base: Value, patch: Value) -> Value {
    if let (Some(base), Value::Object(patch)) = (base.as_object_mut(), patch) {
        for (k, v) in patch {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    base
}

/// Claims as a map, for callers building them field by field.
pub fn claims(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}
