//! A real `redis-server` for the tests of the `redis` feature: each
//! [`RedisServer`] is its own process on a free loopback port, with
//! persistence off and a fresh working directory, killed on drop.
//!
//! It needs Debian's `redis-server` on PATH: when it is missing, the first
//! start in a test binary runs `tests/support/install-redis.sh` (which
//! `.ci/run` also calls). A server that cannot start —
//! not installed, or not answering `PING` within [`STARTUP`] — fails the
//! test with redis-server's own output: never a skip, since a skipped Redis
//! suite looks exactly like a passing one.
//!
//! [`RedisServer::cmd`] speaks RESP over a plain `TcpStream`, so tests can
//! inspect and poke Redis (`ZRANGE`, `HGET`, `PUBLISH`, `CLIENT KILL`)
//! without a Redis client crate; only std is used here, since every test
//! binary with `mod common;` compiles this file.
#![allow(dead_code)]

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

/// How long a start may take to answer `PING`.
pub const STARTUP: Duration = Duration::from_secs(10);

/// How long [`RedisServer::restart`] keeps trying to bind the old port.
const REBIND: Duration = Duration::from_secs(3);

/// The connect, read and write timeout of [`RedisServer::try_cmd`].
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The same, for each `PING` while a start is awaited.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);

/// A running `redis-server` on `127.0.0.1`, killed (and its directory
/// removed) on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// The server's `--dir` (canonical), also holding its stdout and
    /// stderr, one pair per start.
    dir: PathBuf,
    /// Starts so far on this port, naming each start's output files.
    starts: u32,
}

/// Why one start failed (of a server here, of a node in `redis_cluster`).
pub(super) enum StartError {
    /// Another process has the port: try again (another port, or later).
    PortTaken(String),
    /// Anything else: give up.
    Fatal(String),
}

/// Runs `tests/support/install-redis.sh` once per test binary when
/// redis-server is not on PATH, so that `cargo test --all-features` works
/// on a fresh machine as the README says. A failed install fails the test
/// with the script's output.
fn ensure_installed() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if found {
            return Ok(());
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/install-redis.sh"
        );
        let out = Command::new("bash")
            .arg(script)
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{script} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(why) = result {
        panic!("redis-server is not installed and could not be installed: {why}");
    }
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers
    /// `PING`. A port taken between picking and binding it is replaced by
    /// another, up to three attempts.
    ///
    /// # Panics
    ///
    /// When redis-server is not installed, exits, or does not answer
    /// `PING` within [`STARTUP`]; the message carries its output.
    pub fn start() -> RedisServer {
        ensure_installed();
        let dir = fresh_dir();
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.clone(),
                starts: 0,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(StartError::PortTaken(why)) => {
                    failures.push(format!("attempt {attempt}: {why}"));
                }
                Err(StartError::Fatal(why)) => {
                    failures.push(format!("attempt {attempt}: {why}"));
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("redis-server did not start:\n{}", failures.join("\n"));
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The loopback port the server listens on; kept across
    /// [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL) and waits for it to exit: connections
    /// are refused until [`restart`](Self::restart). Does nothing when it
    /// is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server (when it runs) and starts a new one on the same
    /// port, waiting until it answers `PING`. Binding is retried for a few
    /// seconds, in case the port lingers.
    ///
    /// Persistence is off, so **the new server starts empty**: every key
    /// of the old one is gone. A test that needs data after a restart
    /// writes it again.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), or when the port stays taken.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(StartError::PortTaken(_)) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(StartError::PortTaken(why) | StartError::Fatal(why)) => {
                    panic!("redis-server did not restart on port {}:\n{why}", self.port)
                }
            }
        }
    }

    /// Runs one command and returns its reply as text (see
    /// [`read_reply`]).
    ///
    /// # Panics
    ///
    /// On an I/O error, such as a stopped server; [`try_cmd`](Self::try_cmd)
    /// returns it instead. A Redis error reply is no panic: it is returned
    /// as `-ERR ...`.
    pub fn cmd(&self, args: &[&str]) -> String {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("redis {args:?} on port {}: {e}", self.port))
    }

    /// Runs one command on a new connection and returns its reply as text
    /// (see [`read_reply`]), or the I/O error.
    pub fn try_cmd(&self, args: &[&str]) -> io::Result<String> {
        self.try_cmd_within(args, IO_TIMEOUT)
    }

    fn try_cmd_within(&self, args: &[&str], timeout: Duration) -> io::Result<String> {
        command_on(self.port, args, timeout)
    }

    /// `CLIENT KILL TYPE pubsub`: disconnects every subscribed client and
    /// returns how many there were.
    pub fn kill_pubsub_clients(&self) -> u64 {
        let reply = self.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("CLIENT KILL TYPE pubsub answered {reply:?}"))
    }

    /// `PUBLISH channel message`: returns how many subscribers received it.
    pub fn publish(&self, channel: &str, message: &str) -> u64 {
        let reply = self.cmd(&["PUBLISH", channel, message]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("PUBLISH {channel} answered {reply:?}"))
    }

    /// Polls `PUBSUB NUMSUB channel` until it counts at least `n`
    /// subscribers.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first, with the last reply.
    pub fn wait_for_subscribers(&self, channel: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // `channel\ncount`.
            let reply = self.cmd(&["PUBSUB", "NUMSUB", channel]);
            let count = reply.lines().nth(1).and_then(|c| c.parse::<u64>().ok());
            if count.is_some_and(|count| count >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{channel} has fewer than {n} subscribers after {timeout:?}: PUBSUB NUMSUB answered {reply:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Spawns redis-server on `self.port` and waits until it answers
    /// `PING`, as itself (its `dir` is ours: not another process that took
    /// the port). On failure the process is gone.
    fn spawn(&mut self) -> Result<(), StartError> {
        self.starts += 1;
        let out_path = self.dir.join(format!("start-{}.stdout", self.starts));
        let err_path = self.dir.join(format!("start-{}.stderr", self.starts));
        let out = File::create(&out_path).expect("redis-server stdout file");
        let err = File::create(&err_path).expect("redis-server stderr file");
        let port = self.port.to_string();
        let mut child = Command::new("redis-server")
            .args(["--port", &port])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_error)?;
        let output = || {
            format!(
                "stdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            )
        };

        await_own_server(&mut child, self.port, &self.dir, "redis-server", &output)?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port the OS had free on loopback a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A new, empty, canonical directory under the system temp dir (Redis
/// reports its `dir` canonicalized).
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "iam-guard-redis-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .and_then(|()| dir.canonicalize())
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()))
}

/// Why `redis-server` could not be run at all.
pub(super) fn spawn_error(e: io::Error) -> StartError {
    StartError::Fatal(if e.kind() == io::ErrorKind::NotFound {
        format!(
            "redis-server is not installed (not on PATH): {e}; \
             run tests/support/install-redis.sh"
        )
    } else {
        format!("cannot run redis-server: {e}")
    })
}

/// Waits until the `redis-server` just spawned as `child` (`what`, for
/// messages) answers PING on `port` from its own working directory `dir`;
/// `output` is what it logged, for failure messages. An exit with "Address
/// already in use", or another process answering on the port, is
/// [`StartError::PortTaken`]; anything else, or no answer within
/// [`STARTUP`], is fatal (and `child` is killed).
pub(super) fn await_own_server(
    child: &mut Child,
    port: u16,
    dir: &Path,
    what: &str,
    output: &dyn Fn() -> String,
) -> Result<(), StartError> {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let output = output();
            let why =
                format!("{what} on port {port} exited ({status}) before answering PING\n{output}");
            return Err(if output.contains("Address already in use") {
                StartError::PortTaken(why)
            } else {
                StartError::Fatal(why)
            });
        }
        // A short timeout: a squatter on the port may accept and never
        // answer, while ours has already exited.
        let last = match command_on(port, &["PING"], POLL_TIMEOUT) {
            Ok(reply) if reply == "PONG" => break,
            Ok(reply) => format!("PING answered {reply:?}"),
            Err(e) => format!("PING failed: {e}"),
        };
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait();
            return Err(StartError::Fatal(format!(
                "{what} on port {port} did not answer PING within {STARTUP:?} \
                 (last: {last}; exit status {status:?})\n{}",
                output()
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
    // What answered might be another process that took the port while ours
    // failed to bind it and has not exited yet.
    let reply = command_on(port, &["CONFIG", "GET", "dir"], IO_TIMEOUT).unwrap_or_default();
    if reply.lines().nth(1) != Some(&*dir.to_string_lossy()) {
        let _ = child.kill();
        let status = child.wait();
        return Err(StartError::PortTaken(format!(
            "port {port} answered PING, but not as our {what} \
             (CONFIG GET dir: {reply:?}; ours exited {status:?})\n{}",
            output()
        )));
    }
    Ok(())
}

/// Sends one command to the Redis server on loopback `port` on a fresh
/// connection, every step bounded by `timeout`, and returns its reply (see
/// [`read_reply`]) or the I/O error.
pub fn command_on(port: u16, args: &[&str], timeout: Duration) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&encode(args))?;
    read_reply(&mut BufReader::new(stream))
}

/// A command as RESP: an array of bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one RESP2 reply as text: a simple string as itself, an error as
/// `-ERR ...` (the line as sent), an integer in decimal, a bulk string as
/// its content (`(nil)` when null), an array as its elements' text joined
/// with `\n` (nested arrays likewise; `(nil)` when null). EOF before a
/// whole reply is `UnexpectedEof`.
pub fn read_reply(reader: &mut impl BufRead) -> io::Result<String> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(1);
    let length = || {
        rest.parse::<i64>()
            .map_err(|_| invalid(format!("bad RESP length in {line:?}")))
    };
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Ok(line.clone()),
        "$" => {
            let Ok(len) = usize::try_from(length()?) else {
                return Ok("(nil)".to_owned());
            };
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(invalid("a bulk string not ended by CRLF".to_owned()));
            }
            buf.truncate(len);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        "*" => {
            let Ok(len) = usize::try_from(length()?) else {
                return Ok("(nil)".to_owned());
            };
            let items = (0..len)
                .map(|_| read_reply(reader))
                .collect::<io::Result<Vec<_>>>()?;
            Ok(items.join("\n"))
        }
        _ => Err(invalid(format!("unsupported RESP reply {line:?}"))),
    }
}

/// One CRLF-terminated line, without the CRLF; never empty.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before a reply",
        ));
    }
    if !line.ends_with(b"\r\n") || line.len() < 3 {
        return Err(invalid(format!(
            "a truncated or empty RESP line {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| invalid(format!("a RESP line not UTF-8: {e}")))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
