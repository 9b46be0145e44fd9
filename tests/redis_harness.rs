//! The real-redis-server harness of `tests/common/redis.rs` itself: a
//! server starts on a free loopback port and answers through the tiny RESP
//! client, stops (connections refused), restarts empty on the same port,
//! and drops its pub/sub clients on demand. These fail — never skip — when
//! redis-server is missing (`tests/support/install-redis.sh`).
#![cfg(feature = "test-util")]

mod common;

use std::{
    io::{BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::Duration,
};

use common::redis::{encode, read_reply, RedisServer};

#[test]
fn starts_on_loopback_and_answers_ping() {
    let redis = RedisServer::start();
    assert_ne!(redis.port(), 6379);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    assert_eq!(redis.cmd(&["PING"]), "PONG");
    // Persistence is off.
    assert_eq!(redis.cmd(&["CONFIG", "GET", "save"]), "save\n");
    assert_eq!(
        redis.cmd(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );
}

#[test]
fn replies_decode_as_text() {
    let redis = RedisServer::start();
    assert_eq!(redis.cmd(&["SET", "k", "a value\r\nwith CRLF"]), "OK");
    assert_eq!(redis.cmd(&["GET", "k"]), "a value\r\nwith CRLF");
    assert_eq!(redis.cmd(&["GET", "missing"]), "(nil)");
    assert_eq!(redis.cmd(&["INCRBY", "n", "42"]), "42");
    assert_eq!(redis.cmd(&["SET", "empty", ""]), "OK");
    assert_eq!(redis.cmd(&["GET", "empty"]), "");
    assert_eq!(redis.cmd(&["HSET", "h", "f", "v"]), "1");
    assert_eq!(redis.cmd(&["HGET", "h", "f"]), "v");
    let error = redis.cmd(&["NOSUCHCOMMAND"]);
    assert!(error.starts_with("-ERR "), "{error}");
    let error = redis.cmd(&["GET", "h"]);
    assert!(error.starts_with("-WRONGTYPE "), "{error}");
    // A nested array: SCAN answers [cursor, [keys...]].
    assert_eq!(
        redis.cmd(&["SCAN", "0", "MATCH", "h", "COUNT", "100"]),
        "0\nh"
    );
}

#[test]
fn sorted_set_round_trip() {
    let redis = RedisServer::start();
    assert_eq!(
        redis.cmd(&["ZADD", "z", "1700000002", "jti-b", "1700000001", "jti-a"]),
        "2"
    );
    assert_eq!(
        redis.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "jti-a\n1700000001\njti-b\n1700000002"
    );
    assert_eq!(redis.cmd(&["ZSCORE", "z", "jti-b"]), "1700000002");
    assert_eq!(redis.cmd(&["ZRANGE", "nothing", "0", "-1"]), "");
}

#[test]
fn publish_without_subscribers_reaches_none() {
    let redis = RedisServer::start();
    assert_eq!(redis.publish("iam-guard:nobody", "hello"), 0);
    redis.wait_for_subscribers("iam-guard:nobody", 0, Duration::from_secs(1));
}

#[test]
fn stop_refuses_connections_and_restart_comes_back_empty_on_the_same_port() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    assert_eq!(redis.cmd(&["SET", "k", "v"]), "OK");

    redis.stop();
    let err = redis
        .try_cmd(&["PING"])
        .expect_err("a stopped server answered");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    redis.stop(); // idempotent

    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.cmd(&["PING"]), "PONG");
    assert_eq!(redis.cmd(&["GET", "k"]), "(nil)", "persistence is off");

    // Restarting a running server works too.
    assert_eq!(redis.cmd(&["SET", "k2", "v"]), "OK");
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.cmd(&["EXISTS", "k2"]), "0");
}

#[test]
fn restart_waits_for_a_lingering_port() {
    let mut redis = RedisServer::start();
    redis.stop();
    let squatter = TcpListener::bind(("127.0.0.1", redis.port())).unwrap();
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        drop(squatter);
    });
    redis.restart();
    release.join().unwrap();
    assert_eq!(redis.cmd(&["PING"]), "PONG");
}

#[test]
#[should_panic(expected = "Address already in use")]
fn restart_fails_when_the_port_stays_taken() {
    let mut redis = RedisServer::start();
    redis.stop();
    let _squatter = TcpListener::bind(("127.0.0.1", redis.port())).unwrap();
    redis.restart();
}

#[test]
fn kill_pubsub_clients_disconnects_a_subscriber() {
    let redis = RedisServer::start();
    let mut subscriber = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    subscriber
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    subscriber
        .write_all(&encode(&["SUBSCRIBE", "iam-guard:revoked"]))
        .unwrap();
    let mut reader = BufReader::new(subscriber.try_clone().unwrap());
    assert_eq!(
        read_reply(&mut reader).unwrap(),
        "subscribe\niam-guard:revoked\n1"
    );
    redis.wait_for_subscribers("iam-guard:revoked", 1, Duration::from_secs(5));

    assert_eq!(redis.publish("iam-guard:revoked", "jti-1"), 1);
    assert_eq!(
        read_reply(&mut reader).unwrap(),
        "message\niam-guard:revoked\njti-1"
    );

    // A plain client is no pub/sub client: only the subscriber goes.
    assert_eq!(redis.kill_pubsub_clients(), 1);
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "{rest:?}");
    assert_eq!(redis.publish("iam-guard:revoked", "jti-2"), 0);
    assert_eq!(redis.kill_pubsub_clients(), 0);
}

#[test]
fn servers_are_independent() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.cmd(&["SET", "k", "a"]), "OK");
    assert_eq!(b.cmd(&["GET", "k"]), "(nil)");
}

#[test]
fn drop_kills_the_server_and_removes_its_dir() {
    let redis = RedisServer::start();
    let port = redis.port();
    let dir = redis.cmd(&["CONFIG", "GET", "dir"]);
    let dir = std::path::PathBuf::from(dir.lines().nth(1).unwrap());
    assert!(dir.is_dir());
    drop(redis);
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
