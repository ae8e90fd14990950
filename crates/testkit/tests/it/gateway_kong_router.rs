//! Kong's router and `protocols` through the real gateway listener: a plain-http request to
//! an https-only route is Kong's 426; seed 003's `protocols = ["wss"]` session plugin runs
//! only for WebSockets over TLS (plain and https requests pass, a wss upgrade without a
//! session is refused); a regex route with `regex_priority` and header matching win as in
//! Kong; a second session plugin on one route-and-service scope is a 409, also when two
//! creates race.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::{Backend, TestApp, spawn_app};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::gateway_tls::{Ca, api, tls_node};
use crate::gateway_ws::ws_echo_upstream;

/// An HTTP upstream answering every request with its label and the path it got.
async fn path_upstream(label: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        axum::Router::new().fallback(move |uri: axum::http::Uri| async move { format!("{label}:{}", uri.path()) });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn create(t: &TestApp, kind: &str, body: Value) -> String {
    let (s, v) = api(t, Method::POST, &format!("/v2/gateway/{kind}s"), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v[kind]["id"].as_str().unwrap().to_owned()
}

async fn caught_up(t: &TestApp) -> std::net::SocketAddr {
    let gw = t.spawn_gateway().await;
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up()).await.expect("the gateway caught up");
    gw.addr
}

#[tokio::test]
async fn routes_match_by_kongs_precedence_and_https_only_routes_answer_426() {
    let t = spawn_app(Backend::Sqlite).await;
    let mut services = vec![];
    for label in ["prefix", "regex", "beta"] {
        let up = path_upstream(label).await;
        services.push(create(&t, "service", json!({"name": label, "url": format!("http://{up}")})).await);
    }
    let sid = services[0].clone();
    create(&t, "route", json!({"name": "prefix", "paths": ["/v/1"], "service": {"id": services[0]}})).await;
    create(
        &t,
        "route",
        json!({"name": "regex", "paths": ["~/v/\\d+$"], "regex_priority": 5,
        "service": {"id": services[1]}}),
    )
    .await;
    create(
        &t,
        "route",
        json!({"name": "beta", "paths": ["/v"], "headers": {"x-channel": ["~*^beta"]},
        "service": {"id": services[2]}}),
    )
    .await;
    create(
        &t,
        "route",
        json!({"name": "secure", "paths": ["/secure"], "protocols": ["https"], "service": {"id": sid}}),
    )
    .await;
    // A regex that does not compile is refused with the field and its index.
    let (s, e) = api(
        &t,
        Method::POST,
        "/v2/gateway/routes",
        Some(json!({"paths": ["/ok", "~/v/(\\d+"], "service": {"id": sid}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e.to_string().contains("paths[1]"), "{e}");
    let addr = caught_up(&t).await;
    let http = reqwest::Client::new();
    let get = |path: &str, header: Option<&str>| {
        let mut req = http.get(format!("http://{addr}{path}"));
        if let Some(h) = header {
            req = req.header("x-channel", h);
        }
        req.send()
    };
    let text = |res: reqwest::Response| async move { res.text().await.unwrap() };
    // Two routes take /v/1: the regex one wins over the prefix (Kong: a regex path ranks
    // above any prefix); strip_path removes what the regex matched.
    assert_eq!(text(get("/v/1", None).await.unwrap()).await, "regex:/");
    assert_eq!(text(get("/v/1/x", None).await.unwrap()).await, "prefix:/x", "the regex ends with $");
    // The header route sets two fields (paths + headers): it beats both for a beta client,
    // case-insensitively.
    assert_eq!(text(get("/v/1", Some("Beta-2")).await.unwrap()).await, "beta:/1");
    assert_eq!(text(get("/v/1", Some("stable")).await.unwrap()).await, "regex:/");
    // https only: plain http gets Kong's 426 with the Upgrade header, not the upstream.
    let res = get("/secure/x", None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(res.headers()["upgrade"], "TLS/1.2, HTTP/1.1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Please use HTTPS protocol", "{body}");
}

#[tokio::test]
async fn a_wss_only_session_plugin_runs_only_for_websockets_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let t = tls_node(dir.path(), &ca.leaf("gateway"), None).await;
    let up = path_upstream("page").await;
    let ws = ws_echo_upstream().await;
    let http_sid = create(&t, "service", json!({"name": "http", "url": format!("http://{up}")})).await;
    let ws_sid = create(&t, "service", json!({"name": "ws", "url": format!("http://{ws}")})).await;
    let rid = create(&t, "route", json!({"name": "page", "paths": ["/page"], "service": {"id": http_sid}})).await;
    let wsr = create(&t, "route", json!({"name": "socket", "paths": ["/socket"], "service": {"id": ws_sid}})).await;
    // Seed 003's example: protocols ["wss"], and Tessera's reject for unauthenticated requests.
    for route in [&rid, &wsr] {
        create(
            &t,
            "plugin",
            json!({"name": "session", "route": {"id": route}, "protocols": ["wss"],
            "config": {"secret": "seed-003-secret", "unauthenticated": "reject", "idling_timeout": 0.19,
                       "absolute_timeout": 3.79, "stale_ttl": 7.29}}),
        )
        .await;
    }
    let addr = caught_up(&t).await;
    // An https request is not wss: the plugin does not run, the upstream answers.
    let res = ca.browser().get(format!("https://127.0.0.1:{}/page/x", addr.port())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "Kong would pass it");
    assert_eq!(res.text().await.unwrap(), "page:/x");
    // A WebSocket upgrade over TLS without a session: the plugin runs and refuses it.
    let connector = tokio_rustls::TlsConnector::from(ca.client_config(&[b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(server, tcp).await.unwrap();
    let req = format!("wss://127.0.0.1:{}/socket", addr.port()).into_client_request().unwrap();
    match tokio_tungstenite::client_async(req, tls).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected the plugin's 401 at a wss upgrade, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn one_session_plugin_per_scope_even_when_creates_race() {
    let t = spawn_app(Backend::Sqlite).await;
    let up = path_upstream("r").await;
    let sid = create(&t, "service", json!({"name": "up", "url": format!("http://{up}")})).await;
    let rid = create(&t, "route", json!({"name": "r", "paths": ["/r"], "service": {"id": sid}})).await;
    let both = json!({"name": "session", "route": {"id": rid}, "service": {"id": sid}});
    let route_only = json!({"name": "session", "route": {"id": rid}});
    // Ten creates on the route-and-service scope at once: exactly one wins, the rest are 409s
    // naming the plugin that holds the scope.
    let answers = futures_util::future::join_all(
        (0..10).map(|_| api(&t, Method::POST, "/v2/gateway/plugins", Some(both.clone()))),
    )
    .await;
    let created: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, v)| v).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let winner = created[0]["plugin"]["id"].as_str().unwrap();
    for (s, v) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::CONFLICT, "{v}");
        assert!(v.to_string().contains(winner), "the 409 names the existing plugin: {v}");
    }
    // The route alone is another scope (Kong keys plugins by route, service and consumer).
    let (s, v) = api(&t, Method::POST, "/v2/gateway/plugins", Some(route_only.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = api(&t, Method::POST, "/v2/gateway/plugins", Some(route_only)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}
