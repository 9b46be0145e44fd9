//! The students service of the grpc example: the generated code, the
//! handlers, which requirement each method has, and the demo users.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use iam_guard::{
    grpc::{GrpcMethods, GrpcRequestExt},
    ActionGuard, ScopeGuard,
};
use serde_json::{json, Value};
use tonic::{Request, Response, Status, Streaming};

/// The code tonic-prost-build generated from `proto/students.proto`
/// (tests/grpc_codegen.rs keeps it in step with the .proto).
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub(crate) mod pb {
    include!("school.v1.rs");
}

use pb::{
    students_server::{Students, StudentsServer},
    ArchiveStudentsRequest, ArchiveStudentsResponse, CreateStudentRequest, DeleteStudentRequest,
    DeleteStudentResponse, GetStudentRequest, ImportStudentsResponse, ListStudentsRequest, Student,
    WhoAmIRequest, WhoAmIResponse,
};

/// The entity every method is about.
pub(crate) const ENTITY: &str = "students";

/// What each method requires. `ArchiveStudents` is left out on purpose:
/// it is denied to everyone, and the startup report says so.
pub(crate) fn methods() -> GrpcMethods {
    let method = |name: &str| format!("/{}/{name}", pb::students_server::SERVICE_NAME);
    GrpcMethods::new()
        .method(&method("GetStudent"), ScopeGuard::read(ENTITY))
        .method(&method("ListStudents"), ScopeGuard::read(ENTITY))
        .method(&method("CreateStudent"), ActionGuard::new(ENTITY, "create"))
        .method(
            &method("ImportStudents"),
            ActionGuard::new(ENTITY, "create"),
        )
        .method(&method("DeleteStudent"), ActionGuard::new(ENTITY, "delete"))
        .authenticated(&method("WhoAmI"))
}

/// The demo users and what they may do, as `entities` claims (read by
/// `ClaimsSource`): a secretary manages students, a teacher reads them
/// (sensitive data included), a librarian sees names only, and a parent
/// nothing of this entity.
pub(crate) const DEMO_USERS: [(&str, &str); 4] = [
    (
        "secretary",
        "reads and writes students; creates and deletes them",
    ),
    ("teacher", "reads students, sensitive notes included"),
    ("librarian", "reads names only"),
    ("parent", "no access to students"),
];

/// The claims of demo user `name`, `None` for another name.
pub(crate) fn demo_claims(name: &str) -> Option<Value> {
    let students = match name {
        "secretary" => json!({
            "scopes": {"anagraphic": "WRITE", "sensitive": "WRITE"},
            "actions": {"create": true, "delete": true},
        }),
        "teacher" => json!({"scopes": {"anagraphic": "READ", "sensitive": "READ"}}),
        "librarian" => json!({"scopes": {"anagraphic": "READ"}}),
        "parent" => json!({}),
        _ => return None,
    };
    Some(json!({
        "sub": name,
        "tenantId": "school-1",
        "entities": {ENTITY: students},
    }))
}

/// The handlers, over an in-memory store.
#[derive(Debug, Default)]
pub(crate) struct StudentsService {
    store: Mutex<BTreeMap<String, Student>>,
    next_id: AtomicUsize,
    /// Handler calls, for tests that check a refused call never got here.
    calls: Arc<AtomicUsize>,
}

impl StudentsService {
    /// A store with two students.
    pub(crate) fn seeded() -> Self {
        let service = Self::default();
        for (name, notes) in [("Ada Rossi", "asthma"), ("Bruno Neri", "")] {
            service.insert(name, notes);
        }
        service
    }

    /// The tonic server of this service.
    pub(crate) fn into_server(self) -> StudentsServer<Self> {
        StudentsServer::new(self)
    }

    /// The handler call counter, shared with clones of it.
    pub(crate) fn calls(&self) -> Arc<AtomicUsize> {
        self.calls.clone()
    }

    fn insert(&self, name: &str, health_notes: &str) -> Student {
        let id = format!("s-{}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        let student = Student {
            id: id.clone(),
            name: name.to_owned(),
            health_notes: health_notes.to_owned(),
        };
        self.lock().insert(id, student.clone());
        student
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Student>> {
        // A panic while holding the lock leaves plain data behind.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// `student` as the caller may see it: the sensitive group only for those
/// who can read it. (The guard checked the method; which groups a message
/// carries is the handler's to decide, with the same permissions.)
async fn visible<T>(request: &Request<T>, mut student: Student) -> Result<Student, Status> {
    let permissions = request.permissions().await?;
    if !permissions.can_read(ENTITY, "sensitive") {
        student.health_notes.clear();
    }
    Ok(student)
}

type StudentStream =
    Pin<Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<Student, Status>> + Send>>;

#[tonic::async_trait]
impl Students for StudentsService {
    async fn get_student(
        &self,
        request: Request<GetStudentRequest>,
    ) -> Result<Response<Student>, Status> {
        self.called();
        let found = self.lock().get(&request.get_ref().id).cloned();
        let student = found.ok_or_else(|| Status::not_found("no such student"))?;
        Ok(Response::new(visible(&request, student).await?))
    }

    type ListStudentsStream = StudentStream;

    async fn list_students(
        &self,
        request: Request<ListStudentsRequest>,
    ) -> Result<Response<Self::ListStudentsStream>, Status> {
        self.called();
        let all: Vec<Student> = self.lock().values().cloned().collect();
        let mut visible_all = Vec::with_capacity(all.len());
        for student in all {
            visible_all.push(Ok(visible(&request, student).await?));
        }
        Ok(Response::new(Box::pin(tonic::codegen::tokio_stream::iter(
            visible_all,
        ))))
    }

    async fn create_student(
        &self,
        request: Request<CreateStudentRequest>,
    ) -> Result<Response<Student>, Status> {
        self.called();
        let new = request.get_ref();
        if new.name.trim().is_empty() {
            return Err(Status::invalid_argument("a student needs a name"));
        }
        let student = self.insert(&new.name, &new.health_notes);
        Ok(Response::new(visible(&request, student).await?))
    }

    async fn import_students(
        &self,
        request: Request<Streaming<CreateStudentRequest>>,
    ) -> Result<Response<ImportStudentsResponse>, Status> {
        self.called();
        let mut stream = request.into_inner();
        let mut imported = 0;
        while let Some(new) = stream.message().await? {
            self.insert(&new.name, &new.health_notes);
            imported += 1;
        }
        Ok(Response::new(ImportStudentsResponse { imported }))
    }

    async fn delete_student(
        &self,
        request: Request<DeleteStudentRequest>,
    ) -> Result<Response<DeleteStudentResponse>, Status> {
        self.called();
        match self.lock().remove(&request.get_ref().id) {
            Some(_) => Ok(Response::new(DeleteStudentResponse {})),
            None => Err(Status::not_found("no such student")),
        }
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        self.called();
        let principal = request
            .principal()
            .ok_or_else(|| Status::unauthenticated("no caller"))?;
        let (sub, tenant) = (
            principal.user_id().to_owned(),
            principal.tenant_id().unwrap_or_default().to_owned(),
        );
        let permissions = request.permissions().await?;
        Ok(Response::new(WhoAmIResponse {
            sub,
            tenant,
            readable_scopes: permissions
                .readable_scopes(ENTITY)
                .map(str::to_owned)
                .collect(),
        }))
    }

    async fn archive_students(
        &self,
        _request: Request<ArchiveStudentsRequest>,
    ) -> Result<Response<ArchiveStudentsResponse>, Status> {
        // Never reached: the method is declared nowhere, so the guard
        // denies it before tonic routes it here.
        self.called();
        let archived = self.lock().len() as u32;
        self.lock().clear();
        Ok(Response::new(ArchiveStudentsResponse { archived }))
    }
}
