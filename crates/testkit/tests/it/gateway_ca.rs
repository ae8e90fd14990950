//! Per-service upstream CA certificates (Kong's `ca_certificates`): the objects' validation
//! and references through the API on both backends, and a real TLS upstream whose certificate
//! a private CA signed, reached (or refused) as the service's CA certificates say — including
//! after a CA certificate's PEM is replaced while a verified connection sits in the pool.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_testkit::{Backend, T0, TestApp, spawn_app};

use crate::gateway_tls::{Ca, api, tls_upstream};

async fn caught_up(t: &TestApp) -> String {
    let gw = t.spawn_gateway().await;
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up()).await.expect("the gateway caught up");
    gw.url
}

async fn create_ca(t: &TestApp, pem: &str) -> String {
    let (s, v) = api(t, Method::POST, "/v2/gateway/ca_certificates", Some(json!({"cert": pem}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["ca_certificate"]["id"].as_str().unwrap().to_owned()
}

/// A service at `url` naming `cas`, and a route `prefix` to it. Returns the service id.
async fn service(t: &TestApp, name: &str, url: &str, cas: &[&str], prefix: &str) -> String {
    let mut body = json!({"name": name, "url": url});
    if !cas.is_empty() {
        body["ca_certificates"] = json!(cas);
    }
    let (s, v) = api(t, Method::POST, "/v2/gateway/services", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    let route = json!({"paths": [prefix], "service": {"id": sid}});
    let (s, v) = api(t, Method::POST, "/v2/gateway/routes", Some(route)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    sid
}

async fn get(base: &str, path: &str) -> (StatusCode, Value) {
    let res = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn assert_field(s: StatusCode, v: &Value, field: &str, words: &str) {
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let text = v.to_string();
    assert!(text.contains(field) && text.contains(words), "expected {field}: {words} in {v}");
}

async fn an_upstream_signed_by_a_private_ca_is_reached_only_through_that_ca(backend: Backend) {
    let private = Ca::new("Private upstream CA");
    let other = Ca::new("Another CA");
    let up = tls_upstream(&private.leaf("upstream")).await;
    let url = format!("https://127.0.0.1:{}", up.port());
    let t = spawn_app(backend).await;
    let sid = service(&t, "up", &url, &[], "/api").await;
    let base = caught_up(&t).await;

    // Mozilla's roots do not know the private CA.
    let (s, v) = get(&base, "/api/x").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("bad_gateway")), "{v}");

    // The private CA attached: verified and reached.
    let private_id = create_ca(&t, &private.pem()).await;
    let (s, v) = api(
        &t,
        Method::PATCH,
        &format!("/v2/gateway/services/{sid}"),
        Some(json!({"ca_certificates": [private_id], "tls_verify_depth": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["service"]["ca_certificates"], json!([private_id]));
    assert_eq!(v["service"]["tls_verify_depth"], 3);
    caught_up(&t).await;
    let (s, v) = get(&base, "/api/x").await;
    assert_eq!((s, v["upstream"].as_str()), (StatusCode::OK, Some("tls")), "{v}");

    // Another CA instead: refused, even though the private CA's connection was pooled.
    let other_id = create_ca(&t, &other.pem()).await;
    let patch = json!({"ca_certificates": [other_id]});
    let (s, v) = api(&t, Method::PATCH, &format!("/v2/gateway/services/{sid}"), Some(patch)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    caught_up(&t).await;
    assert_eq!(get(&base, "/api/x").await.0, StatusCode::BAD_GATEWAY);

    // `tls_verify: false` wins over the CA certificates.
    let patch = json!({"tls_verify": false});
    let (s, v) = api(&t, Method::PATCH, &format!("/v2/gateway/services/{sid}"), Some(patch)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    caught_up(&t).await;
    assert_eq!(get(&base, "/api/x").await.0, StatusCode::OK);
}

/// Replacing a CA certificate's PEM changes the trust of new requests at once: a connection
/// verified under the old PEM and kept alive in the pool is not reused.
async fn replacing_a_ca_certificates_pem_switches_new_requests(backend: Backend) {
    let private = Ca::new("Private upstream CA");
    let other = Ca::new("Another CA");
    let up = tls_upstream(&private.leaf("upstream")).await;
    let t = spawn_app(backend).await;
    let ca_id = create_ca(&t, &private.pem()).await;
    service(&t, "up", &format!("https://127.0.0.1:{}", up.port()), &[&ca_id], "/api").await;
    let base = caught_up(&t).await;
    for _ in 0..2 {
        // The second request reuses the first's kept-alive connection.
        assert_eq!(get(&base, "/api/x").await.0, StatusCode::OK);
    }
    let path = format!("/v2/gateway/ca_certificates/{ca_id}");
    let (s, v) = api(&t, Method::PUT, &path, Some(json!({"cert": other.pem()}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    caught_up(&t).await;
    assert_eq!(
        get(&base, "/api/x").await.0,
        StatusCode::BAD_GATEWAY,
        "a connection verified under the old PEM was reused"
    );
    let (s, v) = api(&t, Method::PATCH, &path, Some(json!({"cert": private.pem()}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    caught_up(&t).await;
    assert_eq!(get(&base, "/api/x").await.0, StatusCode::OK);
}

/// Two services to one upstream, one trusting its CA and one not, in one table: the second
/// never borrows the first's verified connection.
async fn services_with_different_cas_do_not_share_connections(backend: Backend) {
    let private = Ca::new("Private upstream CA");
    let other = Ca::new("Another CA");
    let up = tls_upstream(&private.leaf("upstream")).await;
    let url = format!("https://127.0.0.1:{}", up.port());
    let t = spawn_app(backend).await;
    let (good, bad) = (create_ca(&t, &private.pem()).await, create_ca(&t, &other.pem()).await);
    service(&t, "trusting", &url, &[&good], "/good").await;
    service(&t, "distrusting", &url, &[&bad], "/bad").await;
    let base = caught_up(&t).await;
    assert_eq!(get(&base, "/good/x").await.0, StatusCode::OK);
    assert_eq!(get(&base, "/bad/x").await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(get(&base, "/good/x").await.0, StatusCode::OK);
}

async fn ca_certificates_are_checked_and_cannot_dangle(backend: Backend) {
    let t = spawn_app(backend).await;
    let ca = Ca::new("Private upstream CA");
    let post = |body: Value| api(&t, Method::POST, "/v2/gateway/ca_certificates", Some(body));

    let (s, v) = post(json!({"cert": "not a certificate"})).await;
    assert_field(s, &v, "cert", "must be a PEM certificate");
    let (s, v) = post(json!({"cert": format!("{}{}", ca.pem(), Ca::new("second").pem())})).await;
    assert_field(s, &v, "cert", "exactly one");
    let leaf = ca.leaf("not-a-ca");
    let (s, v) = post(json!({"cert": leaf.cert_pem})).await;
    assert_field(s, &v, "cert", "is not a CA certificate");
    let (s, v) = post(json!({"cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})).await;
    assert_field(s, &v, "cert", "not a valid X.509 certificate");
    let (s, v) = post(json!({"cert": leaf.key_pem})).await;
    assert_field(s, &v, "cert", "private key");

    // Created with its digest computed (a digest sent is replaced); listed; a second copy is a 409.
    let (s, v) = post(json!({"cert": ca.pem(), "cert_digest": "00", "tags": ["upstream"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let created = &v["ca_certificate"];
    let id = created["id"].as_str().unwrap().to_owned();
    let digest = created["cert_digest"].as_str().unwrap().to_owned();
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    assert_eq!(created["tags"], json!(["upstream"]));
    assert!(created["created_at"].as_i64().unwrap() > 0, "{v}");
    let (s, v) = api(&t, Method::GET, "/v2/gateway/ca_certificates", None).await;
    assert_eq!((s, v["ca_certificates"][0]["id"].as_str()), (StatusCode::OK, Some(id.as_str())), "{v}");
    let (s, v) = post(json!({"cert": ca.pem()})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains(&digest), "{v}");

    // A service names only CA certificates that exist; depth is 0-64.
    let unknown = "00000000-0000-4000-8000-00000000abcd";
    let svc = |extra: Value| {
        let mut body = json!({"name": "up", "url": "https://127.0.0.1:1"});
        tessera_domain::gateway::merge_patch(&mut body, extra);
        api(&t, Method::POST, "/v2/gateway/services", Some(body))
    };
    let (s, v) = svc(json!({"ca_certificates": [id, unknown]})).await;
    assert_field(s, &v, "ca_certificates[1]", unknown);
    let (s, v) = svc(json!({"tls_verify_depth": 65})).await;
    assert_field(s, &v, "tls_verify_depth", "between 0 and 64");
    let (s, v) = svc(json!({"tls_verify_depth": -1})).await;
    assert_field(s, &v, "tls_verify_depth", "");
    let (s, v) = svc(json!({"ca_certificates": [id]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let sid = v["service"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["service"]["tls_verify_depth"], Value::Null);

    // Named by a service, it cannot go; once the service lets go, it can.
    let path = format!("/v2/gateway/ca_certificates/{id}");
    let (s, v) = api(&t, Method::DELETE, &path, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains(&sid), "the answer names the service: {v}");
    let (s, v) =
        api(&t, Method::PATCH, &format!("/v2/gateway/services/{sid}"), Some(json!({"ca_certificates": null}))).await;
    assert_eq!((s, &v["service"]["ca_certificates"]), (StatusCode::OK, &Value::Null), "{v}");
    assert_eq!(api(&t, Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api(&t, Method::GET, &path, None).await.0, StatusCode::NOT_FOUND);
}

/// A CA certificate whose `notAfter` has passed by the app's clock is refused on every write
/// (Kong's check), and one the app's clock finds valid is taken, whatever the machine's clock
/// says; one stored before it expired stays and is still served.
async fn expired_ca_certificates_are_refused_by_the_apps_clock(backend: Backend) {
    let t = spawn_app(backend).await;
    let expired = |s: StatusCode, v: &Value| {
        assert_field(s, v, "cert", r#"certificate expired, \"Not After\" time is in the past"#)
    };
    // A second before the app's clock (2030): expired, though today's machine clock is earlier.
    let late = Ca::valid_until("Late", T0.0 - 1);
    let (s, v) = api(&t, Method::POST, "/v2/gateway/ca_certificates", Some(json!({"cert": late.pem()}))).await;
    expired(s, &v);
    assert!(v.to_string().contains("2030-01-01T09:59:59Z"), "the answer says when: {v}");

    // Valid for another minute: taken, and replaced; once the minute passed, every write of
    // it is refused (a PATCH carries the stored cert too), and it stays as it was.
    let soon = Ca::valid_until("Soon", T0.0 + 60).pem();
    let id = create_ca(&t, &soon).await;
    let path = format!("/v2/gateway/ca_certificates/{id}");
    let (s, v) = api(&t, Method::PUT, &path, Some(json!({"cert": soon, "tags": ["a"]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    t.clock.advance(60);
    let (s, v) = api(&t, Method::PATCH, &path, Some(json!({"tags": ["at-its-last-second"]}))).await;
    assert_eq!(s, StatusCode::OK, "valid through its notAfter: {v}");
    t.clock.advance(1);
    let (s, v) = api(&t, Method::PUT, &path, Some(json!({"cert": soon}))).await;
    expired(s, &v);
    let (s, v) = api(&t, Method::PATCH, &path, Some(json!({"tags": ["b"]}))).await;
    expired(s, &v);
    let (s, v) = api(&t, Method::GET, &path, None).await;
    assert_eq!((s, &v["ca_certificate"]["tags"]), (StatusCode::OK, &json!(["at-its-last-second"])), "{v}");
    let (s, v) = api(
        &t,
        Method::POST,
        "/v2/gateway/services",
        Some(json!({"url": "https://127.0.0.1:1", "ca_certificates": [id]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "a stored CA that expired since is still named: {v}");

    // Expired by the machine's clock (2023) but not by the app's (2020): taken.
    t.clock.set(tessera_domain::Timestamp(1_600_000_000));
    let (s, v) = api(
        &t,
        Method::POST,
        "/v2/gateway/ca_certificates",
        Some(json!({"cert": Ca::valid_until("Old", 1_700_000_000).pem()})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

tessera_testkit::both_backends!(
    an_upstream_signed_by_a_private_ca_is_reached_only_through_that_ca,
    replacing_a_ca_certificates_pem_switches_new_requests,
    services_with_different_cas_do_not_share_connections,
    ca_certificates_are_checked_and_cannot_dangle,
    expired_ca_certificates_are_refused_by_the_apps_clock,
);

mod nodes {
    use super::*;

    /// Two nodes on one PostgreSQL: one deletes a CA certificate while the other attaches it to
    /// services. Whatever wins, no service is left naming a CA certificate that is gone.
    async fn nodes_racing_a_delete_and_an_attach_leave_no_dangling_reference(backend: Backend) {
        let a = spawn_app(backend).await;
        let b = a.another_node().await;
        let pem = Ca::new("Raced CA").pem();
        for round in 0..4 {
            let id = create_ca(&a, &pem).await;
            let attach = (0..3).map(|i| {
                let body =
                    json!({"name": format!("s{round}-{i}"), "url": "https://127.0.0.1:1", "ca_certificates": [id]});
                api(&b, Method::POST, "/v2/gateway/services", Some(body))
            });
            let path = format!("/v2/gateway/ca_certificates/{id}");
            let delete = api(&a, Method::DELETE, &path, None);
            let (deleted, attached) = tokio::join!(delete, futures_util::future::join_all(attach));
            let attached: Vec<String> = attached
                .iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, v)| v["service"]["id"].as_str().unwrap().to_owned())
                .collect();
            match deleted.0 {
                StatusCode::NO_CONTENT => assert!(attached.is_empty(), "round {round}: services name a deleted CA"),
                StatusCode::CONFLICT => assert!(!attached.is_empty(), "round {round}: refused with nothing naming it"),
                other => panic!("round {round}: {other} {}", deleted.1),
            }
            for sid in attached {
                let (s, v) = api(&a, Method::DELETE, &format!("/v2/gateway/services/{sid}"), None).await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
            }
            let (s, _) = api(&a, Method::DELETE, &format!("/v2/gateway/ca_certificates/{id}"), None).await;
            assert!(s == StatusCode::NO_CONTENT || s == StatusCode::NOT_FOUND, "{s}");
        }
    }

    tessera_testkit::postgres_only!(nodes_racing_a_delete_and_an_attach_leave_no_dangling_reference);
}
