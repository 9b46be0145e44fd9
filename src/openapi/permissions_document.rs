//! The schema of the permissions document `GET /permissions` serves, for
//! the service's own OpenAPI document.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

/// The name [`permissions_document_schema`] is meant to be registered
/// under in `components.schemas`.
pub const PERMISSIONS_DOCUMENT_SCHEMA: &str = "IamGuardPermissions";

/// The JSON Schema of the permissions document
/// ([`permissions_endpoint`](crate::permissions_endpoint) and
/// [`PermissionsEndpoint`](crate::PermissionsEndpoint) serve it): every
/// entity key maps to `{"scopes": {scope: "READ" | "WRITE"}, "actions":
/// {action: true}, "customFieldDefinitions": [...]}` (the last only when
/// the endpoint lists definitions), beside the optional top-level
/// `permissions` and `modules` string arrays and `validUntil`.
///
/// ```
/// use iam_guard::openapi::permissions_document_schema;
///
/// let schema = serde_json::to_value(permissions_document_schema()).unwrap();
/// let entity = &schema["additionalProperties"];
/// assert_eq!(entity["properties"]["scopes"]["additionalProperties"]["enum"], serde_json::json!(["READ", "WRITE"]));
/// assert_eq!(schema["properties"]["modules"]["type"], "array");
/// ```
pub fn permissions_document_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let strings = || ArrayBuilder::new().items(string());
    let level = string().enum_values(Some(["READ", "WRITE"]));
    let definition = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A custom field of a scope the caller can READ; its values travel inside that scope group's `customFields`.",
        ))
        .property("key", string())
        .property("label", string())
        .property("scope", string())
        .property(
            "type",
            string().enum_values(Some(["TEXT", "NUMBER", "DATE", "BOOLEAN", "SELECT"])),
        )
        .property(
            "options",
            strings().description(Some("The allowed values of a SELECT field.")),
        )
        .property("isRequired", ObjectBuilder::new().schema_type(Type::Boolean))
        .property("sortOrder", ObjectBuilder::new().schema_type(Type::Integer))
        .required("key")
        .required("label")
        .required("scope")
        .required("type")
        .required("isRequired")
        .required("sortOrder");
    let entity = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("What the caller may do with one entity."))
        .property(
            "scopes",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "Scope group → access level; groups without access are left out.",
                ))
                .additional_properties(Some(level)),
        )
        .property(
            "actions",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("The effective actions, each `true`."))
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Boolean))),
        )
        .property(
            "customFieldDefinitions",
            ArrayBuilder::new().items(definition),
        )
        .required("scopes")
        .required("actions");
    let document = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The caller's compiled permissions: entity key → scopes, actions and custom field definitions.",
        ))
        .property(
            "permissions",
            strings().description(Some("Flat permission strings.")),
        )
        .property("modules", strings().description(Some("Modules.")))
        .property(
            "validUntil",
            ObjectBuilder::new().schema_type(Type::Integer).description(Some(
                "Unix seconds: when these permissions stop being the caller's (a temporal role assignment).",
            )),
        )
        .additional_properties(Some(entity));
    Schema::Object(document.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        custom_fields::EntityCustomFields, Catalogue, CompiledPermissions, ScopeAccess,
    };

    /// A minimal JSON Schema check of what this schema uses: `type`,
    /// `enum`, `properties`, `required`, `additionalProperties`, `items`.
    fn conforms(value: &serde_json::Value, schema: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value;
        if let Some(kind) = schema.get("type").and_then(Value::as_str) {
            let ok = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                return Err(format!("{value} is not {kind}"));
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                return Err(format!("{value} is not one of {options:?}"));
            }
        }
        if let (Some(object), Some(required)) = (
            value.as_object(),
            schema.get("required").and_then(Value::as_array),
        ) {
            for key in required {
                let key = key.as_str().unwrap();
                if !object.contains_key(key) {
                    return Err(format!("{key} missing from {value}"));
                }
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, member) in object {
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => conforms(member, sub)?,
                    None => match schema.get("additionalProperties") {
                        Some(sub) if sub.is_object() => conforms(member, sub)?,
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(sub)) = (value.as_array(), schema.get("items")) {
            for item in items {
                conforms(item, sub)?;
            }
        }
        Ok(())
    }

    #[test]
    fn documents_the_endpoint_serves_conform_and_a_wrong_one_does_not() {
        let schema = serde_json::to_value(permissions_document_schema()).unwrap();
        let catalogue = Catalogue::students_fixture();
        let fields = EntityCustomFields::from_catalogue(&catalogue);
        for roles in [
            &["admin"][..],
            &["internal_teacher"],
            &["parent", "accountant"],
        ] {
            let perms = catalogue.compile_roles(roles.iter().copied());
            let doc = perms.to_document_with_custom_fields(&fields);
            assert!(
                doc["students"]["customFieldDefinitions"].is_array(),
                "{doc}"
            );
            conforms(&doc, &schema).unwrap_or_else(|e| panic!("{roles:?}: {e}"));
        }
        let mut flat = CompiledPermissions::deny_all();
        flat.grant_scope("users", "profile", ScopeAccess::Write)
            .grant_permission("inventory.regions.delete")
            .grant_module("finance");
        conforms(&flat.to_document(), &schema).unwrap();

        // The check itself can fail: a level outside READ/WRITE, a
        // definition without its scope.
        let bad =
            serde_json::json!({"students": {"scopes": {"anagraphic": "NONE"}, "actions": {}}});
        assert!(conforms(&bad, &schema).is_err());
        let bad = serde_json::json!({"students": {"scopes": {}, "actions": {},
            "customFieldDefinitions": [{"key": "x", "label": "x", "type": "TEXT",
                                        "isRequired": false, "sortOrder": 0}]}});
        assert!(conforms(&bad, &schema).is_err());
    }
}
