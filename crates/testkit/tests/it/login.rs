//! Login sessions end to end: sign-in, lifetimes with a controlled clock, the per-user cap,
//! lockout, sign-out and termination, introspection and forward-auth.

use reqwest::{Method, StatusCode};
use tessera_api_types as wire;
use tessera_client::{ClientError, ListParams};
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

async fn user_with_password(t: &TestApp, email: &str, actions: &[&str]) -> wire::UserView {
    let user = t
        .admin
        .create_user(&wire::UserCreate {
            email: email.into(),
            first_name: "Lee".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    if !actions.is_empty() {
        let p = t
            .admin
            .create_policy(&wire::PolicyInput {
                name: format!("p-{email}"),
                description: String::new(),
                policy_document: allow(actions),
            })
            .await
            .unwrap();
        t.admin.attach_policy_to_user(&p.id, &user.id).await.unwrap();
    }
    user
}

async fn sign_in(t: &TestApp, email: &str, password: &str) -> Result<wire::SignInResponse, ClientError> {
    t.anonymous()
        .sign_in(&wire::SignInRequest { email: email.into(), password: password.into(), organization_id: None })
        .await
}

fn status(e: ClientError) -> StatusCode {
    e.status().expect("an answer from the server")
}

async fn set_limits(t: &TestApp, idle: i64, absolute: i64, max: i64) {
    t.admin
        .put_session_limits(&wire::SessionLimitsView {
            idle_timeout: idle,
            absolute_timeout: absolute,
            max_sessions_per_user: max,
        })
        .await
        .unwrap();
}

async fn sign_in_answers_a_token_and_a_cookie_that_act_as_the_user(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let res = reqwest::Client::new()
        .post(format!("{}/v2/sessions", t.url))
        .json(&serde_json::json!({"email": "LEE@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: wire::SignInResponse = res.json().await.unwrap();
    assert!(body.token.starts_with("tessera_ls_"));
    assert!(cookie.starts_with(&format!("tessera_session={}", body.token)), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=57600"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "Secure is off by default for local HTTP");
    let s = &body.session;
    assert_eq!((s.kind.as_str(), s.status.as_str(), s.user_id.as_str()), ("login", "Active", user.id.as_str()));
    assert_eq!(s.user_id_or_email, "lee@example.com");
    assert_eq!(s.client_ip_address, "127.0.0.1");
    assert_eq!(s.create_time, "2030-01-01T10:00:00Z");
    assert_eq!(s.expiration, "2030-01-02T02:00:00Z");
    assert_eq!(s.idle_time_expiration.as_deref(), Some("2030-01-01T10:30:00Z"));
    assert_eq!(s.session_id.len(), 24);
    assert!(!body.token.contains(&s.session_id));

    // As a bearer token.
    let as_user = t.client(&body.token);
    assert!(as_user.list_users(&ListParams::default()).await.is_ok());
    assert_eq!(status(as_user.list_roles(&ListParams::default()).await.unwrap_err()), StatusCode::FORBIDDEN);
    assert_eq!(as_user.current_session().await.unwrap().moid, s.moid);
    // As a cookie.
    let res = reqwest::Client::new()
        .get(format!("{}/v2/sessions/current", t.url))
        .header("cookie", format!("theme=dark; tessera_session={}", body.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn failed_sign_ins_are_counted_reported_and_lock_the_account(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &[]).await;
    let unknown = sign_in(&t, "nobody@example.com", PASSWORD).await.unwrap_err();
    let wrong = sign_in(&t, "lee@example.com", "wrong password!").await.unwrap_err();
    assert_eq!(unknown.to_string(), wrong.to_string(), "the answer never tells whether the email exists");
    assert_eq!(status(wrong), StatusCode::UNAUTHORIZED);
    assert!(sign_in(&t, "lee@example.com", "wrong again!!").await.is_err());
    // Two failures so far; the next success reports them, then the count resets.
    let ok = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    assert_eq!(ok.session.failed_logins, 2);
    let again = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    assert_eq!(again.session.failed_logins, 0);
    assert_eq!(again.session.last_login_time.as_deref(), Some("2030-01-01T10:00:00Z"));
    assert_eq!(again.session.last_login_client, "127.0.0.1");

    for _ in 0..5 {
        assert_eq!(status(sign_in(&t, "lee@example.com", "guess-guess").await.unwrap_err()), StatusCode::UNAUTHORIZED);
    }
    let locked = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(status(locked), StatusCode::UNAUTHORIZED, "even the right password fails while locked");
    let lock = t.admin.get_login_lock(&user.id).await.unwrap();
    assert!(lock.locked);
    assert_eq!(lock.failed_logins, 5);
    assert_eq!(lock.locked_until.as_deref(), Some("2030-01-01T10:01:00Z"));
    // The lock lapses by itself ...
    t.clock.advance(60);
    assert!(sign_in(&t, "lee@example.com", PASSWORD).await.is_ok());
    // ... and an administrator can clear it early.
    for _ in 0..5 {
        let _ = sign_in(&t, "lee@example.com", "guess-guess").await;
    }
    assert!(sign_in(&t, "lee@example.com", PASSWORD).await.is_err());
    t.admin.clear_login_lock(&user.id).await.unwrap();
    assert!(!t.admin.get_login_lock(&user.id).await.unwrap().locked);
    let after = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    assert_eq!(after.session.failed_logins, 5, "attempts since the last success are still reported");
}

async fn idle_sessions_end_and_activity_keeps_them_alive(backend: Backend) {
    let t = spawn_app(backend).await;
    set_limits(&t, 300, 57_600, 32).await;
    user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let busy = t.client(&sign_in(&t, "lee@example.com", PASSWORD).await.unwrap().token);
    let idle = t.client(&sign_in(&t, "lee@example.com", PASSWORD).await.unwrap().token);
    // Use `busy` every 200 s for 20 minutes: far past the 300 s idle timeout.
    for _ in 0..6 {
        t.clock.advance(200);
        assert!(busy.list_users(&ListParams::default()).await.is_ok());
    }
    let err = idle.list_users(&ListParams::default()).await.unwrap_err();
    assert_eq!(status(err), StatusCode::UNAUTHORIZED);
    // Idle ends are visible in the record without any sweeper.
    let current = busy.current_session().await.unwrap();
    assert_eq!(current.status, "Active");
    assert_eq!(current.idle_time_expiration.as_deref(), Some("2030-01-01T10:25:00Z"));
    t.clock.advance(300);
    assert_eq!(status(busy.list_users(&ListParams::default()).await.unwrap_err()), StatusCode::UNAUTHORIZED);
}

async fn absolute_expiry_ends_even_a_busy_session(backend: Backend) {
    let t = spawn_app(backend).await;
    set_limits(&t, 300, 600, 32).await;
    user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let signed = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let c = t.client(&signed.token);
    for _ in 0..3 {
        t.clock.advance(199);
        assert!(c.list_users(&ListParams::default()).await.is_ok());
    }
    t.clock.advance(3);
    let err = c.list_users(&ListParams::default()).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let read = t.admin.get_session(&signed.session.moid).await.unwrap();
    assert_eq!((read.status.as_str(), read.end_reason.as_deref()), ("Ended", Some("expired")));
}

async fn a_sign_in_beyond_the_cap_replaces_the_oldest(backend: Backend) {
    let t = spawn_app(backend).await;
    set_limits(&t, 1_800, 57_600, 2).await;
    user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let first = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    t.clock.advance(1);
    let second = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    t.clock.advance(1);
    let third = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    assert_eq!(
        status(t.client(&first.token).list_users(&ListParams::default()).await.unwrap_err()),
        StatusCode::UNAUTHORIZED
    );
    assert!(t.client(&second.token).list_users(&ListParams::default()).await.is_ok());
    assert!(t.client(&third.token).list_users(&ListParams::default()).await.is_ok());
    let read = t.admin.get_session(&first.session.moid).await.unwrap();
    assert_eq!((read.status.as_str(), read.end_reason.as_deref()), ("Ended", Some("replaced")));
}

async fn sign_out_and_termination_take_effect_on_the_next_request(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let a = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let b = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let c = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let (ca, cb, cc) = (t.client(&a.token), t.client(&b.token), t.client(&c.token));
    for x in [&ca, &cb, &cc] {
        assert!(x.list_users(&ListParams::default()).await.is_ok());
    }
    // Sign-out clears the cookie and ends the session.
    let res = reqwest::Client::new()
        .delete(format!("{}/v2/sessions/current", t.url))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session_cookie = cleared
        .iter()
        .find(|c| c.starts_with("tessera_session="))
        .unwrap_or_else(|| panic!("no Set-Cookie for tessera_session in {cleared:?}"));
    assert!(session_cookie.starts_with("tessera_session=;"), "the value is emptied: {session_cookie}");
    for attr in ["Max-Age=0", "Path=/", "HttpOnly"] {
        assert!(session_cookie.contains(attr), "{session_cookie} lacks {attr}: the browser would keep the cookie");
    }
    assert_eq!(status(ca.list_users(&ListParams::default()).await.unwrap_err()), StatusCode::UNAUTHORIZED);
    let read = t.admin.get_session(&a.session.moid).await.unwrap();
    assert_eq!(
        (read.status.as_str(), read.end_reason.as_deref(), read.end_time.as_deref()),
        ("Ended", Some("logout"), Some("2030-01-01T10:00:00Z"))
    );
    // An administrator terminates one session ...
    let terminated = t.admin.terminate_session(&b.session.moid).await.unwrap();
    assert_eq!(terminated.status, "Terminated");
    assert_eq!(status(cb.list_users(&ListParams::default()).await.unwrap_err()), StatusCode::UNAUTHORIZED);
    // ... or all of a user's.
    assert_eq!(t.admin.terminate_user_sessions(&user.id).await.unwrap(), 1);
    assert_eq!(status(cc.list_users(&ListParams::default()).await.unwrap_err()), StatusCode::UNAUTHORIZED);
}

async fn changing_a_password_ends_the_users_other_sessions(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List", "iam.user.Update"]).await;
    let mine = t.client(&sign_in(&t, "lee@example.com", PASSWORD).await.unwrap().token);
    let other = t.client(&sign_in(&t, "lee@example.com", PASSWORD).await.unwrap().token);
    mine.update_user(
        &user.id,
        &wire::UserUpdate { password: Some("a new long password".into()), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(mine.list_users(&ListParams::default()).await.is_ok(), "the session that changed it stays");
    assert_eq!(status(other.list_users(&ListParams::default()).await.unwrap_err()), StatusCode::UNAUTHORIZED);
    assert!(sign_in(&t, "lee@example.com", PASSWORD).await.is_err());
    assert!(sign_in(&t, "lee@example.com", "a new long password").await.is_ok());
    let short = mine
        .update_user(&user.id, &wire::UserUpdate { password: Some("short".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status(short), StatusCode::BAD_REQUEST);
}

async fn introspection_answers_rfc_7662_to_authorized_callers_only(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let signed = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let i = t.admin.introspect(&signed.token).await.unwrap();
    assert!(i.active);
    assert_eq!(i.token_type.as_deref(), Some("login_session"));
    assert_eq!(i.sub.as_deref(), Some(user.id.as_str()));
    assert_eq!(i.username.as_deref(), Some("lee@example.com"));
    assert_eq!(i.sid.as_deref(), Some(signed.session.moid.as_str()));
    assert_eq!(i.exp, Some(1_893_492_000 + 57_600));
    assert_eq!(t.admin.introspect("tessera_ls_garbage").await.unwrap(), wire::IntrospectionResponse::default());
    // The user itself lacks iam.session.Introspect.
    let as_user = t.client(&signed.token);
    assert_eq!(status(as_user.introspect(&signed.token).await.unwrap_err()), StatusCode::FORBIDDEN);
    as_user.sign_out().await.unwrap();
    assert!(!t.admin.introspect(&signed.token).await.unwrap().active);
    // RFC 7662 bodies are forms.
    let (code, _) = t.admin.raw(Method::POST, "/v2/oauth2/introspect", Some(r#"{"token":"x"}"#)).await.unwrap();
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn forward_auth_answers_identity_headers_or_401(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &[]).await;
    let signed = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/v2/auth/forward", t.url))
        .header("cookie", format!("tessera_session={}", signed.token))
        .header("x-forwarded-uri", "/app")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-tessera-user-id"], user.id.as_str());
    assert_eq!(res.headers()["x-tessera-user-email"], "lee@example.com");
    assert_eq!(res.headers()["x-tessera-session-id"], signed.session.moid.as_str());
    let res = http.get(format!("{}/v2/auth/forward", t.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    t.client(&signed.token).sign_out().await.unwrap();
    let res = http.get(format!("{}/v2/auth/forward", t.url)).bearer_auth(&signed.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn session_limits_validate_their_ranges(backend: Backend) {
    let t = spawn_app(backend).await;
    let defaults = t.admin.get_session_limits().await.unwrap();
    assert_eq!(
        defaults,
        wire::SessionLimitsView { idle_timeout: 1_800, absolute_timeout: 57_600, max_sessions_per_user: 32 }
    );
    let (code, body) = t
        .admin
        .raw(
            Method::PUT,
            "/v2/iam/session-limits",
            Some(r#"{"idle_timeout":100,"absolute_timeout":57600,"max_sessions_per_user":32}"#),
        )
        .await
        .unwrap();
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "idle_timeout");
    assert_eq!(t.admin.get_session_limits().await.unwrap(), defaults, "unchanged");
}

/// Fires `n` sign-ins at once, each on its own task and connection, and answers their
/// status codes.
async fn burst(t: &TestApp, n: usize, password: &str) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = t.anonymous();
            let password = password.to_owned();
            tokio::spawn(async move {
                let req = wire::SignInRequest { email: "lee@example.com".into(), password, organization_id: None };
                match client.sign_in(&req).await {
                    Ok(_) => StatusCode::CREATED,
                    Err(e) => status(e),
                }
            })
        })
        .collect();
    let mut codes = Vec::with_capacity(n);
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    codes
}

/// Every answer to a wrong guess is a refusal: 401, or 429 when the password-hashing queue
/// is full; never a session, never a 5xx.
fn all_refused(codes: &[StatusCode]) {
    for c in codes {
        assert!(
            *c == StatusCode::UNAUTHORIZED || *c == StatusCode::TOO_MANY_REQUESTS,
            "a wrong guess answered {c}: {codes:?}"
        );
    }
}

async fn parallel_wrong_guesses_are_checked_at_most_five_times(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let codes = burst(&t, 60, "wrong guess!").await;
    all_refused(&codes);
    // Exactly as five wrong guesses in sequence: locked, five failures counted, and no more
    // than five real password checks however many guesses ran at once.
    let lock = t.admin.get_login_lock(&user.id).await.unwrap();
    assert!(lock.locked, "{lock:?}");
    assert_eq!((lock.failed_logins, lock.lock_count), (5, 1), "{lock:?}");
    assert_eq!(lock.locked_until.as_deref(), Some("2030-01-01T10:01:00Z"));
    let checks = t.app.password_checks();
    assert!(checks <= 5, "{checks} wrong guesses were checked against the real hash");
    eprintln!("60 parallel wrong guesses: {checks} real password checks; answers {codes:?}");
    // The right password is refused while the lock lasts ...
    assert_eq!(status(sign_in(&t, "lee@example.com", PASSWORD).await.unwrap_err()), StatusCode::UNAUTHORIZED);
    assert_eq!(t.app.password_checks(), checks, "a locked account's hash is not even checked");
    // ... and works once it lapses, reporting the five failures.
    t.clock.advance(60);
    let ok = sign_in(&t, "lee@example.com", PASSWORD).await.unwrap();
    assert_eq!(ok.session.failed_logins, 5);
}

async fn a_burst_with_the_right_password_behaves_like_a_sequence(backend: Backend) {
    let t = spawn_app(backend).await;
    let user = user_with_password(&t, "lee@example.com", &["iam.user.List"]).await;
    let right = {
        let client = t.anonymous();
        tokio::spawn(async move {
            let req = wire::SignInRequest {
                email: "lee@example.com".into(),
                password: PASSWORD.into(),
                organization_id: None,
            };
            client.sign_in(&req).await
        })
    };
    let wrong = burst(&t, 40, "wrong guess!").await;
    all_refused(&wrong);
    let right = right.await.unwrap();
    let checks = t.app.password_checks();
    match &right {
        // In any sequence, the right password signs in only when fewer than five wrong
        // guesses came before it; after it, the count starts again from zero.
        Ok(signed) => {
            assert!(signed.session.failed_logins < 5, "signed in after {} failures", signed.session.failed_logins);
            assert!(checks <= 10, "{checks} password checks: at most 5 before the success and 5 after it");
        }
        Err(e) => {
            let code = e.status().expect("an answer");
            assert!(code == StatusCode::UNAUTHORIZED || code == StatusCode::TOO_MANY_REQUESTS, "{e}");
            assert!(checks <= 5, "{checks} password checks with no success");
            let lock = t.admin.get_login_lock(&user.id).await.unwrap();
            assert!(lock.locked && lock.failed_logins == 5, "{lock:?}");
        }
    }
    eprintln!("40 wrong + 1 right at once: right {}, {checks} real password checks", right.is_ok());
}

/// Two nodes on one PostgreSQL count one user's failures together.
#[tokio::test]
async fn two_nodes_share_one_lockout() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipping the two-node lockout test");
        return;
    };
    let a = spawn_app(backend).await;
    let b = a.another_node().await;
    let user = user_with_password(&a, "lee@example.com", &["iam.user.List"]).await;
    let (on_a, on_b) = tokio::join!(burst(&a, 30, "wrong guess!"), burst(&b, 30, "wrong guess!"));
    all_refused(&on_a);
    all_refused(&on_b);
    let checks = a.app.password_checks() + b.app.password_checks();
    assert!(checks <= 5, "{checks} wrong guesses checked across two nodes");
    eprintln!("30 + 30 wrong guesses on two nodes: {checks} real password checks");
    let lock = b.admin.get_login_lock(&user.id).await.unwrap();
    assert!(lock.locked && lock.failed_logins == 5, "{lock:?}");
    for node in [&a, &b] {
        assert_eq!(status(sign_in(node, "lee@example.com", PASSWORD).await.unwrap_err()), StatusCode::UNAUTHORIZED);
    }
}

tessera_testkit::both_backends!(
    parallel_wrong_guesses_are_checked_at_most_five_times,
    a_burst_with_the_right_password_behaves_like_a_sequence,
    sign_in_answers_a_token_and_a_cookie_that_act_as_the_user,
    failed_sign_ins_are_counted_reported_and_lock_the_account,
    idle_sessions_end_and_activity_keeps_them_alive,
    absolute_expiry_ends_even_a_busy_session,
    a_sign_in_beyond_the_cap_replaces_the_oldest,
    sign_out_and_termination_take_effect_on_the_next_request,
    changing_a_password_ends_the_users_other_sessions,
    introspection_answers_rfc_7662_to_authorized_callers_only,
    forward_auth_answers_identity_headers_or_401,
    session_limits_validate_their_ranges,
);
