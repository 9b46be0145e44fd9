//! Compiling a caller's role assignments into [`CompiledPermissions`].
//!
//! Compilation takes the assignments active now, unions their grants with
//! the highest access winning per scope, and keeps an action only when some
//! active role grants it AND the compiled scopes meet every requirement the
//! catalogue declares for it. Flat permissions and modules are unioned.
//!
//! Role ids that the catalogue does not define contribute nothing: a token
//! may carry roles meant for other services, and an unknown role must never
//! widen access. Compilation is therefore total and cannot fail.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::access::CompiledPermissions;
use super::catalogue::Catalogue;

/// A role held by a user, optionally for a window of time (a substitute's
/// cover, a term-long appointment).
///
/// Times are unix seconds. The assignment is active when
/// `valid_from <= now < valid_until`; an absent bound leaves that side open.
/// On the wire the bounds are `validFrom` / `validUntil` (`valid_from` /
/// `valid_until` are accepted too).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// The role id, as the catalogue declares it.
    pub role: String,
    /// First second the assignment is active; `None` means always was.
    #[serde(default, alias = "valid_from", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<u64>,
    /// First second the assignment is no longer active; `None` means never
    /// expires.
    #[serde(
        default,
        alias = "valid_until",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_until: Option<u64>,
}

impl RoleAssignment {
    /// A permanent assignment of `role`.
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            valid_from: None,
            valid_until: None,
        }
    }

    /// Sets the first second the assignment is active.
    pub fn valid_from(mut self, unix_seconds: u64) -> Self {
        self.valid_from = Some(unix_seconds);
        self
    }

    /// Sets the first second the assignment is no longer active.
    pub fn valid_until(mut self, unix_seconds: u64) -> Self {
        self.valid_until = Some(unix_seconds);
        self
    }

    /// Whether the assignment is active at `now` (unix seconds).
    ///
    /// The window is half-open, active while `validUntil > now`: at
    /// `now == valid_until` the assignment has already expired.
    pub fn is_active(&self, now: u64) -> bool {
        self.valid_from.is_none_or(|from| from <= now)
            && self.valid_until.is_none_or(|until| now < until)
    }

    /// The first second after `now` at which [`is_active`](Self::is_active)
    /// changes: its start if still to come, else its end if still to come.
    pub fn next_change(&self, now: u64) -> Option<u64> {
        match (self.valid_from, self.valid_until) {
            (Some(from), _) if from > now => Some(from),
            (_, Some(until)) if until > now => Some(until),
            _ => None,
        }
    }
}

impl Catalogue {
    /// Compiles the assignments active at `now` (unix seconds).
    ///
    /// Inactive assignments and role ids the catalogue does not define
    /// contribute nothing. See the [module docs](self) for the rules.
    ///
    /// The result is valid until the first scheduled change among the
    /// assignments of roles the catalogue defines
    /// ([`CompiledPermissions::valid_until`]): the end of an active one or
    /// the start of one still to come.
    pub fn compile(&self, assignments: &[RoleAssignment], now: u64) -> CompiledPermissions {
        let mut compiled = self.compile_active(
            assignments
                .iter()
                .filter(|assignment| assignment.is_active(now))
                .map(|assignment| assignment.role.as_str()),
        );
        for assignment in assignments {
            if self.role(&assignment.role).is_none() {
                continue;
            }
            if let Some(change) = assignment.next_change(now) {
                compiled.expire_at(change);
            }
        }
        compiled
    }

    /// Compiles permanent assignments of the given role ids, as carried by a
    /// token's `roles` claim.
    ///
    /// Role ids the catalogue does not define contribute nothing.
    pub fn compile_roles<I, S>(&self, roles: I) -> CompiledPermissions
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.compile_active(roles)
    }

    fn compile_active<S: AsRef<str>>(
        &self,
        roles: impl IntoIterator<Item = S>,
    ) -> CompiledPermissions {
        let mut compiled = CompiledPermissions::deny_all();
        let mut granted: BTreeSet<(&str, &str)> = BTreeSet::new();
        for id in roles {
            let Some(role) = self.role(id.as_ref()) else {
                continue;
            };
            compiled.merge(role.grants());
            for (entity, actions) in role.actions() {
                granted.extend(
                    actions
                        .iter()
                        .map(|action| (entity.as_str(), action.as_str())),
                );
            }
        }
        // Requirements are checked only once every role is merged: a scope
        // one role lacks may come from another (teacher + nurse).
        for (entity, action) in granted {
            let effective = self
                .entity(entity)
                .and_then(|def| def.action(action))
                .is_some_and(|def| def.is_satisfied_by(entity, &compiled));
            if effective {
                compiled.grant_action(entity, action);
            }
        }
        compiled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Requirement, ScopeAccess};
    use proptest::prelude::*;

    const W: ScopeAccess = ScopeAccess::Write;
    const R: ScopeAccess = ScopeAccess::Read;
    const N: ScopeAccess = ScopeAccess::None;

    /// The role × scope matrix of the bundled catalogue, transcribed cell by cell. `R (self)` and `R (child)`
    /// are READ: the annotations are record-level filters (§7), not scope
    /// levels. Columns: anagraphic, sensitive, attendance, scoring,
    /// financial, family, documents, enrollment.
    const MATRIX: [(&str, [ScopeAccess; 8]); 11] = [
        ("admin", [W, W, W, W, W, W, W, W]),
        ("hr_secretary", [W, R, W, R, W, W, W, W]),
        ("principal", [R, R, R, R, R, R, R, R]),
        ("internal_teacher", [R, N, W, W, N, R, N, R]),
        ("external_teacher", [R, N, R, W, N, N, N, N]),
        ("internal_staff", [R, N, R, N, N, N, N, N]),
        ("external_staff", [R, N, N, N, N, N, N, N]),
        ("student", [R, N, R, R, R, N, R, R]),
        ("parent", [R, R, R, R, R, R, R, R]),
        ("accountant", [R, N, N, N, W, N, R, N]),
        ("admissions_officer", [W, N, N, N, R, W, W, W]),
    ];

    const SCOPES: [&str; 8] = [
        "anagraphic",
        "sensitive",
        "attendance",
        "scoring",
        "financial",
        "family",
        "documents",
        "enrollment",
    ];

    const NOW: u64 = 1_772_323_200; // 2026-03-01T00:00:00Z

    fn fixture() -> Catalogue {
        Catalogue::students_fixture()
    }

    #[test]
    fn every_preset_role_compiles_to_its_seed_row() {
        let catalogue = fixture();
        for (role, row) in MATRIX {
            let perms = catalogue.compile_roles([role]);
            for (scope, expected) in SCOPES.iter().zip(row) {
                assert_eq!(
                    perms.scope_access("students", scope),
                    expected,
                    "{role} on students.{scope}"
                );
            }
            // Nothing beyond the eight cells leaks in.
            let stored = perms.scopes().get("students").map_or(0, |s| s.len());
            assert_eq!(stored, row.iter().filter(|a| **a != N).count(), "{role}");
            assert_eq!(perms.scopes().len(), usize::from(stored > 0), "{role}");
        }
        let ids: Vec<&str> = catalogue.roles().map(|r| r.id()).collect();
        let expected: Vec<&str> = MATRIX.iter().map(|(role, _)| *role).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn only_admin_meets_the_create_and_delete_requirements() {
        let catalogue = fixture();
        for (role, _) in MATRIX {
            let perms = catalogue.compile_roles([role]);
            let admin = role == "admin";
            assert_eq!(perms.has_action("students", "create"), admin, "{role}");
            assert_eq!(perms.has_action("students", "delete"), admin, "{role}");
        }
    }

    #[test]
    fn granted_action_without_required_writes_is_not_effective() {
        let catalogue = fixture();
        // HR is granted create and delete but only READs sensitive data.
        let hr = catalogue.compile_roles(["hr_secretary"]);
        assert!(catalogue
            .role("hr_secretary")
            .unwrap()
            .grants_action("students", "create"));
        assert!(hr.can_write("students", "anagraphic"));
        assert!(!hr.has_action("students", "create"));
        assert_eq!(
            Requirement::action("students", "create").evaluate(&hr),
            Err(crate::model::Denial::ActionNotPermitted)
        );
        // Admissions is granted create but holds nothing on sensitive.
        let admissions = catalogue.compile_roles(["admissions_officer"]);
        assert!(!admissions.has_action("students", "create"));
    }

    #[test]
    fn requirements_may_be_met_by_another_role() {
        let catalogue = Catalogue::from_json(
            r#"{
              "entities": [{
                "key": "students",
                "scopes": [{ "key": "anagraphic" }, { "key": "sensitive" }],
                "actions": [{ "key": "create", "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" } }]
              }],
              "roles": [
                { "id": "clerk", "name": "Clerk", "actions": ["students.create"],
                  "scopes": { "students": { "anagraphic": "WRITE" } } },
                { "id": "nurse", "name": "Nurse", "scopes": { "students": { "sensitive": "WRITE" } } }
              ]
            }"#,
        )
        .unwrap();
        assert!(!catalogue
            .compile_roles(["clerk"])
            .has_action("students", "create"));
        assert!(!catalogue
            .compile_roles(["nurse"])
            .has_action("students", "create"));
        assert!(catalogue
            .compile_roles(["clerk", "nurse"])
            .has_action("students", "create"));
    }

    #[test]
    fn teacher_plus_nurse_gets_both() {
        let catalogue = Catalogue::from_json(
            r#"{
              "entities": [{
                "key": "students",
                "scopes": [{ "key": "anagraphic" }, { "key": "sensitive" }, { "key": "scoring" }]
              }],
              "roles": [
                { "id": "teacher", "name": "Teacher",
                  "scopes": { "students": { "anagraphic": "READ", "scoring": "WRITE" } },
                  "modules": ["classroom"] },
                { "id": "nurse", "name": "Nurse",
                  "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "READ", "scoring": "NONE" } },
                  "permissions": ["infirmary.visits.view"] }
              ]
            }"#,
        )
        .unwrap();
        let perms = catalogue.compile(
            &[RoleAssignment::new("teacher"), RoleAssignment::new("nurse")],
            NOW,
        );
        assert_eq!(perms.scope_access("students", "anagraphic"), W);
        assert_eq!(perms.scope_access("students", "sensitive"), R);
        assert_eq!(perms.scope_access("students", "scoring"), W);
        assert!(perms.has_module("classroom"));
        assert!(perms.has_permission("infirmary.visits.view"));
    }

    #[test]
    fn preset_union_takes_the_highest_level_per_cell() {
        let catalogue = fixture();
        let perms = catalogue.compile_roles(["external_teacher", "accountant"]);
        let expected = [R, N, R, W, W, N, R, N];
        for (scope, level) in SCOPES.iter().zip(expected) {
            assert_eq!(perms.scope_access("students", scope), level, "{scope}");
        }
    }

    #[test]
    fn unknown_roles_contribute_nothing() {
        let catalogue = fixture();
        assert_eq!(
            catalogue.compile_roles(["root", "ADMIN", ""]),
            CompiledPermissions::deny_all()
        );
        assert_eq!(
            catalogue.compile_roles(["root", "external_staff"]),
            catalogue.compile_roles(["external_staff"])
        );
    }

    #[test]
    fn no_roles_compile_to_deny_all() {
        let catalogue = fixture();
        assert!(catalogue.compile(&[], NOW).is_empty());
        assert!(catalogue.compile_roles(Vec::<String>::new()).is_empty());
    }

    #[test]
    fn expired_substitute_grants_nothing() {
        let catalogue = fixture();
        let substitute = RoleAssignment::new("internal_teacher")
            .valid_from(NOW - 120 * 86_400)
            .valid_until(NOW - 1);
        assert!(!substitute.is_active(NOW));
        assert!(catalogue.compile(&[substitute], NOW).is_empty());
    }

    #[test]
    fn not_yet_valid_assignment_grants_nothing() {
        let catalogue = fixture();
        let substitute = RoleAssignment::new("internal_teacher").valid_from(NOW + 1);
        assert!(catalogue
            .compile(std::slice::from_ref(&substitute), NOW)
            .is_empty());
        assert_eq!(
            catalogue.compile(&[substitute], NOW + 1),
            catalogue.compile_roles(["internal_teacher"])
        );
    }

    #[test]
    fn validity_window_is_half_open() {
        let assignment = RoleAssignment::new("parent")
            .valid_from(NOW)
            .valid_until(NOW + 10);
        assert!(!assignment.is_active(NOW - 1));
        assert!(assignment.is_active(NOW));
        assert!(assignment.is_active(NOW + 9));
        assert!(!assignment.is_active(NOW + 10));
        let catalogue = fixture();
        assert!(catalogue.compile(&[assignment], NOW + 10).is_empty());
    }

    #[test]
    fn open_ended_bounds_are_always_satisfied() {
        assert!(RoleAssignment::new("parent").is_active(0));
        assert!(RoleAssignment::new("parent").is_active(u64::MAX));
        assert!(RoleAssignment::new("parent").valid_until(1).is_active(0));
        assert!(RoleAssignment::new("parent")
            .valid_from(5)
            .is_active(u64::MAX));
        assert!(!RoleAssignment::new("parent")
            .valid_from(5)
            .valid_until(5)
            .is_active(5));
    }

    #[test]
    fn only_active_assignments_count_in_a_mix() {
        let catalogue = fixture();
        let perms = catalogue.compile(
            &[
                RoleAssignment::new("external_staff"),
                RoleAssignment::new("admin").valid_until(NOW),
                RoleAssignment::new("accountant")
                    .valid_from(NOW - 10)
                    .valid_until(NOW + 10),
            ],
            NOW,
        );
        assert_eq!(
            perms.scopes(),
            catalogue
                .compile_roles(["external_staff", "accountant"])
                .scopes()
        );
        // Valid until the accountant cover ends; the expired admin
        // assignment changes nothing any more.
        assert_eq!(perms.valid_until(), Some(NOW + 10));
        let later = catalogue.compile(&[RoleAssignment::new("admin").valid_from(NOW + 60)], NOW);
        assert!(later.is_empty());
        assert_eq!(
            later.valid_until(),
            Some(NOW + 60),
            "until the admin cover begins"
        );
        let unknown = catalogue.compile(&[RoleAssignment::new("ghost").valid_until(NOW + 5)], NOW);
        assert_eq!(
            unknown.valid_until(),
            None,
            "a role the catalogue lacks changes nothing"
        );
        assert_eq!(catalogue.compile_roles(["admin"]).valid_until(), None);
        assert!(!perms.has_action("students", "create"));
    }

    #[test]
    fn role_assignment_reads_camel_and_snake_case() {
        let camel: RoleAssignment =
            serde_json::from_str(r#"{"role":"parent","validFrom":10,"validUntil":20}"#).unwrap();
        let snake: RoleAssignment =
            serde_json::from_str(r#"{"role":"parent","valid_from":10,"valid_until":20}"#).unwrap();
        let expected = RoleAssignment::new("parent").valid_from(10).valid_until(20);
        assert_eq!(camel, expected);
        assert_eq!(snake, expected);
        assert_eq!(
            serde_json::to_string(&RoleAssignment::new("parent")).unwrap(),
            r#"{"role":"parent"}"#
        );
    }

    /// Asserts that everything `small` allows, `large` allows too.
    fn assert_covered(small: &CompiledPermissions, large: &CompiledPermissions) {
        for (entity, scopes) in small.scopes() {
            for (scope, access) in scopes {
                assert!(
                    large.scope_access(entity, scope) >= *access,
                    "{entity}.{scope}"
                );
            }
        }
        for (entity, actions) in small.actions() {
            for action in actions {
                assert!(large.has_action(entity, action), "{entity}.{action}");
            }
        }
        assert!(small.permissions().is_subset(large.permissions()));
        assert!(small.modules().is_subset(large.modules()));
    }

    fn role_set() -> impl Strategy<Value = Vec<&'static str>> {
        prop::sample::subsequence(MATRIX.map(|(role, _)| role).to_vec(), 0..=11)
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["NONE", "READ", "WRITE"])
    }

    /// A catalogue of three scopes, three actions with random requirements
    /// and four roles with random grants, as JSON.
    fn random_catalogue() -> impl Strategy<Value = String> {
        let requirement = prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c"]),
                prop::sample::select(vec!["READ", "WRITE"]),
            ),
            0..3,
        );
        let role = (
            prop::collection::vec(level(), 3),
            prop::sample::subsequence(vec!["e.x", "e.y", "e.z"], 0..=3),
            prop::sample::subsequence(vec!["p.one", "p.two"], 0..=2),
            prop::sample::subsequence(vec!["m1", "m2"], 0..=2),
        );
        (
            prop::collection::vec(requirement, 3),
            prop::collection::vec(role, 4),
        )
            .prop_map(|(requirements, roles)| {
                let actions: Vec<serde_json::Value> = ["x", "y", "z"]
                    .iter()
                    .zip(requirements)
                    .map(|(key, requires)| {
                        // Later duplicates would be rejected; keep the first.
                        let mut map = serde_json::Map::new();
                        for (scope, level) in requires {
                            map.entry(scope).or_insert(level.into());
                        }
                        serde_json::json!({ "key": key, "requires": map })
                    })
                    .collect();
                let roles: Vec<serde_json::Value> = roles
                    .into_iter()
                    .enumerate()
                    .map(|(i, (levels, actions, permissions, modules))| {
                        serde_json::json!({
                            "id": format!("r{i}"),
                            "name": format!("Role {i}"),
                            "scopes": { "e": { "a": levels[0], "b": levels[1], "c": levels[2] } },
                            "actions": actions,
                            "permissions": permissions,
                            "modules": modules,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "entities": [{
                        "key": "e",
                        "scopes": [{ "key": "a" }, { "key": "b" }, { "key": "c" }],
                        "actions": actions,
                    }],
                    "roles": roles,
                })
                .to_string()
            })
    }

    proptest! {
        #[test]
        fn adding_a_preset_role_never_removes_access(roles in role_set(), extra in role_set()) {
            let catalogue = fixture();
            let small = catalogue.compile_roles(&roles);
            let large = catalogue.compile_roles(roles.iter().chain(&extra));
            assert_covered(&small, &large);
        }

        #[test]
        fn adding_a_role_never_removes_access(
            json in random_catalogue(),
            small in prop::sample::subsequence(vec!["r0", "r1", "r2", "r3"], 0..=4),
            extra in prop::sample::subsequence(vec!["r0", "r1", "r2", "r3"], 0..=4),
        ) {
            let catalogue = Catalogue::from_json(&json).expect("generated catalogues are valid");
            let before = catalogue.compile_roles(&small);
            let after = catalogue.compile_roles(small.iter().chain(&extra));
            assert_covered(&before, &after);
        }

        #[test]
        fn effective_actions_meet_their_requirements(
            json in random_catalogue(),
            roles in prop::sample::subsequence(vec!["r0", "r1", "r2", "r3"], 0..=4),
        ) {
            let catalogue = Catalogue::from_json(&json).expect("generated catalogues are valid");
            let perms = catalogue.compile_roles(&roles);
            let entity = catalogue.entity("e").expect("declared by the generator");
            for action in entity.actions() {
                let granted = roles
                    .iter()
                    .any(|id| catalogue.role(id).is_some_and(|r| r.grants_action("e", action.key())));
                prop_assert_eq!(
                    perms.has_action("e", action.key()),
                    granted && action.is_satisfied_by("e", &perms)
                );
            }
        }

        #[test]
        fn an_inactive_assignment_changes_nothing(
            roles in role_set(),
            extra in prop::sample::select(MATRIX.map(|(role, _)| role).to_vec()),
            now in any::<u64>(),
            until in any::<u64>(),
        ) {
            let catalogue = fixture();
            let mut assignments: Vec<RoleAssignment> =
                roles.iter().map(|role| RoleAssignment::new(*role)).collect();
            let base = catalogue.compile(&assignments, now);
            let added = RoleAssignment::new(extra).valid_until(until);
            let active = added.is_active(now);
            assignments.push(added);
            let with = catalogue.compile(&assignments, now);
            if active {
                assert_covered(&base, &with);
            } else {
                prop_assert_eq!(with, base);
            }
        }

        #[test]
        fn compiled_write_on_any_scope_implies_read(roles in role_set()) {
            let perms = fixture().compile_roles(&roles);
            if perms.has_any_scope("students", ScopeAccess::Write) {
                prop_assert!(perms.has_any_scope("students", ScopeAccess::Read));
            }
        }
    }
}
