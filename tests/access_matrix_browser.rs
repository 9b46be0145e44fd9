//! The access matrix's HTML page in headless Chromium: its own script runs
//! (it writes the cell counts into `#summary`), filters and sorts, survives
//! a hostile catalogue, and renders the screenshot CI keeps as
//! `target/access-matrix.png`.
//!
//! Chromium comes from Debian (`tests/support/install-chromium.sh`, run by
//! `.ci/run`); without it these tests fail, never skip. Each run gets a
//! fresh profile, no network features and a time bound.
//!
//! The README's picture is this test's screenshot:
//! `ACCESS_MATRIX_DOCS=1 cargo test --all-features --test access_matrix_browser`
//! also writes it to `docs/access-matrix.png`.
#![cfg(feature = "test-util")]

#[allow(dead_code)]
#[path = "../examples/school/users.rs"]
mod users;

#[allow(dead_code)]
#[path = "../examples/school/app.rs"]
mod app;

#[allow(dead_code)]
#[path = "../examples/school/catalogue.rs"]
mod catalogue;

#[allow(dead_code)]
#[path = "../examples/school/access_matrix.rs"]
mod school_matrix;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use iam_guard::{access_matrix::AccessMatrix, model::TenantCatalogues};
use serde_json::json;

/// Longer than a cold Chromium start on a loaded 2-core machine; a hung
/// browser fails the test instead of hanging CI.
const BOUND: Duration = Duration::from_secs(90);

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .expect("chromium is not on PATH: run tests/support/install-chromium.sh (.ci/run does)")
}

/// A fresh directory under the test target dir.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "access-matrix-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `page` with `args`, in a fresh profile,
/// killed past [`BOUND`]; its stdout.
fn headless(page: &str, args: &[String]) -> String {
    let dir = scratch("chromium");
    let stdout = dir.join("stdout");
    let stderr = dir.join("stderr");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(page)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BOUND:?}: {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        fs::read_to_string(&stderr).unwrap_or_default()
    );
    let out = fs::read_to_string(&stdout).unwrap();
    let _ = fs::remove_dir_all(&dir);
    out
}

/// The page written to a file, and its `file://` URL.
fn page_of(matrix: &AccessMatrix) -> (PathBuf, String) {
    let dir = scratch("page");
    let file = dir.join("access-matrix.html");
    fs::write(&file, matrix.to_html()).unwrap();
    let url = format!("file://{}", file.display());
    (dir, url)
}

fn school() -> AccessMatrix {
    let catalogues =
        TenantCatalogues::from_json(&catalogue::school_catalogue().to_string()).unwrap();
    school_matrix::matrix(&catalogues, None, &[])
}

/// The value of `attribute` in the `<p id="summary" …>` tag of `dom`.
fn summary_attribute(dom: &str, attribute: &str) -> Option<String> {
    let start = dom.find("<p id=\"summary\"")?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let needle = format!("{attribute}=\"");
    let at = tag.find(&needle)? + needle.len();
    Some(tag[at..at + tag[at..].find('"')?].to_owned())
}

fn count(dom: &str, attribute: &str) -> usize {
    summary_attribute(dom, attribute)
        .unwrap_or_else(|| panic!("no {attribute} on #summary: the page's script did not run"))
        .parse()
        .unwrap()
}

/// The `data-label`s of the grid's rows, in document order.
fn grid_labels(dom: &str) -> Vec<String> {
    let grid = &dom[dom.find("<table id=\"routes\"").unwrap()..];
    let grid = &grid[..grid.find("</table>").unwrap()];
    grid.split("<tr ")
        .skip(1)
        .filter_map(|row| {
            let at = row.find("data-label=\"")? + "data-label=\"".len();
            Some(row[at..at + row[at..].find('"')?].to_owned())
        })
        .collect()
}

#[test]
fn the_page_counts_its_own_cells_in_chromium() {
    let matrix = school();
    let html = matrix.to_html();
    assert!(
        !html.contains("data-cells="),
        "the counts come from the script only"
    );
    let (dir, url) = page_of(&matrix);
    let dom = headless(&url, &["--dump-dom".into()]);
    assert_eq!(count(&dom, "data-cells"), matrix.cells());
    assert_eq!(count(&dom, "data-allowed"), matrix.allowed_cells());
    assert_eq!(count(&dom, "data-refused"), matrix.refused_cells());
    assert_eq!(count(&dom, "data-shown"), matrix.rows().len());
    assert!(matrix.allowed_cells() > 0 && matrix.refused_cells() > 0);
    assert!(dom.contains(&format!(
        "{} cells: {} allowed, {} refused",
        matrix.cells(),
        matrix.allowed_cells(),
        matrix.refused_cells()
    )));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_link_filters_and_sorts_the_grid() {
    let matrix = school();
    let (dir, url) = page_of(&matrix);
    let dom = headless(
        &format!("{url}#filter=Teacher&sort=0"),
        &["--dump-dom".into()],
    );
    let teachers = matrix
        .rows()
        .iter()
        .filter(|r| r.label().contains("teacher"))
        .count();
    assert_eq!(teachers, 2);
    assert_eq!(count(&dom, "data-shown"), teachers);
    // Column 0 sorts by role.
    let mut sorted: Vec<String> = matrix.rows().iter().map(|r| r.label()).collect();
    sorted.sort();
    assert_eq!(grid_labels(&dom), sorted);
    assert_ne!(
        sorted,
        matrix.rows().iter().map(|r| r.label()).collect::<Vec<_>>()
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_hostile_catalogue_injects_nothing_into_the_page() {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/students_catalogue.json")).unwrap();
    doc["roles"].as_array_mut().unwrap().push(json!({
        "id": "<script>alert(1)</script>",
        "name": "<img src=x onerror=\"document.title='owned'\"> </td></tr></table><p id=\"summary\" data-cells=\"1\">",
        "scopes": {"students": {"anagraphic": "READ"}}
    }));
    let catalogues = TenantCatalogues::from_json(&doc.to_string()).unwrap();
    let matrix = school_matrix::matrix(&catalogues, None, &[]);
    let (dir, url) = page_of(&matrix);
    let dom = headless(&url, &["--dump-dom".into()]);
    assert!(!dom.contains("<img"), "an element from the catalogue");
    assert_eq!(dom.matches("<script").count(), 1);
    assert!(dom.contains("<title>Access matrix</title>"));
    assert_eq!(dom.matches("<p id=\"summary\"").count(), 1);
    assert_eq!(count(&dom, "data-cells"), matrix.cells());
    assert_eq!(count(&dom, "data-allowed"), matrix.allowed_cells());
    assert_eq!(grid_labels(&dom).len(), matrix.rows().len());
    let _ = fs::remove_dir_all(dir);
}

/// PNG width and height from the IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_screenshot_of_the_school_matrix() {
    let matrix = school();
    let (dir, url) = page_of(&matrix);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("access-matrix.png");
    let _ = fs::remove_file(&target);
    headless(
        &url,
        &[
            format!("--screenshot={}", target.display()),
            "--window-size=1680,1120".into(),
        ],
    );
    let png = fs::read(&target).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (1680, 1120));
    assert!(
        png.len() > 20_000,
        "a page with content, {} bytes",
        png.len()
    );
    if std::env::var_os("ACCESS_MATRIX_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/access-matrix.png");
        fs::write(&docs, &png).unwrap();
    }
    let _ = fs::remove_dir_all(dir);
}
