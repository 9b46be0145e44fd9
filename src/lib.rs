//! Composable Tower layers that let a resource service trust an external
//! IAM server without calling it per request.
//!
//! - [`JwtAuthGuardLayer`] verifies the caller's JWT against the IAM's JWKS
//!   (fetched once, cached by `kid`, kept through outages), or against a
//!   [`SharedSecret`] you configure for an HMAC-signing in-house IAM, and
//!   plants the request's [`RequestContext`]: the [`Principal`] and a
//!   lazy, once-per-request permission cell.
//!   [`Preset`]s configure it in one call for Keycloak, Auth0, Entra ID,
//!   Cognito, Okta and in-house IAMs.
//! - [`ScopeGuard`], [`ActionGuard`] and [`PermissionGuard`] say what each
//!   route needs; [`ProtectedResource`] does it for every route of an
//!   entity by method convention. [`OAuthScopeGuard`] and [`RoleGuard`]
//!   ask the token itself (OAuth scopes, IdP roles), with no permission
//!   source at all.
//! - [`FieldWriteGuardLayer`] rejects write bodies that touch scope groups
//!   the caller cannot write; [`FieldFilterLayer`] strips the groups the
//!   caller cannot read from JSON responses.
//!
//! - [`ProtectedResourceMetadata`] publishes the RFC 9728 document that
//!   tells a client which authorization server and OAuth scopes this
//!   resource wants, at its well-known URL; with
//!   [`JwtAuthGuardLayer::resource_metadata_url`] every `WWW-Authenticate`
//!   challenge points to it.
//!
//! Every refusal is rendered in the format configured on the auth layer,
//! audited once (`tracing` target `iam_guard::audit`) and counted
//! ([`metrics`]).
//!
//! ```
//! use axum::{routing::get, Router};
//! use iam_guard::{ClaimsSource, JwtAuthGuardLayer, Principal, ScopeGuard};
//!
//! async fn list_students(who: Principal) -> String {
//!     format!("students visible to {}", who.user_id())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = JwtAuthGuardLayer::issuer("https://iam.example.com/realms/school")?
//!     .audience(["students-api"])
//!     .permissions(ClaimsSource::new());
//! let app: Router = Router::new()
//!     .route("/students", get(list_students).route_layer(ScopeGuard::read("students")))
//!     .layer(auth);
//! # let _ = app; Ok(()) }
//! ```
//!
//! The permission model (entities, scope groups, roles, actions, what each
//! guard answers) is explained with one worked example in the [`guide`]
//! (also `docs/model.md` in the repository); the pure types are in
//! [`model`].
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `jwks-http` | yes | fetching JWKS, OIDC discovery and the IAM's catalogue with reqwest + rustls; [`JwtAuthGuardLayer::issuer`], [`TrustedIssuer::discover`]; `RemoteSource`; `CatalogueFetcher::url` |
//! | `axum` | yes | extractors ([`Principal`], `Permissions`, `RecordAccess`, [`RequestContext`]), `permissions_endpoint`, `PermissionsEndpoint`, `ProtectedResource`, `ProtectedResourceMetadata::router` |
//! | `test-util` | no | [`test_util::TestIam`]: keys, token minting, a loopback IAM (tests only) |
//! | `redis` | no | several replicas on Redis: a shared permission cache, cross-instance invalidation, token revocation and the DPoP replay cache ([`replicas`]) |
//! | `rustls` | no | [`ClientCertificate::from_rustls`]: the client certificate of a rustls connection, for certificate-bound tokens |
//! | `openapi` | no | [`openapi::OpenApiSecurity`]: security schemes, each protected operation's security, `x-iam-guard` extension and refusals written into a utoipa OpenAPI document from the guards' declarations |
//! | `grpc` | no | tonic services: [`grpc::GrpcMethods`] (a requirement per gRPC method, undeclared methods denied), [`grpc::GrpcRequestExt`] (caller and permissions in a handler); refusals as gRPC status ([`ErrorRenderer::grpc`] needs no feature) |
//! | `full` | no | all of the above |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache_bound;
mod freshness;
mod macros;

pub mod access_matrix;
pub mod guard;
pub mod jwt;
pub mod metrics;
pub mod model;
pub mod permissions;
pub mod preset;
pub mod principal;
pub mod record_access;
pub mod rejection;
pub mod resource_metadata;
pub mod revocation;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod replicas;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub mod openapi;

/// The permission model explained for a newcomer, with one worked example
/// (the `docs/model.md` page of the repository).
pub mod guide {
    #![doc = include_str!("../docs/model.md")]
}

#[cfg(feature = "axum")]
#[doc(inline)]
pub use extract::{permissions_endpoint, Permissions, PermissionsEndpoint};
#[doc(inline)]
pub use guard::{
    auth::{JwtAuthGuard, JwtAuthGuardLayer, TrustedIssuer},
    context::RequestContext,
    field_filter::{FieldFilter, FieldFilterLayer},
    field_write::{FieldWriteGuard, FieldWriteGuardLayer},
    require::{
        ActionGuard, OAuthScopeGuard, PermissionGuard, RequirementGuard, RequirementGuardLayer,
        RoleGuard, ScopeGuard,
    },
};
#[cfg(feature = "axum")]
#[doc(inline)]
pub use guard::{field_filter::ReadView, protected::ProtectedResource};
#[cfg(feature = "jwks-http")]
#[doc(inline)]
pub use jwt::introspection::Introspector;
#[doc(inline)]
pub use jwt::verify::Algorithm;
#[doc(inline)]
pub use jwt::{
    certificate::ClientCertificate,
    dpop::{Dpop, DpopNonces},
    jwks::JwksFetcher,
    secret::SharedSecret,
    token::AuthScheme,
    verify::{TokenValidation, Verifier},
};
#[doc(inline)]
pub use model::{Catalogue, CompiledPermissions, Requirement, ScopeAccess};
#[cfg(feature = "jwks-http")]
#[doc(inline)]
pub use permissions::remote::RemoteSource;
#[doc(inline)]
pub use permissions::{
    oauth_scopes::OAuthScopesSource,
    source::{CatalogueSource, ClaimsSource, PermissionSource},
    union::UnionSource,
};
#[doc(inline)]
pub use preset::Preset;
#[doc(inline)]
pub use principal::{ClaimMapping, Principal, Role};
#[doc(inline)]
pub use record_access::{Access, DepartmentAccess, RecordAccess, RecordAccessPolicy};
#[doc(inline)]
pub use rejection::{ErrorCode, ErrorRenderer, Rejection};
#[doc(inline)]
pub use resource_metadata::ProtectedResourceMetadata;
#[doc(inline)]
pub use revocation::{Revocation, Revocations};

/// What most services import: `use iam_guard::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "grpc")]
    #[doc(no_inline)]
    pub use crate::grpc::{GrpcMethods, GrpcRequestExt};
    #[cfg(feature = "axum")]
    #[doc(no_inline)]
    pub use crate::{
        permissions_endpoint, Permissions, PermissionsEndpoint, ProtectedResource, ReadView,
    };
    #[doc(no_inline)]
    pub use crate::{
        ActionGuard, Algorithm, Catalogue, CatalogueSource, ClaimMapping, ClaimsSource,
        ErrorRenderer, FieldFilterLayer, FieldWriteGuardLayer, JwtAuthGuardLayer, OAuthScopeGuard,
        PermissionGuard, Preset, Principal, RecordAccess, RecordAccessPolicy, RequestContext,
        Requirement, RoleGuard, ScopeAccess, ScopeGuard, TrustedIssuer, UnionSource,
    };
}

// The README's Rust examples are compiled (and run) as doc tests so they
// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
