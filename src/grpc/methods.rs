//! [`GrpcMethods`]: which requirement each gRPC method has, and the
//! startup report that says so.

use std::{collections::BTreeMap, fmt, sync::Arc};

use tower_layer::Layer;

use super::service::GrpcMethodsGuard;
use crate::model::Requirement;

/// The requirements of a tonic server's gRPC methods, by full method path
/// (`/package.Service/Method`). See the [module docs](super).
///
/// A method is declared with the [`Requirement`] its caller must meet
/// ([`method`](Self::method)) or as open to any caller with a valid token
/// ([`authenticated`](Self::authenticated)). Every other path is denied
/// with `PERMISSION_DENIED`, and so is a path declared twice or one that
/// is not a gRPC method path: fail closed. [`report`](Self::report) lists
/// what each method got; [`log_report`](Self::log_report) logs it at
/// startup.
///
/// Builder methods consume `self` and never panic; a clone shares the
/// table until one of them changes it.
#[derive(Clone, Default)]
pub struct GrpcMethods {
    table: Arc<Table>,
}

/// What the guard looks up per call.
#[derive(Clone, Default)]
pub(crate) struct Table {
    methods: BTreeMap<Box<str>, Entry>,
    /// In declaration order, for the report.
    order: Vec<Box<str>>,
}

#[derive(Clone)]
pub(crate) struct Entry {
    /// The route label of this method's decisions: the declared path.
    pub(crate) label: Arc<str>,
    pub(crate) access: Access,
}

/// What a declared path gets.
#[derive(Clone)]
pub(crate) enum Access {
    Requires(Arc<Requirement>),
    Authenticated,
    /// Declared in a way that cannot be honoured (twice, or not a method
    /// path): denied.
    Denied(&'static str),
}

const DECLARED_TWICE: &str = "declared more than once";
const NOT_A_METHOD_PATH: &str = "not a gRPC method path (/package.Service/Method)";

impl Table {
    /// The entry of `path`; `None` for an undeclared one.
    pub(crate) fn get(&self, path: &str) -> Option<&Entry> {
        self.methods.get(path)
    }
}

impl GrpcMethods {
    /// No method declared yet: every call is denied.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `path` (`/school.v1.Students/GetStudent`) with the
    /// requirement its caller must meet: a [`Requirement`], or the guard
    /// that would enforce it on an HTTP route (`ScopeGuard::read("students")`,
    /// `ActionGuard::new("students", "create")`, `PermissionGuard::all_of([..])`, …).
    pub fn method(self, path: &str, requirement: impl Into<Requirement>) -> Self {
        self.declare(path, Access::Requires(Arc::new(requirement.into())))
    }

    /// Declares `path` open to any caller the auth layer admitted with a
    /// token, with no requirement.
    pub fn authenticated(self, path: &str) -> Self {
        self.declare(path, Access::Authenticated)
    }

    fn declare(mut self, path: &str, access: Access) -> Self {
        let table = Arc::make_mut(&mut self.table);
        let access = if !is_method_path(path) {
            Access::Denied(NOT_A_METHOD_PATH)
        } else {
            access
        };
        match table.methods.get_mut(path) {
            // Two declarations of one method: which one was meant cannot
            // be known, so neither is honoured.
            Some(entry) => entry.access = Access::Denied(DECLARED_TWICE),
            None => {
                table.order.push(path.into());
                table.methods.insert(
                    path.into(),
                    Entry {
                        label: path.into(),
                        access,
                    },
                );
            }
        }
        self
    }

    /// Every declared method with what it got, in declaration order, then
    /// one line for every other method (denied).
    pub fn report(&self) -> Vec<MethodReport> {
        let mut lines: Vec<MethodReport> = self
            .table
            .order
            .iter()
            .filter_map(|path| {
                let entry = self.table.methods.get(path)?;
                let access = match &entry.access {
                    Access::Requires(requirement) => {
                        MethodAccess::Requires(Requirement::clone(requirement))
                    }
                    Access::Authenticated => MethodAccess::Authenticated,
                    Access::Denied(why) => MethodAccess::Denied(why),
                };
                Some(MethodReport {
                    method: Some(path.to_string()),
                    access,
                })
            })
            .collect();
        lines.push(MethodReport {
            method: None,
            access: MethodAccess::Denied("no requirement declared"),
        });
        lines
    }

    /// Logs the [`report`](Self::report) on target `iam_guard::startup`:
    /// methods with a requirement at INFO, denied ones at WARN.
    pub fn log_report(&self) {
        for line in self.report() {
            match line.access {
                MethodAccess::Denied(_) => {
                    tracing::warn!(target: "iam_guard::startup", "{line}")
                }
                _ => tracing::info!(target: "iam_guard::startup", "{line}"),
            }
        }
    }
}

impl fmt::Debug for GrpcMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcMethods")
            .field("methods", &self.table.order)
            .finish()
    }
}

impl<S> Layer<S> for GrpcMethods {
    type Service = GrpcMethodsGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMethodsGuard::new(inner, self.table.clone())
    }
}

/// Whether `path` has the shape of a gRPC method: `/<service>/<method>`,
/// both non-empty, of visible ASCII.
fn is_method_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    !service.is_empty()
        && !method.is_empty()
        && !method.contains('/')
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// One line of [`GrpcMethods::report`].
#[derive(Debug, Clone, PartialEq)]
pub struct MethodReport {
    /// The full method path; `None` for the line about every method that
    /// was not declared.
    pub method: Option<String>,
    /// What it gets.
    pub access: MethodAccess,
}

/// What a gRPC method gets from [`GrpcMethods`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MethodAccess {
    /// The caller must meet this requirement.
    Requires(Requirement),
    /// Any caller with a valid token.
    Authenticated,
    /// Denied to everyone, and why.
    Denied(&'static str),
}

impl fmt::Display for MethodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Some(method) => f.write_str(method)?,
            None => f.write_str("any other method")?,
        }
        match &self.access {
            MethodAccess::Requires(requirement) => write!(f, " -> {requirement}"),
            MethodAccess::Authenticated => f.write_str(" -> any authenticated caller"),
            MethodAccess::Denied(why) => write!(f, " -> DENIED ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScopeAccess;

    #[test]
    fn method_paths() {
        for ok in ["/school.v1.Students/GetStudent", "/S/M", "/a.b.C/D_e"] {
            assert!(is_method_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "school.v1.Students/GetStudent",
            "/school.v1.Students",
            "/school.v1.Students/",
            "//GetStudent",
            "/a/b/c",
            "/a b/c",
            "/a/\u{e9}",
        ] {
            assert!(!is_method_path(bad), "{bad}");
        }
    }

    #[test]
    fn report_lists_each_method_then_denies_the_rest() {
        let methods = GrpcMethods::new()
            // A requirement guard stands for its requirement.
            .method(
                "/school.v1.Students/GetStudent",
                crate::ScopeGuard::read("students"),
            )
            .authenticated("/school.v1.Students/Ping")
            .method(
                "/school.v1.Students/DeleteStudent",
                crate::ActionGuard::new("students", "delete"),
            )
            .authenticated("/school.v1.Students/DeleteStudent")
            .authenticated("school.v1.Students/NoSlash");
        let lines: Vec<String> = methods.report().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "/school.v1.Students/GetStudent -> scopes students >= READ",
                "/school.v1.Students/Ping -> any authenticated caller",
                "/school.v1.Students/DeleteStudent -> DENIED (declared more than once)",
                "school.v1.Students/NoSlash -> DENIED (not a gRPC method path (/package.Service/Method))",
                "any other method -> DENIED (no requirement declared)",
            ]
        );
        assert!(matches!(
            methods
                .table
                .get("/school.v1.Students/DeleteStudent")
                .unwrap()
                .access,
            Access::Denied(DECLARED_TWICE)
        ));
        assert!(methods.table.get("/school.v1.Students/Other").is_none());
        assert_eq!(
            methods.report()[0].access,
            MethodAccess::Requires(Requirement::scopes("students", ScopeAccess::Read))
        );
    }

    #[test]
    fn a_clone_keeps_its_table_when_the_original_changes() {
        let before = GrpcMethods::new().authenticated("/a.S/One");
        let after = before.clone().authenticated("/a.S/Two");
        assert_eq!(before.report().len(), 2);
        assert_eq!(after.report().len(), 3);
    }
}
