//! What the school's `/openapi.json` must say, checked the same way on the
//! in-process router (`tests/openapi.rs`) and on the running example
//! (`tests/example_school_openapi.rs`).

use serde_json::{json, Value};

/// Each route the school guards: method, path, and the `x-iam-guard`
/// members that name its requirement.
pub(crate) fn school_declarations() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "get",
            "/students",
            json!({"requires": "scopes", "entity": "students", "access": "READ", "convention": true, "refusal": "INSUFFICIENT_SCOPE"}),
        ),
        (
            "get",
            "/students/{id}",
            json!({"requires": "scopes", "entity": "students", "access": "READ", "convention": true}),
        ),
        (
            "post",
            "/students",
            json!({"requires": "action", "entity": "students", "action": "create", "convention": true, "refusal": "ACTION_NOT_PERMITTED"}),
        ),
        (
            "patch",
            "/students/{id}",
            json!({"requires": "scopes", "entity": "students", "access": "WRITE", "convention": true}),
        ),
        (
            "delete",
            "/students/{id}",
            json!({"requires": "action", "entity": "students", "action": "delete", "convention": true}),
        ),
        (
            "get",
            "/permissions",
            json!({"requires": "token", "convention": false}),
        ),
    ]
}

/// The routes the school serves with no token.
pub(crate) const UNPROTECTED: &[&str] = &[
    "/health",
    "/openapi.json",
    "/.well-known/oauth-protected-resource",
    "/metrics",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn statuses(op: &Value) -> Vec<&str> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Panics with the first thing the document gets wrong.
pub(crate) fn check_school_document(doc: &Value) {
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["type"], "http",
        "{doc}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"],
        "JWT"
    );
    // The school requires no OAuth scope and names no flow.
    assert!(doc["components"]["securitySchemes"].get("oauth2").is_none());
    assert!(doc.get("security").is_none(), "no document-wide claim");
    assert_eq!(
        doc["components"]["schemas"]["IamGuardError"]["required"],
        json!(["statusCode", "error", "code", "message"])
    );

    let declared = school_declarations();
    for (method, path, expected) in &declared {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert_eq!(
            op["security"],
            json!([{"bearerAuth": []}]),
            "{method} {path}"
        );
        let extension = &op["x-iam-guard"];
        assert_eq!(extension["denied"], false, "{method} {path}");
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(
                &extension[key], value,
                "{method} {path}: x-iam-guard.{key} in {extension}"
            );
        }
        let bundle = *path != "/permissions";
        let write = matches!(*method, "post" | "patch");
        if bundle {
            assert_eq!(
                extension["fields"],
                json!({"entity": "students", "write": write, "filter": true}),
                "{method} {path}"
            );
        } else {
            assert!(extension.get("fields").is_none());
        }
        let got = statuses(op);
        for status in ["400", "401", "403", "503"] {
            assert!(
                got.contains(&status),
                "{method} {path} documents {status}: {got:?}"
            );
        }
        for status in ["413", "415"] {
            assert_eq!(
                got.contains(&status),
                write,
                "{method} {path} and {status}: {got:?}"
            );
        }
        assert_eq!(
            got.contains(&"500"),
            bundle,
            "{method} {path} and 500: {got:?}"
        );
        assert_eq!(
            op["responses"]["401"]["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/IamGuardError"}),
            "{method} {path}"
        );
        assert!(op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    }

    for path in UNPROTECTED {
        let op = &doc["paths"][path]["get"];
        assert!(op.is_object(), "GET {path} is documented");
        assert!(
            op.get("security").is_none(),
            "GET {path} claims no security: {op}"
        );
        assert!(op.get("x-iam-guard").is_none(), "GET {path}");
        assert!(op["responses"].get("401").is_none(), "GET {path}");
    }

    // Nothing else claims security.
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let is_declared = declared.iter().any(|(m, p, _)| m == method && p == path);
            assert_eq!(
                op.get("security").is_some(),
                is_declared,
                "{method} {path}: security only where declared"
            );
        }
    }

    // The record: scope groups as objects, each optional (filtered).
    let student = &doc["components"]["schemas"]["Student"];
    assert_eq!(student["required"], json!(["id", "createdAt", "updatedAt"]));
    for group in [
        "anagraphic",
        "sensitive",
        "attendance",
        "scoring",
        "financial",
        "family",
        "documents",
        "enrollment",
    ] {
        let reference = student["properties"][group]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("Student.{group} is a schema reference: {student}"));
        let name = reference.trim_start_matches("#/components/schemas/");
        assert_eq!(
            doc["components"]["schemas"][name]["type"], "object",
            "{group}"
        );
        assert_eq!(
            doc["components"]["schemas"]["StudentWrite"]["properties"][group]["$ref"], reference,
            "a write body has the same {group}"
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["StudentWrite"]["additionalProperties"], false,
        "a write body holds scope groups only"
    );
}
