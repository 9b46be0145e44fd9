//! RFC 9728 protected resource metadata: the document (exact JSON, content
//! type, caching, well-known path with the resource's path inserted), its
//! router merged beside guarded routes (open, while they refuse), the
//! `resource_metadata` attribute on every challenge of a layer that opts in
//! (and nowhere else), configuration errors, and the walk a client takes
//! from a 401 to the authorization server's discovery document — all over
//! real loopback HTTP.
#![cfg(feature = "test-util")]

mod common;

use std::net::SocketAddr;

use axum::{http::Method, routing::get, Router};
use bytes::Bytes;
use http::{Response, StatusCode};
use iam_guard::{
    model::{Catalogue, PermissionRule, Requirement},
    permissions::source::CatalogueSource,
    resource_metadata::{ResourceMetadataError, ResourceMetadataUrl},
    test_util::TestIam,
    ErrorRenderer, JwtAuthGuardLayer, OAuthScopeGuard, Principal, ProtectedResource,
    ProtectedResourceMetadata, Rejection, SharedSecret,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;

async fn hello(who: Principal) -> String {
    format!("hello {}", who.user_id())
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn spawn(listener: TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await });
}

fn auth(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()))
}

/// `GET /grades` behind an OAuth scope, with the auth layer around the
/// router and the metadata router merged after it.
fn scoped_app(auth: JwtAuthGuardLayer, metadata: &ProtectedResourceMetadata) -> Router {
    Router::new()
        .route(
            "/grades",
            get(hello).route_layer(OAuthScopeGuard::all_of(["grades:read"])),
        )
        .layer(auth)
        .merge(metadata.router())
}

/// Status, `WWW-Authenticate` and body of a GET over HTTP.
async fn get_http(url: &str, token: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, res.text().await.unwrap())
}

/// The JSON body of a 200 answer to `req`.
async fn json_of(req: reqwest::RequestBuilder) -> Value {
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

/// The `resource_metadata` attribute of a challenge.
fn resource_metadata_of(challenge: &str) -> Option<&str> {
    let start = challenge.find("resource_metadata=\"")? + "resource_metadata=\"".len();
    let len = challenge[start..].find('"')?;
    Some(&challenge[start..start + len])
}

#[tokio::test]
async fn the_document_is_exactly_the_rfc_9728_json_and_served_as_such() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}");
    let metadata = auth(&iam)
        .protected_resource_metadata(&resource)
        .scopes_supported(["grades:read", "grades:write"])
        .resource_name("Grades API")
        .resource_documentation("https://docs.example.com/grades")
        .build()
        .unwrap();
    let expected = format!(
        r#"{{"resource":"{resource}","authorization_servers":["{iss}"],"scopes_supported":["grades:read","grades:write"],"bearer_methods_supported":["header"],"resource_name":"Grades API","resource_documentation":"https://docs.example.com/grades"}}"#,
        iss = iam.issuer()
    );
    assert_eq!(metadata.json(), expected);
    assert_eq!(
        metadata.metadata_url().as_str(),
        format!("{resource}/.well-known/oauth-protected-resource")
    );
    spawn(listener, metadata.router());

    let client = reqwest::Client::new();
    let url = metadata.metadata_url().to_string();
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(res.text().await.unwrap(), expected);

    let res = client.head(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(res.bytes().await.unwrap().is_empty());

    let res = client.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn empty_members_are_left_out_and_the_cookie_is_no_bearer_method() {
    let iam = TestIam::start().await;
    let minimal = JwtAuthGuardLayer::new(iam.verifier())
        .protected_resource_metadata("https://api.example.com")
        .build()
        .unwrap();
    let doc: Value = serde_json::from_str(minimal.json()).unwrap();
    assert_eq!(
        doc,
        json!({
            "resource": "https://api.example.com",
            "authorization_servers": [iam.issuer()],
            "bearer_methods_supported": ["header"],
        })
    );

    // A cookie token is not one of RFC 6750's methods; with the bearer
    // header off there is no method to publish at all.
    let cookie = JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token");
    let doc = cookie
        .protected_resource_metadata("https://api.example.com")
        .build()
        .unwrap();
    assert_eq!(doc.bearer_methods_supported(), ["header"]);
    let cookie_only = cookie.no_bearer();
    let doc = cookie_only
        .protected_resource_metadata("https://api.example.com")
        .build()
        .unwrap();
    let doc: Value = serde_json::from_str(doc.json()).unwrap();
    assert!(doc.get("bearer_methods_supported").is_none(), "{doc}");
}

#[tokio::test]
async fn a_resource_with_a_path_is_served_at_the_well_known_path_inserted_before_it() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let metadata = auth(&iam)
        .protected_resource_metadata(&format!("http://{addr}/students"))
        .build()
        .unwrap();
    assert_eq!(
        metadata.well_known_path(),
        "/.well-known/oauth-protected-resource/students"
    );
    assert_eq!(
        metadata.metadata_url().as_str(),
        format!("http://{addr}/.well-known/oauth-protected-resource/students")
    );
    spawn(listener, metadata.router());

    let (status, _, body) = get_http(metadata.metadata_url().as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["resource"], format!("http://{addr}/students"));
    for wrong in [
        "/.well-known/oauth-protected-resource",
        "/students/.well-known/oauth-protected-resource",
    ] {
        let (status, _, _) = get_http(&format!("http://{addr}{wrong}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{wrong}");
    }
}

#[tokio::test]
async fn the_metadata_is_open_while_guarded_routes_name_it_in_401_and_403() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let metadata = auth(&iam)
        .protected_resource_metadata(&format!("http://{addr}"))
        .scopes_supported(["grades:read"])
        .build()
        .unwrap();
    let layer = auth(&iam).resource_metadata_url(metadata.metadata_url());
    spawn(listener, scoped_app(layer, &metadata));
    let url = metadata.metadata_url();
    let attr = format!("resource_metadata=\"{url}\"");
    let grades = format!("http://{addr}/grades");

    let (status, challenge, _) = get_http(url.as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(challenge, None);

    let (status, challenge, _) = get_http(&grades, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.unwrap(), format!("Bearer {attr}"));

    let (status, challenge, _) = get_http(&grades, Some("not-a-jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.unwrap(),
        format!("Bearer error=\"invalid_token\", {attr}")
    );

    let token = iam.mint(json!({"scope": "profile"}));
    let (status, challenge, body) = get_http(&grades, Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        challenge.unwrap(),
        format!("Bearer error=\"insufficient_scope\", scope=\"grades:read\", {attr}")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "INSUFFICIENT_OAUTH_SCOPE");

    let token = iam.mint(json!({"scope": "grades:read"}));
    let (status, challenge, body) = get_http(&grades, Some(&token)).await;
    assert_eq!((status, challenge), (StatusCode::OK, None));
    assert_eq!(body, "hello user-1");
}

#[tokio::test]
async fn a_protected_resource_bundle_leaves_the_metadata_open() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let students = ProtectedResource::explicit("students")
        .route_with(
            Method::GET,
            "/students",
            Requirement::scopes("students", iam_guard::ScopeAccess::Read),
            hello,
        )
        .route_with(
            Method::POST,
            "/students/{id}/archive",
            Requirement::oauth_scopes(PermissionRule::AllOf(vec![
                "students:archive".into(),
                "students:write".into(),
            ])),
            hello,
        )
        .route_with(
            Method::GET,
            "/students/export",
            Requirement::oauth_scopes(PermissionRule::AnyOf(vec!["students:write".into()])),
            hello,
        )
        // No requirement in explicit mode: denied to everyone.
        .route(Method::DELETE, "/students/{id}", hello);
    assert_eq!(
        students.oauth_scopes(),
        ["students:archive", "students:write"]
    );
    let metadata = auth(&iam)
        .protected_resource_metadata(&format!("http://{addr}"))
        .scopes_supported(students.oauth_scopes())
        .build()
        .unwrap();
    assert_eq!(
        metadata.scopes_supported(),
        ["students:archive", "students:write"]
    );
    let layer = auth(&iam).resource_metadata_url(metadata.metadata_url());
    let app = Router::new()
        .merge(students.authenticate(layer).into_router())
        .merge(metadata.router());
    spawn(listener, app);
    let attr = format!("resource_metadata=\"{}\"", metadata.metadata_url());
    let client = reqwest::Client::new();

    let (status, _, body) = get_http(metadata.metadata_url().as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, metadata.json());

    let (status, challenge, _) = get_http(&format!("http://{addr}/students"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.unwrap(), format!("Bearer {attr}"));

    // A token without the entity's scope groups: 403 from the
    // requirement guard, which renders with the bundle's auth layer.
    let token = iam.mint(json!({}));
    let (status, challenge, body) =
        get_http(&format!("http://{addr}/students"), Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        challenge.unwrap(),
        format!("Bearer error=\"insufficient_scope\", {attr}")
    );

    // The route without a requirement is denied, and says where to look.
    let res = client
        .delete(format!("http://{addr}/students/s-1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer error=\"insufficient_scope\", {attr}")
    );
}

#[tokio::test]
async fn without_the_option_challenges_are_unchanged() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let metadata = auth(&iam)
        .protected_resource_metadata(&format!("http://{addr}"))
        .build()
        .unwrap();
    spawn(listener, scoped_app(auth(&iam), &metadata));
    let grades = format!("http://{addr}/grades");

    let (status, challenge, _) = get_http(&grades, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let (_, challenge, _) = get_http(&grades, Some("not-a-jwt")).await;
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    let token = iam.mint(json!({"scope": "profile"}));
    let (_, challenge, _) = get_http(&grades, Some(&token)).await;
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer error=\"insufficient_scope\", scope=\"grades:read\"")
    );
    // The document is served all the same.
    let (status, _, _) = get_http(metadata.metadata_url().as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn custom_renderers_and_anonymous_refusals_behind_an_optional_layer_carry_it() {
    let iam = TestIam::start().await;
    let url =
        ResourceMetadataUrl::new("https://api.example.com/.well-known/oauth-protected-resource")
            .unwrap();
    let custom = ErrorRenderer::custom(|rejection: &Rejection| {
        let mut res = Response::new(Bytes::from_static(b"no"));
        *res.status_mut() = rejection.status();
        res
    });
    let app = common::app(
        JwtAuthGuardLayer::new(iam.verifier())
            .error_renderer(custom)
            .resource_metadata_url(url.clone()),
    );
    let (status, challenge, _) = common::call_json(&app, common::request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.unwrap(),
        format!("Bearer resource_metadata=\"{url}\"")
    );

    // An optional layer lets the anonymous request through; the guard's
    // 401 still names the document.
    let app: Router = Router::new()
        .route(
            "/me",
            get(hello).route_layer(OAuthScopeGuard::all_of(["grades:read"])),
        )
        .layer(
            JwtAuthGuardLayer::new(iam.verifier())
                .optional()
                .resource_metadata_url(url.clone()),
        );
    let (status, challenge, body) = common::call_json(&app, common::request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        challenge.unwrap(),
        format!("Bearer resource_metadata=\"{url}\"")
    );
}

#[tokio::test]
async fn unusable_configuration_is_refused_with_a_clear_error() {
    let iam = TestIam::start().await;
    let auth = auth(&iam);

    let err = auth
        .protected_resource_metadata("https://api.example.com/students#top")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource \"https://api.example.com/students#top\" is not usable: it has a fragment"
    );
    let err = auth
        .protected_resource_metadata("api.example.com")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ResourceMetadataError::InvalidUrl {
                field: "resource",
                ..
            }
        ),
        "{err:?}"
    );

    // A metadata URL that would close the quoted attribute and forge
    // another one never reaches a header.
    let err = ResourceMetadataUrl::new("https://api.example.com/\", error=\"forged").unwrap_err();
    assert!(
        err.to_string().starts_with("resource_metadata ")
            && err.to_string().contains("cannot carry unencoded"),
        "{err}"
    );
    for bad in [
        "https://api.example.com/\r\nx: y",
        "https://api.example.com/\\",
        "/.well-known/oauth-protected-resource",
    ] {
        assert!(ResourceMetadataUrl::new(bad).is_err(), "{bad:?}");
    }

    // A guard whose issuer is not a URL cannot name an authorization
    // server a client could find.
    let secret = SharedSecret::new(iam_guard::Algorithm::HS256, vec![7u8; 32]).unwrap();
    let err = JwtAuthGuardLayer::shared_secret("in-house-iam", secret)
        .protected_resource_metadata("https://api.example.com")
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("authorization_servers \"in-house-iam\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_walks_from_the_401_to_the_authorization_servers_discovery_document() {
    let iam = TestIam::start().await;
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}");
    let metadata = auth(&iam)
        .protected_resource_metadata(&resource)
        .scopes_supported(["grades:read"])
        .build()
        .unwrap();
    let layer = auth(&iam).resource_metadata_url(metadata.metadata_url());
    spawn(listener, scoped_app(layer, &metadata));
    let client = reqwest::Client::new();

    // 1. The client knows only the API's URL, and gets a 401.
    let res = client
        .get(format!("{resource}/grades"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    // 2. The challenge says where the metadata is.
    let metadata_url = resource_metadata_of(&challenge)
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"))
        .to_owned();
    // 3. The metadata names this resource and its authorization server.
    let doc = json_of(client.get(&metadata_url)).await;
    // RFC 9728 §3.3: the document must be about the resource asked.
    assert_eq!(doc["resource"], resource.as_str());
    assert_eq!(doc["scopes_supported"], json!(["grades:read"]));
    let authorization_server = doc["authorization_servers"][0].as_str().unwrap();
    assert_eq!(authorization_server, iam.issuer());
    // 4. The authorization server's own discovery document, where a client
    //    finds its endpoints.
    let fetched = iam.discovery_fetches();
    let discovery = json_of(client.get(format!(
        "{authorization_server}/.well-known/openid-configuration"
    )))
    .await;
    assert_eq!(discovery["issuer"], iam.issuer());
    assert_eq!(iam.discovery_fetches(), fetched + 1);
    // 5. With a token for the scope the document listed, the call succeeds.
    let token = iam.mint(json!({"scope": "grades:read"}));
    let res = client
        .get(format!("{resource}/grades"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

proptest! {
    /// Whatever a URL holds, either it is refused or the challenge that
    /// names it is one valid header value ending in the quoted URL.
    #[test]
    fn metadata_urls_never_break_the_challenge(
        path in "\\PC*",
        // Mostly URL characters, so that many cases are accepted.
        near in "[A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=%\"\\\\ -]*",
        raw in any::<Vec<u8>>(),
    ) {
        let lossy = String::from_utf8_lossy(&raw).into_owned();
        let urls = [
            format!("https://api.example.com/{path}"),
            format!("https://api.example.com/{near}"),
            lossy,
        ];
        for url in urls {
            if let Ok(checked) = ResourceMetadataUrl::new(&url) {
                let challenge = Rejection::missing_token()
                    .with_resource_metadata(checked)
                    .www_authenticate()
                    .expect("a checked URL always makes a challenge");
                let challenge = challenge.to_str().unwrap();
                prop_assert_eq!(challenge, format!("Bearer resource_metadata=\"{url}\""));
                prop_assert_eq!(resource_metadata_of(challenge), Some(url.as_str()));
            }
        }
    }
}
