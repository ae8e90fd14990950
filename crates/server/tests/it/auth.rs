//! Cookie versus bearer authentication, the same-origin proof cookie-authenticated state
//! changes need, and `X-Forwarded-For` from trusted and untrusted peers.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_server::{ServerConfig, router, router_with};

use super::{ADMIN_KEY, call, fixture};

const PASSWORD: &str = "correct horse battery staple";

/// Creates `email` with a password and an allow-everything policy; returns its id.
async fn admin_user(r: &tessera_server::Api, email: &str) -> String {
    let (s, _, user) = call(Method::POST, "/v2/users")
        .bearer(ADMIN_KEY)
        .json(json!({"email": email, "first_name": "Lee", "last_name": "", "password": PASSWORD}))
        .send(r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    let doc = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let (s, _, policy) = call(Method::POST, "/v2/policies")
        .bearer(ADMIN_KEY)
        .json(json!({"name": format!("all-{email}"), "description": "", "policy_document": doc}))
        .send(r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{policy}");
    let (p, u) = (policy["policy"]["id"].as_str().unwrap(), user["user"]["id"].as_str().unwrap());
    let (s, _, _) = call(Method::POST, &format!("/v2/policies/{p}/users/{u}")).bearer(ADMIN_KEY).send(r).await;
    assert_eq!(s, StatusCode::CREATED);
    u.to_owned()
}

async fn groups(r: &tessera_server::Api) -> u64 {
    let (s, _, body) = call(Method::GET, "/v2/groups").bearer(ADMIN_KEY).send(r).await;
    assert_eq!(s, StatusCode::OK);
    body["meta"]["total"].as_u64().unwrap()
}

fn group(name: &str) -> Value {
    json!({"display_name": name, "description": ""})
}

#[tokio::test]
async fn sign_in_hands_out_a_session_cookie_and_a_readable_csrf_token() {
    let f = fixture().await;
    let r = router(f.app.clone());
    admin_user(&r, "lee@example.com").await;
    let (s, headers, body) = call(Method::POST, "/v2/sessions")
        .json(json!({"email": "lee@example.com", "password": PASSWORD}))
        .send(&r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (token, csrf) = (body["token"].as_str().unwrap(), body["csrf_token"].as_str().unwrap());
    assert!(!csrf.is_empty() && !csrf.contains(token));
    let cookies: Vec<&str> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = cookies.iter().find(|c| c.starts_with("tessera_session=")).expect("session cookie");
    assert!(session.starts_with(&format!("tessera_session={token};")) && session.contains("HttpOnly"), "{session}");
    let readable = cookies.iter().find(|c| c.starts_with("tessera_csrf=")).expect("csrf cookie");
    assert!(readable.starts_with(&format!("tessera_csrf={csrf};")) && !readable.contains("HttpOnly"), "{readable}");
    // Signing out clears both.
    let (s, headers, _) = call(Method::DELETE, "/v2/sessions/current").bearer(token).send(&r).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("tessera_session=;") && c.contains("Max-Age=0")), "{cleared:?}");
    assert!(cleared.iter().any(|c| c.starts_with("tessera_csrf=;") && c.contains("Max-Age=0")), "{cleared:?}");
}

#[tokio::test]
async fn cookie_and_bearer_both_authenticate_but_only_cookie_state_changes_need_a_same_origin_proof() {
    let f = fixture().await;
    let r = router(f.app.clone());
    let user = admin_user(&r, "lee@example.com").await;
    let (_, _, signed) = call(Method::POST, "/v2/sessions")
        .json(json!({"email": "lee@example.com", "password": PASSWORD}))
        .send(&r)
        .await;
    let (token, csrf) = (signed["token"].as_str().unwrap(), signed["csrf_token"].as_str().unwrap());

    // Reads: the cookie alone is enough, and so is the bearer header.
    for c in [
        call(Method::GET, "/v2/sessions/current").cookie(token),
        call(Method::GET, "/v2/sessions/current").bearer(token),
    ] {
        let (s, _, body) = c.send(&r).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["session"]["user_id"], user.as_str());
    }
    // The bearer header wins over the cookie: the admin key acts as the admin.
    let (s, _, body) = call(Method::GET, "/v2/sessions/current").cookie(token).bearer(ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an API key has no current session: {body}");

    // Cookie state changes without a proof, or with a cross-site one, are refused and change nothing.
    let refused = [
        call(Method::POST, "/v2/groups").cookie(token),
        call(Method::POST, "/v2/groups").cookie(token).header("origin", "https://evil.example"),
        call(Method::POST, "/v2/groups").cookie(token).header("sec-fetch-site", "cross-site"),
        call(Method::POST, "/v2/groups").cookie(token).header("x-csrf-token", "forged"),
        call(Method::POST, "/v2/groups")
            .cookie(token)
            .header("origin", "https://evil.example")
            .header("x-csrf-token", csrf),
    ];
    for (i, c) in refused.into_iter().enumerate() {
        let (s, _, body) = c.json(group(&format!("g{i}"))).send(&r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "case {i}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("cross-site request refused"), "{body}");
    }
    assert_eq!(groups(&r).await, 0, "no refused request created a group");

    // Same-origin proofs pass: the token, the Origin, Sec-Fetch-Site.
    let accepted = [
        call(Method::POST, "/v2/groups").cookie(token).header("x-csrf-token", csrf),
        call(Method::POST, "/v2/groups").cookie(token).header("origin", "http://tessera.test:8080"),
        call(Method::POST, "/v2/groups").cookie(token).header("sec-fetch-site", "same-origin"),
    ];
    for (i, c) in accepted.into_iter().enumerate() {
        let (s, _, body) = c.json(group(&format!("ok{i}"))).send(&r).await;
        assert_eq!(s, StatusCode::CREATED, "case {i}: {body}");
    }
    // Bearer calls are not affected, whatever the browser headers say.
    let (s, _, body) = call(Method::POST, "/v2/groups")
        .bearer(token)
        .header("origin", "https://evil.example")
        .json(group("b"))
        .send(&r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(groups(&r).await, 4);
}

#[tokio::test]
async fn a_cross_site_page_cannot_sign_a_visitor_in() {
    let f = fixture().await;
    let r = router(f.app.clone());
    admin_user(&r, "lee@example.com").await;
    let body = json!({"email": "lee@example.com", "password": PASSWORD});
    let (s, headers, err) =
        call(Method::POST, "/v2/sessions").header("origin", "https://evil.example").json(body.clone()).send(&r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    assert!(headers.get("set-cookie").is_none(), "no session cookie was set");
    let (s, _, _) =
        call(Method::POST, "/v2/sessions").header("sec-fetch-site", "cross-site").json(body.clone()).send(&r).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) =
        call(Method::POST, "/v2/sessions").header("origin", "http://tessera.test:8080").json(body).send(&r).await;
    assert_eq!(s, StatusCode::CREATED, "the server's own page may sign in");
}

async fn sign_in_address(r: &tessera_server::Api, peer: &str, forwarded: &str) -> String {
    let (s, _, body) = call(Method::POST, "/v2/sessions")
        .from(peer)
        .header("x-forwarded-for", forwarded)
        .json(json!({"email": "lee@example.com", "password": PASSWORD}))
        .send(r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["session"]["client_ip_address"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forwarded_for_counts_only_when_the_peer_is_a_trusted_proxy() {
    let f = fixture().await;
    let default = router(f.app.clone());
    admin_user(&default, "lee@example.com").await;
    assert_eq!(
        sign_in_address(&default, "127.0.0.1:5000", "198.51.100.7").await,
        "127.0.0.1",
        "by default no proxy is trusted, not even loopback"
    );
    let behind = router_with(
        f.app.clone(),
        ServerConfig { trusted_proxies: vec!["10.0.0.1/32".parse().unwrap()], ..Default::default() },
    );
    assert_eq!(sign_in_address(&behind, "10.0.0.1:5000", "198.51.100.7").await, "198.51.100.7");
    assert_eq!(sign_in_address(&behind, "10.0.0.2:5000", "198.51.100.7").await, "10.0.0.2");
}

/// A role trust's IP condition is checked against the client as sign-in and IP-bound tokens
/// see it: behind a trusted proxy, the forwarded address. Checked against the proxy's own
/// address, an internal range would let everyone behind an internal proxy in.
#[tokio::test]
async fn role_trust_ip_conditions_see_the_client_behind_a_trusted_proxy_not_the_proxy() {
    let f = fixture().await;
    let proxy = ServerConfig { trusted_proxies: vec!["10.0.0.1/32".parse().unwrap()], ..Default::default() };
    let r = router_with(f.app.clone(), proxy);
    let org = f.app.authenticate(ADMIN_KEY, None).await.unwrap().org_id;
    let user = admin_user(&r, "lee@example.com").await;
    let (s, _, role) = call(Method::POST, "/v2/roles")
        .bearer(ADMIN_KEY)
        .json(json!({"name": "ops", "role_type": "assumable"}))
        .send(&r)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{role}");
    let role = role["role"]["id"].as_str().unwrap().to_owned();
    let trust = json!({"role_id": role, "trusted_user_id": user, "conditions": {"ip_address": ["10.0.0.0/8"]}});
    let (s, _, body) = call(Method::POST, "/v2/role-trusts").bearer(ADMIN_KEY).json(trust).send(&r).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, _, signed) = call(Method::POST, "/v2/sessions")
        .json(json!({"email": "lee@example.com", "password": PASSWORD}))
        .send(&r)
        .await;
    let token = signed["token"].as_str().unwrap().to_owned();
    let assume = |client: &str| {
        call(Method::POST, "/v2/assumed-roles/assume")
            .from("10.0.0.1:5000")
            .header("x-forwarded-for", client)
            .bearer(&token)
            .json(json!({"user_id": user, "role_id": role, "session_name": "s1", "duration": 900}))
    };
    let (s, _, body) = assume("198.51.100.7").send(&r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the proxy is inside 10.0.0.0/8, the client is not: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("198.51.100.7"), "{body}");
    let (s, _, body) = assume("10.2.3.4").send(&r).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["assumed_role_session"]["source_ip"], "10.2.3.4", "{body}");

    // The STS form of the same call decides the same way.
    let sts = |client: &str| {
        let q = format!(
            "/v2/assumed-roles/compatibility/aws/sts?Action=AssumeRole&RoleArn=arn:aws:iam::{org}:role/{role}\
             &RoleSessionName=s2&DurationSeconds=900"
        );
        call(Method::POST, &q).from("10.0.0.1:5000").header("x-forwarded-for", client).bearer(&token)
    };
    let (s, _, xml) = sts("198.51.100.7").send_text(&r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{xml}");
    assert!(xml.contains("198.51.100.7"), "{xml}");
    let (s, _, xml) = sts("10.2.3.4").send_text(&r).await;
    assert_eq!(s, StatusCode::OK, "{xml}");
}

#[tokio::test]
async fn forward_auth_answers_local_and_trusted_callers_only() {
    let f = fixture().await;
    let r = router(f.app.clone());
    let (s, headers, _) = call(Method::GET, "/v2/auth/forward").from("127.0.0.1:5000").bearer(ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["x-tessera-user-email"], "admin@example.com");
    let (s, _, body) = call(Method::GET, "/v2/auth/forward").from("192.0.2.10:5000").bearer(ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let proxied = router_with(
        f.app.clone(),
        ServerConfig { trusted_proxies: vec!["192.0.2.10/32".parse().unwrap()], ..Default::default() },
    );
    let (s, _, _) =
        call(Method::GET, "/v2/auth/forward").from("192.0.2.10:5000").bearer(ADMIN_KEY).send(&proxied).await;
    assert_eq!(s, StatusCode::OK);
}
