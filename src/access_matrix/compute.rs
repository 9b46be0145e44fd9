//! The computation: roles compiled against the catalogue, each route
//! decided as the guards decide it.

use std::fmt;

use http::Method;

use super::route::{Route, RouteAccess};
use crate::{
    model::{Catalogue, CompiledPermissions, ScopeAccess, TenantCatalogues, TokenGrants},
    rejection::{ErrorCode, UNDECLARED_ROUTE},
};

/// Who asks: one role, several roles at once, or nobody.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// One role of the catalogue, alone.
    Role(String),
    /// A caller holding all these roles at once; ids the catalogue does
    /// not define contribute nothing, as in compilation.
    Roles(Vec<String>),
    /// A request without a token.
    Anonymous,
}

impl Subject {
    /// The roles the subject holds.
    pub fn roles(&self) -> &[String] {
        match self {
            Self::Role(role) => std::slice::from_ref(role),
            Self::Roles(roles) => roles,
            Self::Anonymous => &[],
        }
    }

    /// The row's label: the role id, the ids joined by ` + ` (role ids
    /// hold no whitespace, so this never reads as one id), or
    /// `(no token)`.
    pub fn label(&self) -> String {
        match self {
            Self::Role(role) => role.clone(),
            Self::Roles(roles) => roles.join(" + "),
            Self::Anonymous => "(no token)".to_owned(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// What a request of a subject on a route gets from the guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The guards let it through to the handler.
    Allowed,
    /// Refused with this code (and its status, [`ErrorCode::status`]).
    Refused(ErrorCode),
}

impl Outcome {
    /// Whether the request reaches the handler.
    pub fn is_allowed(self) -> bool {
        self == Self::Allowed
    }

    /// The refusal's code, if refused.
    pub fn code(self) -> Option<ErrorCode> {
        match self {
            Self::Allowed => None,
            Self::Refused(code) => Some(code),
        }
    }
}

impl fmt::Display for Outcome {
    /// `allowed` or `refused INSUFFICIENT_SCOPE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allowed => f.write_str("allowed"),
            Self::Refused(code) => write!(f, "refused {code}"),
        }
    }
}

/// Whether an action of an entity is effective for a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionAccess {
    /// No role of the subject grants it.
    None,
    /// A role grants it, but the compiled scopes miss a level it requires:
    /// not effective (the route answers `ACTION_NOT_PERMITTED`).
    Granted,
    /// Granted and every scope level it requires held.
    Effective,
}

impl fmt::Display for ActionAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Granted => "granted, not effective",
            Self::Effective => "effective",
        })
    }
}

/// The scope groups and actions of one entity, in declaration order: the
/// columns of its table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityColumns {
    /// The entity key.
    pub entity: String,
    /// The scope group keys.
    pub groups: Vec<String>,
    /// The action keys.
    pub actions: Vec<String>,
}

/// A subject's access to one entity, aligned with its [`EntityColumns`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityAccess {
    /// The entity key.
    pub entity: String,
    /// Each scope group with the subject's level.
    pub groups: Vec<(String, ScopeAccess)>,
    /// Each action with whether it is effective.
    pub actions: Vec<(String, ActionAccess)>,
}

/// One subject's line of the matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    subject: Subject,
    name: Option<String>,
    outcomes: Vec<Outcome>,
    entities: Vec<EntityAccess>,
}

impl Row {
    /// Who asks.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The row's label ([`Subject::label`]).
    pub fn label(&self) -> String {
        self.subject.label()
    }

    /// The role's display name, for a single role.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// One outcome per route, in the matrix's route order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The access per entity, in catalogue order.
    pub fn entities(&self) -> &[EntityAccess] {
        &self.entities
    }
}

/// Every subject against every route. See the [module docs](super).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessMatrix {
    tenant: Option<String>,
    routes: Vec<Route>,
    entities: Vec<EntityColumns>,
    rows: Vec<Row>,
}

/// Builds an [`AccessMatrix`]; from [`AccessMatrix::builder`].
#[derive(Debug)]
pub struct AccessMatrixBuilder<'c> {
    catalogue: &'c Catalogue,
    tenant: Option<String>,
    routes: Vec<Route>,
    role_sets: Vec<Vec<String>>,
    anonymous: bool,
}

impl AccessMatrix {
    /// A matrix of `catalogue`'s roles.
    pub fn builder(catalogue: &Catalogue) -> AccessMatrixBuilder<'_> {
        AccessMatrixBuilder {
            catalogue,
            tenant: None,
            routes: Vec::new(),
            role_sets: Vec::new(),
            anonymous: false,
        }
    }

    /// A matrix of the roles `tenant` has in a layered catalogue: the
    /// system roles plus the tenant's own. `None` (or a tenant without
    /// roles of its own) gives the system roles only.
    pub fn builder_for_tenant<'c>(
        catalogues: &'c TenantCatalogues,
        tenant: Option<&str>,
    ) -> AccessMatrixBuilder<'c> {
        let mut builder = Self::builder(catalogues.for_tenant(tenant));
        builder.tenant = tenant.map(str::to_owned);
        builder
    }

    /// The tenant whose roles these are, if one was chosen.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The entities' columns, in catalogue order.
    pub fn entities(&self) -> &[EntityColumns] {
        &self.entities
    }

    /// The rows: each role alone in catalogue order, then the role sets,
    /// then the caller without a token if asked for.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row labelled `label` ([`Subject::label`]).
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|row| row.label() == label)
    }

    /// The outcome of `method path` for the row labelled `label`.
    pub fn outcome(&self, label: &str, method: &Method, path: &str) -> Option<Outcome> {
        let route = self.routes.iter().position(|r| r.is(method, path))?;
        self.row(label).map(|row| row.outcomes[route])
    }

    /// The number of cells: rows × routes.
    pub fn cells(&self) -> usize {
        self.rows.len() * self.routes.len()
    }

    /// The number of allowed cells.
    pub fn allowed_cells(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|row| &row.outcomes)
            .filter(|o| o.is_allowed())
            .count()
    }

    /// The number of refused cells.
    pub fn refused_cells(&self) -> usize {
        self.cells() - self.allowed_cells()
    }
}

impl<'c> AccessMatrixBuilder<'c> {
    /// Adds one route.
    pub fn route(mut self, route: impl Into<Route>) -> Self {
        self.routes.push(route.into());
        self
    }

    /// Adds routes: a bundle's [`report`](crate::ProtectedResource::report),
    /// `(method, path, Option<Requirement>)` rows, or [`Route`]s.
    pub fn routes<I>(mut self, routes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Route>,
    {
        self.routes.extend(routes.into_iter().map(Into::into));
        self
    }

    /// Adds a row for a caller holding all of `roles` at once.
    pub fn role_set<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.role_sets
            .push(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a row for a request without a token.
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// Computes the matrix.
    pub fn build(self) -> AccessMatrix {
        let catalogue = self.catalogue;
        let mut subjects: Vec<(Subject, Option<String>)> = catalogue
            .roles()
            .map(|role| {
                (
                    Subject::Role(role.id().to_owned()),
                    Some(role.name().to_owned()),
                )
            })
            .collect();
        subjects.extend(
            self.role_sets
                .into_iter()
                .map(|roles| (Subject::Roles(roles), None)),
        );
        if self.anonymous {
            subjects.push((Subject::Anonymous, None));
        }
        let rows = subjects
            .into_iter()
            .map(|(subject, name)| row(catalogue, &self.routes, subject, name))
            .collect();
        let entities = catalogue
            .entities()
            .map(|entity| EntityColumns {
                entity: entity.key().to_owned(),
                groups: entity.scopes().map(|s| s.key().to_owned()).collect(),
                actions: entity.actions().map(|a| a.key().to_owned()).collect(),
            })
            .collect();
        AccessMatrix {
            tenant: self.tenant,
            routes: self.routes,
            entities,
            rows,
        }
    }
}

/// The roles a subject's token carries, as the route guards ask them:
/// by exact name. Qualified specs (`"<qualifier>:<name>"`) need a role
/// claim mapped with that qualifier, which catalogue roles are not; OAuth
/// scopes are not roles, so none is held.
struct HeldRoles<'a>(&'a [String]);

impl TokenGrants for HeldRoles<'_> {
    fn has_role(&self, spec: &str) -> bool {
        self.0.iter().any(|role| role == spec)
    }

    fn has_oauth_scope(&self, _scope: &str) -> bool {
        false
    }
}

fn row(catalogue: &Catalogue, routes: &[Route], subject: Subject, name: Option<String>) -> Row {
    let perms = catalogue.compile_roles(subject.roles());
    let held = HeldRoles(subject.roles());
    let anonymous = subject == Subject::Anonymous;
    let outcomes = routes
        .iter()
        .map(|route| decide(route.access(), anonymous, &held, &perms))
        .collect();
    let entities = catalogue
        .entities()
        .map(|entity| {
            let key = entity.key();
            EntityAccess {
                entity: key.to_owned(),
                groups: entity
                    .scopes()
                    .map(|s| (s.key().to_owned(), perms.scope_access(key, s.key())))
                    .collect(),
                actions: entity
                    .actions()
                    .map(|a| {
                        let access = if perms.has_action(key, a.key()) {
                            ActionAccess::Effective
                        } else if subject.roles().iter().any(|id| {
                            catalogue
                                .role(id)
                                .is_some_and(|role| role.grants_action(key, a.key()))
                        }) {
                            ActionAccess::Granted
                        } else {
                            ActionAccess::None
                        };
                        (a.key().to_owned(), access)
                    })
                    .collect(),
            }
        })
        .collect();
    Row {
        subject,
        name,
        outcomes,
        entities,
    }
}

/// What the guards answer: the auth layer first (no token is a 401
/// `invalid_token` wherever one is needed), then the bundle's fail-closed
/// answer to a route without a requirement, then the requirement guard's
/// own decision and code.
fn decide(
    access: &RouteAccess,
    anonymous: bool,
    held: &HeldRoles<'_>,
    perms: &CompiledPermissions,
) -> Outcome {
    match access {
        RouteAccess::Public => Outcome::Allowed,
        _ if anonymous => Outcome::Refused(ErrorCode::InvalidToken),
        RouteAccess::Authenticated => Outcome::Allowed,
        RouteAccess::Undeclared => Outcome::Refused(UNDECLARED_ROUTE),
        RouteAccess::Requires(requirement) => match requirement.decide(held, perms) {
            Ok(()) => Outcome::Allowed,
            Err(denial) => Outcome::Refused(ErrorCode::from(denial)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PermissionRule, Requirement};

    fn matrix() -> AccessMatrix {
        let catalogue = Catalogue::students_fixture();
        AccessMatrix::builder(&catalogue)
            .route((
                Method::GET,
                "/students",
                Some(Requirement::scopes("students", ScopeAccess::Read)),
            ))
            .route((
                Method::PATCH,
                "/students/{id}",
                Some(Requirement::scopes("students", ScopeAccess::Write)),
            ))
            .route((
                Method::POST,
                "/students",
                Some(Requirement::action("students", "create")),
            ))
            .route((Method::OPTIONS, "/students", None))
            .route(Route::new(
                Method::DELETE,
                "/regions/{id}",
                Requirement::all_of(["inventory.regions.delete"]),
            ))
            .route(Route::new(
                Method::GET,
                "/admin",
                Requirement::roles(PermissionRule::AnyOf(vec!["admin".into()])),
            ))
            .route(Route::new(
                Method::GET,
                "/grades",
                Requirement::oauth_scopes(PermissionRule::AllOf(vec!["grades:read".into()])),
            ))
            .route(Route::new(
                Method::GET,
                "/permissions",
                RouteAccess::Authenticated,
            ))
            .route(Route::new(Method::GET, "/health", RouteAccess::Public))
            .role_set(["internal_teacher", "parent"])
            .role_set(["nobody"])
            .anonymous()
            .build()
    }

    fn refused(code: ErrorCode) -> Option<Outcome> {
        Some(Outcome::Refused(code))
    }

    #[test]
    fn each_route_gets_the_code_of_its_guard() {
        let m = matrix();
        let get = |label: &str, method: Method, path: &str| m.outcome(label, &method, path);
        assert_eq!(
            get("admin", Method::POST, "/students"),
            Some(Outcome::Allowed)
        );
        assert_eq!(
            get("hr_secretary", Method::POST, "/students"),
            refused(ErrorCode::ActionNotPermitted)
        );
        assert_eq!(
            get("principal", Method::PATCH, "/students/{id}"),
            refused(ErrorCode::InsufficientScope)
        );
        assert_eq!(
            get("principal", Method::GET, "/students"),
            Some(Outcome::Allowed)
        );
        // Fail closed, for everyone, admin included.
        assert_eq!(
            get("admin", Method::OPTIONS, "/students"),
            refused(ErrorCode::PermissionDenied)
        );
        // No role of the fixture holds a flat permission.
        for role in ["admin", "parent"] {
            assert_eq!(
                get(role, Method::DELETE, "/regions/{id}"),
                refused(ErrorCode::PermissionDenied)
            );
        }
        assert_eq!(get("admin", Method::GET, "/admin"), Some(Outcome::Allowed));
        assert_eq!(
            get("principal", Method::GET, "/admin"),
            refused(ErrorCode::RoleRequired)
        );
        assert_eq!(
            get("admin", Method::GET, "/grades"),
            refused(ErrorCode::InsufficientOAuthScope)
        );
        assert_eq!(
            get("student", Method::GET, "/permissions"),
            Some(Outcome::Allowed)
        );
        assert_eq!(
            get("(no token)", Method::GET, "/permissions"),
            refused(ErrorCode::InvalidToken)
        );
        assert_eq!(
            get("(no token)", Method::GET, "/health"),
            Some(Outcome::Allowed)
        );
        assert_eq!(
            get("nobody", Method::GET, "/students"),
            refused(ErrorCode::InsufficientScope)
        );
        assert_eq!(get("admin", Method::GET, "/nowhere"), None);
        assert_eq!(get("janitor", Method::GET, "/students"), None);
    }

    #[test]
    fn rows_are_every_role_then_role_sets_then_no_token() {
        let m = matrix();
        let labels: Vec<String> = m.rows().iter().map(Row::label).collect();
        let catalogue = Catalogue::students_fixture();
        let mut expected: Vec<String> = catalogue.roles().map(|r| r.id().to_owned()).collect();
        expected.extend([
            "internal_teacher + parent".into(),
            "nobody".into(),
            "(no token)".into(),
        ]);
        assert_eq!(labels, expected);
        assert_eq!(m.row("admin").unwrap().name(), Some("Admin"));
        assert_eq!(m.row("nobody").unwrap().name(), None);
        assert_eq!(m.cells(), 14 * 9);
        assert_eq!(m.allowed_cells() + m.refused_cells(), m.cells());
        let allowed = m
            .rows()
            .iter()
            .flat_map(|r| r.outcomes())
            .filter(|o| **o == Outcome::Allowed)
            .count();
        assert_eq!(m.allowed_cells(), allowed);
    }

    #[test]
    fn a_role_set_is_compiled_as_one_caller() {
        let m = matrix();
        let both = m.row("internal_teacher + parent").unwrap();
        let students = &both.entities()[0];
        let sensitive = students
            .groups
            .iter()
            .find(|(g, _)| g == "sensitive")
            .unwrap();
        // The parent brings READ on sensitive, the teacher WRITE on attendance.
        assert_eq!(sensitive.1, ScopeAccess::Read);
        let attendance = students
            .groups
            .iter()
            .find(|(g, _)| g == "attendance")
            .unwrap();
        assert_eq!(attendance.1, ScopeAccess::Write);
    }

    #[test]
    fn actions_say_effective_granted_or_none() {
        let m = matrix();
        let action = |label: &str, key: &str| {
            m.row(label).unwrap().entities()[0]
                .actions
                .iter()
                .find(|(a, _)| a == key)
                .unwrap()
                .1
        };
        assert_eq!(action("admin", "create"), ActionAccess::Effective);
        assert_eq!(action("hr_secretary", "create"), ActionAccess::Granted);
        assert_eq!(action("student", "create"), ActionAccess::None);
        assert_eq!(action("(no token)", "delete"), ActionAccess::None);
        let columns = &m.entities()[0];
        assert_eq!(columns.entity, "students");
        assert_eq!(columns.groups.len(), 8);
        assert!(columns.actions.contains(&"create".to_owned()));
    }

    #[test]
    fn a_tenant_adds_its_own_roles_to_the_presets() {
        let doc = r#"{
          "entities": [{ "key": "students", "scopes": [{ "key": "anagraphic" }, { "key": "sensitive" }] }],
          "roles": [{ "id": "teacher", "name": "Teacher", "scopes": { "students": { "anagraphic": "READ" } } }],
          "tenants": { "school-1": { "roles": [
            { "id": "nurse", "name": "Nurse", "scopes": { "students": { "sensitive": "WRITE" } } }
          ] } }
        }"#;
        let catalogues = TenantCatalogues::from_json(doc).unwrap();
        let route = || {
            Route::new(
                Method::PATCH,
                "/students/{id}",
                Requirement::scopes("students", ScopeAccess::Write),
            )
        };
        let school = AccessMatrix::builder_for_tenant(&catalogues, Some("school-1"))
            .route(route())
            .build();
        assert_eq!(school.tenant(), Some("school-1"));
        assert_eq!(school.rows().len(), 2);
        assert_eq!(
            school.outcome("nurse", &Method::PATCH, "/students/{id}"),
            Some(Outcome::Allowed)
        );
        let base = AccessMatrix::builder_for_tenant(&catalogues, None)
            .route(route())
            .build();
        assert_eq!(base.tenant(), None);
        assert!(base.row("nurse").is_none());
        assert_eq!(
            base.outcome("teacher", &Method::PATCH, "/students/{id}"),
            Some(Outcome::Refused(ErrorCode::InsufficientScope))
        );
    }
}
