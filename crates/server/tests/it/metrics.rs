//! Request metrics: counted by route template and status, timed in a histogram, and absent
//! (no layer at all) unless a metrics listener is configured.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use tessera_server::metrics::ApiMetrics;
use tessera_server::{ServerConfig, router_with};

use super::{ADMIN_KEY, call, fixture};

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status_and_timed() {
    let f = fixture().await;
    let metrics = Arc::new(ApiMetrics::new());
    let r = router_with(f.app.clone(), ServerConfig { metrics: Some(metrics.clone()), ..Default::default() });
    for _ in 0..3 {
        let (s, _, _) = call(Method::GET, "/v2/users").bearer(ADMIN_KEY).send(&r).await;
        assert_eq!(s, StatusCode::OK);
    }
    let missing = "/v2/users/00000000-0000-0000-0000-000000000001";
    let (s, _, _) = call(Method::GET, missing).bearer(ADMIN_KEY).send(&r).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(Method::GET, "/v2/users").send(&r).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let text = metrics.render();
    for line in [
        r#"tessera_http_requests_total{method="GET",route="/v2/users",status="200"} 3"#,
        r#"tessera_http_requests_total{method="GET",route="/v2/users",status="401"} 1"#,
        r#"tessera_http_requests_total{method="GET",route="/v2/users/{user_id}",status="404"} 1"#,
        r#"tessera_http_request_duration_seconds_bucket{method="GET",route="/v2/users",le="+Inf"} 4"#,
        r#"tessera_http_request_duration_seconds_count{method="GET",route="/v2/users/{user_id}"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains("00000000-0000-0000-0000-000000000001"), "labels are templates, never ids");
}

#[tokio::test]
async fn without_a_metrics_listener_nothing_is_counted() {
    let f = fixture().await;
    let metrics = Arc::new(ApiMetrics::new());
    let r = router_with(f.app.clone(), ServerConfig::default());
    let (s, _, _) = call(Method::GET, "/healthz").send(&r).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!metrics.render().contains("tessera_http_requests_total{"));
}
