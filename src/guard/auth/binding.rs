//! Sender-constrained tokens at the guard: a token bound to a DPoP key
//! (`cnf.jkt`) or a client certificate (`cnf["x5t#S256"]`) is accepted only
//! from the party that holds the key or the certificate, whatever scheme it
//! was sent with, and a guard that requires DPoP refuses bearer tokens.

use http::Request;

use super::layer::Config;
use crate::{
    jwt::{
        certificate,
        dpop::{DpopError, ReplayFuture},
        token::TokenOrigin,
    },
    principal::Confirmation,
    rejection::Rejection,
};

impl Config {
    /// The binding checks of a verified token. A [`ReplayFuture`] comes
    /// back when the DPoP replay cache must be awaited before the request
    /// may pass.
    pub(super) fn check_binding<B>(
        &self,
        req: &Request<B>,
        token: &str,
        origin: TokenOrigin,
        confirmation: &Confirmation,
    ) -> Result<Option<ReplayFuture>, Rejection> {
        if let Some(bound_to) = &confirmation.x5t_s256 {
            certificate::check(bound_to, req.extensions())
                .map_err(|e| Rejection::from(&e).presented(origin.scheme()))?;
        }
        let dpop_error = |e: DpopError| self.dpop_rejection(&e, origin);
        match (&self.dpop, origin) {
            (Some(dpop), TokenOrigin::Dpop) => dpop
                .check(
                    req.method(),
                    req.uri(),
                    req.headers(),
                    token,
                    confirmation.jkt.as_deref(),
                )
                .map_err(dpop_error),
            // The locator reads the DPoP scheme only when DPoP is on.
            (None, TokenOrigin::Dpop) => Err(dpop_error(DpopError::DpopRequired)),
            (Some(dpop), _) if dpop.is_required() => Err(dpop_error(DpopError::DpopRequired)),
            // Bound to a key it did not prove: whoever sent it may have
            // stolen it. Refused with DPoP on or off.
            _ if confirmation.jkt.is_some() => Err(dpop_error(DpopError::BoundTokenAsBearer)),
            _ => Ok(None),
        }
    }

    /// The refusal for `e`, with a fresh nonce when one is needed.
    pub(super) fn dpop_rejection(&self, e: &DpopError, origin: TokenOrigin) -> Rejection {
        let rejection = Rejection::from(e).presented(origin.scheme());
        match (e, &self.dpop) {
            (DpopError::NonceRequired, Some(dpop)) => match dpop.fresh_nonce() {
                Some(nonce) => rejection.with_dpop_nonce(nonce),
                None => rejection,
            },
            _ => rejection,
        }
    }
}
