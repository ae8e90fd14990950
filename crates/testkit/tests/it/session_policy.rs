//! Session policies (AWS STS has them, Vultr does not): an inline `policy` at assume bounds
//! the session to the role's permissions intersected with it, never more; the session record
//! shows it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, allow, allow_of_packed_size, spawn_app};

struct Setup {
    user: wire::UserView,
    client: Client,
    key: String,
    role: String,
}

/// A user allowed to assume, trusted by an assumable role whose policy allows listing users
/// and groups.
async fn setup(t: &TestApp) -> Setup {
    let (user, client) = t.user_with_policy("dev@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let key = wire::ApiKeyCreate { name: "k".into(), date_expire: None };
    let key = t.admin.create_api_key(&user.id, &key).await.unwrap().api_key.unwrap();
    let role = t
        .admin
        .create_role(&wire::RoleInput {
            name: "lister".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap();
    let policy = wire::PolicyInput {
        name: "lists".into(),
        description: String::new(),
        policy_document: allow(&["iam.user.List", "iam.group.List"]),
    };
    let policy = t.admin.create_policy(&policy).await.unwrap();
    t.admin.attach_policy_to_role(&role.id, &policy.id).await.unwrap();
    let trust =
        wire::TrustInput { role_id: role.id.clone(), trusted_user_id: Some(user.id.clone()), ..Default::default() };
    t.admin.create_trust(&trust).await.unwrap();
    Setup { user, client, key, role: role.id }
}

async fn assume(s: &Setup, policy: Option<Value>) -> Result<wire::AssumedRoleView, tessera_client::ClientError> {
    s.client
        .assume_role(&wire::AssumeRequest {
            user_id: s.user.id.clone(),
            role_id: s.role.clone(),
            session_name: "bounded".into(),
            policy,
            ..Default::default()
        })
        .await
}

async fn lists(c: &Client) -> (bool, bool, bool) {
    let p = ListParams::default();
    (c.list_users(&p).await.is_ok(), c.list_groups(&p).await.is_ok(), c.list_roles(&p).await.is_ok())
}

async fn a_session_policy_bounds_the_roles_permissions(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let plain = assume(&s, None).await.unwrap();
    assert_eq!(lists(&t.client(plain.session_token.as_deref().unwrap())).await, (true, true, false), "the role alone");
    assert_eq!(plain.policy, None);

    // Allowed by the role but not by the session policy: 403. Allowed by the session policy
    // but not by the role: 403 as well (never more than the role).
    let bounded = assume(&s, Some(allow(&["iam.user.List", "iam.role.List"]))).await.unwrap();
    let session = t.client(bounded.session_token.as_deref().unwrap());
    assert_eq!(lists(&session).await, (true, false, false));
    let refused = session.list_groups(&ListParams::default()).await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::FORBIDDEN));
    // A deny in the session policy wins over the role's allow.
    let deny = json!({"Version": "2026-03-20", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam.user.List", "Resource": "*"}]});
    let denied = assume(&s, Some(deny)).await.unwrap();
    assert_eq!(lists(&t.client(denied.session_token.as_deref().unwrap())).await, (false, true, false));

    // The session record shows it, to the session itself and to an administrator.
    let seen = t.admin.get_assumed_role(&bounded.id).await.unwrap();
    let shown = seen.policy.expect("the session policy is on the record");
    assert_eq!(shown["Statement"][0]["Action"], json!(["iam.user.List", "iam.role.List"]), "{shown}");
    assert_eq!(bounded.policy, Some(shown));

    // A malformed policy is refused before anything is written, naming the field.
    let (st, v) = s
        .client
        .raw(
            Method::POST,
            "/v2/assumed-roles/assume",
            Some(
                &json!({"user_id": s.user.id, "role_id": s.role, "session_name": "x",
                        "policy": {"Statement": [{"Effect": "Perhaps", "Action": "*"}]}})
                .to_string(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["field"].as_str().unwrap().starts_with("policy"), "{v}");
}

/// STS's `Policy` parameter is the same session policy.
async fn sts_takes_a_session_policy(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let org = t.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id;
    let arn = format!("arn:aws:iam::{org}:role/{}", s.role);
    let policy = allow(&["iam.user.List"]).to_string();
    let form = [("Action", "AssumeRole"), ("RoleArn", &arn), ("RoleSessionName", "bounded"), ("Policy", &policy)];
    let url = format!("{}/v2/assumed-roles/compatibility/aws/sts", t.url);
    let res = reqwest::Client::new().post(&url).bearer_auth(&s.key).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let xml = res.text().await.unwrap();
    // As STS: the percentage of the 2 048 characters the packed policy uses, rounded up.
    let percent = (policy.len() * 100).div_ceil(2048);
    assert!(percent > 1 && xml.contains(&format!("<PackedPolicySize>{percent}</PackedPolicySize>")), "{xml}");
    let token = xml.split("<SessionToken>").nth(1).unwrap().split('<').next().unwrap();
    assert_eq!(lists(&t.client(token)).await, (true, false, false));
    let bad = [("Action", "AssumeRole"), ("RoleArn", &arn), ("RoleSessionName", "bad"), ("Policy", "{not json")];
    let res = reqwest::Client::new().post(&url).bearer_auth(&s.key).form(&bad).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("<Code>MalformedPolicyDocument</Code>"));
}

/// How many role sessions the setup's user has.
async fn sessions(t: &TestApp, s: &Setup) -> usize {
    t.admin.list_user_assumed_roles(&s.user.id, &ListParams::default()).await.unwrap().assumed_role_sessions.len()
}

/// `POST /v2/assumed-roles/assume` for the setup's user with `policy` written as given.
async fn assume_raw(s: &Setup, policy: &str) -> (StatusCode, Value) {
    let body = format!(
        r#"{{"user_id": "{}", "role_id": "{}", "session_name": "sized", "policy": {policy}}}"#,
        s.user.id, s.role
    );
    s.client.raw(Method::POST, "/v2/assumed-roles/assume", Some(&body)).await.unwrap()
}

/// A session policy is at most 2 048 characters of compact JSON, as AWS's: one more is a 400
/// naming `policy` that makes no session; whitespace is not counted.
async fn a_session_policy_is_at_most_2048_packed_characters(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let at_limit = allow_of_packed_size(&["iam.user.List"], 2048);
    let (st, v) = assume_raw(&s, &at_limit.to_string()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let token = v["assumed_role_session"]["session_token"].as_str().unwrap();
    assert_eq!(lists(&t.client(token)).await, (true, false, false), "the policy applies");
    // Spread over lines and indented it is far longer, and still 2 048 packed characters.
    let pretty = serde_json::to_string_pretty(&at_limit).unwrap();
    assert!(pretty.len() > 2100, "{}", pretty.len());
    let (st, v) = assume_raw(&s, &pretty).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let before = sessions(&t, &s).await;
    assert_eq!(before, 2);
    let over = allow_of_packed_size(&["iam.user.List"], 2049);
    for text in [over.to_string(), serde_json::to_string_pretty(&over).unwrap()] {
        let (st, v) = assume_raw(&s, &text).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["field"], "policy", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("at most 2048 characters") && message.contains("has 2049"), "{message}");
    }
    // A statement of the session policy lists at most 200 actions (far below the size).
    let many = json!({"Statement": [{"Effect": "Allow", "Action": vec!["a"; 201]}]});
    let (st, v) = assume_raw(&s, &many.to_string()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "policy.Statement[0].Action", "{v}");
    assert_eq!(sessions(&t, &s).await, before, "a refused session policy makes no session");
}

/// Over STS, a session policy over 2 048 packed characters is `PackedPolicyTooLarge`, as on
/// AWS, and makes no session.
async fn sts_refuses_a_packed_policy_too_large(backend: Backend) {
    let t = spawn_app(backend).await;
    let s = setup(&t).await;
    let org = t.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id;
    let arn = format!("arn:aws:iam::{org}:role/{}", s.role);
    let url = format!("{}/v2/assumed-roles/compatibility/aws/sts", t.url);
    let sts = |policy: String| {
        let form = [("Action", "AssumeRole"), ("RoleArn", &arn), ("RoleSessionName", "sized"), ("Policy", &policy)];
        let req = reqwest::Client::new().post(&url).bearer_auth(&s.key).form(&form);
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let pretty = serde_json::to_string_pretty(&allow_of_packed_size(&["iam.user.List"], 2048)).unwrap();
    let (st, xml) = sts(pretty).await;
    assert_eq!(st, StatusCode::OK, "{xml}");
    assert!(xml.contains("<PackedPolicySize>100</PackedPolicySize>"), "all of the bound: {xml}");
    assert_eq!(sessions(&t, &s).await, 1);
    let (st, xml) = sts(allow_of_packed_size(&["iam.user.List"], 2049).to_string()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{xml}");
    assert!(xml.contains("<Code>PackedPolicyTooLarge</Code>"), "{xml}");
    assert!(xml.contains("at most 2048 characters") && xml.contains("has 2049"), "{xml}");
    // Too many actions in a statement is a malformed document, not a packed size.
    let (st, xml) = sts(json!({"Statement": [{"Effect": "Allow", "Action": vec!["a"; 201]}]}).to_string()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{xml}");
    assert!(xml.contains("<Code>MalformedPolicyDocument</Code>"), "{xml}");
    assert_eq!(sessions(&t, &s).await, 1, "a refused session policy makes no session");
}

tessera_testkit::both_backends!(
    a_session_policy_bounds_the_roles_permissions,
    sts_takes_a_session_policy,
    a_session_policy_is_at_most_2048_packed_characters,
    sts_refuses_a_packed_policy_too_large,
);
