//! The school example run as the binary `cargo test` builds, with its
//! embedded development IAM, on a free loopback port; killed on drop.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::Duration,
};

use serde_json::{json, Value};

/// The running example.
pub(crate) struct School {
    child: Child,
    /// Where the students API listens, such as `http://127.0.0.1:40123`.
    pub(crate) base: String,
    /// Its embedded development IAM.
    pub(crate) iam: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Drop for School {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl School {
    /// Starts the example with no configuration (the embedded dev IAM) and
    /// waits until it listens. Blocking: call it off the runtime.
    pub(crate) fn start() -> Self {
        let mut child = Command::new(crate::example_binary::example_binary("school"))
            .env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the school example starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        // Both pipes are read to the end, so the example never blocks.
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = output.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ready = line.starts_with("replicas: ");
                lines.lock().unwrap().push(line);
                if ready {
                    let _ = tx.send(());
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let errors = output.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                errors.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!(
                "the example did not start:\n{}",
                output.lock().unwrap().join("\n")
            );
        }
        let printed = |prefix: &str| {
            output
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        };
        let base = printed("students API: ")
            .and_then(|rest| rest.split(' ').next().map(str::to_owned))
            .expect("the example announces where it listens");
        let iam = printed("Development IAM (do not use in production): ")
            .expect("the example announces its development IAM");
        School {
            child,
            base,
            iam,
            output,
        }
    }

    /// What the example printed so far, for failure messages.
    #[allow(dead_code)]
    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// An access token for the demo user `user` from the dev IAM's
    /// `POST /token`.
    pub(crate) async fn token(&self, user: &str) -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/token", self.iam))
            .header("content-type", "application/json")
            .body(json!({ "user": user }).to_string())
            .send()
            .await
            .expect("the dev IAM answers");
        assert_eq!(res.status(), 200, "a token for {user}");
        let body: Value = serde_json::from_slice(&res.bytes().await.expect("a body"))
            .expect("a JSON token response");
        body["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned()
    }

    /// `GET /openapi.json`, with no token.
    pub(crate) async fn openapi(&self) -> Value {
        let res = reqwest::get(format!("{}/openapi.json", self.base))
            .await
            .expect("the example answers");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        serde_json::from_slice(&res.bytes().await.expect("a body")).expect("a JSON document")
    }
}
