//! IAM objects through the API: policies and their evaluation, groups, keys, paging.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_api_types as wire;
use tessera_client::{ClientError, ListParams};
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, allow, allow_of_packed_size, spawn_app};

async fn healthz_needs_no_credentials(backend: Backend) {
    let t = spawn_app(backend).await;
    let h = t.anonymous().health().await.unwrap();
    assert_eq!((h.status.as_str(), h.store.as_str()), ("ok", t.store().backend()));
    let (status, body) = t.anonymous().raw(Method::GET, "/v2/users", None).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = t.client("tessera_ak_not-a-real-key").raw(Method::GET, "/v2/users", None).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn an_explicit_deny_wins_over_any_allow(backend: Backend) {
    let t = spawn_app(backend).await;
    let doc = json!({"Statement": [
        {"Effect": "Allow", "Action": "iam.*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["iam.user.Delete"], "Resource": "*"}
    ]});
    let (_, c) = t.user_with_policy("half-admin@example.com", Some(doc)).await;
    let victim =
        c.create_user(&wire::UserCreate { email: "v@example.com".into(), ..Default::default() }).await.unwrap();
    let err = c.delete_user(&victim.id).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert!(err.to_string().contains("explicitly denied"), "{err}");
    assert!(t.admin.get_user(&victim.id).await.is_ok(), "nothing was deleted");
}

async fn permissions_come_from_the_user_and_its_groups_and_resources_scope_them(backend: Backend) {
    let t = spawn_app(backend).await;
    let (user, c) = t.user_with_policy("g@example.com", None).await;
    assert_eq!(c.list_users(&ListParams::default()).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    let group = t
        .admin
        .create_group(&wire::GroupInput { display_name: "readers".into(), description: "read".into() })
        .await
        .unwrap();
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "read-users".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_group(&policy.id, &group.id).await.unwrap();
    t.admin.add_group_member(&group.id, &user.id).await.unwrap();
    assert!(c.list_users(&ListParams::default()).await.is_ok(), "granted through the group");
    let members = t.admin.list_group_members(&group.id, &ListParams::default()).await.unwrap();
    assert_eq!(members.members[0].id, user.id);
    t.admin.remove_group_member(&group.id, &user.id).await.unwrap();
    assert_eq!(c.list_users(&ListParams::default()).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));

    // A statement scoped to one user id allows reading that user only.
    let scoped = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "read-self".into(),
            description: String::new(),
            policy_document: json!({"Statement": [{"Effect": "Allow", "Action": "iam.user.Read", "Resource": [user.id]}]}),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_user(&scoped.id, &user.id).await.unwrap();
    assert!(c.get_user(&user.id).await.is_ok());
    assert_eq!(c.get_user(&t.admin_id).await.unwrap_err().status(), Some(StatusCode::FORBIDDEN));
    let users = t.admin.list_policy_users(&scoped.id, &ListParams::default()).await.unwrap();
    assert_eq!(users.users.len(), 1);
}

async fn api_keys_are_shown_once_listed_without_secret_and_revocable(backend: Backend) {
    let t = spawn_app(backend).await;
    let (user, _) = t.user_with_policy("k@example.com", Some(allow(&["iam.user.List"]))).await;
    let created = t
        .admin
        .create_api_key(
            &user.id,
            &wire::ApiKeyCreate { name: "ci".into(), date_expire: Some("2030-01-02T00:00:00Z".into()) },
        )
        .await
        .unwrap();
    let secret = created.api_key.clone().unwrap();
    assert!(secret.starts_with("tessera_ak_"));
    let keys = t.admin.list_api_keys(&user.id, &ListParams::default()).await.unwrap();
    assert_eq!(keys.api_keys.len(), 2);
    assert!(keys.api_keys.iter().all(|k| k.api_key.is_none()));
    let (_, raw) = t.admin.raw(Method::GET, &format!("/v2/users/{}/apikeys", user.id), None).await.unwrap();
    assert!(!raw.to_string().contains(&secret));
    let c = t.client(&secret);
    assert!(c.list_users(&ListParams::default()).await.is_ok());
    // Keys expire.
    t.clock.advance(86_400);
    assert_eq!(c.list_users(&ListParams::default()).await.unwrap_err().status(), Some(StatusCode::UNAUTHORIZED));
    t.clock.advance(-86_400);
    t.admin.delete_api_key(&user.id, &created.id).await.unwrap();
    assert_eq!(c.list_users(&ListParams::default()).await.unwrap_err().status(), Some(StatusCode::UNAUTHORIZED));
}

/// A role the user may assume (one trust, allowing `iam.user.List`); answers its id.
async fn assumable_role(t: &TestApp, user: &str, name: &str) -> String {
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: name.into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: Some(3_600),
        })
        .await
        .unwrap();
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: format!("{name}-policy"),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_role(&role.id, &policy.id).await.unwrap();
    t.admin
        .create_trust(&wire::TrustInput {
            role_id: role.id.clone(),
            trusted_user_id: Some(user.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    role.id
}

fn assume_req(user: &str, role: &str) -> wire::AssumeRequest {
    wire::AssumeRequest {
        user_id: user.into(),
        role_id: role.into(),
        session_name: "work".into(),
        auth_method: Some("api_key".into()),
        duration: Some(3_600),
        ..Default::default()
    }
}

async fn disabling_a_user_stops_its_keys_at_once_and_ends_its_sessions(backend: Backend) {
    let t = spawn_app(backend).await;
    let (user, c) = t.user_with_policy("d@example.com", Some(allow(&["iam.user.List", "iam.role.AssumeRole"]))).await;
    t.admin
        .update_user(&user.id, &wire::UserUpdate { password: Some("d's long password".into()), ..Default::default() })
        .await
        .unwrap();
    let role = assumable_role(&t, &user.id, "worker").await;
    let login = t
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "d@example.com".into(),
            password: "d's long password".into(),
            organization_id: None,
        })
        .await
        .unwrap();
    let assumed = c.assume_role(&assume_req(&user.id, &role)).await.unwrap();
    let (as_login, as_role) = (t.client(&login.token), t.client(assumed.session_token.as_deref().unwrap()));
    for client in [&c, &as_login, &as_role] {
        assert!(client.list_users(&ListParams::default()).await.is_ok());
    }
    let updated = t
        .admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("disabled".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(updated.status, "disabled");
    for client in [&c, &as_login, &as_role] {
        assert_eq!(
            client.list_users(&ListParams::default()).await.unwrap_err().status(),
            Some(StatusCode::UNAUTHORIZED)
        );
    }
    // The sessions are over, not suspended: terminated, saying why, at the moment of the disable.
    for moid in [&login.session.moid, &assumed.id] {
        let s = t.admin.get_session(moid).await.unwrap();
        assert_eq!(
            (s.status.as_str(), s.end_reason.as_deref(), s.end_time.as_deref()),
            ("Terminated", Some("user_disabled"), Some("2030-01-01T10:00:00Z")),
            "{moid}"
        );
    }
    // Enabling the user again brings its keys back, but none of those sessions.
    t.admin
        .update_user(&user.id, &wire::UserUpdate { status: Some("active".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(c.list_users(&ListParams::default()).await.is_ok(), "the key works again");
    for client in [&as_login, &as_role] {
        assert_eq!(
            client.list_users(&ListParams::default()).await.unwrap_err().status(),
            Some(StatusCode::UNAUTHORIZED)
        );
    }
    assert_eq!(t.admin.get_session(&login.session.moid).await.unwrap().status, "Terminated");
}

/// No silent cap on a role's trusts: with more trusts than any page holds, the last one
/// still lets its user assume the role.
async fn the_501st_trust_of_a_role_still_applies(backend: Backend) {
    let t = spawn_app(backend).await;
    let (user, c) = t.user_with_policy("late@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: "crowded".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: Some(3_600),
        })
        .await
        .unwrap();
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "crowded-policy".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_role(&role.id, &policy.id).await.unwrap();
    // 500 trusts for someone else first (in parallel batches: this is set-up, not the test).
    let other = t.admin_id.clone();
    let input = wire::TrustInput { role_id: role.id.clone(), trusted_user_id: Some(other), ..Default::default() };
    for _ in 0..10 {
        let batch = (0..50).map(|_| t.admin.create_trust(&input));
        for r in futures_util::future::join_all(batch).await {
            r.unwrap();
        }
    }
    let err = c.assume_role(&assume_req(&user.id, &role.id)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN), "no trust for this user yet");
    t.admin
        .create_trust(&wire::TrustInput {
            role_id: role.id.clone(),
            trusted_user_id: Some(user.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let assumed = c.assume_role(&assume_req(&user.id, &role.id)).await.expect("the 501st trust applies");
    assert!(t.client(assumed.session_token.as_deref().unwrap()).list_users(&ListParams::default()).await.is_ok());
}

async fn lists_page_with_cursors_both_ways(backend: Backend) {
    let t = spawn_app(backend).await;
    for i in 0..5 {
        t.admin
            .create_user(&wire::UserCreate { email: format!("p{i}@example.com"), ..Default::default() })
            .await
            .unwrap();
    }
    let p1 = t.admin.list_users(&ListParams { per_page: Some(2), cursor: None }).await.unwrap();
    assert_eq!((p1.users.len(), p1.meta.total, p1.meta.links.prev.as_str()), (2, 6, ""));
    let p2 =
        t.admin.list_users(&ListParams { per_page: Some(2), cursor: Some(p1.meta.links.next.clone()) }).await.unwrap();
    let p3 =
        t.admin.list_users(&ListParams { per_page: Some(2), cursor: Some(p2.meta.links.next.clone()) }).await.unwrap();
    assert_eq!(p3.meta.links.next, "");
    let back =
        t.admin.list_users(&ListParams { per_page: Some(2), cursor: Some(p3.meta.links.prev.clone()) }).await.unwrap();
    assert_eq!(back.users, p2.users);
    let mut emails: Vec<String> = [p1, p2, p3].into_iter().flat_map(|p| p.users).map(|u| u.email).collect();
    assert_eq!(emails.remove(0), "admin@example.com");
    assert_eq!(emails, (0..5).map(|i| format!("p{i}@example.com")).collect::<Vec<_>>());
}

async fn crud_round_trips_for_roles_policies_groups_and_trusts(backend: Backend) {
    let t = spawn_app(backend).await;
    let (user, _) = t.user_with_policy("c@example.com", None).await;
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: "r".into(),
            description: "d".into(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap();
    assert_eq!(role.max_session_duration, 3_600);
    let updated = t
        .admin
        .update_role(
            &role.id,
            &wire::RoleInput {
                name: "r2".into(),
                description: "d2".into(),
                role_type: "assumable".into(),
                max_session_duration: Some(7_200),
            },
        )
        .await
        .unwrap();
    assert_eq!((updated.name.as_str(), updated.max_session_duration), ("r2", 7_200));
    assert_eq!(t.admin.get_role(&role.id).await.unwrap(), updated);

    let trust = t
        .admin
        .create_trust(&wire::TrustInput {
            role_id: role.id.clone(),
            trusted_user_id: Some(user.id.clone()),
            conditions: Some(wire::Conditions {
                ip_address: vec!["10.0.0.0/8".into(), "192.168.0.1".into()],
                time_of_day: Some(wire::TimeOfDay { start: 8, end: 18, ..Default::default() }),
                oidc_claims: None,
            }),
            valid_until: Some("2031-01-01T00:00:00+00:00".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(trust.conditions.ip_address, vec!["10.0.0.0/8", "192.168.0.1/32"]);
    assert_eq!(trust.valid_until.as_deref(), Some("2031-01-01T00:00:00Z"));
    assert_eq!(
        t.admin.list_trusts_by_role(&role.id, &ListParams::default()).await.unwrap().role_trusts,
        vec![trust.clone()]
    );
    // IP ranges can be cleared (a known Vultr provider bug we do not repeat).
    let cleared = t
        .admin
        .update_trust(
            &trust.id,
            &wire::TrustInput {
                role_id: role.id.clone(),
                trusted_user_id: Some(user.id.clone()),
                conditions: Some(Default::default()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        cleared.conditions.ip_address.is_empty()
            && cleared.conditions.time_of_day.is_none()
            && cleared.valid_until.is_none()
    );

    t.admin.delete_role(&role.id).await.unwrap();
    let gone = t.admin.get_role(&role.id).await.unwrap_err();
    assert!(
        matches!(&gone, ClientError::Api { status, body } if *status == StatusCode::NOT_FOUND && body.error.message == "Role not found"),
        "{gone}"
    );
    let gone = t.admin.get_trust(&trust.id).await.unwrap_err();
    assert!(gone.to_string().contains("Role trust not found"), "{gone}");

    let policy = t
        .admin
        .create_policy(&wire::PolicyInput { name: "p".into(), description: String::new(), policy_document: json!({"Version": "2012-10-20", "Statement": [{"Effect": "Allow", "Action": "iam.user.Read", "Resource": "*"}]}) })
        .await
        .unwrap();
    assert_eq!(policy.version, "2012-10-20");
    assert_eq!(policy.policy_document["Statement"][0]["Action"], json!(["iam.user.Read"]));
    t.admin.delete_policy(&policy.id).await.unwrap();
    assert!(t.admin.get_policy(&policy.id).await.unwrap_err().to_string().contains("Policy not found"));

    let group =
        t.admin.create_group(&wire::GroupInput { display_name: "g".into(), description: String::new() }).await.unwrap();
    let renamed = t
        .admin
        .update_group(&group.id, &wire::GroupInput { display_name: "g2".into(), description: "x".into() })
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "g2");
    t.admin.delete_group(&group.id).await.unwrap();
    assert!(t.admin.get_group(&group.id).await.unwrap_err().to_string().contains("Group not found"));
}

/// How many policies the organization has.
async fn policies(t: &TestApp) -> usize {
    t.admin.list_policies(&ListParams::default()).await.unwrap().policies.len()
}

/// A managed policy is at most 6 144 characters of compact JSON, as AWS's, and a statement
/// lists at most 200 resources: over either, create and update are a 400 naming the field, and
/// nothing is stored.
async fn a_managed_policy_is_at_most_6144_packed_characters(backend: Backend) {
    let t = spawn_app(backend).await;
    let body = |doc: &serde_json::Value| json!({"name": "sized", "policy_document": doc}).to_string();
    let at_limit = allow_of_packed_size(&["iam.group.List"], 6144);
    let (st, v) = t.admin.raw(Method::POST, "/v2/policies", Some(&body(&at_limit))).await.unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["policy"]["id"].as_str().unwrap().to_owned();
    let stored = t.admin.get_policy(&id).await.unwrap().policy_document;
    let before = policies(&t).await;

    let over = allow_of_packed_size(&["iam.group.List"], 6145);
    let many_resources =
        json!({"Statement": [{"Effect": "Allow", "Action": "iam.group.Read", "Resource": vec!["r"; 201]}]});
    for (doc, field, says) in [
        (&over, "policy_document", ["at most 6144 characters", "has 6145"]),
        (&many_resources, "policy_document.Statement[0].Resource", ["at most 200 resources", "lists 201"]),
    ] {
        for (method, path) in [(Method::POST, "/v2/policies".to_owned()), (Method::PUT, format!("/v2/policies/{id}"))] {
            let (st, v) = t.admin.raw(method.clone(), &path, Some(&body(doc))).await.unwrap();
            assert_eq!(st, StatusCode::BAD_REQUEST, "{method} {v}");
            assert_eq!(v["error"]["field"], field, "{v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(says.iter().all(|s| message.contains(s)), "{message}");
        }
    }
    assert_eq!(policies(&t).await, before, "a refused policy is not created");
    assert_eq!(t.admin.get_policy(&id).await.unwrap().policy_document, stored, "nor does it replace one");
}

/// The bounds are on writing: a policy stored before them (here written past the API: 60 000
/// characters, 296 actions in a statement) still loads, is shown and applies; only writing it
/// again must fit.
async fn a_policy_stored_before_the_bounds_still_loads_and_applies(backend: Backend) {
    let t = spawn_app(backend).await;
    let large = allow_of_packed_size(&["iam.group.List"], 60_000);
    let admin = t.app.authenticate(ADMIN_KEY, None).await.unwrap();
    let document = tessera_domain::policy::PolicyDocument::from_json(
        serde_json::from_value(large.clone()).unwrap(),
        "policy_document",
    )
    .unwrap();
    let input = tessera_app::PolicyInput { name: "old".into(), description: String::new(), document };
    let policy = t.app.create_policy(&admin, input).await.unwrap();
    let id = policy.id.to_string();

    let shown = t.admin.get_policy(&id).await.unwrap();
    assert_eq!(shown.policy_document["Statement"][0]["Action"], large["Statement"][0]["Action"]);
    let (user, client) = t.user_with_policy("old@example.com", None).await;
    assert!(client.list_groups(&ListParams::default()).await.is_err());
    t.admin.attach_policy_to_user(&id, &user.id).await.unwrap();
    client.list_groups(&ListParams::default()).await.expect("the stored policy applies");

    let again = wire::PolicyInput { name: "old".into(), description: String::new(), policy_document: large };
    let refused = t.admin.update_policy(&id, &again).await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST), "{refused}");
}

tessera_testkit::both_backends!(
    a_managed_policy_is_at_most_6144_packed_characters,
    a_policy_stored_before_the_bounds_still_loads_and_applies,
    healthz_needs_no_credentials,
    an_explicit_deny_wins_over_any_allow,
    permissions_come_from_the_user_and_its_groups_and_resources_scope_them,
    api_keys_are_shown_once_listed_without_secret_and_revocable,
    disabling_a_user_stops_its_keys_at_once_and_ends_its_sessions,
    the_501st_trust_of_a_role_still_applies,
    lists_page_with_cursors_both_ways,
    crud_round_trips_for_roles_policies_groups_and_trusts,
);

#[tokio::test]
async fn auth_check_answers_whether_the_caller_may() {
    let t = spawn_app(Backend::Sqlite).await;
    let (_, c) = t.user_with_policy("chk@example.com", Some(allow(&["iam.role.Read"]))).await;
    let (code, body) = c.raw(Method::GET, "/v2/auth/check?action=iam.role.Read&resource=abc", None).await.unwrap();
    assert_eq!((code, body["allowed"].as_bool()), (StatusCode::OK, Some(true)));
    let (code, body) = c.raw(Method::GET, "/v2/auth/check?action=iam.role.Delete", None).await.unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("iam.role.Delete"));
    let (code, body) = c.raw(Method::GET, "/v2/auth/check?action=not%20an%20action", None).await.unwrap();
    assert_eq!((code, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("action")));
}
