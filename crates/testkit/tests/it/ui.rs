//! The admin console (`/ui`) over real HTTP: its security headers, its sign-in redirect that
//! stays inside the console, CSRF refusal of a cross-site form post, and no admin page for a
//! user without the permissions. The browser-driven test is `cargo xtask ui`.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use tessera_api_types as wire;
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "console password 1";

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A user with `policy` and a password, signed in through the console's form; its cookie.
async fn console_user(t: &TestApp, email: &str, policy: Option<serde_json::Value>) -> String {
    let (u, _) = t.user_with_policy(email, policy).await;
    t.admin
        .update_user(&u.id, &wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    let res = browser()
        .post(format!("{}/ui/login", t.url))
        .header("origin", &t.url)
        .form(&[("email", email), ("password", PASSWORD), ("next", "/ui/users")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tessera_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

/// The hidden CSRF field of a console page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("a csrf field") + "name=\"csrf_token\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

async fn pages_carry_a_strict_csp_and_no_inline_script(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    for path in ["/ui/login", "/ui/sessions", "/ui/users", "/ui/policies", "/ui/gateway", "/ui/settings"] {
        let res = browser().get(format!("{}{path}", t.url)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers().get(CONTENT_SECURITY_POLICY).expect("a CSP").to_str().unwrap().to_owned();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let html = res.text().await.unwrap();
        assert!(!html.contains("<script>") && !html.contains(" style="), "{path} has inline script or style");
        assert!(!html.contains("tessera_ls_"), "{path} shows a session token");
    }
}

async fn sign_in_goes_only_to_console_paths(backend: Backend) {
    let t = spawn_app(backend).await;
    let (u, _) = t.user_with_policy("boss@example.com", Some(allow(&["*"]))).await;
    t.admin
        .update_user(&u.id, &wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    for (next, expected) in [
        ("/ui/users?x=1", "/ui/users?x=1"),
        ("//evil.example/ui", "/ui/sessions"),
        ("/\\evil.example", "/ui/sessions"),
        ("https://evil.example/ui/", "/ui/sessions"),
        ("/ui//evil.example", "/ui/sessions"),
        ("/v2/users", "/ui/sessions"),
        ("/ui/\t/evil.example", "/ui/sessions"),
    ] {
        let res = browser()
            .post(format!("{}/ui/login", t.url))
            .header("origin", &t.url)
            .form(&[("email", "boss@example.com"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(res.headers()[LOCATION], expected, "next={next:?}");
    }
}

async fn a_cross_site_form_post_changes_nothing(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let page = browser().get(format!("{}/ui/users", t.url)).header("cookie", &cookie).send().await.unwrap();
    let token = csrf_of(&page.text().await.unwrap());
    let create = |origin: Option<&str>, token: &str| {
        let mut req = browser().post(format!("{}/ui/users", t.url)).header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.form(&[("email", "mallory@example.com"), ("csrf_token", token)])
    };
    // Another site's page: refused by Origin even with the right token (it cannot know it,
    // but the Origin rule alone must hold), and by the token when no browser header says more.
    let res = create(Some("https://evil.example"), &token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = create(None, "forged").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = create(Some(&t.url), "").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the console's own origin still needs the form's token");
    let users = t.admin.list_users(&Default::default()).await.unwrap().users;
    assert!(users.iter().all(|u| u.email != "mallory@example.com"), "no user was created");
    let res = create(Some(&t.url), &token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the console's own form works");
}

async fn a_user_without_permissions_sees_no_admin_page(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "nobody@example.com", None).await;
    for path in ["/ui/sessions", "/ui/users", "/ui/policies", "/ui/gateway", "/ui/settings"] {
        let res = browser().get(format!("{}{path}", t.url)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        let html = res.text().await.unwrap();
        assert!(!html.contains("admin@"), "{path} shows nothing of the organization");
    }
    let anonymous = browser().get(format!("{}/ui/users", t.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()[LOCATION], "/ui/login?next=%2Fui%2Fusers");
}

async fn a_bad_filter_is_answered_with_its_position(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let res = browser()
        .get(format!("{}/ui/sessions?filter=status%20eq%20%27Active%27%20and%20kind%20eq", t.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("$filter error at position 30"), "{html}");
}

/// The live counts come from one `$apply` grouping and show each kind and status.
async fn counts_by_kind_and_status_are_live(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let _second = console_user(&t, "ops@example.com", Some(allow(&["*"]))).await;
    let counts = |cookie: String| {
        let url = format!("{}/ui/sessions/counts", t.url);
        async move {
            let res = browser().get(url).header("cookie", cookie).header("hx-request", "true").send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.unwrap()
        }
    };
    let html = counts(cookie.clone()).await;
    assert!(html.contains(r#"data-kind="login" data-status="Active">2<"#), "{html}");
    assert!(html.contains(r#"data-kind="login" data-status="Terminated">0<"#), "{html}");
    let all = t.admin.query_sessions(&[("$filter", "kind eq 'login'")]).await.unwrap();
    let moid = all.results.unwrap()[1]["moid"].as_str().unwrap().to_owned();
    t.admin.terminate_session(&moid).await.unwrap();
    let html = counts(cookie).await;
    assert!(html.contains(r#"data-kind="login" data-status="Terminated">1<"#), "{html}");
}

tessera_testkit::both_backends!(
    counts_by_kind_and_status_are_live,
    pages_carry_a_strict_csp_and_no_inline_script,
    sign_in_goes_only_to_console_paths,
    a_cross_site_form_post_changes_nothing,
    a_user_without_permissions_sees_no_admin_page,
    a_bad_filter_is_answered_with_its_position,
);
