//! [`Role`]: one role the token grants this service, with where it came
//! from and how far it reaches.

use std::{fmt, sync::Arc};

/// A role the token grants *this* service.
///
/// Roles arrive as plain names (`"teacher"`) or, from some in-house IAMs,
/// as `{system, role, department}` objects. The
/// [`ClaimMapping`](super::ClaimMapping) keeps only roles that count here:
/// a role of another system, or of another client's section of a Keycloak
/// token, never becomes a `Role`.
///
/// - [`qualifier`](Self::qualifier): the label of the claim the role was
///   read from when that claim was mapped as qualified (`"realm"`, or this
///   client's id for Keycloak client roles);
/// - [`system`](Self::system): the system a structured role names (always
///   this service's system, when present);
/// - [`department`](Self::department): a role limited to one department
///   holds there only; [`RecordAccess`](crate::RecordAccess) tells the
///   handler, per department, what it allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    name: Box<str>,
    qualifier: Option<Arc<str>>,
    system: Option<Box<str>>,
    department: Option<Box<str>>,
}

impl Role {
    /// A plain role called `name`, not qualified, not limited.
    pub fn new(name: impl Into<Box<str>>) -> Self {
        Self {
            name: name.into(),
            qualifier: None,
            system: None,
            department: None,
        }
    }

    pub(crate) fn structured(
        name: &str,
        system: Option<&str>,
        department: Option<&str>,
        qualifier: Option<Arc<str>>,
    ) -> Self {
        Self {
            name: name.into(),
            qualifier,
            system: system.map(Box::from),
            department: department.map(Box::from),
        }
    }

    pub(crate) fn qualified(mut self, qualifier: Option<Arc<str>>) -> Self {
        self.qualifier = qualifier;
        self
    }

    /// The role name, such as `admin`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label of the role claim it came from, when that claim was
    /// mapped with one ([`ClaimMapping::qualified_roles`](super::ClaimMapping::qualified_roles)).
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }

    /// The system a structured role names.
    pub fn system(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// The department the role is limited to, if any.
    pub fn department(&self) -> Option<&str> {
        self.department.as_deref()
    }

    /// Whether the role holds in one department only.
    pub fn is_department_limited(&self) -> bool {
        self.department.is_some()
    }

    /// Whether `spec` names this role: its name (`"admin"`, whatever the
    /// qualifier), or `"<qualifier>:<name>"` (`"realm:admin"`,
    /// `"students-api:admin"`) to insist on where it was granted.
    pub fn matches(&self, spec: &str) -> bool {
        if spec == &*self.name {
            return true;
        }
        match (&self.qualifier, spec.split_once(':')) {
            (Some(q), Some((qualifier, name))) => **q == *qualifier && *name == *self.name,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    /// `name`, `qualifier:name`, with `@department` when limited to one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(q) = &self.qualifier {
            write!(f, "{q}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(d) = &self.department {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_matches_the_name_or_the_qualified_name() {
        let realm = Role::new("admin").qualified(Some("realm".into()));
        assert!(realm.matches("admin"));
        assert!(realm.matches("realm:admin"));
        assert!(!realm.matches("students-api:admin"));
        assert!(!realm.matches("realm:teacher"));
        let plain = Role::new("admin");
        assert!(plain.matches("admin"));
        assert!(!plain.matches("realm:admin"));
        // A role whose name has a colon is still matched by its name.
        assert!(Role::new("a:b").matches("a:b"));
    }

    #[test]
    fn display_shows_qualifier_and_department() {
        let r = Role::structured("manager", Some("inv"), Some("north"), Some("realm".into()));
        assert_eq!(r.to_string(), "realm:manager@north");
        assert_eq!(Role::new("teacher").to_string(), "teacher");
    }
}
