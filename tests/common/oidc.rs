//! A real OpenID Provider for the interop suites: panva's `oidc-provider`
//! (Node, pinned in `tests/oidc/package-lock.json`), started from
//! `tests/oidc/provider.mjs` and killed on drop. `tests/oidc_interop.rs`
//! gets JWT access tokens from it, `tests/introspection.rs` opaque ones,
//! `tests/dpop_interop.rs` DPoP-bound ones; [`NodeScript`] runs any script
//! of `tests/oidc` (the jose client of `tests/dpop_interop.rs`).
//!
//! A suite using it needs Node >= 20.19 and npm, installs the provider from
//! the lockfile on first run, and fails (never skips) when the provider
//! cannot be installed or started: a skipped interop suite looks exactly
//! like a passing one.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::Value;

/// How long the provider may take to print READY. Node starts in well under
/// a second; the margin is for loaded CI machines.
pub const STARTUP: Duration = Duration::from_secs(20);

/// The provider's one client (`tests/oidc/provider.mjs`), which gets
/// tokens with client credentials and introspects and revokes them with
/// `client_secret_basic`.
pub const CLIENT_ID: &str = "iam-guard-interop";
/// Its secret.
pub const CLIENT_SECRET: &str = "interop-secret-that-is-only-for-loopback-tests";

pub fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs `tests/oidc` (`oidc-provider`, `jose`) from the lockfile
/// unless it is there already (`.ci/run` installs it up front), once per
/// test binary, so that a plain `cargo test --all-features` works on a
/// fresh checkout.
pub fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let dir = provider_dir();
        let installed = ["oidc-provider", "jose"].iter().all(|p| {
            dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        });
        if installed {
            return Ok(());
        }
        let output = Command::new("npm")
            .arg("ci")
            .arg("--prefix")
            .arg(&dir)
            .args(["--no-audit", "--no-fund"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run npm (Node >= 20.19 and npm are required): {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "npm ci --prefix {} failed ({}):\n{}{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("the OIDC interop suite cannot install oidc-provider: {e}");
    }
}

/// A Node script of `tests/oidc`, killed on drop. Its stdin stays open
/// while this lives: the scripts exit when it closes, which also covers a
/// test binary that dies without dropping it.
pub struct NodeScript {
    child: Child,
    pub stdin: ChildStdin,
    /// Every stdout line after READY.
    pub lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// What followed `READY ` on the line that announced it.
    pub ready: String,
}

impl NodeScript {
    /// Starts `script` with `args` and waits for its `READY …` line.
    ///
    /// A start that does not print READY within [`STARTUP`] is killed and
    /// tried again, up to three attempts: a Node process has been seen to
    /// stall on its first start on a fresh CI checkout while every later
    /// start took half a second. Three stalls in a row fail the test with
    /// each attempt's stderr.
    pub fn start(script: &str, args: &[&str]) -> Self {
        ensure_installed();
        // One script starts at a time: a dozen Node processes loading
        // oidc-provider and generating keys at once on a two-core machine
        // can each take longer than STARTUP. The lock covers the start
        // only; running scripts serve tests in parallel.
        static STARTING: Mutex<()> = Mutex::new(());
        let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            match Self::try_start(script, args) {
                Ok(node) => return node,
                Err(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
        }
        panic!("{script}:\n{}", failures.join("\n"));
    }

    fn try_start(script: &str, args: &[&str]) -> Result<Self, String> {
        let mut child = Command::new("node")
            .arg(provider_dir().join(script))
            .args(args)
            .current_dir(provider_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node (Node >= 20.19 is required for the interop suites): {e}")
            });
        let stdin = child.stdin.take().expect("piped stdin");
        // Both pipes are drained for the script's whole life, so it never
        // blocks on a full pipe; stderr is kept for failure messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, lines) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Lines before READY (a warning, say) are skipped.
        let deadline = Instant::now() + STARTUP;
        let outcome = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix("READY ") {
                    Some(ready) => break Ok(ready.to_owned()),
                    None => continue,
                },
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(ready) => Ok(Self {
                child,
                stdin,
                lines,
                stderr,
                ready,
            }),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Let the stderr reader take what the script left.
                thread::sleep(Duration::from_millis(100));
                Err(format!(
                    "{script} did not become ready ({e}; exit status {status:?}).\nstderr:\n{}",
                    stderr.lock().expect("lock")
                ))
            }
        }
    }

    /// What the script wrote to stderr so far, for failure messages.
    pub fn stderr(&self) -> String {
        format!("node stderr:\n{}", self.stderr.lock().expect("lock"))
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `oidc-provider`, killed on drop.
pub struct Provider {
    node: NodeScript,
    pub issuer: String,
    pub port: u16,
    /// The kids the provider signs with, as it announced them.
    pub kids: Vec<String>,
    pub http: reqwest::Client,
}

impl Provider {
    /// Starts the provider on a port the OS picks.
    pub fn start() -> Self {
        Self::start_on(0, "1")
    }

    /// Starts the provider on `port` (0: any) with a fresh key set whose
    /// kids carry `generation`; see [`NodeScript::start`].
    pub fn start_on(port: u16, generation: &str) -> Self {
        let node = NodeScript::start("provider.mjs", &[&port.to_string(), generation]);
        let mut fields = node.ready.split(' ');
        let issuer = fields.next().expect("READY names the issuer").to_owned();
        let kids = fields
            .next()
            .expect("READY names the kids")
            .split(',')
            .map(str::to_owned)
            .collect();
        let port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the issuer has a port");
        let http = reqwest::Client::builder()
            // The provider is restarted on the same port: a pooled
            // connection to the old process must not be reused.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        Self {
            node,
            issuer,
            port,
            kids,
            http,
        }
    }

    /// Stops this provider and starts another on the same issuer URL with
    /// a new key set: what a key rotation looks like from outside.
    pub fn restart_with_new_keys(self, generation: &str) -> Self {
        let port = self.port;
        drop(self);
        Self::start_on(port, generation)
    }

    /// The provider's answer to a client-credentials request for
    /// `indicator` (RFC 8707) and `scope`, asserted to be a success: the
    /// `/token` JSON.
    pub async fn token_response(&self, indicator: &str, scope: &str) -> Value {
        let credentials = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        let body = format!(
            "grant_type=client_credentials&resource={}&scope={}",
            form_encode(indicator),
            form_encode(scope)
        );
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /token failed: {e}\n{}", self.stderr()));
        let status = res.status();
        let text = res.text().await.expect("token response body");
        assert!(
            status.is_success(),
            "/token answered {status}: {text}\n{}",
            self.stderr()
        );
        serde_json::from_str(&text).expect("token response is JSON")
    }

    pub fn stderr(&self) -> String {
        format!("provider {}", self.node.stderr())
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
