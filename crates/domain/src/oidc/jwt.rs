//! Verifying a compact JWS (a JWT) against an issuer's public keys.
//!
//! The order matters: the header picks the algorithm and the key, the signature is checked,
//! and only then are the claims read and checked (`iss`, `exp`, `nbf`, `iat`, `sub`). The
//! algorithm must fit the key's type (no algorithm confusion): `none` and the HMAC family are
//! refused outright, since a public key used as an HMAC secret would let anyone sign.
//! Refusals name the check that failed and never echo the token.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Map, Value};

use super::jwk::{EcCurve, Jwk, JwkSet, KeyMaterial, b64url};
use crate::time::Timestamp;

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`: issuers and this server
/// keep their own clocks, and a minute is what most relying parties allow.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// The longest token accepted, in bytes (AWS STS takes web identity tokens up to 20 000).
pub const MAX_TOKEN_LEN: usize = 20_000;

/// The signature algorithms a token may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

const ALL: [Algorithm; 9] = {
    use Algorithm::*;
    [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA]
};

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        use Algorithm::*;
        match self {
            RS256 => "RS256",
            RS384 => "RS384",
            RS512 => "RS512",
            PS256 => "PS256",
            PS384 => "PS384",
            PS512 => "PS512",
            ES256 => "ES256",
            ES384 => "ES384",
            EdDSA => "EdDSA",
        }
    }

    /// Parses an `alg`; `none`, HMAC and unknown algorithms are refused with the reason.
    pub fn parse(s: &str) -> Result<Algorithm, String> {
        if let Some(a) = ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(a);
        }
        Err(match s {
            "none" => "alg 'none' (an unsigned token) is refused".to_owned(),
            hs if hs.starts_with("HS") => {
                format!("alg '{}' (HMAC, a shared secret) is refused; issuers sign with a private key", quoted(hs))
            }
            other => {
                format!("alg '{}' is not supported (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA)", quoted(other))
            }
        })
    }

    fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        use Algorithm::*;
        Some(match self {
            RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

/// Why a token was refused. Each names the check; none carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's algorithm is refused: {0}")]
    Algorithm(String),
    /// No key of the issuer has the token's `kid` (the caller may refetch the keys once).
    #[error("no key of the issuer has kid '{0}'")]
    UnknownKid(String),
    #[error("no key of the issuer fits the token's algorithm {0}")]
    NoFittingKey(&'static str),
    #[error("the token's alg {alg} does not match key '{kid}' ({key})")]
    KeyMismatch { alg: &'static str, kid: String, key: String },
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token's issuer (iss) is '{found}', expected '{expected}'")]
    Issuer { expected: String, found: String },
    #[error("the token expired at {0} (exp)")]
    Expired(Timestamp),
    #[error("the token is not valid before {0} (nbf)")]
    NotYetValid(Timestamp),
    #[error("the token was issued in the future, at {0} (iat)")]
    IssuedInFuture(Timestamp),
    #[error("the token has no '{0}' claim")]
    MissingClaim(&'static str),
}

/// What the token must show besides a good signature.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The issuer's identifier, compared exactly with `iss`.
    pub issuer: &'a str,
    pub now: Timestamp,
}

/// A token whose signature and time claims were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub subject: String,
    pub expires: Timestamp,
    /// Every claim, for the trust's `oidc_claims` conditions.
    pub claims: Map<String, Value>,
}

/// The parts of a token before any key is chosen: what a caller needs to decide whether
/// the issuer's keys must be refetched (an unknown `kid`).
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    signed: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

/// A string from the unsigned header as a refusal may quote it: control characters, line
/// separators and bidi controls escaped (the message reaches the caller, the audit trail and
/// the logs, and PostgreSQL cannot store a NUL), at most 100 characters.
fn quoted(s: &str) -> String {
    crate::audit::escaped(s, 100)
}

fn malformed(m: impl Into<String>) -> JwtRefusal {
    JwtRefusal::Malformed(m.into())
}

fn json_part(part: &str, what: &str) -> Result<Map<String, Value>, JwtRefusal> {
    let bytes = b64url(part).ok_or_else(|| malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(malformed(format!("the {what} is not a JSON object"))),
    }
}

impl<'t> UnverifiedToken<'t> {
    /// Splits a compact JWS and reads its header.
    pub fn parse(token: &'t str) -> Result<Self, JwtRefusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a JWT has three dot-separated parts"));
        };
        let h = json_part(header, "header")?;
        let alg = h.get("alg").and_then(Value::as_str).ok_or_else(|| malformed("the header has no 'alg'"))?;
        let alg = Algorithm::parse(alg).map_err(JwtRefusal::Algorithm)?;
        if h.contains_key("crit") {
            return Err(malformed("the header's 'crit' extensions are not supported"));
        }
        let kid = match h.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(malformed("the header's 'kid' is not a string")),
        };
        let signature = b64url(sig).ok_or_else(|| malformed("the signature is not base64url"))?;
        let signed = &token[..header.len() + 1 + payload.len()];
        Ok(Self { alg, kid, signed, payload, signature })
    }

    /// Whether `keys` could verify this token as far as the `kid` goes: false when the token
    /// names a key the set does not have (the set may be stale).
    pub fn names_unknown_key(&self, keys: &JwkSet) -> bool {
        self.kid.as_deref().is_some_and(|kid| !keys.has_kid(kid))
    }

    /// Checks the signature with the issuer's keys, then the claims.
    pub fn verify(&self, keys: &JwkSet, expected: Expected<'_>) -> Result<VerifiedToken, JwtRefusal> {
        self.check_signature(keys)?;
        let claims = json_part(self.payload, "payload")?;
        check_claims(claims, expected)
    }

    fn check_signature(&self, keys: &JwkSet) -> Result<(), JwtRefusal> {
        let candidates: Vec<&Jwk> = match &self.kid {
            Some(kid) => {
                let named: Vec<&Jwk> = keys.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                if named.is_empty() {
                    return Err(JwtRefusal::UnknownKid(quoted(kid)));
                }
                if let Some(k) = named.iter().find(|k| !self.fits(k)) {
                    return Err(JwtRefusal::KeyMismatch {
                        alg: self.alg.as_str(),
                        kid: kid.clone(),
                        key: k
                            .alg
                            .map_or_else(|| k.key.kty().to_owned(), |a| format!("{}, alg {}", k.key.kty(), a.as_str())),
                    });
                }
                named
            }
            None => keys.keys.iter().filter(|k| self.fits(k)).collect(),
        };
        if candidates.is_empty() {
            return Err(JwtRefusal::NoFittingKey(self.alg.as_str()));
        }
        if candidates.iter().any(|k| verify_with(self.alg, &k.key, self.signed.as_bytes(), &self.signature)) {
            Ok(())
        } else {
            Err(JwtRefusal::Signature)
        }
    }

    fn fits(&self, k: &Jwk) -> bool {
        k.key.fits(self.alg) && k.alg.is_none_or(|a| a == self.alg)
    }
}

fn verify_with(alg: Algorithm, key: &KeyMaterial, msg: &[u8], sig: &[u8]) -> bool {
    match key {
        KeyMaterial::Rsa { n, e } => {
            let Some(params) = alg.rsa_params() else { return false };
            RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
        }
        KeyMaterial::Ec { curve, x, y } => {
            let algorithm: &dyn VerificationAlgorithm = match curve {
                EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            UnparsedPublicKey::new(algorithm, point).verify(msg, sig).is_ok()
        }
        KeyMaterial::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).is_ok(),
    }
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<Timestamp>, JwtRefusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(Timestamp(f.floor() as i64)))
            .ok_or_else(|| malformed(format!("'{name}' is not a number of seconds"))),
    }
}

fn check_claims(claims: Map<String, Value>, expected: Expected<'_>) -> Result<VerifiedToken, JwtRefusal> {
    let now = expected.now;
    let iss = claims.get("iss").and_then(Value::as_str).ok_or(JwtRefusal::MissingClaim("iss"))?;
    if iss != expected.issuer {
        return Err(JwtRefusal::Issuer { expected: expected.issuer.to_owned(), found: iss.to_owned() });
    }
    let exp = numeric(&claims, "exp")?.ok_or(JwtRefusal::MissingClaim("exp"))?;
    if now.0 >= exp.0.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(JwtRefusal::Expired(exp));
    }
    if let Some(nbf) = numeric(&claims, "nbf")?
        && now.0.saturating_add(CLOCK_LEEWAY_SECS) < nbf.0
    {
        return Err(JwtRefusal::NotYetValid(nbf));
    }
    if let Some(iat) = numeric(&claims, "iat")?
        && now.0.saturating_add(CLOCK_LEEWAY_SECS) < iat.0
    {
        return Err(JwtRefusal::IssuedInFuture(iat));
    }
    if !claims.contains_key("aud") {
        return Err(JwtRefusal::MissingClaim("aud"));
    }
    let subject = match claims.get("sub").and_then(Value::as_str) {
        // The subject names the workload in its sessions, the session query and the audit
        // trail: a control character there would be a NUL PostgreSQL cannot store (the same
        // token would make a session on SQLite and fail on PostgreSQL) or a forged log line.
        Some(s) if s.chars().any(char::is_control) => {
            return Err(malformed(format!("the sub claim '{}' holds a control character", quoted(s))));
        }
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => return Err(JwtRefusal::MissingClaim("sub")),
    };
    Ok(VerifiedToken { subject, expires: exp, claims })
}
