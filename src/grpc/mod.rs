//! gRPC (tonic): requirements per gRPC method, refusals as gRPC status.
//!
//! A tonic server is a Tower service like any other, so the guards sit
//! in front of it with `Server::builder().layer(..)`:
//!
//! - [`JwtAuthGuardLayer`](crate::JwtAuthGuardLayer) authenticates each
//!   call from its `authorization: Bearer …` metadata and plants the
//!   [`RequestContext`](crate::RequestContext), as for HTTP;
//! - [`GrpcMethods`] declares what each gRPC method (`/package.Service/Method`)
//!   requires and checks it before the service sees the call. A method
//!   it does not declare is denied (`PERMISSION_DENIED`), never open, and
//!   its [`report`](GrpcMethods::report) says so at startup. It also
//!   carries tonic's response body in a [`ResponseBody`] the guards can
//!   build refusals in, so it belongs behind the auth layer even when
//!   every method is only [`authenticated`](GrpcMethods::authenticated).
//!
//! Every refusal goes through the same deny path as HTTP ones (audited,
//! counted), and a call is answered the gRPC way: a trailers-only
//! response (HTTP 200, `content-type: application/grpc`, `grpc-status`,
//! `grpc-message` percent-encoded, no body), whatever JSON renderer is
//! configured, because a gRPC client can read nothing else (see
//! [`ErrorRenderer::grpc`](crate::ErrorRenderer::grpc)). The status
//! codes: 401 → `UNAUTHENTICATED`, 403 → `PERMISSION_DENIED`,
//! 400/413/415 → `INVALID_ARGUMENT`, 500 → `INTERNAL`, 503 →
//! `UNAVAILABLE` ([`ErrorCode::grpc_code`](crate::ErrorCode::grpc_code)).
//! A refused server-streaming call is refused before its stream starts.
//! gRPC-Web calls are answered this way once translated to gRPC: put
//! tonic-web's layer outside (before) the guards.
//!
//! In a handler, [`GrpcRequestExt`] reads the caller and its permissions
//! (loaded at most once per call, whoever asks first) from the
//! `tonic::Request`.
//!
//! # Example
//!
//! ```no_run
//! use iam_guard::{grpc::GrpcMethods, ActionGuard, ClaimsSource, JwtAuthGuardLayer, Requirement};
//! use tonic::{service::Routes, transport::Server};
//!
//! // `services` is `Routes::new(StudentsServer::new(MyStudents))`, with
//! // the server type tonic generated from your .proto file.
//! async fn serve(services: Routes) -> Result<(), Box<dyn std::error::Error>> {
//!     let auth = JwtAuthGuardLayer::issuer("https://iam.example.com/realms/school")?
//!         .audience(["students-api"])
//!         .permissions(ClaimsSource::new());
//!     let methods = GrpcMethods::new()
//!         // A requirement guard's requirement, or any `Requirement`.
//!         .method("/school.v1.Students/CreateStudent", ActionGuard::new("students", "create"))
//!         .method(
//!             "/school.v1.Students/ExportGrades",
//!             Requirement::all_of(["grades.export"]),
//!         )
//!         .authenticated("/school.v1.Students/WhoAmI");
//!     methods.log_report();
//!     Server::builder()
//!         .layer(auth)
//!         .layer(methods)
//!         .serve("127.0.0.1:50051".parse()?, services)
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! With generated code the last lines read
//! `Server::builder().layer(auth).layer(methods).add_service(StudentsServer::new(MyStudents)).serve(addr)`.
//!
//! To protect one service and leave another open on the same server (a
//! health service that probes call without a token), protect the service
//! instead of the server: [`GrpcMethods::protect`] gives a
//! [`ProtectedService`] of the same name, for `add_service`:
//! `Server::builder().add_service(health).add_service(methods.protect(auth, StudentsServer::new(MyStudents)))`.
//!
//! A handler:
//!
//! ```
//! use iam_guard::grpc::GrpcRequestExt;
//! use tonic::{Request, Status};
//!
//! async fn get_student(request: Request<()>) -> Result<String, Status> {
//!     let caller = request
//!         .principal()
//!         .ok_or_else(|| Status::unauthenticated("no caller"))?
//!         .user_id()
//!         .to_owned();
//!     // Already loaded by the method's requirement: no second load.
//!     let permissions = request.permissions().await?;
//!     let sensitive = permissions.can_read("students", "sensitive");
//!     Ok(format!("{caller} reads sensitive data: {sensitive}"))
//! }
//! # let _ = get_student;
//! ```

mod body;
mod methods;
mod protected;
mod request;
mod service;

pub use body::ResponseBody;
pub use methods::{GrpcMethods, MethodAccess, MethodReport};
pub use protected::{ProtectedFuture, ProtectedService};
pub use request::GrpcRequestExt;
pub use service::{GrpcMethodsGuard, ResponseFuture};
