//! The matrix as Markdown, for a pull request.

use std::fmt::Write as _;

use super::{
    compute::{AccessMatrix, ActionAccess, Outcome},
    escape,
};
use crate::model::ScopeAccess;

/// ✅, or ❌ and the code.
pub(super) fn outcome(outcome: Outcome) -> String {
    match outcome {
        Outcome::Allowed => "✅".to_owned(),
        Outcome::Refused(code) => format!("❌ {}", escape::markdown(code.as_str())),
    }
}

/// R, R/W or —.
pub(super) fn level(level: ScopeAccess) -> &'static str {
    match level {
        ScopeAccess::Write => "R/W",
        ScopeAccess::Read => "R",
        ScopeAccess::None => "—",
    }
}

/// ✅ effective, "granted, not effective", or —.
pub(super) fn action(access: ActionAccess) -> &'static str {
    match access {
        ActionAccess::Effective => "✅",
        ActionAccess::Granted => "granted, not effective",
        ActionAccess::None => "—",
    }
}

fn table_row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    out.push('|');
    for cell in cells {
        let _ = write!(out, " {cell} |");
    }
    out.push('\n');
}

fn separator(out: &mut String, columns: usize) {
    out.push('|');
    for _ in 0..columns {
        out.push_str("---|");
    }
    out.push('\n');
}

impl AccessMatrix {
    /// The matrix as GitHub-flavoured Markdown: the routes with their
    /// requirements, a role × route table (✅, or ❌ with the code a
    /// request gets), and per entity a role × scope group table (R, R/W,
    /// —) with the actions. Catalogue text is escaped.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Access matrix\n\n");
        let roles = match self.tenant() {
            Some(tenant) => format!("the roles of tenant {}", escape::markdown(tenant)),
            None => "the catalogue's roles".to_owned(),
        };
        let _ = writeln!(
            out,
            "Who can call what: {roles}, each alone, against {} routes. \
             ✅ reaches the handler; ❌ is refused with the code shown. \
             {} cells: {} allowed, {} refused.\n",
            self.routes().len(),
            self.cells(),
            self.allowed_cells(),
            self.refused_cells()
        );

        out.push_str("## Routes\n\n");
        table_row(&mut out, ["Route".into(), "Requirement".into()]);
        separator(&mut out, 2);
        for route in self.routes() {
            table_row(
                &mut out,
                [
                    escape::markdown(&route.to_string()),
                    escape::markdown(&route.access().to_string()),
                ],
            );
        }

        out.push_str("\n## Who can call what\n\n");
        table_row(
            &mut out,
            ["Role".into(), "Name".into()].into_iter().chain(
                self.routes()
                    .iter()
                    .map(|r| escape::markdown(&r.to_string())),
            ),
        );
        separator(&mut out, self.routes().len() + 2);
        for row in self.rows() {
            table_row(
                &mut out,
                [
                    escape::markdown(&row.label()),
                    row.name().map_or_else(|| "—".to_owned(), escape::markdown),
                ]
                .into_iter()
                .chain(row.outcomes().iter().map(|o| outcome(*o))),
            );
        }

        for (i, columns) in self.entities().iter().enumerate() {
            let _ = writeln!(
                out,
                "\n## Entity {}\n\nScope groups: R/W read and write, R read, — neither \
                 (a response carries only the groups a caller reads; a write body may \
                 touch only the groups it writes). Actions: ✅ effective.\n",
                escape::markdown(&columns.entity)
            );
            table_row(
                &mut out,
                std::iter::once("Role".to_owned())
                    .chain(columns.groups.iter().map(|g| escape::markdown(g)))
                    .chain(
                        columns
                            .actions
                            .iter()
                            .map(|a| format!("action {}", escape::markdown(a))),
                    ),
            );
            separator(&mut out, 1 + columns.groups.len() + columns.actions.len());
            for row in self.rows() {
                let entity = &row.entities()[i];
                table_row(
                    &mut out,
                    std::iter::once(escape::markdown(&row.label()))
                        .chain(entity.groups.iter().map(|(_, l)| level(*l).to_owned()))
                        .chain(entity.actions.iter().map(|(_, a)| action(*a).to_owned())),
                );
            }
        }
        out
    }
}
