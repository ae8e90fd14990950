//! The metrics listener after real traffic: the store's statements and their errors, the
//! change feed's health and lag (the PostgreSQL heartbeat), and the gateway's upstreams.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_api_types as wire;
use tessera_startup::Listen;
use tessera_testkit::{Backend, TestApp, spawn_app_with};

async fn node(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.metrics.listen = Listen(Some(SocketAddr::from(([127, 0, 0, 1], 0))))).await
}

async fn scrape(t: &TestApp) -> String {
    let addr = t.metrics_addr().expect("the metrics listener is on");
    let res = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered); 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

fn new_user(email: &str) -> wire::UserCreate {
    wire::UserCreate { email: email.into(), first_name: "Mo".into(), last_name: String::new(), password: None }
}

const INSERTS: &str = r#"tessera_store_statement_duration_seconds_count{verb="insert",table="users"}"#;
const CONFLICTS: &str = r#"tessera_store_statement_errors_total{verb="insert",table="users",kind="conflict"}"#;

async fn store_statements_and_their_errors_are_counted(backend: Backend) {
    let t = node(backend).await;
    let before = scrape(&t).await;
    t.admin.create_user(&new_user("mo@example.com")).await.unwrap();
    let after = scrape(&t).await;
    assert_eq!(value(&after, INSERTS), value(&before, INSERTS) + 1.0, "one user inserted:\n{after}");
    assert!(
        after.contains(r#"tessera_store_statement_duration_seconds_bucket{verb="insert",table="users",le="+Inf"}"#),
        "a histogram per statement kind:\n{after}"
    );
    assert_eq!(value(&after, CONFLICTS), 0.0);

    // The same email again: the store's unique index refuses it, the API answers 409.
    let e = t.admin.create_user(&new_user("mo@example.com")).await.unwrap_err();
    assert!(e.to_string().contains("409"), "{e}");
    let conflicted = scrape(&t).await;
    assert_eq!(value(&conflicted, CONFLICTS), 1.0, "the conflict is counted:\n{conflicted}");
    assert_eq!(value(&conflicted, INSERTS), value(&after, INSERTS) + 1.0, "a failed statement still ran");
    assert!(!conflicted.contains("mo@example.com"), "never a value in a label");
    assert_eq!(value(&conflicted, "tessera_change_feed_up"), 1.0, "{conflicted}");
    assert_eq!(value(&conflicted, "tessera_change_feed_losses_total"), 0.0);
    t.shutdown().await;
}

/// SQLite's feed is in-process: always up, no lag gauge (nothing to measure). PostgreSQL's
/// measures itself: the heartbeat's round trip shows up as the lag gauge within a few
/// seconds of the start, and a heartbeat is no change: the next one leaves the caches warm.
async fn the_change_feed_reports_its_health(backend: Backend) {
    let sqlite = matches!(backend, Backend::Sqlite);
    let t = node(backend).await;
    if sqlite {
        let text = scrape(&t).await;
        assert_eq!(value(&text, "tessera_change_feed_up"), 1.0, "{text}");
        assert!(!text.contains("tessera_change_feed_lag_seconds"), "{text}");
        return t.shutdown().await;
    }
    let heartbeats = "tessera_change_feed_heartbeat_seconds_count";
    let text = scraped_until(&t, |text| value(text, heartbeats) >= 1.0).await;
    let lag = value(&text, "tessera_change_feed_lag_seconds");
    assert!(lag > 0.0 && lag < 5.0, "a sane round trip, not {lag}:\n{text}");
    assert_eq!(value(&text, "tessera_change_feed_up"), 1.0);

    // Warm the credential cache, let one more heartbeat come back, and ask again: a hit.
    t.admin.list_users(&Default::default()).await.unwrap();
    let misses = r#"tessera_auth_cache_lookups_total{result="miss"}"#;
    let warm = scrape(&t).await;
    let seen = value(&warm, heartbeats);
    scraped_until(&t, |text| value(text, heartbeats) > seen).await;
    t.admin.list_users(&Default::default()).await.unwrap();
    let after = scrape(&t).await;
    assert_eq!(value(&after, misses), value(&warm, misses), "a heartbeat flushed the cache:\n{after}");
    t.shutdown().await;
}

/// Scrapes until `done` holds, within one generous deadline (heartbeats come every 5 s).
async fn scraped_until(t: &TestApp, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(t).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "not within 30 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn gateway_upstream_answers_and_failures_are_counted() {
    let t = node(Backend::Sqlite).await;
    let gw = t.spawn_gateway().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") });
        let _ = axum::serve(listener, app).await;
    });
    let api = |method: Method, path: String, body: serde_json::Value| {
        let admin = t.admin.clone();
        async move { admin.raw(method, &path, Some(&body.to_string())).await.unwrap() }
    };
    let (st, service) =
        api(Method::POST, "/v2/gateway/services".into(), json!({"name": "tea", "url": format!("http://{up}")})).await;
    assert_eq!(st, StatusCode::CREATED, "{service}");
    let sid = service["service"]["id"].as_str().unwrap().to_owned();
    let (st, route) =
        api(Method::POST, "/v2/gateway/routes".into(), json!({"paths": ["/tea"], "service": {"id": sid}})).await;
    assert_eq!(st, StatusCode::CREATED, "{route}");
    gw.wait_for_routes(1).await;

    let before = scrape(&t).await;
    let res = reqwest::get(format!("{}/tea", gw.url)).await.unwrap();
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let after = scrape(&t).await;
    let answers = r#"tessera_gateway_upstream_responses_total{class="4xx"}"#;
    assert_eq!(value(&after, answers), value(&before, answers) + 1.0, "{after}");
    let timed = "tessera_gateway_upstream_duration_seconds_count";
    assert_eq!(value(&after, timed), value(&before, timed) + 1.0, "{after}");

    // The upstream goes away: a 502, counted as a connect failure.
    upstream.abort();
    let _ = upstream.await;
    let res = reqwest::get(format!("{}/tea", gw.url)).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let down = scrape(&t).await;
    let connect = r#"tessera_gateway_upstream_failures_total{reason="connect"}"#;
    assert_eq!(value(&down, connect), value(&after, connect) + 1.0, "{down}");
    assert_eq!(value(&down, answers), value(&after, answers), "a failure is no answer");
    t.shutdown().await;
}

tessera_testkit::both_backends!(store_statements_and_their_errors_are_counted, the_change_feed_reports_its_health);
