//! References between gateway objects through the API: a service a route names cannot go,
//! a route or service takes its plugins with it, a write naming what is gone is a 400 naming
//! the field; and two nodes racing deletes against writes leave nothing dangling.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::{Backend, TestApp, spawn_app};

use crate::gateway_tls::api;

async fn created(t: &TestApp, kind: &str, body: Value) -> String {
    let (s, v) = api(t, Method::POST, &format!("/v2/gateway/{kind}s"), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v[kind]["id"].as_str().unwrap().to_owned()
}

async fn status(t: &TestApp, method: Method, kind: &str, id: &str) -> (StatusCode, Value) {
    api(t, method, &format!("/v2/gateway/{kind}s/{id}"), None).await
}

fn refused(s: StatusCode, v: &Value, field: &str) {
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("does not exist"), "{v}");
}

/// Every route names a service that exists and every plugin a route and service that exist,
/// as the node reads them.
async fn nothing_dangles(t: &TestApp, when: &str) {
    let (_, services) = api(t, Method::GET, "/v2/gateway/services", None).await;
    let (_, routes) = api(t, Method::GET, "/v2/gateway/routes", None).await;
    let (_, plugins) = api(t, Method::GET, "/v2/gateway/plugins", None).await;
    let ids = |list: &Value, key: &str| -> Vec<Value> {
        list[key].as_array().unwrap().iter().map(|o| o["id"].clone()).collect()
    };
    let (service_ids, route_ids) = (ids(&services, "services"), ids(&routes, "routes"));
    for r in routes["routes"].as_array().unwrap() {
        assert!(service_ids.contains(&r["service"]["id"]), "{when}: route {r} names a service that is gone");
    }
    for p in plugins["plugins"].as_array().unwrap() {
        for (field, alive) in [("route", &route_ids), ("service", &service_ids)] {
            let named = &p[field]["id"];
            assert!(named.is_null() || alive.contains(named), "{when}: plugin {p} names a {field} that is gone");
        }
    }
}

async fn deletes_follow_the_references(backend: Backend) {
    let t = spawn_app(backend).await;
    let svc = created(&t, "service", json!({"name": "up", "url": "http://127.0.0.1:1"})).await;
    let route = created(&t, "route", json!({"name": "r", "paths": ["/r"], "service": {"id": svc}})).await;
    let on_route = created(&t, "plugin", json!({"name": "session", "route": {"id": route}})).await;
    let on_service = created(&t, "plugin", json!({"name": "session", "service": {"id": svc}})).await;

    // Named by a route: a 409 naming it, and nothing changed (its plugins are all there).
    let (s, v) = status(&t, Method::DELETE, "service", &svc).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("route {route} (r)")) && message.contains("delete or move"), "{v}");
    for p in [&on_route, &on_service] {
        assert_eq!(status(&t, Method::GET, "plugin", p).await.0, StatusCode::OK);
    }
    // The route goes with its plugin; the service's stays.
    assert_eq!(status(&t, Method::DELETE, "route", &route).await.0, StatusCode::NO_CONTENT);
    assert_eq!(status(&t, Method::GET, "plugin", &on_route).await.0, StatusCode::NOT_FOUND);
    assert_eq!(status(&t, Method::GET, "plugin", &on_service).await.0, StatusCode::OK);
    // Naming what is gone is a 400 on the field that names it, on create and on change.
    let (s, v) =
        api(&t, Method::POST, "/v2/gateway/plugins", Some(json!({"name": "session", "route": {"id": route}}))).await;
    refused(s, &v, "route.id");
    let path = format!("/v2/gateway/plugins/{on_service}");
    let (s, v) = api(&t, Method::PATCH, &path, Some(json!({"route": {"id": route}}))).await;
    refused(s, &v, "route.id");
    let (s, v) = api(&t, Method::PATCH, &path, Some(json!({"service": {"id": route}}))).await;
    refused(s, &v, "service.id");
    // The service goes with its plugin.
    assert_eq!(status(&t, Method::DELETE, "service", &svc).await.0, StatusCode::NO_CONTENT);
    assert_eq!(status(&t, Method::GET, "plugin", &on_service).await.0, StatusCode::NOT_FOUND);
    let (s, v) =
        api(&t, Method::POST, "/v2/gateway/routes", Some(json!({"paths": ["/x"], "service": {"id": svc}}))).await;
    refused(s, &v, "service.id");
    nothing_dangles(&t, "at the end").await;
}

tessera_testkit::both_backends!(deletes_follow_the_references);

mod nodes {
    use super::*;

    /// Two nodes on one PostgreSQL: node A deletes a route while node B puts plugins on it,
    /// then deletes the service while node B adds routes to it. Each write is either refused
    /// with a 400 naming its field or keeps (or goes with) what it names; nothing dangles.
    async fn nodes_racing_deletes_and_writes_leave_nothing_dangling(backend: Backend) {
        let a = spawn_app(backend).await;
        let b = a.another_node().await;
        let (mut plugins_taken, mut services_kept) = (0, 0);
        for round in 0..6 {
            let svc = created(&a, "service", json!({"name": format!("s{round}"), "url": "http://127.0.0.1:1"})).await;
            let route = created(&a, "route", json!({"paths": [format!("/r{round}")], "service": {"id": svc}})).await;
            // A plugin node B wrote before, which must go with the route, and one it writes
            // while node A deletes the route: refused, or written and taken with it.
            let before = created(&b, "plugin", json!({"name": "session", "route": {"id": route}})).await;
            let during = json!({"name": "session", "route": {"id": route}, "service": {"id": svc}});
            // The delete gives the write a head start that grows with the round, so that the
            // rounds cover both orders (a yield lets the servers' tasks run; nothing sleeps).
            let delete = async {
                for _ in 0..round * 200 {
                    tokio::task::yield_now().await;
                }
                status(&a, Method::DELETE, "route", &route).await
            };
            let ((s, v), deleted) = tokio::join!(api(&b, Method::POST, "/v2/gateway/plugins", Some(during)), delete);
            assert_eq!(deleted.0, StatusCode::NO_CONTENT, "round {round}: {}", deleted.1);
            assert_eq!(status(&b, Method::GET, "plugin", &before).await.0, StatusCode::NOT_FOUND, "round {round}");
            if s == StatusCode::CREATED {
                plugins_taken += 1;
                let id = v["plugin"]["id"].as_str().unwrap();
                assert_eq!(status(&b, Method::GET, "plugin", id).await.0, StatusCode::NOT_FOUND, "round {round}");
            } else {
                refused(s, &v, "route.id");
            }
            nothing_dangles(&b, &format!("round {round}, route")).await;

            let routes = (0..3).map(|i| {
                let body = json!({"paths": [format!("/s{round}-{i}")], "service": {"id": svc}});
                api(&b, Method::POST, "/v2/gateway/routes", Some(body))
            });
            let delete = status(&a, Method::DELETE, "service", &svc);
            let (written, deleted) = tokio::join!(futures_util::future::join_all(routes), delete);
            let kept: Vec<&Value> = written.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, v)| v).collect();
            for (s, v) in written.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
                refused(*s, v, "service.id");
            }
            match deleted.0 {
                StatusCode::NO_CONTENT => assert!(kept.is_empty(), "round {round}: routes name a deleted service"),
                StatusCode::CONFLICT => {
                    assert!(!kept.is_empty(), "round {round}: refused with nothing naming it");
                    services_kept += 1;
                }
                other => panic!("round {round}: {other} {}", deleted.1),
            }
            nothing_dangles(&b, &format!("round {round}, service")).await;
            nothing_dangles(&a, &format!("round {round}, service, node A")).await;
        }
        // How the races went (either side may win each; the invariants hold for both).
        println!(
            "plugins written and taken with their route: {plugins_taken} of 6; services kept: {services_kept} of 6"
        );
    }

    tessera_testkit::postgres_only!(nodes_racing_deletes_and_writes_leave_nothing_dangling);
}
