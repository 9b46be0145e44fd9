//! A real Redis Cluster for the cluster tests of the `redis` feature: each
//! [`RedisCluster`] is its own set of `redis-server --cluster-enabled yes`
//! processes on free loopback ports (each port `P` with its cluster bus
//! port `P + 10000` free too), persistence off, one fresh working
//! directory per node, joined by `redis-cli --cluster create` and awaited
//! until every node reports `cluster_state:ok`. Every node is killed, and
//! every directory removed, on drop.
//!
//! Like [`RedisServer`](super::redis::RedisServer) it needs Debian's
//! `redis-server` and `redis-cli` (package `redis-tools`) on PATH; when
//! either is missing the first start in a test binary runs
//! `tests/support/install-redis.sh`, and installs `redis-tools` when
//! `redis-cli` is still missing. A cluster that cannot start fails the test
//! with the servers' and redis-cli's output: never a skip.
//!
//! Commands go to one node over plain RESP ([`RedisCluster::cmd`], reusing
//! [`command_on`](super::redis::command_on)); a keyed command on a node that does not
//! own the key answers `-MOVED slot host:port`, which
//! [`owner_of`](RedisCluster::owner_of) follows to find the owner.
#![allow(dead_code)]

use std::{
    fs::File,
    io,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use super::redis::{await_own_server, command_on, spawn_error, StartError};

/// How long `redis-cli --cluster create` may take.
const CREATE: Duration = Duration::from_secs(30);

/// How long the nodes may take to agree the cluster is up.
pub const CLUSTER_OK: Duration = Duration::from_secs(20);

/// The `--cluster-node-timeout`, in milliseconds: a node unreachable this
/// long is failed (and, with replicas, failed over).
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// Connect, read and write timeout of [`ClusterNode::try_cmd`].
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The same while a start is awaited.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);

/// The cluster bus listens on the client port plus this.
const BUS_OFFSET: u16 = 10000;

/// One `redis-server --cluster-enabled yes` on `127.0.0.1`.
pub struct ClusterNode {
    child: Option<Child>,
    port: u16,
    /// Its `--dir` (canonical), holding `nodes-P.conf` and its log.
    dir: PathBuf,
}

impl ClusterNode {
    /// The client port (its cluster bus is `port + 10000`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether the process runs (it was not [stopped](Self::stop)).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs one command on this node and returns its reply as text (see
    /// [`command_on`](super::redis::command_on)); an error reply (`-MOVED ...`, `-CLUSTERDOWN ...`)
    /// is returned as such.
    ///
    /// # Panics
    ///
    /// On an I/O error, such as a stopped node.
    pub fn cmd(&self, args: &[&str]) -> String {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("redis {args:?} on cluster node {}: {e}", self.port))
    }

    /// Runs one command on a new connection, or returns the I/O error.
    pub fn try_cmd(&self, args: &[&str]) -> io::Result<String> {
        self.try_cmd_within(args, IO_TIMEOUT)
    }

    fn try_cmd_within(&self, args: &[&str], timeout: Duration) -> io::Result<String> {
        command_on(self.port, args, timeout)
    }

    /// Kills the node (SIGKILL) and waits for it to exit. Does nothing
    /// when it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many clients are in subscriber mode (`CLIENT LIST TYPE
    /// pubsub`).
    pub fn pubsub_clients(&self) -> u64 {
        let list = self.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        assert!(!list.starts_with('-'), "CLIENT LIST answered {list:?}");
        list.lines().filter(|l| l.contains("id=")).count() as u64
    }

    /// `CLIENT KILL TYPE pubsub`: disconnects this node's subscribers and
    /// returns how many there were.
    pub fn kill_pubsub_clients(&self) -> u64 {
        let reply = self.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("CLIENT KILL TYPE pubsub answered {reply:?}"))
    }

    /// The value of `field` in `CLUSTER INFO` (or `INFO section`).
    fn info_field(&self, command: &[&str], field: &str) -> Option<String> {
        let info = self.try_cmd_within(command, POLL_TIMEOUT).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    }

    /// Its log so far (the last 4 KB), for failure messages.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

/// A running Redis Cluster on `127.0.0.1`, every node killed (and its
/// directory removed) on drop.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    /// Holds one directory per node and redis-cli's output.
    root: PathBuf,
    /// Master count at creation (the first `masters` nodes given to
    /// `redis-cli --cluster create`; it picks the replicas among the rest,
    /// but roles change on failover: ask [`masters`](Self::masters)).
    masters: usize,
    started_in: Duration,
}

impl RedisCluster {
    /// Starts `nodes` masters (at least 3, as `redis-cli --cluster create`
    /// requires) with no replicas, joins them and waits until every node
    /// reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When a node cannot start, `redis-cli --cluster create` fails, or the
    /// cluster is not ok within [`CLUSTER_OK`]; the message carries the
    /// servers' and redis-cli's output.
    pub fn start(nodes: usize) -> RedisCluster {
        Self::start_with_replicas(nodes, 0)
    }

    /// Starts `masters` masters with `replicas` replicas each
    /// (`--cluster-replicas`), and waits until the cluster is ok and every
    /// replica's link to its master is up, so that a killed master is
    /// failed over after [`NODE_TIMEOUT_MS`].
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with_replicas(masters: usize, replicas: usize) -> RedisCluster {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        ensure_installed();
        let started = Instant::now();
        let root = fresh_dir();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            root,
            masters,
            started_in: Duration::ZERO,
        };
        for i in 0..masters * (replicas + 1) {
            let node = cluster.spawn_node(i);
            cluster.nodes.push(node);
        }
        cluster.create(replicas);
        cluster.wait_until_ok(CLUSTER_OK);
        if replicas > 0 {
            cluster.wait_for_replica_links(CLUSTER_OK);
        }
        cluster.started_in = started.elapsed();
        cluster
    }

    /// How long [`start`](Self::start) took, redis-cli included.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// How many nodes were started (masters and replicas, stopped ones
    /// included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `redis://127.0.0.1:P/` of every node, in index order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &ClusterNode {
        &self.nodes[i]
    }

    /// The index of the node listening on `port`.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port == port)
    }

    /// Runs one command on node `i` (see [`ClusterNode::cmd`]).
    pub fn cmd(&self, i: usize, args: &[&str]) -> String {
        self.nodes[i].cmd(args)
    }

    /// The indexes of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect()
    }

    /// The indexes of the running nodes that are masters now (`ROLE`).
    pub fn masters(&self) -> Vec<usize> {
        self.running()
            .into_iter()
            .filter(|&i| {
                self.nodes[i]
                    .try_cmd(&["ROLE"])
                    .is_ok_and(|role| role.lines().next() == Some("master"))
            })
            .collect()
    }

    /// Kills node `i` (SIGKILL). Without replicas the cluster then fails
    /// (`cluster_state:fail`) after [`NODE_TIMEOUT_MS`]: its slots have no
    /// owner.
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// `CLUSTER KEYSLOT key`, asked of a running node.
    pub fn slot_of(&self, key: &str) -> u16 {
        let reply = self.any_running().cmd(&["CLUSTER", "KEYSLOT", key]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key} answered {reply:?}"))
    }

    /// The index of the master owning `key`: a running node is asked
    /// `EXISTS key`, and a `-MOVED slot host:port` is followed (up to 5
    /// redirections, in case the topology is changing).
    ///
    /// # Panics
    ///
    /// When the owner is not one of ours, or the cluster answers otherwise
    /// (`-CLUSTERDOWN`, say).
    pub fn owner_of(&self, key: &str) -> usize {
        let mut at = self.running()[0];
        for _ in 0..5 {
            let reply = self.nodes[at].cmd(&["EXISTS", key]);
            let Some(moved) = reply.strip_prefix("-MOVED ") else {
                assert!(
                    !reply.starts_with('-'),
                    "EXISTS {key} on node {at} answered {reply:?}"
                );
                return at;
            };
            // `slot host:port`.
            let port = moved
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse::<u16>().ok())
                .unwrap_or_else(|| panic!("unreadable redirection {reply:?}"));
            at = self
                .index_of_port(port)
                .unwrap_or_else(|| panic!("{key} moved to a port not ours: {reply:?}"));
        }
        panic!("{key}: too many redirections");
    }

    /// Runs a command about `key` on the node owning it.
    pub fn cmd_on_owner(&self, key: &str, args: &[&str]) -> String {
        self.cmd(self.owner_of(key), args)
    }

    /// The keys matching `pattern` on each node (`KEYS`, which answers
    /// only the node's own keys), in index order; empty for a stopped node
    /// or a replica.
    pub fn keys_by_node(&self, pattern: &str) -> Vec<Vec<String>> {
        let masters = self.masters();
        (0..self.nodes.len())
            .map(|i| {
                if !masters.contains(&i) {
                    return Vec::new();
                }
                let reply = self.nodes[i].cmd(&["KEYS", pattern]);
                assert!(!reply.starts_with('-'), "KEYS on node {i}: {reply:?}");
                reply.lines().map(str::to_owned).collect()
            })
            .collect()
    }

    /// `PUBLISH channel message` on node `node`: how many subscribers on
    /// that node received it (classic pub/sub forwards it to every node's
    /// subscribers, but PUBLISH counts only the local ones).
    pub fn publish(&self, node: usize, channel: &str, message: &str) -> u64 {
        let reply = self.nodes[node].cmd(&["PUBLISH", channel, message]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("PUBLISH {channel} on node {node} answered {reply:?}"))
    }

    /// Subscribed clients per node, in index order (0 for a stopped node).
    pub fn pubsub_clients(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                if n.is_running() {
                    n.pubsub_clients()
                } else {
                    0
                }
            })
            .collect()
    }

    /// `CLIENT KILL TYPE pubsub` on every running node; the total killed.
    pub fn kill_pubsub_clients(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(ClusterNode::kill_pubsub_clients)
            .sum()
    }

    /// Subscribers of `channel` over every running node (`PUBSUB NUMSUB`
    /// counts a node's own).
    pub fn subscribers(&self, channel: &str) -> u64 {
        self.running()
            .into_iter()
            .map(|i| {
                let reply = self.nodes[i].cmd(&["PUBSUB", "NUMSUB", channel]);
                reply
                    .lines()
                    .nth(1)
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("PUBSUB NUMSUB on node {i} answered {reply:?}"))
            })
            .sum()
    }

    /// Polls until `channel` has at least `n` subscribers over the
    /// cluster.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first.
    pub fn wait_for_subscribers(&self, channel: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.subscribers(channel);
            if count >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{channel} has {count} < {n} subscribers after {timeout:?}: {:?}",
                self.pubsub_clients()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether every running node reports `cluster_state:ok`.
    pub fn is_ok(&self) -> bool {
        self.running().into_iter().all(|i| {
            self.nodes[i].info_field(&["CLUSTER", "INFO"], "cluster_state") == Some("ok".into())
        })
    }

    /// Waits until every running node reports `cluster_state:ok`, all
    /// 16384 slots assigned and every node known.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first, with each node's `CLUSTER INFO`,
    /// `CLUSTER NODES` and log.
    pub fn wait_until_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let known = self.nodes.len().to_string();
        loop {
            let ok = self.running().into_iter().all(|i| {
                let node = &self.nodes[i];
                let field = |f| node.info_field(&["CLUSTER", "INFO"], f);
                field("cluster_state").as_deref() == Some("ok")
                    && field("cluster_slots_assigned").as_deref() == Some("16384")
                    && field("cluster_known_nodes").as_deref() == Some(&*known)
            });
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the Redis Cluster is not ok after {timeout:?}\n{}",
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running replica's link to its master is up.
    fn wait_for_replica_links(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let up = self.running().into_iter().all(|i| {
                let node = &self.nodes[i];
                match node.info_field(&["INFO", "replication"], "role").as_deref() {
                    Some("master") => true,
                    Some("slave") => {
                        node.info_field(&["INFO", "replication"], "master_link_status")
                            .as_deref()
                            == Some("up")
                    }
                    _ => false,
                }
            });
            if up {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the cluster's replicas did not link to their masters within {timeout:?}\n{}",
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every node's state and log, and redis-cli's output, for a failure
    /// message.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let ask = |args: &[&str]| {
                node.try_cmd_within(args, POLL_TIMEOUT)
                    .unwrap_or_else(|e| format!("({e})"))
            };
            let (info, nodes) = if node.is_running() {
                (ask(&["CLUSTER", "INFO"]), ask(&["CLUSTER", "NODES"]))
            } else {
                ("(stopped)".into(), String::new())
            };
            out.push_str(&format!(
                "--- node {i} (port {}):\nCLUSTER INFO:\n{info}\nCLUSTER NODES:\n{nodes}\nlog:\n{}\n",
                node.port,
                node.log()
            ));
        }
        out.push_str(&format!("--- redis-cli:\n{}", self.cli_output()));
        out
    }

    fn cli_output(&self) -> String {
        let read = |name| std::fs::read_to_string(self.root.join(name)).unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr:\n{}",
            read("create.stdout"),
            read("create.stderr")
        )
    }

    fn any_running(&self) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .expect("a running cluster node")
    }

    /// Starts node `i` on free ports, trying other ports when another
    /// process takes them first.
    fn spawn_node(&self, i: usize) -> ClusterNode {
        let mut failures = Vec::new();
        for attempt in 1..=5 {
            let port = free_port_pair();
            let dir = self.root.join(format!("node-{i}-{port}"));
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            let dir = dir.canonicalize().expect("canonical node dir");
            match spawn(port, &dir) {
                Ok(child) => {
                    return ClusterNode {
                        child: Some(child),
                        port,
                        dir,
                    }
                }
                Err(StartError::PortTaken(why)) => {
                    failures.push(format!("attempt {attempt}: {why}"));
                }
                Err(StartError::Fatal(why)) => {
                    failures.push(format!("attempt {attempt}: {why}"));
                    break;
                }
            }
        }
        panic!(
            "cluster node {i} did not start:\n{}\nother nodes:\n{}",
            failures.join("\n"),
            self.report()
        );
    }

    /// `redis-cli --cluster create ... --cluster-yes`, within [`CREATE`].
    fn create(&self, replicas: usize) {
        let out = File::create(self.root.join("create.stdout")).expect("redis-cli stdout file");
        let err = File::create(self.root.join("create.stderr")).expect("redis-cli stderr file");
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        let mut child = command
            .args(["--cluster-replicas", &replicas.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        let deadline = Instant::now() + CREATE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("redis-cli status") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-cli --cluster create did not finish within {CREATE:?}\n{}",
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let output = self.cli_output();
        if !status.success() || output.contains("[ERR]") || !output.contains("[OK]") {
            panic!(
                "redis-cli --cluster create failed ({status})\n{}",
                self.report()
            );
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Spawns one cluster node on `port` and waits until it answers `PING` as
/// itself (`CONFIG GET dir` is `dir`). On failure the process is gone.
fn spawn(port: u16, dir: &Path) -> Result<Child, StartError> {
    let log = dir.join("redis.log");
    let p = port.to_string();
    let mut child = Command::new("redis-server")
        .args(["--port", &p])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--bind", "127.0.0.1"])
        .args(["--protected-mode", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(["--loglevel", "notice"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("redis.stderr")).expect("redis-server stderr file"))
        .spawn()
        .map_err(spawn_error)?;
    let output = || {
        format!(
            "log:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(dir.join("redis.stderr")).unwrap_or_default()
        )
    };
    await_own_server(&mut child, port, dir, "cluster node", &output)?;
    Ok(child)
}

/// Runs `tests/support/install-redis.sh` once per test binary when
/// redis-server or redis-cli is not on PATH, then installs `redis-tools`
/// (redis-cli) the same way when it is still missing. A failed install
/// fails the test with the output.
fn ensure_installed() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let found = |program: &str| {
            Command::new(program)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        };
        if found("redis-server") && found("redis-cli") {
            return Ok(());
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/install-redis.sh"
        );
        run_install("bash", &[script])?;
        if !found("redis-cli") {
            let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
            let apt = [
                "env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "redis-tools",
            ];
            let update = ["apt-get", "update", "-qq"];
            for command in [&update[..], &apt[..]] {
                let args: Vec<&str> = sudo.iter().chain(command).copied().collect();
                run_install(args[0], &args[1..])?;
            }
        }
        if found("redis-server") && found("redis-cli") {
            Ok(())
        } else {
            Err("redis-server or redis-cli is still not on PATH after the install".into())
        }
    });
    if let Err(why) = result {
        panic!("redis-server/redis-cli are not installed and could not be installed: {why}");
    }
}

fn run_install(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A loopback port `P` the OS had free a moment ago, with `P + 10000`
/// (the cluster bus) free too and below 65536.
fn free_port_pair() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port P with P + {BUS_OFFSET} free");
}

/// A new, empty, canonical directory under the system temp dir.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "iam-guard-redis-cluster-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .and_then(|()| dir.canonicalize())
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()))
}
