//! The transport benchmarks' tools (`cargo xtask bench`, rows 8): a test CA and server
//! certificate for 127.0.0.1, an upstream that answers "hello" and echoes WebSockets, a load
//! generator over TLS (kept-alive HTTP/1.1 connections, the same measure as `load`), and a
//! WebSocket round-trip timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Subcommand)]
pub enum Cmd {
    /// Write a test CA (`ca.pem`) and a certificate for 127.0.0.1 (`cert.pem`, `key.pem`).
    MakeCerts {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve "hello" on GET and echo WebSocket messages on an upgrade.
    HelloWs {
        #[arg(long)]
        listen: String,
    },
    /// Like `load`, over TLS trusting --ca: prints {"requests","errors","rps","p50_us","p99_us"}.
    TlsLoad {
        #[arg(long)]
        url: String,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// Round trips of one 64-byte text message at a time over one WebSocket: prints
    /// {"messages","p50_us","p99_us","mean_us"}.
    WsRtt {
        #[arg(long)]
        url: String,
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
    },
}

pub async fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::MakeCerts { dir } => make_certs(&dir),
        Cmd::HelloWs { listen } => hello_ws(&listen).await,
        Cmd::TlsLoad { url, ca, headers, connections, duration } => {
            tls_load(&url, &ca, &headers, connections, duration).await
        }
        Cmd::WsRtt { url, headers, messages } => ws_rtt(&url, &headers, messages).await,
    }
}

fn make_certs(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "tessera bench CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca = ca.self_signed(&ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&key, &ca, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("cert.pem"), leaf.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    println!("{}", serde_json::json!({"dir": dir.display().to_string()}));
    Ok(())
}

async fn hello_ws(listen: &str) -> anyhow::Result<()> {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|mut req: hyper::Request<hyper::body::Incoming>| async move {
                let key = req.headers().get("sec-websocket-key").cloned();
                let Some(key) = key else {
                    return Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))));
                };
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let Ok(io) = upgrade.await else { return };
                    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                        hyper_util::rt::TokioIo::new(io),
                        tokio_tungstenite::tungstenite::protocol::Role::Server,
                        None,
                    )
                    .await;
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let res = hyper::Response::builder()
                    .status(101)
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-accept", accept)
                    .body(Full::new(Bytes::new()))
                    .expect("a 101");
                Ok(res)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn headers(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|h| {
            let (k, v) = h.split_once(':').context("--header must be 'Name: value'")?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn percentiles(mut all: Vec<u32>) -> (u32, u32, f64) {
    all.sort_unstable();
    let pct = |p: f64| if all.is_empty() { 0 } else { all[((all.len() as f64 - 1.0) * p).round() as usize] };
    let mean = all.iter().map(|&v| v as f64).sum::<f64>() / all.len().max(1) as f64;
    (pct(0.50), pct(0.99), mean)
}

async fn tls_load(
    url: &str,
    ca: &std::path::Path,
    header_list: &[String],
    connections: usize,
    duration: f64,
) -> anyhow::Result<()> {
    let uri: hyper::Uri = url.parse().context("--url")?;
    if uri.scheme_str() != Some("https") {
        bail!("--url must be https://");
    }
    let host = uri.host().context("--url needs a host")?.to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let headers = headers(header_list)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).context("--ca")? {
        roots.add(cert.context("--ca")?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let started = Instant::now();
    let mut workers = vec![];
    for _ in 0..connections.max(1) {
        let (host, path, headers, connector, errors) =
            (host.clone(), path.clone(), headers.clone(), connector.clone(), Arc::clone(&errors));
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let Ok(tcp) = tokio::net::TcpStream::connect((host.as_str(), port)).await else { return latencies };
            let _ = tcp.set_nodelay(true);
            let Ok(name) = ServerName::try_from(host.clone()) else { return latencies };
            let Ok(tls) = connector.connect(name, tcp).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await
            else {
                return latencies;
            };
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let mut req = hyper::Request::builder().uri(path.as_str()).header("host", host.as_str());
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let req = req.body(Empty::<Bytes>::new()).expect("request");
                let t = Instant::now();
                match sender.send_request(req).await {
                    Ok(res) => {
                        let ok = res.status() == hyper::StatusCode::OK;
                        let _ = res.into_body().collect().await;
                        if ok {
                            latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            latencies
        }));
    }
    let mut all = vec![];
    for w in workers {
        all.extend(w.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let n = all.len();
    let (p50, p99, _) = percentiles(all);
    let out = serde_json::json!({
        "requests": n, "errors": errors.load(Ordering::Relaxed), "seconds": secs,
        "rps": n as f64 / secs, "p50_us": p50, "p99_us": p99,
    });
    println!("{out}");
    Ok(())
}

async fn ws_rtt(url: &str, header_list: &[String], messages: usize) -> anyhow::Result<()> {
    let mut req = url.into_client_request()?;
    for (k, v) in headers(header_list)? {
        req.headers_mut().insert(hyper::header::HeaderName::from_bytes(k.as_bytes())?, v.parse()?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.context("the WebSocket upgrade")?;
    let payload = "x".repeat(64);
    // A few round trips first: connection and allocator warm-up are not the measure.
    let mut rtts = Vec::with_capacity(messages);
    for i in 0..messages + 50 {
        let t = Instant::now();
        ws.send(Message::text(payload.clone())).await?;
        match ws.next().await {
            Some(Ok(m)) if m.is_text() => {}
            other => bail!("no echo: {other:?}"),
        }
        if i >= 50 {
            rtts.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    let _ = ws.close(None).await;
    let (p50, p99, mean) = percentiles(rtts);
    println!("{}", serde_json::json!({"messages": messages, "p50_us": p50, "p99_us": p99, "mean_us": mean}));
    Ok(())
}
