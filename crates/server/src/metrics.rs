//! Prometheus metrics of the HTTP API: requests by route and status, and latency histograms
//! by route, rendered in the text exposition format on the metrics listener
//! (`--metrics-listen`, off by default).
//!
//! Cheap on the hot path: every label set is registered up front from the route table, and
//! the edge ([`crate::front`]) counts each request itself: one lookup of its route in a
//! radix tree of the table's paths (no allocation), two clock reads and three relaxed atomic
//! adds. No layer wraps the routes (a per-route layer boxed every request's future a second
//! time). With metrics off the edge does none of it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// The statuses counted by name; any other is counted as `other`.
const STATUSES: [u16; 16] = [200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 431, 500, 502, 503];
/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied).
const BOUNDS: [f64; 13] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One route's counters.
pub(crate) struct RouteCells {
    method: &'static str,
    path: &'static str,
    /// By the index of the status in [`STATUSES`], then `other`.
    statuses: [AtomicU64; STATUSES.len() + 1],
    /// Not cumulative: bucket `i` counts latencies in `(BOUNDS[i-1], BOUNDS[i]]`, the last
    /// one those above every bound. Rendering sums them up as Prometheus wants.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl RouteCells {
    pub(crate) fn observe(&self, status: u16, seconds: f64) {
        let s = STATUSES.iter().position(|&x| x == status).unwrap_or(STATUSES.len());
        self.statuses[s].fetch_add(1, Relaxed);
        let b = BOUNDS.iter().position(|&x| seconds <= x).unwrap_or(BOUNDS.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add((seconds * 1e9) as u64, Relaxed);
    }
}

/// The API's request metrics, one set of cells per route of the table.
pub struct ApiMetrics {
    routes: Vec<RouteCells>,
    /// Path template → the (method, index) pairs served there.
    index: HashMap<&'static str, Vec<(&'static str, usize)>>,
    /// The same templates as the router matches them (axum's own matcher): a request's path →
    /// the (method, index) pairs of its route.
    matcher: matchit::Router<Vec<(&'static str, usize)>>,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiMetrics").field("routes", &self.routes.len()).finish()
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiMetrics {
    /// Cells for every route of the route table.
    pub fn new() -> Self {
        let routes: Vec<RouteCells> = crate::route_table()
            .into_iter()
            .map(|r| RouteCells {
                method: r.method,
                path: r.path,
                statuses: std::array::from_fn(|_| AtomicU64::new(0)),
                buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                sum_nanos: AtomicU64::new(0),
            })
            .collect();
        let mut index: HashMap<&'static str, Vec<(&'static str, usize)>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            index.entry(r.path).or_default().push((r.method, i));
        }
        let mut matcher = matchit::Router::new();
        for (path, at) in &index {
            // The route table's templates are the router's: each inserts (a test checks).
            let _ = matcher.insert(*path, at.clone());
        }
        Self { routes, index, matcher }
    }

    /// The cells of the route a request to `method path` is routed to, found as the router
    /// finds it; `None` for a path no route serves or a method it does not (those answers
    /// are not counted by route).
    pub(crate) fn route_of(&self, method: &str, path: &str) -> Option<&RouteCells> {
        let at = self.matcher.at(path).ok()?.value;
        let (_, i) = at.iter().find(|(m, _)| *m == method || *m == "ANY")?;
        self.routes.get(*i)
    }

    fn cells(&self, path: &str, method: &str) -> Option<&RouteCells> {
        let at = self.index.get(path)?;
        let (_, i) = at.iter().find(|(m, _)| *m == method || *m == "ANY")?;
        self.routes.get(*i)
    }

    /// Counts one answered request.
    pub fn observe(&self, path: &str, method: &str, status: u16, seconds: f64) {
        if let Some(cells) = self.cells(path, method) {
            cells.observe(status, seconds);
        }
    }

    /// This table, borrowed for the rest of the process: the edge holds a plain reference
    /// into it, not an `Arc` whose count both cores would change on every request. (One `Arc` is kept alive for good per router built, which
    /// a server does once.)
    pub(crate) fn for_process(metrics: &Arc<ApiMetrics>) -> &'static ApiMetrics {
        let kept: &'static Arc<ApiMetrics> = Box::leak(Box::new(Arc::clone(metrics)));
        kept
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("# HELP tessera_http_requests_total Requests the API answered, by route and status.\n");
        out.push_str("# TYPE tessera_http_requests_total counter\n");
        for r in &self.routes {
            for (i, n) in r.statuses.iter().enumerate() {
                let n = n.load(Relaxed);
                if n == 0 {
                    continue;
                }
                let status = STATUSES.get(i).map_or_else(|| "other".to_owned(), u16::to_string);
                let _ = writeln!(
                    out,
                    "tessera_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    r.method, r.path
                );
            }
        }
        out.push_str(
            "# HELP tessera_http_request_duration_seconds Time from a request's head to its answer, by route.\n",
        );
        out.push_str("# TYPE tessera_http_request_duration_seconds histogram\n");
        for r in &self.routes {
            let counts: Vec<u64> = r.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let labels = format!("method=\"{}\",route=\"{}\"", r.method, r.path);
            let mut running = 0;
            for (bound, n) in BOUNDS.iter().zip(&counts) {
                running += n;
                let _ =
                    writeln!(out, "tessera_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {running}");
            }
            let _ = writeln!(out, "tessera_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}");
            let sum = r.sum_nanos.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "tessera_http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "tessera_http_request_duration_seconds_count{{{labels}}} {total}");
        }
        out
    }
}

/// More metrics rendered after the API's and the app's (the gateway's upstreams): a part of
/// the node this crate does not depend on.
pub type Section = Arc<dyn Fn(&mut String) + Send + Sync>;

type Exposed = (Arc<ApiMetrics>, Arc<tessera_app::App>, Arc<[Section]>);

/// Serves `GET /metrics` on `listener` until `shutdown` resolves: the API's metrics, the
/// app's (the store's included), then each of `more`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ApiMetrics>,
    app: Arc<tessera_app::App>,
    more: Vec<Section>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // One handler for the whole listener (not a second route table): it answers /metrics only.
    let service = axum::routing::get(exposition).with_state((metrics, app, Arc::from(more)));
    axum::serve(listener, service.into_make_service()).with_graceful_shutdown(shutdown).await
}

async fn exposition(State((metrics, app, more)): State<Exposed>, uri: axum::http::Uri) -> Response {
    if uri.path() != "/metrics" {
        return (axum::http::StatusCode::NOT_FOUND, "metrics are at /metrics\n").into_response();
    }
    let mut text = metrics.render();
    app.render_metrics(&mut text).await;
    for section in more.iter() {
        section(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path the template `t` serves: each `{param}` a plain segment, a `{*rest}` two.
    fn concrete(t: &str) -> String {
        t.split('/')
            .map(|seg| match seg.strip_prefix('{') {
                Some(p) if p.starts_with('*') => "a/b",
                Some(_) => "x1",
                None => seg,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn the_edge_finds_every_route_of_the_table_as_the_router_does() {
        let m = ApiMetrics::new();
        let table = crate::route_table();
        assert!(table.len() > 50, "the whole table: {}", table.len());
        for r in &table {
            let method = if r.method == "ANY" { "GET" } else { r.method };
            let path = concrete(r.path);
            let cells = m.route_of(method, &path).unwrap_or_else(|| panic!("{method} {path} ({})", r.path));
            assert_eq!((cells.method, cells.path), (r.method, r.path), "{method} {path}");
        }
        assert!(m.route_of("GET", "/v2/no-such-route").is_none());
        assert!(m.route_of("DELETE", "/healthz").is_none(), "a method the route does not serve");
        assert!(m.route_of("GET", "/v2/users/x1/extra/segments").is_none());
    }
}
