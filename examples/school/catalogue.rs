//! The catalogue the school example's development IAM serves: the bundled
//! students catalogue (entities, scopes and the eleven preset roles) with
//! one custom role of the demo school, as its admin would make it: the
//! internal teacher preset cloned and given READ on `sensitive`.

use serde_json::{json, Value};

use crate::users::TENANT;

/// The demo school's custom role.
pub(crate) const CUSTOM_ROLE: &str = "support_teacher";

/// The layered catalogue: the presets for every school, plus
/// [`CUSTOM_ROLE`] in [`TENANT`].
pub(crate) fn school_catalogue() -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("../../fixtures/students_catalogue.json"))
            .expect("the bundled catalogue is JSON");
    doc["version"] = json!("school-demo-1");
    doc["tenants"] = json!({ TENANT: { "roles": [support_teacher("READ")] } });
    doc
}

/// The custom role with `sensitive` at `access`: the internal teacher's
/// grants otherwise.
pub(crate) fn support_teacher(sensitive: &str) -> Value {
    json!({
        "id": CUSTOM_ROLE,
        "name": "Support teacher (from Internal teacher)",
        "description": "Follows the students with special needs of their classes",
        "scopes": { "students": {
            "anagraphic": "READ", "sensitive": sensitive, "attendance": "WRITE",
            "scoring": "WRITE", "financial": "NONE", "family": "READ",
            "documents": "NONE", "enrollment": "READ"
        } }
    })
}
