//! The session gateway end to end: a real upstream on 127.0.0.1, the gateway listener, and a
//! real HTTP client with a cookie jar; timeouts with the controlled clock. Configuration
//! changes are waited for through the gateway's table generation, never with a sleep.
//! Requests a client library would rewrite (dot segments, odd bytes) go over a raw socket.

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

/// The upstream: echoes what it received as JSON; `/slow` never answers; `/big` streams 8 MiB;
/// `/upload` answers the number of body bytes it read; `/teapot` answers 418 in plain text.
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
            "/slow" | "/api/slow" => std::future::pending().await,
            "/teapot" | "/api/teapot" => (StatusCode::IM_A_TEAPOT, "short and stout").into_response(),
            "/big" | "/api/big" => {
                let chunks = futures_util::stream::iter(
                    (0..128).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))),
                );
                Body::from_stream(chunks).into_response()
            }
            // An upstream that tries to plant a console session in the browser.
            "/plant" | "/api/plant" => {
                let mut res = "planted".into_response();
                res.headers_mut().append("set-cookie", "tessera_session=planted; Path=/".parse().unwrap());
                res.headers_mut().append("set-cookie", "upstream=2; Path=/".parse().unwrap());
                res
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
    caught_up(&gw).await;
    assert_eq!(gw.gateway.route_count(), 1);
    user(&t, "gia@example.com").await;
    Setup { t, gw, service: sid, route: rid, plugin: pid }
}

/// Waits until the gateway's table reflects every API write made so far (one generous
/// deadline: a loaded machine is slow, not broken).
async fn caught_up(gw: &TestGateway) {
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up())
        .await
        .expect("the gateway table caught up with the configuration within 30 s");
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
    // A merge whose fields do not have their documented types is refused, naming the field
    // (schemathesis found `"id": {}` accepted), and changes nothing.
    let plugin_path = format!("/v2/gateway/plugins/{}", s.plugin);
    let (st, body) = api(t, Method::PATCH, &plugin_path, Some(json!({"id": {}, "enabled": false}))).await;
    assert_eq!((st, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")), "{body}");
    assert_eq!(api(t, Method::GET, &plugin_path, None).await.1["plugin"]["enabled"], true);
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/plugins/{}", s.plugin), Some(json!({"enabled": false}))).await;
    assert_eq!(st, StatusCode::OK);
    caught_up(&s.gw).await;
    assert_eq!(get(&c, &s, "/api/hello").await.0, StatusCode::OK, "disabling the plugin applied without a restart");
    let (st, _, ready) = get(&c, &s, "/.tessera/ready").await;
    assert_eq!((st, ready["status"].as_str()), (StatusCode::OK, Some("ready")), "{ready}");
    assert_eq!(ready["generation"], s.gw.gateway.generation());
    assert!(s.gw.gateway.generation() >= 4, "one generation per write: {ready}");

    // A service in use cannot go; deleting the route removes it from the gateway.
    let (st, _) = api(t, Method::DELETE, &format!("/v2/gateway/services/{}", s.service), None).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = api(t, Method::DELETE, &format!("/v2/gateway/routes/{}", s.route), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    caught_up(&s.gw).await;
    assert_eq!(s.gw.gateway.route_count(), 0);
    let (st, _, e) = get(&c, &s, "/api/hello").await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_route")), "{e}");
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

    // The form (with the token its page set) posts and redirects back with the cookie.
    let token = form_token(&html);
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", "wrong"), ("next", "/api/page"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let again = res.text().await.unwrap();
    assert!(again.contains("invalid email or password"));
    assert_eq!(form_token(&again), token, "the page shown again keeps the browser's token");
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", PASSWORD), ("next", "/api/page"), ("csrf", &token)])
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
    // A client that keeps sending its Basic credentials (browsers resend them to the same
    // realm, curl -u on every request) is signed in by its cookie now: the password still
    // does not reach the upstream.
    let res =
        fresh.get(format!("{}/api/x", s.gw.url)).basic_auth("gia@example.com", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["headers"].get("authorization").is_none(), "the password reached the upstream: {body}");
    let res =
        browser().get(format!("{}/api/x", s.gw.url)).basic_auth("gia@example.com", Some("nope")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The CSRF token the sign-in page embedded in its form.
fn form_token(html: &str) -> String {
    let field = "name=\"csrf\" value=\"";
    let at = html.find(field).expect("the form carries a token") + field.len();
    html[at..].split('"').next().unwrap().to_owned()
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
    caught_up(&s.gw).await;
    assert_eq!(s.gw.gateway.route_count(), 2);
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

    // The upstream's own answers pass as they are (not rewritten into our JSON errors).
    let res = c.get(format!("{}/api/teapot", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), "short and stout");

    // Slow: read_timeout 300 ms on the service → 504 with a JSON error.
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/services/{}", s.service), Some(json!({"read_timeout": 300}))).await;
    assert_eq!(st, StatusCode::OK);
    caught_up(&s.gw).await;
    let res = c.get(format!("{}/api/slow", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.headers()["content-type"], "application/json");
    let e: Value = res.json().await.unwrap();
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
    caught_up(&s.gw).await;
    let res = c.get(format!("{}/api/hello", s.gw.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(res.headers()["content-type"], "application/json");
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_gateway");
}

// ---- raw HTTP: requests exactly as sent -------------------------------------------------------

/// One answer read off a raw socket.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `head` (and `body`) as they are, without a client library normalising anything,
/// and reads the answer until the server closes.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before reading a body it refuses.
    let _ = s.write_all(body).await;
    let mut buf = vec![];
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    Raw { status, headers, body: body.to_owned() }
}

async fn raw_get(s: &Setup, target: &str, extra: &str) -> Raw {
    raw(s.gw.addr, &format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n{extra}Connection: close\r\n\r\n"), b"").await
}

/// An upstream as lenient as upstreams get: it decodes percent-escapes until nothing changes
/// (so double encoding too), reads `\` as `/`, drops `;parameters` from segments (servlet
/// containers), resolves dot segments and collapses slashes, then serves `/app/secret.txt`.
async fn normalising_upstream() -> SocketAddr {
    fn decode_once(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = vec![];
        let mut i = 0;
        while i < b.len() {
            let hex = |at: usize| b.get(at).and_then(|c| (*c as char).to_digit(16));
            match (b[i], hex(i + 1), hex(i + 2)) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    fn resolve(raw: &str) -> String {
        let mut p = raw.to_owned();
        loop {
            let d = decode_once(&p);
            if d == p {
                break;
            }
            p = d;
        }
        let mut stack: Vec<&str> = vec![];
        for seg in p.split(['/', '\\']) {
            match seg.split(';').next().unwrap_or("") {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                s => stack.push(s),
            }
        }
        format!("/{}", stack.join("/"))
    }
    async fn serve(req: Request) -> axum::response::Response {
        let raw = req.uri().path().to_owned();
        let resolved = resolve(&raw);
        if resolved == "/app/secret.txt" {
            return "TOP-SECRET".into_response();
        }
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap_or("").to_owned())))
            .collect();
        axum::Json(json!({"path": raw, "resolved": resolved, "headers": headers})).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(serve)).await;
    });
    addr
}

/// A protected route `/app` (session plugin, unauthenticated requests refused) and an open
/// route `/public`, both on the normalising upstream, paths kept (`strip_path: false`).
async fn protected_and_open(backend: Backend) -> Setup {
    let t = spawn_app(backend).await;
    let gw = t.spawn_gateway().await;
    let up = normalising_upstream().await;
    let (st, service) =
        api(&t, Method::POST, "/v2/gateway/services", Some(json!({"name": "files", "url": format!("http://{up}")})))
            .await;
    assert_eq!(st, StatusCode::CREATED, "{service}");
    let sid = service["service"]["id"].as_str().unwrap().to_owned();
    let mut route_ids = vec![];
    for (name, path) in [("app", "/app"), ("public", "/public")] {
        let (st, r) = api(
            &t,
            Method::POST,
            "/v2/gateway/routes",
            Some(json!({"name": name, "paths": [path], "strip_path": false, "service": {"id": sid}})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        route_ids.push(r["route"]["id"].as_str().unwrap().to_owned());
    }
    // And `/files`, stripped, onto the upstream's `/public` tree.
    let (st, under) = api(
        &t,
        Method::POST,
        "/v2/gateway/services",
        Some(json!({"name": "files-under-public", "url": format!("http://{up}/public")})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{under}");
    let (st, r) = api(
        &t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "files", "paths": ["/files"], "service": {"id": under["service"]["id"]}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let (st, plugin) = api(
        &t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "route": {"id": route_ids[0]},
                    "config": {"cookie_secure": false, "secret": "a-test-secret", "unauthenticated": "reject"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{plugin}");
    caught_up(&gw).await;
    user(&t, "gia@example.com").await;
    let pid = plugin["plugin"]["id"].as_str().unwrap().to_owned();
    Setup { t, gw, service: sid, route: route_ids.remove(0), plugin: pid }
}

/// Every spelling of "the open route, then up and into the protected one".
const TRAVERSALS: &[&str] = &[
    "/public/../app/secret.txt",
    "/public/%2e%2e/app/secret.txt",
    "/public/%2E%2E/app/secret.txt",
    "/public/.%2e/app/secret.txt",
    "/public/%2e./app/secret.txt",
    "/public/./../app/secret.txt",
    "/public/%2e/%2e%2e/app/secret.txt",
    "/public//../app/secret.txt",
    "/public;x/../app/secret.txt",
    "/public/..%2fapp/secret.txt",
    "/public/..%2Fapp/secret.txt",
    "/public/%2e%2e%2fapp/secret.txt",
    "/public/..%5capp/secret.txt",
    "/public/..%5Capp/secret.txt",
    "/public/..\\app/secret.txt",
    "/public\\..\\app\\secret.txt",
    "//app/secret.txt",
    "///app//secret.txt",
    "/public/%252e%252e/app/secret.txt",
    "/public/%25%32%65%25%32%65/app/secret.txt",
    "/public/%252e%252e%252fapp/secret.txt",
    "/public/..;/app/secret.txt",
    "/public/..;x=1/app/secret.txt",
    "/public/..%3B/app/secret.txt",
    "/public/..%3bx/app/secret.txt",
    "/public/.%3B/../app/secret.txt",
    "/public/..%20/app/secret.txt",
    "/public/.../app/secret.txt",
    "/public/.;/../app/secret.txt",
    "/public/%c0%ae%c0%ae/app/secret.txt",
    "/public/..%00/app/secret.txt",
    "/public/..%0d%0a/app/secret.txt",
    "/public/%u002e%u002e/app/secret.txt",
    "/app/secret.txt",
    "/app/./secret.txt",
    "/app/x/../secret.txt",
];

async fn dot_segments_never_walk_into_a_protected_route(backend: Backend) {
    let s = protected_and_open(backend).await;
    for target in TRAVERSALS {
        let res = raw_get(&s, target, "").await;
        assert!(!res.body.contains("TOP-SECRET"), "{target} reached the protected file: {}", res.body);
        assert!(
            matches!(res.status, 400 | 401),
            "{target}: expected 400 (refused) or 401 (routed to /app), got {} {}",
            res.status,
            res.body
        );
        assert_eq!(res.header("content-type"), Some("application/json"), "{target}");
        let code = res.json()["error"]["code"].as_str().map(str::to_owned);
        assert!(matches!(code.as_deref(), Some("bad_path" | "unauthorized")), "{target}: {}", res.body);
    }
    // A stripped prefix that ends inside a segment never leaves a dot segment to climb out of
    // the service's path (`/files..` is not under `/files`).
    for target in
        ["/files../app/secret.txt", "/files..;x/app/secret.txt", "/files..%3Bx/app/secret.txt", "/files./../app"]
    {
        let res = raw_get(&s, target, "").await;
        assert!(!res.body.contains("TOP-SECRET"), "{target} reached the protected file");
        assert!(matches!(res.status, 400 | 401 | 404), "{target}: {} {}", res.status, res.body);
    }
    let res = raw_get(&s, "/files/x", "").await;
    assert_eq!((res.status, res.json()["path"].as_str()), (200, Some("/public/x")), "{}", res.body);
    // The open route works, and the upstream sees exactly the normalised path.
    let res = raw_get(&s, "/public/a/../b/%7e%41%2e/./c", "").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["path"], "/public/b/~A./c");
    // Signed in, the same traversal reaches the file: the route was chosen on the normalised
    // path and exactly that path was forwarded.
    let login = r#"{"email":"gia@example.com","password":"correct horse battery staple","next":"/app/"}"#;
    let res = raw(
        s.gw.addr,
        &format!(
            "POST /.tessera/login HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            login.len()
        ),
        login.as_bytes(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let cookie = res.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let res = raw_get(&s, "/public/%2e%2e/app/secret.txt", &format!("Cookie: {cookie}\r\n")).await;
    assert_eq!((res.status, res.body.as_str()), (200, "TOP-SECRET"));
}

// ---- sign-in: redirects, CSRF, panics ------------------------------------------------------

/// `setup` plus a session plugin on `/` (so a refused `next` that falls back to `/` still
/// finds a plugin and the redirect itself is what is checked).
async fn setup_with_root(backend: Backend) -> Setup {
    let s = setup(backend, json!({})).await;
    let (st, r) = api(
        &s.t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "root", "paths": ["/"], "service": {"id": s.service}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let (st, p) = api(
        &s.t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "route": {"id": r["route"]["id"]},
                    "config": {"cookie_secure": false, "secret": "benchmark-secret-change-me"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    caught_up(&s.gw).await;
    s
}

/// A browser that loaded the sign-in page: its jar holds the token cookie; the token is returned.
async fn with_form(s: &Setup) -> (reqwest::Client, String) {
    let c = browser();
    let page = c.get(format!("{}/.tessera/login", s.gw.url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        cookies(page.headers()).iter().any(|c| c.starts_with("tessera_login_csrf=") && c.contains("SameSite=Strict"))
    );
    let token = form_token(&page.text().await.unwrap());
    (c, token)
}

#[tokio::test]
async fn sign_in_redirects_only_to_local_paths() {
    let s = setup_with_root(Backend::Sqlite).await;
    let (c, token) = with_form(&s).await;
    for (next, location) in [
        ("/%09/evil.com", "/"),
        ("/\t/evil.com", "/"),
        ("//evil.com", "/"),
        ("///evil.com", "/"),
        ("/\\evil.com", "/"),
        ("/\\/evil.com", "/"),
        ("https://evil.com", "/"),
        ("https://evil.example/api/page", "/"),
        ("javascript:alert(1)", "/"),
        ("/%2F%2Fevil.com", "/"),
        ("/%2f/evil.com", "/"),
        ("/%5Cevil.com", "/"),
        ("%0d%0aSet-Cookie:x", "/"),
        ("/api/x\r\nSet-Cookie: x=1", "/"),
        ("/api/x?a=%0d%0aSet-Cookie:x", "/"),
        ("/%E2%80%AE/evil.com", "/%E2%80%AE/evil.com"),
        ("evil.com", "/"),
        ("", "/"),
        ("/api/../api/page?x=1#top", "/api/page?x=1#top"),
        ("/api/page", "/api/page"),
    ] {
        let res = c
            .post(format!("{}/.tessera/login", s.gw.url))
            .form(&[("email", "gia@example.com"), ("password", PASSWORD), ("next", next), ("csrf", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "next={next:?}");
        assert_eq!(res.headers()["location"], location, "next={next:?}");
    }
    // The same rule for `next` in the query, and in JSON (where it is reported back).
    let res = c
        .post(format!("{}/.tessera/login?next=%2F%09%2Fevil.com", s.gw.url))
        .form(&[("email", "gia@example.com"), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!((res.status(), res.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/"));
    let res = c
        .post(format!("{}/.tessera/login", s.gw.url))
        .json(&json!({"email": "gia@example.com", "password": PASSWORD, "next": "//evil.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["session"]["next"], "/");
    // The page never puts a foreign target in its form.
    let page = c.get(format!("{}/.tessera/login?next=%2F%2Fevil.com", s.gw.url)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("name=\"next\" value=\"/\""));
}

#[tokio::test]
async fn a_crlf_next_after_a_correct_password_is_answered() {
    let s = setup_with_root(Backend::Sqlite).await;
    let (c, token) = with_form(&s).await;
    let cookie = format!("tessera_login_csrf={token}");
    // Raw, so the CR/LF reaches the form decoder exactly as an attacker sends it.
    for next in ["%0D%0ASet-Cookie:%20x=1", "/api%0D%0ASet-Cookie:%20x=1", "/api%0Ax"] {
        let body = format!("email=gia%40example.com&password=correct+horse+battery+staple&next={next}&csrf={token}");
        let res = raw(
            s.gw.addr,
            &format!(
                "POST /.tessera/login HTTP/1.1\r\nHost: gw.test\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
            body.as_bytes(),
        )
        .await;
        assert_eq!(res.status, 303, "next={next}: the connection must be answered, not dropped ({})", res.body);
        assert_eq!(res.header("location"), Some("/"), "next={next}");
        assert!(res.headers.iter().all(|(k, v)| !(k.eq_ignore_ascii_case("set-cookie") && v.starts_with("x="))));
    }
    drop(c);
}

#[tokio::test]
async fn sign_in_refuses_cross_site_requests() {
    let s = setup(Backend::Sqlite, json!({})).await;
    let url = format!("{}/.tessera/login", s.gw.url);
    let own = s.gw.url.clone();
    let form = |token: &str| {
        vec![
            ("email", "gia@example.com".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("next", "/api/x".to_owned()),
            ("csrf", token.to_owned()),
        ]
    };
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert!(res.headers().get_all(SET_COOKIE).iter().all(|c| !c.to_str().unwrap().starts_with("session=")));
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["code"], "csrf", "{e}");
    };
    // A form without the page's token, or with another browser's token.
    let (c, token) = with_form(&s).await;
    refused(c.post(&url).form(&form("")).send().await.unwrap()).await;
    let (_, other_token) = with_form(&s).await;
    refused(c.post(&url).form(&form(&other_token)).send().await.unwrap()).await;
    refused(browser().post(&url).form(&form(&token)).send().await.unwrap()).await;
    // With the right token but sent from another site.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        ("origin", "null"),
    ] {
        refused(c.post(&url).header(name, value).form(&form(&token)).send().await.unwrap()).await;
    }
    // JSON from a page of another origin is refused too; a program's JSON passes.
    let json_login = json!({"email": "gia@example.com", "password": PASSWORD, "next": "/api/x"});
    refused(browser().post(&url).header("origin", "http://evil.example").json(&json_login).send().await.unwrap()).await;
    refused(browser().post(&url).header("sec-fetch-site", "cross-site").json(&json_login).send().await.unwrap()).await;
    assert_eq!(browser().post(&url).json(&json_login).send().await.unwrap().status(), StatusCode::OK);
    let res = browser().post(&url).header("origin", &own).header("sec-fetch-site", "same-origin").json(&json_login);
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK, "the gateway's own origin");
    // `text/plain` (which a cross-site form can send without a preflight) is a form: it needs the token.
    let res = browser().post(&url).header("content-type", "text/plain").body(json_login.to_string());
    refused(res.send().await.unwrap()).await;
    // The real form, same origin, with its token.
    let res = c.post(&url).header("origin", &own).header("sec-fetch-site", "same-origin").form(&form(&token));
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/api/x");
}

// ---- headers the gateway owns ---------------------------------------------------------------

const FORGED: &[(&str, &str)] = &[
    ("session-id", "forged"),
    ("session-subject", "root@example.com"),
    ("session-audience", "forged"),
    ("session-timeout", "99999"),
    ("x-forwarded-prefix", "/forged"),
    ("x-forwarded-for", "10.6.6.6"),
    ("x-forwarded-host", "forged.example"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-port", "6666"),
    ("forwarded", "for=10.6.6.6"),
    ("x-real-ip", "10.6.6.6"),
    ("x-tessera-user", "root"),
    ("x-tessera-admin", "true"),
    ("x-consumer-id", "forged"),
    ("x-consumer-username", "root@example.com"),
    ("x-consumer-custom-id", "forged"),
    ("x-credential-identifier", "forged"),
    ("x-authenticated-groups", "admins"),
    ("x-authenticated-userid", "root"),
    ("x-anonymous-consumer", "false"),
];

/// What the upstream received, asserting no forged value arrived.
async fn upstream_saw(s: &Setup, c: &reqwest::Client, path: &str) -> Value {
    let mut req = c.get(format!("{}{path}", s.gw.url));
    for (k, v) in FORGED {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let h = res.json::<Value>().await.unwrap()["headers"].clone();
    for (k, v) in FORGED {
        assert_ne!(h[*k].as_str(), Some(*v), "{path}: the client's {k} reached the upstream: {h}");
    }
    for k in h.as_object().unwrap().keys() {
        assert!(!k.starts_with("x-tessera-"), "{path}: {k} reached the upstream");
    }
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{path}: rebuilt from the real peer");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], s.gw.addr.to_string());
    assert_eq!(h["x-forwarded-port"], s.gw.addr.port().to_string());
    h
}

#[tokio::test]
async fn client_sent_identity_and_forwarding_headers_never_reach_the_upstream() {
    let s =
        setup(Backend::Sqlite, json!({"unauthenticated": "pass", "request_headers": ["id", "subject", "audience"]}))
            .await;
    // A route without any plugin.
    let (st, r) = api(
        &s.t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "open", "paths": ["/open"], "service": {"id": s.service}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    caught_up(&s.gw).await;
    let c = browser();
    let h = upstream_saw(&s, &c, "/open/x").await;
    assert!(h.get("x-forwarded-prefix").is_some_and(|p| p == "/open"), "the gateway's own prefix: {h}");
    assert!(h.get("session-id").is_none() && h.get("x-consumer-id").is_none(), "{h}");

    // `pass` without a session: no identity at all.
    let h = upstream_saw(&s, &c, "/api/x").await;
    for k in ["session-id", "session-subject", "session-audience", "x-consumer-id", "x-consumer-username"] {
        assert!(h.get(k).is_none(), "pass mode forwarded {k}: {h}");
    }
    assert_eq!(h["x-forwarded-prefix"], "/api");

    // Signed in: the gateway's values only.
    sign_in(&c, &s).await;
    let h = upstream_saw(&s, &c, "/api/x").await;
    assert_eq!(h["session-subject"], "gia@example.com");
    assert_eq!(h["session-audience"], "default");
    assert_eq!(h["x-consumer-username"], "gia@example.com");
    assert_eq!(h["session-id"].as_str().unwrap().len(), 43);
}

#[tokio::test]
async fn the_consoles_cookies_never_reach_an_upstream_on_the_same_host() {
    let s = setup(Backend::Sqlite, json!({"unauthenticated": "pass"})).await;
    let (st, r) = api(
        &s.t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"name": "open", "paths": ["/open"], "service": {"id": s.service}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    caught_up(&s.gw).await;
    // A browser signs in to the API (the console's cookies) on the host the gateway serves
    // too: cookies are not kept apart by port, so it sends them to the gateway as well.
    let c = browser();
    let res = c
        .post(format!("{}/v2/sessions", s.t.url))
        .json(&json!({"email": "gia@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let set = cookies(res.headers());
    let token = cookie_value(&set, "tessera_session").expect("the sign-in set the session cookie").to_owned();
    for path in ["/open/x", "/api/x", "/open/again", "/api/again"] {
        let (status, _, body) = get(&c, &s, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let cookie = body["headers"]["cookie"].as_str().unwrap_or_default();
        assert!(
            !cookie.contains(&token) && !cookie.contains("tessera_session=") && !cookie.contains("tessera_csrf="),
            "{path}: the upstream received the console's cookies: {cookie}"
        );
        if path.ends_with("again") {
            assert!(cookie.contains("upstream=1"), "{path}: the upstream's own cookie passes: {cookie}");
        }
    }
    // Nor can an upstream set them.
    let res = c.get(format!("{}/api/plant", s.gw.url)).send().await.unwrap();
    let set = cookies(res.headers());
    assert!(set.iter().all(|c| !c.starts_with("tessera_session=")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("upstream=2")), "{set:?}");
}

// ---- errors the gateway makes ---------------------------------------------------------------

fn assert_json_error(res: &Raw, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    assert_eq!(res.header("content-type"), Some("application/json"), "{status}: {:?}", res.headers);
    assert_eq!(res.json()["error"]["code"], code, "{}", res.body);
    assert!(res.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", res.body);
}

#[tokio::test]
async fn every_error_of_the_gateway_is_json() {
    let s = setup(Backend::Sqlite, json!({}));
    let s = s.await;
    assert_json_error(&raw_get(&s, "/api/..%2f..%2fetc/passwd", "").await, 400, "bad_path");
    assert_json_error(&raw_get(&s, "/api/%zz", "").await, 400, "bad_path");
    assert_json_error(&raw_get(&s, "/nowhere", "").await, 404, "no_route");
    assert_json_error(&raw_get(&s, "/api/x", "").await, 401, "unauthorized");
    let long = format!("/api/{}", "a".repeat(9000));
    let res = raw_get(&s, &long, "").await;
    assert_json_error(&res, 414, "uri_too_long");
    assert_eq!(res.header("connection"), Some("close"));
    // More than 100 fields: hyper refuses the head itself, a 431 without a body (listener.rs).
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_eq!(raw_get(&s, "/api/x", &many).await.status, 431);
    let big = format!("x-big: {}\r\n", "b".repeat(40 * 1024));
    assert_json_error(&raw_get(&s, "/api/x", &big).await, 431, "headers_too_large");
    let res =
        raw(s.gw.addr, "DELETE /.tessera/login HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", b"").await;
    assert_json_error(&res, 405, "method_not_allowed");

    // 413, on a kept-alive connection: the unread body means the connection closes, and says so.
    let body = vec![b'a'; 100 * 1024];
    let res = raw(
        s.gw.addr,
        &format!(
            "POST /.tessera/login HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        &body,
    )
    .await;
    assert_json_error(&res, 413, "too_large");
    assert_eq!(res.header("connection"), Some("close"));
    // A 401 before a POST body was read closes too.
    let res = raw(s.gw.addr, "POST /api/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n\r\n", b"hello").await;
    assert_json_error(&res, 401, "unauthorized");
    assert_eq!(res.header("connection"), Some("close"));
    // A 403 from the sign-in's CSRF check.
    let res = raw(
        s.gw.addr,
        "POST /.tessera/login HTTP/1.1\r\nHost: gw.test\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_json_error(&res, 403, "csrf");
}

// ---- configuration input --------------------------------------------------------------------

#[tokio::test]
async fn control_characters_and_a_second_session_plugin_are_refused() {
    let s = setup(Backend::Sqlite, json!({}));
    let s = s.await;
    let t = &s.t;
    let refused = |path: &'static str, body: Value, field: &'static str| async move {
        let (st, e) = api(t, Method::POST, path, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}: {e}");
    };
    let svc = json!({"id": s.service});
    for (bad, field) in [
        (json!({"name": "a\r\nb", "url": "http://127.0.0.1:1"}), "name"),
        (json!({"name": "ansi\u{1b}[31m", "url": "http://127.0.0.1:1"}), "name"),
        (json!({"url": "http://127.0.0.1:1/a\r\nX-Injected: 1"}), "url"),
        (json!({"url": "http://127.0.0.1:1/a/../b"}), "path"),
        (json!({"host": "evil\u{0}.example"}), "host"),
        (json!({"host": "a b"}), "host"),
        (json!({"url": "http://127.0.0.1:1", "tags": ["ok", "\u{1b}[2J"]}), "tags[1]"),
    ] {
        refused("/v2/gateway/services", bad, field).await;
    }
    for (bad, field) in [
        (json!({"name": "r\n", "paths": ["/r"], "service": svc}), "name"),
        (json!({"paths": ["/r\r\n"], "service": svc}), "paths[0]"),
        (json!({"paths": ["/r/../x"], "service": svc}), "paths[0]"),
        (json!({"paths": ["/%2e%2e"], "service": svc}), "paths[0]"),
        (json!({"hosts": ["a\u{1b}b"], "service": svc}), "hosts[0]"),
    ] {
        refused("/v2/gateway/routes", bad, field).await;
    }
    for (config, field) in [
        (json!({"cookie_path": "/\r\nSet-Cookie: x=1"}), "config.cookie_path"),
        (json!({"cookie_path": "/a;b"}), "config.cookie_path"),
        (json!({"cookie_domain": "example.com\r\n"}), "config.cookie_domain"),
        (json!({"cookie_domain": "exa mple.com"}), "config.cookie_domain"),
        (json!({"audience": "a\u{1b}[0m"}), "config.audience"),
        (json!({"audience": "a\nb"}), "config.audience"),
        (json!({"secret": "s\u{0}"}), "config.secret"),
    ] {
        refused("/v2/gateway/plugins", json!({"name": "session", "config": config}), field).await;
    }

    // One session plugin per route, per service, and globally: 409, and nothing changed.
    let conflict = |body: Value| async move {
        let (st, e) = api(t, Method::POST, "/v2/gateway/plugins", Some(body)).await;
        assert_eq!(st, StatusCode::CONFLICT, "{e}");
        assert_eq!(e["error"]["code"], "conflict");
    };
    conflict(json!({"name": "session", "route": {"id": s.route}})).await;
    let (st, _) = api(t, Method::POST, "/v2/gateway/plugins", Some(json!({"name": "session", "service": svc}))).await;
    assert_eq!(st, StatusCode::CREATED);
    conflict(json!({"name": "session", "service": svc})).await;
    let (st, _) = api(t, Method::POST, "/v2/gateway/plugins", Some(json!({"name": "session"}))).await;
    assert_eq!(st, StatusCode::CREATED);
    conflict(json!({"name": "session", "config": {"audience": "other"}})).await;
    let (_, list) = api(t, Method::GET, "/v2/gateway/plugins", None).await;
    assert_eq!(list["meta"]["total"], 3, "{list}");
    // Moving a plugin onto a scope that has one is refused too; staying put is not.
    let global = list["plugins"].as_array().unwrap().iter().find(|p| p["route"].is_null() && p["service"].is_null());
    let global = global.unwrap()["id"].as_str().unwrap().to_owned();
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/plugins/{global}"), Some(json!({"route": {"id": s.route}}))).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) =
        api(t, Method::PATCH, &format!("/v2/gateway/plugins/{global}"), Some(json!({"config": {"audience": "x"}})))
            .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn plugin_secrets_are_write_only_and_kept_across_updates() {
    let s = setup(Backend::Sqlite, json!({}));
    let s = s.await;
    let t = &s.t;
    let at = format!("/v2/gateway/plugins/{}", s.plugin);
    let (_, one) = api(t, Method::GET, &at, None).await;
    assert!(one["plugin"]["config"]["secret"].is_null(), "{one}");
    let (_, list) = api(t, Method::GET, "/v2/gateway/plugins", None).await;
    assert!(list["plugins"][0]["config"]["secret"].is_null(), "{list}");
    assert!(!list.to_string().contains("benchmark-secret-change-me") && !one.to_string().contains("benchmark-secret"));
    let (st, created) = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "config": {"secret": "s3cr3t-new"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(created["plugin"]["config"]["secret"].is_null(), "writes answer it as null too: {created}");

    let c = browser();
    sign_in(&c, &s).await;
    assert_eq!(get(&c, &s, "/api/x").await.0, StatusCode::OK);
    // A patch without the secret, and a replace with what a read answered (secret: null),
    // keep it: the cookie sealed before still opens.
    let (st, _) = api(t, Method::PATCH, &at, Some(json!({"config": {"idling_timeout": 600}}))).await;
    assert_eq!(st, StatusCode::OK);
    let (_, mut read) = api(t, Method::GET, &at, None).await;
    read["plugin"]["config"]["rolling_timeout"] = json!(7200);
    let (st, e) = api(t, Method::PUT, &at, Some(read["plugin"].clone())).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    caught_up(&s.gw).await;
    assert_eq!(get(&c, &s, "/api/x").await.0, StatusCode::OK, "the secret survived both updates");
    // A new secret is taken: cookies sealed with the old one stop opening.
    let (st, _) = api(t, Method::PATCH, &at, Some(json!({"config": {"secret": "rotated-secret"}}))).await;
    assert_eq!(st, StatusCode::OK);
    caught_up(&s.gw).await;
    assert_eq!(get(&c, &s, "/api/x").await.0, StatusCode::UNAUTHORIZED, "rotated");
}

tessera_testkit::both_backends!(
    dot_segments_never_walk_into_a_protected_route,
    cookie_storage_passes_through,
    server_storage_passes_through_and_terminates,
    idling_touch_renewal_and_absolute_timeouts,
);
