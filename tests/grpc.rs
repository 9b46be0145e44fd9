//! gRPC (tonic) through the guards: a real tonic server on a free loopback
//! port (the grpc example's `school.v1.Students`, with its requirements
//! per method), called by the generated tonic client over HTTP/2 with
//! tokens from `TestIam`. Every refusal must reach the client as a gRPC
//! status, the handler must never run for one, and the handler must see
//! the caller and its permissions (loaded once per call).
#![cfg(all(feature = "grpc", feature = "test-util"))]

mod common;

#[allow(dead_code)]
#[path = "../examples/grpc/students.rs"]
mod students;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use iam_guard::{
    grpc::GrpcMethods,
    permissions::source::{PermissionError, PermissionFuture},
    test_util::TestIam,
    ClaimsSource, CompiledPermissions, JwtAuthGuardLayer, PermissionSource, Principal,
};
use serde_json::{json, Value};
use students::{
    pb::{
        students_client::StudentsClient, ArchiveStudentsRequest, CreateStudentRequest,
        DeleteStudentRequest, GetStudentRequest, ListStudentsRequest, WhoAmIRequest,
    },
    StudentsService,
};
use tonic::{
    codegen::tokio_stream::{self, StreamExt},
    transport::{server::TcpIncoming, Channel, Server},
    Code, Request, Status,
};

/// A permission source counting its loads, over the token's claims (or
/// failing, for the outage tests).
#[derive(Clone)]
struct Counting {
    loads: Arc<AtomicUsize>,
    fail: bool,
}

impl Counting {
    fn new() -> Self {
        Self {
            loads: Arc::new(AtomicUsize::new(0)),
            fail: false,
        }
    }

    fn failing() -> Self {
        Self {
            fail: true,
            ..Self::new()
        }
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl PermissionSource for Counting {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Box::pin(async {
                Err(PermissionError::Unavailable("10.1.2.3 refused".into()))
            });
        }
        // Always awaited, never answered on the spot: the async path of
        // the guards is the one under test.
        let answer: Result<Arc<CompiledPermissions>, PermissionError> = ClaimsSource::new()
            .load_now(principal)
            .expect("claims answer at once");
        Box::pin(async move {
            tokio::task::yield_now().await;
            answer
        })
    }
}

/// A tonic server with the example's service behind `auth` and the
/// example's method table, on a free loopback port; it stops when the
/// value drops.
struct Running {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    async fn start(auth: JwtAuthGuardLayer) -> Self {
        Self::start_with(auth, students::methods()).await
    }

    async fn start_with(auth: JwtAuthGuardLayer, methods: GrpcMethods) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port for the gRPC server");
        let addr = listener.local_addr().unwrap();
        let service = StudentsService::seeded();
        let calls = service.calls();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .layer(auth)
            .layer(methods)
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(async move { server.await.expect("the gRPC server runs") });
        Self {
            addr,
            calls,
            _stop: stop,
        }
    }

    async fn client(&self) -> StudentsClient<Channel> {
        StudentsClient::connect(format!("http://{}", self.addr))
            .await
            .expect("the client connects to the server on loopback")
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn auth(iam: &TestIam, source: Counting) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier()).permissions(source)
}

/// A token for demo user `name` of the example.
fn token(iam: &TestIam, name: &str) -> String {
    iam.mint(students::demo_claims(name).expect("a demo user"))
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a valid header value"),
    );
    request
}

fn get(id: &str) -> GetStudentRequest {
    GetStudentRequest { id: id.to_owned() }
}

/// Asserts `status` is a guard's refusal with `code` and `error_code`,
/// carrying neither `token` nor anything else secret.
fn assert_refused(status: &Status, code: Code, error_code: &str, token: Option<&str>) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("iam-guard-code")
            .map(|v| v.to_str().unwrap()),
        Some(error_code),
        "{status:?}"
    );
    assert!(!status.message().is_empty(), "{status:?}");
    if let Some(token) = token {
        assert!(!status.message().contains(token), "{status:?}");
        for entry in status.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
                assert!(!value.to_str().unwrap().contains(token), "{key}: {value:?}");
            }
        }
        // Not even a piece of it (its signature).
        let signature = token.rsplit('.').next().unwrap();
        assert!(!format!("{status:?}").contains(signature), "{status:?}");
    }
}

#[tokio::test]
async fn a_call_with_a_bearer_token_in_its_metadata_is_served() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;
    let teacher = token(&iam, "teacher");
    let student = client
        .get_student(with_token(get("s-1"), &teacher))
        .await
        .expect("the teacher may read students")
        .into_inner();
    assert_eq!(
        (
            student.id.as_str(),
            student.name.as_str(),
            student.health_notes.as_str()
        ),
        ("s-1", "Ada Rossi", "asthma")
    );
    // The librarian passes the same method, and the handler shapes the
    // message with the caller's permissions: no sensitive group.
    let librarian = token(&iam, "librarian");
    let student = client
        .get_student(with_token(get("s-1"), &librarian))
        .await
        .expect("the librarian may read students")
        .into_inner();
    assert_eq!(
        (student.name.as_str(), student.health_notes.as_str()),
        ("Ada Rossi", "")
    );
    assert_eq!(server.calls(), 2);
    // The service's own statuses pass through the guards untouched.
    let missing = client
        .get_student(with_token(get("s-404"), &teacher))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "no such student");
    assert!(missing.metadata().get("iam-guard-code").is_none());
}

#[tokio::test]
async fn the_handler_sees_the_principal_and_permissions_loaded_once_per_call() {
    let iam = TestIam::start().await;
    let source = Counting::new();
    let server = Running::start(auth(&iam, source.clone())).await;
    let mut client = server.client().await;
    let teacher = token(&iam, "teacher");

    // WhoAmI needs only a token: the handler is the first and only reader.
    let me = client
        .who_am_i(with_token(WhoAmIRequest {}, &teacher))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.sub.as_str(), me.tenant.as_str()),
        ("teacher", "school-1")
    );
    assert_eq!(me.readable_scopes, ["anagraphic", "sensitive"]);
    assert_eq!(source.loads(), 1);

    // GetStudent: the requirement guard loads, the handler reads the same
    // permissions again: still one load for the call.
    client
        .get_student(with_token(get("s-2"), &teacher))
        .await
        .unwrap();
    assert_eq!(source.loads(), 2);

    // A stream of two students, each shaped by the handler: one load.
    let listed: Vec<_> = client
        .list_students(with_token(ListStudentsRequest {}, &teacher))
        .await
        .unwrap()
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(source.loads(), 3);

    // Refused before any permission is needed: no load at all.
    let status = client
        .who_am_i(Request::new(WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(source.loads(), 3);
}

#[tokio::test]
async fn no_bad_or_expired_token_is_unauthenticated_and_never_reaches_the_handler() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;

    let status = client
        .get_student(Request::new(get("s-1")))
        .await
        .unwrap_err();
    assert_refused(&status, Code::Unauthenticated, "invalid_token", None);
    assert_eq!(status.message(), "no access token was sent");
    // The RFC 6750 challenge stays, harmless and useful.
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");

    let teacher = token(&iam, "teacher");
    let tampered = format!("{}x", &teacher[..teacher.len() - 1]);
    let expired = iam.mint(json!({"sub": "teacher", "exp": 1_000_000_000}));
    for (bad, what) in [
        (tampered.as_str(), "a bad signature"),
        (expired.as_str(), "an expired token"),
        ("not-a-jwt", "garbage"),
    ] {
        let status = client
            .get_student(with_token(get("s-1"), bad))
            .await
            .unwrap_err();
        assert_refused(&status, Code::Unauthenticated, "invalid_token", Some(bad));
        assert_eq!(
            status.metadata().get("www-authenticate").unwrap(),
            "Bearer error=\"invalid_token\"",
            "{what}"
        );
    }
    let status = client
        .get_student(with_token(get("s-1"), &expired))
        .await
        .unwrap_err();
    assert_eq!(status.message(), "the token has expired");
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn an_insufficient_caller_is_permission_denied_with_the_reason_code() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;

    let parent = token(&iam, "parent");
    let status = client
        .get_student(with_token(get("s-1"), &parent))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "INSUFFICIENT_SCOPE",
        Some(&parent),
    );
    assert_eq!(
        status.metadata().get("www-authenticate").unwrap(),
        "Bearer error=\"insufficient_scope\""
    );

    let librarian = token(&iam, "librarian");
    let new = CreateStudentRequest {
        name: "Carla Bianchi".into(),
        health_notes: String::new(),
    };
    let status = client
        .create_student(with_token(new.clone(), &librarian))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "ACTION_NOT_PERMITTED",
        Some(&librarian),
    );
    let status = client
        .delete_student(with_token(
            DeleteStudentRequest { id: "s-1".into() },
            &librarian,
        ))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "ACTION_NOT_PERMITTED",
        Some(&librarian),
    );
    assert_eq!(server.calls(), 0, "no refused call reached a handler");

    // The secretary may do both.
    let secretary = token(&iam, "secretary");
    let created = client
        .create_student(with_token(new, &secretary))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "Carla Bianchi");
    client
        .delete_student(with_token(
            DeleteStudentRequest { id: created.id },
            &secretary,
        ))
        .await
        .unwrap();
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn an_undeclared_method_is_denied_to_everyone_and_audited_under_a_fixed_label() {
    let (capture, _guard) = common::capture();
    let (counters, _recorder) = common::counters();
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;
    let secretary = token(&iam, "secretary");

    let status = client
        .archive_students(with_token(ArchiveStudentsRequest {}, &secretary))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        Some(&secretary),
    );
    assert_eq!(status.message(), "this gRPC method declares no requirement");
    assert_eq!(
        server.calls(),
        0,
        "the undeclared method's handler never ran"
    );
    // The students are all still there.
    let listed = client
        .list_students(with_token(ListStudentsRequest {}, &secretary))
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(listed.len(), 2);

    // A declared method's decisions carry its path; an undeclared one's a
    // fixed `-`, since its path is the caller's to choose.
    let parent = token(&iam, "parent");
    client
        .get_student(with_token(get("s-1"), &parent))
        .await
        .unwrap_err();
    let denies = capture.audit_events("deny");
    assert_eq!(denies.len(), 2, "{denies:?}");
    for event in &denies {
        common::assert_audit_schema(event);
    }
    assert_eq!(denies[0]["guard"], "undeclared");
    assert_eq!(denies[0]["route"], "-");
    assert_eq!(denies[0]["user"], "secretary");
    assert_eq!(denies[0]["code"], "PERMISSION_DENIED");
    assert_eq!(denies[1]["guard"], "requirement");
    assert_eq!(denies[1]["route"], "/school.v1.Students/GetStudent");
    assert_eq!(denies[1]["requirement"], "scopes students >= READ");
    let audit = format!("{:?}", capture.audit());
    assert!(!audit.contains("ArchiveStudents"), "{audit}");
    // Counted like every decision, with bounded labels only.
    let decisions = counters.take_named("iam_guard_decisions_total");
    assert_eq!(
        decisions.get(&common::decision("undeclared", "deny", "PERMISSION_DENIED")),
        Some(&1),
        "{decisions:?}"
    );
    assert_eq!(
        decisions.get(&common::decision(
            "requirement",
            "deny",
            "INSUFFICIENT_SCOPE"
        )),
        Some(&1),
        "{decisions:?}"
    );
    assert!(
        decisions
            .keys()
            .all(|k| !k.contains("Students") && !k.contains("secretary")),
        "{decisions:?}"
    );
    assert!(!audit.contains(&secretary) && !audit.contains(&parent));
}

#[tokio::test]
async fn a_bad_request_is_invalid_argument() {
    let iam = TestIam::start().await;
    let server = Running::start(
        auth(&iam, Counting::new()).tenant_header(http::HeaderName::from_static("x-org")),
    )
    .await;
    let mut client = server.client().await;
    let teacher = token(&iam, "teacher");

    // The configured tenant header is missing.
    let status = client
        .get_student(with_token(get("s-1"), &teacher))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::InvalidArgument,
        "TENANT_REQUIRED",
        Some(&teacher),
    );
    assert_eq!(status.message(), "the x-org header is required");

    // Two credentials.
    let mut request = with_token(get("s-1"), &teacher);
    request.metadata_mut().append(
        "authorization",
        format!("Bearer {teacher}").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("x-org", "school-1".parse().unwrap());
    let status = client.get_student(request).await.unwrap_err();
    assert_refused(
        &status,
        Code::InvalidArgument,
        "invalid_request",
        Some(&teacher),
    );
    assert_eq!(status.message(), "more than one access token was sent");

    // A tenant the caller is not a member of is a refusal, not a bad
    // request.
    let mut request = with_token(get("s-1"), &teacher);
    request
        .metadata_mut()
        .insert("x-org", "school-2".parse().unwrap());
    let status = client.get_student(request).await.unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "TENANT_NOT_PERMITTED",
        Some(&teacher),
    );
    assert_eq!(server.calls(), 0);

    let mut request = with_token(get("s-1"), &teacher);
    request
        .metadata_mut()
        .insert("x-org", "school-1".parse().unwrap());
    client
        .get_student(request)
        .await
        .expect("a member of school-1");
}

#[tokio::test]
async fn an_iam_that_cannot_be_reached_is_unavailable() {
    // Nothing cached: the keys cannot be had.
    let iam = TestIam::start().await;
    let teacher = token(&iam, "teacher");
    iam.stop();
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;
    let status = client
        .get_student(with_token(get("s-1"), &teacher))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::Unavailable,
        "IAM_UNAVAILABLE",
        Some(&teacher),
    );
    assert_eq!(status.metadata().get("retry-after").unwrap(), "5");
    assert_eq!(server.calls(), 0);

    // The keys are there but the permissions cannot be had: the source's
    // detail stays in the logs.
    let iam = TestIam::start().await;
    let teacher = token(&iam, "teacher");
    let server = Running::start(auth(&iam, Counting::failing())).await;
    let mut client = server.client().await;
    let status = client
        .get_student(with_token(get("s-1"), &teacher))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::Unavailable,
        "IAM_UNAVAILABLE",
        Some(&teacher),
    );
    assert!(!status.message().contains("10.1.2.3"), "{status:?}");
    // A handler that reads permissions itself gets the same status.
    let status = client
        .who_am_i(with_token(WhoAmIRequest {}, &teacher))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::Unavailable,
        "IAM_UNAVAILABLE",
        Some(&teacher),
    );
    assert_eq!(
        server.calls(),
        1,
        "WhoAmI's handler ran, and answered the status"
    );
}

#[tokio::test]
async fn a_server_stream_is_served_or_refused_before_it_starts() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;

    let librarian = token(&iam, "librarian");
    let mut stream = client
        .list_students(with_token(ListStudentsRequest {}, &librarian))
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    while let Some(student) = stream.message().await.unwrap() {
        assert_eq!(
            student.health_notes, "",
            "no sensitive group for the librarian"
        );
        names.push(student.name);
    }
    assert_eq!(names, ["Ada Rossi", "Bruno Neri"]);

    let parent = token(&iam, "parent");
    let status = client
        .list_students(with_token(ListStudentsRequest {}, &parent))
        .await
        .expect_err("refused before the stream: the call itself fails");
    assert_refused(
        &status,
        Code::PermissionDenied,
        "INSUFFICIENT_SCOPE",
        Some(&parent),
    );
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn a_client_stream_is_refused_while_the_client_keeps_sending() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new())).await;
    let mut client = server.client().await;
    let new = |name: &str| CreateStudentRequest {
        name: name.into(),
        health_notes: String::new(),
    };

    // The request stream never ends: the refusal must not wait for it
    // (over HTTP/2 nothing is drained). The timeout only turns a hang
    // into a failure.
    let librarian = token(&iam, "librarian");
    let endless = tokio_stream::iter([new("Dario")]).chain(tokio_stream::pending());
    let call = client.import_students(with_token(endless, &librarian));
    let status = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the refusal is sent while the request stream is open")
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "ACTION_NOT_PERMITTED",
        Some(&librarian),
    );
    assert_eq!(server.calls(), 0);

    let secretary = token(&iam, "secretary");
    let two = tokio_stream::iter([new("Elena"), new("Fabio")]);
    let imported = client
        .import_students(with_token(two, &secretary))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.imported, 2);
    let listed = client
        .list_students(with_token(ListStudentsRequest {}, &secretary))
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(listed.len(), 4);
}

#[tokio::test]
async fn declared_methods_are_matched_exactly_and_ambiguity_denies() {
    let iam = TestIam::start().await;
    // GetStudent declared twice: neither declaration is honoured.
    let methods = GrpcMethods::new()
        .authenticated("/school.v1.Students/GetStudent")
        .method(
            "/school.v1.Students/GetStudent",
            iam_guard::Requirement::scopes("students", iam_guard::ScopeAccess::Read),
        )
        .authenticated("/school.v1.Students/WhoAmI")
        // A near miss of a real method is another method.
        .authenticated("/school.v1.students/ListStudents");
    let server = Running::start_with(auth(&iam, Counting::new()), methods).await;
    let mut client = server.client().await;
    let secretary = token(&iam, "secretary");
    let status = client
        .get_student(with_token(get("s-1"), &secretary))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        Some(&secretary),
    );
    let status = client
        .list_students(with_token(ListStudentsRequest {}, &secretary))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        Some(&secretary),
    );
    // Only token-checked: even the parent gets in.
    let parent = token(&iam, "parent");
    let me = client
        .who_am_i(with_token(WhoAmIRequest {}, &parent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.sub, "parent");
    assert!(me.readable_scopes.is_empty());
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn an_optional_auth_layer_still_needs_a_token_on_declared_methods() {
    let iam = TestIam::start().await;
    let server = Running::start(auth(&iam, Counting::new()).optional()).await;
    let mut client = server.client().await;
    for status in [
        client
            .who_am_i(Request::new(WhoAmIRequest {}))
            .await
            .unwrap_err(),
        client
            .get_student(Request::new(get("s-1")))
            .await
            .unwrap_err(),
    ] {
        assert_refused(&status, Code::Unauthenticated, "invalid_token", None);
    }
    assert_eq!(server.calls(), 0);
}

/// A gRPC service of the test's own, open to anyone (a health service's
/// place): answers every call with status OK, trailers-only, and counts.
#[derive(Clone)]
struct Open(Arc<AtomicUsize>);

impl tonic::server::NamedService for Open {
    const NAME: &'static str = "test.v1.Open";
}

impl tower::Service<http::Request<tonic::body::Body>> for Open {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        let res = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "0")
            .body(tonic::body::Body::empty())
            .unwrap();
        std::future::ready(Ok(res))
    }
}

#[tokio::test]
async fn a_protected_service_beside_an_open_one_on_one_server() {
    use tower::{Service as _, ServiceExt as _};
    let iam = TestIam::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port for the gRPC server");
    let addr = listener.local_addr().unwrap();
    let students = StudentsService::seeded();
    let calls = students.calls();
    let open_calls = Arc::new(AtomicUsize::new(0));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let protected =
        students::methods().protect(auth(&iam, Counting::new()), students.into_server());
    let server = Server::builder()
        .add_service(Open(open_calls.clone()))
        .add_service(protected)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = stopped.await;
        });
    tokio::spawn(async move { server.await.expect("the gRPC server runs") });

    // The open service answers without a token.
    let mut channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("a channel to the server on loopback");
    let ping = http::Request::post(format!("http://{addr}/test.v1.Open/Ping"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .unwrap();
    let res = channel.ready().await.unwrap().call(ping).await.unwrap();
    assert_eq!(res.headers()["grpc-status"], "0");
    assert_eq!(open_calls.load(Ordering::SeqCst), 1);

    // The protected one is guarded as the server-wide layers guard it.
    let mut client = StudentsClient::new(channel);
    let status = client
        .who_am_i(Request::new(WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_refused(&status, Code::Unauthenticated, "invalid_token", None);
    let secretary = token(&iam, "secretary");
    let status = client
        .archive_students(with_token(ArchiveStudentsRequest {}, &secretary))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        Some(&secretary),
    );
    let parent = token(&iam, "parent");
    let status = client
        .get_student(with_token(get("s-1"), &parent))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::PermissionDenied,
        "INSUFFICIENT_SCOPE",
        Some(&parent),
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let student = client
        .get_student(with_token(get("s-1"), &secretary))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(student.health_notes, "asthma");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(open_calls.load(Ordering::SeqCst), 1);
}

/// Drives the guards in process, for what a real client cannot send.
mod in_process {
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use iam_guard::{grpc::ResponseBody, ErrorRenderer};
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;

    /// A stand-in for a tonic server: answers 200 with a body.
    async fn echo(
        _req: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, std::convert::Infallible> {
        Ok(http::Response::new(tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from_static(b"served")),
        )))
    }

    fn request(
        path: &str,
        content_type: &str,
        token: Option<&str>,
    ) -> http::Request<tonic::body::Body> {
        let mut req = http::Request::post(path).header("content-type", content_type);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(tonic::body::Body::empty()).unwrap()
    }

    async fn body(res: http::Response<ResponseBody>) -> Bytes {
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_plain_http_client_gets_json_and_a_grpc_one_a_trailers_only_status() {
        let iam = TestIam::start().await;
        let parent = token(&iam, "parent");
        let service = ServiceBuilder::new()
            .layer(auth(&iam, Counting::new()))
            .layer(students::methods())
            .service_fn(echo);

        let res = service
            .clone()
            .oneshot(request(
                "/school.v1.Students/Nope",
                "application/json",
                Some(&parent),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert!(res.headers().get("grpc-status").is_none());
        let json: Value = serde_json::from_slice(&body(res).await).unwrap();
        assert_eq!(json["code"], "PERMISSION_DENIED");

        let res = service
            .clone()
            .oneshot(request(
                "/school.v1.Students/Nope",
                "application/grpc",
                Some(&parent),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/grpc");
        assert_eq!(res.headers()["grpc-status"], "7");
        assert_eq!(
            res.headers()["grpc-message"],
            "this gRPC method declares no requirement"
        );
        assert!(res.headers().get("content-length").is_none());
        assert!(
            http_body::Body::is_end_stream(res.body()),
            "trailers-only: no body"
        );
        assert!(body(res).await.is_empty());

        // A token-only method, passed: the service's own answer.
        let res = service
            .clone()
            .oneshot(request(
                "/school.v1.Students/WhoAmI",
                "application/grpc+proto",
                Some(&parent),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(body(res).await, "served");
    }

    #[tokio::test]
    async fn the_grpc_renderer_answers_every_client_and_a_custom_one_is_kept() {
        let iam = TestIam::start().await;
        let grpc_everywhere = ServiceBuilder::new()
            .layer(auth(&iam, Counting::new()).error_renderer(ErrorRenderer::grpc()))
            .layer(students::methods())
            .service_fn(echo);
        let res = grpc_everywhere
            .oneshot(request(
                "/school.v1.Students/WhoAmI",
                "application/json",
                None,
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "16");

        let custom = ServiceBuilder::new()
            .layer(
                auth(&iam, Counting::new()).error_renderer(ErrorRenderer::custom(|r| {
                    let mut res = http::Response::new(Bytes::from(format!("custom {}", r.code())));
                    *res.status_mut() = r.status();
                    res
                })),
            )
            .layer(students::methods())
            .service_fn(echo);
        let res = custom
            .oneshot(request(
                "/school.v1.Students/WhoAmI",
                "application/grpc",
                None,
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("grpc-status").is_none());
        assert_eq!(body(res).await, "custom invalid_token");
    }

    #[tokio::test]
    async fn grpc_methods_without_an_auth_layer_is_a_wiring_error_never_a_pass() {
        let service = ServiceBuilder::new()
            .layer(students::methods())
            .service_fn(echo);
        for path in [
            "/school.v1.Students/WhoAmI",
            "/school.v1.Students/GetStudent",
        ] {
            let res = service
                .clone()
                .oneshot(request(path, "application/grpc", None))
                .await
                .unwrap();
            assert_eq!(res.headers()["grpc-status"], "13", "{path}");
            assert_eq!(res.headers()["iam-guard-code"], "INTERNAL");
            assert!(body(res).await.is_empty());
        }
        // Undeclared is denied whatever is missing.
        let res = service
            .oneshot(request(
                "/school.v1.Students/Nope",
                "application/grpc",
                None,
            ))
            .await
            .unwrap();
        assert_eq!(res.headers()["grpc-status"], "7");
    }

    #[tokio::test]
    async fn a_handler_without_the_guards_gets_an_internal_status() {
        use iam_guard::grpc::GrpcRequestExt;
        let request = tonic::Request::new(());
        assert!(request.principal().is_none());
        assert!(request.request_context().is_none());
        let status = request.permissions().await.unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("JwtAuthGuardLayer"), "{status:?}");
    }
}
