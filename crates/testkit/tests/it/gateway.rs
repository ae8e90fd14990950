//! The session gateway end to end: a real upstream on 127.0.0.1, the gateway listener, and a
//! real HTTP client with a cookie jar; timeouts with the controlled clock.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::IntoResponse;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_testkit::{Backend, TestApp, TestGateway, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

/// The upstream: echoes what it received as JSON; `/slow` waits 2 s; `/big` streams 8 MiB;
/// `/upload` answers the number of body bytes it read.
async fn upstream() -> SocketAddr {
    async fn echo(req: Request) -> axum::response::Response {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap_or("").to_owned())))
            .collect();
        match path.as_str() {
            "/slow" | "/api/slow" => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late".into_response()
            }
            "/big" | "/api/big" => {
                let chunks = futures_util::stream::iter(
                    (0..128).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))),
                );
                Body::from_stream(chunks).into_response()
            }
            "/upload" | "/api/upload" => {
                let n = axum::body::to_bytes(req.into_body(), 64 << 20).await.map(|b| b.len()).unwrap_or(0);
                n.to_string().into_response()
            }
            _ => {
                let mut res = axum::Json(json!({"path": path, "query": query, "headers": headers})).into_response();
                res.headers_mut().append("set-cookie", "upstream=1; Path=/".parse().unwrap());
                res
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(echo)).await;
    });
    addr
}

struct Setup {
    t: TestApp,
    gw: TestGateway,
    service: String,
    route: String,
    plugin: String,
}

async fn api(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string());
    t.admin.raw(method, path, body.as_deref()).await.unwrap()
}

async fn user(t: &TestApp, email: &str) -> wire::UserView {
    t.admin
        .create_user(&wire::UserCreate {
            email: email.into(),
            first_name: "Gia".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap()
}

/// A service for the upstream, a route on `/api` (stripped), and a session plugin on the
/// route with `config` over test-friendly defaults (plain http, so `cookie_secure=false`).
async fn setup(backend: Backend, config: Value) -> Setup {
    let t = spawn_app(backend).await;
    let gw = t.spawn_gateway().await;
    let up = upstream().await;
    let (s, service) =
        api(&t, Method::POST, "/v2/gateway/services", Some(json!({"name": "echo", "url": format!("http://{up}")})))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{service}");
    let sid = service["service"]["id"].as_str().unwrap().to_owned();
    let (s, route) = api(
        &t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "api", "paths": ["/api"], "service": {"id": sid}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{route}");
    let rid = route["route"]["id"].as_str().unwrap().to_owned();
    let mut cfg = json!({"cookie_secure": false, "secret": "benchmark-secret-change-me"});
    tessera_domain::gateway::merge_patch(&mut cfg, config);
    let (s, plugin) = api(
        &t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "route": {"id": rid}, "config": cfg})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{plugin}");
    let pid = plugin["plugin"]["id"].as_str().unwrap().to_owned();
    gw.wait_for_routes(1).await;
    // The table is rebuilt on each change; wait until the plugin is in it too.
    tokio::time::sleep(Duration::from_millis(50)).await;
    user(&t, "gia@example.com").await;
    Setup { t, gw, service: sid, route: rid, plugin: pid }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("UA-1")
        .build()
        .unwrap()
}

async fn sign_in(c: &reqwest::Client, s: &Setup) -> reqwest::Response {
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .json(&json!({"email": "gia@example.com", "password": PASSWORD, "next": "/api/hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

fn cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn cookie_value<'a>(set: &'a [String], name: &str) -> Option<&'a str> {
    set.iter().find_map(|c| c.strip_prefix(&format!("{name}="))).map(|rest| rest.split(';').next().unwrap())
}

async fn get(c: &reqwest::Client, s: &Setup, path: &str) -> (StatusCode, HeaderMap, Value) {
    let res = c.get(format!("{}{path}", s.gw.url)).send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

// ---- configuration ---------------------------------------------------------------------

#[tokio::test]
async fn gateway_objects_are_validated_stored_and_applied_without_a_restart() {
    let s = setup(Backend::Sqlite, json!({})).await;
    let t = &s.t;
    // Kong's defaults come back on read.
    let (st, p) = api(t, Method::GET, &format!("/v2/gateway/plugins/{}", s.plugin), None).await;
    assert_eq!(st, StatusCode::OK);
    let cfg = &p["plugin"]["config"];
    assert_eq!((cfg["cookie_name"].as_str(), cfg["idling_timeout"].as_f64()), (Some("session"), Some(900.0)));
    assert_eq!(cfg["logout_methods"], json!(["POST", "DELETE"]));
    assert_eq!(p["plugin"]["protocols"], json!(["grpc", "grpcs", "http", "https"]));

    // Bad input names the field; nothing changes.
    let (st, e) = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "config": {"cookie_same_site": "Sideways"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["field"], "config.cookie_same_site");
    let (st, e) = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "config": {"idling_timeout": "x"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["field"], "config.idling_timeout", "{e}");
    let (st, e) = api(
        t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"paths": ["/x"], "service": {"id": "00000000-0000-0000-0000-000000000009"}})),
    )
    .await;
    assert_eq!((st, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("service.id")), "{e}");
    let (st, _) =
        api(t, Method::POST, "/v2/gateway/services", Some(json!({"name": "echo", "url": "http://127.0.0.1:1"}))).await;
    assert_eq!(st, StatusCode::CONFLICT, "names are unique");
    let (_, list) = api(t, Method::GET, "/v2/gateway/plugins", None).await;
    assert_eq!(list["plugins"].as_array().unwrap().len(), 1);

    // Without a session the protected route answers 401; the plugin can be switched off live.
    let c = browser();
    assert_eq!(get(&c, &s, "/api/hello").await.0, StatusCode::UNAUTHORIZED);
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/plugins/{}", s.plugin), Some(json!({"enabled": false}))).await;
    assert_eq!(st, StatusCode::OK);
    let mut passed = false;
    for _ in 0..100 {
        if get(&c, &s, "/api/hello").await.0 == StatusCode::OK {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(passed, "disabling the plugin applied without a restart");

    // A service in use cannot go; deleting the route removes it from the gateway.
    let (st, _) = api(t, Method::DELETE, &format!("/v2/gateway/services/{}", s.service), None).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = api(t, Method::DELETE, &format!("/v2/gateway/routes/{}", s.route), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.gw.wait_for_routes(0).await;
    assert_eq!(get(&c, &s, "/api/hello").await.0, StatusCode::NOT_FOUND);
    let (st, _) = api(t, Method::GET, &format!("/v2/gateway/plugins/{}", s.plugin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "the route's plugin went with it");
}

// ---- signing in and passing through --------------------------------------------------------

async fn signed_in_requests_pass_with_identity_headers(backend: Backend, storage: &str) {
    let s = setup(
        backend,
        json!({"storage": storage, "request_headers": ["id", "subject"], "response_headers": ["timeout"]}),
    )
    .await;
    let c = browser();
    // Browsers asking for HTML without a session get 401 by default.
    let (st, _, e) = get(&c, &s, "/api/hello").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(e["error"]["message"].as_str().unwrap().contains("/.tessera/login"));

    let res = sign_in(&c, &s).await;
    let set = cookies(res.headers());
    let value = cookie_value(&set, "session").expect("a session cookie");
    assert!(set[0].contains("; Path=/; SameSite=Strict; HttpOnly"), "{set:?}");
    if storage == "cookie" {
        assert!(value.len() > 110, "cookie storage carries the data");
    } else {
        assert_eq!(value.len(), 110, "server storage: the cookie is the header only");
    }

    // A client without a jar, so the Cookie header is exactly what we send.
    let res = reqwest::Client::new()
        .get(format!("{}/api/hello?x=1", s.gw.url))
        .header("cookie", format!("theme=dark; session={value}"))
        .header("x-consumer-id", "forged")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-42");
    assert!(res.headers().contains_key("session-timeout"));
    let body: Value = res.json().await.unwrap();
    let h = &body["headers"];
    assert_eq!(body["path"], "/hello", "strip_path removed /api");
    assert_eq!(body["query"], "x=1");
    assert_eq!(h["x-consumer-username"], "gia@example.com");
    assert_ne!(h["x-consumer-id"], "forged", "client-sent identity headers are replaced");
    assert_eq!(h["x-consumer-id"].as_str().unwrap().len(), 36);
    assert_eq!(h["session-subject"], "gia@example.com");
    assert_eq!(h["session-id"].as_str().unwrap().len(), 43);
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-prefix"], "/api");
    assert_eq!(h["x-request-id"], "req-42");
    let cookie = h["cookie"].as_str().unwrap_or("");
    assert!(cookie.contains("theme=dark"), "other cookies are forwarded: {cookie}");
    assert!(!cookie.contains("session="), "the session cookie is not forwarded: {cookie}");

    if storage == "server" {
        // A gateway session record exists, is listed with the others, and termination
        // through the API takes effect on the next request.
        let (st, q) = api(&s.t, Method::GET, "/v2/iam/sessions?$filter=kind%20eq%20'gateway'", None).await;
        assert_eq!(st, StatusCode::OK, "{q}");
        let results = q["Results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["user_id_or_email"], "gia@example.com");
        let moid = results[0]["moid"].as_str().unwrap();
        let (st, _) = api(&s.t, Method::DELETE, &format!("/v2/iam/sessions/{moid}"), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(get(&c, &s, "/api/hello").await.0, StatusCode::UNAUTHORIZED);
    }
}

async fn cookie_storage_passes_through(backend: Backend) {
    signed_in_requests_pass_with_identity_headers(backend, "cookie").await
}

async fn server_storage_passes_through_and_terminates(backend: Backend) {
    signed_in_requests_pass_with_identity_headers(backend, "kong").await
}

#[tokio::test]
async fn basic_credentials_sign_in_and_browsers_are_redirected_when_configured() {
    let s = setup(Backend::Sqlite, json!({"unauthenticated": "redirect"})).await;
    let c = browser();
    let res = c.get(format!("{}/api/page?a=b", s.gw.url)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], "/.tessera/login?next=/api/page%3Fa%3Db");
    let page = c.get(format!("{}/.tessera/login?next=/api/page", s.gw.url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form") && html.contains("value=\"/api/page\""));
    // An API client still gets 401 JSON.
    assert_eq!(get(&c, &s, "/api/page").await.0, StatusCode::UNAUTHORIZED);

    // The form posts and redirects back with the cookie.
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", "wrong"), ("next", "/api/page")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.unwrap().contains("invalid email or password"));
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", PASSWORD), ("next", "https://evil.example/api/page")])
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("location").is_none(), "never redirect off-site");
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", PASSWORD), ("next", "/api/page")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/api/page");
    assert_eq!(get(&c, &s, "/api/page").await.0, StatusCode::OK);

    // HTTP Basic with a Tessera user's credentials signs in on the request itself.
    let fresh = browser();
    let res =
        fresh.get(format!("{}/api/x", s.gw.url)).basic_auth("gia@example.com", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(cookie_value(&cookies(res.headers()), "session").is_some());
    let body: Value = res.json().await.unwrap();
    assert!(body["headers"].get("authorization").is_none(), "the password does not reach the upstream");
    assert_eq!(get(&fresh, &s, "/api/x").await.0, StatusCode::OK, "the cookie works afterwards");
    let res =
        browser().get(format!("{}/api/x", s.gw.url)).basic_auth("gia@example.com", Some("nope")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

// ---- timeouts -----------------------------------------------------------------------------

async fn session_id(c: &reqwest::Client, s: &Setup) -> (StatusCode, Option<String>, Vec<String>) {
    let res = c.get(format!("{}/api/hello", s.gw.url)).send().await.unwrap();
    let status = res.status();
    let set = cookies(res.headers());
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["headers"]["session-id"].as_str().map(str::to_owned), set)
}

async fn idling_touch_renewal_and_absolute_timeouts(backend: Backend) {
    let s = setup(
        backend,
        json!({"idling_timeout": 300, "rolling_timeout": 1000, "absolute_timeout": 2000, "request_headers": ["id"]}),
    )
    .await;
    let c = browser();
    sign_in(&c, &s).await;
    let (st, first, set) = session_id(&c, &s).await;
    assert_eq!(st, StatusCode::OK);
    assert!(set.iter().all(|c| !c.starts_with("session=")), "nothing to refresh yet: {set:?}");
    // After 61 s idle a touch re-issues the cookie with the same id.
    s.t.clock.advance(61);
    let (_, id, set) = session_id(&c, &s).await;
    assert_eq!(id, first, "touch keeps the session id");
    assert!(cookie_value(&set, "session").is_some(), "touch re-issues the cookie");
    // Kept busy, it outlives the idle timeout; past ¾ of rolling it renews with a new id.
    for _ in 0..2 {
        s.t.clock.advance(250);
        assert_eq!(session_id(&c, &s).await.0, StatusCode::OK);
    }
    s.t.clock.advance(200); // 761 s since creation > ceil(0.75 * 1000)
    let (st, renewed, set) = session_id(&c, &s).await;
    assert_eq!(st, StatusCode::OK);
    assert!(cookie_value(&set, "session").is_some(), "renewal re-issues the cookie: {set:?}");
    assert_ne!(renewed, first, "renewal gives a new session id");
    let (_, after, _) = session_id(&c, &s).await;
    assert_eq!(after, renewed, "the browser uses the renewed cookie");
    // Idle for longer than idling_timeout: rejected.
    s.t.clock.advance(301);
    assert_eq!(session_id(&c, &s).await.0, StatusCode::UNAUTHORIZED);

    // Absolute: however busy, a session dies at absolute_timeout.
    let c = browser();
    sign_in(&c, &s).await;
    for _ in 0..8 {
        s.t.clock.advance(240);
        assert_eq!(session_id(&c, &s).await.0, StatusCode::OK);
    }
    s.t.clock.advance(90); // 2010 s since sign-in
    assert_eq!(session_id(&c, &s).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stale_ttl_keeps_the_previous_server_side_key_briefly() {
    let s = setup(
        Backend::Sqlite,
        json!({"storage": "server", "rolling_timeout": 100, "idling_timeout": 0, "stale_ttl": 10}),
    )
    .await;
    let c = browser();
    let res = sign_in(&c, &s).await;
    let old = cookie_value(&cookies(res.headers()), "session").unwrap().to_owned();
    s.t.clock.advance(80); // past ¾ of 100: the next request renews
    let (st, _, set) = session_id(&c, &s).await;
    assert_eq!(st, StatusCode::OK);
    let new = cookie_value(&set, "session").expect("renewed").to_owned();
    assert_ne!(new, old);
    let with = |v: &str| {
        let v = v.to_owned();
        let url = format!("{}/api/hello", s.gw.url);
        async move {
            reqwest::Client::new().get(url).header("cookie", format!("session={v}")).send().await.unwrap().status()
        }
    };
    assert_eq!(with(&old).await, StatusCode::OK, "the old key still works within stale_ttl");
    s.t.clock.advance(11);
    assert_eq!(with(&old).await, StatusCode::UNAUTHORIZED, "and not after");
    assert_eq!(with(&new).await, StatusCode::OK);
}

#[tokio::test]
async fn remember_cookie_brings_back_an_idled_session() {
    let s = setup(Backend::Sqlite, json!({"remember": true, "idling_timeout": 60, "rolling_timeout": 3600})).await;
    let c = browser();
    let res = sign_in(&c, &s).await;
    let set = cookies(res.headers());
    let remember = set.iter().find(|c| c.starts_with("remember=")).expect("a remember cookie");
    assert!(remember.contains("; Max-Age=604800") && remember.contains("; Expires="), "{remember}");
    s.t.clock.advance(120); // the session cookie idled out
    let (st, _, set) = session_id(&c, &s).await;
    assert_eq!(st, StatusCode::OK, "the remember cookie signs the user back in");
    assert!(cookie_value(&set, "session").is_some() && cookie_value(&set, "remember").is_some(), "{set:?}");
}

// ---- binding, tampering, chunking, logout ---------------------------------------------------

#[tokio::test]
async fn bound_and_tampered_cookies_are_rejected() {
    let s = setup(Backend::Sqlite, json!({"bind": ["user-agent"]})).await;
    let c = browser();
    let res = sign_in(&c, &s).await;
    let value = cookie_value(&cookies(res.headers()), "session").unwrap().to_owned();
    let send = |ua: &str, v: &str| {
        let req = reqwest::Client::builder().user_agent(ua.to_owned()).build().unwrap();
        let url = format!("{}/api/hello", s.gw.url);
        let cookie = format!("session={v}");
        async move { req.get(url).header("cookie", cookie).send().await.unwrap().status() }
    };
    assert_eq!(send("UA-1", &value).await, StatusCode::OK);
    assert_eq!(send("UA-2", &value).await, StatusCode::UNAUTHORIZED, "another User-Agent breaks the MAC");
    // Flip one character of the header, then one of the payload.
    for at in [20, value.len() - 5] {
        let mut bytes = value.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(send("UA-1", std::str::from_utf8(&bytes).unwrap()).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn large_sessions_are_chunked_and_logout_clears_every_chunk() {
    let s = setup(Backend::Sqlite, json!({"logout_methods": ["POST"], "rolling_timeout": 100})).await;
    // Many long group names make the session data larger than one cookie.
    let me = s.t.admin.list_users(&Default::default()).await.unwrap();
    let gia = me.users.iter().find(|u| u.email == "gia@example.com").unwrap().id.clone();
    use rand::Rng;
    for i in 0..60 {
        // Random names: deflate must not be able to shrink them below one cookie.
        let noise: String =
            rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(90).map(char::from).collect();
        let g =
            s.t.admin
                .create_group(&wire::GroupInput {
                    display_name: format!("group-{i:03}-{noise}"),
                    description: String::new(),
                })
                .await
                .unwrap();
        s.t.admin.add_group_member(&g.id, &gia).await.unwrap();
    }
    let c = browser();
    let res = sign_in(&c, &s).await;
    let set = cookies(res.headers());
    assert!(cookie_value(&set, "session2").is_some(), "chunked into session, session2, ...: {set:?}");
    assert!(set.iter().all(|c| c.split(';').next().unwrap().len() <= 4096));
    let (st, _, body) = get(&c, &s, "/api/hello").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body["headers"]["x-authenticated-groups"].as_str().unwrap().contains("group-059"));

    // Logout: 200, empty, every chunk expired, upstream not called, session gone.
    let res = c.post(format!("{}/api/anything?session_logout", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set = cookies(res.headers());
    assert!(set.iter().any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("session2=;")));
    assert!(res.text().await.unwrap().is_empty());
    assert_eq!(get(&c, &s, "/api/hello").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_audiences_share_one_cookie_and_log_out_separately() {
    let s = setup(Backend::Sqlite, json!({"audience": "app-a", "logout_methods": ["POST"]})).await;
    let t = &s.t;
    let (_, r2) = api(
        t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "b", "paths": ["/b"], "service": {"id": s.service}})),
    )
    .await;
    let r2 = r2["route"]["id"].as_str().unwrap();
    let (st, _) = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "route": {"id": r2},
            "config": {"cookie_secure": false, "secret": "benchmark-secret-change-me", "audience": "app-b", "logout_methods": ["POST"]}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    s.gw.wait_for_routes(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = browser();
    sign_in(&c, &s).await; // audience app-a
    assert_eq!(get(&c, &s, "/b/x").await.0, StatusCode::UNAUTHORIZED, "app-b has no session yet");
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .json(&json!({"email": "gia@example.com", "password": PASSWORD, "next": "/b/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The login endpoint starts a fresh cookie; sign in on app-a through Basic to add it back.
    let res = c.get(format!("{}/api/x", s.gw.url)).basic_auth("gia@example.com", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(get(&c, &s, "/b/x").await.0, StatusCode::OK, "one cookie holds both audiences");
    assert_eq!(get(&c, &s, "/api/x").await.0, StatusCode::OK);
    let res = c.post(format!("{}/api/x?session_logout", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(get(&c, &s, "/api/x").await.0, StatusCode::UNAUTHORIZED, "logged out of app-a");
    assert_eq!(get(&c, &s, "/b/x").await.0, StatusCode::OK, "still signed in to app-b");
}

// ---- the proxy ----------------------------------------------------------------------------

#[tokio::test]
async fn upstream_failures_answer_502_and_504_and_bodies_stream() {
    let s = setup(Backend::Sqlite, json!({})).await;
    let t = &s.t;
    let c = browser();
    sign_in(&c, &s).await;
    // Streamed both ways: 8 MiB down, 16 MiB up.
    let res = c.get(format!("{}/api/big", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), 8 << 20);
    let up = vec![b'y'; 16 << 20];
    let res = c.post(format!("{}/api/upload", s.gw.url)).body(up).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), (16 << 20).to_string());

    // Slow: read_timeout 300 ms on the service → 504 with a JSON error.
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/services/{}", s.service), Some(json!({"read_timeout": 300}))).await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (st, _, e) = get(&c, &s, "/api/slow").await;
    assert_eq!(st, StatusCode::GATEWAY_TIMEOUT, "{e}");
    assert_eq!(e["error"]["code"], "upstream_timeout");

    // Down: point the service at a closed port → 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (st, _) = api(
        t,
        Method::PATCH,
        &format!("/v2/gateway/services/{}", s.service),
        Some(json!({"url": format!("http://{closed}")})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (st, _, e) = get(&c, &s, "/api/hello").await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(e["error"]["code"], "bad_gateway");
}

tessera_testkit::both_backends!(
    cookie_storage_passes_through,
    server_storage_passes_through_and_terminates,
    idling_touch_renewal_and_absolute_timeouts,
);
