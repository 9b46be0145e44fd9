//! Per-tenant role sets over system-level entities and scopes.
//!
//! In a multi-tenant service (a school system) the entities, their scopes
//! and field mappings and the actions are defined once for everybody,
//! while roles are per tenant: every school starts from the preset roles
//! and adds custom roles of its own, typically a preset cloned and edited
//! in an admin UI. [`TenantCatalogues`] holds such a document: the system
//! catalogue, and for every tenant that has custom roles a catalogue made
//! of the system entities, the system roles and that tenant's roles.
//!
//! # Format
//!
//! A plain [catalogue](super) document, with two optional additions:
//!
//! ```json
//! {
//!   "version": "2026-03-01.4",           // optional; shown in logs, never interpreted
//!   "entities": [{
//!     "key": "students",
//!     "scopes": [
//!       { "key": "anagraphic", "fields": ["firstName", "lastName"] },
//!       { "key": "sensitive", "fields": ["disabilityInfo"] }
//!     ],
//!     "actions": [{ "key": "create", "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" } }]
//!   }],
//!   "roles": [{                          // the system (preset) roles: every tenant has them
//!     "id": "teacher",
//!     "name": "Teacher",
//!     "scopes": { "students": { "anagraphic": "READ" } }
//!   }],
//!   "tenants": {                         // optional; tenant id -> that tenant's own roles
//!     "school-1": {
//!       "roles": [{
//!         "id": "support_teacher",           // must not be a system role id
//!         "name": "Support teacher (from Teacher)",
//!         "scopes": { "students": { "anagraphic": "READ", "sensitive": "READ" } }
//!       }]
//!     }
//!   }
//! }
//! ```
//!
//! A tenant's roles follow the rules of a catalogue's roles and are
//! checked against the system entities, scopes and actions. The whole
//! document is validated at once and refused on the first problem, which
//! names the tenant ([`CatalogueError::InTenant`]): one version of the
//! catalogue is either in force for every tenant or for none, so no two
//! replicas can disagree about which tenants' roles a version carries.
//!
//! A document without `tenants` is a plain catalogue, and every tenant
//! gets the system roles. Tenant ids are free-form strings (as the token's
//! tenant claim carries them) without whitespace or control characters.
//!
//! # A tenant cannot redefine a system role
//!
//! A tenant role with the id of a system role is refused
//! ([`CatalogueError::SystemRoleRedefined`]) instead of replacing it within
//! that tenant. System roles are presets: the system updates them for
//! everybody (a new scope gets its default access in every preset), and a
//! token's `teacher` role must mean the preset everywhere, so that reading
//! a role id never requires knowing which tenant edited what. A school
//! that wants a different teacher clones the preset under an id of its own
//! (`support_teacher`) and assigns that; the preset stays intact, and
//! updates to it can never overwrite the school's edits or be shadowed by
//! them.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::TenantCatalogues;
//!
//! let catalogues = TenantCatalogues::from_json(
//!     r#"{
//!       "version": "7",
//!       "entities": [{
//!         "key": "students",
//!         "scopes": [
//!           { "key": "anagraphic", "fields": ["firstName"] },
//!           { "key": "sensitive", "fields": ["disabilityInfo"] }
//!         ]
//!       }],
//!       "roles": [
//!         { "id": "teacher", "name": "Teacher", "scopes": { "students": { "anagraphic": "READ" } } }
//!       ],
//!       "tenants": {
//!         "school-1": {
//!           "roles": [{
//!             "id": "support_teacher",
//!             "name": "Support teacher",
//!             "scopes": { "students": { "anagraphic": "READ", "sensitive": "READ" } }
//!           }]
//!         }
//!       }
//!     }"#,
//! )?;
//! assert_eq!(catalogues.version(), Some("7"));
//!
//! // School 1 has its custom role and the presets.
//! let school_1 = catalogues.for_tenant(Some("school-1"));
//! assert!(school_1.compile_roles(["support_teacher"]).can_read("students", "sensitive"));
//! assert!(school_1.compile_roles(["teacher"]).can_read("students", "anagraphic"));
//!
//! // Another school, an unknown one or no tenant at all: presets only.
//! for tenant in [Some("school-2"), None] {
//!     let presets = catalogues.for_tenant(tenant);
//!     assert!(presets.compile_roles(["support_teacher"]).is_empty());
//!     assert!(presets.compile_roles(["teacher"]).can_read("students", "anagraphic"));
//! }
//! # Ok::<(), iam_guard::model::CatalogueError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use super::format::{Object, RawCatalogue, RawTenantCatalogues};
use super::load::check_free_form;
use super::{Catalogue, CatalogueError};

/// A validated catalogue with per-tenant role sets: the answer to "the
/// catalogue for tenant T", precomputed for every tenant the document
/// names.
///
/// See the [module docs](self) for the format, the rules and an example.
/// Cheap to clone: the catalogues are shared.
#[derive(Clone, Debug)]
pub struct TenantCatalogues {
    version: Option<String>,
    system: Arc<Catalogue>,
    /// Tenants with roles of their own, in document order.
    tenants: Vec<(Box<str>, Arc<Catalogue>)>,
    index: BTreeMap<Box<str>, usize>,
}

impl TenantCatalogues {
    /// Parses and validates a layered catalogue from JSON text.
    ///
    /// # Errors
    ///
    /// [`CatalogueError::Json`] for malformed JSON or a wrong shape, the
    /// variant naming the first inconsistency of the system part, or
    /// [`CatalogueError::InTenant`] wrapping the first problem of a
    /// tenant's roles.
    pub fn from_json(json: &str) -> Result<Self, CatalogueError> {
        serde_json::from_str::<Object<RawTenantCatalogues>>(json)
            .map_err(CatalogueError::Json)
            .and_then(Self::build)
    }

    /// Parses and validates a layered catalogue from JSON bytes.
    ///
    /// # Errors
    ///
    /// As [`TenantCatalogues::from_json`].
    pub fn from_slice(json: &[u8]) -> Result<Self, CatalogueError> {
        serde_json::from_slice::<Object<RawTenantCatalogues>>(json)
            .map_err(CatalogueError::Json)
            .and_then(Self::build)
    }

    fn build(Object(raw): Object<RawTenantCatalogues>) -> Result<Self, CatalogueError> {
        if let Some(version) = &raw.version {
            check_free_form_text("catalogue version", version)?;
        }
        let system = Catalogue::build(Object(RawCatalogue {
            entities: raw.entities,
            roles: raw.roles,
        }))?;
        let mut catalogues = Self {
            version: raw.version,
            system: Arc::new(system),
            tenants: Vec::new(),
            index: BTreeMap::new(),
        };
        let mut declared = std::collections::BTreeSet::new();
        for (tenant, Object(raw_tenant)) in raw.tenants.0 {
            check_free_form("tenant id", &tenant)?;
            if !declared.insert(tenant.clone()) {
                return Err(CatalogueError::DuplicateTenant { tenant });
            }
            if raw_tenant.roles.is_empty() {
                // Nothing of its own: the system catalogue is its catalogue.
                continue;
            }
            let in_tenant = |error| CatalogueError::InTenant {
                tenant: tenant.clone(),
                error: Box::new(error),
            };
            let mut catalogue = Catalogue::clone(&catalogues.system);
            for Object(raw_role) in raw_tenant.roles {
                if catalogues.system.role(&raw_role.id).is_some() {
                    return Err(in_tenant(CatalogueError::SystemRoleRedefined {
                        role: raw_role.id,
                    }));
                }
                let role = catalogue.build_role(raw_role).map_err(in_tenant)?;
                catalogue.add_role(role).map_err(in_tenant)?;
            }
            catalogues
                .index
                .insert(tenant.as_str().into(), catalogues.tenants.len());
            catalogues
                .tenants
                .push((tenant.into_boxed_str(), Arc::new(catalogue)));
        }
        Ok(catalogues)
    }

    /// The document's `version`, if it has one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The system catalogue: the entities and the system roles, what a
    /// tenant without roles of its own (or no tenant) compiles against.
    pub fn system(&self) -> &Arc<Catalogue> {
        &self.system
    }

    /// The catalogue of `tenant`: the system one plus the tenant's own
    /// roles. A tenant the document does not name, or no tenant at all,
    /// gets the [system](Self::system) catalogue.
    pub fn for_tenant(&self, tenant: Option<&str>) -> &Arc<Catalogue> {
        self.slot_of(tenant).1
    }

    /// The catalogue of `tenant` only if the document gives it roles of
    /// its own.
    pub fn tenant(&self, tenant: &str) -> Option<&Arc<Catalogue>> {
        self.index.get(tenant).map(|&i| &self.tenants[i].1)
    }

    /// The tenants with roles of their own, in document order.
    pub fn tenants(&self) -> impl ExactSizeIterator<Item = &str> {
        self.tenants.iter().map(|(tenant, _)| &**tenant)
    }

    /// Which catalogue `tenant` compiles against, as a slot number (0 for
    /// the system catalogue, shared by every tenant without roles of its
    /// own), and that catalogue: permission memos key on the slot, so two
    /// tenants' same-named custom roles never share an entry.
    pub(crate) fn slot_of(&self, tenant: Option<&str>) -> (usize, &Arc<Catalogue>) {
        match tenant.and_then(|t| self.index.get(t)) {
            Some(&i) => (i + 1, &self.tenants[i].1),
            None => (0, &self.system),
        }
    }
}

impl From<Catalogue> for TenantCatalogues {
    /// A plain catalogue: every tenant gets its roles.
    fn from(catalogue: Catalogue) -> Self {
        Self {
            version: None,
            system: Arc::new(catalogue),
            tenants: Vec::new(),
            index: BTreeMap::new(),
        }
    }
}

/// Text meant for people (a version label) may contain spaces, but not
/// control characters, which would let it forge log lines.
fn check_free_form_text(kind: &'static str, value: &str) -> Result<(), CatalogueError> {
    let reason = if value.trim().is_empty() {
        "must not be blank"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(CatalogueError::InvalidName {
        kind,
        value: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ScopeAccess;
    use serde_json::{json, Value};

    fn layered() -> Value {
        let mut doc = crate::model::catalogue::load::tests::base();
        doc["roles"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "teacher", "name": "Teacher",
                         "scopes": {"students": {"anagraphic": "READ"}}}));
        doc["tenants"] = json!({
            "school-1": {"roles": [{
                "id": "support_teacher", "name": "Support teacher",
                "scopes": {"students": {"anagraphic": "READ", "sensitive": "READ"}}
            }]},
            "school-2": {"roles": [{
                "id": "support_teacher", "name": "Support teacher",
                "scopes": {"students": {"anagraphic": "WRITE"}}
            }]},
            "school-3": {"roles": []}
        });
        doc
    }

    fn error_of(doc: &Value) -> String {
        TenantCatalogues::from_json(&doc.to_string())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn format_block_in_the_module_docs_is_a_valid_layered_catalogue() {
        let block = crate::model::json_block_of_module_docs(include_str!("tenants.rs"));
        assert!(block.contains("\"tenants\""), "format block not found");
        let catalogues = TenantCatalogues::from_json(&block).unwrap();
        assert_eq!(catalogues.version(), Some("2026-03-01.4"));
        assert_eq!(catalogues.tenants().collect::<Vec<_>>(), ["school-1"]);
        let school = catalogues.for_tenant(Some("school-1"));
        assert!(school
            .compile_roles(["support_teacher"])
            .can_read("students", "sensitive"));
    }

    #[test]
    fn the_readme_example_is_a_valid_layered_catalogue() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## A catalogue that lives at the IAM")
            .nth(1)
            .expect("the README section");
        let block: String = section
            .lines()
            .skip_while(|line| line.trim() != "```json")
            .skip(1)
            .take_while(|line| line.trim() != "```")
            .collect::<Vec<_>>()
            .join("\n");
        let catalogues = TenantCatalogues::from_json(&block).unwrap();
        assert!(catalogues
            .for_tenant(Some("school-1"))
            .compile_roles(["support_teacher"])
            .can_read("students", "sensitive"));
    }

    #[test]
    fn each_tenant_gets_the_presets_and_only_its_own_custom_roles() {
        let catalogues = TenantCatalogues::from_json(&layered().to_string()).unwrap();
        let one = catalogues.for_tenant(Some("school-1"));
        let two = catalogues.for_tenant(Some("school-2"));
        assert_eq!(
            one.compile_roles(["support_teacher"])
                .scope_access("students", "sensitive"),
            ScopeAccess::Read
        );
        let theirs = two.compile_roles(["support_teacher"]);
        assert!(theirs.can_write("students", "anagraphic"));
        assert!(!theirs.can_read("students", "sensitive"));
        for catalogue in [one, two] {
            assert!(catalogue
                .compile_roles(["admin"])
                .has_action("students", "create"));
            assert!(catalogue.role("teacher").is_some());
        }
        // The system catalogue itself is untouched by the tenants.
        assert!(catalogues.system().role("support_teacher").is_none());
        assert_eq!(catalogues.system().roles().len(), 2);
        // A tenant without roles of its own, an unknown one, none at all.
        for tenant in [Some("school-3"), Some("school-9"), None] {
            let catalogue = catalogues.for_tenant(tenant);
            assert!(Arc::ptr_eq(catalogue, catalogues.system()), "{tenant:?}");
            assert!(catalogue.compile_roles(["support_teacher"]).is_empty());
        }
        assert_eq!(
            catalogues.tenants().collect::<Vec<_>>(),
            ["school-1", "school-2"]
        );
        assert!(catalogues.tenant("school-3").is_none());
        assert!(catalogues.tenant("school-1").is_some());
    }

    #[test]
    fn tenants_share_the_system_entities() {
        let catalogues = TenantCatalogues::from_json(&layered().to_string()).unwrap();
        let one = catalogues.for_tenant(Some("school-1"));
        assert!(Arc::ptr_eq(&one.entities, &catalogues.system().entities));
    }

    #[test]
    fn slots_tell_tenant_catalogues_apart() {
        let catalogues = TenantCatalogues::from_json(&layered().to_string()).unwrap();
        assert_eq!(catalogues.slot_of(None).0, 0);
        assert_eq!(catalogues.slot_of(Some("school-9")).0, 0);
        assert_eq!(catalogues.slot_of(Some("school-3")).0, 0);
        assert_eq!(catalogues.slot_of(Some("school-1")).0, 1);
        assert_eq!(catalogues.slot_of(Some("school-2")).0, 2);
    }

    #[test]
    fn a_plain_catalogue_is_a_layered_one_without_tenants() {
        let text = crate::model::catalogue::load::tests::base().to_string();
        let catalogues = TenantCatalogues::from_json(&text).unwrap();
        assert_eq!(catalogues.version(), None);
        assert_eq!(catalogues.tenants().len(), 0);
        assert!(catalogues
            .for_tenant(Some("school-1"))
            .compile_roles(["admin"])
            .has_action("students", "create"));
        let from = TenantCatalogues::from(Catalogue::from_json(&text).unwrap());
        assert_eq!(from.system().roles().len(), 1);
        // And the plain loader still refuses what it does not know.
        let err = Catalogue::from_json(&layered().to_string()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid catalogue json: unknown field `tenants`"),
            "{err}"
        );
    }

    #[test]
    fn a_tenant_role_with_a_system_role_id_is_refused_naming_the_tenant() {
        let mut doc = layered();
        doc["tenants"]["school-2"]["roles"][0]["id"] = "teacher".into();
        assert_eq!(
            error_of(&doc),
            "tenant `school-2`: role `teacher` is a system role; a tenant cannot redefine it \
             (clone it under a new id)"
        );
        let err = TenantCatalogues::from_json(&doc.to_string()).unwrap_err();
        let CatalogueError::InTenant { tenant, error } = err else {
            panic!("expected InTenant")
        };
        assert_eq!(tenant, "school-2");
        assert!(
            matches!(*error, CatalogueError::SystemRoleRedefined { ref role } if role == "teacher")
        );
    }

    #[test]
    fn tenant_roles_are_validated_against_the_system_entities() {
        let mut doc = layered();
        doc["tenants"]["school-1"]["roles"][0]["scopes"]["students"]["ghost"] = "READ".into();
        assert_eq!(
            error_of(&doc),
            "tenant `school-1`: role `support_teacher` grants unknown scope `ghost` of entity \
             `students`"
        );
        let mut doc = layered();
        doc["tenants"]["school-1"]["roles"][0]["actions"] = json!(["students.expel"]);
        assert_eq!(
            error_of(&doc),
            "tenant `school-1`: role `support_teacher` grants action `expel`, which entity \
             `students` does not declare"
        );
        let mut doc = layered();
        doc["tenants"]["school-1"]["roles"][0]["scopes"] = json!({"teachers": {}});
        assert_eq!(
            error_of(&doc),
            "tenant `school-1`: role `support_teacher` refers to unknown entity `teachers`"
        );
        let mut doc = layered();
        let role = doc["tenants"]["school-1"]["roles"][0].clone();
        doc["tenants"]["school-1"]["roles"]
            .as_array_mut()
            .unwrap()
            .push(role);
        assert_eq!(
            error_of(&doc),
            "tenant `school-1`: role `support_teacher` is declared twice"
        );
    }

    #[test]
    fn the_shape_of_the_tenants_part_is_checked() {
        let mut doc = layered();
        doc["tenants"]["school-1"]["rolez"] = json!([]);
        assert!(
            error_of(&doc).starts_with("invalid catalogue json: unknown field `rolez`"),
            "{}",
            error_of(&doc)
        );
        let mut doc = layered();
        doc["tenants"] = json!([]);
        assert!(error_of(&doc).starts_with("invalid catalogue json:"));
        let text = layered().to_string().replace(
            r#""school-3":{"roles":[]}"#,
            r#""school-3":{"roles":[]},"school-3":{"roles":[]}"#,
        );
        assert_eq!(
            TenantCatalogues::from_json(&text).unwrap_err().to_string(),
            "tenant `school-3` is declared twice"
        );
        let mut doc = layered();
        doc["tenants"]["school 4"] = json!({"roles": []});
        assert_eq!(
            error_of(&doc),
            "invalid tenant id `school 4`: must not contain whitespace or control characters"
        );
        let mut doc = layered();
        doc["version"] = "1\nforged log line".into();
        assert!(error_of(&doc).starts_with("invalid catalogue version"));
        let mut doc = layered();
        doc["version"] = 7.into();
        assert!(error_of(&doc).starts_with("invalid catalogue json:"));
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "null",
            "[]",
            "{\"tenants\": null}",
            "{\"tenants\": {\"a\": null}}",
            "{\"tenants\": {\"a\": []}}",
            "{\"tenants\": {\"a\": {\"roles\": {}}}}",
            "{\"tenants\": {\"\": {\"roles\": []}}}",
        ] {
            assert!(TenantCatalogues::from_json(text).is_err(), "{text:?}");
            assert!(
                TenantCatalogues::from_slice(text.as_bytes()).is_err(),
                "{text:?}"
            );
        }
    }
}
