//! The HTTP side of OIDC discovery: `{issuer}/.well-known/openid-configuration`, then its
//! `jwks_uri`, with bounded timeouts and sizes; how long the keys may be kept comes from the
//! answer's `Cache-Control: max-age` (or `Expires` against `Date`).

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, DATE, EXPIRES, HeaderMap};
use tessera_app::{FetchedKeys, KeyFetcher};
use tessera_domain::oidc::{IssuerUri, JwkSet};

/// Keys and discovery documents are small; a bigger answer is not an issuer's.
const MAX_BODY: usize = 1 << 20;

pub struct HttpKeyFetcher {
    /// Built on the first fetch: a node that never meets an OIDC issuer never loads the TLS
    /// roots and client (a few MB of resident memory).
    client: std::sync::OnceLock<reqwest::Client>,
}

impl HttpKeyFetcher {
    pub fn new() -> Self {
        Self { client: std::sync::OnceLock::new() }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::custom(follow_redirect))
                .build()
                .expect("an HTTP client with default TLS settings")
        })
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<(serde_json::Value, HeaderMap), String> {
        let answer = self.client().get(url).send().await.map_err(|e| format!("{what} at {url}: {}", short(&e)))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("{what} at {url} answered {status}"));
        }
        let headers = answer.headers().clone();
        let too_large = || format!("{what} at {url} is larger than {MAX_BODY} bytes");
        if answer.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        // Read at most MAX_BODY bytes: an issuer that streams without end is cut off here,
        // not after its whole answer sat in memory.
        let mut answer = answer;
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| format!("{what} at {url}: {}", short(&e)))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&body).map_err(|_| format!("{what} at {url} is not JSON"))?;
        Ok((json, headers))
    }
}

impl Default for HttpKeyFetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// Most redirects followed on the way to a discovery document or a key set.
const MAX_REDIRECTS: usize = 3;

/// Follows a redirect only to where an issuer itself may be ([`IssuerUri::parse`]: `https`,
/// plain `http` only on a loopback address, no user information), so a redirect cannot
/// take a fetch to an internal `http` service or strip TLS off the key set.
fn follow_redirect(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error("too many redirects");
    }
    let mut target = attempt.url().clone();
    // The rule is about where the request goes; a query is no part of that.
    target.set_query(None);
    target.set_fragment(None);
    match IssuerUri::parse(target.as_str(), "redirect") {
        Ok(_) => attempt.follow(),
        Err(e) => attempt.error(e.message),
    }
}

/// A reqwest error without its source chain's noise (connection refused, timed out, ...).
fn short(e: &reqwest::Error) -> String {
    if e.is_redirect() {
        "a redirect was refused (only to https, or to http on a loopback address, at most 3)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// Seconds the answer may be kept: `Cache-Control: max-age`, else `Expires` minus `Date`.
pub fn max_age(headers: &HeaderMap) -> Option<i64> {
    let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(cc) = text(CACHE_CONTROL) {
        for directive in cc.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
                return Some(0);
            }
            if let Some(v) = directive.strip_prefix("max-age=") {
                return v.trim_matches('"').parse().ok();
            }
        }
    }
    let http_date = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).ok().map(|t| t.unix_timestamp())
    };
    let expires = http_date(text(EXPIRES)?)?;
    let date = http_date(text(DATE)?)?;
    Some(expires - date)
}

#[async_trait::async_trait]
impl KeyFetcher for HttpKeyFetcher {
    async fn fetch(&self, issuer: &IssuerUri) -> Result<FetchedKeys, String> {
        let (discovery, _) = self.get_json(&issuer.discovery_url(), "the discovery document").await?;
        // OIDC Discovery §4.3: the document names the issuer it describes, exactly.
        let named = discovery.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
        if named != issuer.as_str() {
            return Err(format!("the discovery document names issuer '{named}', not '{}'", issuer.as_str()));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or("the discovery document has no jwks_uri")?
            .to_owned();
        IssuerUri::parse(&jwks_uri, "jwks_uri").map_err(|e| format!("the discovery document's {e}"))?;
        let (jwks, headers) = self.get_json(&jwks_uri, "the key set").await?;
        let keys = JwkSet::parse_published(&jwks).map_err(|e| format!("the key set at {jwks_uri}: {e}"))?;
        Ok(FetchedKeys { keys, max_age: max_age(&headers) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (reqwest::header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn lifetimes_come_from_max_age_or_expires() {
        assert_eq!(max_age(&headers(&[("cache-control", "public, max-age=300, must-revalidate")])), Some(300));
        assert_eq!(max_age(&headers(&[("cache-control", "no-store")])), Some(0));
        let dated = headers(&[("date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("expires", "Sun, 06 Nov 1994 09:49:37 GMT")]);
        assert_eq!(max_age(&dated), Some(3_600));
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
