//! [`RequestContext`]: the one value JwtAuthGuard plants in every request
//! it admits, and the only thing guards, extractors and the permissions
//! endpoint read.
//!
//! It carries the caller's [`Principal`] (none when an optional auth layer
//! let a request without a token through), the lazy once-per-request
//! permission cell, what the auth layer was configured with (renderer,
//! super-user bypass, permission source) and, once a requirement guard has
//! seen it, the route's [`Requirement`]. It is one reference count to
//! clone.
//!
//! Outside axum (a plain `tower::Service`, tonic), read it with
//! [`RequestContext::from_extensions`]:
//!
//! ```
//! use http::Request;
//! use iam_guard::RequestContext;
//!
//! fn caller<B>(req: &Request<B>) -> Option<&str> {
//!     let context = RequestContext::from_extensions(req.extensions())?;
//!     context.principal().map(|p| p.user_id())
//! }
//! # let _ = caller::<()>;
//! ```

use std::{
    any::Any,
    fmt,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use bytes::Bytes;

use http::Extensions;

use crate::{
    jwt::token::AuthScheme,
    model::{CompiledPermissions, Requirement},
    permissions::{
        memo::PermissionCell,
        source::{PermissionError, PermissionSource},
    },
    principal::Principal,
    record_access::RecordAccessPolicy,
    rejection::{ErrorRenderer, Schemes},
    resource_metadata::ResourceMetadataUrl,
};

/// What an auth layer was configured with, shared by every request it
/// admits: set once where the layer is built, never per request.
#[derive(Clone)]
pub(crate) struct Policy {
    pub(crate) renderer: ErrorRenderer,
    pub(crate) super_user_bypass: bool,
    pub(crate) source: Option<Arc<dyn PermissionSource>>,
    /// How much of a refused request's unread body is read and discarded
    /// so the connection can serve the next request.
    pub(crate) drain_limit: usize,
    /// Named in every `WWW-Authenticate` challenge (RFC 9728 §5.1).
    pub(crate) resource_metadata: Option<ResourceMetadataUrl>,
    /// The schemes challenges name; `None`: `Bearer` alone.
    pub(crate) schemes: Option<Schemes>,
    /// How far the `RecordAccess` of a request this layer admits reaches,
    /// unless the request carries a policy of its own.
    pub(crate) record_access: Option<RecordAccessPolicy>,
}

/// The default for [`Policy::drain_limit`]: 64 KiB.
pub(crate) const DEFAULT_DRAIN_LIMIT: usize = 64 * 1024;

impl Default for Policy {
    fn default() -> Self {
        Self {
            renderer: ErrorRenderer::default(),
            super_user_bypass: false,
            source: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            resource_metadata: None,
            schemes: None,
            record_access: None,
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("renderer", &self.renderer)
            .field("super_user_bypass", &self.super_user_bypass)
            .field("permissions", &self.source.is_some())
            .field("drain_limit", &self.drain_limit)
            .field("resource_metadata", &self.resource_metadata)
            .field("schemes", &self.schemes)
            .field("record_access", &self.record_access)
            .finish()
    }
}

/// The request-scoped context of an admitted request. See the
/// [module docs](self).
#[derive(Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<Policy>,
    principal: Option<Principal>,
    /// How the token was presented; `None` for an anonymous request.
    scheme: Option<AuthScheme>,
    /// The request is a gRPC call: refusals are answered as gRPC status
    /// unless a custom renderer is configured.
    grpc: bool,
    permissions: PermissionCell,
    /// The first requirement a route guard recorded: with guards stacked
    /// on one route, the outermost one's.
    requirement: OnceLock<Arc<Requirement>>,
    /// What a ReadView wrote already filtered, for FieldFilter to vouch
    /// for (the first response written; a later one is scanned).
    prefiltered: OnceLock<Prefiltered>,
    /// The configuration of the FieldFilter nearest the handler (erased,
    /// as in [`Prefiltered::filter`]), for a ReadView to filter by. Kept
    /// here rather than as a request extension: one more extension than
    /// the router's own makes the extension map grow on every request.
    filter_plan: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
}

/// A response body a `ReadView` serialized already filtered, for
/// `FieldFilter` to vouch for instead of scanning it (see
/// `field_filter::prefiltered`, which checks it).
pub(crate) struct Prefiltered {
    /// The body as written: kept alive here, so that no other buffer can
    /// take its address while the response is on its way.
    pub(crate) body: Bytes,
    pub(crate) permissions: Arc<CompiledPermissions>,
    /// The filter configuration it filtered by; erased here so that the
    /// context does not depend on the filter.
    pub(crate) filter: Arc<dyn Any + Send + Sync>,
    pub(crate) entity_from: EntityFrom,
    /// Top-level members left out, for the filtered-groups count.
    pub(crate) removed: u64,
}

/// Where the entity a `ReadView` filtered for came from.
// Made only by ReadView (feature `axum`).
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntityFrom {
    /// The route's requirement (recorded in the request context).
    Requirement,
    /// The filter's configuration (`FieldFilterLayer::entity`).
    Plan,
}

/// The mark of [`RequestContext::ask_for_it_on_the_response`].
#[derive(Clone, Copy, Debug)]
struct WantedOnResponse;

/// The extension key: a private type, so nothing outside the crate can
/// plant or replace a context.
#[derive(Clone)]
struct Planted(RequestContext);

/// Why a request's permissions cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoPermissions {
    /// The request carries no token (an optional auth layer let it
    /// through): there is no caller to load permissions for.
    #[error("the request is anonymous")]
    Anonymous,
    /// The auth layer has no permission source: a wiring bug.
    #[error("no permission source is configured: add JwtAuthGuardLayer::permissions(..)")]
    NoSource,
    /// The source failed.
    #[error(transparent)]
    Unavailable(PermissionError),
}

impl RequestContext {
    /// The context of a caller whose token was verified.
    pub(crate) fn admitted(
        policy: Arc<Policy>,
        principal: Principal,
        scheme: AuthScheme,
        grpc: bool,
    ) -> Self {
        Self::new(policy, Some(principal), Some(scheme), grpc)
    }

    /// The context of a request an optional auth layer let through without
    /// a token.
    pub(crate) fn anonymous(policy: Arc<Policy>, grpc: bool) -> Self {
        Self::new(policy, None, None, grpc)
    }

    fn new(
        policy: Arc<Policy>,
        principal: Option<Principal>,
        scheme: Option<AuthScheme>,
        grpc: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                policy,
                principal,
                scheme,
                grpc,
                permissions: PermissionCell::default(),
                requirement: OnceLock::new(),
                prefiltered: OnceLock::new(),
                filter_plan: Mutex::new(None),
            }),
        }
    }

    /// Puts this context in `extensions` (a request's, or a response's so
    /// that a layer outside the route can read it).
    pub(crate) fn plant(&self, extensions: &mut Extensions) {
        extensions.insert(Planted(self.clone()));
    }

    /// Asks the guards inside to plant the context in the response too: a
    /// FieldFilter outside the auth layer, which the request reached
    /// before any context existed, marks it so. Without the mark nothing
    /// outside needs it there, and the response's extensions stay empty.
    pub(crate) fn ask_for_it_on_the_response(extensions: &mut Extensions) {
        extensions.insert(WantedOnResponse);
    }

    /// Whether a layer outside asked for the context on the response.
    pub(crate) fn wanted_on_response(extensions: &Extensions) -> bool {
        extensions.get::<WantedOnResponse>().is_some()
    }

    /// The context JwtAuthGuard planted, if it ran.
    pub fn from_extensions(extensions: &Extensions) -> Option<&Self> {
        extensions.get::<Planted>().map(|planted| &planted.0)
    }

    /// The caller; `None` for a request without a token that an optional
    /// auth layer let through.
    pub fn principal(&self) -> Option<&Principal> {
        self.inner.principal.as_ref()
    }

    /// How the caller presented its token: [`AuthScheme::Dpop`] when it
    /// came with a valid proof of the key it is bound to; `None` for an
    /// anonymous request.
    pub fn auth_scheme(&self) -> Option<AuthScheme> {
        self.inner.scheme
    }

    /// Whether this caller passes every requirement and field guard as a
    /// super user: the token's flag AND the auth layer's opt-in.
    pub fn bypasses(&self) -> bool {
        self.inner.policy.super_user_bypass
            && self
                .inner
                .principal
                .as_ref()
                .is_some_and(Principal::is_super_user)
    }

    /// The route's requirement, once a requirement guard has run.
    pub fn requirement(&self) -> Option<&Requirement> {
        self.inner.requirement.get().map(|r| &**r)
    }

    /// The caller's compiled permissions, loaded on first use and memoized
    /// for the rest of the request.
    ///
    /// # Errors
    ///
    /// See [`NoPermissions`]; a failed load is memoized too, so a request
    /// does not ask a failing IAM once per guard.
    pub async fn permissions(&self) -> Result<Arc<CompiledPermissions>, NoPermissions> {
        let (source, principal) = self.source_and_caller()?;
        self.inner
            .permissions
            .get(source, principal)
            .await
            .map_err(NoPermissions::Unavailable)
    }

    /// The permissions if they are loaded or can be had without waiting;
    /// `None` means: await [`permissions`](Self::permissions).
    pub(crate) fn permissions_now(
        &self,
    ) -> Option<Result<Arc<CompiledPermissions>, NoPermissions>> {
        let (source, principal) = match self.source_and_caller() {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let loaded = self.inner.permissions.load_now(source, principal)?;
        Some(loaded.clone().map_err(NoPermissions::Unavailable))
    }

    fn source_and_caller(&self) -> Result<(&dyn PermissionSource, &Principal), NoPermissions> {
        let principal = self.principal().ok_or(NoPermissions::Anonymous)?;
        let source = self
            .inner
            .policy
            .source
            .as_deref()
            .ok_or(NoPermissions::NoSource)?;
        Ok((source, principal))
    }

    /// Records the route's requirement; the first one recorded stays.
    pub(crate) fn record(&self, requirement: &Arc<Requirement>) {
        let _ = self.inner.requirement.set(requirement.clone());
    }

    /// Records the body a ReadView wrote already filtered; the first one
    /// recorded stays.
    #[cfg(feature = "axum")]
    pub(crate) fn record_prefiltered(&self, stamp: Prefiltered) {
        let _ = self.inner.prefiltered.set(stamp);
    }

    /// The body a ReadView wrote already filtered, if one did.
    pub(crate) fn prefiltered(&self) -> Option<&Prefiltered> {
        self.inner.prefiltered.get()
    }

    /// Records the configuration of a FieldFilter the request passes
    /// inside the auth layer. Filters run outermost first, so the last one
    /// recorded is the one nearest the handler.
    pub(crate) fn record_filter_plan(&self, plan: Arc<dyn Any + Send + Sync>) {
        *self
            .inner
            .filter_plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(plan);
    }

    /// The configuration of the FieldFilter nearest the handler, if one
    /// inside the auth layer recorded it.
    // Read only by ReadView (feature `axum`).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn filter_plan(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.inner
            .filter_plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Whether the request is a gRPC call (its `content-type`).
    pub(crate) fn is_grpc(&self) -> bool {
        self.inner.grpc
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("principal", &self.inner.principal)
            .field("permissions", &self.inner.permissions)
            .field("requirement", &self.requirement())
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// The caller of a request JwtAuthGuard admitted with a token; a
    /// shorthand for [`RequestContext::from_extensions`] and
    /// [`RequestContext::principal`].
    pub fn from_extensions(extensions: &Extensions) -> Option<&Self> {
        RequestContext::from_extensions(extensions)?.principal()
    }
}
