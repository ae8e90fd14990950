//! Cross-site request forgery against `/v2`, over real HTTP: a page on another site can make
//! a signed-in administrator's browser send requests carrying the session cookie. Such
//! requests must change nothing; the server's own pages (Origin, `Sec-Fetch-Site`, or the
//! `X-CSRF-Token` handed out at sign-in) and bearer-token clients keep working.

use reqwest::{Method, StatusCode};
use tessera_api_types as wire;
use tessera_client::ListParams;
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";
const EVIL: &str = "https://evil.example";

/// A second administrator who signs in with a password: the browser user of the attack.
async fn signed_in_admin(t: &TestApp) -> wire::SignInResponse {
    let (boss, _) = t.user_with_policy("boss@example.com", Some(allow(&["*"]))).await;
    t.admin
        .update_user(&boss.id, &wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    t.anonymous()
        .sign_in(&wire::SignInRequest {
            email: "boss@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap()
}

/// What the attack targets: a policy and a user it is not attached to.
async fn target(t: &TestApp) -> (String, String) {
    let (victim, _) = t.user_with_policy("victim@example.com", None).await;
    let policy = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "everything".into(),
            description: String::new(),
            policy_document: allow(&["*"]),
        })
        .await
        .unwrap();
    (policy.id, victim.id)
}

async fn attached(t: &TestApp, policy: &str) -> Vec<String> {
    t.admin.list_policy_users(policy, &ListParams::default()).await.unwrap().users.into_iter().map(|u| u.id).collect()
}

fn post(t: &TestApp, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().request(Method::POST, format!("{}{path}", t.url))
}

async fn cross_site_posts_with_an_admin_cookie_change_nothing(backend: Backend) {
    let t = spawn_app(backend).await;
    let admin = signed_in_admin(&t).await;
    let (policy, victim) = target(&t).await;
    let path = format!("/v2/policies/{policy}/users/{victim}");
    let cookie = format!("tessera_session={}", admin.token);
    let forged = [
        post(&t, &path).header("cookie", &cookie).header("origin", EVIL),
        post(&t, &path).header("cookie", &cookie).header("origin", "null"),
        post(&t, &path).header("cookie", &cookie).header("sec-fetch-site", "cross-site").header("origin", EVIL),
        post(&t, &path).header("cookie", &cookie).header("sec-fetch-site", "same-site"),
        // A form or script that sends no Origin (old browsers, some redirects) and no token.
        post(&t, &path).header("cookie", &cookie),
        post(&t, &path).header("cookie", &cookie).header("x-csrf-token", "guessed"),
    ];
    for (i, req) in forged.into_iter().enumerate() {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "forgery {i}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_site_request", "forgery {i}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("cross-site request refused"), "{body}");
        assert!(attached(&t, &policy).await.is_empty(), "forgery {i} attached the policy");
    }
    // The cookie-authenticated read still works: only state changes need the proof.
    let res = reqwest::Client::new().get(format!("{}/v2/users", t.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn the_servers_own_pages_and_bearer_clients_keep_working(backend: Backend) {
    let t = spawn_app(backend).await;
    let admin = signed_in_admin(&t).await;
    let (policy, victim) = target(&t).await;
    let path = format!("/v2/policies/{policy}/users/{victim}");
    let cookie = format!("tessera_session={}", admin.token);
    // The admin console: cookie plus the token from sign-in.
    let res = post(&t, &path).header("cookie", &cookie).header("x-csrf-token", &admin.csrf_token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(attached(&t, &policy).await, vec![victim.clone()]);
    let detach = reqwest::Client::new()
        .delete(format!("{}{path}", t.url))
        .header("cookie", &cookie)
        .header("origin", &t.url)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(detach.status(), StatusCode::NO_CONTENT, "a same-origin page needs no token");
    assert!(attached(&t, &policy).await.is_empty());
    // Bearer tokens (API key or the session's own token) are unaffected by browser headers.
    for token in [ADMIN_KEY, admin.token.as_str()] {
        let res = post(&t, &path).bearer_auth(token).header("origin", EVIL).send().await.unwrap();
        assert!(res.status().is_success(), "{token:.12}: {}", res.status());
    }
    assert_eq!(attached(&t, &policy).await, vec![victim]);
}

async fn a_foreign_page_cannot_sign_a_visitor_in(backend: Backend) {
    let t = spawn_app(backend).await;
    signed_in_admin(&t).await;
    let before = t.admin.raw(Method::GET, "/v2/iam/sessions?$count=true", None).await.unwrap().1["Count"].clone();
    let body = serde_json::json!({"email": "boss@example.com", "password": PASSWORD});
    for (name, value) in [("origin", EVIL), ("sec-fetch-site", "cross-site")] {
        let res = post(&t, "/v2/sessions").header(name, value).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(res.headers().get("set-cookie").is_none(), "no cookie for a cross-site sign-in");
    }
    let after = t.admin.raw(Method::GET, "/v2/iam/sessions?$count=true", None).await.unwrap().1["Count"].clone();
    assert_eq!(before, after, "no session was created");
    let res = post(&t, "/v2/sessions").header("origin", &t.url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "the server's own sign-in page works");
}

tessera_testkit::both_backends!(
    cross_site_posts_with_an_admin_cookie_change_nothing,
    the_servers_own_pages_and_bearer_clients_keep_working,
    a_foreign_page_cannot_sign_a_visitor_in,
);
