//! The routing table: services, routes and session plugins compiled from the store into
//! what one request needs, rebuilt whole on every configuration change.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use tessera_domain::gateway::{Plugin, Route, Service};
use tessera_domain::ids::OrgId;
use uuid::Uuid;

pub use crate::plugin::SessionPlugin;

/// Where a route sends requests.
#[derive(Clone)]
pub struct Upstream {
    pub authority: String,
    /// An `https` service: the connection is TLS.
    pub tls: bool,
    pub path: String,
    pub read_timeout: Duration,
    /// A pooled client whose connector enforces the service's `connect_timeout`.
    pub client: crate::proxy::HttpClient,
}

impl Upstream {
    fn new(s: &Service, client: crate::proxy::HttpClient) -> Self {
        Self {
            authority: format!("{}:{}", s.host.as_deref().unwrap_or("127.0.0.1"), s.port.unwrap_or(80)),
            tls: s.protocol.as_deref() == Some("https"),
            path: s.path.clone().unwrap_or_default(),
            read_timeout: Duration::from_millis(s.read_timeout),
            client,
        }
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("authority", &self.authority).field("path", &self.path).finish()
    }
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub id: Uuid,
    pub org: OrgId,
    pub name: Option<String>,
    pub hosts: Vec<String>,
    pub methods: Vec<String>,
    pub paths: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub upstream: Upstream,
    pub plugin: Option<Arc<SessionPlugin>>,
}

/// What matched a request.
pub struct Matched<'t> {
    pub route: &'t CompiledRoute,
    /// The route path that matched (empty when the route has no paths).
    pub prefix: &'t str,
}

#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<CompiledRoute>,
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern == host,
    }
}

/// Kong's prefix match: `/api` matches `/api`, `/api/x` and `/apix` (Kong does too), but not
/// `/api..` or `/api.;x/`: what a stripped prefix would leave there is a dot segment, which
/// would climb out of the service's path upstream.
fn path_prefix<'p>(paths: &'p [String], path: &str) -> Option<&'p str> {
    paths
        .iter()
        .filter(|p| path.starts_with(p.as_str()) && !continues_with_dots(p, &path[p.len()..]))
        .map(String::as_str)
        .max_by_key(|p| p.len())
}

/// Whether the rest of a path after `prefix` continues the prefix's last segment with a dot
/// segment's name (`.` or `..`, parameters aside).
fn continues_with_dots(prefix: &str, rest: &str) -> bool {
    if prefix.ends_with('/') || rest.starts_with('/') {
        return false;
    }
    let partial = rest.split('/').next().unwrap_or("");
    matches!(tessera_domain::path::segment_name(partial).0, "." | "..")
}

/// The session plugins by the scope they apply to.
#[derive(Default)]
struct Scopes {
    by_route: HashMap<Uuid, Arc<SessionPlugin>>,
    by_service: HashMap<Uuid, Arc<SessionPlugin>>,
    /// By organization.
    global: HashMap<Uuid, Arc<SessionPlugin>>,
}

impl Scopes {
    /// The API refuses a second session plugin on one scope; should two exist anyway (two
    /// nodes writing at once), the oldest one applies, on every node alike.
    fn new(plugins: Vec<(OrgId, Plugin)>) -> Self {
        let mut scopes = Self::default();
        let mut plugins: Vec<(OrgId, Plugin)> =
            plugins.into_iter().filter(|(_, p)| p.enabled && p.name == "session").collect();
        plugins.sort_by_key(|(_, p)| (p.created_at, p.id));
        for (org, p) in plugins {
            let slot = match (p.route, p.service) {
                (Some(r), _) => scopes.by_route.entry(r.id),
                (None, Some(s)) => scopes.by_service.entry(s.id),
                (None, None) => scopes.global.entry(org.0),
            };
            if matches!(slot, Entry::Occupied(_)) {
                tracing::warn!(plugin = ?p.id, "a second session plugin on one scope is ignored");
            }
            slot.or_insert_with(|| Arc::new(SessionPlugin::new(org, &p)));
        }
        scopes
    }

    /// The most specific plugin for a route: its own, its service's, or the organization's.
    fn of(&self, org: OrgId, route: Uuid, service: Uuid) -> Option<Arc<SessionPlugin>> {
        let found = self.by_route.get(&route).or_else(|| self.by_service.get(&service));
        found.or_else(|| self.global.get(&org.0)).cloned()
    }
}

impl Table {
    pub fn build(services: Vec<(OrgId, Service)>, routes: Vec<(OrgId, Route)>, plugins: Vec<(OrgId, Plugin)>) -> Self {
        Self::build_with_tls(services, routes, plugins, &crate::proxy::UpstreamTls::default())
    }

    /// [`Table::build`], verifying `https` services as `tls` says.
    pub fn build_with_tls(
        services: Vec<(OrgId, Service)>,
        routes: Vec<(OrgId, Route)>,
        plugins: Vec<(OrgId, Plugin)>,
        tls: &crate::proxy::UpstreamTls,
    ) -> Self {
        let services: HashMap<Uuid, (OrgId, Service)> =
            services.into_iter().filter_map(|(o, s)| s.id.map(|id| (id, (o, s)))).collect();
        let scopes = Scopes::new(plugins);
        // One pooled client per distinct connect timeout (and TLS verification), shared by the
        // routes that use it.
        let mut clients = HashMap::new();
        let mut compiled = vec![];
        for (org, r) in routes {
            let Some(sid) = r.service.map(|s| s.id) else { continue };
            let Some((_, s)) = services.get(&sid).filter(|(sorg, s)| *sorg == org && s.enabled) else { continue };
            let id = r.id.unwrap_or_default();
            let verify = s.tls_verify.unwrap_or(true);
            let client = clients
                .entry((s.connect_timeout, verify))
                .or_insert_with(|| crate::proxy::client(Duration::from_millis(s.connect_timeout), verify, tls))
                .clone();
            compiled.push(CompiledRoute {
                id,
                org,
                name: r.name,
                hosts: r.hosts,
                methods: r.methods,
                paths: r.paths,
                strip_path: r.strip_path,
                preserve_host: r.preserve_host,
                upstream: Upstream::new(s, client),
                plugin: scopes.of(org, id, sid),
            });
        }
        Self { routes: compiled }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route for a request: the longest matching path, then a host
    /// match, then a method match (Kong's order of precedence, simplified to prefixes).
    pub fn find(&self, host: &str, method: &str, path: &str) -> Option<Matched<'_>> {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let mut best: Option<(Matched<'_>, (usize, bool, bool))> = None;
        for r in &self.routes {
            if !r.hosts.is_empty() && !r.hosts.iter().any(|h| host_matches(h, &host)) {
                continue;
            }
            if !r.methods.is_empty() && !r.methods.iter().any(|m| m == method) {
                continue;
            }
            let prefix = if r.paths.is_empty() {
                ""
            } else {
                match path_prefix(&r.paths, path) {
                    Some(p) => p,
                    None => continue,
                }
            };
            let rank = (prefix.len(), !r.hosts.is_empty(), !r.methods.is_empty());
            if best.as_ref().is_none_or(|(_, b)| rank > *b) {
                best = Some((Matched { route: r, prefix }, rank));
            }
        }
        best.map(|(m, _)| m)
    }
}

/// The upstream path for a request, as Kong joins them: with `strip_path` the matched prefix
/// goes; the service path is prepended.
pub fn upstream_path(service_path: &str, prefix: &str, strip: bool, path: &str) -> String {
    let rest = if strip { &path[prefix.len().min(path.len())..] } else { path };
    let base = service_path.trim_end_matches('/');
    match (base.is_empty(), rest.is_empty()) {
        (true, true) => "/".into(),
        (true, false) if rest.starts_with('/') => rest.into(),
        (true, false) => format!("/{rest}"),
        (false, true) => service_path.into(),
        (false, false) if rest.starts_with('/') => format!("{base}{rest}"),
        (false, false) => format!("{base}/{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_kong() {
        assert_eq!(upstream_path("", "/api", true, "/api/users"), "/users");
        assert_eq!(upstream_path("", "/api", true, "/api"), "/");
        assert_eq!(upstream_path("/v1", "/api", true, "/api/users"), "/v1/users");
        assert_eq!(upstream_path("/v1/", "/api", true, "/api"), "/v1/");
        assert_eq!(upstream_path("/v1", "/api", false, "/api/users"), "/v1/api/users");
        assert_eq!(upstream_path("", "/api/", true, "/api/x"), "/x");
    }

    #[test]
    fn wildcard_hosts_match_one_level_or_more_of_subdomain() {
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "aexample.com"));
        assert!(host_matches("example.com", "example.com"));
    }

    fn route(paths: &[&str], hosts: &[&str], service: Uuid) -> (OrgId, Route) {
        let mut r: Route = serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(paths.len() as u128 * 10 + hosts.len() as u128),
            "paths": paths, "hosts": hosts, "service": {"id": service}
        }))
        .unwrap();
        r.normalize().unwrap();
        (OrgId(Uuid::nil()), r)
    }

    #[test]
    fn the_longest_path_then_a_host_wins() {
        let sid = Uuid::from_u128(7);
        let mut s: Service =
            serde_json::from_value(serde_json::json!({"id": sid, "url": "http://127.0.0.1:9"})).unwrap();
        s.normalize().unwrap();
        let t = Table::build(
            vec![(OrgId(Uuid::nil()), s)],
            vec![route(&["/"], &[], sid), route(&["/api", "/b"], &[], sid), route(&["/api"], &["x.test"], sid)],
            vec![],
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.find("other", "GET", "/api/1").unwrap().route.paths, ["/api", "/b"]);
        assert_eq!(t.find("x.test:8000", "GET", "/api/1").unwrap().route.hosts, ["x.test"]);
        assert_eq!(t.find("other", "GET", "/zzz").unwrap().prefix, "/");
        assert_eq!(t.find("other", "GET", "/apix").unwrap().prefix, "/api", "Kong's prefix match");
        for dots in ["/api..", "/api../x", "/api.", "/api.;x/y", "/api..%3Bx/y"] {
            assert_eq!(t.find("other", "GET", dots).unwrap().prefix, "/", "{dots} is not under /api");
        }
        assert_eq!(t.find("other", "GET", "/api.../x").unwrap().prefix, "/api");
    }
}
