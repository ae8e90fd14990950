//! Gateway request paths under fuzz input: the path normaliser (`tessera_domain::path`), the
//! route match on its result (`tessera_gateway::table`) and the upstream path joined from it,
//! checked against an upstream that normalises aggressively (decodes every escape, reads `\`
//! as `/`, drops `;params` and dot segments, as servlet containers and many proxies do).
//!
//! The table mirrors the attack in issue 10: `/public` is open (stripped, onto the service
//! path `/static`), `/app` (stripped, onto `/base`) and everything else are behind the session
//! plugin.

use std::sync::OnceLock;

use serde_json::json;
use tessera_domain::gateway::{Plugin, Route, Service};
use tessera_domain::ids::OrgId;
use tessera_domain::path::normalize;
use tessera_gateway::table::{Table, upstream_path};
use uuid::Uuid;

const OPEN_PREFIX: &str = "/public";
/// The open route's service path: the only tree an unauthenticated request may reach.
const OPEN_BASE: &str = "/static";

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let org = OrgId(Uuid::from_u128(1));
        let service = |id: u128, url: &str| {
            let mut s: Service =
                serde_json::from_value(json!({"id": Uuid::from_u128(id), "url": url})).expect("service");
            s.normalize().expect("valid service");
            (org, s)
        };
        let route = |id: u128, body: serde_json::Value| {
            let mut body = body;
            body["id"] = json!(Uuid::from_u128(id));
            let mut r: Route = serde_json::from_value(body).expect("route");
            r.normalize().expect("valid route");
            (org, r)
        };
        let plugin = |id: u128, route: u128| {
            let mut p: Plugin = serde_json::from_value(json!({
                "id": Uuid::from_u128(id), "name": "session", "route": {"id": Uuid::from_u128(route)},
                "config": {"secret": "fuzz"}
            }))
            .expect("plugin");
            p.normalize().expect("valid plugin");
            (org, p)
        };
        Table::build(
            vec![
                service(10, "http://127.0.0.1:9"),
                service(11, "http://127.0.0.1:9/base"),
                service(12, &format!("http://127.0.0.1:9{OPEN_BASE}")),
            ],
            vec![
                route(20, json!({"paths": [OPEN_PREFIX], "strip_path": true, "service": {"id": Uuid::from_u128(12)}})),
                route(21, json!({"paths": ["/app"], "strip_path": true, "service": {"id": Uuid::from_u128(11)}})),
                route(22, json!({"paths": ["/"], "strip_path": false, "service": {"id": Uuid::from_u128(10)}})),
                route(
                    23,
                    json!({"paths": ["/api/v1"], "hosts": ["*.example.com"], "methods": ["GET", "POST"],
                           "service": {"id": Uuid::from_u128(11)}}),
                ),
            ],
            vec![plugin(30, 21), plugin(31, 22), plugin(32, 23)],
        )
    })
}

/// Runs one input: `path 0xFF host 0xFF method`.
pub fn fuzz_gateway_path(data: &[u8]) {
    let [raw, host, method] = crate::split_parts(data, 3)[..] else { unreachable!() };
    let raw = String::from_utf8_lossy(raw);
    let host = String::from_utf8_lossy(host);
    let method = if method.is_empty() { "GET".into() } else { String::from_utf8_lossy(method).into_owned() };

    let Ok(path) = normalize(&raw) else { return };
    check_normalised(&raw, &path);
    check_route(&path, &host, &method);
}

/// The routing properties for a request the gateway routes on `path` (what it forwards):
/// the matched prefix is the path's, and the upstream serves only inside the route's service
/// path (for the open route, inside `/static`).
pub fn check_route(path: &str, host: &str, method: &str) {
    let Some(m) = table().find(host, method, path) else { return };
    assert!(path.starts_with(&*m.prefix), "prefix {:?} of {path:?}", m.prefix);
    let forwarded = upstream_path(&m.route.upstream.path, &m.prefix, m.route.strip_path, path);
    assert!(forwarded.starts_with('/'), "forwarded {forwarded:?}");
    // What the upstream serves must be under the service's path: joining the rest of the
    // path after a stripped prefix must not climb out of it.
    let served = upstream_view(&forwarded);
    let base = upstream_view(&m.route.upstream.path);
    assert!(within(&served, &base), "{path:?} forwarded as {forwarded:?}: upstream serves {served:?}");
    if m.route.plugin.is_none() {
        // The open route's requests reach only the open service's tree.
        assert!(within(&served, &upstream_view(OPEN_BASE)), "{path:?}: open route, upstream serves {served:?}");
    }
}

/// The normaliser's promises: absolute, idempotent, no empty segment, and no dot segment even
/// for an upstream that decodes escapes first and drops `;params` (servlet containers do the
/// latter, some frameworks the former: Spring's firewall refuses `%3B` for this reason).
fn check_normalised(raw: &str, path: &str) {
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert_eq!(normalize(path).as_deref(), Ok(path), "idempotent for {raw:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    assert!(path.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\'), "{raw:?} -> {path:?}");
    for seg in path.split('/') {
        let decoded = percent_decode(seg);
        let name = decoded.split(|b| *b == b';').next().unwrap_or(&[]);
        if name == b"." || name == b".." {
            panic!("dot segment {seg:?} in {path:?} (from {raw:?})");
        }
    }
}

/// Whether `path` (as segments) is `base` or below it.
fn within(path: &[Vec<u8>], base: &[Vec<u8>]) -> bool {
    path.len() >= base.len() && path[..base.len()] == *base
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The segments an aggressive upstream serves for `path`: every escape decoded once, `\` read
/// as `/`, `;params` dropped from each segment, empty and `.` segments dropped, `..` climbing
/// (never above the root), as RFC 3986 §5.2.4 does on the decoded path.
pub fn upstream_view(path: &str) -> Vec<Vec<u8>> {
    let decoded: Vec<u8> = percent_decode(path).into_iter().map(|b| if b == b'\\' { b'/' } else { b }).collect();
    let mut out: Vec<Vec<u8>> = vec![];
    for seg in decoded.split(|b| *b == b'/') {
        let name = seg.split(|b| *b == b';').next().unwrap_or(&[]);
        match name {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(seg.to_vec()),
        }
    }
    out
}
