//! The bundled school catalogue, a complete example of the format that
//! examples, benchmarks and tests share.

use super::Catalogue;

impl Catalogue {
    /// The bundled school catalogue: the `students` entity with its eight
    /// scopes, the `create` and `delete` actions, and the eleven preset roles.
    ///
    /// # Panics
    ///
    /// Never in practice: the bundled file is validated by this module's
    /// tests.
    pub fn students_fixture() -> Self {
        Self::from_json(include_str!("../../../fixtures/students_catalogue.json"))
            .expect("the bundled students catalogue is valid, as its tests check")
    }
}

#[cfg(test)]
mod tests {
    use crate::model::access::ScopeAccess;
    use crate::model::catalogue::{ActionDef, Catalogue, ScopeDef};

    const STUDENT_SCOPES: [&str; 8] = [
        "anagraphic",
        "sensitive",
        "attendance",
        "scoring",
        "financial",
        "family",
        "documents",
        "enrollment",
    ];

    #[test]
    fn students_fixture_has_eight_scopes_two_actions_and_eleven_roles() {
        let catalogue = Catalogue::students_fixture();
        let students = catalogue.entity("students").unwrap();
        let scopes: Vec<&str> = students.scopes().map(ScopeDef::key).collect();
        assert_eq!(scopes, STUDENT_SCOPES);
        let actions: Vec<&str> = students.actions().map(ActionDef::key).collect();
        assert_eq!(actions, ["create", "delete"]);
        for action in students.actions() {
            let requires: Vec<_> = action.requirements().collect();
            assert_eq!(
                requires,
                [
                    ("anagraphic", ScopeAccess::Write),
                    ("sensitive", ScopeAccess::Write)
                ],
                "{}",
                action.key()
            );
        }
        assert_eq!(catalogue.roles().len(), 11);
    }

    #[test]
    fn students_fixture_maps_the_seed_fields() {
        let catalogue = Catalogue::students_fixture();
        let students = catalogue.entity("students").unwrap();
        let expected: [(&str, &[&str]); 8] = [
            (
                "anagraphic",
                &[
                    "firstName",
                    "lastName",
                    "dateOfBirth",
                    "gender",
                    "nationality",
                    "address",
                    "photo",
                    "taxCode",
                ],
            ),
            (
                "sensitive",
                &[
                    "medical_records.*",
                    "disabilityInfo",
                    "psychological_notes.*",
                    "dietaryRestrictions",
                ],
            ),
            (
                "attendance",
                &[
                    "attendance_records.*",
                    "reason",
                    "timestamp",
                    "excusedBy",
                    "daily_class_lists.*",
                ],
            ),
            ("scoring", &["grades.*", "evaluations.*", "report_cards.*"]),
            (
                "financial",
                &["payment_plans.*", "fees.*", "invoices.*", "deposits.*"],
            ),
            (
                "family",
                &[
                    "parents.firstName",
                    "parents.lastName",
                    "parents.phone",
                    "parents.email",
                    "student_parents.*",
                    "emergency_contacts.*",
                ],
            ),
            ("documents", &["student_documents.*"]),
            (
                "enrollment",
                &[
                    "enrollment_history.*",
                    "class_assignments.*",
                    "admission_applications.*",
                ],
            ),
        ];
        for (scope, fields) in expected {
            assert_eq!(students.scope(scope).unwrap().fields(), fields, "{scope}");
            for field in fields {
                assert_eq!(students.scope_of_field(field), Some(scope));
            }
        }
        assert_eq!(students.scope_of_field("tenantId"), None);
    }
}
