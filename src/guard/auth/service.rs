//! [`JwtAuthGuard`]: locate the token, verify it, admit the caller.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::layer::{Config, JwtAuthGuardLayer};
use crate::{
    guard::{
        body::{refuse_async, refused},
        context::RequestContext,
        deny::{route_of, Guard, Scene},
        future::ResponseFuture,
    },
    jwt::{
        dpop::{DpopError, ReplayFuture},
        token::{token_text, TokenError, TokenOrigin},
        verify::{Attempt, VerifiedToken, Verifier},
    },
    metrics,
    principal::Principal,
    rejection::{is_grpc, ErrorCode, Rejection},
};

/// Authenticates requests. See the [module docs](super).
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
    pub(super) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// A layer authenticating with `verifier`; see [`JwtAuthGuardLayer`]
    /// for the options.
    pub fn layer(verifier: Verifier) -> JwtAuthGuardLayer {
        JwtAuthGuardLayer::new(verifier)
    }

    crate::macros::define_inner_service_accessors!();
}

/// What a token is, as far as can be told without awaiting.
enum Lookup<'a> {
    /// Verified: by a cached verification, a cached key or a cached
    /// introspection answer; with the index of its issuer, and the token
    /// as text unless it was found by its bytes in the verified-token
    /// cache (whose entry holds the same text).
    Verified(usize, Arc<VerifiedToken>, Option<&'a str>),
    /// Refused outright.
    Refused(Rejection),
    /// Keys must be fetched, or the IAM asked about an opaque token.
    Pending(PendingLookup, &'a str),
}

type PendingLookup =
    Pin<Box<dyn Future<Output = Result<(usize, Arc<VerifiedToken>), Rejection>> + Send>>;

impl Config {
    /// Finds out what `token` (as located, not yet known to be text) is: a
    /// JWT verified locally, or an opaque token introspected (see
    /// [`introspection`](JwtAuthGuardLayer::introspection)).
    fn lookup<'a>(&self, token: &'a [u8]) -> Lookup<'a> {
        #[cfg(feature = "jwks-http")]
        if let Some(introspection) = &self.introspection {
            // The token's shape says whether it is a JWT or opaque, so a
            // guard that introspects reads every token as text first.
            let token = match token_text(token) {
                Ok(token) => token,
                Err(e) => return Lookup::Refused(Rejection::from(e)),
            };
            if !introspection.takes(token) {
                return self.verify_locally(token.as_bytes(), Some(token));
            }
            let issuer = self.issuers.index_of(introspection.introspector.issuer());
            return match introspection.introspector.cached(token) {
                Some(Ok(verified)) => Lookup::Verified(issuer, verified, Some(token)),
                Some(Err(e)) => Lookup::Refused(Rejection::from(&e)),
                None => {
                    let introspector = introspection.introspector.clone();
                    let owned = token.to_owned();
                    Lookup::Pending(
                        Box::pin(async move {
                            introspector
                                .introspect(&owned)
                                .await
                                .map(|verified| (issuer, verified))
                                .map_err(|e| Rejection::from(&e))
                        }),
                        token,
                    )
                }
            };
        }
        self.verify_locally(token, None)
    }

    /// A JWT: its cached verification, or one with a cached key, or the
    /// keys to fetch. `text` is the token as text when already checked.
    fn verify_locally<'a>(&self, token: &'a [u8], text: Option<&'a str>) -> Lookup<'a> {
        // A repeat token is found by its bytes: only verified tokens are
        // cached, so a hit is text without checking it again.
        if let Some((issuer, verified)) = self.issuers.cached(token) {
            return Lookup::Verified(issuer, verified, text);
        }
        let token = match text.map_or_else(|| token_text(token), Ok) {
            Ok(token) => token,
            Err(e) => return Lookup::Refused(Rejection::from(e)),
        };
        match self.issuers.verify_uncached(token) {
            Ok((issuer, Attempt::Verified(verified))) => {
                Lookup::Verified(issuer, verified, Some(token))
            }
            Err(e) => Lookup::Refused(Rejection::from(&e)),
            Ok((issuer, Attempt::NeedsKey(pending))) => {
                let verifier = self.issuers.entry(issuer).trusted.verifier().clone();
                let owned = token.to_owned();
                Lookup::Pending(
                    Box::pin(async move {
                        verifier
                            .verify_fetched(&owned, pending)
                            .await
                            .map(|verified| (issuer, verified))
                            .map_err(|e| Rejection::from(&e))
                    }),
                    token,
                )
            }
        }
    }

    /// The checks that follow a verified token: its binding first (which
    /// needs the token; the rest does not), then [`admit`](Self::admit).
    /// A [`ReplayFuture`] comes back when the DPoP replay cache must still
    /// be awaited.
    fn admit_bound<B>(
        &self,
        req: &mut Request<B>,
        issuer: usize,
        verified: &VerifiedToken,
        token: &str,
        origin: TokenOrigin,
    ) -> Result<Option<ReplayFuture>, Rejection> {
        let replay = self.check_binding(req, token, origin, &verified.identity.confirmation)?;
        self.admit(req, issuer, verified, origin)?;
        Ok(replay)
    }

    /// The checks after the binding; on success the request carries its
    /// context.
    fn admit<B>(
        &self,
        req: &mut Request<B>,
        issuer: usize,
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
                    // An empty value names no tenant, as if none was sent.
                    (Some(value), None) if !value.as_bytes().trim_ascii().is_empty() => value,
                    (Some(_), None) | (None, _) => {
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
        if let Some(revocations) = &self.revocations {
            let tenant = active.as_deref().or(identity.tenant.as_deref());
            revocations.check(identity, tenant, verified.exp, &verified.revocation_checked)?;
        }
        let principal = Principal::new(identity.clone(), active);
        let policy = self.issuers.entry(issuer).policy.clone();
        let grpc = is_grpc(req.headers());
        RequestContext::admitted(policy, principal, origin.scheme(), grpc)
            .plant(req.extensions_mut());
        Ok(())
    }

    /// The refusal of `req`, rendered, audited and counted.
    fn refuse<B, ResBody>(
        &self,
        req: &Request<B>,
        rejection: &Rejection,
        user: Option<&str>,
        origin: Option<TokenOrigin>,
    ) -> Response<ResBody>
    where
        ResBody: From<Bytes>,
    {
        let mut scene = Scene::new(Guard::Auth, req.method(), route_of(req.extensions()))
            .policy(&self.policy)
            .grpc(is_grpc(req.headers()));
        if let Some(user) = user {
            scene = scene.user(user);
        }
        if let Some(origin) = origin {
            scene = scene.presented(origin.scheme());
        }
        scene.deny(rejection)
    }

    /// The refusal of a proof the replay cache did not admit.
    fn replay_refusal(
        &self,
        answer: Result<bool, crate::jwt::dpop::ReplayCacheError>,
    ) -> Option<Rejection> {
        let e = match answer {
            Ok(true) => return None,
            Ok(false) => DpopError::Replayed,
            Err(e) => {
                tracing::warn!(target: "iam_guard::dpop", error = %e, "DPoP replay cache failed");
                DpopError::ReplayCacheUnavailable
            }
        };
        Some(self.dpop_rejection(&e, TokenOrigin::Dpop))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuthGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &*self.config;
        let limit = config.policy.drain_limit;
        let (token, origin) = match config.locator.locate(req.headers()) {
            Ok(Some(found)) => found,
            // Another scheme is not a bearer token at all: to an optional
            // guard the request is as anonymous as one without the header.
            Ok(None) | Err(TokenError::OtherScheme) if config.optional => {
                RequestContext::anonymous(config.policy.clone(), is_grpc(req.headers()))
                    .plant(req.extensions_mut());
                metrics::auth_anonymous();
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => {
                let res = config.refuse(&req, &Rejection::missing_token(), None, None);
                return refused(req, res, limit);
            }
            Err(e) => {
                let res = config.refuse(&req, &Rejection::from(e), None, None);
                return refused(req, res, limit);
            }
        };
        let (issuer, verified, text) = match config.lookup(token) {
            Lookup::Verified(issuer, verified, text) => (issuer, verified, text),
            Lookup::Refused(rejection) => {
                let res = config.refuse(&req, &rejection, None, Some(origin));
                return refused(req, res, limit);
            }
            Lookup::Pending(pending, token) => {
                // Keys must be fetched or the IAM asked; the token is
                // needed after that for the binding checks.
                let mut inner = self.take_inner();
                let config = self.config.clone();
                let token = token.to_owned();
                return ResponseFuture::boxed(Box::pin(async move {
                    let (issuer, verified) = match pending.await {
                        Ok(found) => found,
                        Err(rejection) => {
                            let res = config.refuse(&req, &rejection, None, Some(origin));
                            return Ok(refuse_async(req, res, limit).await);
                        }
                    };
                    let user = Some(verified.identity.user_id.as_str());
                    let refusal =
                        match config.admit_bound(&mut req, issuer, &verified, &token, origin) {
                            Ok(None) => None,
                            Ok(Some(replay)) => config.replay_refusal(replay.await),
                            Err(rejection) => Some(rejection),
                        };
                    if let Some(rejection) = refusal {
                        let res = config.refuse(&req, &rejection, user, Some(origin));
                        return Ok(refuse_async(req, res, limit).await);
                    }
                    metrics::auth_allowed();
                    inner.call(req).await
                }));
            }
        };
        // Found by its bytes in the cache: the entry's text is the token's.
        let token = text.unwrap_or(&verified.token);
        // The token borrows the request's headers: its last use is the
        // binding check, before the request is changed.
        let bound = config.check_binding(&req, token, origin, &verified.identity.confirmation);
        let admitted = bound.and_then(|replay| {
            config
                .admit(&mut req, issuer, &verified, origin)
                .map(|()| replay)
        });
        match admitted {
            Ok(None) => {
                metrics::auth_allowed();
                ResponseFuture::inner(self.inner.call(req))
            }
            Ok(Some(replay)) => {
                let mut inner = self.take_inner();
                let config = self.config.clone();
                ResponseFuture::boxed(Box::pin(async move {
                    if let Some(rejection) = config.replay_refusal(replay.await) {
                        let user = Some(verified.identity.user_id.as_str());
                        let res = config.refuse(&req, &rejection, user, Some(origin));
                        return Ok(refuse_async(req, res, limit).await);
                    }
                    metrics::auth_allowed();
                    inner.call(req).await
                }))
            }
            Err(rejection) => {
                let user = Some(verified.identity.user_id.as_str());
                let res = config.refuse(&req, &rejection, user, Some(origin));
                refused(req, res, limit)
            }
        }
    }
}

impl<S: Clone> JwtAuthGuard<S> {
    /// The inner service for a future that outlives this call. The future
    /// owns the service, so take the instance that was polled ready and
    /// leave a clone:
    /// https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
    fn take_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}
