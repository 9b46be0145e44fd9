//! [`JwtAuthGuard`]: 401 unless the request carries a valid access token;
//! on success the caller's [`Principal`] is in the request extensions.
//!
//! Put it router-wide with `Router::layer`: it authenticates only. What a
//! route requires is checked by the per-route guards inside it.
//!
//! A repeat request with the same token is answered from the verified-token
//! cache (no parsing, no signature check); a token whose key is cached is
//! verified without awaiting; only a token with a new kid waits for the
//! JWKS fetch.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use iam_guard::{JwksFetcher, JwtAuthGuardLayer, Principal, TokenValidation, Verifier};
//!
//! async fn me(principal: Principal) -> String {
//!     format!("hello {}", principal.user_id())
//! }
//!
//! # fn build() -> Result<Router, Box<dyn std::error::Error>> {
//! let issuer = "https://iam.example.com/realms/school";
//! let verifier = Verifier::new(
//!     JwksFetcher::discover(issuer)?,
//!     TokenValidation::new(issuer).audience(["students-api"]),
//! );
//! let app = Router::new()
//!     .route("/me", get(me))
//!     .layer(JwtAuthGuardLayer::new(verifier).cookie("access_token").tenant_header("x-org"));
//! # Ok(app) }
//! # build().unwrap();
//! ```

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    jwt::{
        token::{TokenLocator, TokenOrigin},
        verify::{Attempt, VerifiedToken, Verifier, VerifyError},
    },
    permissions::{
        memo::{PermissionSlot, SlotConfig},
        source::PermissionSource,
    },
    principal::Principal,
    rejection::{AuditContext, ErrorCode, ErrorRenderer, Rejection},
};

pub use super::future::ResponseFuture;

/// Left in the extensions of a request that an optional JwtAuthGuard let
/// through without a token, with the guard's renderer.
#[derive(Debug, Clone)]
pub(crate) struct Anonymous(pub(crate) ErrorRenderer);

/// Applies [`JwtAuthGuard`]. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct JwtAuthGuardLayer {
    config: Arc<Config>,
}

struct Config {
    verifier: Verifier,
    locator: TokenLocator,
    tenant_header: Option<HeaderName>,
    renderer: ErrorRenderer,
    optional: bool,
    source: Option<Arc<dyn PermissionSource>>,
    super_user_bypass: bool,
    /// Built from the three fields above; shared by every request's slot.
    slot: Option<Arc<SlotConfig>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("verifier", &self.verifier)
            .field("locator", &self.locator)
            .field("tenant_header", &self.tenant_header)
            .field("renderer", &self.renderer)
            .field("optional", &self.optional)
            .field("permissions", &self.source.is_some())
            .field("super_user_bypass", &self.super_user_bypass)
            .finish()
    }
}

impl Config {
    fn rebuild_slot(&mut self) {
        self.slot = self.source.clone().map(|source| {
            Arc::new(SlotConfig {
                source,
                super_user_bypass: self.super_user_bypass,
                renderer: self.renderer.clone(),
            })
        });
    }
}

impl JwtAuthGuardLayer {
    /// Authenticates with `verifier`, reading `Authorization: Bearer`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            config: Arc::new(Config {
                verifier,
                locator: TokenLocator::default(),
                tenant_header: None,
                renderer: ErrorRenderer::default(),
                optional: false,
                source: None,
                super_user_bypass: false,
                slot: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::get_mut(&mut self.config).expect("builder methods run before the layer is cloned")
    }

    /// Also accept the token from cookie `name` (seeds 000/004). A request
    /// carrying both a bearer token and the cookie is a 400.
    ///
    /// # Panics
    ///
    /// Builder methods panic if called on a clone of a layer that is shared.
    pub fn cookie(mut self, name: &str) -> Self {
        self.config_mut().locator.set_cookie(name);
        self
    }

    /// Do not read `Authorization` (cookie-only sessions).
    pub fn no_bearer(mut self) -> Self {
        self.config_mut().locator.set_bearer(false);
        self
    }

    /// Require `X-XSRF-TOKEN` equal to the `xsrf_token` claim for cookie
    /// tokens on unsafe methods (default on; only applies with a cookie).
    pub fn xsrf(mut self, on: bool) -> Self {
        self.config_mut().locator.set_xsrf(on);
        self
    }

    /// Maximum token length in bytes (default 8 KiB); longer is a 401
    /// without parsing.
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.config_mut().locator.set_max_len(max);
        self
    }

    /// Require an active-tenant header (seed 003's `x-org`): missing is a
    /// 400 `TENANT_REQUIRED`, sent twice a 400 `invalid_request`, a tenant
    /// that is not among the caller's memberships a 403
    /// `TENANT_NOT_PERMITTED`.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name.
    pub fn tenant_header(mut self, name: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        self.config_mut().tenant_header = Some(name);
        self
    }

    /// How rejections are rendered (default JSON).
    pub fn error_renderer(mut self, renderer: ErrorRenderer) -> Self {
        let config = self.config_mut();
        config.renderer = renderer;
        config.rebuild_slot();
        self
    }

    /// Where the caller's permissions come from. Each admitted request gets
    /// a lazy, request-scoped slot: the source is called at most once per
    /// request, and only if a guard or extractor asks.
    pub fn permissions(mut self, source: impl PermissionSource) -> Self {
        let config = self.config_mut();
        config.source = Some(Arc::new(source));
        config.rebuild_slot();
        self
    }

    /// Let callers whose token flags them as super users (seed 004's
    /// `is_super_user`) pass every requirement guard. Off by default; every
    /// use is an audit event.
    pub fn super_user_bypass(mut self, on: bool) -> Self {
        let config = self.config_mut();
        config.super_user_bypass = on;
        config.rebuild_slot();
        self
    }

    /// Let requests without any token through without a `Principal`
    /// (handlers take `Option<Principal>`). A token that is sent must still
    /// be valid.
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// The verifier, for metrics.
    pub fn verifier(&self) -> &Verifier {
        &self.config.verifier
    }
}

impl<S> Layer<S> for JwtAuthGuardLayer {
    type Service = JwtAuthGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuthGuard {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Authenticates requests. See the [module docs](self).
#[derive(Clone)]
pub struct JwtAuthGuard<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for JwtAuthGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthGuard")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> JwtAuthGuard<S> {
    /// Wraps `inner`; see [`JwtAuthGuardLayer`] for the options.
    pub fn layer(verifier: Verifier) -> JwtAuthGuardLayer {
        JwtAuthGuardLayer::new(verifier)
    }

    crate::macros::define_inner_service_accessors!();
}

impl Config {
    /// The checks that follow a verified token, then the `Principal`.
    fn admit<B>(
        &self,
        req: &mut Request<B>,
        verified: &VerifiedToken,
        origin: TokenOrigin,
    ) -> Result<(), Rejection> {
        let identity = &verified.identity;
        self.locator.check_xsrf(
            origin,
            req.method(),
            req.headers(),
            identity.xsrf.as_deref(),
        )?;
        let active = match &self.tenant_header {
            None => None,
            Some(name) => {
                let mut values = req.headers().get_all(name).iter();
                let value = match (values.next(), values.next()) {
                    (Some(value), None) => value,
                    (None, _) => {
                        return Err(Rejection::new(
                            ErrorCode::TenantRequired,
                            format!("the {name} header is required"),
                        ))
                    }
                    // Two tenants are as ambiguous as two tokens: whoever
                    // reads the header after us may pick the one we did
                    // not check.
                    (Some(_), Some(_)) => {
                        return Err(Rejection::new(
                            ErrorCode::InvalidRequest,
                            format!("more than one {name} header was sent"),
                        ))
                    }
                };
                let tenant = value
                    .to_str()
                    .ok()
                    .and_then(|t| identity.memberships.get(t));
                match tenant {
                    Some(t) => Some(t.clone()),
                    None => {
                        return Err(Rejection::new(
                            ErrorCode::TenantNotPermitted,
                            format!("the caller is not a member of the tenant in {name}"),
                        ))
                    }
                }
            }
        };
        let principal = Principal::new(identity.clone(), active);
        if let Some(slot) = &self.slot {
            req.extensions_mut()
                .insert(PermissionSlot::new(slot.clone(), principal.clone()));
        }
        req.extensions_mut().insert(principal);
        Ok(())
    }

    fn reject<B, ResBody>(
        &self,
        req: &Request<B>,
        rejection: &Rejection,
        user: Option<&str>,
    ) -> Response<ResBody>
    where
        ResBody: From<Bytes>,
    {
        rejection.audit(&AuditContext {
            user,
            tenant: None,
            method: req.method(),
            route: req.uri().path(),
            requirement: None,
        });
        self.renderer.render(rejection).map(ResBody::from)
    }
}

fn rejection_of(e: &VerifyError) -> Rejection {
    match e {
        VerifyError::KeysUnavailable => {
            Rejection::iam_unavailable("the IAM's signing keys cannot be obtained")
        }
        other => Rejection::invalid_token(other.to_string()),
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuthGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let (token, origin) = match config.locator.locate(req.headers()) {
            Ok(Some(found)) => found,
            Ok(None) if config.optional => {
                // Guards further in must answer 401 here, not the 500 of a
                // missing auth layer: the marker tells them apart.
                req.extensions_mut()
                    .insert(Anonymous(config.renderer.clone()));
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => {
                let res = config.reject(&req, &Rejection::missing_token(), None);
                return ResponseFuture::ready(res);
            }
            Err(rejection) => return ResponseFuture::ready(config.reject(&req, &rejection, None)),
        };
        match config.verifier.verify_now(token) {
            Ok(Attempt::Verified(verified)) => match config.admit(&mut req, &verified, origin) {
                Ok(()) => ResponseFuture::inner(self.inner.call(req)),
                Err(rejection) => ResponseFuture::ready(config.reject(
                    &req,
                    &rejection,
                    Some(&verified.identity.user_id),
                )),
            },
            Err(e) => ResponseFuture::ready(config.reject(&req, &rejection_of(&e), None)),
            Ok(Attempt::NeedsKey(pending)) => {
                // The key must be fetched. The future owns the service, so
                // take the instance that was polled ready and leave a clone:
                // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let config = self.config.clone();
                let token = token.to_owned();
                ResponseFuture::boxed(Box::pin(async move {
                    let verified = match config.verifier.verify_fetched(&token, pending).await {
                        Ok(v) => v,
                        Err(e) => return Ok(config.reject(&req, &rejection_of(&e), None)),
                    };
                    if let Err(rejection) = config.admit(&mut req, &verified, origin) {
                        let user = Some(verified.identity.user_id.as_str());
                        return Ok(config.reject(&req, &rejection, user));
                    }
                    inner.call(req).await
                }))
            }
        }
    }
}
