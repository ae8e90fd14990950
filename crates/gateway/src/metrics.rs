//! What the gateway counts of its upstreams for Prometheus: answers by status class, failures
//! by kind, and the time to the answer's head. One set for the whole gateway, without a
//! service label: services are created through the API by every tenant, so a label per
//! service would have no bound fixed by the operator. Relaxed atomic adds only.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Status classes of upstream answers, by their first digit.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Why no answer came: the upstream did not answer within the route's read timeout, the TCP
/// connection could not be made (refused, unreachable, connect timeout), the TLS handshake
/// failed (an untrusted certificate), or the connection failed after it was made; or the
/// handshake failed because the certificate's chain was longer than allowed (the service's
/// `tls_verify_depth`, or webpki's own bound).
const FAILURES: [&str; 5] = ["timeout", "connect", "tls", "connection", "tls_chain_too_deep"];
/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied).
const BOUNDS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How an upstream request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout = 0,
    Connect = 1,
    Tls = 2,
    Connection = 3,
    ChainTooDeep = 4,
}

impl Failure {
    /// What an upstream request's error says went wrong.
    pub(crate) fn of(e: &crate::pool::UpstreamError) -> Self {
        match std::error::Error::source(e).and_then(tls) {
            Some(refused) if crate::verify::is_chain_too_deep(refused) => Failure::ChainTooDeep,
            Some(_) => Failure::Tls,
            None if e.is_connect() => Failure::Connect,
            None => Failure::Connection,
        }
    }

    /// Its `reason` label, also in the log line of the failure.
    pub(crate) fn reason(self) -> &'static str {
        FAILURES[self as usize]
    }
}

/// rustls's refusal of the handshake, somewhere in `e`'s chain. The connector wraps its error
/// in I/O errors (nested, whose `source` skips the wrapped error), so each is opened.
fn tls<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(refused) = e.downcast_ref::<rustls::Error>() {
        return Some(refused);
    }
    if let Some(found) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| tls(inner)) {
        return Some(found);
    }
    e.source().and_then(tls)
}

#[derive(Default)]
pub struct UpstreamMetrics {
    answers: [AtomicU64; CLASSES.len()],
    failures: [AtomicU64; FAILURES.len()],
    /// Not cumulative: bucket `i` counts latencies in `(BOUNDS[i-1], BOUNDS[i]]`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl std::fmt::Debug for UpstreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamMetrics").finish_non_exhaustive()
    }
}

impl UpstreamMetrics {
    /// An answer's head arrived after `took`.
    pub(crate) fn answered(&self, status: u16, took: Duration) {
        if let Some(n) = self.answers.get(usize::from(status / 100).wrapping_sub(1)) {
            n.fetch_add(1, Relaxed);
        }
        let seconds = took.as_secs_f64();
        let b = BOUNDS.iter().position(|&x| seconds <= x).unwrap_or(BOUNDS.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    pub(crate) fn failed(&self, why: Failure) {
        self.failures[why as usize].fetch_add(1, Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP tessera_gateway_upstream_responses_total Answers the gateway's upstreams gave, by status class.\n\
             # TYPE tessera_gateway_upstream_responses_total counter\n",
        );
        for (class, n) in CLASSES.iter().zip(&self.answers) {
            let _ = writeln!(out, "tessera_gateway_upstream_responses_total{{class=\"{class}\"}} {}", n.load(Relaxed));
        }
        out.push_str(
            "# HELP tessera_gateway_upstream_failures_total Upstream requests that got no answer, by why.\n\
             # TYPE tessera_gateway_upstream_failures_total counter\n",
        );
        for (why, n) in FAILURES.iter().zip(&self.failures) {
            let _ = writeln!(out, "tessera_gateway_upstream_failures_total{{reason=\"{why}\"}} {}", n.load(Relaxed));
        }
        out.push_str(
            "# HELP tessera_gateway_upstream_duration_seconds Time from sending a request upstream to the answer's head.\n\
             # TYPE tessera_gateway_upstream_duration_seconds histogram\n",
        );
        let mut running = 0;
        for (bound, n) in BOUNDS.iter().zip(&self.buckets) {
            running += n.load(Relaxed);
            let _ = writeln!(out, "tessera_gateway_upstream_duration_seconds_bucket{{le=\"{bound}\"}} {running}");
        }
        running += self.buckets[BOUNDS.len()].load(Relaxed);
        let _ = writeln!(out, "tessera_gateway_upstream_duration_seconds_bucket{{le=\"+Inf\"}} {running}");
        let _ = writeln!(
            out,
            "tessera_gateway_upstream_duration_seconds_sum {}\ntessera_gateway_upstream_duration_seconds_count {running}",
            self.sum_nanos.load(Relaxed) as f64 / 1e9
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_class_and_timed() {
        let m = UpstreamMetrics::default();
        m.answered(204, Duration::from_millis(3));
        m.answered(503, Duration::from_secs(20));
        m.answered(42, Duration::from_millis(1));
        m.failed(Failure::Tls);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            r#"tessera_gateway_upstream_responses_total{class="2xx"} 1"#,
            r#"tessera_gateway_upstream_responses_total{class="5xx"} 1"#,
            r#"tessera_gateway_upstream_failures_total{reason="tls"} 1"#,
            r#"tessera_gateway_upstream_duration_seconds_bucket{le="0.0025"} 1"#,
            r#"tessera_gateway_upstream_duration_seconds_bucket{le="0.005"} 2"#,
            r#"tessera_gateway_upstream_duration_seconds_bucket{le="10"} 2"#,
            r#"tessera_gateway_upstream_duration_seconds_bucket{le="+Inf"} 3"#,
            "tessera_gateway_upstream_duration_seconds_count 3",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
    }

    #[test]
    fn a_chain_too_deep_is_told_apart_from_other_tls_refusals() {
        use std::io::{Error as IoError, ErrorKind};
        use std::sync::Arc;

        use rustls::{CertificateError, OtherError};

        use crate::pool::UpstreamError;
        use crate::verify::ChainTooDeep;

        // As the connector reports a refused handshake: rustls's error in I/O errors.
        let refused =
            |e: rustls::Error| UpstreamError::Connect(IoError::other(IoError::new(ErrorKind::InvalidData, e)));
        let other = |e: Arc<dyn std::error::Error + Send + Sync>| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(e)))
        };
        let deep = refused(other(Arc::new(ChainTooDeep { depth: 0 })));
        assert_eq!(Failure::of(&deep), Failure::ChainTooDeep);
        assert_eq!(Failure::of(&deep).reason(), "tls_chain_too_deep");
        let webpkis_own = refused(other(Arc::new(webpki::Error::MaximumPathDepthExceeded)));
        assert_eq!(Failure::of(&webpkis_own), Failure::ChainTooDeep);
        let untrusted = refused(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert_eq!(Failure::of(&untrusted).reason(), "tls");
        let expired = refused(other(Arc::new(webpki::Error::CertExpired {
            time: rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(2)),
            not_after: rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(1)),
        })));
        assert_eq!(Failure::of(&expired), Failure::Tls);
        let closed = UpstreamError::Connect(IoError::from(ErrorKind::ConnectionRefused));
        assert_eq!(Failure::of(&closed).reason(), "connect");
    }
}
