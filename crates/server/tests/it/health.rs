//! `/healthz` (the process serves) and `/readyz` (the store answers and the change feed is
//! up), without credentials; a failing check is named in the 503's body.

use axum::http::{Method, StatusCode};
use tessera_server::router;

use super::{call, fixture};

#[tokio::test]
async fn readyz_names_each_check_and_fails_on_a_lost_change_feed() {
    let f = fixture().await;
    let r = router(f.app.clone());
    let (s, _, body) = call(Method::GET, "/healthz").send(&r).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (s, _, body) = call(Method::GET, "/readyz").send(&r).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"][0], serde_json::json!({"name": "store", "ok": true}));
    assert_eq!(body["checks"][1], serde_json::json!({"name": "change_feed", "ok": true}));

    f.app.cache().set_trusted(false);
    let (s, _, body) = call(Method::GET, "/readyz").send(&r).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"][0]["ok"], true);
    assert_eq!(body["checks"][1]["ok"], false);
    assert!(body["checks"][1]["message"].as_str().unwrap().contains("change feed"), "{body}");

    f.app.cache().set_trusted(true);
    let (s, _, _) = call(Method::GET, "/readyz").send(&r).await;
    assert_eq!(s, StatusCode::OK, "ready again once the feed is back");
}
