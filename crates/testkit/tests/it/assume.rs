//! The seed-001 flow and everything around it: assume, use, expire, bind, revoke.

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

/// What a user needs to assume roles, per the Vultr guide, plus listing roles.
fn assumer_policy() -> serde_json::Value {
    allow(&["iam.role.AssumeRole", "iam.role.Read", "iam.role.List", "iam.assumedrole.Read", "iam.assumedrole.List"])
}

struct Setup {
    user: wire::UserView,
    user_client: Client,
    role: wire::RoleView,
}

/// A user allowed to assume, and an assumable role whose only policy allows listing users.
async fn setup(t: &TestApp, max: i64) -> Setup {
    let (user, user_client) = t.user_with_policy("dev@example.com", Some(assumer_policy())).await;
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: "user-reader".into(),
            description: "reads users".into(),
            role_type: "assumable".into(),
            max_session_duration: Some(max),
        })
        .await
        .unwrap();
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "list-users".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_role(&role.id, &policy.id).await.unwrap();
    Setup { user, user_client, role }
}

fn trust_for_user(role: &str, user: &str, conditions: Option<wire::Conditions>) -> wire::TrustInput {
    wire::TrustInput { role_id: role.into(), trusted_user_id: Some(user.into()), conditions, ..Default::default() }
}

fn assume_req(s: &Setup, duration: Option<i64>, ip: Option<&str>) -> wire::AssumeRequest {
    wire::AssumeRequest {
        user_id: s.user.id.clone(),
        role_id: s.role.id.clone(),
        session_name: "deploy".into(),
        auth_method: Some("api_key".into()),
        duration,
        ip_address: ip.map(str::to_owned),
        context: None,
        oidc_issuer_id: None,
        policy: None,
    }
}

fn api_status(e: tessera_client::ClientError) -> (StatusCode, String) {
    match e {
        tessera_client::ClientError::Api { status, body } => (status, body.error.message),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn seed_001_flow_assume_and_call_with_exactly_the_roles_permissions(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 7_200).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();

    // Step 1: the user lists roles and finds the assumable one.
    let roles = s.user_client.list_roles(&ListParams::default()).await.unwrap();
    assert!(roles.roles.iter().any(|r| r.id == s.role.id && r.role_type == "assumable"));

    // Step 3: assume.
    let (status, body) = s
        .user_client
        .raw(
            reqwest::Method::POST,
            "/v2/assumed-roles/assume",
            Some(&serde_json::to_string(&assume_req(&s, Some(3_600), None)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let session: wire::AssumedRoleView = serde_json::from_value(body["assumed_role_session"].clone()).unwrap();
    let token = session.session_token.clone().expect("token shown once");
    assert!(token.starts_with("tessera_rs_"));
    assert_eq!(session.user_id, s.user.id);
    assert_eq!(session.role_id, s.role.id);
    assert_eq!(session.duration, 3_600);
    assert_eq!(session.remaining_duration, 3_600);
    assert_eq!(session.source_ip, "127.0.0.1");
    assert_eq!(session.auth_method, "api_key");
    assert_eq!(session.status, "Active");
    assert_eq!(session.date_assumed, "2030-01-01T10:00:00Z");
    assert_eq!(session.date_expires, "2030-01-01T11:00:00Z");

    // The token acts with the role's policies: listing users works ...
    let as_role = t.client(&token);
    assert!(as_role.list_users(&ListParams::default()).await.is_ok());
    // ... and nothing of the user's own: the user may list roles, the role may not.
    let (code, msg) = api_status(as_role.list_roles(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains("iam.role.List"), "{msg}");

    // Reading it back never shows the token again, and remaining_duration counts down.
    t.clock.advance(600);
    let read = s.user_client.get_assumed_role(&session.id).await.unwrap();
    assert_eq!(read.session_token, None);
    assert_eq!(read.remaining_duration, 3_000);
    let listed = s.user_client.list_user_assumed_roles(&s.user.id, &ListParams::default()).await.unwrap();
    assert_eq!(listed.assumed_role_sessions.len(), 1);
    assert_eq!(listed.assumed_role_sessions[0].session_token, None);
}

async fn without_a_trust_assume_is_forbidden_and_says_so(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    let (code, msg) = api_status(s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains("No trust relationship exists between this role and user"), "{msg}");
}

async fn unmet_conditions_are_named_in_the_403(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    let conditions = wire::Conditions {
        ip_address: vec!["10.0.0.0/8".into()],
        time_of_day: Some(wire::TimeOfDay { start: 9, end: 17, ..Default::default() }),
        oidc_claims: None,
    };
    let trust = t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, Some(conditions))).await.unwrap();

    // The request comes from 127.0.0.1, outside 10.0.0.0/8.
    let (code, msg) = api_status(s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains(&trust.id) && msg.contains("ip_address not met: 127.0.0.1"), "{msg}");

    // Binding the session to an address inside the range satisfies the IP condition.
    let ok = s.user_client.assume_role(&assume_req(&s, None, Some("10.1.2.3"))).await.unwrap();
    assert_eq!(ok.conditions_met, vec!["ip_address".to_owned(), "time_of_day".to_owned()]);
    assert_eq!(ok.ip_address.as_deref(), Some("10.1.2.3"));

    // At 18:00 UTC the time-of-day condition fails.
    t.clock.advance(8 * 3_600);
    let (code, msg) = api_status(s.user_client.assume_role(&assume_req(&s, None, Some("10.1.2.3"))).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains("time_of_day not met: hour 18 UTC"), "{msg}");
}

async fn trusts_through_groups_and_expired_trusts(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    let group = t
        .admin
        .create_group(&wire::GroupInput { display_name: "deployers".into(), description: String::new() })
        .await
        .unwrap();
    t.admin
        .create_trust(&wire::TrustInput {
            role_id: s.role.id.clone(),
            trusted_group_id: Some(group.id.clone()),
            valid_until: Some("2030-01-01T12:00:00Z".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (code, _) = api_status(s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN, "not yet a member");
    t.admin.add_group_member(&group.id, &s.user.id).await.unwrap();
    let ok = s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap();
    assert_eq!(ok.conditions_met, vec!["valid_until".to_owned()]);
    t.clock.advance(2 * 3_600);
    let (code, msg) = api_status(s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains("expired at 2030-01-01T12:00:00Z"), "{msg}");
}

async fn duration_over_the_role_maximum_is_a_400(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let err = s.user_client.assume_role(&assume_req(&s, Some(3_601), None)).await.unwrap_err();
    match err {
        tessera_client::ClientError::Api { status, body } => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body.error.field.as_deref(), Some("duration"));
            assert!(body.error.message.contains("max_session_duration of 3600"), "{}", body.error.message);
        }
        other => panic!("{other}"),
    }
}

async fn session_tokens_expire_with_the_clock(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let session = s.user_client.assume_role(&assume_req(&s, Some(900), None)).await.unwrap();
    let as_role = t.client(session.session_token.as_deref().unwrap());
    t.clock.advance(899);
    assert!(as_role.list_users(&ListParams::default()).await.is_ok());
    t.clock.advance(1);
    let (code, msg) = api_status(as_role.list_users(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(msg.contains("expired"), "{msg}");
    let read = s.user_client.get_assumed_role(&session.id).await.unwrap();
    assert_eq!(
        (read.status.as_str(), read.end_reason.as_deref(), read.remaining_duration),
        ("Ended", Some("expired"), 0)
    );
    assert!(
        s.user_client
            .list_user_assumed_roles(&s.user.id, &ListParams::default())
            .await
            .unwrap()
            .assumed_role_sessions
            .is_empty()
    );
}

async fn a_token_bound_to_an_ip_works_only_from_there(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let session = s.user_client.assume_role(&assume_req(&s, None, Some("127.0.0.2"))).await.unwrap();
    let token = session.session_token.unwrap();
    let (code, _) = api_status(t.client(&token).list_users(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let from_bound = t.client(&token).from_local_address("127.0.0.2".parse().unwrap());
    assert!(from_bound.list_users(&ListParams::default()).await.is_ok());
}

async fn revocation_takes_effect_on_the_next_request(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let session = s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap();
    let as_role = t.client(session.session_token.as_deref().unwrap());
    assert!(as_role.list_users(&ListParams::default()).await.is_ok(), "cached now");
    t.admin.revoke_assumed_role(&session.id).await.unwrap();
    let (code, _) = api_status(as_role.list_users(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let read = t.admin.get_assumed_role(&session.id).await.unwrap();
    assert_eq!(read.status, "Terminated");
    assert_eq!(read.end_reason.as_deref(), Some("terminated"));
    // Revoking again is harmless: the session stays terminated.
    t.admin.revoke_assumed_role(&session.id).await.unwrap();
    assert_eq!(t.admin.get_assumed_role(&session.id).await.unwrap().status, "Terminated");
}

async fn acting_for_another_user_needs_create_for_user(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let (_, operator) = t.user_with_policy("ops@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let (code, msg) = api_status(operator.assume_role(&assume_req(&s, None, None)).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(msg.contains("iam.assumedrole.CreateForUser"), "{msg}");
    // The administrator holds `*`, like seed 000's Terraform runner.
    let made = t.admin.assume_role(&assume_req(&s, None, None)).await.unwrap();
    assert_eq!(made.user_id, s.user.id);
}

async fn role_policy_changes_reach_live_tokens_at_once(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let session = s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap();
    let as_role = t.client(session.session_token.as_deref().unwrap());
    assert!(as_role.list_users(&ListParams::default()).await.is_ok());
    let policies = t.admin.list_role_policies(&s.role.id, &ListParams::default()).await.unwrap();
    t.admin.detach_policy_from_role(&s.role.id, &policies.policies[0].id).await.unwrap();
    let (code, _) = api_status(as_role.list_users(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tokens_and_keys_are_absent_from_the_database_file() {
    let t = spawn_app(Backend::Sqlite).await;
    let s = setup(&t, 3_600).await;
    t.admin.create_trust(&trust_for_user(&s.role.id, &s.user.id, None)).await.unwrap();
    let session = s.user_client.assume_role(&assume_req(&s, None, None)).await.unwrap();
    let token = session.session_token.unwrap();
    let key =
        t.admin.create_api_key(&s.user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    let secret = key.api_key.unwrap();
    let path = t.db_path.clone().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
    let haystack = String::from_utf8_lossy(&bytes);
    for secret in [token.as_str(), secret.as_str(), tessera_testkit::ADMIN_KEY] {
        assert!(!haystack.contains(secret), "a secret is stored in clear");
        // Not even the random part alone.
        let tail = &secret[secret.len() - 20..];
        assert!(!haystack.contains(tail));
    }
    assert!(haystack.contains(&s.user.id), "the check reads the real data");
}

tessera_testkit::both_backends!(
    seed_001_flow_assume_and_call_with_exactly_the_roles_permissions,
    without_a_trust_assume_is_forbidden_and_says_so,
    unmet_conditions_are_named_in_the_403,
    trusts_through_groups_and_expired_trusts,
    duration_over_the_role_maximum_is_a_400,
    session_tokens_expire_with_the_clock,
    a_token_bound_to_an_ip_works_only_from_there,
    revocation_takes_effect_on_the_next_request,
    acting_for_another_user_needs_create_for_user,
    role_policy_changes_reach_live_tokens_at_once,
);
