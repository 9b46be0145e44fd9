//! The development IAM's `GET /permissions` (a demo user's roles compiled
//! against the catalogue it serves, as a `RemoteSource` asks for them) and
//! `PUT /users/{name}` (a demo user's claims replaced); with `publish_to`,
//! the invalidations a role or catalogue change sends to every replica.
#![cfg(feature = "test-util")]

mod common;

use std::{
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use iam_guard::{
    model::{custom_fields::EntityCustomFields, Catalogue},
    revocation::Revocations,
    test_util::{principal, TestIam},
    PermissionSource, RemoteSource,
};
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Status, `x-invalidated` header and JSON body (`null` when there is none).
async fn send(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    let invalidated = res
        .headers()
        .get("x-invalidated")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, invalidated, body)
}

async fn get_permissions(iam: &TestIam, query: &str) -> (u16, Value) {
    let (status, _, body) =
        send(reqwest::Client::new().get(format!("{}?{query}", iam.permissions_url()))).await;
    (status, body)
}

async fn put(iam: &TestIam, path: &str, body: &str) -> (u16, Option<String>, Value) {
    send(
        reqwest::Client::new()
            .put(format!("{}{path}", iam.issuer()))
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

/// Polls `check` until it holds, for at most 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the bundled catalogue grants `roles`, as a permissions document.
/// What a service compiles from them: the same without the custom field
/// definitions (a `RemoteSource` keeps permissions only).
fn permissions_of(roles: &[&str]) -> Value {
    Catalogue::students_fixture()
        .compile_roles(roles.iter().copied())
        .to_document()
}

/// What the IAM answers for `roles`.
fn document_of(roles: &[&str]) -> Value {
    let catalogue = Catalogue::students_fixture();
    catalogue
        .compile_roles(roles.iter().copied())
        .to_document_with_custom_fields(&EntityCustomFields::from_catalogue(&catalogue))
}

/// A custom role of school-1: READ on `sensitive` only.
fn custom_role(sensitive: &str) -> Value {
    json!({"id": "nurse", "name": "Nurse", "scopes": {"students": {"sensitive": sensitive}}})
}

#[tokio::test]
async fn permissions_are_the_demo_users_roles_compiled_against_the_tenants_catalogue() {
    let iam = TestIam::start().await;
    iam.put_catalogue_role("school-1", custom_role("READ"))
        .unwrap();
    iam.add_user(
        "teacher",
        json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["internal_teacher"]}),
    );
    iam.add_user(
        "nurse",
        json!({"sub": "u-nurse", "tenantId": "school-1", "organizations": ["school-2"],
               "roles": ["nurse", "student"]}),
    );
    let until = now() + 600;
    iam.add_user(
        "temp",
        json!({"sub": "u-temp", "tenantId": "school-1", "roles": ["admin"],
               "role_assignments": [{"role": "accountant", "validUntil": until}]}),
    );
    // No `sub`: the tokens minted for it carry `user-1`.
    iam.add_user("default", json!({"roles": ["parent"]}));

    let teacher = get_permissions(&iam, "userId=u-teacher&tenantId=school-1").await;
    assert_eq!(teacher, (200, document_of(&["internal_teacher"])));
    // As a real IAM answers: the custom fields of the scopes the teacher
    // reads (anagraphic, enrollment), not the sensitive blood type.
    let listed: Vec<&str> = teacher.1["students"]["customFieldDefinitions"]
        .as_array()
        .expect("listed")
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["nickname", "bus_route"]);
    assert_eq!(
        get_permissions(&iam, "userId=u-teacher").await,
        teacher,
        "no tenant: the system catalogue"
    );

    // A custom role counts in its school only.
    let (status, nurse) = get_permissions(&iam, "userId=u-nurse&tenantId=school-1").await;
    assert_eq!(status, 200);
    assert_eq!(nurse["students"]["scopes"]["sensitive"], "READ", "{nurse}");
    assert_eq!(
        get_permissions(&iam, "userId=u-nurse&tenantId=school-2").await,
        (200, document_of(&["student"])),
        "a member of school-2, where `nurse` is no role"
    );

    // Temporal assignments replace `roles`, and bound the answer.
    let (status, temp) = get_permissions(&iam, "userId=u-temp&tenantId=school-1").await;
    assert_eq!(status, 200);
    let mut accountant = document_of(&["accountant"]);
    accountant["validUntil"] = json!(until);
    assert_eq!(temp, accountant);

    assert_eq!(
        get_permissions(&iam, "userId=user-1").await,
        (200, document_of(&["parent"]))
    );

    // Nobody it knows, or not in that tenant: no permissions.
    for query in [
        "userId=u-nobody&tenantId=school-1",
        "userId=u-teacher&tenantId=school-2",
    ] {
        assert_eq!(
            get_permissions(&iam, query).await,
            (200, json!({})),
            "{query}"
        );
    }
    for query in ["tenantId=school-1", "userId=", "user=u-teacher"] {
        let (status, body) = get_permissions(&iam, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request", "{query}");
    }

    // A catalogue change shows in the next answer.
    let (status, _, _) = put(
        &iam,
        "/catalogue/tenants/school-1/roles/nurse",
        &custom_role("NONE").to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, nurse) = get_permissions(&iam, "userId=u-nurse&tenantId=school-1").await;
    assert_eq!(nurse.pointer("/students/scopes/sensitive"), None, "{nurse}");

    // An invalid catalogue published: the IAM cannot answer.
    iam.set_catalogue_raw("not a catalogue");
    let (status, body) = get_permissions(&iam, "userId=u-teacher").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");

    assert_eq!(
        iam.permissions_fetches(),
        13,
        "every request, whatever the answer"
    );
}

#[tokio::test]
async fn a_remote_source_reads_what_the_iam_answers() {
    let iam = TestIam::start().await;
    iam.add_user(
        "teacher",
        json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["internal_teacher"]}),
    );
    let source = RemoteSource::builder(iam.permissions_url())
        .build()
        .unwrap();
    let caller =
        principal(json!({"iss": iam.issuer(), "sub": "u-teacher", "tenantId": "school-1"}));
    let perms = source.load(&caller).await.unwrap();
    assert_eq!(perms.to_document(), permissions_of(&["internal_teacher"]));
    source.load(&caller).await.unwrap();
    assert_eq!(iam.permissions_fetches(), 1, "cached");
}

#[tokio::test]
async fn put_user_replaces_the_claims_of_tokens_and_permissions() {
    let iam = TestIam::start().await;
    iam.add_user(
        "teacher",
        json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["internal_teacher"]}),
    );
    let accountant = json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["accountant"]});
    // Nowhere to publish an invalidation: nothing to invalidate.
    let (status, invalidated, body) = put(&iam, "/users/teacher", &accountant.to_string()).await;
    assert_eq!((status, invalidated, body), (200, None, accountant.clone()));
    assert_eq!(
        get_permissions(&iam, "userId=u-teacher&tenantId=school-1").await,
        (200, document_of(&["accountant"]))
    );
    // The tokens `POST /token` mints for the user carry the new claims.
    let res = reqwest::Client::new()
        .post(format!("{}/token", iam.issuer()))
        .body(r#"{"user":"teacher"}"#)
        .send()
        .await
        .unwrap();
    let token: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["roles"], json!(["accountant"]), "{claims}");

    // A new name is a new demo user.
    let (status, _, _) = put(
        &iam,
        "/users/nurse",
        r#"{"sub":"u-nurse","roles":["student"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get_permissions(&iam, "userId=u-nurse").await,
        (200, document_of(&["student"]))
    );

    // One process without replicas: still nothing to invalidate.
    iam.revoke_into(Revocations::new());
    let (status, _, _) = put(&iam, "/users/teacher", &accountant.to_string()).await;
    assert_eq!(status, 200);

    for body in ["[1]", "\"claims\"", "", "{\"sub\":"] {
        let (status, _, answer) = put(&iam, "/users/teacher", body).await;
        assert_eq!(status, 400, "{body:?}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{body:?}");
    }
    assert_eq!(
        get_permissions(&iam, "userId=u-teacher&tenantId=school-1").await,
        (200, document_of(&["accountant"])),
        "a refused body changes nothing"
    );
}

#[cfg(feature = "redis")]
mod through_redis {
    use iam_guard::replicas::RedisReplicas;

    use super::*;
    use crate::common::redis::RedisServer;

    async fn replica(redis: &RedisServer) -> RedisReplicas {
        RedisReplicas::builder(redis.url())
            .heartbeat(Duration::from_millis(200))
            .timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("a replica connects to the test redis-server")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn role_and_catalogue_changes_at_the_iam_invalidate_every_replica() {
        let mut redis = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .unwrap();
        let iam = TestIam::start().await;
        iam.publish_to(replica(&redis).await);
        iam.add_user(
            "teacher",
            json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["internal_teacher"]}),
        );
        // Another replica, caching what the IAM answers.
        let other = replica(&redis).await;
        let source = RemoteSource::builder(iam.permissions_url())
            .shared(&other)
            .build()
            .unwrap();
        let caller = principal(json!({
            "iss": iam.issuer(), "sub": "u-teacher", "tenantId": "school-1",
        }));
        let document = || {
            let (source, caller) = (source.clone(), caller.clone());
            async move { source.load(&caller).await.unwrap().to_document() }
        };
        assert_eq!(document().await, permissions_of(&["internal_teacher"]));
        assert_eq!(document().await, permissions_of(&["internal_teacher"]));
        assert_eq!(iam.permissions_fetches(), 1, "cached");

        // The IAM changes the user's roles: the other replica drops them.
        let accountant =
            json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["accountant"]});
        let (status, _, body) = put(&iam, "/users/teacher", &accountant.to_string()).await;
        assert_eq!((status, body), (200, accountant));
        eventually("the other replica learns the new roles", || async {
            document().await == permissions_of(&["accountant"])
        })
        .await;
        assert_eq!(iam.permissions_fetches(), 2);

        // A catalogue change: every cached set, on every replica.
        let (status, invalidated, _) = put(
            &iam,
            "/catalogue/tenants/school-1/roles/accountant_plus",
            &json!({"name": "x", "scopes": {"students": {"sensitive": "READ"}}}).to_string(),
        )
        .await;
        assert_eq!((status, invalidated.as_deref()), (200, Some("all")));
        eventually("the other replica asks again", || async {
            document().await;
            iam.permissions_fetches() == 3
        })
        .await;

        // Moved to another school: the old school's entry goes too (the
        // old token still names school-1, where the user is no member).
        let moved = json!({"sub": "u-teacher", "tenantId": "school-2", "roles": ["accountant"]});
        let (status, _, _) = put(&iam, "/users/teacher", &moved.to_string()).await;
        assert_eq!(status, 200);
        eventually("the old school's permissions are dropped", || async {
            document().await == json!({})
        })
        .await;

        // Redis down: the claims are replaced, the invalidation is not sent.
        tokio::task::spawn_blocking(move || {
            redis.stop();
            redis
        })
        .await
        .unwrap();
        let teacher =
            json!({"sub": "u-teacher", "tenantId": "school-1", "roles": ["internal_teacher"]});
        let (status, _, body) = put(&iam, "/users/teacher", &teacher.to_string()).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(
            get_permissions(&iam, "userId=u-teacher&tenantId=school-1").await,
            (200, document_of(&["internal_teacher"]))
        );
        let (status, invalidated, body) = put(
            &iam,
            "/catalogue/tenants/school-1/roles/accountant_plus",
            &json!({"name": "y", "scopes": {"students": {"sensitive": "NONE"}}}).to_string(),
        )
        .await;
        assert_eq!(
            (status, invalidated.as_deref()),
            (200, Some("failed")),
            "{body}"
        );
    }
}
