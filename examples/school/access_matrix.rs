//! `cargo run --example school -- access-matrix`: who can do what in this
//! service, printed without starting anything.
//!
//! ```text
//! school access-matrix [--format md|csv|html] [--tenant TENANT] [--roles A,B]... [--diff OTHER_CATALOGUE.json]
//! ```
//!
//! The roles are those of the catalogue the development IAM serves
//! ([`school_catalogue`]): the presets, plus a tenant's own roles with
//! `--tenant`; each `--roles A,B` adds a row for a caller holding those
//! roles at once; a last row is a request without a token. The routes are every route the service serves, listed with
//! what guards them. `--diff` compares with another catalogue document
//! (plain or with per-tenant roles) and prints what each role gains and
//! loses (Markdown, or CSV with `--format csv`).

use std::process::ExitCode;

use axum::http::Method;
use iam_guard::{
    access_matrix::{AccessMatrix, MatrixDiff, Route, RouteAccess},
    model::TenantCatalogues,
};

use crate::{app, catalogue::school_catalogue};

const USAGE: &str = "usage: school access-matrix [--format md|csv|html] [--tenant TENANT] \
                     [--roles ROLE,ROLE]... [--diff OTHER_CATALOGUE.json]";

/// Every route the school serves, with what guards it: the students
/// bundle as it reports itself, then the routes outside it. A route added
/// to `app.rs` or `main.rs` outside the bundle is listed here too:
/// `tests/access_matrix.rs` checks every listed route against the router,
/// but no router can list what it serves.
pub(crate) fn routes() -> Vec<Route> {
    let mut routes: Vec<Route> = app::students().report().iter().map(Route::from).collect();
    routes.extend([
        // The permissions endpoint: behind the auth layer, no requirement.
        Route::new(Method::GET, "/permissions", RouteAccess::Authenticated),
        Route::new(Method::GET, "/health", RouteAccess::Public),
        // The OpenAPI document, public like the API's description it is.
        Route::new(Method::GET, "/openapi.json", RouteAccess::Public),
        // Scraped without a token (serve it on an internal port in a real
        // deployment), and the RFC 9728 document a 401 points clients to.
        Route::new(Method::GET, "/metrics", RouteAccess::Public),
        Route::new(
            Method::GET,
            "/.well-known/oauth-protected-resource",
            RouteAccess::Public,
        ),
    ]);
    routes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Markdown,
    Csv,
    Html,
}

#[derive(Debug)]
struct Args {
    format: Format,
    tenant: Option<String>,
    role_sets: Vec<Vec<String>>,
    diff: Option<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        format: Format::Markdown,
        tenant: None,
        role_sets: Vec::new(),
        diff: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--format" => {
                parsed.format = match value("--format")?.as_str() {
                    "md" | "markdown" => Format::Markdown,
                    "csv" => Format::Csv,
                    "html" => Format::Html,
                    other => return Err(format!("--format {other:?} is not md, csv or html")),
                }
            }
            "--tenant" => parsed.tenant = Some(value("--tenant")?),
            "--roles" => {
                let list = value("--roles")?;
                let roles: Vec<String> = list.split(',').map(|r| r.trim().to_owned()).collect();
                if roles.iter().any(String::is_empty) {
                    return Err(format!("--roles {list:?} has an empty role"));
                }
                parsed.role_sets.push(roles);
            }
            "--diff" => parsed.diff = Some(value("--diff")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.diff.is_some() && parsed.format == Format::Html {
        return Err("--diff prints md or csv, not html".into());
    }
    Ok(parsed)
}

/// The matrix of the school: every role of `tenant` (the presets without
/// one), a row for each of `role_sets`, and a request without a token,
/// against [`routes`].
pub(crate) fn matrix(
    catalogues: &TenantCatalogues,
    tenant: Option<&str>,
    role_sets: &[Vec<String>],
) -> AccessMatrix {
    role_sets
        .iter()
        .fold(
            AccessMatrix::builder_for_tenant(catalogues, tenant).routes(routes()),
            |builder, roles| builder.role_set(roles.iter().cloned()),
        )
        .anonymous()
        .build()
}

/// Runs the subcommand on the arguments after `access-matrix`: 0 with
/// the output on stdout, 2 with a message on stderr for bad arguments or
/// an unreadable `--diff` catalogue.
pub(crate) fn run(args: &[String]) -> ExitCode {
    let fail = |why: String| {
        eprintln!("school access-matrix: {why}\n{USAGE}");
        ExitCode::from(2)
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(args) {
        Ok(args) => args,
        Err(why) => return fail(why),
    };
    let base = TenantCatalogues::from_json(&school_catalogue().to_string())
        .expect("the school catalogue is valid");
    let tenant = args.tenant.as_deref();
    let before = matrix(&base, tenant, &args.role_sets);
    let out = match &args.diff {
        None => match args.format {
            Format::Markdown => before.to_markdown(),
            Format::Csv => before.to_csv(),
            Format::Html => before.to_html(),
        },
        Some(path) => {
            let text = match std::fs::read(path) {
                Ok(text) => text,
                Err(e) => return fail(format!("cannot read --diff {path}: {e}")),
            };
            let other = match TenantCatalogues::from_slice(&text) {
                Ok(other) => other,
                Err(e) => return fail(format!("--diff {path} is not a valid catalogue: {e}")),
            };
            let after = matrix(&other, tenant, &args.role_sets);
            let diff = MatrixDiff::between(&before, &after);
            match args.format {
                Format::Csv => diff.to_csv(),
                _ => diff.to_markdown(),
            }
        }
    };
    print!("{out}");
    ExitCode::SUCCESS
}
