//! JSON Web Keys (RFC 7517): the public keys an OIDC issuer signs with, parsed into key
//! material `ring` can verify against.
//!
//! Only public members are kept: a key that carries private material (`d`, `p`, `q`, ...) is
//! refused rather than stored, so a pasted private key never lands in the database.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::jwt::Algorithm;

/// The curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    P256,
    P384,
}

impl EcCurve {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            _ => None,
        }
    }

    /// The byte length of one coordinate.
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// A public key's material, by key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// `kty: RSA`: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `kty: EC`: the curve and the point's coordinates.
    Ec { curve: EcCurve, x: Vec<u8>, y: Vec<u8> },
    /// `kty: OKP`, `crv: Ed25519`: the 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

impl KeyMaterial {
    /// The `kty` as JWK spells it, for messages.
    pub fn kty(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RSA",
            Self::Ec { curve: EcCurve::P256, .. } => "EC P-256",
            Self::Ec { curve: EcCurve::P384, .. } => "EC P-384",
            Self::Ed25519 { .. } => "OKP Ed25519",
        }
    }

    /// Whether a token signed with `alg` can have been signed by this key: the algorithm
    /// names the key type, so an RSA key never checks an ECDSA or HMAC signature.
    pub fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (Self::Rsa { .. }, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (Self::Ec { curve: EcCurve::P256, .. }, ES256)
                | (Self::Ec { curve: EcCurve::P384, .. }, ES384)
                | (Self::Ed25519 { .. }, EdDSA)
        )
    }
}

/// One public key of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// When the key names its algorithm, a token must use exactly that one.
    pub alg: Option<Algorithm>,
    pub key: KeyMaterial,
    /// The key's public members as given (`kty`, `kid`, `alg`, `use`, `n`, `e`, `crv`, `x`,
    /// `y`), to show back.
    pub json: Map<String, Value>,
}

/// Why a key could not be used; the message names the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwkError(pub String);

fn err(msg: impl Into<String>) -> JwkError {
    JwkError(msg.into())
}

/// Decodes base64url, with or without padding (some issuers pad).
pub(crate) fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Private members of RSA, EC and OKP keys.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const PUBLIC_MEMBERS: &[&str] = &["kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"];

impl Jwk {
    pub fn parse(v: &Value) -> Result<Jwk, JwkError> {
        let obj = v.as_object().ok_or_else(|| err("a key must be a JSON object"))?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(err(format!("the key carries the private member '{m}'; give only the public key")));
        }
        let text = |m: &str| obj.get(m).and_then(Value::as_str);
        let bytes = |m: &str| -> Result<Vec<u8>, JwkError> {
            let s = text(m).ok_or_else(|| err(format!("member '{m}' is missing")))?;
            b64url(s).filter(|b| !b.is_empty()).ok_or_else(|| err(format!("member '{m}' is not base64url")))
        };
        let kty = text("kty").ok_or_else(|| err("member 'kty' is missing"))?;
        let key = match kty {
            "RSA" => KeyMaterial::Rsa { n: strip_zeros(bytes("n")?), e: strip_zeros(bytes("e")?) },
            "EC" => {
                let crv = text("crv").unwrap_or("");
                let curve = EcCurve::parse(crv)
                    .ok_or_else(|| err(format!("EC curve '{crv}' is not supported (P-256, P-384)")))?;
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err(err(format!("EC coordinates must be {} bytes for {crv}", curve.coordinate_len())));
                }
                KeyMaterial::Ec { curve, x, y }
            }
            "OKP" => {
                let crv = text("crv").unwrap_or("");
                if crv != "Ed25519" {
                    return Err(err(format!("OKP curve '{crv}' is not supported (Ed25519)")));
                }
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err(err("an Ed25519 key is 32 bytes"));
                }
                KeyMaterial::Ed25519 { x }
            }
            "oct" => return Err(err("symmetric keys (kty 'oct') are refused: a shared secret cannot name a workload")),
            other => return Err(err(format!("key type '{other}' is not supported (RSA, EC, OKP)"))),
        };
        let alg = match text("alg") {
            None => None,
            Some(a) => Some(Algorithm::parse(a).map_err(|e| err(format!("member 'alg': {e}")))?),
        };
        if let Some(alg) = alg
            && !key.fits(alg)
        {
            return Err(err(format!("member 'alg' is {} but the key is {}", alg.as_str(), key.kty())));
        }
        let json = PUBLIC_MEMBERS.iter().filter_map(|m| obj.get(*m).map(|v| ((*m).to_owned(), v.clone()))).collect();
        Ok(Jwk { kid: text("kid").map(str::to_owned), alg, key, json })
    }
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let zeros = b.iter().take_while(|x| **x == 0).count().min(b.len().saturating_sub(1));
    b.drain(..zeros);
    b
}

/// A set of public keys (`{"keys": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Keys given by a person (inline keys of an issuer): every one must be usable.
    pub fn parse_strict(v: &Value) -> Result<JwkSet, JwkError> {
        let keys = keys_array(v)?;
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Jwk::parse(k).map_err(|e| err(format!("keys[{i}]: {}", e.0))))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(err("at least one key is needed"));
        }
        Ok(JwkSet { keys })
    }

    /// Keys fetched from an issuer: keys this server cannot use (encryption keys, other key
    /// types) are skipped, as every relying party does, so one exotic key does not make the
    /// whole set unusable.
    pub fn parse_published(v: &Value) -> Result<JwkSet, JwkError> {
        let keys = keys_array(v)?
            .iter()
            .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
            .filter_map(|k| Jwk::parse(k).ok())
            .collect();
        Ok(JwkSet { keys })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| Value::Object(k.json.clone())).collect::<Vec<_>>() })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn keys_array(v: &Value) -> Result<&Vec<Value>, JwkError> {
    v.get("keys").and_then(Value::as_array).ok_or_else(|| err("a key set is an object with a 'keys' array"))
}
