//! Certificate-bound access tokens (RFC 8705 §3) over a real mutual-TLS
//! handshake: rustls (tokio-rustls) terminates TLS on a loopback port,
//! asks for a client certificate signed by a test CA without requiring one,
//! and hands the connection's certificate to the guard as a
//! [`ClientCertificate`] extension; reqwest is the client, with or without
//! a certificate of its own.
//!
//! - A token whose `cnf["x5t#S256"]` is the SHA-256 of client certificate
//!   A's DER (computed here with aws-lc-rs, not with the library) passes on
//!   a connection authenticated with A, and is refused `invalid_token` with
//!   certificate B or with no certificate at all.
//! - A token bound to nothing passes with and without a certificate.
//! - A malformed `x5t#S256` is refused whatever the connection.
//! - A certificate the CA did not sign never gets as far as the guard.
//!
//! [`serve_mutual_tls`] is the serving loop the README quotes.
#![cfg(all(feature = "rustls", feature = "test-util"))]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use aws_lc_rs::digest;
use axum::{routing::get, Extension, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::Answer;
use http::StatusCode;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use iam_guard::{test_util::TestIam, ClientCertificate, JwtAuthGuardLayer, Principal};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Serves `app` over TLS on `listener`, one task per connection, and puts
/// the connection's client certificate, when the client presented one, in
/// every request of that connection as a [`ClientCertificate`] extension:
/// what the guard checks a certificate-bound token's `cnf["x5t#S256"]`
/// against.
///
/// `tls` decides which client certificates are acceptable (see
/// [`tls_config`]: any certificate signed by your CA, or none).
async fn serve_mutual_tls(listener: TcpListener, tls: Arc<ServerConfig>, app: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            // Out of file descriptors, say: pause rather than spin, and
            // try again once connections have closed.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A failed handshake (a certificate the CA did not sign, a
            // client that hung up) ends this connection and nothing else.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            // The handshake is complete: the certificate, if any, is known
            // and cannot change for the life of the connection.
            let (_, connection) = stream.get_ref();
            let app = match ClientCertificate::from_rustls(connection) {
                Some(certificate) => app.layer(Extension(certificate)),
                // No certificate: bound tokens are refused, others pass.
                None => app,
            };
            let service = TowerToHyperService::new(app);
            // The connection's errors (a client resetting it) are its own.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The server's TLS configuration: `certificate` and `key` for itself, and
/// client certificates verified against `ca`, asked for but optional, so
/// that clients without one still reach the guard (and bearer tokens still
/// work for them). The aws-lc-rs provider is named, not taken from the
/// process: another crate in the build may enable ring too.
fn tls_config(
    ca: CertificateDer<'static>,
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca).expect("the CA certificate is well-formed");
    let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .expect("a root store with the CA");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_client_cert_verifier(clients)
        .with_single_cert(vec![certificate], key)
        .expect("the server key matches its certificate");
    Arc::new(config)
}

// ---------------------------------------------------------------------------
// The test PKI.
// ---------------------------------------------------------------------------

/// A certificate and its key, in DER and PEM.
struct Credential {
    der: CertificateDer<'static>,
    /// Certificate then PKCS#8 key, as `reqwest::Identity::from_pem` reads
    /// them.
    pem: String,
    key: PrivatePkcs8KeyDer<'static>,
}

/// A CA, a server certificate for `localhost` and 127.0.0.1, two client
/// certificates (A and B) the CA signed, and one it did not (signed by
/// another CA).
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Credential,
    a: Credential,
    b: Credential,
    stranger: Credential,
}

fn new_ca(name: &str) -> (Issuer<'static, KeyPair>, rcgen::Certificate) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let certificate = params.self_signed(&key).expect("a self-signed CA");
    (Issuer::new(params, key), certificate)
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> Credential {
    let key = KeyPair::generate().expect("a key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("valid names");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let certificate = params.signed_by(&key, issuer).expect("signed");
    Credential {
        der: certificate.der().clone(),
        pem: format!("{}{}", certificate.pem(), key.serialize_pem()),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

impl Pki {
    fn new() -> Self {
        let (issuer, ca) = new_ca("iam-guard test CA");
        let client = |name| issue(&issuer, &[], name, ExtendedKeyUsagePurpose::ClientAuth);
        let (other_issuer, _) = new_ca("another CA");
        Self {
            server: issue(
                &issuer,
                &["localhost", "127.0.0.1"],
                "localhost",
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            a: client("client-a"),
            b: client("client-b"),
            stranger: issue(
                &other_issuer,
                &[],
                "client-a",
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
        }
    }
}

/// `cnf["x5t#S256"]` for `certificate`: the unpadded base64url SHA-256 of
/// its DER (RFC 8705 §3.1), computed here rather than by the library.
fn x5t_s256(certificate: &CertificateDer<'_>) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, certificate.as_ref()))
}

// ---------------------------------------------------------------------------
// The server and its clients.
// ---------------------------------------------------------------------------

/// `/me` behind the guard, served with [`serve_mutual_tls`].
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    ca_pem: String,
}

async fn whoami(p: Principal) -> String {
    format!("{}|bound={}", p.user_id(), p.is_sender_constrained())
}

async fn start(iam: &TestIam, pki: &Pki) -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/me",
            get(move |p: Principal| {
                counted.fetch_add(1, Ordering::SeqCst);
                whoami(p)
            }),
        )
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let tls = tls_config(
        pki.ca_der.clone(),
        pki.server.der.clone(),
        PrivateKeyDer::Pkcs8(pki.server.key.clone_key()),
    );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(serve_mutual_tls(listener, tls, app));
    Server {
        addr,
        hits,
        ca_pem: pki.ca_pem.clone(),
    }
}

/// 401 `invalid_token` with `message` and RFC 6750's challenge.
trait InvalidToken {
    fn assert_invalid_token(&self, message: &str, context: &str);
}

impl InvalidToken for Answer {
    fn assert_invalid_token(&self, message: &str, context: &str) {
        self.assert_401(
            "invalid_token",
            message,
            "Bearer error=\"invalid_token\"",
            context,
        );
    }
}

impl Server {
    /// A client trusting only the test CA, presenting `identity` (a
    /// certificate and key in PEM) when given. `localhost` resolves to the
    /// server's loopback address, so the server certificate's DNS name is
    /// what is verified.
    fn client(&self, identity: Option<&Credential>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("the CA in PEM");
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([ca])
            .resolve("localhost", self.addr)
            .timeout(Duration::from_secs(10));
        if let Some(credential) = identity {
            builder = builder.identity(
                reqwest::Identity::from_pem(credential.pem.as_bytes())
                    .expect("a certificate and a PKCS#8 key in PEM"),
            );
        }
        builder.build().expect("a TLS client")
    }

    async fn try_get(&self, client: &reqwest::Client, token: &str) -> reqwest::Result<Answer> {
        let res = client
            .get(format!("https://localhost:{}/me", self.addr.port()))
            .bearer_auth(token)
            .send()
            .await?;
        Answer::read(res).await
    }

    /// `GET /me` with `token` as a bearer token, over `client`'s TLS.
    async fn get(&self, client: &reqwest::Client, token: &str) -> Answer {
        self.try_get(client, token)
            .await
            .expect("the TLS server answers")
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// Cases.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_certificate_bound_token_passes_only_on_a_connection_with_its_certificate() {
    let iam = TestIam::start().await;
    let pki = Pki::new();
    let server = start(&iam, &pki).await;
    let thumbprint = x5t_s256(&pki.a.der);
    assert_eq!(
        ClientCertificate::from_der(&pki.a.der).thumbprint_base64url(),
        thumbprint,
        "the library's thumbprint of the DER"
    );
    let bound = iam.mint(json!({"cnf": {"x5t#S256": thumbprint}}));
    let (with_a, with_b, without) = (
        server.client(Some(&pki.a)),
        server.client(Some(&pki.b)),
        server.client(None),
    );

    // Twice: the second request rides the same kept-alive connection, and
    // its certificate.
    for _ in 0..2 {
        let ok = server.get(&with_a, &bound).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        assert_eq!(ok.body, "user-1|bound=true");
    }

    server.get(&with_b, &bound).await.assert_invalid_token(
        "the access token is bound to another client certificate",
        "certificate B",
    );
    server.get(&without, &bound).await.assert_invalid_token(
        "the access token is bound to a client certificate and none was presented",
        "no certificate",
    );
    // Certificate A's connection still serves the token after the refusals.
    let ok = server.get(&with_a, &bound).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn an_unbound_token_passes_with_and_without_a_client_certificate() {
    let iam = TestIam::start().await;
    let pki = Pki::new();
    let server = start(&iam, &pki).await;
    let unbound = iam.mint(json!({}));
    for (name, client) in [
        ("certificate A", server.client(Some(&pki.a))),
        ("certificate B", server.client(Some(&pki.b))),
        ("no certificate", server.client(None)),
    ] {
        let ok = server.get(&client, &unbound).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}: {}", ok.body);
        assert_eq!(ok.body, "user-1|bound=false", "{name}");
    }
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_malformed_certificate_thumbprint_is_refused_on_every_connection() {
    let iam = TestIam::start().await;
    let pki = Pki::new();
    let server = start(&iam, &pki).await;
    let thumbprint = x5t_s256(&pki.a.der);
    let malformed = [
        // One character short: 31 bytes and a bit, not a SHA-256.
        thumbprint[..42].to_owned(),
        // SHA-1's length (RFC 8705 has no x5t#S1).
        URL_SAFE_NO_PAD.encode([7u8; 20]),
        // The right digest, padded.
        format!("{thumbprint}="),
    ];
    for x5t in malformed {
        let token = iam.mint(json!({"cnf": {"x5t#S256": x5t}}));
        for (name, client) in [
            ("certificate A", server.client(Some(&pki.a))),
            ("no certificate", server.client(None)),
        ] {
            let refused = server.get(&client, &token).await;
            refused.assert_invalid_token(
                "the token's claims are invalid: cnf.x5t#S256 is not a SHA-256 thumbprint",
                &format!("{x5t} with {name}"),
            );
        }
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_certificate_the_ca_did_not_sign_never_reaches_the_guard() {
    let iam = TestIam::start().await;
    let pki = Pki::new();
    let server = start(&iam, &pki).await;
    // Bound to the stranger's own certificate: the binding would hold,
    // but the handshake must not.
    let bound = iam.mint(json!({"cnf": {"x5t#S256": x5t_s256(&pki.stranger.der)}}));
    let stranger = server.client(Some(&pki.stranger));
    let refused = server
        .try_get(&stranger, &bound)
        .await
        .expect_err("a client certificate of another CA is refused");
    // The server's verifier ends the handshake with an unknown_ca alert
    // (RFC 8446 §6.2), which the client reads as its request fails.
    assert!(format!("{refused:?}").contains("UnknownCA"), "{refused:?}");
    assert_eq!(server.hits(), 0);
    // The server is still up for everyone else.
    let ok = server.get(&server.client(None), &iam.mint(json!({}))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}
