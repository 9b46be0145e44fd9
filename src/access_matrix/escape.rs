//! Text from a catalogue or a route, made inert in each output format.
//!
//! Role names, ids and entity keys come from a catalogue document, which a
//! reviewer may be reviewing precisely because it is not trusted yet: a
//! name such as `<img src=x onerror=alert(1)>` must show as those
//! characters, never become markup, a table column or a spreadsheet
//! formula.

/// For HTML text and attribute values (always double-quoted).
pub(super) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// For a GitHub-flavoured Markdown table cell: markup characters are
/// backslash-escaped, `<` and `&` are spelled as entities (GitHub renders
/// inline HTML, and no tag or entity starts without one of them), `|`
/// cannot end the cell, and a line break cannot end the row. A `>` is
/// text anywhere but at the start of a line, where a cell never is.
pub(super) fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One RFC 4180 field: quoted when it holds a comma, a quote, a line
/// break or surrounding spaces, quotes doubled. A field that a spreadsheet
/// would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) is prefixed with `'` and quoted, as OWASP advises
/// against CSV injection.
pub(super) fn csv(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula
        || text.contains([',', '"', '\n', '\r'])
        || text.starts_with(' ')
        || text.ends_with(' ');
    if !quote {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 3);
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<img src=x onerror=alert(1)> | a,\"b\"\n`c` *d* [e](f)";

    #[test]
    fn html_leaves_no_tag_or_quote() {
        let out = html(HOSTILE);
        assert!(!out.contains(['<', '>', '"', '\'', '\n']), "{out}");
        assert_eq!(html("a&b"), "a&amp;b");
        assert_eq!(
            html("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
    }

    #[test]
    fn markdown_keeps_the_text_inside_its_cell() {
        let out = markdown(HOSTILE);
        assert!(!out.contains(['<', '\n']), "{out}");
        assert_eq!(markdown("a & <b>"), "a &amp; &lt;b>");
        // Every `|` is escaped, so the row keeps its columns.
        assert_eq!(out.matches('|').count(), out.matches("\\|").count());
        assert_eq!(markdown("hr_secretary"), "hr\\_secretary");
        assert_eq!(markdown("GET /students/{id}"), "GET /students/{id}");
    }

    #[test]
    fn csv_quotes_per_rfc_4180_and_defuses_formulas() {
        assert_eq!(csv("admin"), "admin");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv(" padded"), "\" padded\"");
    }
}
