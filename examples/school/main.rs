//! The reference service: a school's students API guarded by iam-guard's
//! `ProtectedResource` bundle, with its counters on `GET /metrics` and its
//! RFC 9728 protected resource metadata at
//! `/.well-known/oauth-protected-resource` (named in every 401).
//!
//! ```text
//! cargo run --example school
//! ```
//!
//! With no configuration it starts an embedded development IAM (JWKS, OIDC
//! discovery and token minting on a loopback port) and prints `curl`
//! commands for several roles. Point it at a real IAM with:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `IAM_ISSUER` | the IAM's issuer URL (OIDC discovery), or several, comma-separated, each trusted with its own keys; set it to use an external IAM | embedded dev IAM |
//! | `IAM_JWKS_URI` | fetch keys from here instead of discovery (needs exactly one `IAM_ISSUER`) | — |
//! | `IAM_AUDIENCE` | comma-separated audiences, one of which tokens must carry | `students-api` |
//! | `IAM_ALGORITHMS` | comma-separated accepted algorithms | `RS256` |
//! | `BIND_ADDR` | where the service listens | `127.0.0.1:3000` |
//! | `PERMISSIONS_SOURCE` | `catalogue` (the token's roles compiled against the catalogue), `claims` (permissions carried in the token), or the URL of the IAM's `GET /permissions` (asked per user and tenant, cached) | `catalogue`; with `REDIS_URL`, the embedded dev IAM's `GET /permissions`, and with `REDIS_URL` and `IAM_ISSUER` it must be set |
//! | `CATALOGUE_URL` | with `PERMISSIONS_SOURCE=catalogue` (set explicitly with `REDIS_URL`): fetch the catalogue (per-tenant roles included) from this URL, refreshed in the background | the embedded dev IAM's `GET /catalogue`; with `IAM_ISSUER`, the bundled students catalogue |
//! | `REDIS_URL` | run as one of several replicas sharing this Redis (`redis://host:port/`): revocations reach every replica and, with the IAM's `GET /permissions` as the source, the permission sets it answers are cached in Redis for all of them and its invalidations reach every replica. With `catalogue` or `claims`, computed from each token, only revocations are shared: there is nothing to cache across requests. The service listens only once synced, and exits with code 2 when Redis cannot be reached | off: one replica, revocations in this process only |
//! | `DEV_IAM_ADDR` | without `IAM_ISSUER`: where the embedded dev IAM listens, so that other replicas can trust it (`IAM_ISSUER=http://<DEV_IAM_ADDR>`) | a free loopback port |
//! | `IAM_DPOP` | `off`, `allowed` (Bearer and DPoP-bound tokens) or `required` (DPoP-bound tokens only); a DPoP-bound token always needs its proof. With `REDIS_URL` the replay cache is shared by every replica | `off` |
//! | `PUBLIC_URL` | with `IAM_DPOP`: the URL clients address this service by (a proof's `htu` is compared with it), when a proxy or another host name is in front | `http://<BIND_ADDR>` |
//! | `IAM_INTROSPECTION_URL` | also accept opaque access tokens, introspected here (RFC 7662; answers cached up to 5 min, never past `exp`); JWTs are still verified locally. The embedded dev IAM answers at `<its URL>/introspect` | off |
//! | `IAM_CLIENT_ID`, `IAM_CLIENT_SECRET` | this service's credentials at the introspection endpoint (HTTP Basic) | the embedded dev IAM's client; with `IAM_ISSUER` both must be set |
//! | `SCHOOL_BARE_ROUTES` | `1` also serves `GET /bare/students/{id}` with **no guard at all**, for `benches/http_load.sh`; never in a real deployment | off |
//!
//! A bad value exits with code 2 and one line naming the variable.
//!
//! `cargo run --example school -- access-matrix [--format md|csv|html]
//! [--tenant TENANT] [--diff OTHER_CATALOGUE.json]` prints who can do what
//! (every role against every route) and exits without serving anything.
//!
//! The embedded dev IAM also answers `POST /revoke` (`{"user": ...}`,
//! `{"jti": ...}`), `GET /permissions?userId=...&tenantId=...` (a demo
//! user's roles compiled against its catalogue) and `PUT /users/{name}`
//! (a demo user's claims, roles included, replaced) and, with
//! `REDIS_URL`, `POST /invalidate`: on one replica a revocation is applied
//! in-process; on several it is published through Redis to every
//! replica, and so is the invalidation that follows a `PUT /users/{name}`
//! or a catalogue change. Several replicas trust one IAM: start the first
//! with `DEV_IAM_ADDR`, the others with `IAM_ISSUER` and
//! `PERMISSIONS_SOURCE=<that IAM>/permissions`; see the README's "Running
//! several replicas".

mod access_matrix;
mod app;
mod catalogue;
mod users;

use std::{net::SocketAddr, process::ExitCode, str::FromStr, sync::Arc};

use iam_guard::{
    jwt::introspection::Introspector,
    model::Catalogue,
    permissions::{
        hosted_catalogue::{CatalogueFetcher, HostedCatalogueSource},
        remote::RemoteSource,
        source::{CatalogueSource, ClaimsSource, PermissionSource},
    },
    replicas::RedisReplicas,
    revocation::Revocations,
    test_util::{TestIam, TestKey, DEV_CLIENT_ID, DEV_CLIENT_SECRET},
    Algorithm, Dpop, JwksFetcher, JwtAuthGuardLayer, TokenValidation, TrustedIssuer, Verifier,
};
use serde_json::json;

const AUDIENCE: &str = "students-api";

/// Where permissions come from.
enum Source {
    /// The token's roles, compiled against the catalogue.
    Catalogue,
    /// Permissions the token carries.
    Claims,
    /// The IAM's `GET /permissions` at this URL.
    Remote(String),
    /// The embedded dev IAM's `GET /permissions` (its URL is known once it
    /// listens): the default with `REDIS_URL`.
    DevIam,
}

struct Config {
    /// The issuers to trust; empty for the embedded development IAM.
    issuers: Vec<String>,
    jwks_uri: Option<String>,
    /// Accepted audiences; the first is the one demo tokens carry.
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    bind: SocketAddr,
    source: Source,
    bare: app::BareRoutes,
    catalogue_url: Option<String>,
    /// Redis, when this is one of several replicas.
    redis_url: Option<String>,
    /// Where the embedded development IAM listens (ephemeral by default).
    dev_iam_addr: Option<SocketAddr>,
    /// DPoP: off, or allowed / required.
    dpop: Option<Dpop>,
    public_url: Option<String>,
    /// Introspection endpoint and this service's credentials there.
    introspection: Option<(String, Option<(String, String)>)>,
}

/// Why `REDIS_URL` with `IAM_ISSUER` needs `PERMISSIONS_SOURCE`: where a
/// real IAM answers `GET /permissions` is not guessed.
const NAME_THE_PERMISSIONS_URL: &str = "with REDIS_URL and IAM_ISSUER, set it to the URL of the \
     IAM's GET /permissions (such as http://127.0.0.1:4000/permissions), or to catalogue or claims";

/// A configuration error: the variable and what is wrong with it.
struct Invalid(&'static str, String);

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config() -> Result<Config, Invalid> {
    let issuers: Vec<String> = match var("IAM_ISSUER") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|i| match i.trim() {
                "" => Err(Invalid(
                    "IAM_ISSUER",
                    format!("{list:?} has an empty issuer"),
                )),
                i => Ok(i.to_owned()),
            })
            .collect::<Result<_, _>>()?,
    };
    let jwks_uri = var("IAM_JWKS_URI");
    if jwks_uri.is_some() && issuers.len() != 1 {
        return Err(Invalid(
            "IAM_JWKS_URI",
            "needs exactly one IAM_ISSUER for the iss check".into(),
        ));
    }
    let urls = issuers
        .iter()
        .map(|i| ("IAM_ISSUER", i))
        .chain(jwks_uri.iter().map(|u| ("IAM_JWKS_URI", u)));
    for (name, v) in urls {
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            return Err(Invalid(name, format!("{v:?} is not an http(s) URL")));
        }
    }
    let algorithms = match var("IAM_ALGORITHMS") {
        None => vec![Algorithm::RS256],
        Some(list) => list
            .split(',')
            .map(|a| {
                let a = a.trim();
                match Algorithm::from_str(a) {
                    Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => {
                        Err(Invalid(
                            "IAM_ALGORITHMS",
                            format!("{a:?} is not an accepted signature algorithm"),
                        ))
                    }
                    Ok(alg) => Ok(alg),
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let audiences = match var("IAM_AUDIENCE") {
        None => vec![AUDIENCE.to_owned()],
        Some(list) => list
            .split(',')
            .map(|a| match a.trim() {
                "" => Err(Invalid(
                    "IAM_AUDIENCE",
                    format!("{list:?} has an empty audience"),
                )),
                a => Ok(a.to_owned()),
            })
            .collect::<Result<_, _>>()?,
    };
    let bind = match var("BIND_ADDR") {
        None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        Some(v) => v.parse().map_err(|_| {
            Invalid(
                "BIND_ADDR",
                format!("{v:?} is not an address like 127.0.0.1:3000"),
            )
        })?,
    };
    let redis_url = var("REDIS_URL");
    if let Some(url) = &redis_url {
        if !url.starts_with("redis://") {
            return Err(Invalid(
                "REDIS_URL",
                format!("{url:?} is not a URL like redis://127.0.0.1:6379/"),
            ));
        }
    }
    let source = match var("PERMISSIONS_SOURCE").as_deref() {
        // Replicas share what the IAM answers per user: the embedded
        // IAM's, or the one named explicitly.
        None if redis_url.is_some() && issuers.is_empty() => Source::DevIam,
        None if redis_url.is_some() => {
            return Err(Invalid(
                "PERMISSIONS_SOURCE",
                NAME_THE_PERMISSIONS_URL.into(),
            ))
        }
        None | Some("catalogue") => Source::Catalogue,
        Some("claims") => Source::Claims,
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            Source::Remote(url.to_owned())
        }
        Some(other) => {
            return Err(Invalid(
                "PERMISSIONS_SOURCE",
                format!("{other:?} is not catalogue, claims or an http(s) URL"),
            ))
        }
    };
    let catalogue_url = var("CATALOGUE_URL");
    if let Some(url) = &catalogue_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Invalid(
                "CATALOGUE_URL",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        if !matches!(source, Source::Catalogue) {
            return Err(Invalid(
                "CATALOGUE_URL",
                "needs PERMISSIONS_SOURCE=catalogue (with REDIS_URL, the default source is the \
                 IAM's GET /permissions)"
                    .into(),
            ));
        }
    }
    let bare = match var("SCHOOL_BARE_ROUTES").as_deref() {
        None | Some("0") => app::BareRoutes::Off,
        Some("1") => app::BareRoutes::On,
        Some(other) => {
            return Err(Invalid(
                "SCHOOL_BARE_ROUTES",
                format!("{other:?} is not 0 or 1"),
            ))
        }
    };
    let dev_iam_addr = match var("DEV_IAM_ADDR") {
        None => None,
        Some(_) if !issuers.is_empty() => {
            return Err(Invalid(
                "DEV_IAM_ADDR",
                "places the embedded dev IAM, which IAM_ISSUER turns off".into(),
            ))
        }
        Some(v) => Some(v.parse().map_err(|_| {
            Invalid(
                "DEV_IAM_ADDR",
                format!("{v:?} is not an address like 127.0.0.1:4000"),
            )
        })?),
    };
    let dpop = match var("IAM_DPOP").as_deref() {
        None | Some("off") => None,
        Some("allowed") => Some(Dpop::allowed()),
        Some("required") => Some(Dpop::required()),
        Some(other) => {
            return Err(Invalid(
                "IAM_DPOP",
                format!("{other:?} is not off, allowed or required"),
            ))
        }
    };
    let public_url = var("PUBLIC_URL");
    if let Some(url) = &public_url {
        if dpop.is_none() {
            return Err(Invalid("PUBLIC_URL", "is only used with IAM_DPOP".into()));
        }
        if Dpop::allowed().public_url(url).is_err() {
            return Err(Invalid(
                "PUBLIC_URL",
                format!("{url:?} is not an http(s) URL without query or fragment"),
            ));
        }
    }
    let introspection = match var("IAM_INTROSPECTION_URL") {
        None => {
            for name in ["IAM_CLIENT_ID", "IAM_CLIENT_SECRET"] {
                if var(name).is_some() {
                    return Err(Invalid(
                        name,
                        "is only used with IAM_INTROSPECTION_URL".into(),
                    ));
                }
            }
            None
        }
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            return Err(Invalid(
                "IAM_INTROSPECTION_URL",
                format!("{url:?} is not an http(s) URL"),
            ))
        }
        Some(url) => {
            let credentials = match (var("IAM_CLIENT_ID"), var("IAM_CLIENT_SECRET")) {
                (Some(id), Some(secret)) => Some((id, secret)),
                // The embedded dev IAM's own client.
                (None, None) if issuers.is_empty() => None,
                (None, _) => {
                    return Err(Invalid(
                        "IAM_CLIENT_ID",
                        "is required with IAM_INTROSPECTION_URL and IAM_ISSUER".into(),
                    ))
                }
                (Some(_), None) => {
                    return Err(Invalid(
                        "IAM_CLIENT_SECRET",
                        "is required with IAM_CLIENT_ID".into(),
                    ))
                }
            };
            Some((url, credentials))
        }
    };
    Ok(Config {
        issuers,
        jwks_uri,
        audiences,
        algorithms,
        bind,
        source,
        bare,
        catalogue_url,
        redis_url,
        dev_iam_addr,
        dpop,
        public_url,
        introspection,
    })
}

fn fail(Invalid(name, why): Invalid) -> ExitCode {
    eprintln!("school: invalid {name}: {why}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    // `school access-matrix ...` prints who can do what, and serves nothing.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("access-matrix") {
        return access_matrix::run(&args[1..]);
    }
    tracing_subscriber::fmt()
        .with_target(true)
        .with_max_level(tracing::Level::INFO)
        .init();
    // The library only records through the `metrics` facade; the
    // application picks the exporter.
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("school: cannot install the metrics recorder: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The counters every request increments, resolved once against that
    // recorder instead of looked up in its registry per increment.
    iam_guard::metrics::bind_request_counters();
    let config = match config() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };

    // Several replicas: synced with Redis before anything is served.
    let replicas = match &config.redis_url {
        None => None,
        Some(url) => match RedisReplicas::builder(url).connect().await {
            Ok(replicas) => Some(replicas),
            Err(e) => return fail(Invalid("REDIS_URL", format!("cannot use {url}: {e}"))),
        },
    };
    // What is revoked: kept current from Redis, or this process's own.
    let revocations = replicas
        .as_ref()
        .map_or_else(Revocations::new, RedisReplicas::revocations);

    // No external IAM configured: start the development one.
    let embedded = match (config.issuers.is_empty(), config.dev_iam_addr) {
        (false, _) => None,
        (true, None) => Some(TestIam::start().await),
        (true, Some(addr)) => match TestIam::start_at(addr, vec![TestKey::rsa("rsa-1")]).await {
            Ok(iam) => Some(iam),
            Err(e) => return fail(Invalid("DEV_IAM_ADDR", format!("cannot bind {addr}: {e}"))),
        },
    };
    if let Some(iam) = &embedded {
        // Its `POST /revoke` reaches every replica, or this one; with
        // replicas, so do the invalidations of `PUT /users/{name}` and of
        // catalogue changes.
        match &replicas {
            Some(replicas) => iam.publish_to(replicas.clone()),
            None => iam.revoke_into(revocations.clone()),
        }
        // The presets and the demo school's custom role, with a short
        // freshness so that a change made with the printed curl shows
        // quickly where the catalogue is fetched.
        iam.set_catalogue(catalogue::school_catalogue());
        iam.set_catalogue_cache_control(Some("max-age=10"));
        // Demo users for the IAM's `POST /token` and `GET /permissions`,
        // as dev_iam registers them.
        for (name, _, _) in users::DEMO_USERS {
            let mut claims = users::demo_claims(name).expect("a demo user");
            claims["aud"] = json!(config.audiences[0]);
            iam.add_user(name, claims);
        }
    }
    let issuers = match &embedded {
        Some(iam) => vec![iam.issuer().to_owned()],
        None => config.issuers.clone(),
    };

    // Each issuer is trusted with its own keys and caches; a token is
    // matched to one by its `iss` before any key is fetched.
    let mut trusted = Vec::new();
    for issuer in &issuers {
        let jwks = match &config.jwks_uri {
            Some(uri) => {
                JwksFetcher::jwks_uri(uri).map_err(|e| Invalid("IAM_JWKS_URI", e.to_string()))
            }
            None => JwksFetcher::discover(issuer).map_err(|e| Invalid("IAM_ISSUER", e.to_string())),
        };
        let jwks = match jwks {
            Ok(j) => j,
            Err(e) => return fail(e),
        };
        if let Err(e) = jwks.warm_up().await {
            // Not fatal: its tokens answer 503 until the IAM is reachable.
            tracing::warn!("the IAM at {issuer} is not reachable yet: {e}");
        }
        let validation = TokenValidation::new(issuer)
            .audience(config.audiences.iter().cloned())
            .algorithms(config.algorithms.clone());
        trusted.push(TrustedIssuer::new(Verifier::new(jwks, validation)));
    }
    let mut trusted = trusted.into_iter();
    let first = trusted.next().expect("at least one issuer");
    let auth = trusted
        .fold(JwtAuthGuardLayer::new(first), JwtAuthGuardLayer::trust)
        .revocations(revocations);
    // Opaque tokens of the first issuer, asked about at its introspection
    // endpoint; JWTs are still verified here.
    let auth = match &config.introspection {
        None => auth,
        Some((url, credentials)) => {
            let (id, secret) = credentials
                .clone()
                .unwrap_or_else(|| (DEV_CLIENT_ID.to_owned(), DEV_CLIENT_SECRET.to_owned()));
            let introspector = Introspector::builder(url, &issuers[0])
                .client_secret_basic(id, secret)
                .audience(config.audiences.iter().cloned())
                .build();
            match introspector {
                Ok(introspector) => auth.introspection(introspector),
                Err(e) => return fail(Invalid("IAM_INTROSPECTION_URL", e.to_string())),
            }
        }
    };
    // What the IAM answers per user is cached (5 min); with replicas, in
    // Redis too, and the IAM's invalidations reach every replica. What is
    // computed from the token is never cached across requests: a new token
    // with other roles must not get the old one's permissions.
    let permissions_url = match (&config.source, &embedded) {
        (Source::Remote(url), _) => Some(url.clone()),
        (Source::DevIam, Some(iam)) => Some(iam.permissions_url()),
        _ => None,
    };
    let auth = match (&config.source, &permissions_url) {
        (_, Some(url)) => {
            let remote = RemoteSource::builder(url);
            let remote = match &replicas {
                Some(replicas) => remote.shared(replicas),
                None => remote,
            };
            match remote.build() {
                Ok(remote) => auth.permissions(remote),
                Err(e) => return fail(Invalid("PERMISSIONS_SOURCE", e.to_string())),
            }
        }
        (Source::Claims, None) => auth.permissions(ClaimsSource::new()),
        (_, None) => match catalogue_source(&config, embedded.as_ref()).await {
            Ok(source) => auth.permissions(source),
            Err(e) => return fail(e),
        },
    };
    let sharing = Sharing {
        redis_url: config.redis_url.as_deref(),
        permissions_url: permissions_url.as_deref(),
    };

    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => return fail(Invalid("BIND_ADDR", e.to_string())),
    };
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    // DPoP: proofs name the URL clients use; with replicas, a proof used
    // on one is refused on all of them.
    let auth = match &config.dpop {
        None => auth,
        Some(dpop) => {
            let url = config.public_url.as_deref().unwrap_or(&base);
            let dpop = match dpop.clone().public_url(url) {
                Ok(dpop) => dpop,
                Err(e) => return fail(Invalid("PUBLIC_URL", e.to_string())),
            };
            let dpop = match &replicas {
                Some(replicas) => dpop.replay_cache(replicas.dpop_replay_cache()),
                None => dpop,
            };
            auth.dpop(dpop)
        }
    };
    // RFC 9728: a client that meets a 401 finds `resource_metadata` in the
    // challenge, and in that document which IAMs issue tokens for us.
    let metadata = match auth.protected_resource_metadata(&base).build() {
        Ok(m) => m,
        Err(e) => return fail(Invalid("BIND_ADDR", e.to_string())),
    };
    let auth = auth.resource_metadata_url(metadata.metadata_url());
    for line in app::students().report() {
        println!("  {line}");
    }
    if let Some(iam) = &embedded {
        print_walkthrough(iam, &base, &config.audiences[0], &sharing);
        if config.introspection.is_some() {
            println!("# an opaque token for the teacher, which the service introspects at the IAM (then cached)");
            println!(
                "curl -s -X POST {}/token -H 'Content-Type: application/json' -d '{{\"user\":\"teacher\",\"format\":\"opaque\"}}'",
                iam.issuer()
            );
            println!(
                "curl -s {base}/students/s-1 -H 'Authorization: Bearer <that access_token>'\n"
            );
        }
        if let Some(dpop) = &config.dpop {
            let which = if dpop.is_required() {
                "required: bearer tokens answer 401"
            } else {
                "allowed"
            };
            println!(
                "# DPoP is {which}. A DPoP-bound token for the teacher and one-time proofs for it:"
            );
            println!(
                "cargo run --example dpop_proof -- {} {base}/students/s-1\n",
                iam.issuer()
            );
        }
        println!(
            "# where a client learns which IAM to ask for a token (RFC 9728)\ncurl -s {}\n",
            metadata.metadata_url()
        );
    } else {
        println!("\nstudents API on {base}, trusting {}", issuers.join(", "));
        println!("{}", sharing.line());
    }

    let router = match config.bare {
        app::BareRoutes::Off => app::router(auth, app::Store::demo()),
        app::BareRoutes::On => {
            let warning = format!(
                "SCHOOL_BARE_ROUTES=1: {base}/bare/students/{{id}} serves every student's every \
                 scope group to anyone, with NO authentication and NO authorization. \
                 Benchmarking only; never expose this."
            );
            eprintln!(
                "\n{}\nWARNING: {warning}\n{}\n",
                "!".repeat(72),
                "!".repeat(72)
            );
            tracing::warn!("{warning}");
            app::router_with(auth, app::Store::demo(), app::BareRoutes::On)
        }
    };
    let router = router
        .merge(metadata.router())
        .merge(app::metrics_route(metrics))
        .merge(app::openapi_route(&app::openapi()));
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("school: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The catalogue permissions: fetched from `CATALOGUE_URL`, else from the
/// embedded IAM, else the bundled students catalogue.
async fn catalogue_source(
    config: &Config,
    embedded: Option<&TestIam>,
) -> Result<Arc<dyn PermissionSource>, Invalid> {
    let url = match (&config.catalogue_url, embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(iam)) => iam.catalogue_url(),
        (None, None) => {
            return Ok(Arc::new(
                CatalogueSource::new(Catalogue::students_fixture()),
            ))
        }
    };
    let fetcher =
        CatalogueFetcher::url(&url).map_err(|e| Invalid("CATALOGUE_URL", e.to_string()))?;
    match fetcher.warm_up().await {
        Ok(version) => tracing::info!(
            "catalogue version {} from {url} ({} tenants with custom roles)",
            version.number(),
            version.catalogues().tenants().len()
        ),
        // Not fatal: requests answer 503 until a valid catalogue arrives.
        Err(e) => tracing::warn!("no catalogue from {url} yet: {e}"),
    }
    Ok(Arc::new(HostedCatalogueSource::new(fetcher)))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    println!("shutting down");
}

/// What this replica shares with the others, for the startup output.
struct Sharing<'a> {
    /// Redis, once connected.
    redis_url: Option<&'a str>,
    /// The IAM's `GET /permissions`, when that is the source; else
    /// permissions are computed from the token alone.
    permissions_url: Option<&'a str>,
}

impl Sharing<'_> {
    /// The `replicas: ...` line (printed last before serving).
    fn line(&self) -> String {
        match (self.redis_url, self.permissions_url) {
            (None, _) => {
                "replicas: off (no REDIS_URL): revocations apply to this process only".into()
            }
            (Some(url), Some(permissions)) => format!(
                "replicas: on, through Redis at {url}: revocations and permission invalidations \
                 reach every replica; the permission sets {permissions} answers are cached in \
                 Redis for all of them"
            ),
            (Some(url), None) => format!(
                "replicas: on, through Redis at {url}: revocations reach every replica; \
                 permissions are computed from each token, so no permission set is cached"
            ),
        }
    }
}

fn print_walkthrough(iam: &TestIam, base: &str, audience: &str, sharing: &Sharing<'_>) {
    let replicas = sharing.redis_url.is_some();
    let exp = iam.default_claims()["iat"].as_u64().unwrap_or(0) + 3600;
    let token = |user: &str| {
        let mut claims = users::demo_claims(user).expect("a demo user");
        claims["aud"] = json!(audience);
        claims["exp"] = json!(exp);
        iam.mint(claims)
    };
    let auth = |user: &str| format!("-H 'Authorization: Bearer {}'", token(user));
    println!(
        "\nDevelopment IAM (do not use in production): {}",
        iam.issuer()
    );
    println!("students API: {base}   (tokens below are valid for one hour)");
    println!("{}\n", sharing.line());
    println!("# admin lists every student (200, paginated, all scope groups)");
    println!("curl -s {base}/students {}\n", auth("admin"));
    println!("# a teacher reads a student: sensitive, financial and documents are stripped (200)");
    println!("curl -s {base}/students/s-1 {}\n", auth("teacher"));
    println!("# the teacher may write attendance (200)...");
    println!(
        "curl -s -X PATCH {base}/students/s-1 {} -H 'Content-Type: application/json' -d '{{\"attendance\":{{\"absences\":3}}}}'\n",
        auth("teacher")
    );
    println!("# ...but not sensitive data (403 FORBIDDEN_FIELDS)");
    println!(
        "curl -s -X PATCH {base}/students/s-1 {} -H 'Content-Type: application/json' -d '{{\"sensitive\":{{\"disabilityInfo\":\"ADHD\"}}}}'\n",
        auth("teacher")
    );
    println!("# a parent sees only their own child (200, one record)");
    println!("curl -s {base}/students {}\n", auth("parent"));
    println!("# an accountant sees anagraphic, financial and documents only (200)");
    println!("curl -s {base}/students/s-2 {}\n", auth("accountant"));
    println!("# the school's custom role, support_teacher (cloned from internal_teacher), also reads sensitive (200)");
    println!("curl -s {base}/students/s-1 {}\n", auth("support"));
    println!(
        "# the catalogue as the IAM serves it (presets + school-1's custom role, with an ETag)"
    );
    println!("curl -s -i {}\n", iam.catalogue_url());
    let when = match (sharing.permissions_url, replicas) {
        // The IAM invalidates every cached permission set.
        (Some(_), true) => "at once, on every replica",
        (Some(_), false) => "once the cached permissions expire (5 min)",
        // Each replica refreshes the catalogue (max-age=10).
        (None, _) => "within ~10 s",
    };
    println!("# the school admin edits the custom role at the IAM: no more sensitive data, {when}");
    println!(
        "curl -s -X PUT {}/tenants/{}/roles/{} -H 'Content-Type: application/json' -d '{}'\n",
        iam.catalogue_url(),
        users::TENANT,
        catalogue::CUSTOM_ROLE,
        catalogue::support_teacher("NONE")
    );
    println!("# what the teacher may do, for a frontend (200)");
    println!("curl -s {base}/permissions {}\n", auth("teacher"));
    println!("# no token (401)");
    println!("curl -s -i {base}/students\n");
    println!("# what the guards decided so far, for Prometheus");
    println!("curl -s {base}/metrics\n");
    println!("# more tokens from the development IAM (admin, secretary, teacher, accountant, parent, student)");
    println!(
        "curl -s -X POST {}/token -H 'Content-Type: application/json' -d '{{\"user\":\"parent\"}}'\n",
        iam.issuer()
    );
    let everywhere = if replicas { " on every replica" } else { "" };
    println!(
        "# log the parent out{everywhere}: each of their tokens issued until now answers 401 from now on"
    );
    println!(
        "curl -s -X POST {}/revoke -H 'Content-Type: application/json' -d '{{\"user\":\"u-parent\"}}'\n",
        iam.issuer()
    );
    if let Some(permissions) = sharing.permissions_url {
        let cached = if replicas {
            "cached in Redis for every replica"
        } else {
            "cached here"
        };
        println!("# what the IAM answers for the teacher ({cached})");
        println!(
            "curl -s '{permissions}?userId=u-teacher&tenantId={}'\n",
            users::TENANT
        );
        let mut claims = users::demo_claims("teacher").expect("a demo user");
        claims["roles"] = json!(["accountant"]);
        claims["aud"] = json!(audience);
        let everywhere = if replicas {
            ": every replica drops their cached permissions, and"
        } else {
            " (this replica sees it when its cache expires):"
        };
        println!(
            "# the IAM makes the teacher an accountant{everywhere} the teacher's token above reads financial data and may no longer write attendance"
        );
        println!(
            "curl -s -X PUT {}/users/teacher -H 'Content-Type: application/json' -d '{claims}'\n",
            iam.issuer()
        );
    }
}
