//! The crate's dependency rules, read from its own source:
//!
//! - the guard modules import each other without a cycle;
//! - `jwt` and `permissions` return their own errors: nothing in them
//!   names `rejection` (how answers are rendered) or `guard`;
//! - `model` is pure: no HTTP, no runtime, no Tower, no caches, and none of
//!   the crate's I/O modules.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)
}

/// The code of a file: comments and string literals blanked, so prose
/// and messages ("add JwtAuthGuardLayer…") are not mistaken for imports.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                out.push(' ');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
            }
            '\'' => {
                // A char literal ('a', '\n') or a lifetime ('a): skip the
                // literal only when it closes within three characters.
                let ahead: String = chars.clone().take(3).collect();
                if let Some(end) = ahead.find('\'') {
                    for _ in 0..=end {
                        chars.next();
                    }
                    out.push(' ');
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path the code names: `use` trees flattened (`a::{b, c::d}` gives
/// `a::b` and `a::c::d`), and inline paths such as `super::x::Y`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let tail = &rest[at + 4..];
        let Some(end) = tail.find(';') else { break };
        if before_ok {
            flatten("", &tail[..end], &mut out);
        }
        rest = &tail[end..];
    }
    // Inline paths.
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            let path = &code[start..i];
            if path.contains("::") {
                out.push(path.trim_end_matches(':').to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn flatten(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            for item in tree.split(',') {
                let item = item.split(" as ").next().unwrap().trim();
                if !item.is_empty() {
                    out.push(format!("{prefix}{item}"));
                }
            }
        }
        Some(open) => {
            let head = tree[..open].trim();
            let close = tree.rfind('}').expect("balanced braces");
            let inner = &tree[open + 1..close];
            let mut depth = 0;
            let mut start = 0;
            let prefix = format!("{prefix}{head}");
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        flatten(&prefix, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            flatten(&prefix, &inner[start..], out);
        }
    }
}

/// The guard module a file belongs to (`auth` for `guard/auth/layer.rs`).
fn guard_module(path: &Path) -> String {
    let rel = path.strip_prefix(src("guard")).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn guard_modules_import_each_other_without_a_cycle() {
    let modules: BTreeSet<String> = files_under(&src("guard"))
        .iter()
        .map(|p| guard_module(p))
        .filter(|m| m != "mod")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files_under(&src("guard")) {
        let from = guard_module(&file);
        if from == "mod" {
            continue;
        }
        // In a folder module, `super` is the folder itself.
        let nested = file.parent() != Some(&src("guard"));
        for path in paths(&code(&file)) {
            let target = if let Some(rest) = path.strip_prefix("crate::guard::") {
                rest
            } else if let (false, Some(rest)) = (nested, path.strip_prefix("super::")) {
                rest
            } else {
                continue;
            };
            let target = target.split("::").next().unwrap();
            if modules.contains(target) && target != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .insert(target.to_owned());
            }
        }
    }
    // Sanity: the scan sees the imports that must exist.
    assert!(edges["require"].contains("context"), "{edges:?}");
    assert!(edges["auth"].contains("deny"), "{edges:?}");

    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", stack[at..].join(" -> "));
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        visit(module, &edges, &mut Vec::new(), &mut done);
    }
}

fn assert_names_none(dir: &str, forbidden: &[&str]) {
    let mut seen = 0;
    for file in files_under(&src(dir)) {
        seen += 1;
        for path in paths(&code(&file)) {
            for bad in forbidden {
                let hit = path == *bad
                    || path.starts_with(&format!("{bad}::"))
                    || path.contains(&format!("::{bad}::"))
                    || path.ends_with(&format!("::{bad}"));
                assert!(!hit, "{} names {path} ({bad})", file.display());
            }
        }
    }
    assert!(seen > 0, "no source files under src/{dir}");
}

#[test]
fn jwt_and_permissions_know_nothing_of_answers() {
    for dir in ["jwt", "permissions"] {
        assert_names_none(dir, &["rejection", "guard", "Rejection", "ErrorRenderer"]);
    }
}

#[test]
fn the_model_is_pure() {
    assert_names_none(
        "model",
        &[
            "http",
            "tokio",
            "tower",
            "tower_layer",
            "tower_service",
            "moka",
            "axum",
            "reqwest",
            "jwt",
            "permissions",
            "guard",
            "rejection",
        ],
    );
}

#[test]
fn the_scan_finds_what_it_is_looking_for() {
    // The checks above pass vacuously if the scanner sees nothing.
    let sample = "use crate::{guard::context::Policy, jwt::{token::TokenError, verify}};\n\
                  fn f() { super::deny::route_of(x); } // crate::rejection::Rejection\n\
                  const S: &str = \"crate::guard::auth\";";
    let found = paths(&code_of(sample));
    for want in [
        "crate::guard::context::Policy",
        "crate::jwt::token::TokenError",
        "crate::jwt::verify",
        "super::deny::route_of",
    ] {
        assert!(found.iter().any(|p| p == want), "{want} in {found:?}");
    }
    assert!(!found.iter().any(|p| p.contains("rejection")), "{found:?}");
    assert!(!found.iter().any(|p| p.contains("auth")), "{found:?}");
}

fn code_of(text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("iam-guard-layering-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sample.rs");
    fs::write(&file, text).unwrap();
    let out = code(&file);
    let _ = fs::remove_dir_all(&dir);
    out
}
