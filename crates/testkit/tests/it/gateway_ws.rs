//! WebSockets through the gateway, with a real client (tokio-tungstenite) and a real echo
//! upstream: the session plugin decides at the upgrade (no valid session, no upgrade), then
//! both directions stream, over plain HTTP and over TLS (wss).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tessera_testkit::{Backend, spawn_app};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::gateway_tls::{Ca, configure, gateway_addr, login_body, tls_node};

/// A WebSocket upstream: greets first (so the upstream-to-client direction does not depend
/// on the client speaking), then echoes every message, prefixed with `echo:` for text.
pub async fn ws_echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                if ws.send(Message::text("hello from upstream")).await.is_err() {
                    return;
                }
                while let Some(Ok(msg)) = ws.next().await {
                    let reply = match msg {
                        Message::Text(t) => Message::text(format!("echo:{}", t.as_str())),
                        Message::Binary(b) => Message::Binary(b),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The `session=...` cookie a sign-in through the gateway at `base` sets.
async fn session_cookie(browser: &reqwest::Client, base: &str) -> String {
    let res = browser
        .post(format!("{base}/.tessera/login"))
        .header("content-type", "application/json")
        .body(login_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The next message, within one generous bound.
async fn next<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("an answer").unwrap().unwrap()
}

/// Talks over an open WebSocket: the greeting, text and a 256 KiB binary message echoed.
async fn converse<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    assert_eq!(next(ws).await, Message::text("hello from upstream"));
    for i in 0..3 {
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        assert_eq!(next(ws).await, Message::text(format!("echo:ping {i}")));
    }
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next(ws).await, Message::binary(big));
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_websocket_goes_through_the_gateway_only_with_a_valid_session() {
    let t = spawn_app(Backend::Sqlite).await;
    let up = ws_echo_upstream().await;
    configure(&t, &format!("http://{up}"), json!({"cookie_secure": false})).await;
    let addr = gateway_addr(&t).await;

    // No session: refused at the upgrade, with the plugin's 401, never switched.
    let url = format!("ws://{addr}/api/socket");
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected a 401 at the upgrade, got {other:?}"),
    }
    // A forged cookie: the same.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", "session=forged".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected a 401 at the upgrade, got {other:?}"),
    }

    let browser = reqwest::Client::new();
    let cookie = session_cookie(&browser, &format!("http://{addr}")).await;
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.expect("the upgrade with a session");
    assert_eq!(res.status(), 101);
    converse(&mut ws).await;
}

#[tokio::test]
async fn a_websocket_goes_through_the_gateway_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Tessera test CA");
    let up = ws_echo_upstream().await;
    let t = tls_node(dir.path(), &ca.leaf("gateway"), None).await;
    configure(&t, &format!("http://{up}"), json!({})).await;
    let addr = gateway_addr(&t).await;
    let cookie = session_cookie(&ca.browser(), &format!("https://127.0.0.1:{}", addr.port())).await;

    // wss: TLS to the gateway (HTTP/1.1 by ALPN, as WebSocket clients ask), then the upgrade.
    let connector = tokio_rustls::TlsConnector::from(ca.client_config(&[b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(server, tcp).await.unwrap();
    let mut req = format!("wss://127.0.0.1:{}/api/socket", addr.port()).into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::client_async(req, tls).await.expect("the upgrade over TLS");
    assert_eq!(res.status(), 101);
    converse(&mut ws).await;
}
