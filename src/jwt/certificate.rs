//! Certificate-bound access tokens (RFC 8705 §3): a token whose
//! `cnf["x5t#S256"]` names a client certificate is accepted only on a
//! mutual-TLS connection authenticated with that certificate.
//!
//! TLS ends in your server, not in a Tower layer, so the guard reads the
//! certificate from a [`ClientCertificate`] request extension your TLS
//! acceptor adds to every request of a connection. With rustls (feature
//! `rustls`), [`ClientCertificate::from_rustls`] reads it from the
//! handshake:
//!
//! ```
//! # #[cfg(feature = "rustls")]
//! # fn per_connection(tls: &rustls::ServerConnection, router: axum::Router) -> axum::Router {
//! use iam_guard::ClientCertificate;
//!
//! // After the handshake, once per connection:
//! match ClientCertificate::from_rustls(tls) {
//!     Some(certificate) => router.layer(axum::Extension(certificate)),
//!     None => router, // no client certificate: bound tokens are refused
//! }
//! # }
//! ```
//!
//! The README's "Certificate-bound tokens" section shows a whole
//! tokio-rustls + hyper server. Behind a proxy that terminates TLS, build
//! the extension from the certificate the proxy forwards with
//! [`ClientCertificate::from_der`], and only from a proxy you trust to
//! strip that header from clients.
//!
//! A token without `x5t#S256` is unaffected; the extension is not needed
//! for it.

use aws_lc_rs::digest;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http::Extensions;
use subtle::ConstantTimeEq;

/// The client certificate of the TLS connection a request came on, as a
/// request extension. See the [module docs](self).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate {
    thumbprint: [u8; 32],
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientCertificate")
            .field(&self.thumbprint_base64url())
            .finish()
    }
}

impl ClientCertificate {
    /// The certificate in DER, as the TLS handshake carried it (the
    /// end-entity certificate, first of the chain).
    pub fn from_der(der: &[u8]) -> Self {
        let mut thumbprint = [0; 32];
        thumbprint.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
        Self { thumbprint }
    }

    /// The end-entity certificate the client authenticated a rustls
    /// connection with, once its handshake is complete; `None` when the
    /// client sent none.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn from_rustls(connection: &rustls::CommonState) -> Option<Self> {
        let chain = connection.peer_certificates()?;
        chain.first().map(|der| Self::from_der(der.as_ref()))
    }

    /// SHA-256 of the DER certificate.
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    /// The thumbprint as a token's `cnf["x5t#S256"]` carries it.
    pub fn thumbprint_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }
}

/// A certificate-bound token without its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateBindingError {
    /// The connection carries no client certificate.
    #[error("the access token is bound to a client certificate and none was presented")]
    Missing,
    /// The connection's certificate is another one.
    #[error("the access token is bound to another client certificate")]
    Mismatch,
}

/// Checks the binding of a token to `x5t#S256` against the connection's
/// certificate in `extensions`.
pub(crate) fn check(
    bound_to: &[u8; 32],
    extensions: &Extensions,
) -> Result<(), CertificateBindingError> {
    let presented = extensions
        .get::<ClientCertificate>()
        .ok_or(CertificateBindingError::Missing)?;
    if bool::from(presented.thumbprint.ct_eq(bound_to)) {
        Ok(())
    } else {
        Err(CertificateBindingError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bound_certificate_passes() {
        let ours = ClientCertificate::from_der(b"our certificate");
        let theirs = ClientCertificate::from_der(b"their certificate");
        let mut extensions = Extensions::new();
        assert_eq!(
            check(ours.thumbprint(), &extensions),
            Err(CertificateBindingError::Missing)
        );
        extensions.insert(theirs);
        assert_eq!(
            check(ours.thumbprint(), &extensions),
            Err(CertificateBindingError::Mismatch)
        );
        extensions.insert(ours);
        assert_eq!(check(ours.thumbprint(), &extensions), Ok(()));
        assert_eq!(ours.thumbprint_base64url().len(), 43);
    }
}
