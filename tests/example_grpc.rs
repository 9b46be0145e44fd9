//! The grpc example run as the binary `cargo test` builds, called with the
//! generated tonic client: its printed tokens work as printed, and its
//! undeclared method is denied even to the most privileged demo user.
#![cfg(all(feature = "grpc", feature = "test-util"))]

#[path = "common/example_binary.rs"]
mod example_binary;
#[allow(dead_code)]
#[path = "../examples/grpc/students.rs"]
mod students;

use example_binary::example_binary;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use students::pb::{
    students_client::StudentsClient, ArchiveStudentsRequest, GetStudentRequest, WhoAmIRequest,
};
use tonic::{Code, Request};

/// The example, killed on drop.
struct Example {
    child: Child,
    addr: String,
    tokens: BTreeMap<String, String>,
    commands: Vec<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Example {
    let mut child = Command::new(example_binary("grpc"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the grpc example starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut tokens = BTreeMap::new();
    let mut commands = Vec::new();
    // The last command printed is the one without a token.
    while !commands
        .iter()
        .any(|c: &String| c.ends_with("school.v1.Students/WhoAmI"))
    {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the example prints where it listens, its tokens and its commands");
        if let Some(rest) = line.strip_prefix("service:") {
            let rest = rest
                .trim()
                .strip_prefix("grpc://")
                .expect("a grpc:// address");
            addr = Some(rest.split(' ').next().unwrap().to_owned());
        } else if let Some((name, token)) =
            line.strip_prefix("TOKEN_").and_then(|l| l.split_once('='))
        {
            tokens.insert(name.to_lowercase(), token.to_owned());
        } else if line.starts_with("grpcurl ") {
            commands.push(line);
        }
    }
    Example {
        child,
        addr: addr.expect("the service line"),
        tokens,
        commands,
    }
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn the_printed_tokens_and_commands_work_as_printed() {
    let example = start();
    assert_eq!(
        example.tokens.keys().collect::<Vec<_>>(),
        ["librarian", "parent", "secretary", "teacher"]
    );
    // The commands name the proto beside the example, which exists.
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grpc/proto");
    assert!(PathBuf::from(proto).join("students.proto").is_file());
    for command in &example.commands {
        assert!(
            command.contains(&format!("-import-path {proto} -proto students.proto")),
            "{command}"
        );
        assert!(command.contains(&example.addr), "{command}");
    }

    let mut client = StudentsClient::connect(format!("http://{}", example.addr))
        .await
        .expect("the client connects to the example");
    let get = || GetStudentRequest { id: "s-1".into() };
    let teacher = client
        .get_student(with_token(get(), &example.tokens["teacher"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (teacher.name.as_str(), teacher.health_notes.as_str()),
        ("Ada Rossi", "asthma")
    );
    let librarian = client
        .get_student(with_token(get(), &example.tokens["librarian"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(librarian.health_notes, "");

    let parent = client
        .get_student(with_token(get(), &example.tokens["parent"]))
        .await
        .unwrap_err();
    assert_eq!(parent.code(), Code::PermissionDenied);
    assert_eq!(
        parent.metadata().get("iam-guard-code").unwrap(),
        "INSUFFICIENT_SCOPE"
    );

    let archive = client
        .archive_students(with_token(
            ArchiveStudentsRequest {},
            &example.tokens["secretary"],
        ))
        .await
        .unwrap_err();
    assert_eq!(archive.code(), Code::PermissionDenied);
    assert_eq!(
        archive.message(),
        "this gRPC method declares no requirement"
    );

    let anonymous = client
        .who_am_i(Request::new(WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let me = client
        .who_am_i(with_token(WhoAmIRequest {}, &example.tokens["secretary"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.sub.as_str(), me.tenant.as_str()),
        ("secretary", "school-1")
    );
}
