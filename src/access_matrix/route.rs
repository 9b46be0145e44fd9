//! The routes of a matrix: method, path and what guards them.

use std::fmt;

use http::Method;

use crate::model::Requirement;

/// What a route demands before its handler runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteAccess {
    /// No token needed (a health check, a metadata document).
    Public,
    /// Any valid token, no permission (the permissions endpoint).
    Authenticated,
    /// A valid token and this requirement.
    Requires(Requirement),
    /// Served by a protected bundle without a requirement: denied to
    /// everyone (`PERMISSION_DENIED`), as the bundle fails closed.
    Undeclared,
}

impl From<Requirement> for RouteAccess {
    fn from(requirement: Requirement) -> Self {
        Self::Requires(requirement)
    }
}

impl From<Option<Requirement>> for RouteAccess {
    /// A protected bundle's reading: `None` is a route denied to everyone.
    fn from(requirement: Option<Requirement>) -> Self {
        requirement.map_or(Self::Undeclared, Self::Requires)
    }
}

impl fmt::Display for RouteAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public => f.write_str("public (no token)"),
            Self::Authenticated => f.write_str("any valid token"),
            Self::Requires(requirement) => write!(f, "{requirement}"),
            Self::Undeclared => f.write_str("DENIED (no requirement declared)"),
        }
    }
}

/// One method on one path, and what guards it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    method: Method,
    path: String,
    access: RouteAccess,
}

impl Route {
    /// `method path`, guarded by `access` (a [`RouteAccess`], a
    /// [`Requirement`], or a bundle's `Option<Requirement>`).
    pub fn new(method: Method, path: impl Into<String>, access: impl Into<RouteAccess>) -> Self {
        Self {
            method,
            path: path.into(),
            access: access.into(),
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path as registered, such as `/students/{id}`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What guards the route.
    pub fn access(&self) -> &RouteAccess {
        &self.access
    }

    /// Whether this is `method path`.
    pub(crate) fn is(&self, method: &Method, path: &str) -> bool {
        self.method == *method && self.path == path
    }
}

impl fmt::Display for Route {
    /// `GET /students`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl<P: Into<String>> From<(Method, P, Option<Requirement>)> for Route {
    /// A row as a bundle reports it, for routes guarded one by one.
    fn from((method, path, requirement): (Method, P, Option<Requirement>)) -> Self {
        Self::new(method, path, requirement)
    }
}

#[cfg(feature = "axum")]
impl From<&crate::guard::protected::RouteReport> for Route {
    fn from(line: &crate::guard::protected::RouteReport) -> Self {
        Self::new(line.method.clone(), &line.path, line.requirement.clone())
    }
}
