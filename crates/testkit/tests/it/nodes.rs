//! Several nodes on one PostgreSQL database (in one process, sharing a controlled clock):
//! what one node changes, the others honour at once, and idle tracking spans nodes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};
use tessera_store::StoreChange;
use tessera_testkit::{Backend, TestApp, allow, spawn_app};
use tokio::sync::broadcast;

const PASSWORD: &str = "correct horse battery staple";

/// How long anything here may take on a loaded machine. One generous deadline for each wait:
/// every wait is for an event (a notice on the feed, a flag, an answer), never a guess at how
/// long something takes.
const DEADLINE: Duration = Duration::from_secs(15);

async fn two_nodes(backend: Backend) -> (TestApp, TestApp) {
    let a = spawn_app(backend).await;
    let b = a.another_node().await;
    (a, b)
}

/// A node's change feed as the test sees it: a subscription to the very notices that node's
/// caches follow, taken before the change it waits for.
struct Feed(broadcast::Receiver<StoreChange>);

impl Feed {
    fn of(node: &TestApp) -> Feed {
        Feed(node.store().changes().expect("PostgreSQL has a change feed"))
    }

    /// Waits for a notice `want` accepts; returns how long it took.
    async fn saw(&mut self, what: &str, want: impl Fn(&StoreChange) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            match tokio::time::timeout_at((start + DEADLINE).into(), self.0.recv()).await {
                Ok(Ok(change)) if want(&change) => return start.elapsed(),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the feed failed while waiting for {what}: {e}"),
                Err(_) => panic!("{what} never arrived on the change feed ({DEADLINE:?})"),
            }
        }
    }
}

fn ended(moid: &str) -> impl Fn(&StoreChange) -> bool + '_ {
    move |c| matches!(c, StoreChange::SessionEnded { id, .. } if id.to_string() == moid)
}

/// Polls until `ok` holds, failing after [`DEADLINE`]. Used only after the notice that makes
/// it true has arrived: the node's follower applies a notice a moment after the feed hands it
/// over, so this usually holds at the first try.
async fn eventually<F, Fut>(what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < DEADLINE, "{what}: not seen within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn status(c: &Client) -> StatusCode {
    match c.list_users(&ListParams::default()).await {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status().unwrap_or(StatusCode::BAD_GATEWAY),
    }
}

async fn sign_out_termination_and_policy_changes_reach_the_other_node(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
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
    let (mut feed_a, mut feed_b) = (Feed::of(&a), Feed::of(&b));
    // Signed in on A, used (and cached) on B, signed out on A: B refuses.
    let s1 = sign_in(&a).await;
    let on_b = b.client(&s1.token);
    assert_eq!(status(&on_b).await, StatusCode::OK);
    a.client(&s1.token).sign_out().await.unwrap();
    let took = feed_b.saw("the sign-out on node B", ended(&s1.session.moid)).await;
    eventually("node B refusing the signed-out session", || async { status(&on_b).await == StatusCode::UNAUTHORIZED })
        .await;
    eprintln!("the sign-out reached node B's feed after {took:?}");

    // Terminated by an administrator on B: A refuses.
    let s2 = sign_in(&a).await;
    let on_a = a.client(&s2.token);
    assert_eq!(status(&on_a).await, StatusCode::OK);
    b.admin.terminate_session(&s2.session.moid).await.unwrap();
    feed_a.saw("the termination on node A", ended(&s2.session.moid)).await;
    eventually("node A refusing the terminated session", || async { status(&on_a).await == StatusCode::UNAUTHORIZED })
        .await;

    // A policy detached on A: B's cached permissions are rebuilt.
    let s3 = sign_in(&a).await;
    let on_b = b.client(&s3.token);
    assert_eq!(status(&on_b).await, StatusCode::OK);
    a.admin.detach_policy_from_user(&policy.id, &user.id).await.unwrap();
    feed_b.saw("the detached policy on node B", |c| *c == StoreChange::Permissions).await;
    eventually("node B applying the detached policy", || async { status(&on_b).await == StatusCode::FORBIDDEN }).await;

    // A user disabled on B: A refuses its API keys.
    let key =
        a.admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    let with_key = a.client(key.api_key.as_deref().unwrap());
    assert_eq!(status(&with_key).await, StatusCode::FORBIDDEN, "authenticated, not allowed");
    b.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    feed_a.saw("the disabled user on node A", |c| *c == StoreChange::Credentials).await;
    eventually("node A refusing the disabled user's key", || async {
        status(&with_key).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

async fn a_session_busy_on_one_node_does_not_idle_out_on_another(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
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

/// The real LISTEN connections are killed (`pg_terminate_backend`) and the database refuses
/// new connections, so the feed stays down for as long as the test needs: meanwhile every
/// request reads the store, and when connections are allowed again the feed comes back.
async fn a_lost_change_feed_turns_caches_off_until_it_is_back(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
    let (pg, database) = a.postgres_server().await.expect("a PostgreSQL database");
    let (user, _) = a.user_with_policy("k@example.com", Some(allow(&["iam.user.List"]))).await;
    let mut keys = vec![];
    for name in ["a", "b"] {
        let k = a.admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: name.into(), date_expire: None }).await;
        keys.push(a.client(k.unwrap().api_key.as_deref().unwrap()));
    }
    let (on_a, other_on_a) = (keys[0].clone(), keys[1].clone());
    assert_eq!(status(&on_a).await, StatusCode::OK, "cached on A");
    assert_eq!(status(&other_on_a).await, StatusCode::OK, "cached on A");
    assert!(a.app.cache().is_trusted() && b.app.cache().is_trusted());

    // Lose the feed for real: both nodes' LISTEN connections are terminated by the server.
    let (mut feed_a, mut feed_b) = (Feed::of(&a), Feed::of(&b));
    pg.batch_execute(&format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")).await.unwrap();
    let killed = pg
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&database],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one LISTEN connection per node");
    feed_a.saw("FeedLost on node A", |c| *c == StoreChange::FeedLost).await;
    feed_b.saw("FeedLost on node B", |c| *c == StoreChange::FeedLost).await;
    eventually("node A turning its caches off", || async { !a.app.cache().is_trusted() }).await;

    // Used on A while the feed is down: nothing it caches now may be served later ...
    assert_eq!(status(&on_a).await, StatusCode::OK);
    // ... so when B disables the user (a NOTIFY that reaches nobody), A refuses at once.
    b.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(status(&on_a).await, StatusCode::UNAUTHORIZED, "a change made on B while the feed is down");
    // Enabled again on B: A serves the user again at once, from the store too.
    b.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("active".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(status(&on_a).await, StatusCode::OK, "a change made on B while the feed is down");
    assert!(!a.app.cache().is_trusted(), "the feed is still down: nothing may have restored it");

    // Connections allowed again: the feed comes back by itself, and the caches with it.
    pg.batch_execute(&format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")).await.unwrap();
    let took = feed_a.saw("FeedRestored on node A", |c| *c == StoreChange::FeedRestored).await;
    feed_b.saw("FeedRestored on node B", |c| *c == StoreChange::FeedRestored).await;
    eprintln!("the feed came back {took:?} after connections were allowed");
    eventually("node A trusting its caches again", || async { a.app.cache().is_trusted() }).await;
    // And notices flow again: a change on B reaches A through the feed.
    assert_eq!(status(&other_on_a).await, StatusCode::OK, "cached on A again");
    b.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    feed_a.saw("the disabled user on node A", |c| *c == StoreChange::Credentials).await;
    eventually("node A refusing the disabled user", || async { status(&other_on_a).await == StatusCode::UNAUTHORIZED })
        .await;
}

async fn a_trust_deleted_on_one_node_stops_assumes_on_another(backend: Backend) {
    let (a, b) = two_nodes(backend).await;
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
    let mut feed_a = Feed::of(&a);
    let (st, _) = raw(&b, reqwest::Method::DELETE, &format!("/v2/role-trusts/{trust_id}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Nothing but the feed can tell A: its cached facts live for minutes.
    let took = feed_a.saw("the deleted trust on node A", |c| *c == StoreChange::Permissions).await;
    eventually("node A refusing the assume", || {
        let (a, assume) = (&a, assume.clone());
        async move {
            raw(a, reqwest::Method::POST, "/v2/assumed-roles/assume", Some(assume)).await.0 == StatusCode::FORBIDDEN
        }
    })
    .await;
    eprintln!("the deleted trust reached node A's feed after {took:?}");
}

/// Forty session-plugin creates for one scope racing on two nodes (each node's own check cannot see
/// the other's write in flight): exactly one is created, every other answer is a 409, and the
/// store holds one session plugin in that scope.
async fn one_session_plugin_per_scope_across_nodes(backend: Backend) {
    use crate::gateway_tls::api;
    use reqwest::Method;
    let (a, b) = two_nodes(backend).await;
    let (s, service) = api(
        &a,
        Method::POST,
        "/v2/gateway/services",
        Some(serde_json::json!({"name": "up", "url": "http://127.0.0.1:9"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{service}");
    let sid = service["service"]["id"].as_str().unwrap().to_owned();
    let plugin = serde_json::json!({"name": "session", "service": {"id": sid}});
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        api(node, Method::POST, "/v2/gateway/plugins", Some(plugin.clone()))
    }))
    .await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{answers:?}");
    for (s, v) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::CONFLICT, "{v}");
        assert!(v.to_string().contains("session plugin"), "the 409 says why: {v}");
    }
    for node in [&a, &b] {
        let (s, list) = api(node, Method::GET, "/v2/gateway/plugins", None).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let sessions = list.to_string().matches("\"name\":\"session\"").count();
        assert_eq!(sessions, 1, "one session plugin stored: {list}");
    }
}

tessera_testkit::postgres_only!(
    one_session_plugin_per_scope_across_nodes,
    sign_out_termination_and_policy_changes_reach_the_other_node,
    a_session_busy_on_one_node_does_not_idle_out_on_another,
    a_lost_change_feed_turns_caches_off_until_it_is_back,
    a_trust_deleted_on_one_node_stops_assumes_on_another,
);
