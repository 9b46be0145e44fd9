//! `school access-matrix`, run as the binary `cargo test` builds: each
//! format and `--diff` print and exit 0 without serving anything; a bad
//! argument exits 2 with a message.
#![cfg(feature = "test-util")]

#[path = "common/example_binary.rs"]
mod example_binary;

use example_binary::example_binary;

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `school access-matrix <args>` with an empty environment; a
/// subcommand that started serving would never exit, so the run is
/// bounded and fails past 60 s.
fn access_matrix(args: &[&str]) -> Run {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "school-access-matrix-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(example_binary("school"))
        .arg("access-matrix")
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("the school example starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("school access-matrix {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.code().expect("an exit code"),
        stdout: fs::read_to_string(&out).unwrap(),
        stderr: fs::read_to_string(&err).unwrap(),
    };
    let _ = fs::remove_dir_all(&dir);
    run
}

/// 11 preset roles and a request without a token.
const ROWS: usize = 12;

/// The routes the Markdown lists, which CSV and HTML must cover too.
fn routes_listed() -> usize {
    let md = access_matrix(&[]).stdout;
    let table = md
        .split("## Routes")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    table.lines().filter(|l| l.starts_with("| ")).count() - 1
}

#[test]
fn markdown_by_default_with_every_role_and_route() {
    let run = access_matrix(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let md = &run.stdout;
    assert!(md.starts_with("# Access matrix\n"), "{md}");
    assert!(!md.contains("students API on"), "nothing is served");
    assert!(md.contains(&format!("{} cells: ", ROWS * routes_listed())));
    for heading in ["## Routes", "## Who can call what", "## Entity students"] {
        assert!(md.contains(heading), "{heading}");
    }
    assert!(md.contains("| GET /permissions | any valid token |"));
    assert!(md.contains("| GET /health | public (no token) |"));
    let grid: Vec<&str> = md
        .split("## Who can call what")
        .nth(1)
        .unwrap()
        .split("## Entity")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect();
    // Header, separator, one line per row.
    assert_eq!(grid.len(), 2 + ROWS);
    // No token: the five student routes and /permissions refused, the
    // public ones allowed.
    let anonymous = grid
        .iter()
        .find(|l| l.starts_with("| (no token) | — |"))
        .unwrap();
    assert!(anonymous.starts_with(&format!(
        "| (no token) | — |{}",
        " ❌ invalid\\_token |".repeat(6)
    )));
    assert!(anonymous.ends_with(" ✅ | ✅ | ✅ |"), "{anonymous}");
    assert_eq!(run.stdout, access_matrix(&["--format", "md"]).stdout);
}

#[test]
fn csv_has_one_record_per_role_and_route() {
    let run = access_matrix(&["--format=csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "role,name,method,path,requirement,outcome,status,code"
    );
    // The records, then the empty string after the last CRLF.
    assert_eq!(lines.len(), 1 + ROWS * routes_listed() + 1);
    assert_eq!(lines.last(), Some(&""));
    assert!(lines.contains(
        &"hr_secretary,HR / Secretary,POST,/students,action students.create,refused,403,ACTION_NOT_PERMITTED"
    ));
    assert!(lines.contains(&"admin,Admin,DELETE,/students/{id},action students.delete,allowed,,"));
}

#[test]
fn html_is_one_page() {
    let run = access_matrix(&["--format", "html"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = &run.stdout;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<p id=\"summary\">"));
    assert_eq!(
        html.matches("data-outcome=").count(),
        ROWS * routes_listed()
    );
}

#[test]
fn a_tenant_brings_its_own_roles() {
    let run = access_matrix(&["--tenant", "school-1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("the roles of tenant school-1"));
    assert!(run
        .stdout
        .contains("| support\\_teacher | Support teacher (from Internal teacher) |"));
    assert!(!access_matrix(&[]).stdout.contains("support\\_teacher"));
}

#[test]
fn roles_add_a_caller_with_several_roles() {
    let run = access_matrix(&["--roles", "hr_secretary,parent", "--roles=internal_teacher"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // HR with the parent's READ on sensitive still lacks WRITE there.
    assert!(
        run.stdout.contains(
            "| hr\\_secretary + parent | — | ✅ | ✅ | ❌ ACTION\\_NOT\\_PERMITTED | ✅ |"
        ),
        "{}",
        run.stdout
    );
    let grid = run.stdout.split("## Entity").next().unwrap();
    assert_eq!(grid.matches("\n| internal\\_teacher |").count(), 2);
    let run = access_matrix(&["--roles", "admin,,parent"]);
    assert_eq!(run.code, 2);
    assert!(run
        .stderr
        .contains("--roles \"admin,,parent\" has an empty role"));
}

#[test]
fn diff_against_a_changed_catalogue() {
    // The bundled catalogue is the presets: nothing changes.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/students_catalogue.json"
    );
    let run = access_matrix(&["--diff", fixture]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "# Access changes\n\nNo access changes: every role can do exactly what it could.\n"
    );

    let mut doc: Value = serde_json::from_str(&fs::read_to_string(fixture).unwrap()).unwrap();
    for role in doc["roles"].as_array_mut().unwrap() {
        if role["id"] == "accountant" {
            role["scopes"]["students"]["financial"] = json!("READ");
        }
    }
    let changed = Path::new(env!("CARGO_TARGET_TMPDIR")).join("accountant-reads-only.json");
    fs::write(&changed, doc.to_string()).unwrap();
    let changed = changed.to_str().unwrap();
    let run = access_matrix(&["--diff", changed]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "# Access changes\n\n2 changes: 0 gained, 2 lost, 0 changed.\n\n\
         | Role | Change | What | Before | After |\n|---|---|---|---|---|\n\
         | accountant | ➖ lost | PATCH /students/{id} | ✅ | ❌ INSUFFICIENT\\_SCOPE |\n\
         | accountant | ➖ lost | students.financial | R/W | R |\n"
    );
    let run = access_matrix(&["--diff", changed, "--format", "csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "role,direction,what,before,after\r\n\
         accountant,lost,PATCH /students/{id},allowed,refused INSUFFICIENT_SCOPE\r\n\
         accountant,lost,students.financial,WRITE,READ\r\n"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let missing = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/no-such-catalogue.json"
    );
    let not_a_catalogue = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for (args, message) in [
        (&["--colour"][..], "unknown argument \"--colour\""),
        (
            &["--format", "pdf"][..],
            "--format \"pdf\" is not md, csv or html",
        ),
        (&["--format"][..], "--format needs a value"),
        (&["--diff"][..], "--diff needs a value"),
        (&["--diff", missing][..], "cannot read --diff"),
        (
            &["--diff", not_a_catalogue][..],
            "is not a valid catalogue: invalid catalogue json",
        ),
        (
            &["--diff", missing, "--format", "html"][..],
            "--diff prints md or csv, not html",
        ),
    ] {
        let run = access_matrix(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stdout.is_empty(), "{args:?}");
        assert!(
            run.stderr.starts_with("school access-matrix: ") && run.stderr.contains(message),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("usage: school access-matrix"),
            "{args:?}"
        );
    }
}
