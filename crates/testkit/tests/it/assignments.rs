//! Assignable roles: assigned to users and groups, their policies join the users' (at once,
//! on every node), only assignable roles can be assigned and only assumable ones assumed, and
//! the caller's own view (`/v2/users/me…`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

async fn call(c: &Client, method: Method, path: &str) -> (StatusCode, Value) {
    c.raw(method, path, None).await.unwrap()
}

async fn can_list_users(c: &Client) -> bool {
    c.list_users(&ListParams::default()).await.is_ok()
}

struct Setup {
    user: wire::UserView,
    client: Client,
    role: String,
    policy: String,
}

/// A user with no policy of its own (and a password), and an assignable role whose policy
/// allows listing users.
async fn setup(t: &TestApp) -> Setup {
    let (user, client) = t.user_with_policy("ann@example.com", None).await;
    let pw = wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() };
    t.admin.update_user(&user.id, &pw).await.unwrap();
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: "user-reader".into(),
            description: "reads users".into(),
            role_type: "assignable".into(),
            max_session_duration: None,
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
    Setup { user, client, role: role.id, policy: policy.id }
}

async fn a_role_assigned_to_a_user_grants_its_policies_until_unassigned(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    assert!(!can_list_users(&s.client).await, "no policy of its own");
    let path = format!("/v2/roles/{}/users/{}", s.role, s.user.id);

    let (st, v) = call(&t.admin, Method::POST, &path).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let a = &v["assignment"];
    assert_eq!((a["user_id"].as_str(), a["role_id"].as_str()), (Some(s.user.id.as_str()), Some(s.role.as_str())));
    assert_eq!((a["role_name"].as_str(), a["role_type"].as_str()), (Some("user-reader"), Some("assignable")));
    let (st, _) = call(&t.admin, Method::PUT, &path).await;
    assert_eq!(st, StatusCode::OK, "assigning again changes nothing");
    assert!(can_list_users(&s.client).await, "the assigned role's policy counts at once");

    let (st, v) = call(&t.admin, Method::GET, &format!("/v2/roles/{}/users", s.role)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["meta"]["total"], 1);
    assert_eq!(v["assignments"][0]["user_id"], s.user.id.as_str());

    // The caller's own view.
    let (_, me) = call(&s.client, Method::GET, "/v2/users/me").await;
    assert_eq!(me["user"]["email"], "ann@example.com");
    let (_, roles) = call(&s.client, Method::GET, "/v2/users/me/roles").await;
    assert_eq!(roles["roles"]["direct"][0]["role_id"], s.role.as_str(), "{roles}");
    assert_eq!(roles["roles"]["inherited"], json!([]));
    let (_, policies) = call(&s.client, Method::GET, "/v2/users/me/policies").await;
    let all = &policies["policies"]["all"];
    assert_eq!(all.as_array().unwrap().len(), 1, "{policies}");
    assert_eq!((all[0]["id"].as_str(), all[0]["source"].as_str()), (Some(s.policy.as_str()), Some("role")));
    assert_eq!(all[0]["from_role"], s.role.as_str());

    // A login session's `role` names the user's assigned roles.
    let signed_in = t
        .anonymous()
        .sign_in(&wire::SignInRequest {
            email: "ann@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap();
    assert_eq!(signed_in.session.role, "user-reader");

    let (st, _) = call(&t.admin, Method::DELETE, &path).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(!can_list_users(&s.client).await, "unassigned: the policy is gone at once");
    let (st, _) = call(&t.admin, Method::DELETE, &path).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let trail = t.admin.raw(Method::GET, "/v2/audit-events?$filter=target_kind eq 'role'", None).await.unwrap().1;
    let actions: Vec<&str> = trail["Results"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"iam.role.AttachUser") && actions.contains(&"iam.role.DetachUser"), "{trail}");
}

async fn a_role_assigned_to_a_group_reaches_its_members(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let ops = wire::GroupInput { display_name: "ops".into(), description: String::new() };
    let group = t.admin.create_group(&ops).await.unwrap();
    t.admin.add_group_member(&group.id, &s.user.id).await.unwrap();
    let (st, v) = call(&t.admin, Method::PUT, &format!("/v2/roles/{}/groups/{}", s.role, group.id)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["assignment"]["group_name"], "ops");
    assert!(can_list_users(&s.client).await, "a member holds the group's role");

    let (_, groups) = call(&s.client, Method::GET, "/v2/users/me/groups").await;
    assert_eq!(groups["groups"][0]["id"], group.id.as_str(), "{groups}");
    let (_, roles) = call(&s.client, Method::GET, "/v2/users/me/roles").await;
    assert_eq!(roles["roles"]["direct"], json!([]));
    assert_eq!(roles["roles"]["inherited"][0]["group_id"], group.id.as_str(), "{roles}");
    let (_, listed) = call(&t.admin, Method::GET, &format!("/v2/roles/{}/groups", s.role)).await;
    assert_eq!(listed["assignments"][0]["group_id"], group.id.as_str());

    t.admin.remove_group_member(&group.id, &s.user.id).await.unwrap();
    assert!(!can_list_users(&s.client).await, "no longer a member");
}

async fn only_assignable_roles_are_assigned_and_only_assumable_ones_assumed(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let assumable = t
        .admin
        .create_role(&wire::RoleInput {
            name: "deployer".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap();
    let (st, v) = call(&t.admin, Method::POST, &format!("/v2/roles/{}/users/{}", assumable.id, s.user.id)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "role_id");
    let (st, _) = call(&t.admin, Method::POST, &format!("/v2/roles/{}/users/{}", s.role, t.admin_id)).await;
    assert_eq!(st, StatusCode::CREATED);
    let assume = wire::AssumeRequest {
        user_id: t.admin_id.clone(),
        role_id: s.role.clone(),
        session_name: "x".into(),
        auth_method: None,
        duration: None,
        ip_address: None,
        context: None,
        oidc_issuer_id: None,
        policy: None,
    };
    let refused = t.admin.assume_role(&assume).await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST), "an assignable role cannot be assumed");
    // Unknown objects, and a caller without the action.
    let ghost = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let (st, _) = call(&t.admin, Method::POST, &format!("/v2/roles/{}/users/{ghost}", s.role)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(&t.admin, Method::POST, &format!("/v2/roles/{ghost}/users/{}", s.user.id)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(&s.client, Method::POST, &format!("/v2/roles/{}/users/{}", s.role, s.user.id)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!can_list_users(&s.client).await);
}

mod across_nodes {
    use super::*;

    /// On PostgreSQL, an assignment made through one node reaches another node's cached
    /// permissions through the change feed.
    async fn an_assignment_reaches_the_other_node(backend: Backend) {
        let a = spawn_app(backend).await;
        let b = a.another_node().await;
        let s = setup(&a).await;
        let on_b = b.client(&key_of(&a, &s.user.id).await);
        assert!(!can_list_users(&on_b).await, "node B caches the permissions without the role");
        let (st, _) = call(&a.admin, Method::POST, &format!("/v2/roles/{}/users/{}", s.role, s.user.id)).await;
        assert_eq!(st, StatusCode::CREATED);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !can_list_users(&on_b).await {
            assert!(Instant::now() < deadline, "node B never saw the assignment");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn key_of(t: &TestApp, user: &str) -> String {
        let key =
            t.admin.create_api_key(user, &wire::ApiKeyCreate { name: "b".into(), date_expire: None }).await.unwrap();
        key.api_key.unwrap()
    }

    tessera_testkit::postgres_only!(an_assignment_reaches_the_other_node);
}

tessera_testkit::both_backends!(
    a_role_assigned_to_a_user_grants_its_policies_until_unassigned,
    a_role_assigned_to_a_group_reaches_its_members,
    only_assignable_roles_are_assigned_and_only_assumable_ones_assumed,
);
