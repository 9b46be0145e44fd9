//! Two school example processes on one real `redis-server`, run as the
//! binary `cargo test` builds: what one replica's IAM invalidates or
//! revokes, the other enforces, without waiting for any TTL.
//!
//! The set-up is the README's "Running several replicas": replica A
//! embeds the development IAM at a fixed `DEV_IAM_ADDR`, and replica B
//! trusts it (`IAM_ISSUER`, `PERMISSIONS_SOURCE=<A's IAM>/permissions`);
//! both have `REDIS_URL`, so both ask the IAM's `GET /permissions` through
//! the permission cache they share in Redis. The tests drive the
//! example's own wiring — the embedded IAM's `publish_to`, the guard's
//! revocations, the shared cache — and "on one, seen by the other" holds
//! literally: A's IAM applies to A before it answers, B learns it from
//! Redis. Demo users are registered with A's `PUT /users/{name}` (which
//! also changes their roles), and tokens come from A's `POST /token` with
//! chosen claims (`iat`, `jti`, roles). With `PERMISSIONS_SOURCE=catalogue`
//! (computed from the token) only revocations are shared.
//!
//! Propagation to B is polled with a deadline, never awaited with a fixed
//! sleep, and nothing is timed. Child processes are spawned and waited
//! for off the async runtime.
#![cfg(all(feature = "test-util", feature = "redis"))]

#[path = "common/example_binary.rs"]
mod example_binary;

use example_binary::example_binary;

mod common;

use std::{
    future::Future,
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::redis::RedisServer;
use serde_json::{json, Value};

/// How long a replica may take to see what the other published.
const PROPAGATION: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Status and JSON body (`null` when there is none) of a request.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let res = request.send().await.expect("an answer");
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A `POST` of `body` as JSON.
fn post_json(http: &reqwest::Client, url: String, body: &Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// A `PUT` of `body` as JSON.
fn put_json(http: &reqwest::Client, url: String, body: &Value) -> reqwest::RequestBuilder {
    http.put(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One replica of the example, killed on drop.
struct School {
    child: Child,
    base: String,
    /// What it printed on stdout so far, for failure messages.
    output: Arc<Mutex<Vec<String>>>,
}

impl Drop for School {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl School {
    fn printed(&self, prefix: &str) -> Option<String> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
    }
}

/// Starts the example with `env` and waits until it listens and has said
/// whether replicas are on. Blocking: call it off the runtime.
fn start(env: &[(&str, String)]) -> School {
    let mut command = Command::new(example_binary("school"));
    command
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the school example starts");
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    // stdout is read to the end, so the example never blocks on a full pipe.
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
    let mut school = School {
        child,
        base: String::new(),
        output,
    };
    // "students API: <base>   (tokens …)" with the embedded IAM,
    // "students API on <base>, trusting …" without.
    school.base = school
        .printed("students API: ")
        .or_else(|| school.printed("students API on "))
        .and_then(|rest| {
            rest.split([' ', ','])
                .next()
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
        })
        .expect("the example announces where it listens");
    school
}

/// Replica A (embedding the dev IAM at a fixed address) and replica B
/// (trusting it), both on `redis`, as in the README.
struct Replicas {
    a: School,
    b: School,
    /// A's embedded dev IAM.
    iam: String,
    http: reqwest::Client,
    // Last: Redis outlives the replicas.
    _redis: RedisServer,
}

/// Where both replicas take permissions from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Permissions {
    /// The default with `REDIS_URL`: the IAM's `GET /permissions` (A's
    /// embedded one; B names it), cached in Redis for both.
    FromTheIam,
    /// `PERMISSIONS_SOURCE=catalogue`: the token's roles, compiled against
    /// the catalogue A's IAM serves; nothing cached across requests.
    FromTheToken,
}

async fn two_replicas(permissions: Permissions) -> Replicas {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let redis_url = redis.url();
    let iam_addr = format!("127.0.0.1:{}", free_port());
    let iam = format!("http://{iam_addr}");
    let mut env_a = vec![("REDIS_URL", redis_url.clone()), ("DEV_IAM_ADDR", iam_addr)];
    let mut env_b = vec![("REDIS_URL", redis_url), ("IAM_ISSUER", iam.clone())];
    match permissions {
        Permissions::FromTheIam => {
            env_b.push(("PERMISSIONS_SOURCE", format!("{iam}/permissions")));
        }
        Permissions::FromTheToken => {
            env_a.push(("PERMISSIONS_SOURCE", "catalogue".into()));
            env_b.push(("PERMISSIONS_SOURCE", "catalogue".into()));
            env_b.push(("CATALOGUE_URL", format!("{iam}/catalogue")));
        }
    }
    let (a, b) = tokio::task::spawn_blocking(move || {
        let a = start(&env_a);
        // B fetches A's keys and catalogue while it starts.
        let b = start(&env_b);
        (a, b)
    })
    .await
    .unwrap();
    for school in [&a, &b] {
        let replicas = school.printed("replicas: ").unwrap_or_default();
        assert!(replicas.starts_with("on, through Redis"), "{replicas}");
        let shared = match permissions {
            Permissions::FromTheIam => format!("the permission sets {iam}/permissions answers"),
            Permissions::FromTheToken => "computed from each token".into(),
        };
        assert!(replicas.contains(&shared), "{replicas}");
    }
    assert_eq!(
        a.printed("Development IAM (do not use in production): ")
            .as_deref(),
        Some(iam.as_str()),
        "A's dev IAM listens at DEV_IAM_ADDR"
    );
    Replicas {
        a,
        b,
        iam,
        http: reqwest::Client::new(),
        _redis: redis,
    }
}

impl Replicas {
    /// A token from A's dev IAM: `claims` over the defaults (this issuer,
    /// issued now), for the example's audience and demo school. Its user
    /// is registered at the IAM first (`PUT /users/{sub}`) with its `sub`,
    /// tenant and roles, so that the IAM's `GET /permissions` knows them.
    async fn token(&self, claims: Value) -> String {
        let mut claims = iam_guard::test_util::merge(
            json!({"aud": "students-api", "tenantId": "school-1", "roles": ["admin"]}),
            claims,
        );
        let sub = claims["sub"].as_str().expect("a sub").to_owned();
        let user = json!({
            "sub": sub, "aud": claims["aud"], "tenantId": claims["tenantId"], "roles": claims["roles"],
        });
        let (status, body) = self.iam_put(&format!("/users/{sub}"), user).await;
        assert_eq!(status, 200, "{body}");
        if let Some(iat) = claims["iat"].as_u64() {
            claims["exp"] = json!(iat + 600);
        }
        let (status, body) = self.iam_post("/token", json!({"claims": claims})).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("a token").to_owned()
    }

    /// A token from A's dev IAM for the demo user `name`.
    async fn token_of(&self, name: &str) -> String {
        let (status, body) = self.iam_post("/token", json!({"user": name})).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("a token").to_owned()
    }

    async fn iam_post(&self, path: &str, body: Value) -> (u16, Value) {
        send(post_json(&self.http, format!("{}{path}", self.iam), &body)).await
    }

    async fn iam_put(&self, path: &str, body: Value) -> (u16, Value) {
        send(put_json(&self.http, format!("{}{path}", self.iam), &body)).await
    }

    /// `PATCH /students/s-1` with `body`.
    async fn patch(&self, school: &School, token: &str, body: &Value) -> (u16, Value) {
        send(
            self.http
                .patch(format!("{}/students/s-1", school.base))
                .header("content-type", "application/json")
                .body(body.to_string())
                .bearer_auth(token),
        )
        .await
    }

    /// How many permission loads the replica answered at `level`
    /// (`source`: asked the IAM; `shared`: from Redis; `local`), from its
    /// `GET /metrics`.
    async fn loads(&self, school: &School, level: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", school.base))
            .send()
            .await
            .expect("an answer")
            .text()
            .await
            .unwrap_or_default();
        let series =
            format!("iam_guard_permission_loads_total{{source=\"remote\",level=\"{level}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |n| n.trim().parse().expect("a counter"))
    }

    async fn get(&self, school: &School, path: &str, token: &str) -> (u16, Value) {
        send(
            self.http
                .get(format!("{}{path}", school.base))
                .bearer_auth(token),
        )
        .await
    }

    async fn student(&self, school: &School, token: &str) -> u16 {
        self.get(school, "/students/s-1", token).await.0
    }

    /// `GET /permissions`: what the replica holds for the caller.
    async fn permissions(&self, school: &School, token: &str) -> Value {
        let (status, body) = self.get(school, "/permissions", token).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn assert_revoked(&self, school: &School, token: &str) {
        let (status, body) = self.get(school, "/students/s-1", token).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["message"], "the token has been revoked", "{body}");
    }
}

/// Polls `check` until it holds, for at most [`PROPAGATION`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PROPAGATION;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A `jti` no other test run uses.
fn fresh_jti(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_at_the_iam_reaches_both_replicas_at_once() {
    let r = two_replicas(Permissions::FromTheIam).await;
    let teacher = json!({
        "sub": "u-moved", "aud": "students-api", "tenantId": "school-1",
        "roles": ["internal_teacher"],
    });
    let (status, body) = r.iam_put("/users/moved", teacher.clone()).await;
    assert_eq!((status, &body), (200, &teacher));
    let token = r.token_of("moved").await;
    let attendance = json!({"attendance": {"absences": 4}});

    let before = r.permissions(&r.a, &token).await;
    assert_eq!(r.permissions(&r.b, &token).await, before);
    assert_eq!(
        before["students"]["scopes"]["attendance"], "WRITE",
        "{before}"
    );
    assert_eq!(before["students"]["scopes"].get("financial"), None);
    for school in [&r.a, &r.b] {
        assert_eq!(r.patch(school, &token, &attendance).await.0, 200);
    }
    // The IAM was asked once for both: by A; B read what A cached in Redis.
    assert_eq!(r.loads(&r.a, "source").await, 1);
    assert_eq!(r.loads(&r.b, "source").await, 0);
    assert_eq!(r.loads(&r.b, "shared").await, 1);

    // The IAM makes u-moved an accountant, which invalidates their cached
    // permissions everywhere: the same token now gets the new ones.
    let accountant = iam_guard::test_util::merge(teacher, json!({"roles": ["accountant"]}));
    let (status, body) = r.iam_put("/users/moved", accountant.clone()).await;
    assert_eq!((status, body), (200, accountant));
    // A dropped them before its IAM answered; B hears it through Redis.
    let after = r.permissions(&r.a, &token).await;
    assert_eq!(after["students"]["scopes"]["financial"], "WRITE", "{after}");
    assert_eq!(after["students"]["scopes"].get("attendance"), None);
    eventually("B drops u-moved's cached permissions", || async {
        r.permissions(&r.b, &token).await == after
    })
    .await;
    for school in [&r.a, &r.b] {
        let (status, body) = r.patch(school, &token, &attendance).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("FORBIDDEN_FIELDS"))
        );
        let (status, student) = r.get(school, "/students/s-1", &token).await;
        assert_eq!(status, 200);
        assert!(student.get("financial").is_some(), "{student}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_change_at_the_iam_reaches_both_replicas_at_once() {
    let r = two_replicas(Permissions::FromTheIam).await;
    let support = r.token_of("support").await;
    for school in [&r.a, &r.b] {
        let (status, student) = r.get(school, "/students/s-1", &support).await;
        assert_eq!(status, 200);
        assert!(student.get("sensitive").is_some(), "{student}");
    }

    // The school's admin takes `sensitive` from its custom role: the IAM
    // invalidates every cached permission set on every replica.
    let role = json!({
        "name": "Support teacher", "scopes": {"students": {"anagraphic": "READ", "sensitive": "NONE"}},
    });
    let (status, body) = r
        .iam_put("/catalogue/tenants/school-1/roles/support_teacher", role)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, student) = r.get(&r.a, "/students/s-1", &support).await;
    assert!(student.get("sensitive").is_none(), "A at once: {student}");
    eventually("B drops the custom role's sensitive data", || async {
        let (_, student) = r.get(&r.b, "/students/s-1", &support).await;
        student.get("sensitive").is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_from_the_token_are_never_cached_across_requests_and_revocations_still_reach_both(
) {
    let r = two_replicas(Permissions::FromTheToken).await;
    let teacher = r
        .token(json!({"sub": "u-twice", "roles": ["internal_teacher"]}))
        .await;
    let accountant = r
        .token(json!({"sub": "u-twice", "roles": ["accountant"]}))
        .await;
    for school in [&r.a, &r.b] {
        let teaches = r.permissions(school, &teacher).await;
        assert_eq!(
            teaches["students"]["scopes"]["attendance"], "WRITE",
            "{teaches}"
        );
        // Same user, same tenant, another token: its own roles count.
        let counts = r.permissions(school, &accountant).await;
        assert_eq!(
            counts["students"]["scopes"]["financial"], "WRITE",
            "{counts}"
        );
        assert_eq!(counts["students"]["scopes"].get("attendance"), None);
    }

    let (status, body) = r.iam_post("/revoke", json!({"user": "u-twice"})).await;
    assert_eq!(status, 200, "{body}");
    r.assert_revoked(&r.a, &teacher).await;
    eventually("B refuses u-twice's tokens", || async {
        r.student(&r.b, &accountant).await == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_jti_is_refused_by_both_replicas_even_once_cached() {
    let r = two_replicas(Permissions::FromTheIam).await;
    let exp = now() + 600;
    let jti = fresh_jti("revoked");
    let revoked = r
        .token(json!({"sub": "u-jti", "jti": jti, "exp": exp}))
        .await;
    let kept = r
        .token(json!({"sub": "u-jti", "jti": fresh_jti("kept")}))
        .await;
    // Both replicas verify and cache both tokens.
    for school in [&r.a, &r.b] {
        for token in [&revoked, &kept, &revoked] {
            assert_eq!(r.student(school, token).await, 200);
        }
    }

    let (status, body) = r.iam_post("/revoke", json!({"jti": jti, "exp": exp})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"type": "revoke_token", "jti": jti, "exp": exp})
    );

    r.assert_revoked(&r.a, &revoked).await;
    eventually("B refuses the revoked jti", || async {
        r.student(&r.b, &revoked).await == 401
    })
    .await;
    r.assert_revoked(&r.b, &revoked).await;
    for school in [&r.a, &r.b] {
        assert_eq!(r.student(school, &kept).await, 200, "another jti");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_user_refuses_their_older_tokens_on_both_and_not_newer_ones() {
    let r = two_replicas(Permissions::FromTheIam).await;
    let issued = now();
    let older = r.token(json!({"sub": "u-out", "iat": issued - 60})).await;
    let recent = r.token(json!({"sub": "u-out", "iat": issued})).await;
    let someone_else = r.token(json!({"sub": "u-stays"})).await;
    for school in [&r.a, &r.b] {
        for token in [&older, &recent, &someone_else] {
            assert_eq!(r.student(school, token).await, 200);
        }
    }

    let (status, body) = r.iam_post("/revoke", json!({"user": "u-out"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "revoke_user");
    let before = body["before"].as_u64().expect("a before");
    assert!(before > issued, "{body}: every token issued until now");

    for token in [&older, &recent] {
        r.assert_revoked(&r.a, token).await;
    }
    eventually("B refuses u-out's older tokens", || async {
        r.student(&r.b, &older).await == 401 && r.student(&r.b, &recent).await == 401
    })
    .await;
    // Issued from `before` on (after a new login): accepted everywhere.
    let newer = r.token(json!({"sub": "u-out", "iat": before})).await;
    for school in [&r.a, &r.b] {
        assert_eq!(r.student(school, &newer).await, 200, "a newer token");
        assert_eq!(r.student(school, &someone_else).await, 200, "another user");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_without_redis_revokes_in_process() {
    let school = tokio::task::spawn_blocking(|| start(&[])).await.unwrap();
    let replicas = school.printed("replicas: ").unwrap_or_default();
    assert!(replicas.starts_with("off"), "{replicas}");
    let iam = school
        .printed("Development IAM (do not use in production): ")
        .expect("the embedded IAM's address");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| send(post_json(&http, format!("{iam}{path}"), &body));
    let (_, body) = post("/token", json!({"user": "teacher"})).await;
    let token = body["access_token"].as_str().expect("a token").to_owned();
    let student = || async {
        send(
            http.get(format!("{}/students/s-1", school.base))
                .bearer_auth(&token),
        )
        .await
        .0
    };
    assert_eq!(student().await, 200);

    let (status, body) = post("/revoke", json!({"user": "u-teacher"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(student().await, 401, "applied before the IAM answered");
    let (status, body) = post("/invalidate", json!({"all": true})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(post("/revoke", json!({"user": 7})).await.0, 400);
}

#[test]
fn replicas_of_an_external_iam_name_its_permissions_endpoint() {
    let redis = format!("redis://127.0.0.1:{}/", free_port());
    let iam = "http://127.0.0.1:4000";
    for (env, variable) in [
        // Which URL a real IAM answers `GET /permissions` on is not guessed.
        (vec![("IAM_ISSUER", iam)], "invalid PERMISSIONS_SOURCE"),
        // With REDIS_URL the default source is the IAM's, not the catalogue.
        (
            vec![("CATALOGUE_URL", "http://127.0.0.1:4000/catalogue")],
            "invalid CATALOGUE_URL",
        ),
    ] {
        let output = Command::new(example_binary("school"))
            .env_clear()
            .env("REDIS_URL", &redis)
            .env("BIND_ADDR", "127.0.0.1:0")
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .expect("the school example runs");
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{stderr}");
    }
}

#[test]
fn an_unusable_redis_url_exits_with_code_2_naming_the_variable() {
    let closed = format!("redis://127.0.0.1:{}/", free_port());
    for url in [closed.as_str(), "http://127.0.0.1:6379"] {
        let output = Command::new(example_binary("school"))
            .env_clear()
            .env("REDIS_URL", url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .output()
            .expect("the school example runs");
        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid REDIS_URL"), "{url}: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("students API"), "{url}: never listened");
    }
}
