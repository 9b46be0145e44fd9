//! The review of a catalogue change: two matrices over the same routes,
//! compared row by row.

use std::fmt::{self, Write as _};

use http::Method;

use super::{
    compute::{AccessMatrix, ActionAccess, Outcome, Row},
    escape, markdown,
    route::RouteAccess,
};
use crate::model::ScopeAccess;

/// Whether a change widens or narrows what a subject can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// More access than before.
    Gained,
    /// Less access than before.
    Lost,
    /// Neither wider nor narrower: a refusal with another code, a grant
    /// that is still not effective, a route declared differently.
    Changed,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gained => "gained",
            Self::Lost => "lost",
            Self::Changed => "changed",
        })
    }
}

/// One difference between two matrices.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A row only the new matrix has (a role added to the catalogue).
    RoleAdded {
        /// The row's label.
        role: String,
        /// How many routes it may call, of how many.
        allowed: usize,
        /// The number of routes.
        routes: usize,
    },
    /// A row only the old matrix had.
    RoleRemoved {
        /// The row's label.
        role: String,
        /// How many routes it could call.
        allowed: usize,
        /// The number of routes.
        routes: usize,
    },
    /// A route's outcome for a subject.
    Route {
        /// The row's label.
        role: String,
        /// The route's method.
        method: Method,
        /// The route's path.
        path: String,
        /// Before.
        before: Outcome,
        /// After.
        after: Outcome,
    },
    /// A subject's level on a scope group (NONE where the group is not
    /// declared).
    Group {
        /// The row's label.
        role: String,
        /// The entity.
        entity: String,
        /// The scope group.
        group: String,
        /// Before.
        before: ScopeAccess,
        /// After.
        after: ScopeAccess,
    },
    /// Whether an action is effective for a subject.
    Action {
        /// The row's label.
        role: String,
        /// The entity.
        entity: String,
        /// The action.
        action: String,
        /// Before.
        before: ActionAccess,
        /// After.
        after: ActionAccess,
    },
    /// A route declared in one matrix only, or guarded differently.
    RouteDeclaration {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// Its access before, if it was there.
        before: Option<RouteAccess>,
        /// Its access after, if it is there.
        after: Option<RouteAccess>,
    },
}

impl Change {
    /// Whether the change widens or narrows access.
    pub fn direction(&self) -> Direction {
        fn rank<T: Ord>(before: T, after: T) -> Direction {
            match after.cmp(&before) {
                std::cmp::Ordering::Greater => Direction::Gained,
                std::cmp::Ordering::Less => Direction::Lost,
                std::cmp::Ordering::Equal => Direction::Changed,
            }
        }
        match self {
            Self::RoleAdded { .. } => Direction::Gained,
            Self::RoleRemoved { .. } => Direction::Lost,
            Self::Route { before, after, .. } => rank(before.is_allowed(), after.is_allowed()),
            Self::Group { before, after, .. } => rank(*before, *after),
            Self::Action { before, after, .. } => {
                // A grant that stays ineffective changes nothing one can do.
                rank(
                    *before == ActionAccess::Effective,
                    *after == ActionAccess::Effective,
                )
            }
            Self::RouteDeclaration { .. } => Direction::Changed,
        }
    }

    /// The row the change is about, if it is about one.
    pub fn role(&self) -> Option<&str> {
        match self {
            Self::RoleAdded { role, .. }
            | Self::RoleRemoved { role, .. }
            | Self::Route { role, .. }
            | Self::Group { role, .. }
            | Self::Action { role, .. } => Some(role),
            Self::RouteDeclaration { .. } => None,
        }
    }

    /// What changed, and its before and after, as plain text.
    fn parts(&self) -> (String, String, String) {
        let access = |a: &Option<RouteAccess>| {
            a.as_ref()
                .map_or_else(|| "not served".to_owned(), ToString::to_string)
        };
        match self {
            Self::RoleAdded {
                allowed, routes, ..
            } => (
                "role added".into(),
                "absent".into(),
                format!("{allowed} of {routes} routes allowed"),
            ),
            Self::RoleRemoved {
                allowed, routes, ..
            } => (
                "role removed".into(),
                format!("{allowed} of {routes} routes allowed"),
                "absent".into(),
            ),
            Self::Route {
                method,
                path,
                before,
                after,
                ..
            } => (
                format!("{method} {path}"),
                before.to_string(),
                after.to_string(),
            ),
            Self::Group {
                entity,
                group,
                before,
                after,
                ..
            } => (
                format!("{entity}.{group}"),
                before.as_str().to_owned(),
                after.as_str().to_owned(),
            ),
            Self::Action {
                entity,
                action,
                before,
                after,
                ..
            } => (
                format!("action {entity}.{action}"),
                before.to_string(),
                after.to_string(),
            ),
            Self::RouteDeclaration {
                method,
                path,
                before,
                after,
            } => (format!("{method} {path}"), access(before), access(after)),
        }
    }
}

impl Change {
    /// [`parts`](Self::parts) as Markdown cells: outcomes and levels in
    /// the matrix's symbols, the rest escaped text (`what` is escaped by
    /// the caller).
    fn markdown_parts(&self) -> (String, String, String) {
        let (what, before, after) = self.parts();
        match self {
            Self::Route { before, after, .. } => {
                (what, markdown::outcome(*before), markdown::outcome(*after))
            }
            Self::Group { before, after, .. } => (
                what,
                markdown::level(*before).to_owned(),
                markdown::level(*after).to_owned(),
            ),
            _ => (what, escape::markdown(&before), escape::markdown(&after)),
        }
    }
}

impl fmt::Display for Change {
    /// `lost: hr_secretary: PATCH /students/{id}: allowed -> refused INSUFFICIENT_SCOPE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, before, after) = self.parts();
        let role = self.role().unwrap_or("every role");
        write!(
            f,
            "{}: {role}: {what}: {before} -> {after}",
            self.direction()
        )
    }
}

/// Every grant gained or lost between two matrices, per role. See the
/// [module docs](super).
///
/// Rows are matched by label, routes by method and path, scope groups and
/// actions by key (one declared on one side only counts as NONE on the
/// other).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixDiff {
    changes: Vec<Change>,
}

impl MatrixDiff {
    /// The changes from `before` to `after`: per route declaration first,
    /// then per row (in `before`'s order, then rows new in `after`): a
    /// role added or removed, route outcomes, scope group levels, actions.
    pub fn between(before: &AccessMatrix, after: &AccessMatrix) -> Self {
        let mut changes = Vec::new();
        for route in before.routes() {
            let now = after
                .routes()
                .iter()
                .find(|r| r.is(route.method(), route.path()));
            if now.map(|r| r.access()) != Some(route.access()) {
                changes.push(Change::RouteDeclaration {
                    method: route.method().clone(),
                    path: route.path().to_owned(),
                    before: Some(route.access().clone()),
                    after: now.map(|r| r.access().clone()),
                });
            }
        }
        for route in after.routes() {
            if !before
                .routes()
                .iter()
                .any(|r| r.is(route.method(), route.path()))
            {
                changes.push(Change::RouteDeclaration {
                    method: route.method().clone(),
                    path: route.path().to_owned(),
                    before: None,
                    after: Some(route.access().clone()),
                });
            }
        }
        for old in before.rows() {
            let role = old.label();
            match after.row(&role) {
                None => changes.push(Change::RoleRemoved {
                    allowed: allowed(old),
                    routes: before.routes().len(),
                    role,
                }),
                Some(new) => compare(before, after, old, new, &mut changes),
            }
        }
        for new in after.rows() {
            let role = new.label();
            if before.row(&role).is_none() {
                changes.push(Change::RoleAdded {
                    allowed: allowed(new),
                    routes: after.routes().len(),
                    role,
                });
            }
        }
        Self { changes }
    }

    /// The changes, in the order of [`between`](Self::between).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether both matrices grant exactly the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes go in `direction`.
    pub fn count(&self, direction: Direction) -> usize {
        self.changes
            .iter()
            .filter(|c| c.direction() == direction)
            .count()
    }

    /// The changes as Markdown: a count, then a table of role, direction,
    /// what, before and after. Catalogue text is escaped.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Access changes\n\n");
        if self.is_empty() {
            out.push_str("No access changes: every role can do exactly what it could.\n");
            return out;
        }
        let _ = writeln!(
            out,
            "{} changes: {} gained, {} lost, {} changed.\n",
            self.changes.len(),
            self.count(Direction::Gained),
            self.count(Direction::Lost),
            self.count(Direction::Changed)
        );
        out.push_str("| Role | Change | What | Before | After |\n|---|---|---|---|---|\n");
        for change in &self.changes {
            let (what, before, after) = change.markdown_parts();
            let direction = match change.direction() {
                Direction::Gained => "➕ gained",
                Direction::Lost => "➖ lost",
                Direction::Changed => "± changed",
            };
            let _ = writeln!(
                out,
                "| {} | {direction} | {} | {before} | {after} |",
                escape::markdown(change.role().unwrap_or("every role")),
                escape::markdown(&what),
            );
        }
        out
    }

    /// The changes as CSV (RFC 4180, CRLF):
    /// `role,direction,what,before,after`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("role,direction,what,before,after\r\n");
        for change in &self.changes {
            let (what, before, after) = change.parts();
            let _ = write!(
                out,
                "{},{},{},{},{}\r\n",
                escape::csv(change.role().unwrap_or("")),
                change.direction(),
                escape::csv(&what),
                escape::csv(&before),
                escape::csv(&after)
            );
        }
        out
    }
}

fn allowed(row: &Row) -> usize {
    row.outcomes().iter().filter(|o| o.is_allowed()).count()
}

fn compare(
    before: &AccessMatrix,
    after: &AccessMatrix,
    old: &Row,
    new: &Row,
    changes: &mut Vec<Change>,
) {
    let role = old.label();
    for (route, was) in before.routes().iter().zip(old.outcomes()) {
        let Some(is) = after.outcome(&role, route.method(), route.path()) else {
            continue;
        };
        if is != *was {
            changes.push(Change::Route {
                role: role.clone(),
                method: route.method().clone(),
                path: route.path().to_owned(),
                before: *was,
                after: is,
            });
        }
    }
    // Entities, groups and actions of both sides, in `before`'s order then
    // the new ones.
    let mut entities: Vec<&str> = before
        .entities()
        .iter()
        .map(|e| e.entity.as_str())
        .collect();
    for e in after.entities() {
        if !entities.contains(&e.entity.as_str()) {
            entities.push(&e.entity);
        }
    }
    for entity in entities {
        let was = old.entities().iter().find(|e| e.entity == entity);
        let is = new.entities().iter().find(|e| e.entity == entity);
        let groups = |side: Option<&super::compute::EntityAccess>| {
            side.map(|e| e.groups.clone()).unwrap_or_default()
        };
        let (was_groups, is_groups) = (groups(was), groups(is));
        for (group, before, after) in union(&was_groups, &is_groups, ScopeAccess::None) {
            if before != after {
                changes.push(Change::Group {
                    role: role.clone(),
                    entity: entity.to_owned(),
                    group,
                    before,
                    after,
                });
            }
        }
        let actions = |side: Option<&super::compute::EntityAccess>| {
            side.map(|e| e.actions.clone()).unwrap_or_default()
        };
        let (was_actions, is_actions) = (actions(was), actions(is));
        for (action, before, after) in union(&was_actions, &is_actions, ActionAccess::None) {
            if before != after {
                changes.push(Change::Action {
                    role: role.clone(),
                    entity: entity.to_owned(),
                    action,
                    before,
                    after,
                });
            }
        }
    }
}

/// The keys of both sides (`was`'s order, then new keys) with each side's
/// value, `missing` where a side lacks the key.
fn union<T: Copy>(was: &[(String, T)], is: &[(String, T)], missing: T) -> Vec<(String, T, T)> {
    let lookup = |side: &[(String, T)], key: &str| {
        side.iter()
            .find(|(k, _)| k == key)
            .map_or(missing, |(_, v)| *v)
    };
    let mut keys: Vec<&str> = was.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in is {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| (k.to_owned(), lookup(was, k), lookup(is, k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Catalogue, Requirement};
    use proptest::prelude::*;

    fn access() -> impl Strategy<Value = ScopeAccess> {
        prop::sample::select(vec![
            ScopeAccess::None,
            ScopeAccess::Read,
            ScopeAccess::Write,
        ])
    }

    const SCOPES: [&str; 3] = ["anagraphic", "sensitive", "attendance"];

    /// A catalogue of one entity (three scopes, `create` needing WRITE on
    /// anagraphic and sensitive) and up to four roles with random levels
    /// and a random `create` grant.
    fn catalogue() -> impl Strategy<Value = Catalogue> {
        prop::collection::vec((prop::array::uniform3(access()), any::<bool>()), 0..4).prop_map(
            |roles| {
                let roles: Vec<serde_json::Value> = roles
                    .iter()
                    .enumerate()
                    .map(|(i, (levels, create))| {
                        let scopes: serde_json::Map<String, serde_json::Value> = SCOPES
                            .iter()
                            .zip(levels)
                            .map(|(s, l)| ((*s).to_owned(), l.as_str().into()))
                            .collect();
                        let actions: Vec<&str> =
                            if *create { vec!["students.create"] } else { vec![] };
                        serde_json::json!({
                            "id": format!("r{i}"), "name": format!("Role {i}"),
                            "scopes": { "students": scopes }, "actions": actions
                        })
                    })
                    .collect();
                let doc = serde_json::json!({
                    "entities": [{
                        "key": "students",
                        "scopes": SCOPES.iter().map(|s| serde_json::json!({"key": s})).collect::<Vec<_>>(),
                        "actions": [{"key": "create", "requires": {"anagraphic": "WRITE", "sensitive": "WRITE"}}]
                    }],
                    "roles": roles
                });
                Catalogue::from_json(&doc.to_string()).expect("a valid generated catalogue")
            },
        )
    }

    fn matrix(catalogue: &Catalogue) -> AccessMatrix {
        AccessMatrix::builder(catalogue)
            .route((
                Method::GET,
                "/students",
                Some(Requirement::scopes("students", ScopeAccess::Read)),
            ))
            .route((
                Method::PATCH,
                "/students/{id}",
                Some(Requirement::scopes("students", ScopeAccess::Write)),
            ))
            .route((
                Method::POST,
                "/students",
                Some(Requirement::action("students", "create")),
            ))
            .role_set(["r0", "r1"])
            .build()
    }

    proptest! {
        #[test]
        fn a_catalogue_against_itself_changes_nothing(c in catalogue()) {
            let m = matrix(&c);
            prop_assert!(MatrixDiff::between(&m, &m).is_empty());
        }

        #[test]
        fn every_gain_one_way_is_a_loss_the_other(a in catalogue(), b in catalogue()) {
            let (ma, mb) = (matrix(&a), matrix(&b));
            let forth = MatrixDiff::between(&ma, &mb);
            let back = MatrixDiff::between(&mb, &ma);
            prop_assert_eq!(forth.changes().len(), back.changes().len());
            prop_assert_eq!(forth.count(Direction::Gained), back.count(Direction::Lost));
            prop_assert_eq!(forth.count(Direction::Lost), back.count(Direction::Gained));
            prop_assert_eq!(forth.count(Direction::Changed), back.count(Direction::Changed));
            // A route is gained exactly when the new matrix allows it.
            for change in forth.changes() {
                if let Change::Route { role, method, path, after, .. } = change {
                    prop_assert_eq!(mb.outcome(role, method, path), Some(*after));
                    prop_assert_eq!(change.direction() == Direction::Gained, after.is_allowed());
                }
            }
        }
    }
}
