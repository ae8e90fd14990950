//! The audit trail, end to end: every change leaves one event (who, what, which object,
//! when, from where, how it ended) committed with it; refusals that matter are recorded;
//! `GET /v2/audit-events` answers with the session query's options; nothing secret is kept.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "another horse, another staple";
const PLUGIN_SECRET: &str = "plugin-secret-that-must-never-be-audited";

async fn get(t: &TestApp, query: &str) -> (StatusCode, Value) {
    t.admin.raw(Method::GET, &format!("/v2/audit-events?{query}"), None).await.unwrap()
}

/// Every event of the organization, oldest first.
async fn events(t: &TestApp) -> Vec<Value> {
    let (code, v) = get(t, "$top=1000").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    v["Results"].as_array().unwrap().clone()
}

fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["result"].as_str().unwrap().to_owned()))
        .collect()
}

async fn api(t: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (s, v) = t.admin.raw(method, path, Some(&body.to_string())).await.unwrap();
    assert!(s.is_success(), "{path}: {s} {v}");
    v
}

fn sign_in(email: &str, password: &str) -> wire::SignInRequest {
    wire::SignInRequest { email: email.into(), password: password.into(), organization_id: None }
}

async fn a_sequence_of_changes_is_listed_in_order_with_actor_target_origin_and_result(backend: Backend) {
    let t = spawn_app(backend).await;
    let key_id = t.admin.list_api_keys(&t.admin_id, &Default::default()).await.unwrap().api_keys[0].id.clone();
    let ann = api(
        &t,
        Method::POST,
        "/v2/users",
        json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "", "password": PASSWORD}),
    )
    .await;
    let ann = ann["user"]["id"].as_str().unwrap().to_owned();
    let group = api(&t, Method::POST, "/v2/groups", json!({"display_name": "ops", "description": ""})).await;
    let group = group["group"]["id"].as_str().unwrap().to_owned();
    api(&t, Method::POST, &format!("/v2/groups/{group}/members"), json!({"user_id": ann})).await;
    let role = api(&t, Method::POST, "/v2/roles", json!({"name": "deployer", "role_type": "assumable"})).await;
    let role = role["role"]["id"].as_str().unwrap().to_owned();
    api(&t, Method::POST, "/v2/role-trusts", json!({"role_id": role, "trusted_user_id": ann})).await;
    t.clock.advance(5);
    let assumed = api(
        &t,
        Method::POST,
        "/v2/assumed-roles/assume",
        json!({"user_id": ann, "role_id": role, "session_name": "s"}),
    )
    .await;
    let assumed = assumed["assumed_role_session"]["id"].as_str().unwrap().to_owned();
    // Signed in from a client that names its request.
    let res = reqwest::Client::new()
        .post(format!("{}/v2/sessions", t.url))
        .header("x-request-id", "audit-test-42")
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let signed: wire::SignInResponse = res.json().await.unwrap();
    t.client(&signed.token).sign_out().await.unwrap();
    api(&t, Method::PATCH, &format!("/v2/users/{ann}"), json!({"password": NEW_PASSWORD})).await;
    let (code, _) = t.admin.raw(Method::DELETE, &format!("/v2/groups/{group}"), None).await.unwrap();
    assert_eq!(code, StatusCode::NO_CONTENT);
    api(&t, Method::PATCH, &format!("/v2/users/{ann}"), json!({"status": "disabled"})).await;

    let all = events(&t).await;
    let s = |x: &str| (x.to_owned(), "success".to_owned());
    assert_eq!(
        actions(&all),
        vec![
            s("tessera.Bootstrap"),
            s("iam.user.Create"),
            s("iam.group.Create"),
            s("iam.group.AddMember"),
            s("iam.role.Create"),
            s("iam.roletrust.Create"),
            s("iam.role.AssumeRole"),
            s("iam.session.SignIn"),
            s("iam.session.SignOut"),
            s("iam.user.Update"),
            s("iam.user.SetPassword"),
            s("iam.group.Delete"),
            s("iam.user.Update"),
        ]
    );
    let boot = &all[0];
    assert_eq!((boot["actor_kind"].as_str(), boot["target_kind"].as_str()), (Some("system"), Some("organization")));
    // The administrator's changes name the administrator, its key, the object and the client.
    for e in &all[1..7] {
        assert_eq!(e["actor_kind"], "api_key", "{e}");
        assert_eq!(e["actor_id"], t.admin_id.as_str());
        assert_eq!(e["actor_email"], "admin@example.com");
        assert_eq!(e["credential_id"], key_id.as_str());
        assert_eq!(e["source_ip"], "127.0.0.1");
        assert!(!e["request_id"].as_str().unwrap().is_empty());
        assert_eq!(e["account_moid"], boot["account_moid"]);
    }
    let target =
        |e: &Value| (e["target_kind"].as_str().unwrap().to_owned(), e["target_id"].as_str().unwrap().to_owned());
    assert_eq!(target(&all[1]), ("user".into(), ann.clone()));
    assert_eq!(target(&all[2]), ("group".into(), group.clone()));
    assert_eq!(target(&all[3]), ("group".into(), group.clone()));
    assert_eq!(all[3]["reason"], format!("user {ann}"));
    assert_eq!(target(&all[4]), ("role".into(), role.clone()));
    assert_eq!(target(&all[6]), ("session".into(), assumed));
    assert!(all[6]["time"].as_str().unwrap() > all[5]["time"].as_str().unwrap(), "stamped by the clock");
    // Sign-in and sign-out are the user's own, through the new login session.
    let (sign_in_event, sign_out_event) = (&all[7], &all[8]);
    for e in [sign_in_event, sign_out_event] {
        assert_eq!(e["actor_kind"], "login_session");
        assert_eq!(e["actor_id"], ann.as_str());
        assert_eq!(e["actor_email"], "ann@example.com");
        assert_eq!(e["credential_id"], signed.session.moid.as_str());
    }
    assert_eq!(sign_in_event["request_id"], "audit-test-42", "a client's request id is kept");
    assert_eq!(target(sign_out_event), ("session".into(), signed.session.moid.clone()));
    assert_eq!(target(&all[10]), ("user".into(), ann.clone()));
    assert_eq!((target(&all[12]), all[12]["reason"].as_str()), (("user".into(), ann.clone()), Some("status disabled")));
}

async fn a_rejected_request_leaves_no_event_and_changes_nothing(backend: Backend) {
    let t = spawn_app(backend).await;
    let before = events(&t).await;
    let users_before = t.admin.list_users(&Default::default()).await.unwrap().users.len();
    for (path, body) in [
        ("/v2/users", json!({"email": "not an email", "first_name": "X", "last_name": ""})),
        ("/v2/users", json!({"email": "x@example.com", "first_name": "X", "last_name": "", "password": "short"})),
        ("/v2/groups", json!({"display_name": "bad\u{1b}[31mname", "description": ""})),
    ] {
        let (code, v) = t.admin.raw(Method::POST, path, Some(&body.to_string())).await.unwrap();
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    // A conflict is refused by the store after validation: its event rolls back with it.
    api(&t, Method::POST, "/v2/groups", json!({"display_name": "ops", "description": ""})).await;
    let (code, _) = t
        .admin
        .raw(Method::POST, "/v2/groups", Some(&json!({"display_name": "ops", "description": ""}).to_string()))
        .await
        .unwrap();
    assert_eq!(code, StatusCode::CONFLICT);
    let after = events(&t).await;
    assert_eq!(after.len(), before.len() + 1, "only the one group that was created: {after:?}");
    assert_eq!(actions(&after[before.len()..]), vec![("iam.group.Create".into(), "success".into())]);
    assert_eq!(t.admin.list_users(&Default::default()).await.unwrap().users.len(), users_before);
}

async fn a_denied_change_leaves_a_denied_event_and_no_change(backend: Backend) {
    let t = spawn_app(backend).await;
    let (nobody, client) = t.user_with_policy("nobody@example.com", None).await;
    let before = events(&t).await.len();
    let (code, _) = client
        .raw(Method::POST, "/v2/groups", Some(&json!({"display_name": "mine", "description": ""}).to_string()))
        .await
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Reads that are refused are not changes: they leave nothing.
    let (code, _) = client.raw(Method::GET, "/v2/groups", None).await.unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    let all = events(&t).await;
    assert_eq!(all.len(), before + 1);
    let e = &all[before];
    assert_eq!((e["action"].as_str(), e["result"].as_str()), (Some("iam.group.Create"), Some("denied")));
    assert_eq!((e["actor_kind"].as_str(), e["actor_id"].as_str()), (Some("api_key"), Some(nobody.id.as_str())));
    assert_eq!(e["source_ip"], "127.0.0.1");
    assert!(e["reason"].as_str().unwrap().contains("not allowed iam.group.Create"), "{e}");
    assert!(
        t.admin.list_groups(&Default::default()).await.unwrap().groups.is_empty(),
        "the denied change was not made"
    );
}

async fn failed_sign_ins_and_the_lockout_are_recorded_without_the_password(backend: Backend) {
    let t = spawn_app(backend).await;
    let ann = api(
        &t,
        Method::POST,
        "/v2/users",
        json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "", "password": PASSWORD}),
    )
    .await;
    let ann = ann["user"]["id"].as_str().unwrap().to_owned();
    let guesses: Vec<String> = (0..5).map(|i| format!("wrong-guess-number-{i}")).collect();
    for guess in &guesses {
        let err = t.anonymous().sign_in(&sign_in("ann@example.com", guess)).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    }
    // Locked now: even the right password fails, and says why in the trail only.
    let err = t.anonymous().sign_in(&sign_in("ann@example.com", PASSWORD)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    // An unknown email names no organization: nothing to record it in.
    t.anonymous().sign_in(&sign_in("nobody@example.com", PASSWORD)).await.unwrap_err();

    let (_, v) = get(&t, &format!("$filter=target_id%20eq%20'{ann}'%20and%20result%20eq%20'failure'")).await;
    let failures = v["Results"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> =
        failures.iter().map(|e| (e["action"].as_str().unwrap(), e["reason"].as_str().unwrap())).collect();
    assert_eq!(reasons[..4], [("iam.session.SignIn", "wrong password"); 4]);
    assert_eq!(reasons[4], ("iam.session.SignIn", "wrong password"));
    assert_eq!(reasons[5].0, "iam.user.Lockout");
    assert!(reasons[5].1.starts_with("locked until"), "{reasons:?}");
    assert_eq!(reasons[6], ("iam.session.SignIn", "the account is locked"));
    assert_eq!(reasons.len(), 7);
    for e in failures {
        assert_eq!((e["actor_kind"].as_str(), e["actor_email"].as_str()), (Some("anonymous"), Some("ann@example.com")));
        assert_eq!(e["source_ip"], "127.0.0.1");
    }
    let text = v.to_string();
    for secret in guesses.iter().map(String::as_str).chain([PASSWORD]) {
        assert!(!text.contains(secret), "a password reached the audit trail");
    }
}

async fn the_query_filters_orders_pages_counts_and_refuses_bad_options(backend: Backend) {
    let t = spawn_app(backend).await;
    for i in 0..6 {
        api(&t, Method::POST, "/v2/groups", json!({"display_name": format!("g{i}"), "description": ""})).await;
        t.clock.advance(10);
    }
    api(&t, Method::POST, "/v2/roles", json!({"name": "r", "role_type": "assumable"})).await;
    let (code, v) = get(&t, "$filter=action%20eq%20'iam.group.Create'").await;
    assert_eq!((code, v["Count"].as_u64()), (StatusCode::OK, Some(6)));
    let (_, v) = get(&t, "$filter=startswith(action,'iam.role.')&$select=action,target_kind").await;
    assert_eq!(v["Results"], json!([{"action": "iam.role.Create", "target_kind": "role"}]));
    // Newest first, two at a time, by skip token: every event once.
    let mut query = "$orderby=time%20desc&$top=2".to_owned();
    let mut seen = vec![];
    loop {
        let (code, v) = get(&t, &query).await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["Count"], 8);
        seen.extend(v["Results"].as_array().unwrap().iter().map(|e| e["moid"].as_str().unwrap().to_owned()));
        match v["NextSkipToken"].as_str() {
            Some(tok) => query = format!("$orderby=time%20desc&$top=2&$skiptoken={tok}"),
            None => break,
        }
    }
    let oldest_first: Vec<String> = events(&t).await.iter().map(|e| e["moid"].as_str().unwrap().to_owned()).collect();
    let mut newest_first = oldest_first.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let (_, v) = get(&t, "$top=3&$skip=6").await;
    assert_eq!(v["Results"].as_array().unwrap().len(), 2);
    let (_, v) = get(&t, "$count=true&$filter=result%20eq%20'success'").await;
    assert_eq!(v, json!({"Count": 8}));

    for (query, field) in [
        ("$filter=nonsense%20eq%201", "$filter"),
        ("$filter=action%20eq", "$filter"),
        ("$orderby=password", "$orderby"),
        ("$top=0", "$top"),
        ("$top=many", "$top"),
        ("$skip=-1", "$skip"),
        ("$skiptoken=forged", "$skiptoken"),
        ("$select=password_hash", "$select"),
        ("$count=maybe", "$count"),
        ("$expand=all", "$expand"),
    ] {
        let (code, v) = get(&t, query).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["error"]["field"], field, "{query}: {v}");
    }
    let (_, reader) = t.user_with_policy("reader@example.com", Some(allow(&["iam.session.List"]))).await;
    let (code, v) = reader.raw(Method::GET, "/v2/audit-events", None).await.unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("iam.auditevent.List"));
}

async fn another_organizations_events_never_appear(backend: Backend) {
    use tessera_domain::ids::{OrgId, UserId};
    use tessera_domain::user::{Email, Organization, User, UserStatus};
    let t = spawn_app(backend).await;
    let org = Organization { id: OrgId::from_random(rand::random()), name: "other".into(), date_created: t.app.now() };
    t.store().create_organization(&org).await.unwrap();
    let user = User {
        id: UserId::from_random(rand::random()),
        org_id: org.id,
        email: Email::parse("ann@example.com").unwrap(),
        first_name: "Other".into(),
        last_name: "Ann".into(),
        status: UserStatus::Active,
        date_created: t.app.now(),
    };
    let hash = tessera_app::hash_password(PASSWORD, rand::random()).unwrap();
    t.store().create_user(&user, Some(&hash)).await.unwrap();
    let theirs = t.anonymous().sign_in(&sign_in("ann@example.com", PASSWORD)).await.unwrap();
    t.anonymous().sign_in(&sign_in("ann@example.com", "not their password")).await.unwrap_err();
    t.client(&theirs.token).sign_out().await.unwrap();
    let mine = events(&t).await;
    assert_eq!(actions(&mine), vec![("tessera.Bootstrap".into(), "success".into())], "only this organization's");
    let (_, v) = get(&t, &format!("$filter=account_moid%20eq%20'{}'", org.id)).await;
    assert_eq!(v["Count"], 0);
    let (_, v) = get(&t, &format!("$filter=actor_id%20eq%20'{}'", user.id)).await;
    assert_eq!(v["Count"], 0);
    // The other organization has its own trail, from the store.
    let q = tessera_store::SessionQuery {
        filter: None,
        order: vec![],
        top: 100,
        skip: 0,
        after: None,
        count: true,
        rows: true,
    };
    let r = t.store().query_audit_events(org.id, &q).await.unwrap();
    let got: Vec<(&str, &str)> = r.events.iter().map(|e| (e.action.as_str(), e.result.as_str())).collect();
    assert_eq!(
        got,
        vec![("iam.session.SignIn", "success"), ("iam.session.SignIn", "failure"), ("iam.session.SignOut", "success")]
    );
}

async fn no_secret_reaches_the_audit_trail(backend: Backend) {
    let t = spawn_app(backend).await;
    let ann = api(
        &t,
        Method::POST,
        "/v2/users",
        json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "", "password": PASSWORD}),
    )
    .await;
    let ann = ann["user"]["id"].as_str().unwrap().to_owned();
    let key = api(&t, Method::POST, &format!("/v2/users/{ann}/apikeys"), json!({"name": "k"})).await;
    let key_secret = key["api_key"]["api_key"].as_str().unwrap().to_owned();
    let role = api(&t, Method::POST, "/v2/roles", json!({"name": "deployer", "role_type": "assumable"})).await;
    let role = role["role"]["id"].as_str().unwrap().to_owned();
    api(&t, Method::POST, "/v2/role-trusts", json!({"role_id": role, "trusted_user_id": ann})).await;
    let assumed = api(
        &t,
        Method::POST,
        "/v2/assumed-roles/assume",
        json!({"user_id": ann, "role_id": role, "session_name": "s"}),
    )
    .await;
    let role_token = assumed["assumed_role_session"]["session_token"].as_str().unwrap().to_owned();
    let signed = t.anonymous().sign_in(&sign_in("ann@example.com", PASSWORD)).await.unwrap();
    t.anonymous().sign_in(&sign_in("ann@example.com", "a wrong guess")).await.unwrap_err();
    api(&t, Method::PATCH, &format!("/v2/users/{ann}"), json!({"password": NEW_PASSWORD})).await;
    let svc = api(&t, Method::POST, "/v2/gateway/services", json!({"name": "svc", "url": "http://127.0.0.1:9"})).await;
    let svc = svc["service"]["id"].as_str().unwrap().to_owned();
    let route =
        api(&t, Method::POST, "/v2/gateway/routes", json!({"name": "rt", "paths": ["/app"], "service": {"id": svc}}))
            .await;
    let route = route["route"]["id"].as_str().unwrap().to_owned();
    let plugin = api(
        &t,
        Method::POST,
        "/v2/gateway/plugins",
        json!({"name": "session", "route": {"id": route}, "config": {"cookie_secure": false, "secret": PLUGIN_SECRET}}),
    )
    .await;
    let plugin = plugin["plugin"]["id"].as_str().unwrap().to_owned();
    api(
        &t,
        Method::PUT,
        &format!("/v2/gateway/plugins/{plugin}"),
        json!({"name": "session", "route": {"id": route}, "config": {"cookie_secure": false, "secret": PLUGIN_SECRET}}),
    )
    .await;

    let trail = events(&t).await;
    assert!(trail.len() >= 12, "{trail:?}");
    let text = serde_json::to_string(&trail).unwrap();
    let secrets = [
        PASSWORD,
        NEW_PASSWORD,
        "a wrong guess",
        PLUGIN_SECRET,
        ADMIN_KEY,
        key_secret.as_str(),
        role_token.as_str(),
        signed.token.as_str(),
        "$argon2",
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret reached the audit trail: {}", &secret[..4]);
    }
    // On SQLite, also the file itself: the audit table must not hold what the rest of the
    // database keeps only as hashes, nor the plaintexts anywhere.
    if let Some(path) = &t.db_path {
        t.store().purge_audit_events(tessera_domain::Timestamp(0)).await.unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
            bytes.extend(wal);
        }
        let file = String::from_utf8_lossy(&bytes);
        for secret in [PASSWORD, NEW_PASSWORD, "a wrong guess", ADMIN_KEY, &key_secret, &role_token, &signed.token] {
            assert!(!file.contains(secret), "a plaintext secret is in the database file: {}", &secret[..4]);
        }
    }
}

async fn the_sweep_purges_events_older_than_the_retention(backend: Backend) {
    let t = spawn_app(backend).await;
    api(&t, Method::POST, "/v2/groups", json!({"display_name": "old", "description": ""})).await;
    t.clock.advance(tessera_app::audit::DEFAULT_AUDIT_RETENTION - 10);
    let recent = api(&t, Method::POST, "/v2/groups", json!({"display_name": "recent", "description": ""})).await;
    t.clock.advance(20);
    t.app.sweep(tessera_app::System::SWEEPER).await.unwrap();
    let left = events(&t).await;
    assert_eq!(actions(&left), vec![("iam.group.Create".into(), "success".into())], "{left:?}");
    assert_eq!(left[0]["target_id"], recent["group"]["id"], "the recent one stays");
    let (_, v) = get(&t, "$filter=target_kind%20eq%20'group'").await;
    assert_eq!(v["Count"], 1);
}

tessera_testkit::both_backends!(
    the_sweep_purges_events_older_than_the_retention,
    a_sequence_of_changes_is_listed_in_order_with_actor_target_origin_and_result,
    a_rejected_request_leaves_no_event_and_changes_nothing,
    a_denied_change_leaves_a_denied_event_and_no_change,
    failed_sign_ins_and_the_lockout_are_recorded_without_the_password,
    the_query_filters_orders_pages_counts_and_refuses_bad_options,
    another_organizations_events_never_appear,
    no_secret_reaches_the_audit_trail,
);
