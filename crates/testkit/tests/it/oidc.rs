//! Workload identity end to end: a real OIDC issuer on 127.0.0.1 (discovery document and key
//! set from keys the test holds), issuers registered through the API, trusts with claim
//! conditions, and roles assumed with the issuer's tokens. Time moves by the test clock only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::oidc::{SigningKey, TestIssuer, hs256, unsigned};
use tessera_testkit::{ADMIN_KEY, Backend, T0, TestApp, allow, spawn_app};

const AUD: &str = "tessera";
const SUB: &str = "repo:acme/api:ref:refs/heads/main";

async fn call(t: &TestApp, method: Method, path: &str, bearer: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", t.url)).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admin(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(t, method, path, ADMIN_KEY, body).await
}

fn error(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// An assumable role whose one policy allows listing users, trusted to `issuer` for tokens
/// with `aud` tessera and a `sub` under repo:acme/.
async fn role_for(t: &TestApp, issuer_id: &str) -> String {
    let (_, role) =
        admin(t, Method::POST, "/v2/roles", Some(json!({"name": "ci-deployer", "role_type": "assumable"}))).await;
    let role = role["role"]["id"].as_str().unwrap().to_owned();
    let (_, policy) = admin(
        t,
        Method::POST,
        "/v2/policies",
        Some(json!({"name": "list-users", "description": "", "policy_document": allow(&["iam.user.List"])})),
    )
    .await;
    let policy = policy["policy"]["id"].as_str().unwrap();
    admin(t, Method::POST, &format!("/v2/roles/{role}/policies/{policy}"), Some(json!({}))).await;
    let trust = json!({"role_id": role, "trusted_oidc_issuer_id": issuer_id,
        "conditions": {"oidc_claims": {"aud": AUD, "sub": "repo:acme/*"}}});
    let (status, body) = admin(t, Method::POST, "/v2/role-trusts", Some(trust)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    role
}

async fn register(t: &TestApp, uri: &str) -> String {
    let (status, body) =
        admin(t, Method::POST, "/v2/oidc/issuer", Some(json!({"issuer": {"source": "external", "uri": uri}}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn assume(t: &TestApp, token: &str, issuer: &str, role: &str) -> (StatusCode, Value) {
    let body = json!({"role_id": role, "session_name": "ci", "auth_method": "oidc", "oidc_issuer_id": issuer, "duration": 900});
    call(t, Method::POST, "/v2/assumed-roles/assume", token, Some(body)).await
}

fn now(t: &TestApp) -> i64 {
    t.app.now().0
}

async fn each_key_type_assumes_as_the_workload(backend: Backend) {
    let t = spawn_app(backend).await;
    let keys = [
        SigningKey::rsa("rsa", 0),
        SigningKey::ec_p256("p256"),
        SigningKey::ec_p384("p384"),
        SigningKey::ed25519("ed"),
    ];
    let issuer = TestIssuer::start(&keys.iter().collect::<Vec<_>>(), 300).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;

    let mut tokens = vec![];
    for (key, alg) in [
        (&keys[0], "RS256"),
        (&keys[0], "PS256"),
        (&keys[0], "RS512"),
        (&keys[1], "ES256"),
        (&keys[2], "ES384"),
        (&keys[3], "EdDSA"),
    ] {
        let jwt = key.sign_as(alg, Some(&key.kid), &issuer.claims(SUB, AUD, now(&t), 600));
        let (status, body) = assume(&t, &jwt, &issuer_id, &role).await;
        assert_eq!(status, StatusCode::CREATED, "{alg}: {body}");
        let s = &body["assumed_role_session"];
        assert_eq!(s["user_id"], "", "{alg}: a workload is not a user");
        assert_eq!(s["oidc_issuer_id"], issuer_id.as_str());
        assert_eq!(s["auth_method"], "oidc");
        assert_eq!(s["conditions_met"], json!(["oidc_claims"]));
        tokens.push((s["id"].as_str().unwrap().to_owned(), s["session_token"].as_str().unwrap().to_owned()));
    }
    assert_eq!(issuer.fetches(), 1, "one fetch served every token: the keys are cached");

    // The session token acts with exactly the role's policies.
    let (id, token) = tokens[0].clone();
    assert_eq!(call(&t, Method::GET, "/v2/users", &token, None).await.0, StatusCode::OK);
    let (status, body) = call(&t, Method::GET, "/v2/groups", &token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error(&body).contains("this session of role"), "{body}");
    // It cannot assume again, as any role session.
    let again = json!({"user_id": t.admin_id, "role_id": role, "session_name": "x"});
    assert_eq!(call(&t, Method::POST, "/v2/assumed-roles/assume", &token, Some(again)).await.0, StatusCode::FORBIDDEN);

    // The session query shows the workload, by issuer and by subject.
    let filter = format!("oidc_issuer_id eq '{issuer_id}'");
    let (status, listed) =
        admin(&t, Method::GET, &format!("/v2/iam/sessions?$filter={}", urlencode(&filter)), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let rows = listed["Results"].as_array().or(listed["sessions"].as_array()).cloned().unwrap_or_default();
    assert_eq!(rows.len(), 6, "{listed}");
    let row = rows.iter().find(|r| r["moid"] == id.as_str()).expect("the session is listed");
    assert_eq!(row["kind"], "assumed_role");
    assert_eq!(row["auth_method"], "oidc");
    assert_eq!(row["user_id_or_email"], SUB);
    assert_eq!(row["oidc_issuer_id"], issuer_id.as_str());
    let by_subject = format!("user_id_or_email eq '{SUB}'");
    let (_, listed) =
        admin(&t, Method::GET, &format!("/v2/iam/sessions?$filter={}", urlencode(&by_subject)), None).await;
    assert_eq!(listed["Results"].as_array().or(listed["sessions"].as_array()).map(Vec::len), Some(6), "{listed}");

    // Revocable like any role session: the token stops at once.
    assert_eq!(admin(&t, Method::DELETE, &format!("/v2/assumed-roles/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&t, Method::GET, "/v2/users", &token, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&t, Method::GET, "/v2/users", &tokens[1].1, None).await.0, StatusCode::OK);

    // Every assume left its event, naming the workload.
    let (_, events) =
        admin(&t, Method::GET, "/v2/audit-events?$filter=action%20eq%20'iam.role.AssumeRole'", None).await;
    let events = events["Results"].as_array().or(events["events"].as_array()).cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["actor_email"] == SUB && e["result"] == "success"), "{events:?}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn bad_tokens_are_refused_by_the_check_that_failed(backend: Backend) {
    let t = spawn_app(backend).await;
    let rsa = SigningKey::rsa("rsa", 0);
    let issuer = TestIssuer::start(&[&rsa], 300).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;
    let n = now(&t);
    let good = issuer.claims(SUB, AUD, n, 600);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let tampered = {
        let jwt = rsa.sign(&good);
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let forged = with("sub", json!("repo:acme/admin"));
        parts[1] = base64_url(forged.to_string().as_bytes());
        parts.join(".")
    };
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("expired", rsa.sign(&with("exp", json!(n - 61))), StatusCode::UNAUTHORIZED, "expired"),
        ("not yet valid", rsa.sign(&with("nbf", json!(n + 120))), StatusCode::UNAUTHORIZED, "not valid before"),
        ("wrong iss", rsa.sign(&with("iss", json!("https://evil.example"))), StatusCode::UNAUTHORIZED, "issuer (iss)"),
        ("wrong aud", rsa.sign(&with("aud", json!("other-service"))), StatusCode::FORBIDDEN, "oidc_claims.aud not met"),
        (
            "sub outside the glob",
            rsa.sign(&with("sub", json!("repo:evil/api"))),
            StatusCode::FORBIDDEN,
            "oidc_claims.sub not met",
        ),
        ("alg none", unsigned("rsa", &good), StatusCode::UNAUTHORIZED, "alg 'none'"),
        (
            "HS256 with the public key",
            hs256(&rsa.rsa_modulus().unwrap(), "rsa", &good),
            StatusCode::UNAUTHORIZED,
            "HS256",
        ),
        ("tampered", tampered, StatusCode::UNAUTHORIZED, "signature does not verify"),
        ("not a JWT", "tessera_ak_not-a-jwt".into(), StatusCode::UNAUTHORIZED, "malformed"),
    ];
    for (name, jwt, status, why) in cases {
        let (got, body) = assume(&t, &jwt, &issuer_id, &role).await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(error(&body).contains(why), "{name}: {body}");
        assert!(!body.to_string().contains(&jwt), "{name}: a refusal never echoes the token");
    }
    // Within the 60 s leeway, the same expired-by-30-seconds token is accepted.
    let (status, body) = assume(&t, &rsa.sign(&with("exp", json!(n - 30))), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Unknown issuer id, missing issuer id, a user_id with oidc: clear refusals.
    let other = "00000000-0000-4000-8000-000000000000";
    let (status, body) = assume(&t, &rsa.sign(&good), other, &role).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(error(&body).contains("Invalid API token"), "{body}");
    let body = json!({"role_id": role, "session_name": "ci", "auth_method": "oidc"});
    let (status, body) = call(&t, Method::POST, "/v2/assumed-roles/assume", &rsa.sign(&good), Some(body)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("oidc_issuer_id")), "{body}");

    // Refusals are in the audit trail as denied.
    let (_, events) = admin(&t, Method::GET, "/v2/audit-events?$filter=result%20eq%20'denied'", None).await;
    let events = events["Results"].as_array().or(events["events"].as_array()).cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["action"] == "iam.role.AssumeRole"), "{events:?}");
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn rotation_refetches_once_and_unknown_kids_are_rate_limited(backend: Backend) {
    let t = spawn_app(backend).await;
    let (old, new) = (SigningKey::rsa("old", 0), SigningKey::ed25519("new"));
    let issuer = TestIssuer::start(&[&old], 3_600).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;
    let claims = |t: &TestApp| issuer.claims(SUB, AUD, now(t), 600);

    assert_eq!(assume(&t, &old.sign(&claims(&t)), &issuer_id, &role).await.0, StatusCode::CREATED);
    assert_eq!(issuer.fetches(), 1);
    // The issuer rotates; a token with the new kid makes one refetch (the cache is older
    // than the rate limit).
    issuer.publish(&[&new]);
    t.clock.advance(31);
    let (status, body) = assume(&t, &new.sign(&claims(&t)), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(issuer.fetches(), 2, "one refetch for the unknown kid");
    // A flood of unknown kids within 30 s fetches nothing more.
    for i in 0..5 {
        let forged = new.sign_as("EdDSA", Some(&format!("ghost-{i}")), &claims(&t));
        let (status, body) = assume(&t, &forged, &issuer_id, &role).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(error(&body).contains(&format!("no key of the issuer has kid 'ghost-{i}'")), "{body}");
    }
    assert_eq!(issuer.fetches(), 2, "unknown kids within the rate limit do not reach the issuer");
    // After the interval, one more refetch; the kid is still unknown, so still refused.
    t.clock.advance(30);
    let (status, _) = assume(&t, &new.sign_as("EdDSA", Some("ghost-late"), &claims(&t)), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(issuer.fetches(), 3);
    // The old key is gone from the set: its tokens no longer verify.
    let (status, body) = assume(&t, &old.sign(&claims(&t)), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The keys the server holds are what GET .../jwks shows.
    let (status, jwks) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{issuer_id}/jwks"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kid"], "new");
    let (_, got) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{issuer_id}"), None).await;
    assert!(got["issuer"]["jwks_fetched_at"].is_string() && got["issuer"]["jwks_expires_at"].is_string(), "{got}");
}

async fn an_unreachable_issuer_keeps_cached_keys_until_they_expire(backend: Backend) {
    let t = spawn_app(backend).await;
    let key = SigningKey::ec_p256("k");
    let issuer = TestIssuer::start(&[&key], 120).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;
    let claims = |t: &TestApp| issuer.claims(SUB, AUD, now(t), 600);
    assert_eq!(assume(&t, &key.sign(&claims(&t)), &issuer_id, &role).await.0, StatusCode::CREATED);

    issuer.set_down(true);
    t.clock.advance(60);
    let (status, body) = assume(&t, &key.sign(&claims(&t)), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::CREATED, "cached keys keep working: {body}");
    // Past the 120 s the issuer allowed, the keys are gone and the issuer is down: a 429 that
    // names the reason and when to retry.
    t.clock.advance(61);
    let (status, body) = assume(&t, &key.sign(&claims(&t)), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error(&body).contains("cannot be fetched (the discovery document at"), "{body}");
    assert!(error(&body).contains("answered 503"), "{body}");
    // Back up: the next attempt (after the rate limit) fetches again.
    issuer.set_down(false);
    t.clock.advance(31);
    assert_eq!(assume(&t, &key.sign(&claims(&t)), &issuer_id, &role).await.0, StatusCode::CREATED);

    // An issuer never reached: a clear 429, never a 500.
    let gone = TestIssuer::start(&[&key], 120).await;
    let url = gone.url.clone();
    drop(gone);
    let lost = register(&t, &url).await;
    let lost_role = {
        let trust = json!({"role_id": role, "trusted_oidc_issuer_id": lost,
            "conditions": {"oidc_claims": {"aud": AUD, "sub": SUB}}});
        admin(&t, Method::POST, "/v2/role-trusts", Some(trust)).await;
        role.clone()
    };
    let c = json!({"iss": url, "sub": SUB, "aud": AUD, "iat": now(&t), "exp": now(&t) + 600});
    let (status, body) = assume(&t, &key.sign(&c), &lost, &lost_role).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error(&body).contains("could not connect"), "{body}");
}

async fn issuers_in_vultrs_shape_and_trusts_that_must_pin_aud_and_sub(backend: Backend) {
    let t = spawn_app(backend).await;
    let key = SigningKey::rsa("inline-1", 1);
    let jwk = key.jwk();
    // Flat, with one inline key as Vultr's fields: no HTTP is ever needed.
    let flat = json!({"source": "external", "uri": "https://cluster.example/oidc",
        "kty": "RSA", "kid": "inline-1", "n": jwk["n"], "e": jwk["e"], "alg": "RS256", "use": "sig"});
    let (status, created) = admin(&t, Method::POST, "/v2/oidc/issuer", Some(flat)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!((created["kty"].as_str(), created["kid"].as_str()), (Some("RSA"), Some("inline-1")));
    assert_eq!(created["keys_source"], "inline");
    let (status, got) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{id}"), None).await;
    assert_eq!((status, got["issuer"]["uri"].as_str()), (StatusCode::OK, Some("https://cluster.example/oidc")));
    let (_, listed) = admin(&t, Method::GET, "/v2/oidc/issuer", None).await;
    assert_eq!(listed["issuers"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["meta"]["total"], 1);

    // A trust to it must pin aud and sub.
    let role = role_for(&t, &id).await;
    for (claims, field) in [
        (json!({"aud": AUD}), "conditions.oidc_claims.sub"),
        (json!({"sub": "x"}), "conditions.oidc_claims.aud"),
        (json!({"aud": AUD, "sub": "*"}), "conditions.oidc_claims.sub"),
    ] {
        let trust = json!({"role_id": role, "trusted_oidc_issuer_id": id, "conditions": {"oidc_claims": claims}});
        let (status, body) = admin(&t, Method::POST, "/v2/role-trusts", Some(trust)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body}");
    }
    let missing = json!({"role_id": role, "trusted_oidc_issuer_id": id});
    assert_eq!(admin(&t, Method::POST, "/v2/role-trusts", Some(missing)).await.0, StatusCode::BAD_REQUEST);
    // Claims mean nothing for a user.
    let for_user = json!({"role_id": role, "trusted_user_id": t.admin_id, "conditions": {"oidc_claims": {"aud": AUD}}});
    assert_eq!(admin(&t, Method::POST, "/v2/role-trusts", Some(for_user)).await.0, StatusCode::BAD_REQUEST);
    // Vultr's time_of_day form: a fixed offset and days of the week (zone names are refused).
    let tz = json!({"role_id": role, "trusted_oidc_issuer_id": id, "conditions": {
        "oidc_claims": {"aud": AUD, "sub": SUB},
        "time_of_day": {"timezone": "+02:00", "days_of_week": ["monday", "saturday"]}}});
    let (status, body) = admin(&t, Method::POST, "/v2/role-trusts", Some(tz)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, read) =
        admin(&t, Method::GET, &format!("/v2/role-trusts/{}", body["role_trust"]["id"].as_str().unwrap()), None).await;
    assert_eq!(
        read["role_trust"]["conditions"]["time_of_day"],
        json!({"start": 0, "end": 24, "timezone": "+02:00", "days_of_week": ["monday", "saturday"]})
    );
    admin(&t, Method::DELETE, &format!("/v2/role-trusts/{}", body["role_trust"]["id"].as_str().unwrap()), None).await;
    let paris = json!({"role_id": role, "trusted_user_id": t.admin_id,
        "conditions": {"time_of_day": {"timezone": "Europe/Paris"}}});
    let (status, body) = admin(&t, Method::POST, "/v2/role-trusts", Some(paris)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "conditions.time_of_day.timezone");
    assert!(error(&body).contains("fixed offsets only"), "{body}");
    // A private key is refused rather than stored.
    let private = json!({"uri": "https://x.example", "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}]});
    let (status, body) = admin(&t, Method::POST, "/v2/oidc/issuer", Some(private)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("private member 'd'"), "{body}");
    let (status, body) = admin(&t, Method::POST, "/v2/oidc/issuer", Some(json!({"uri": "http://evil.example"}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("uri")), "{body}");

    // The inline key verifies tokens with no fetch.
    let claims = json!({"iss": "https://cluster.example/oidc", "sub": SUB, "aud": AUD, "exp": T0.0 + 600});
    let (status, body) = assume(&t, &key.sign(&claims), &id, &role).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, jwks) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{id}/jwks"), None).await;
    assert_eq!(jwks["keys"][0]["n"], jwk["n"]);

    // Replaced with discovery (PATCH), then deleted with its trusts.
    let patch = json!({"uri": "https://other.example"});
    let (status, got) = admin(&t, Method::PATCH, &format!("/v2/oidc/issuer/{id}"), Some(patch)).await;
    assert_eq!((status, got["issuer"]["keys_source"].as_str()), (StatusCode::OK, Some("discovered")), "{got}");
    assert_eq!(admin(&t, Method::DELETE, &format!("/v2/oidc/issuer/{id}"), None).await.0, StatusCode::NO_CONTENT);
    let (status, body) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "Issuer Not Found");
    let (_, trusts) = admin(&t, Method::GET, &format!("/v2/role-trusts/by-role/{role}"), None).await;
    assert_eq!(trusts["role_trusts"], json!([]), "the issuer's trusts went with it");

    // Each change is in the audit trail.
    let (_, events) = admin(&t, Method::GET, "/v2/audit-events?$filter=target_kind%20eq%20'oidc_issuer'", None).await;
    let events = events["Results"].as_array().or(events["events"].as_array()).cloned().unwrap_or_default();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["iam.oidcissuer.Create", "iam.oidcissuer.Update", "iam.oidcissuer.Delete"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// Serves `router` on `addr` (a loopback address) until the test ends; answers where it
/// listens.
async fn serve(addr: &str, router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    bound
}

/// An `http` service on a loopback address the issuer rule does not name (127.0.0.2): it
/// stands for any internal host an issuer URI may not point at. Counts what reaches it.
async fn internal_service(hits: std::sync::Arc<std::sync::atomic::AtomicUsize>, answer: Value) -> std::net::SocketAddr {
    let router = axum::Router::new().fallback(move || {
        let (hits, answer) = (hits.clone(), answer.clone());
        async move {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            axum::Json(answer)
        }
    });
    serve("127.0.0.2:0", router).await
}

async fn issuer_uris_cannot_hide_a_remote_host_behind_userinfo(backend: Backend) {
    let t = spawn_app(backend).await;
    // Plain http is for a loopback issuer only; `localhost:1@` is user information, and the
    // host these name is issuer.example.
    for uri in [
        "http://localhost:1@issuer.example",
        "http://127.0.0.1@issuer.example/realm",
        "http://localhost:8080:x@issuer.example",
        "http://127.0.0.1:8080\\@issuer.example",
        "https://user:secret@issuer.example",
    ] {
        let (status, body) = admin(&t, Method::POST, "/v2/oidc/issuer", Some(json!({"uri": uri}))).await;
        assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("uri")), "{uri}: {body}");
    }
    let id = register(&t, "https://cluster.example/oidc").await;
    let patch = json!({"uri": "http://localhost:1@issuer.example"});
    let (status, body) = admin(&t, Method::PATCH, &format!("/v2/oidc/issuer/{id}"), Some(patch)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("uri")), "{body}");
    let (_, got) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{id}"), None).await;
    assert_eq!(got["issuer"]["uri"], "https://cluster.example/oidc");
    // The IPv6 loopback is the loopback it names.
    register(&t, "http://[::1]:8080/realm").await;

    // A discovery document cannot name such a key set either: nothing reaches the host.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let key = SigningKey::rsa("k", 0);
    let internal = internal_service(hits.clone(), json!({"keys": [key.jwk()]})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({"issuer": url, "jwks_uri": format!("http://localhost:1@{internal}/jwks")});
    let router = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(move || async move { axum::Json(doc) }));
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let issuer = register(&t, &url).await;
    let (status, body) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{issuer}/jwks"), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error(&body).contains("jwks_uri"), "{body}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the key set was fetched from {internal}");
}

async fn key_fetches_follow_no_redirect_the_issuer_rule_would_refuse(backend: Backend) {
    let t = spawn_app(backend).await;
    let key = SigningKey::rsa("k", 0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // The internal service answers a discovery document naming the issuer and a key set of
    // the issuer's own, so only the redirect decides.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let doc = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "keys": [key.jwk()]});
    let internal = internal_service(hits.clone(), doc).await;
    let (keys, to) = (json!({"keys": [key.jwk()]}), format!("http://{internal}/.well-known/openid-configuration"));
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::response::Redirect::temporary(&to) }),
        )
        .route("/jwks", axum::routing::get(move || async move { axum::Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let issuer = register(&t, &url).await;
    let (status, body) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{issuer}/jwks"), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error(&body).contains("redirect"), "{body}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect to {internal} was followed");

    // A redirect to where an issuer may be (here the same loopback host) is still followed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (doc, keys) = (json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}), json!({"keys": [key.jwk()]}));
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/moved") }),
        )
        .route("/moved", axum::routing::get(move || async move { axum::Json(doc) }))
        .route("/jwks", axum::routing::get(move || async move { axum::Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let issuer = register(&t, &url).await;
    let (status, body) = admin(&t, Method::GET, &format!("/v2/oidc/issuer/{issuer}/jwks"), None).await;
    assert_eq!((status, body["keys"][0]["kid"].as_str()), (StatusCode::OK, Some("k")), "{body}");
}

async fn refusals_of_tokens_with_control_characters_in_the_header_are_recorded(backend: Backend) {
    let t = spawn_app(backend).await;
    let key = SigningKey::rsa("k", 0);
    let issuer = TestIssuer::start(&[&key], 300).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;
    let claims = issuer.claims(SUB, AUD, now(&t), 600);
    let before = admin(&t, Method::GET, "/v2/audit-events?$filter=result%20eq%20'denied'", None).await.1;
    let before = before["Results"].as_array().map_or(0, Vec::len);
    // Nothing in these headers is signed: anyone who knows an issuer id can send them.
    for (header, why) in [
        (json!({"alg": "RS256", "kid": "ghost\u{0}\u{1b}[2J"}), "no key of the issuer has kid 'ghost\\0\\u{1b}[2J'"),
        (json!({"alg": "RS\u{0}256"}), "alg 'RS\\0256' is not supported"),
    ] {
        let jwt = format!(
            "{}.{}.{}",
            base64_url(header.to_string().as_bytes()),
            base64_url(claims.to_string().as_bytes()),
            base64_url(b"not a signature")
        );
        let (status, body) = assume(&t, &jwt, &issuer_id, &role).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(error(&body).contains(why), "{body}");
    }
    let (_, after) = admin(&t, Method::GET, "/v2/audit-events?$filter=result%20eq%20'denied'", None).await;
    let after = after["Results"].as_array().cloned().unwrap_or_default();
    assert_eq!(after.len(), before + 2, "each refusal left its event: {after:?}");
    assert!(after.iter().all(|e| !e["reason"].as_str().unwrap_or_default().contains('\u{0}')), "{after:?}");
}

/// A token the issuer really signed may still carry control characters in its claims: a
/// refusal quoting them is recorded on both backends (PostgreSQL's text cannot hold a NUL,
/// and the denied event used to be dropped there), and a subject holding one never becomes a
/// session (it would on SQLite and fail on PostgreSQL).
async fn signed_claims_with_control_characters_are_refused_and_recorded(backend: Backend) {
    let t = spawn_app(backend).await;
    let key = SigningKey::rsa("k", 0);
    let issuer = TestIssuer::start(&[&key], 300).await;
    let issuer_id = register(&t, &issuer.url).await;
    let role = role_for(&t, &issuer_id).await;
    let denied = |events: &Value| events["Results"].as_array().cloned().unwrap_or_default();
    let filter = "/v2/audit-events?$filter=result%20eq%20'denied'";
    let before = denied(&admin(&t, Method::GET, filter, None).await.1).len();

    // The trust pins aud: a signed aud with a NUL fails the condition, and says so escaped.
    let claims = issuer.claims(SUB, "tess\u{0}era\u{1b}[2J", now(&t), 600);
    let (status, body) = assume(&t, &key.sign_as("RS256", Some(&key.kid), &claims), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error(&body).contains("oidc_claims.aud not met"), "{body}");
    // A subject under the trusted prefix, with a NUL: refused before any trust is read.
    let claims = issuer.claims("repo:acme/api\u{0}", AUD, now(&t), 600);
    let (status, body) = assume(&t, &key.sign_as("RS256", Some(&key.kid), &claims), &issuer_id, &role).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(error(&body).contains("the sub claim 'repo:acme/api\\0' holds a control character"), "{body}");

    let after = denied(&admin(&t, Method::GET, filter, None).await.1);
    assert_eq!(after.len(), before + 2, "each refusal left its event: {after:?}");
    for e in &after[after.len() - 2..] {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(!reason.chars().any(char::is_control), "stored escaped: {reason:?}");
    }
    assert!(
        after.iter().any(|e| e["reason"].as_str().unwrap_or_default().contains("'tess\\0era\\u{1b}[2J'")),
        "the aud refusal quotes the claim escaped: {after:?}"
    );
    // No session was made by either token.
    let (_, listed) = admin(&t, Method::GET, "/v2/iam/sessions?$filter=kind%20eq%20'assumed_role'", None).await;
    assert_eq!(listed["Count"], 0, "{listed}");
}

tessera_testkit::both_backends!(
    each_key_type_assumes_as_the_workload,
    bad_tokens_are_refused_by_the_check_that_failed,
    rotation_refetches_once_and_unknown_kids_are_rate_limited,
    an_unreachable_issuer_keeps_cached_keys_until_they_expire,
    issuers_in_vultrs_shape_and_trusts_that_must_pin_aud_and_sub,
    issuer_uris_cannot_hide_a_remote_host_behind_userinfo,
    key_fetches_follow_no_redirect_the_issuer_rule_would_refuse,
    refusals_of_tokens_with_control_characters_in_the_header_are_recorded,
    signed_claims_with_control_characters_are_refused_and_recorded,
);
