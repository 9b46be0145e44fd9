//! The grpc example's generated code is committed (examples/grpc/school.v1.rs)
//! so that neither the example nor the library needs protoc or a build
//! script. This test regenerates it from examples/grpc/proto with
//! tonic-prost-build and protoc (tests/support/install-protoc.sh installs
//! it) and fails when the committed file has drifted from the .proto.
//!
//! To update the committed file after changing the .proto:
//! `IAM_GUARD_REGENERATE=1 cargo test --all-features --test grpc_codegen`.

use std::{fs, path::Path};

#[test]
fn committed_grpc_code_matches_the_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_dir = root.join("examples/grpc/proto");
    let committed_path = root.join("examples/grpc/school.v1.rs");
    let out = std::env::temp_dir().join(format!("iam-guard-grpc-codegen-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&out)
        .compile_protos(&[proto_dir.join("students.proto")], &[proto_dir])
        .unwrap_or_else(|e| {
            panic!(
                "generating the grpc example's code failed (is protoc installed? \
                 tests/support/install-protoc.sh installs it): {e}"
            )
        });
    let generated = fs::read_to_string(out.join("school.v1.rs")).unwrap();
    fs::remove_dir_all(&out).unwrap();
    assert!(
        generated.contains("pub mod students_server")
            && generated.contains("pub mod students_client"),
        "tonic-prost-build generated no server or client"
    );
    if std::env::var_os("IAM_GUARD_REGENERATE").is_some() {
        fs::write(&committed_path, &generated).unwrap();
    }
    let committed = fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "examples/grpc/school.v1.rs differs from what examples/grpc/proto/students.proto \
         generates: run `IAM_GUARD_REGENERATE=1 cargo test --all-features --test grpc_codegen` \
         and commit the result"
    );
}
