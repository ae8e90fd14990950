//! Workload identity: OIDC issuers, their keys, verifying the tokens they mint, and the
//! claim conditions a trust puts on them. Pure: fetching keys is the app's business; here a
//! key set is a value and `now` an argument.

pub mod claims;
pub mod jwk;
pub mod jwt;

#[cfg(test)]
mod tests;

use crate::error::FieldError;
use crate::ids::{OidcIssuerId, OrgId};
use crate::time::Timestamp;

pub use claims::{ClaimPattern, OidcClaims};
pub use jwk::{EcCurve, Jwk, JwkError, JwkSet, KeyMaterial};
pub use jwt::{Algorithm, CLOCK_LEEWAY_SECS, Expected, JwtRefusal, UnverifiedToken, VerifiedToken};

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerKeys {
    /// Discovered: `{uri}/.well-known/openid-configuration` names the `jwks_uri`, fetched and
    /// cached by the app.
    Discovered,
    /// Given when the issuer was registered (for issuers that cannot be reached from here).
    Inline(JwkSet),
}

/// A registered OIDC issuer (Vultr's `source: external`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    pub id: OidcIssuerId,
    pub org_id: OrgId,
    /// Vultr's `source`; only `external` is served here.
    pub source: String,
    /// The issuer identifier: the `iss` its tokens carry, and the base of its discovery
    /// document.
    pub uri: IssuerUri,
    pub keys: IssuerKeys,
    pub date_created: Timestamp,
}

/// An issuer identifier: an `https` URL (or `http` on a loopback address, for tests and
/// local development) without query or fragment, as OIDC Discovery requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerUri(String);

impl IssuerUri {
    pub fn parse(s: &str, field: &str) -> Result<IssuerUri, FieldError> {
        let bad = |m: &str| FieldError::new(field, m);
        let (https, rest) = if let Some(rest) = s.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must be an https URL, e.g. https://token.actions.githubusercontent.com"));
        };
        // The authority ends at the first `/` (a `\` is one to URL parsers, and refused). User
        // information would put the real host after an `@` that a reader of the URI (and a
        // check on its first characters) takes for part of the host.
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains(['@', '\\']) {
            return Err(bad("must not carry user information (user@host) or a backslash"));
        }
        let host = if authority.starts_with('[') {
            authority.find(']').map_or("", |end| &authority[..=end])
        } else {
            authority.split(':').next().unwrap_or("")
        };
        if host.is_empty() {
            return Err(bad("must name a host"));
        }
        if !https && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(bad("must be an https URL (plain http only for a loopback address)"));
        }
        if s.contains(['?', '#']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not carry a query, fragment or spaces"));
        }
        if s.len() > 1_000 {
            return Err(bad("must be at most 1000 characters"));
        }
        Ok(IssuerUri(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the discovery document is (OIDC Discovery §4).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.0.trim_end_matches('/'))
    }
}

/// Kinds of issuer sources Vultr names; only `external` is something a user registers.
pub const ISSUER_SOURCES: &[&str] = &["external"];
