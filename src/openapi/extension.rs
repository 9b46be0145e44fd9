//! The `x-iam-guard` vendor extension: what a route requires, in words a
//! reader (or a tool) of the document can use.

use serde_json::{json, Map, Value};

use super::declaration::{DeclaredRoute, RouteAccess};
use crate::{
    model::{requirement::PermissionRule, Requirement},
    rejection::ErrorCode,
};

/// The name of the vendor extension on each protected operation.
pub const EXTENSION: &str = "x-iam-guard";

/// The extension's value for `route`. See the [module docs](super) for
/// the shape.
pub(crate) fn extension(route: &DeclaredRoute) -> Value {
    let mut out = Map::new();
    match &route.access {
        RouteAccess::Denied => {
            out.insert("denied".into(), json!(true));
            out.insert("requires".into(), json!("nothing"));
            out.insert(
                "refusal".into(),
                json!(ErrorCode::PermissionDenied.as_str()),
            );
            out.insert("summary".into(), json!("DENIED (no requirement declared)"));
        }
        RouteAccess::Authenticated => {
            out.insert("denied".into(), json!(false));
            out.insert("requires".into(), json!("token"));
            out.insert("summary".into(), json!("a valid token"));
        }
        RouteAccess::Requirement(requirement) => {
            out.insert("denied".into(), json!(false));
            describe(requirement, &mut out);
            out.insert("refusal".into(), json!(requirement.denial().code()));
            out.insert("summary".into(), json!(requirement.to_string()));
        }
    }
    out.insert("convention".into(), json!(route.by_convention));
    if let Some(fields) = &route.field_guards {
        out.insert(
            "fields".into(),
            json!({"entity": fields.entity, "write": fields.write, "filter": true}),
        );
    }
    Value::Object(out)
}

fn describe(requirement: &Requirement, out: &mut Map<String, Value>) {
    match requirement {
        Requirement::Scopes { entity, level } => {
            out.insert("requires".into(), json!("scopes"));
            out.insert("entity".into(), json!(entity));
            // NONE is evaluated as READ (see `Requirement::Scopes`).
            let level = level.max(&crate::model::ScopeAccess::Read);
            out.insert("access".into(), json!(level.as_str()));
        }
        Requirement::Action { entity, action } => {
            out.insert("requires".into(), json!("action"));
            out.insert("entity".into(), json!(entity));
            out.insert("action".into(), json!(action));
        }
        Requirement::Permissions(rule) => rule_of("permissions", rule, out),
        Requirement::Module(module) => {
            out.insert("requires".into(), json!("module"));
            out.insert("module".into(), json!(module));
        }
        Requirement::OAuthScopes(rule) => rule_of("oauthScopes", rule, out),
        Requirement::Roles(rule) => rule_of("roles", rule, out),
    }
}

fn rule_of(kind: &str, rule: &PermissionRule, out: &mut Map<String, Value>) {
    out.insert("requires".into(), json!(kind));
    let key = match rule {
        PermissionRule::AllOf(_) => "allOf",
        PermissionRule::AnyOf(_) => "anyOf",
    };
    out.insert(key.into(), json!(rule.items()));
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::model::ScopeAccess;

    fn of(requirement: Requirement) -> Value {
        extension(&DeclaredRoute::new(
            Method::GET,
            "/r",
            RouteAccess::Requirement(requirement),
        ))
    }

    #[test]
    fn scopes_name_the_entity_and_the_level() {
        assert_eq!(
            of(Requirement::scopes("students", ScopeAccess::Write)),
            json!({"denied": false, "requires": "scopes", "entity": "students", "access": "WRITE",
                   "refusal": "INSUFFICIENT_SCOPE", "summary": "scopes students >= WRITE",
                   "convention": false})
        );
        // NONE is enforced as READ, so it is documented as READ.
        assert_eq!(
            of(Requirement::scopes("students", ScopeAccess::None))["access"],
            "READ"
        );
    }

    #[test]
    fn each_requirement_names_what_it_needs() {
        let action = of(Requirement::action("students", "archive"));
        assert_eq!(
            (
                &action["requires"],
                &action["entity"],
                &action["action"],
                &action["refusal"]
            ),
            (
                &json!("action"),
                &json!("students"),
                &json!("archive"),
                &json!("ACTION_NOT_PERMITTED")
            )
        );
        let perms = of(Requirement::any_of(["a.b", "c.d"]));
        assert_eq!(perms["requires"], "permissions");
        assert_eq!(perms["anyOf"], json!(["a.b", "c.d"]));
        assert!(perms.get("allOf").is_none());
        let module = of(Requirement::module("finance"));
        assert_eq!(
            (&module["requires"], &module["module"]),
            (&json!("module"), &json!("finance"))
        );
        let scopes = of(Requirement::oauth_scopes(PermissionRule::AllOf(vec![
            "s:r".into(),
        ])));
        assert_eq!(scopes["requires"], "oauthScopes");
        assert_eq!(scopes["allOf"], json!(["s:r"]));
        assert_eq!(scopes["refusal"], "INSUFFICIENT_OAUTH_SCOPE");
        let roles = of(Requirement::roles(PermissionRule::AnyOf(vec![
            "admin".into()
        ])));
        assert_eq!(roles["requires"], "roles");
        assert_eq!(roles["refusal"], "ROLE_REQUIRED");
    }

    #[test]
    fn a_denied_route_is_marked_and_a_token_route_is_not() {
        let denied = extension(&DeclaredRoute::new(
            Method::OPTIONS,
            "/r",
            RouteAccess::Denied,
        ));
        assert_eq!(denied["denied"], true);
        assert_eq!(denied["refusal"], "PERMISSION_DENIED");
        let token = extension(&DeclaredRoute::new(
            Method::GET,
            "/r",
            RouteAccess::Authenticated,
        ));
        assert_eq!(token["denied"], false);
        assert_eq!(token["requires"], "token");
        assert!(token.get("refusal").is_none());
    }

    #[test]
    fn field_guards_are_described() {
        let route = DeclaredRoute::new(
            Method::PATCH,
            "/s/{id}",
            RouteAccess::Requirement(Requirement::scopes("students", ScopeAccess::Write)),
        )
        .field_guarded("students");
        assert_eq!(
            extension(&route)["fields"],
            json!({"entity": "students", "write": true, "filter": true})
        );
    }
}
