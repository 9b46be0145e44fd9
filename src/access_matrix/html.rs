//! The matrix as one self-contained HTML page.
//!
//! Everything is inline: no fonts, scripts, images or styles are fetched.
//! The page's Content-Security-Policy allows only its own style and script
//! (by SHA-256) and nothing else, so even text that escaped escaping could
//! neither load anything nor run.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{
    compute::{AccessMatrix, ActionAccess, Outcome},
    escape, markdown,
};
use crate::model::ScopeAccess;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
p { margin: 6px 0; }
#summary { font-weight: 600; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border-radius: 4px; }
.tools { margin: 12px 0; }
#filter { font: inherit; padding: 4px 8px; width: 260px; }
table { border-collapse: collapse; margin-top: 8px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: center; white-space: nowrap; }
thead th { background: #f6f8fa; vertical-align: bottom; white-space: normal; max-width: 11em; }
tbody th { text-align: left; font-weight: 600; background: #fff; }
td.name { text-align: left; color: #57606a; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable:hover { background: #eaeef2; }
th[aria-sort="ascending"]::after { content: " \25B2"; }
th[aria-sort="descending"]::after { content: " \25BC"; }
.method { font-size: 11px; color: #57606a; display: block; }
.allowed { background: #dafbe1; color: #116329; }
.refused { background: #ffebe9; color: #82071e; font-size: 11px; }
.write { background: #aceebb; }
.read { background: #dafbe1; }
.none { background: #f6f8fa; color: #8c959f; }
.granted { background: #fff8c5; font-size: 12px; }
tr[hidden] { display: none; }
"#;

const SCRIPT: &str = r#"
(function () {
  "use strict";
  var routes = document.getElementById("routes");
  var cells = routes.querySelectorAll("tbody td[data-outcome]");
  var allowed = 0, refused = 0;
  cells.forEach(function (cell) {
    if (cell.getAttribute("data-outcome") === "allowed") { allowed++; } else { refused++; }
  });
  var summary = document.getElementById("summary");
  summary.setAttribute("data-cells", String(cells.length));
  summary.setAttribute("data-allowed", String(allowed));
  summary.setAttribute("data-refused", String(refused));
  summary.textContent = cells.length + " cells: " + allowed + " allowed, " + refused + " refused";

  // The filter keeps the rows whose role, name or codes contain its text;
  // the summary says how many rows of the grid are shown.
  var filter = document.getElementById("filter");
  var apply = function () {
    var needle = filter.value.trim().toLowerCase();
    document.querySelectorAll("tbody tr[data-label]").forEach(function (row) {
      var text = row.getAttribute("data-label") + " " + row.getAttribute("data-name") + " " + row.textContent;
      row.hidden = needle !== "" && text.toLowerCase().indexOf(needle) < 0;
    });
    summary.setAttribute("data-shown", String(routes.querySelectorAll("tbody tr:not([hidden])").length));
  };
  filter.addEventListener("input", apply);
  apply();

  // Clicking a route's header puts the rows it allows first (again: last);
  // clicking "Role" sorts by role.
  var rank = function (row, col) {
    if (col === 0) { return row.getAttribute("data-label"); }
    var cell = row.children[col];
    return (cell.getAttribute("data-outcome") === "allowed" ? "0" : "1") + (cell.getAttribute("data-code") || "");
  };
  routes.querySelectorAll("thead th.sortable").forEach(function (th) {
    th.addEventListener("click", function () {
      var col = Number(th.getAttribute("data-col"));
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      routes.querySelectorAll("thead th.sortable").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = routes.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = rank(a, col), y = rank(b, col);
        var order = x < y ? -1 : x > y ? 1 : Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index"));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); th.click(); }
    });
  });

  // A link can carry a filter and a sorted column: #filter=teacher&sort=0.
  location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
    var at = pair.indexOf("=");
    if (at < 0) { return; }
    var key = pair.slice(0, at), value = decodeURIComponent(pair.slice(at + 1));
    if (key === "filter") { filter.value = value; apply(); }
    if (key === "sort") {
      var th = routes.querySelector('thead th.sortable[data-col="' + Number(value) + '"]');
      if (th) { th.click(); }
    }
  });
})();
"#;

/// `'sha256-…'` of an inline block, for the Content-Security-Policy.
fn csp_hash(block: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, block.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

fn level_class(level: ScopeAccess) -> &'static str {
    match level {
        ScopeAccess::Write => "write",
        ScopeAccess::Read => "read",
        ScopeAccess::None => "none",
    }
}

fn action_class(access: ActionAccess) -> &'static str {
    match access {
        ActionAccess::Effective => "allowed",
        ActionAccess::Granted => "granted",
        ActionAccess::None => "none",
    }
}

/// The text of an action cell. Check marks rather than emoji: the page
/// brings no font, and a machine without an emoji font (CI's) would draw
/// boxes.
fn action_text(access: ActionAccess) -> &'static str {
    match access {
        ActionAccess::Effective => "✓",
        ActionAccess::Granted => "granted, not effective",
        ActionAccess::None => "—",
    }
}

/// A path for a column header: escaped, and breakable after each `/` but
/// the leading one, so that long paths wrap instead of widening the grid.
fn header_path(path: &str) -> String {
    let (lead, rest) = path.split_at(usize::from(path.starts_with('/')));
    format!("{lead}{}", escape::html(rest).replace('/', "/<wbr>"))
}

impl AccessMatrix {
    /// The matrix as one self-contained HTML page: a colour-coded role ×
    /// route grid with a legend, a filter box and sortable columns, and
    /// per entity a role × scope group grid. Its script writes the number
    /// of cells and of allowed and refused ones into
    /// `<p id="summary" data-cells=… data-allowed=… data-refused=…>`
    /// (and the rows the filter shows into `data-shown`); a link can carry
    /// a filter and a sorted column (`#filter=teacher&sort=0`). The page
    /// loads nothing from the network. Catalogue text is escaped.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src {}; script-src {}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Access matrix</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <h1>Access matrix</h1>\n",
            csp_hash(STYLE),
            csp_hash(SCRIPT)
        );
        let roles = match self.tenant() {
            Some(tenant) => format!("the roles of tenant <b>{}</b>", escape::html(tenant)),
            None => "the catalogue's roles".to_owned(),
        };
        let _ = write!(
            out,
            "<p>Who can call what: {roles}, each alone, against {} routes. A cell says \
             whether a request reaches the handler, or the code it is refused with.</p>\n\
             <p id=\"summary\">(this page's script counts the cells)</p>\n\
             <p class=\"legend\"><span class=\"allowed\">✓ allowed</span>\
             <span class=\"refused\">✗ refused, with its code</span>\
             <span class=\"write\">R/W read and write</span><span class=\"read\">R read</span>\
             <span class=\"none\">— neither</span>\
             <span class=\"granted\">granted, not effective</span></p>\n\
             <p class=\"tools\"><label>Filter rows <input id=\"filter\" type=\"search\" \
             placeholder=\"role, name or code\" autocomplete=\"off\"></label> \
             Click a route to put the roles it allows first.</p>\n",
            self.routes().len()
        );

        out.push_str(
            "<table id=\"routes\">\n<thead><tr><th class=\"sortable\" data-col=\"0\" tabindex=\"0\">Role</th>\
             <th>Name</th>",
        );
        for (i, route) in self.routes().iter().enumerate() {
            let _ = write!(
                out,
                "<th class=\"sortable\" data-col=\"{}\" tabindex=\"0\" title=\"{}\"><span class=\"method\">{}</span>{}</th>",
                i + 2,
                escape::html(&route.access().to_string()),
                escape::html(route.method().as_str()),
                header_path(route.path())
            );
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for (index, row) in self.rows().iter().enumerate() {
            let label = escape::html(&row.label());
            let name = escape::html(row.name().unwrap_or_default());
            let _ = write!(
                out,
                "<tr data-index=\"{index}\" data-label=\"{label}\" data-name=\"{name}\">\
                 <th scope=\"row\">{label}</th><td class=\"name\">{}</td>",
                if name.is_empty() { "—" } else { &name }
            );
            for outcome in row.outcomes() {
                match outcome {
                    Outcome::Allowed => {
                        out.push_str("<td class=\"allowed\" data-outcome=\"allowed\">✓</td>")
                    }
                    Outcome::Refused(code) => {
                        let _ = write!(
                            out,
                            "<td class=\"refused\" data-outcome=\"refused\" data-code=\"{0}\" \
                             title=\"{1} {0}\">✗ {0}</td>",
                            escape::html(code.as_str()),
                            code.status().as_u16()
                        );
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");

        for (i, columns) in self.entities().iter().enumerate() {
            let _ = write!(
                out,
                "<h2>Entity {}</h2>\n<table class=\"entity\">\n<thead><tr><th>Role</th>",
                escape::html(&columns.entity)
            );
            for group in &columns.groups {
                let _ = write!(out, "<th>{}</th>", escape::html(group));
            }
            for action in &columns.actions {
                let _ = write!(
                    out,
                    "<th><span class=\"method\">action</span>{}</th>",
                    escape::html(action)
                );
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in self.rows() {
                let entity = &row.entities()[i];
                let label = escape::html(&row.label());
                let _ = write!(
                    out,
                    "<tr data-label=\"{label}\" data-name=\"{}\"><th scope=\"row\">{label}</th>",
                    escape::html(row.name().unwrap_or_default())
                );
                for (_, level) in &entity.groups {
                    let _ = write!(
                        out,
                        "<td class=\"{}\">{}</td>",
                        level_class(*level),
                        markdown::level(*level)
                    );
                }
                for (_, access) in &entity.actions {
                    let _ = write!(
                        out,
                        "<td class=\"{}\">{}</td>",
                        action_class(*access),
                        action_text(*access)
                    );
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
        }
        let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
        out
    }
}
