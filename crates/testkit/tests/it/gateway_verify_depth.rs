//! A service's `tls_verify_depth` enforced on real TLS upstreams: the number of intermediate
//! CA certificates between the upstream's certificate and the root, under the service's CA
//! certificates and under the gateway's default roots alike; a refusal is a 502 counted as a
//! chain too deep, and services with different depths never share a pooled connection.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::{Backend, TestApp, spawn_app, spawn_app_with};

use crate::gateway_tls::{Ca, api, tls_upstream, write};

/// A service (`fields` over its url) and a route `prefix` to it; the service's id.
async fn service(t: &TestApp, url: &str, prefix: &str, fields: Value) -> String {
    let mut body = json!({"name": prefix.trim_start_matches('/'), "url": url});
    tessera_domain::gateway::merge_patch(&mut body, fields);
    let (s, v) = api(t, Method::POST, "/v2/gateway/services", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        api(t, Method::POST, "/v2/gateway/routes", Some(json!({"paths": [prefix], "service": {"id": sid}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    sid
}

/// The gateway's address, once it has caught up with the configuration.
async fn caught_up(t: &TestApp) -> String {
    let gw = t.spawn_gateway().await;
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up()).await.expect("the gateway caught up");
    gw.url
}

/// The status of a request through the gateway, and its error code when it answered itself.
async fn get(base: &str, path: &str) -> (StatusCode, Option<String>) {
    let res = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    (status, v["error"]["code"].as_str().map(str::to_owned))
}

fn ok() -> (StatusCode, Option<String>) {
    (StatusCode::OK, None)
}

fn bad_gateway() -> (StatusCode, Option<String>) {
    (StatusCode::BAD_GATEWAY, Some("bad_gateway".into()))
}

/// The gateway's count of upstream failures for `reason`.
async fn failures(t: &TestApp, reason: &str) -> u64 {
    let mut out = String::new();
    t.spawn_gateway().await.gateway.render_metrics(&mut out);
    let prefix = format!("tessera_gateway_upstream_failures_total{{reason=\"{reason}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{out}"))
        .parse()
        .unwrap()
}

/// Root → intermediate → upstream certificate, and root → upstream certificate, with the
/// root as the services' CA certificate.
async fn the_depth_counts_intermediate_cas_under_a_services_ca_certificates(backend: Backend) {
    let root = Ca::new("Private root CA");
    let intermediate = root.intermediate("Private intermediate CA");
    let chained = tls_upstream(&intermediate.leaf("chained")).await;
    let direct = tls_upstream(&root.leaf("direct")).await;
    let (chained, direct) =
        (format!("https://127.0.0.1:{}", chained.port()), format!("https://127.0.0.1:{}", direct.port()));
    let t = spawn_app(backend).await;
    let (s, v) = api(&t, Method::POST, "/v2/gateway/ca_certificates", Some(json!({"cert": root.pem()}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cas = json!([v["ca_certificate"]["id"]]);
    service(&t, &chained, "/one", json!({"ca_certificates": cas, "tls_verify_depth": 1})).await;
    let zero = service(&t, &chained, "/zero", json!({"ca_certificates": cas, "tls_verify_depth": 0})).await;
    service(&t, &chained, "/unset", json!({"ca_certificates": cas})).await;
    service(&t, &direct, "/direct", json!({"ca_certificates": cas, "tls_verify_depth": 0})).await;
    service(&t, &chained, "/unverified", json!({"tls_verify": false, "tls_verify_depth": 0})).await;
    let base = caught_up(&t).await;

    // Depth 1 takes the intermediate, and leaves a verified connection to the upstream in its pool...
    assert_eq!(get(&base, "/one/x").await, ok());
    // ...which depth 0, to the same upstream, never borrows.
    assert_eq!(get(&base, "/zero/x").await, bad_gateway(), "depth 0 allows no intermediate CA");
    assert_eq!(get(&base, "/unset/x").await, ok(), "no depth: no limit of its own");
    assert_eq!(get(&base, "/direct/x").await, ok(), "depth 0: issued by the trusted CA itself");
    assert_eq!(get(&base, "/unverified/x").await, ok(), "the depth applies only to verified services");
    assert_eq!(get(&base, "/one/x").await, ok());
    assert_eq!(get(&base, "/zero/x").await, bad_gateway());
    assert_eq!((failures(&t, "tls_chain_too_deep").await, failures(&t, "tls").await), (2, 0));

    // Raising the depth takes effect with the next table.
    let (s, v) =
        api(&t, Method::PATCH, &format!("/v2/gateway/services/{zero}"), Some(json!({"tls_verify_depth": 1}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    caught_up(&t).await;
    assert_eq!(get(&base, "/zero/x").await, ok());
}

tessera_testkit::both_backends!(the_depth_counts_intermediate_cas_under_a_services_ca_certificates);

/// Services without CA certificates are verified against the gateway's roots (here
/// `--gateway-upstream-ca`), under the same depth rule.
#[tokio::test]
async fn the_depth_applies_under_the_gateways_default_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::new("Operator's root CA");
    let issuing = root.intermediate("Operator's issuing CA");
    let deeper = issuing.intermediate("Team CA");
    let two_deep = tls_upstream(&deeper.leaf("two-deep")).await;
    let url = format!("https://127.0.0.1:{}", two_deep.port());
    let bundle = write(dir.path(), "upstream-ca.pem", &root.pem());
    let t = spawn_app_with(Backend::Sqlite, move |s| s.gateway.upstream_ca = Some(bundle)).await;
    service(&t, &url, "/zero", json!({"tls_verify_depth": 0})).await;
    service(&t, &url, "/one", json!({"tls_verify_depth": 1})).await;
    service(&t, &url, "/two", json!({"tls_verify_depth": 2})).await;
    service(&t, &url, "/unset", json!({})).await;
    let base = caught_up(&t).await;

    assert_eq!(get(&base, "/two/x").await, ok());
    assert_eq!(get(&base, "/one/x").await, bad_gateway(), "two intermediate CAs, one allowed");
    assert_eq!(get(&base, "/zero/x").await, bad_gateway());
    assert_eq!(get(&base, "/unset/x").await, ok());
    assert_eq!((failures(&t, "tls_chain_too_deep").await, failures(&t, "tls").await), (2, 0));
}
