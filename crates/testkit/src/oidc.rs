//! A real OIDC issuer for tests: an HTTP server on 127.0.0.1 serving a discovery document and
//! a key set from keys the test holds, and a signer that mints tokens with them.
//!
//! The issuer counts key-set fetches and can be taken down (it then answers 503), so tests
//! can see refetches, rotation and an unreachable issuer without any sleep.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// Two fixed 2048-bit RSA keys (ring verifies RSA but cannot generate it).
const RSA_KEYS: [&[u8]; 2] =
    [include_bytes!("../fixtures/oidc-rsa-1.der"), include_bytes!("../fixtures/oidc-rsa-2.der")];

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A private key and the `kid` its public half is published under.
pub struct SigningKey {
    pub kid: String,
    key: Key,
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str),
    Ed(Ed25519KeyPair),
}

impl SigningKey {
    /// One of the two fixed RSA keys (`which` is 0 or 1).
    pub fn rsa(kid: &str, which: usize) -> Self {
        Self { kid: kid.into(), key: Key::Rsa(RsaKeyPair::from_der(RSA_KEYS[which]).expect("the RSA fixture")) }
    }
    pub fn ec_p256(kid: &str) -> Self {
        Self::ec(kid, &signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256")
    }
    pub fn ec_p384(kid: &str) -> Self {
        Self::ec(kid, &signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384")
    }
    fn ec(kid: &str, alg: &'static signature::EcdsaSigningAlgorithm, crv: &'static str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self { kid: kid.into(), key: Key::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(), crv) }
    }
    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self { kid: kid.into(), key: Key::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()) }
    }

    /// The algorithm a token signed by this key names (RSA keys sign RS256 unless told).
    pub fn default_alg(&self) -> &'static str {
        match &self.key {
            Key::Rsa(_) => "RS256",
            Key::Ec(_, "P-256") => "ES256",
            Key::Ec(..) => "ES384",
            Key::Ed(_) => "EdDSA",
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match &self.key {
            Key::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Key::Ec(k, crv) => {
                let p = k.public_key().as_ref();
                let (x, y) = p[1..].split_at((p.len() - 1) / 2);
                json!({"kty": "EC", "kid": self.kid, "crv": crv, "x": b64(x), "y": b64(y)})
            }
            Key::Ed(k) => json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
        }
    }

    /// The RSA modulus (for the HMAC-with-the-public-key confusion test).
    pub fn rsa_modulus(&self) -> Option<Vec<u8>> {
        match &self.key {
            Key::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                Some(c.n)
            }
            _ => None,
        }
    }

    /// A compact JWS of `claims`, header `{"alg", "kid"}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.default_alg(), Some(&self.kid), claims)
    }

    /// A compact JWS with the given `alg` and `kid` in its header.
    pub fn sign_as(&self, alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match &self.key {
            Key::Rsa(k) => {
                let pad: &'static dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(pad, &rng, signed.as_bytes(), &mut sig).unwrap();
                sig
            }
            Key::Ec(k, _) => k.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
            Key::Ed(k) => k.sign(signed.as_bytes()).as_ref().to_vec(),
        };
        format!("{signed}.{}", b64(&sig))
    }
}

/// A token signed with HMAC-SHA256 under `secret` (what an algorithm-confusion attack sends).
pub fn hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid});
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), signed.as_bytes());
    format!("{signed}.{}", b64(mac.as_ref()))
}

/// An unsigned token (`alg: none`).
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "kid": kid});
    format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

struct Shared {
    issuer: String,
    keys: Mutex<Value>,
    fetches: AtomicUsize,
    down: AtomicBool,
    max_age: u32,
}

/// A running issuer; dropping it stops the server.
pub struct TestIssuer {
    pub url: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestIssuer {
    /// Starts an issuer publishing `keys`, whose key set may be cached `max_age` seconds.
    pub async fn start(keys: &[&SigningKey], max_age: u32) -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            issuer: url.clone(),
            keys: Mutex::new(json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})),
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            max_age,
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", axum::routing::get(discovery))
            .route("/jwks", axum::routing::get(jwks))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    stopped.await.ok();
                })
                .await
                .ok();
        });
        TestIssuer { url, addr, shared, stop: Some(stop) }
    }

    /// Publishes another key set (a rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.shared.keys.lock().unwrap() = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// Takes the issuer down (503 on every path) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Claims of a token this issuer would mint, valid from `now` for `ttl` seconds.
    pub fn claims(&self, sub: &str, aud: &str, now: i64, ttl: i64) -> Value {
        json!({"iss": self.url, "sub": sub, "aud": aud, "iat": now, "nbf": now, "exp": now + ttl})
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> axum::response::Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({"issuer": s.issuer, "jwks_uri": format!("{}/jwks", s.issuer)})).into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> axum::response::Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.lock().unwrap().clone();
    ([(header::CACHE_CONTROL, format!("public, max-age={}", s.max_age))], axum::Json(keys)).into_response()
}
