//! Where `cargo test` put an example's binary, for the tests that run an
//! example as its users do.

use std::path::PathBuf;

/// `target/<profile>/examples/<name>`, next to this test's own binary in
/// `target/<profile>/deps/`.
///
/// # Panics
///
/// When it is not there: `cargo test` builds the examples before the
/// tests, so a missing one is a broken build, not a reason to skip.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test` builds the examples before the tests",
        binary.display()
    );
    binary
}
