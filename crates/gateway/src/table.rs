//! The routing table: services, routes and session plugins compiled from the store into
//! what one request needs, rebuilt whole on every configuration change.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;

use tessera_domain::gateway::{CaCertificate, Plugin, Regex, Route, Service, compile_regex};
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
    /// The upstream's kept-alive connections (connecting within the service's `connect_timeout`).
    pub client: crate::proxy::HttpClient,
}

impl Upstream {
    fn authority(s: &Service) -> String {
        format!("{}:{}", s.host.as_deref().unwrap_or("127.0.0.1"), s.port.unwrap_or(80))
    }

    fn new(s: &Service, client: crate::proxy::HttpClient) -> Self {
        Self {
            authority: Self::authority(s),
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

/// A set of Kong protocols (`http`, `https`, `ws`, `wss`, `grpc`, `grpcs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protocols(u8);

impl Protocols {
    pub const HTTP: Self = Self(1);
    pub const HTTPS: Self = Self(2);
    pub const WS: Self = Self(4);
    pub const WSS: Self = Self(8);
    pub const GRPC: Self = Self(16);
    pub const GRPCS: Self = Self(32);

    /// The set the names spell (unknown names are left out; the API accepts none).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let bit = |n: &str| match n {
            "http" => Self::HTTP.0,
            "https" => Self::HTTPS.0,
            "ws" => Self::WS.0,
            "wss" => Self::WSS.0,
            "grpc" => Self::GRPC.0,
            "grpcs" => Self::GRPCS.0,
            _ => 0,
        };
        Self(names.into_iter().fold(0, |acc, n| acc | bit(n)))
    }

    /// What a request is: `http` or `https` by its scheme, and also `ws` or `wss` when it
    /// asks for a WebSocket upgrade. So a plain `http`/`https` route or plugin still takes
    /// WebSocket handshakes (as Kong's open-source gateway proxies them on http routes),
    /// while a `["wss"]` plugin runs only for WebSockets over TLS.
    pub fn of_request(https: bool, websocket: bool) -> Self {
        let scheme = if https { Self::HTTPS } else { Self::HTTP };
        let ws = match (websocket, https) {
            (false, _) => 0,
            (true, false) => Self::WS.0,
            (true, true) => Self::WSS.0,
        };
        Self(scheme.0 | ws)
    }

    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The TLS counterparts of these protocols (`http` -> `https`, `ws` -> `wss`).
    fn secured(self) -> Self {
        Self((self.0 & (Self::HTTP.0 | Self::WS.0 | Self::GRPC.0)) << 1)
    }
}

/// A route host: exact, `*.example.com` (any subdomain, at any depth) or `example.*`.
#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// The suffix, with its leading dot: `.example.com`.
    Suffix(String),
    /// The prefix, with its trailing dot: `example.`.
    Prefix(String),
}

impl HostPattern {
    fn new(h: &str) -> Self {
        if let Some(rest) = h.strip_prefix('*') {
            Self::Suffix(rest.to_owned())
        } else if let Some(rest) = h.strip_suffix('*') {
            Self::Prefix(rest.to_owned())
        } else {
            Self::Exact(h.to_owned())
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
            Self::Prefix(p) => host.len() > p.len() && host.starts_with(p.as_str()),
        }
    }
}

/// One required header: its (lowercase) name and the values, any of which will do.
#[derive(Debug)]
struct HeaderRule {
    name: String,
    values: Vec<HeaderValueRule>,
}

#[derive(Debug)]
enum HeaderValueRule {
    /// Compared case-insensitively (Kong lowercases both sides).
    Exact(String),
    /// `~*`: a case-insensitive regular expression, anchored at the start.
    Regex(Regex),
}

impl HeaderRule {
    fn matches(&self, headers: &HeaderMap) -> bool {
        headers.get_all(self.name.as_str()).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            self.values.iter().any(|rule| match rule {
                HeaderValueRule::Exact(e) => e.eq_ignore_ascii_case(v),
                HeaderValueRule::Regex(r) => r.is_match(v),
            })
        })
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
    pub protocols: Protocols,
    /// What a plain-http request gets when only the TLS protocols are allowed.
    pub https_redirect_status_code: u16,
    host_patterns: Vec<HostPattern>,
    headers: Vec<HeaderRule>,
}

/// One way a route can match, with its precedence: Kong's `traditional_compatible` router
/// splits a route into one matcher per kind of path (all its regex paths; its prefixes of
/// one length) and orders them by priority.
#[derive(Debug)]
struct Matcher {
    route: usize,
    paths: PathRule,
    priority: Priority,
    /// Ties: the older route first, then the smaller id (Tessera's choice; stable on every node).
    tie: (i64, Uuid),
}

#[derive(Debug)]
enum PathRule {
    /// The route has no paths.
    Any,
    /// Prefixes of one length (indexes into the route's `paths`).
    Prefixes(Vec<usize>),
    /// The route's regex paths, compiled once per table build.
    Regexes(Vec<Regex>),
}

/// Kong's route priority (`kong/router/transform.lua` `get_priority`), compared in this
/// field order, higher first: how many of methods, hosts, headers, snis, paths are set;
/// whether every host is plain (no wildcard); how many headers; a regex path; its
/// `regex_priority`; the prefix's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Priority {
    weight: u8,
    plain_hosts: bool,
    header_count: u8,
    regex: bool,
    regex_priority: i64,
    prefix_len: usize,
}

/// What a request offers the router.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'r> {
    /// The Host the request names (a port is ignored).
    pub host: &'r str,
    pub method: &'r str,
    /// The normalised path.
    pub path: &'r str,
    pub headers: &'r HeaderMap,
    /// The connection (or a trusted proxy) says TLS.
    pub https: bool,
    /// A WebSocket upgrade.
    pub websocket: bool,
}

impl RequestFacts<'_> {
    pub fn protocols(&self) -> Protocols {
        Protocols::of_request(self.https, self.websocket)
    }
}

/// What matched a request.
pub struct Matched<'t> {
    pub route: &'t CompiledRoute,
    /// What the route's path matched, stripped with `strip_path` (empty when the route has
    /// no paths): the prefix, or the part of the request path a regex path matched.
    pub prefix: Cow<'t, str>,
}

impl Matched<'_> {
    /// The route's session plugin, when its `protocols` take a request of these protocols.
    pub fn plugin_for(&self, request: Protocols) -> Option<&Arc<SessionPlugin>> {
        self.route.plugin.as_ref().filter(|p| p.protocols.intersects(request))
    }
}

/// The router's answer.
pub enum Lookup<'t> {
    Found(Matched<'t>),
    /// A route matched everything but the protocol: a plain-http request where only the
    /// TLS protocols are allowed (Kong answers 426, or redirects as the route says).
    HttpsRequired(&'t CompiledRoute),
    /// A route matched everything but the protocol otherwise (a `ws`/`wss`-only route and a
    /// request that is no WebSocket upgrade).
    WrongProtocol(&'t CompiledRoute),
    NotFound,
}

#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<CompiledRoute>,
    /// Every route's matchers, highest priority first.
    matchers: Vec<Matcher>,
}

/// Kong's prefix match: `/api` matches `/api`, `/api/x` and `/apix` (Kong does too), but not
/// `/api..` or `/api.;x/`: what a stripped prefix would leave there is a dot segment, which
/// would climb out of the service's path upstream.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix) && !continues_with_dots(prefix, &path[prefix.len()..])
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
    /// A plugin naming both a route and a service: only for that route when it belongs to
    /// that service.
    by_route_and_service: HashMap<(Uuid, Uuid), Arc<SessionPlugin>>,
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
            let plugin = || Arc::new(SessionPlugin::new(org, &p));
            let occupied = match (p.route, p.service) {
                (Some(r), Some(s)) => insert(&mut scopes.by_route_and_service, (r.id, s.id), plugin),
                (Some(r), None) => insert(&mut scopes.by_route, r.id, plugin),
                (None, Some(s)) => insert(&mut scopes.by_service, s.id, plugin),
                (None, None) => insert(&mut scopes.global, org.0, plugin),
            };
            if occupied {
                tracing::warn!(plugin = ?p.id, "a second session plugin on one scope is ignored");
            }
        }
        scopes
    }

    /// The most specific plugin for a route (Kong's precedence without consumers): route and
    /// service together, the route's, the service's, or the organization's.
    fn of(&self, org: OrgId, route: Uuid, service: Uuid) -> Option<Arc<SessionPlugin>> {
        let found = self.by_route_and_service.get(&(route, service)).or_else(|| self.by_route.get(&route));
        found.or_else(|| self.by_service.get(&service)).or_else(|| self.global.get(&org.0)).cloned()
    }
}

/// Inserts unless the key is taken; whether it was.
fn insert<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Arc<SessionPlugin>>,
    key: K,
    value: impl FnOnce() -> Arc<SessionPlugin>,
) -> bool {
    match map.entry(key) {
        Entry::Occupied(_) => true,
        Entry::Vacant(v) => {
            v.insert(value());
            false
        }
    }
}

/// A route's matchers: one for its regex paths, one per length of its prefixes, or one
/// without paths; each with Kong's priority.
fn matchers(index: usize, r: &Route, regexes: Vec<Regex>) -> Vec<Matcher> {
    let set = |b: bool| u8::from(b);
    let weight = set(!r.methods.is_empty())
        + set(!r.hosts.is_empty())
        + set(!r.headers.is_empty())
        + set(!r.snis.is_empty())
        + set(!r.paths.is_empty());
    let base = Priority {
        weight,
        plain_hosts: !r.hosts.is_empty() && !r.hosts.iter().any(|h| h.contains('*')),
        header_count: r.headers.len().min(255) as u8,
        regex: false,
        regex_priority: 0,
        prefix_len: 0,
    };
    let tie = (r.created_at, r.id.unwrap_or_default());
    let mut out = vec![];
    if r.paths.is_empty() {
        out.push(Matcher { route: index, paths: PathRule::Any, priority: base, tie });
    }
    if !regexes.is_empty() {
        let priority = Priority { regex: true, regex_priority: r.regex_priority, ..base };
        out.push(Matcher { route: index, paths: PathRule::Regexes(regexes), priority, tie });
    }
    let mut by_len: Vec<(usize, Vec<usize>)> = vec![];
    for (i, p) in r.paths.iter().enumerate().filter(|(_, p)| !p.starts_with('~')) {
        match by_len.iter_mut().find(|(len, _)| *len == p.len()) {
            Some((_, v)) => v.push(i),
            None => by_len.push((p.len(), vec![i])),
        }
    }
    for (len, paths) in by_len {
        let priority = Priority { prefix_len: len, ..base };
        out.push(Matcher { route: index, paths: PathRule::Prefixes(paths), priority, tie });
    }
    out
}

/// Whom an `https` service's certificate must chain to: not verified (`tls_verify = false`),
/// or the CA certificates it names or else the gateway's roots, through at most
/// `tls_verify_depth` intermediate CAs when set.
fn trust(org: OrgId, s: &Service, cas: &HashMap<(OrgId, Uuid), &CaCertificate>) -> crate::proxy::Trust {
    use crate::proxy::{Roots, Trust};
    if !s.tls_verify.unwrap_or(true) {
        return Trust::Unverified;
    }
    // The API keeps the depth within 0-64; a larger one stored anyway could only limit less.
    let depth = s.tls_verify_depth.map(|d| u8::try_from(d).unwrap_or(u8::MAX));
    let Some(ids) = s.ca_certificates.as_ref().filter(|ids| !ids.is_empty()) else {
        return Trust::Verified { roots: Roots::Default, depth };
    };
    let mut ders: Vec<Vec<u8>> = ids
        .iter()
        .filter_map(|id| {
            let der = cas.get(&(org, *id)).and_then(|c| c.der());
            if der.is_none() {
                tracing::warn!(service = ?s.id, ca_certificate = %id, "a CA certificate the service names is missing");
            }
            der
        })
        .collect();
    ders.sort_unstable();
    Trust::Verified { roots: Roots::Cas(ders), depth }
}

impl Table {
    pub fn build(services: Vec<(OrgId, Service)>, routes: Vec<(OrgId, Route)>, plugins: Vec<(OrgId, Plugin)>) -> Self {
        Self::build_with_tls(services, routes, plugins, &[], &crate::proxy::UpstreamTls::default())
    }

    /// [`Table::build`], verifying `https` services as `tls` says, or against the CA
    /// certificates (of `cas`) they name.
    ///
    /// Every table makes its connection pools anew, so after any change (a CA certificate's
    /// PEM replaced, a service's `ca_certificates` edited) new requests never reuse a
    /// connection verified under the old trust; within a table, the pool's key holds the
    /// trust, so two services to one upstream with different CAs or different
    /// `tls_verify_depth` never share connections.
    pub fn build_with_tls(
        services: Vec<(OrgId, Service)>,
        routes: Vec<(OrgId, Route)>,
        plugins: Vec<(OrgId, Plugin)>,
        cas: &[(OrgId, CaCertificate)],
        tls: &crate::proxy::UpstreamTls,
    ) -> Self {
        let services: HashMap<Uuid, (OrgId, Service)> =
            services.into_iter().filter_map(|(o, s)| s.id.map(|id| (id, (o, s)))).collect();
        let cas: HashMap<(OrgId, Uuid), &CaCertificate> =
            cas.iter().filter_map(|(o, c)| c.id.map(|id| ((*o, id), c))).collect();
        let scopes = Scopes::new(plugins);
        // One connection pool per upstream (and connect timeout and trust), shared by the
        // routes that use it; one TLS client per trust.
        let mut clients = HashMap::new();
        let mut configs = HashMap::new();
        let mut compiled = vec![];
        let mut all_matchers = vec![];
        for (org, r) in routes {
            let Some(sid) = r.service.map(|s| s.id) else { continue };
            let Some((_, s)) = services.get(&sid).filter(|(sorg, s)| *sorg == org && s.enabled) else { continue };
            let id = r.id.unwrap_or_default();
            // The API refused invalid patterns; one that fails here anyway (stored by an older
            // version) leaves its route out rather than matching something else.
            let Ok(regexes) =
                r.paths.iter().filter_map(|p| p.strip_prefix('~')).map(|p| compile_regex(p, false)).collect()
            else {
                tracing::warn!(route = %id, "a route with an invalid regex path is left out");
                continue;
            };
            let Ok(headers) = r
                .headers
                .iter()
                .map(|(name, values)| {
                    let values = values
                        .iter()
                        .map(|v| match v.strip_prefix("~*") {
                            Some(re) => compile_regex(re, true).map(HeaderValueRule::Regex),
                            None => Ok(HeaderValueRule::Exact(v.clone())),
                        })
                        .collect::<Result<_, _>>()?;
                    Ok::<_, String>(HeaderRule { name: name.to_ascii_lowercase(), values })
                })
                .collect()
            else {
                tracing::warn!(route = %id, "a route with an invalid header pattern is left out");
                continue;
            };
            let https = s.protocol.as_deref() == Some("https");
            let trust = https.then(|| trust(org, s, &cas));
            let authority = Upstream::authority(s);
            let client = clients
                .entry((authority.clone(), s.connect_timeout, trust.clone()))
                .or_insert_with(|| {
                    let config = trust.map(|t| configs.entry(t).or_insert_with_key(|t| tls.config(t)).clone());
                    crate::proxy::client(&authority, Duration::from_millis(s.connect_timeout), config)
                })
                .clone();
            all_matchers.extend(matchers(compiled.len(), &r, regexes));
            compiled.push(CompiledRoute {
                id,
                org,
                host_patterns: r.hosts.iter().map(|h| HostPattern::new(h)).collect(),
                headers,
                protocols: Protocols::from_names(&r.protocols),
                https_redirect_status_code: r.https_redirect_status_code,
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
        all_matchers.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.tie.cmp(&b.tie)));
        Self { routes: compiled, matchers: all_matchers }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route for a request by host, method and path alone (any headers and protocol
    /// ignored): what the sign-in page uses to find the plugin of the page it returns to.
    pub fn find(&self, host: &str, method: &str, path: &str) -> Option<Matched<'_>> {
        let headers = HeaderMap::new();
        let facts = RequestFacts { host, method, path, headers: &headers, https: true, websocket: false };
        self.matching(&facts, false).map(|(route, prefix)| Matched { route, prefix })
    }

    /// Kong's router: the highest-priority matcher whose route takes the request's host,
    /// method, headers and path wins; then its `protocols` decide.
    pub fn lookup(&self, facts: &RequestFacts<'_>) -> Lookup<'_> {
        let Some((route, prefix)) = self.matching(facts, true) else { return Lookup::NotFound };
        let request = facts.protocols();
        if route.protocols.intersects(request) {
            Lookup::Found(Matched { route, prefix })
        } else if !facts.https && route.protocols.intersects(request.secured()) {
            Lookup::HttpsRequired(route)
        } else {
            Lookup::WrongProtocol(route)
        }
    }

    fn matching(&self, facts: &RequestFacts<'_>, check_headers: bool) -> Option<(&CompiledRoute, Cow<'_, str>)> {
        let host = facts.host.split(':').next().unwrap_or(facts.host);
        let host: Cow<'_, str> =
            if host.bytes().any(|b| b.is_ascii_uppercase()) { host.to_ascii_lowercase().into() } else { host.into() };
        let host = host.strip_suffix('.').unwrap_or(&host);
        self.matchers.iter().find_map(|m| {
            let r = &self.routes[m.route];
            if !r.host_patterns.is_empty() && !r.host_patterns.iter().any(|h| h.matches(host)) {
                return None;
            }
            if !r.methods.is_empty() && !r.methods.iter().any(|x| x == facts.method) {
                return None;
            }
            if check_headers && !r.headers.iter().all(|h| h.matches(facts.headers)) {
                return None;
            }
            if !check_headers && !r.headers.is_empty() {
                return None;
            }
            let prefix = match &m.paths {
                PathRule::Any => Cow::Borrowed(""),
                PathRule::Prefixes(ix) => {
                    let p = ix.iter().map(|&i| r.paths[i].as_str()).find(|p| prefix_matches(p, facts.path))?;
                    Cow::Borrowed(p)
                }
                PathRule::Regexes(res) => {
                    let found = res.iter().find_map(|re| re.find(facts.path))?;
                    let matched = found.as_str();
                    // What strip_path would leave must not climb out of the service's path.
                    if continues_with_dots(matched, &facts.path[found.end()..]) {
                        return None;
                    }
                    Cow::Owned(matched.to_owned())
                }
            };
            Some((r, prefix))
        })
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
    fn wildcard_hosts_match_like_kong() {
        let m = |p: &str, h: &str| HostPattern::new(p).matches(h);
        assert!(m("*.example.com", "a.example.com"));
        assert!(m("*.example.com", "a.b.example.com"), "Kong's postfix match: any depth");
        assert!(!m("*.example.com", "example.com"));
        assert!(!m("*.example.com", "aexample.com"));
        assert!(m("example.*", "example.org"));
        assert!(m("example.*", "example.co.uk"));
        assert!(!m("example.*", "example"));
        assert!(!m("example.*", "xexample.org"));
        assert!(m("example.com", "example.com"));
        assert!(!m("example.com", "a.example.com"));
    }

    const ORG: OrgId = OrgId(Uuid::nil());

    fn service(id: u128) -> (OrgId, Service) {
        let mut s: Service =
            serde_json::from_value(serde_json::json!({"id": Uuid::from_u128(id), "url": "http://127.0.0.1:9"}))
                .unwrap();
        s.normalize().unwrap();
        (ORG, s)
    }

    /// A route `id` of service 7 with the given fields (and its id as creation time).
    fn r(id: u128, fields: serde_json::Value) -> (OrgId, Route) {
        let mut v = serde_json::json!({"id": Uuid::from_u128(id), "name": format!("r{id}"), "created_at": id,
            "service": {"id": Uuid::from_u128(7)}});
        tessera_domain::gateway::merge_patch(&mut v, fields);
        let mut route: Route = serde_json::from_value(v).unwrap();
        route.normalize().unwrap();
        (ORG, route)
    }

    fn table(routes: Vec<(OrgId, Route)>, plugins: Vec<(OrgId, Plugin)>) -> Table {
        Table::build(vec![service(7), service(8)], routes, plugins)
    }

    struct Req {
        host: &'static str,
        path: &'static str,
        headers: HeaderMap,
        https: bool,
        websocket: bool,
    }

    fn req(host: &'static str, path: &'static str) -> Req {
        Req { host, path, headers: HeaderMap::new(), https: false, websocket: false }
    }

    impl Req {
        fn header(mut self, k: &'static str, v: &'static str) -> Self {
            self.headers.append(k, axum::http::HeaderValue::from_static(v));
            self
        }
        fn tls(mut self) -> Self {
            self.https = true;
            self
        }
        fn ws(mut self) -> Self {
            self.websocket = true;
            self
        }
        fn facts(&self) -> RequestFacts<'_> {
            RequestFacts {
                host: self.host,
                method: "GET",
                path: self.path,
                headers: &self.headers,
                https: self.https,
                websocket: self.websocket,
            }
        }
    }

    /// The name of the route a request goes to, or what else the router says.
    fn to(t: &Table, q: &Req) -> String {
        match t.lookup(&q.facts()) {
            Lookup::Found(m) => m.route.name.clone().unwrap(),
            Lookup::HttpsRequired(r) => format!("426 {}", r.name.clone().unwrap()),
            Lookup::WrongProtocol(r) => format!("wrong protocol {}", r.name.clone().unwrap()),
            Lookup::NotFound => "404".into(),
        }
    }

    #[test]
    fn kongs_priority_orders_the_routes() {
        let t = table(
            vec![
                r(1, serde_json::json!({"paths": ["/api/users/long"]})),
                r(2, serde_json::json!({"paths": ["/"], "hosts": ["x.test"]})),
                r(3, serde_json::json!({"paths": ["/"], "hosts": ["*.test"]})),
                r(
                    4,
                    serde_json::json!({"paths": ["/"], "hosts": ["*.test"], "headers": {"X-Version": ["v1", "~*^beta-\\d+$"]}}),
                ),
                r(5, serde_json::json!({"paths": ["/v/1"]})),
                r(6, serde_json::json!({"paths": ["~/v/\\d+$"]})),
                r(7, serde_json::json!({"paths": ["~/v/1$"], "regex_priority": 10})),
                r(8, serde_json::json!({"paths": ["~/v/\\d$"]})),
            ],
            vec![],
        );
        // More fields set wins first: hosts + paths beats a longer path alone.
        assert_eq!(to(&t, &req("x.test", "/api/users/long")), "r2");
        assert_eq!(to(&t, &req("other", "/api/users/long")), "r1");
        // A plain host beats a wildcard one (same fields set).
        assert_eq!(to(&t, &req("y.test", "/")), "r3");
        // A header to match counts as one more field; values are case-insensitive, `~*` is a regex.
        assert_eq!(to(&t, &req("x.test", "/").header("x-version", "V1")), "r4");
        assert_eq!(to(&t, &req("x.test", "/").header("x-version", "BETA-7")), "r4");
        assert_eq!(to(&t, &req("x.test", "/").header("x-version", "beta-7x")), "r2");
        // A regex path beats a prefix; among regexes, regex_priority; then the older route.
        assert_eq!(to(&t, &req("other", "/v/1")), "r7", "regex_priority 10");
        assert_eq!(to(&t, &req("other", "/v/2")), "r6", "r6 and r8 tie: the older");
        assert_eq!(to(&t, &req("other", "/v/22")), "r6");
        assert_eq!(
            to(&t, &req("other", "/v/1/x")),
            "r5",
            "regexes are anchored at the start only with `^`; `$` ends them"
        );
        assert_eq!(to(&t, &req("other", "/x/v/1")), "404", "anchored at the start");
    }

    #[test]
    fn a_regex_path_strips_what_it_matched() {
        let t = table(vec![r(1, serde_json::json!({"paths": ["~/api/(?<v>v\\d+)"]}))], vec![]);
        let q = req("h", "/api/v2/users");
        let Lookup::Found(m) = t.lookup(&q.facts()) else { panic!("no match") };
        assert_eq!(m.prefix, "/api/v2");
        assert_eq!(upstream_path("", &m.prefix, true, "/api/v2/users"), "/users");
        assert!(matches!(t.lookup(&req("h", "/api/v2..").facts()), Lookup::NotFound), "would leave a dot segment");
    }

    #[test]
    fn route_protocols_select_requests_and_plain_http_to_https_only_is_426() {
        let t = table(
            vec![
                r(1, serde_json::json!({"paths": ["/secure"], "protocols": ["https"]})),
                r(2, serde_json::json!({"paths": ["/socket"], "protocols": ["ws", "wss"]})),
                r(3, serde_json::json!({"paths": ["/both"]})),
                r(4, serde_json::json!({"paths": ["/tls-socket"], "protocols": ["wss"]})),
            ],
            vec![],
        );
        assert_eq!(to(&t, &req("h", "/secure")), "426 r1");
        assert_eq!(to(&t, &req("h", "/secure").tls()), "r1");
        assert_eq!(to(&t, &req("h", "/socket")), "wrong protocol r2");
        assert_eq!(to(&t, &req("h", "/socket").ws()), "r2");
        assert_eq!(to(&t, &req("h", "/both").ws().tls()), "r3", "http routes take WebSocket handshakes");
        assert_eq!(to(&t, &req("h", "/tls-socket").ws()), "426 r4");
        assert_eq!(to(&t, &req("h", "/tls-socket").ws().tls()), "r4");
    }

    fn plugin(id: u128, fields: serde_json::Value) -> (OrgId, Plugin) {
        let mut v = serde_json::json!({"id": Uuid::from_u128(id), "name": "session", "created_at": id,
            "config": {"secret": "s", "audience": format!("p{id}")}});
        tessera_domain::gateway::merge_patch(&mut v, fields);
        let mut p: Plugin = serde_json::from_value(v).unwrap();
        p.normalize().unwrap();
        (ORG, p)
    }

    /// The audience of the plugin that runs for a request (each test plugin has its own).
    fn plugin_of(t: &Table, q: &Req) -> Option<String> {
        let Lookup::Found(m) = t.lookup(&q.facts()) else { panic!("no route") };
        m.plugin_for(q.facts().protocols()).map(|p| p.audience.clone())
    }

    #[test]
    fn plugin_scopes_and_protocols_decide_which_session_plugin_runs() {
        let route = |id| serde_json::json!({"id": Uuid::from_u128(id)});
        let t = table(
            vec![
                r(1, serde_json::json!({"paths": ["/one"]})),
                r(2, serde_json::json!({"paths": ["/two"]})),
                r(3, serde_json::json!({"paths": ["/three"]})),
                r(4, serde_json::json!({"paths": ["/four"], "service": {"id": Uuid::from_u128(8)}})),
                r(5, serde_json::json!({"paths": ["/five"], "service": {"id": Uuid::from_u128(8)}})),
            ],
            vec![
                plugin(10, serde_json::json!({})),
                plugin(11, serde_json::json!({"service": route(7)})),
                plugin(12, serde_json::json!({"route": route(1)})),
                plugin(13, serde_json::json!({"route": route(1), "service": route(7)})),
                // Route 2 does not belong to service 8: this one never applies.
                plugin(14, serde_json::json!({"route": route(2), "service": route(8)})),
                plugin(15, serde_json::json!({"route": route(4), "protocols": ["wss"]})),
            ],
        );
        assert_eq!(plugin_of(&t, &req("h", "/one")).as_deref(), Some("p13"), "route and service together first");
        assert_eq!(plugin_of(&t, &req("h", "/two")).as_deref(), Some("p11"), "the service's");
        assert_eq!(plugin_of(&t, &req("h", "/three")).as_deref(), Some("p11"));
        assert_eq!(plugin_of(&t, &req("h", "/five")).as_deref(), Some("p10"), "the global one");
        // Seed 003's `protocols = ["wss"]`: only WebSockets over TLS.
        assert_eq!(plugin_of(&t, &req("h", "/four")), None);
        assert_eq!(plugin_of(&t, &req("h", "/four").tls()), None);
        assert_eq!(plugin_of(&t, &req("h", "/four").ws()), None);
        assert_eq!(plugin_of(&t, &req("h", "/four").ws().tls()).as_deref(), Some("p15"));
        // The default protocols (grpc, grpcs, http, https) take every HTTP request, upgrades too.
        assert_eq!(plugin_of(&t, &req("h", "/one").ws().tls()).as_deref(), Some("p13"));
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
