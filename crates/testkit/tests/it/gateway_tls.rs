//! TLS end to end: certificate authorities made in the test (rcgen), the gateway terminating
//! TLS in front of an `https` upstream verified against the test CA, curl as the client
//! (trusting the CA with `--cacert`), HTTP/2 by ALPN, the certificate reloaded from its file
//! without a restart, and the API listener over TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use reqwest::{Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tessera_api_types as wire;
use tessera_testkit::{Backend, TestApp, spawn_app_with};

pub const PASSWORD: &str = "correct horse battery staple";

/// A certificate authority of the test's own: a root, or an intermediate CA under one.
pub struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    /// The intermediate CA certificates from this CA up to its root (this one first; none
    /// for a root): what a server whose certificate this CA issued sends after its own.
    intermediates: Vec<CertificateDer<'static>>,
}

/// A certificate and its key, as PEM and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    /// The intermediate CA certificates between it and its root, its issuer's first.
    pub intermediates: Vec<CertificateDer<'static>>,
}

fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    params
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        Ca { cert: ca_params(name).self_signed(&key).unwrap(), key, intermediates: vec![] }
    }

    /// An intermediate CA that this CA issues.
    pub fn intermediate(&self, name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = ca_params(name).signed_by(&key, &self.cert, &self.key).unwrap();
        let intermediates = std::iter::once(cert.der().clone()).chain(self.intermediates.iter().cloned()).collect();
        Ca { cert, key, intermediates }
    }

    /// A CA whose validity ends at `not_after` (Unix seconds) and began ten years before.
    pub fn valid_until(name: &str, not_after: i64) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let unix = |secs: i64| rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(secs as u64);
        params.not_before = unix(not_after - 10 * 365 * 86_400);
        params.not_after = unix(not_after);
        Ca { cert: params.self_signed(&key).unwrap(), key, intermediates: vec![] }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for 127.0.0.1 and localhost, named `cn`.
    pub fn leaf(&self, cn: &str) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            intermediates: self.intermediates.clone(),
        }
    }

    /// A client configuration trusting only this CA.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A reqwest client trusting only this CA, keeping cookies.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem().as_bytes()).unwrap())
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// Writes `text` to `dir/name`, returning the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An HTTPS upstream with `leaf`'s certificate (and its intermediate CAs): answers every
/// request with JSON naming the path and the headers it received.
pub async fn tls_upstream(leaf: &Leaf) -> SocketAddr {
    async fn echo(req: Request) -> axum::Json<Value> {
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap_or("").to_owned())))
            .collect();
        axum::Json(json!({"path": req.uri().path(), "headers": headers, "upstream": "tls"}))
    }
    let chain = std::iter::once(leaf.der.clone()).chain(leaf.intermediates.iter().cloned()).collect();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(echo);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // A refused handshake (the gateway not trusting us) simply ends here.
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

pub async fn api(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string());
    t.admin.raw(method, path, body.as_deref()).await.unwrap()
}

/// A service at `url`, a route on `/api` (stripped) and a session plugin on it with Kong's
/// defaults (`cookie_secure = true`) over `config`; a user to sign in. Returns the service id.
pub async fn configure(t: &TestApp, url: &str, config: Value) -> String {
    let (s, service) = api(t, Method::POST, "/v2/gateway/services", Some(json!({"name": "up", "url": url}))).await;
    assert_eq!(s, StatusCode::CREATED, "{service}");
    let sid = service["service"]["id"].as_str().unwrap().to_owned();
    let (s, route) =
        api(t, Method::POST, "/v2/gateway/routes", Some(json!({"paths": ["/api"], "service": {"id": sid}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{route}");
    let rid = route["route"]["id"].as_str().unwrap().to_owned();
    let mut cfg = json!({"secret": "transport-test-secret-0123456789"});
    tessera_domain::gateway::merge_patch(&mut cfg, config);
    let (s, plugin) = api(
        t,
        Method::POST,
        "/v2/gateway/plugins",
        Some(json!({"name": "session", "route": {"id": rid}, "config": cfg})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{plugin}");
    t.admin
        .create_user(&wire::UserCreate {
            email: "gia@example.com".into(),
            first_name: "Gia".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    let gw = t.spawn_gateway().await;
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up()).await.expect("the gateway caught up");
    sid
}

pub fn login_body() -> String {
    json!({"email": "gia@example.com", "password": PASSWORD, "next": "/api/hello"}).to_string()
}

/// Whether curl can run here; when not, the test says SKIPPED (and fails under CI).
fn curl_or_skip(test: &str) -> bool {
    let found = std::process::Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        tessera_testkit::skip_unless_ci(test, "curl is not installed (cargo xtask ci installs it)");
    }
    found
}

/// Runs curl with `args` (off the runtime's thread) and returns its standard output.
pub async fn curl(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl").args(["-sS", "--max-time", "30"]).args(&args).output()
    })
    .await
    .unwrap()
    .expect("curl is installed (cargo xtask ci installs it)");
    assert!(out.status.success(), "curl {:?} failed: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A node whose gateway serves `leaf` over TLS and verifies upstreams against `upstream_ca`.
pub async fn tls_node(dir: &Path, leaf: &Leaf, upstream_ca: Option<&Ca>) -> TestApp {
    let cert = write(dir, "gw.pem", &leaf.cert_pem);
    let key = write(dir, "gw.key", &leaf.key_pem);
    let ca = upstream_ca.map(|ca| write(dir, "upstream-ca.pem", &ca.pem()));
    spawn_app_with(Backend::Sqlite, move |s| {
        s.gateway.tls_cert = Some(cert);
        s.gateway.tls_key = Some(key);
        s.gateway.upstream_ca = ca;
    })
    .await
}

pub async fn gateway_addr(t: &TestApp) -> SocketAddr {
    t.spawn_gateway().await.addr
}

#[tokio::test]
async fn curl_over_tls_reaches_a_verified_https_upstream_gets_a_secure_cookie_and_speaks_http2() {
    if !curl_or_skip("curl_over_tls_reaches_a_verified_https_upstream_gets_a_secure_cookie_and_speaks_http2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let up = tls_upstream(&ca.leaf("upstream")).await;
    let t = tls_node(dir.path(), &ca.leaf("gateway"), Some(&ca)).await;
    configure(&t, &format!("https://127.0.0.1:{}", up.port()), json!({})).await;
    let base = format!("https://127.0.0.1:{}", gateway_addr(&t).await.port());
    let ca_file = write(dir.path(), "ca.pem", &ca.pem()).display().to_string();
    let jar = dir.path().join("jar").display().to_string();

    // Sign in with curl trusting the test CA: the session cookie is Secure (Kong's default).
    let head = curl(vec![
        "--cacert".into(),
        ca_file.clone(),
        "-c".into(),
        jar.clone(),
        "-D".into(),
        "-".into(),
        "-o".into(),
        "/dev/null".into(),
        "-H".into(),
        "content-type: application/json".into(),
        "--data".into(),
        login_body(),
        format!("{base}/.tessera/login"),
    ])
    .await;
    assert!(head.starts_with("HTTP/2 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: session="))
        .unwrap_or_else(|| panic!("no session cookie in {head}"));
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The proxied answer, from the https upstream, told the client came over https.
    let body =
        curl(vec!["--cacert".into(), ca_file.clone(), "-b".into(), jar.clone(), format!("{base}/api/hello")]).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!((v["upstream"].as_str(), v["path"].as_str()), (Some("tls"), Some("/hello")), "{v}");
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert!(v["headers"]["session-id"].is_null(), "owned headers are not invented: {v}");

    // HTTP/2 by ALPN, the same answer.
    let out = curl(vec![
        "--http2".into(),
        "--cacert".into(),
        ca_file.clone(),
        "-b".into(),
        jar.clone(),
        "-w".into(),
        "\n%{http_version} %{http_code}".into(),
        format!("{base}/api/h2"),
    ])
    .await;
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 200", "{out}");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap()["path"], "/h2");
    // Without a session the plugin still answers (401, JSON), over HTTP/2 too.
    let out = curl(vec![
        "--http2".into(),
        "--cacert".into(),
        ca_file,
        "-w".into(),
        "\n%{http_version} %{http_code}".into(),
        format!("{base}/api/h2"),
    ])
    .await;
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 401", "{out}");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap()["error"]["code"], "unauthorized", "{body}");
}

#[tokio::test]
async fn an_upstream_certificate_from_another_ca_is_a_502_unless_tls_verify_is_false() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let stranger = Ca::new("Someone else's CA");
    let up = tls_upstream(&stranger.leaf("upstream")).await;
    let t = tls_node(dir.path(), &ca.leaf("gateway"), Some(&ca)).await;
    let sid = configure(&t, &format!("https://127.0.0.1:{}", up.port()), json!({"unauthenticated": "pass"})).await;
    let base = format!("https://127.0.0.1:{}", gateway_addr(&t).await.port());
    let browser = ca.browser();

    let res = browser.get(format!("{base}/api/x")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_gateway", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("certificate"), "{v}");
    // Counted as a TLS failure on the metrics listener, not as a refused connection.
    let mut metrics = String::new();
    t.spawn_gateway().await.gateway.render_metrics(&mut metrics);
    assert!(metrics.lines().any(|l| l == r#"tessera_gateway_upstream_failures_total{reason="tls"} 1"#), "{metrics}");

    // Kong's tls_verify = false: the same upstream is taken.
    let (s, v) =
        api(&t, Method::PATCH, &format!("/v2/gateway/services/{sid}"), Some(json!({"tls_verify": false}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["service"]["tls_verify"], false);
    let gw = t.spawn_gateway().await;
    tokio::time::timeout(Duration::from_secs(30), gw.gateway.caught_up()).await.unwrap();
    let res = browser.get(format!("{base}/api/x")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["upstream"], "tls");
}

#[tokio::test]
async fn a_session_bound_to_the_https_scheme_does_not_open_as_http() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let up = tls_upstream(&ca.leaf("upstream")).await;
    let leaf = ca.leaf("gateway");
    let cert = write(dir.path(), "gw.pem", &leaf.cert_pem);
    let key = write(dir.path(), "gw.key", &leaf.key_pem);
    let bundle = write(dir.path(), "ca.pem", &ca.pem());
    // 127.0.0.1 is a trusted proxy here, so a request can say it came over plain http.
    let t = spawn_app_with(Backend::Sqlite, move |s| {
        s.gateway.tls_cert = Some(cert);
        s.gateway.tls_key = Some(key);
        s.gateway.upstream_ca = Some(bundle);
        s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    configure(&t, &format!("https://127.0.0.1:{}", up.port()), json!({"bind": ["scheme"]})).await;
    let base = format!("https://127.0.0.1:{}", gateway_addr(&t).await.port());
    let browser = ca.browser();
    let res = browser
        .post(format!("{base}/.tessera/login"))
        .header("content-type", "application/json")
        .body(login_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Minted over https: it opens over https, and not for a request that came as http.
    let res = browser.get(format!("{base}/api/x")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = browser.get(format!("{base}/api/x")).header("x-forwarded-proto", "http").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a session bound to https is not valid as http");
    let res = browser.get(format!("{base}/api/x")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The certificate a fresh TLS connection to `addr` is served.
async fn served_certificate(addr: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(ca.client_config(&[b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

#[tokio::test]
async fn a_new_gateway_certificate_is_served_to_new_connections_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let first = ca.leaf("first");
    let t = tls_node(dir.path(), &first, None).await;
    let addr = gateway_addr(&t).await;
    assert_eq!(served_certificate(addr, &ca).await, first.der);

    // The files are replaced (as certbot or an operator would): new connections get the new
    // certificate, within the reload poll (one generous bound; no sleep-and-hope).
    let second = ca.leaf("second");
    write(dir.path(), "gw.key", &second.key_pem);
    write(dir.path(), "gw.pem", &second.cert_pem);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while served_certificate(addr, &ca).await != second.der {
        assert!(std::time::Instant::now() < deadline, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it is used: a request over a new connection is answered.
    let res = ca.browser().get(format!("https://127.0.0.1:{}/.tessera/ready", addr.port())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_api_serves_https_and_half_a_tls_configuration_is_refused_at_start() {
    if !curl_or_skip("the_api_serves_https_and_half_a_tls_configuration_is_refused_at_start") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let leaf = ca.leaf("api");
    let cert = write(dir.path(), "api.pem", &leaf.cert_pem);
    let key = write(dir.path(), "api.key", &leaf.key_pem);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem()).display().to_string();

    let mut settings = tessera_testkit::test_settings(tessera_startup::DatabaseUrl::Sqlite(dir.path().join("a.db")));
    settings.server.tls_cert = Some(cert.clone());
    let e = tessera_startup::Application::build(settings.clone()).await.err().expect("half a TLS configuration");
    assert!(e.to_string().contains("--tls-cert and --tls-key go together"), "{e}");
    settings.server.tls_key = Some(dir.path().join("missing.key"));
    let e = tessera_startup::Application::build(settings.clone()).await.err().expect("a missing key file");
    assert!(e.to_string().contains("missing.key"), "{e}");

    settings.server.tls_key = Some(key);
    let node = tessera_startup::Application::build(settings).await.expect("the node starts with TLS");
    let out = curl(vec![
        "--cacert".into(),
        ca_file,
        "-w".into(),
        "\n%{http_code}".into(),
        format!("https://127.0.0.1:{}/healthz", node.api_addr().port()),
    ])
    .await;
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{out}");
    assert!(serde_json::from_str::<Value>(body).is_ok(), "{body}");
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", node.api_addr().port())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn the_api_over_tls_marks_its_cookies_secure_and_takes_its_own_https_origin() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let leaf = ca.leaf("api");
    let mut settings = tessera_testkit::test_settings(tessera_startup::DatabaseUrl::Sqlite(dir.path().join("a.db")));
    settings.server.tls_cert = Some(write(dir.path(), "api.pem", &leaf.cert_pem));
    settings.server.tls_key = Some(write(dir.path(), "api.key", &leaf.key_pem));
    // Nothing says `cookie_secure`: serving TLS itself is enough to know browsers reach it so.
    let node = tessera_startup::Application::build(settings).await.expect("the node starts with TLS");
    let origin = format!("https://127.0.0.1:{}", node.api_addr().port());
    let browser = ca.browser();
    let user =
        json!({"email": "tls@example.com", "first_name": "T", "last_name": "", "password": "correct horse battery"});
    let res = browser
        .post(format!("{origin}/v2/users"))
        .bearer_auth(tessera_testkit::ADMIN_KEY)
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = browser
        .post(format!("{origin}/v2/sessions"))
        .json(&json!({"email": "tls@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let set: Vec<String> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set.len(), 2, "{set:?}");
    for c in &set {
        assert!(c.split("; ").any(|a| a == "Secure"), "a cookie of an https-only server without Secure: {c}");
    }
    // A same-origin state change from the browser (its Origin is https) is accepted.
    let res = browser
        .delete(format!("{origin}/v2/sessions/current"))
        .header("origin", &origin)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", res.text().await.unwrap());
}
