//! What the guards declare about one route, as the OpenAPI step reads it.

use http::Method;

use crate::model::Requirement;

/// What a route asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteAccess {
    /// A valid token that meets this requirement.
    Requirement(Requirement),
    /// A valid token, nothing more (a route behind `JwtAuthGuardLayer`
    /// with no requirement guard, such as the permissions endpoint).
    Authenticated,
    /// Nobody: a route of a [`ProtectedResource`](crate::ProtectedResource)
    /// with no requirement, answered 403 whatever the token.
    Denied,
}

/// The field guards of a route of a [`ProtectedResource`](crate::ProtectedResource).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldGuards {
    /// The entity whose scope groups are checked and filtered.
    pub entity: String,
    /// Whether `FieldWriteGuard` reads the body (POST, PUT and PATCH):
    /// the route can also answer 400, 413 and 415.
    pub write: bool,
}

/// One route as the guards declare it: method, path and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeclaredRoute {
    /// The method.
    pub method: Method,
    /// The path as routed (axum syntax: `/students/{id}`).
    pub path: String,
    /// What the route asks of the caller.
    pub access: RouteAccess,
    /// Whether the requirement came from the method convention of a
    /// bundle.
    pub by_convention: bool,
    /// The field guards, for routes of a bundle that has a requirement
    /// (they filter every response and check write bodies).
    pub field_guards: Option<FieldGuards>,
}

impl DeclaredRoute {
    /// `method path` asking for `access`, with no field guards.
    pub fn new(method: Method, path: impl Into<String>, access: RouteAccess) -> Self {
        Self {
            method,
            path: path.into(),
            access,
            by_convention: false,
            field_guards: None,
        }
    }

    /// With `FieldWriteGuard` (on POST, PUT and PATCH) and `FieldFilter`
    /// on `entity`, as a route layered by hand with both has.
    pub fn field_guarded(mut self, entity: impl Into<String>) -> Self {
        self.field_guards = Some(FieldGuards {
            entity: entity.into(),
            write: is_write(&self.method),
        });
        self
    }

    /// The OAuth scopes the route needs, as alternatives: each inner list
    /// is one set a token may hold (all of one rule, or any one of an
    /// "any of" rule); one empty set when it needs none.
    pub(crate) fn oauth_scope_sets(&self) -> Vec<Vec<String>> {
        use crate::model::requirement::PermissionRule;
        match &self.access {
            RouteAccess::Requirement(Requirement::OAuthScopes(rule)) => match rule {
                PermissionRule::AnyOf(scopes) if !scopes.is_empty() => {
                    scopes.iter().map(|s| vec![s.clone()]).collect()
                }
                rule => vec![rule.items().to_vec()],
            },
            _ => vec![Vec::new()],
        }
    }
}

/// Whether FieldWriteGuard reads the body of `method`.
pub(crate) fn is_write(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// `path` with every parameter segment (`{id}`, `{*rest}`) reduced to
/// `{}`, so that `/students/{id}` in the router and
/// `/students/{student_id}` in a document are the same route.
pub(crate) fn path_shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` in OpenAPI syntax (`{*rest}` becomes `{rest}`) and the names of
/// its parameters.
pub(crate) fn openapi_path(path: &str) -> (String, Vec<String>) {
    let mut names = Vec::new();
    let segments: Vec<String> = path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let name = name.trim_start_matches('*');
                    names.push(name.to_owned());
                    format!("{{{name}}}")
                }
                None => segment.to_owned(),
            },
        )
        .collect();
    (segments.join("/"), names)
}

/// `path` mounted under `prefix`, as `Router::nest` serves it.
#[cfg(feature = "axum")]
pub(crate) fn nested(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    match path {
        "" | "/" if !prefix.is_empty() => prefix.to_owned(),
        _ => format!("{prefix}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::requirement::PermissionRule;

    #[test]
    fn parameter_names_do_not_matter_to_the_shape() {
        assert_eq!(path_shape("/students/{id}"), "/students/{}");
        assert_eq!(path_shape("/students/{student_id}"), "/students/{}");
        assert_eq!(path_shape("/files/{*rest}"), "/files/{}");
        assert_ne!(path_shape("/students/{id}"), path_shape("/students/id"));
        assert_ne!(path_shape("/students"), path_shape("/students/{id}"));
    }

    #[test]
    fn wildcards_become_plain_parameters() {
        assert_eq!(
            openapi_path("/files/{*rest}"),
            ("/files/{rest}".to_owned(), vec!["rest".to_owned()])
        );
        assert_eq!(
            openapi_path("/a/{x}/b/{y}"),
            (
                "/a/{x}/b/{y}".to_owned(),
                vec!["x".to_owned(), "y".to_owned()]
            )
        );
        assert_eq!(openapi_path("/health"), ("/health".to_owned(), vec![]));
    }

    #[cfg(feature = "axum")]
    #[test]
    fn nesting_joins_like_router_nest() {
        assert_eq!(nested("/api", "/students"), "/api/students");
        assert_eq!(nested("/api/", "/students"), "/api/students");
        assert_eq!(nested("/api", "/"), "/api");
        assert_eq!(nested("", "/students"), "/students");
    }

    #[test]
    fn any_of_scopes_are_alternatives_and_all_of_one_set() {
        let any = DeclaredRoute::new(
            Method::GET,
            "/r",
            RouteAccess::Requirement(Requirement::oauth_scopes(PermissionRule::AnyOf(vec![
                "a".into(),
                "b".into(),
            ]))),
        );
        assert_eq!(any.oauth_scope_sets(), vec![vec!["a"], vec!["b"]]);
        let all = DeclaredRoute::new(
            Method::GET,
            "/r",
            RouteAccess::Requirement(Requirement::oauth_scopes(PermissionRule::AllOf(vec![
                "a".into(),
                "b".into(),
            ]))),
        );
        assert_eq!(all.oauth_scope_sets(), vec![vec!["a", "b"]]);
        let token = DeclaredRoute::new(Method::GET, "/r", RouteAccess::Authenticated);
        assert_eq!(token.oauth_scope_sets(), vec![Vec::<String>::new()]);
    }

    #[test]
    fn field_guards_check_bodies_of_writes_only() {
        let get =
            DeclaredRoute::new(Method::GET, "/s", RouteAccess::Authenticated).field_guarded("s");
        assert!(!get.field_guards.unwrap().write);
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            let write =
                DeclaredRoute::new(method, "/s", RouteAccess::Authenticated).field_guarded("s");
            assert!(write.field_guards.unwrap().write);
        }
    }
}
