//! [`JwtAuthGuard`]: locate the token, verify it, admit the caller.

use std::{
    fmt,
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
        token::{TokenError, TokenOrigin},
        verify::{Attempt, VerifiedToken, Verifier},
    },
    metrics,
    principal::Principal,
    rejection::{ErrorCode, Rejection},
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

impl Config {
    /// The checks that follow a verified token; on success the request
    /// carries its context.
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
        RequestContext::admitted(policy, principal).plant(req.extensions_mut());
        Ok(())
    }

    /// The refusal of `req`, rendered, audited and counted.
    fn refuse<B, ResBody>(
        &self,
        req: &Request<B>,
        rejection: &Rejection,
        user: Option<&str>,
    ) -> Response<ResBody>
    where
        ResBody: From<Bytes>,
    {
        let mut scene =
            Scene::new(Guard::Auth, req.method(), route_of(req.extensions())).policy(&self.policy);
        if let Some(user) = user {
            scene = scene.user(user);
        }
        scene.deny(rejection)
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
                RequestContext::anonymous(config.policy.clone()).plant(req.extensions_mut());
                metrics::auth_anonymous();
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => {
                let res = config.refuse(&req, &Rejection::missing_token(), None);
                return refused(req, res, limit);
            }
            Err(e) => {
                let res = config.refuse(&req, &Rejection::from(e), None);
                return refused(req, res, limit);
            }
        };
        match config.issuers.verify_now(token) {
            Ok((issuer, Attempt::Verified(verified))) => {
                match config.admit(&mut req, issuer, &verified, origin) {
                    Ok(()) => {
                        metrics::auth_allowed();
                        ResponseFuture::inner(self.inner.call(req))
                    }
                    Err(rejection) => {
                        let user = Some(verified.identity.user_id.as_str());
                        let res = config.refuse(&req, &rejection, user);
                        refused(req, res, limit)
                    }
                }
            }
            Err(e) => {
                let res = config.refuse(&req, &Rejection::from(&e), None);
                refused(req, res, limit)
            }
            Ok((issuer, Attempt::NeedsKey(pending))) => {
                // The key must be fetched. The future owns the service, so
                // take the instance that was polled ready and leave a clone:
                // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let config = self.config.clone();
                let token = token.to_owned();
                ResponseFuture::boxed(Box::pin(async move {
                    let verifier = config.issuers.entry(issuer).trusted.verifier();
                    let verified = match verifier.verify_fetched(&token, pending).await {
                        Ok(v) => v,
                        Err(e) => {
                            let res = config.refuse(&req, &Rejection::from(&e), None);
                            return Ok(refuse_async(req, res, limit).await);
                        }
                    };
                    if let Err(rejection) = config.admit(&mut req, issuer, &verified, origin) {
                        let user = Some(verified.identity.user_id.as_str());
                        let res = config.refuse(&req, &rejection, user);
                        return Ok(refuse_async(req, res, limit).await);
                    }
                    metrics::auth_allowed();
                    inner.call(req).await
                }))
            }
        }
    }
}
