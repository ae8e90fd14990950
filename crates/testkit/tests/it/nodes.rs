//! Several nodes on one PostgreSQL database (in one process, sharing a controlled clock):
//! what one node changes, the others honour at once, and idle tracking spans nodes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

async fn two_nodes() -> Option<(TestApp, TestApp)> {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipping the multi-node test");
        return None;
    };
    let a = spawn_app(backend).await;
    let b = a.another_node().await;
    Some((a, b))
}

/// Polls until `ok` holds, returning how long it took; fails after two seconds.
async fn within<F, Fut>(what: &str, mut ok: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < Duration::from_secs(2), "{what} not seen within 2 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

async fn status(c: &Client) -> StatusCode {
    match c.list_users(&ListParams::default()).await {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status().unwrap_or(StatusCode::BAD_GATEWAY),
    }
}

#[tokio::test]
async fn sign_out_termination_and_policy_changes_reach_the_other_node() {
    let Some((a, b)) = two_nodes().await else { return };
    let user = a
        .admin
        .create_user(&wire::UserCreate {
            email: "lee@example.com".into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let policy = a
        .admin
        .create_policy(&wire::PolicyInput {
            name: "list".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    a.admin.attach_policy_to_user(&policy.id, &user.id).await.unwrap();
    let sign_in = |node: &TestApp| {
        let c = node.anonymous();
        async move {
            c.sign_in(&wire::SignInRequest {
                email: "lee@example.com".into(),
                password: PASSWORD.into(),
                organization_id: None,
            })
            .await
            .unwrap()
        }
    };
    // Signed in on A, used (and cached) on B, signed out on A: B refuses.
    let s1 = sign_in(&a).await;
    let on_b = b.client(&s1.token);
    assert_eq!(status(&on_b).await, StatusCode::OK);
    a.client(&s1.token).sign_out().await.unwrap();
    let took = within("sign-out on the other node", || async { status(&on_b).await == StatusCode::UNAUTHORIZED }).await;
    eprintln!("sign-out seen on node B after {took:?}");

    // Terminated by an administrator on B: A refuses.
    let s2 = sign_in(&a).await;
    let on_a = a.client(&s2.token);
    assert_eq!(status(&on_a).await, StatusCode::OK);
    b.admin.terminate_session(&s2.session.moid).await.unwrap();
    within("termination on the other node", || async { status(&on_a).await == StatusCode::UNAUTHORIZED }).await;

    // A policy detached on A: B's cached permissions are rebuilt.
    let s3 = sign_in(&a).await;
    let on_b = b.client(&s3.token);
    assert_eq!(status(&on_b).await, StatusCode::OK);
    a.admin.detach_policy_from_user(&policy.id, &user.id).await.unwrap();
    within("a policy change on the other node", || async { status(&on_b).await == StatusCode::FORBIDDEN }).await;

    // A user disabled on B: A refuses its API keys.
    let key =
        a.admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    let with_key = a.client(key.api_key.as_deref().unwrap());
    assert_eq!(status(&with_key).await, StatusCode::FORBIDDEN, "authenticated, not allowed");
    b.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    within("a disabled user on the other node", || async { status(&with_key).await == StatusCode::UNAUTHORIZED }).await;
}

#[tokio::test]
async fn a_session_busy_on_one_node_does_not_idle_out_on_another() {
    let Some((a, b)) = two_nodes().await else { return };
    a.admin
        .put_session_limits(&wire::SessionLimitsView {
            idle_timeout: 300,
            absolute_timeout: 57_600,
            max_sessions_per_user: 32,
        })
        .await
        .unwrap();
    let user = a
        .admin
        .create_user(&wire::UserCreate {
            email: "lee@example.com".into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let policy = a
        .admin
        .create_policy(&wire::PolicyInput {
            name: "list".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    a.admin.attach_policy_to_user(&policy.id, &user.id).await.unwrap();
    let s = a
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "lee@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap();
    let (on_a, on_b) = (a.client(&s.token), b.client(&s.token));
    assert_eq!(status(&on_b).await, StatusCode::OK, "B caches the session now");
    // Busy on A for 20 minutes; B sees nothing of it directly.
    for _ in 0..10 {
        a.clock.advance(120);
        assert_eq!(status(&on_a).await, StatusCode::OK);
    }
    assert_eq!(status(&on_b).await, StatusCode::OK, "B must ask the store before idling it out");
    a.clock.advance(301);
    assert_eq!(status(&on_b).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_lost_change_feed_turns_caches_off_until_it_is_back() {
    let Some((a, mut b)) = two_nodes().await else { return };
    let (user, _) = a.user_with_policy("k@example.com", Some(allow(&["iam.user.List"]))).await;
    let key =
        a.admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: "b".into(), date_expire: None }).await.unwrap();
    let on_b = b.client(key.api_key.as_deref().unwrap());
    assert_eq!(status(&on_b).await, StatusCode::OK, "cached on B");
    // B stops hearing notices; a change made on A goes unseen by B's cache ...
    b.stop_following_changes();
    a.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status(&on_b).await, StatusCode::OK, "a deaf node serves its stale cache: why the feed matters");
    // ... which is why a lost feed turns the cache off: every request then reads the store.
    b.app.cache().set_trusted(false);
    assert_eq!(status(&on_b).await, StatusCode::UNAUTHORIZED);
    b.app.cache().set_trusted(true);
    assert_eq!(status(&on_b).await, StatusCode::UNAUTHORIZED, "restored caches start empty");
}

#[tokio::test]
async fn a_trust_deleted_on_one_node_stops_assumes_on_another() {
    let Some((a, b)) = two_nodes().await else { return };
    let raw = |t: &TestApp, m: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let (client, path, body) = (t.admin.clone(), path.to_owned(), body.map(|b| b.to_string()));
        async move { client.raw(m, &path, body.as_deref()).await.unwrap() }
    };
    let (_, role) = raw(
        &a,
        reqwest::Method::POST,
        "/v2/roles",
        Some(serde_json::json!({"name": "ops", "role_type": "assumable", "max_session_duration": 3600})),
    )
    .await;
    let role_id = role["role"]["id"].as_str().unwrap().to_owned();
    let (st, trust) = raw(
        &a,
        reqwest::Method::POST,
        "/v2/role-trusts",
        Some(serde_json::json!({"role_id": role_id, "trusted_user_id": a.admin_id})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{trust}");
    let trust_id = trust["role_trust"]["id"].as_str().unwrap().to_owned();
    let assume = serde_json::json!({"user_id": a.admin_id, "role_id": role_id, "session_name": "s", "duration": 900});
    // Twice on node A: the second is served from A's cached role, trust and groups.
    for _ in 0..2 {
        let (st, body) = raw(&a, reqwest::Method::POST, "/v2/assumed-roles/assume", Some(assume.clone())).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    let (st, _) = raw(&b, reqwest::Method::DELETE, &format!("/v2/role-trusts/{trust_id}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let took = within("the deleted trust on node A", || {
        let (a, assume) = (&a, assume.clone());
        async move {
            raw(a, reqwest::Method::POST, "/v2/assumed-roles/assume", Some(assume)).await.0 == StatusCode::FORBIDDEN
        }
    })
    .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
