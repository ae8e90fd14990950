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

/// The value of the cookie `name` an answer sets (`Set-Cookie: name=value; …`).
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
}

/// The hidden field `name` of a page.
fn hidden_field(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + "name=\"\" value=\"".len()..];
    rest.split('"').next().unwrap().to_owned()
}

/// A browser that opened the sign-in page: its token cookie and the form's hidden token.
async fn sign_in_page(t: &TestApp) -> (String, String) {
    let res = browser().get(format!("{}/ui/login", t.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = set_cookie(&res, "tessera_csrf_login").expect("the sign-in page sets its token cookie");
    let raw = res.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let raw = raw.iter().find(|c| c.starts_with("tessera_csrf_login=")).unwrap();
    assert!(raw.contains("SameSite=Strict") && raw.contains("Path=/ui/login"), "{raw}");
    let field = hidden_field(&res.text().await.unwrap(), "login_token");
    assert_eq!(cookie, field, "the form echoes its cookie");
    (cookie, field)
}

/// Login CSRF on the console's form, from a browser that sends neither `Origin` nor
/// `Sec-Fetch-Site` (older browsers, some privacy settings): a foreign page's auto-submitted
/// form carries no token, or at best one of its own browser's, and signs nobody in; the
/// console's own form, whose token the sign-in page put in a cookie and a hidden field, does.
async fn the_sign_in_form_without_origin_headers_needs_its_token(backend: Backend) {
    let t = spawn_app(backend).await;
    let (u, _) = t.user_with_policy("mallory@example.com", Some(allow(&["*"]))).await;
    t.admin
        .update_user(&u.id, &wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    let sessions = || async {
        t.admin.raw(reqwest::Method::GET, "/v2/iam/sessions?$count=true", None).await.unwrap().1["Count"].clone()
    };
    let before = sessions().await;
    let post = |cookie: Option<&str>, token: Option<&str>| {
        let mut req = browser().post(format!("{}/ui/login", t.url));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("tessera_csrf_login={c}"));
        }
        let mut form = vec![("email", "mallory@example.com"), ("password", PASSWORD), ("next", "/ui/users")];
        if let Some(tk) = token {
            form.push(("login_token", tk));
        }
        req.form(&form).send()
    };
    // What a foreign page's auto-submitted form sends: neither header, no token.
    let res = post(None, None).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a form with neither header nor token signs nobody in");
    assert!(set_cookie(&res, "tessera_session").is_none());
    let (victim_cookie, _) = sign_in_page(&t).await;
    let (_, attacker_token) = sign_in_page(&t).await;
    assert_ne!(victim_cookie, attacker_token, "every browser gets its own token");
    for (what, cookie, token) in [
        ("no token", Some(victim_cookie.as_str()), None),
        ("an empty token", Some(victim_cookie.as_str()), Some("")),
        ("another browser's token", Some(victim_cookie.as_str()), Some(attacker_token.as_str())),
        ("a token without its cookie", None, Some(attacker_token.as_str())),
    ] {
        let res = post(cookie, token).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(set_cookie(&res, "tessera_session").is_none(), "{what}: no session cookie");
        let html = res.text().await.unwrap();
        assert!(html.contains("cross-site request refused"), "{what}: {html}");
    }
    assert_eq!(sessions().await, before, "no session was created");

    let (cookie, token) = sign_in_page(&t).await;
    let res = post(Some(&cookie), Some(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the console's own form signs in");
    assert_eq!(res.headers()[LOCATION], "/ui/users");
    assert!(set_cookie(&res, "tessera_session").is_some_and(|c| !c.is_empty()));
    assert_eq!(set_cookie(&res, "tessera_csrf_login").as_deref(), Some(""), "the used token is cleared");
    // A browser that says cross-site is refused even with a matching pair.
    let (cookie, token) = sign_in_page(&t).await;
    let res = browser()
        .post(format!("{}/ui/login", t.url))
        .header("cookie", format!("tessera_csrf_login={cookie}"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "mallory@example.com"), ("password", PASSWORD), ("login_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// A wrong password re-shows the form with the browser's same token, so the retry works.
async fn a_failed_sign_in_keeps_the_forms_token(backend: Backend) {
    let t = spawn_app(backend).await;
    let (u, _) = t.user_with_policy("boss@example.com", Some(allow(&["*"]))).await;
    t.admin
        .update_user(&u.id, &wire::UserUpdate { password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    let (cookie, token) = sign_in_page(&t).await;
    let attempt = |password: &'static str, token: String| {
        browser()
            .post(format!("{}/ui/login", t.url))
            .header("cookie", format!("tessera_csrf_login={cookie}"))
            .form(&[("email", "boss@example.com"), ("password", password), ("login_token", token.as_str())])
            .send()
    };
    let res = attempt("wrong password", token.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(set_cookie(&res, "tessera_csrf_login").as_deref(), Some(cookie.as_str()));
    let again = hidden_field(&res.text().await.unwrap(), "login_token");
    assert_eq!(again, token);
    let res = attempt(PASSWORD, again).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

/// The console's "assume role" passes the browser's address, as `POST
/// /v2/assumed-roles/assume` does: a trust limited to the test client's network admits it and
/// the session records the address; one limited to another network refuses.
async fn the_consoles_assume_checks_and_records_the_client_address(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let (dev, _) = t.user_with_policy("dev@example.com", Some(allow(&["iam.role.AssumeRole"]))).await;
    let trusted = |role: &str, cidr: &str| wire::TrustInput {
        role_id: role.into(),
        trusted_user_id: Some(dev.id.clone()),
        conditions: Some(wire::Conditions { ip_address: vec![cidr.into()], ..Default::default() }),
        ..Default::default()
    };
    let local = t.admin.create_role(&role_input("from-loopback", "assumable")).await.unwrap();
    t.admin.create_trust(&trusted(&local.id, "127.0.0.0/8")).await.unwrap();
    let remote = t.admin.create_role(&role_input("from-10", "assumable")).await.unwrap();
    t.admin.create_trust(&trusted(&remote.id, "10.0.0.0/8")).await.unwrap();

    let user_url = format!("{}/ui/users/{}", t.url, dev.id);
    let page = browser().get(&user_url).header("cookie", &cookie).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let assume = |role: &str| {
        browser()
            .post(format!("{user_url}/assume"))
            .header("cookie", &cookie)
            .header("origin", &t.url)
            .form(&[("role_id", role), ("session_name", "console"), ("csrf_token", csrf.as_str())])
            .send()
    };
    let res = assume(&local.id).await.unwrap();
    let status = res.status();
    let html = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("tessera_rs_"), "the new session's token is shown once");
    let sessions = t.admin.list_user_assumed_roles(&dev.id, &Default::default()).await.unwrap();
    let session = sessions.assumed_role_sessions.iter().find(|s| s.role_id == local.id).expect("a session");
    assert_eq!(session.source_ip, "127.0.0.1");
    assert_eq!(session.conditions_met, vec!["ip_address".to_owned()]);

    let res = assume(&remote.id).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("ip_address not met: 127.0.0.1"), "{html}");
    let sessions = t.admin.list_user_assumed_roles(&dev.id, &Default::default()).await.unwrap();
    assert!(
        sessions.assumed_role_sessions.iter().all(|s| s.role_id != remote.id),
        "no session from 10.0.0.0/8's trust"
    );
}

/// The ids of the users (`what` "users") or groups a role is assigned to, as `/v2` lists them.
async fn assigned(t: &TestApp, role: &str, what: &str) -> Vec<String> {
    let (status, body) = t.admin.raw(reqwest::Method::GET, &format!("/v2/roles/{role}/{what}"), None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = if what == "users" { "user_id" } else { "group_id" };
    body["assignments"].as_array().unwrap().iter().map(|a| a[key].as_str().unwrap().to_owned()).collect()
}

fn role_input(name: &str, role_type: &str) -> wire::RoleInput {
    wire::RoleInput {
        name: name.into(),
        description: String::new(),
        role_type: role_type.into(),
        max_session_duration: None,
    }
}

/// Assigning through the console's form is what `/v2` lists; unassigning takes it back; an
/// assumable role is refused with the server's message beside the form.
async fn a_role_is_assigned_and_unassigned_through_the_console(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let (alice, _) = t.user_with_policy("alice@example.com", None).await;
    let group = t
        .admin
        .create_group(&wire::GroupInput { display_name: "ops".into(), description: String::new() })
        .await
        .unwrap();
    let role = t.admin.create_role(&role_input("auditor", "assignable")).await.unwrap();
    let base = format!("{}/ui/roles/{}/assignments", t.url, role.id);
    let page = browser().get(&base).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let token = csrf_of(&page.text().await.unwrap());
    let post = |form: Vec<(&'static str, String)>, url: String| {
        browser().post(url).header("cookie", &cookie).header("origin", &t.url).form(&form).send()
    };

    let res =
        post(vec![("csrf_token", token.clone()), ("to", "user".into()), ("user_id", alice.id.clone())], base.clone())
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(assigned(&t, &role.id, "users").await, vec![alice.id.clone()]);
    let res =
        post(vec![("csrf_token", token.clone()), ("to", "group".into()), ("group_id", group.id.clone())], base.clone())
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(assigned(&t, &role.id, "groups").await, vec![group.id.clone()]);
    let html = browser().get(&base).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains(r#"aria-label="Unassign alice@example.com""#) && html.contains(r#"aria-label="Unassign ops""#),
        "the page lists both: {html}"
    );

    let res = post(vec![("csrf_token", token.clone())], format!("{base}/users/{}/remove", alice.id)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(assigned(&t, &role.id, "users").await.is_empty(), "unassigned");
    let res = post(vec![("csrf_token", token.clone())], format!("{base}/groups/{}/remove", group.id)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(assigned(&t, &role.id, "groups").await.is_empty(), "unassigned");

    let assumable = t.admin.create_role(&role_input("deployer", "assumable")).await.unwrap();
    let res = post(
        vec![("csrf_token", token.clone()), ("to", "user".into()), ("user_id", alice.id.clone())],
        format!("{}/ui/roles/{}/assignments", t.url, assumable.id),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"id="assign-user-error""#) && html.contains("only assignable roles can be assigned"),
        "{html}"
    );
    assert!(assigned(&t, &assumable.id, "users").await.is_empty());
}

/// Deleting a user, a group and a role through the console's confirmation forms.
async fn delete_through_the_console(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let (alice, _) = t.user_with_policy("alice@example.com", None).await;
    let group = t
        .admin
        .create_group(&wire::GroupInput { display_name: "ops".into(), description: String::new() })
        .await
        .unwrap();
    let role = t.admin.create_role(&role_input("auditor", "assignable")).await.unwrap();
    for (confirm, gone_to) in [
        (format!("/ui/users/{}/delete", alice.id), "/ui/users?done=deleted"),
        (format!("/ui/groups/{}/delete", group.id), "/ui/groups?done=deleted"),
        (format!("/ui/roles/{}/delete", role.id), "/ui/roles?done=deleted"),
    ] {
        let page = browser().get(format!("{}{confirm}", t.url)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{confirm}");
        let html = page.text().await.unwrap();
        assert!(html.contains("This cannot be undone."), "{html}");
        let res = browser()
            .post(format!("{}{confirm}", t.url))
            .header("cookie", &cookie)
            .header("origin", &t.url)
            .form(&[("csrf_token", csrf_of(&html))])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{confirm}");
        assert_eq!(res.headers()[LOCATION], gone_to);
    }
    assert!(t.admin.get_user(&alice.id).await.unwrap_err().is_not_found(), "the user is gone");
    let (status, _) = t.admin.raw(reqwest::Method::GET, &format!("/v2/groups/{}", group.id), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "the group is gone");
    let (status, _) = t.admin.raw(reqwest::Method::GET, &format!("/v2/roles/{}", role.id), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "the role is gone");
}

/// A cross-site post to the assign form (no CSRF token, or another site's Origin) assigns nothing.
async fn a_cross_site_assign_changes_nothing(backend: Backend) {
    let t = spawn_app(backend).await;
    let cookie = console_user(&t, "boss@example.com", Some(allow(&["*"]))).await;
    let (mallory, _) = t.user_with_policy("mallory@example.com", None).await;
    let role = t.admin.create_role(&role_input("admin-ish", "assignable")).await.unwrap();
    let url = format!("{}/ui/roles/{}/assignments", t.url, role.id);
    for origin in [None, Some("https://evil.example")] {
        let mut req = browser().post(&url).header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.form(&[("to", "user"), ("user_id", mallory.id.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    assert!(assigned(&t, &role.id, "users").await.is_empty(), "nothing was assigned");
}

tessera_testkit::both_backends!(
    counts_by_kind_and_status_are_live,
    pages_carry_a_strict_csp_and_no_inline_script,
    sign_in_goes_only_to_console_paths,
    a_cross_site_form_post_changes_nothing,
    a_user_without_permissions_sees_no_admin_page,
    a_bad_filter_is_answered_with_its_position,
    a_role_is_assigned_and_unassigned_through_the_console,
    delete_through_the_console,
    a_cross_site_assign_changes_nothing,
    the_sign_in_form_without_origin_headers_needs_its_token,
    a_failed_sign_in_keeps_the_forms_token,
    the_consoles_assume_checks_and_records_the_client_address,
);
