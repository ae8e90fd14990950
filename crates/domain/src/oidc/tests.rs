//! Token verification with real keys of every supported type, and the refusals that keep
//! one key type from standing in for another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://issuer.example";
const NOW: Timestamp = Timestamp(1_900_000_000);
/// A 2048-bit RSA key (PKCS#1 DER, made by `openssl genpkey` then `openssl rsa -traditional`):
/// ring verifies RSA but cannot generate it.
const RSA_DER: &[u8] = include_bytes!("testdata/rsa2048.der");

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A signing key and its public JWK.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, EcCurve),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Self {
        Self::Rsa(RsaKeyPair::from_der(RSA_DER).unwrap())
    }
    fn ec(curve: EcCurve) -> Self {
        let alg = match curve {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(), curve)
    }
    fn ed() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e), "use": "sig"})
            }
            Self::Ec(k, curve) => {
                let p = k.public_key().as_ref();
                let (x, y) = p[1..].split_at((p.len() - 1) / 2);
                let crv = if *curve == EcCurve::P256 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y)})
            }
            Self::Ed(k) => json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
        }
    }

    fn sign(&self, alg: &str, header: Value, claims: &Value) -> String {
        let mut h = header;
        h["alg"] = json!(alg);
        let signed = format!("{}.{}", b64(h.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match self {
            Self::Rsa(k) => {
                let pad: &dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(pad, &rng, signed.as_bytes(), &mut sig).unwrap();
                sig
            }
            Self::Ec(k, _) => k.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
            Self::Ed(k) => k.sign(signed.as_bytes()).as_ref().to_vec(),
        };
        format!("{signed}.{}", b64(&sig))
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "repo:acme/api", "aud": "tessera", "iat": NOW.0 - 10, "exp": NOW.0 + 300})
}

fn set(keys: &[Value]) -> JwkSet {
    JwkSet::parse_strict(&json!({ "keys": keys })).unwrap()
}

fn verify(token: &str, keys: &JwkSet, now: Timestamp) -> Result<VerifiedToken, JwtRefusal> {
    UnverifiedToken::parse(token)?.verify(keys, Expected { issuer: ISS, now })
}

#[test]
fn every_supported_algorithm_verifies_with_its_key_type() {
    let rsa = Signer::rsa();
    let cases: Vec<(Signer, Vec<&str>)> = vec![
        (Signer::ec(EcCurve::P256), vec!["ES256"]),
        (Signer::ec(EcCurve::P384), vec!["ES384"]),
        (Signer::ed(), vec!["EdDSA"]),
    ];
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let token = rsa.sign(alg, json!({"kid": "k1"}), &claims());
        let ok = verify(&token, &set(&[rsa.jwk("k1")]), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.subject, "repo:acme/api");
    }
    for (signer, algs) in cases {
        for alg in algs {
            let token = signer.sign(alg, json!({"kid": "k1"}), &claims());
            verify(&token, &set(&[signer.jwk("k1")]), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
            // Without a kid, the keys that fit the algorithm are tried.
            let token = signer.sign(alg, json!({}), &claims());
            verify(&token, &set(&[rsa.jwk("r"), signer.jwk("k1")]), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
        }
    }
}

#[test]
fn a_tampered_token_or_another_key_fails_the_signature() {
    let ed = Signer::ed();
    let token = ed.sign("EdDSA", json!({"kid": "k"}), &claims());
    let mut forged = claims();
    forged["sub"] = json!("repo:acme/admin");
    let (head, rest) = token.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let tampered = format!("{head}.{}.{sig}", b64(forged.to_string().as_bytes()));
    assert_eq!(verify(&tampered, &set(&[ed.jwk("k")]), NOW), Err(JwtRefusal::Signature));
    let other = Signer::ed();
    assert_eq!(verify(&token, &set(&[other.jwk("k")]), NOW), Err(JwtRefusal::Signature));
}

#[test]
fn none_and_hmac_are_refused_even_with_the_public_key_as_secret() {
    let rsa = Signer::rsa();
    let jwk = rsa.jwk("k");
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","kid":"k"}"#), b64(claims().to_string().as_bytes()));
    let e = verify(&unsigned, &set(std::slice::from_ref(&jwk)), NOW).unwrap_err();
    assert!(matches!(&e, JwtRefusal::Algorithm(m) if m.contains("'none'")), "{e}");
    // The classic confusion: HS256 with the RSA public key's bytes as the HMAC secret.
    let c: signature::RsaPublicKeyComponents<Vec<u8>> = match &rsa {
        Signer::Rsa(k) => k.public().into(),
        _ => unreachable!(),
    };
    let signed = format!("{}.{}", b64(br#"{"alg":"HS256","kid":"k"}"#), b64(claims().to_string().as_bytes()));
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &c.n), signed.as_bytes());
    let hs = format!("{signed}.{}", b64(mac.as_ref()));
    let e = verify(&hs, &set(&[jwk]), NOW).unwrap_err();
    assert!(matches!(&e, JwtRefusal::Algorithm(m) if m.contains("HS256")), "{e}");
    assert!(!e.to_string().contains(&hs), "a refusal never echoes the token");
}

#[test]
fn the_algorithm_must_fit_the_named_key() {
    let (rsa, ec) = (Signer::rsa(), Signer::ec(EcCurve::P256));
    // An ES256 token naming the RSA key's kid.
    let token = ec.sign("ES256", json!({"kid": "r"}), &claims());
    let e = verify(&token, &set(&[rsa.jwk("r"), ec.jwk("e")]), NOW).unwrap_err();
    assert!(matches!(e, JwtRefusal::KeyMismatch { alg: "ES256", .. }), "{e}");
    // A key pinned to RS256 does not check a PS256 token.
    let mut pinned = rsa.jwk("r");
    pinned["alg"] = json!("RS256");
    let token = rsa.sign("PS256", json!({"kid": "r"}), &claims());
    assert!(matches!(verify(&token, &set(&[pinned]), NOW), Err(JwtRefusal::KeyMismatch { .. })));
    // No key of the type at all.
    let token = ec.sign("ES256", json!({}), &claims());
    assert_eq!(verify(&token, &set(&[rsa.jwk("r")]), NOW), Err(JwtRefusal::NoFittingKey("ES256")));
    // An unknown kid is its own refusal (the caller may refetch once).
    let token = ec.sign("ES256", json!({"kid": "new"}), &claims());
    let keys = set(&[ec.jwk("e")]);
    assert!(UnverifiedToken::parse(&token).unwrap().names_unknown_key(&keys));
    assert_eq!(verify(&token, &keys, NOW), Err(JwtRefusal::UnknownKid("new".into())));
}

#[test]
fn time_claims_allow_the_documented_leeway_and_no_more() {
    let ed = Signer::ed();
    let keys = set(&[ed.jwk("k")]);
    let at = |c: Value, now: i64| verify(&ed.sign("EdDSA", json!({}), &c), &keys, Timestamp(now));
    let exp = NOW.0 + 300;
    assert!(at(claims(), exp + CLOCK_LEEWAY_SECS - 1).is_ok());
    assert_eq!(at(claims(), exp + CLOCK_LEEWAY_SECS), Err(JwtRefusal::Expired(Timestamp(exp))));
    let mut c = claims();
    c["nbf"] = json!(NOW.0 + 100);
    assert!(at(c.clone(), NOW.0 + 100 - CLOCK_LEEWAY_SECS).is_ok());
    assert_eq!(at(c, NOW.0 + 39), Err(JwtRefusal::NotYetValid(Timestamp(NOW.0 + 100))));
    let mut c = claims();
    c["iat"] = json!(NOW.0 + 61);
    assert_eq!(at(c, NOW.0), Err(JwtRefusal::IssuedInFuture(Timestamp(NOW.0 + 61))));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(at(c, NOW.0), Err(JwtRefusal::MissingClaim("exp")));
}

#[test]
fn issuer_subject_and_audience_must_be_there() {
    let ed = Signer::ed();
    let keys = set(&[ed.jwk("k")]);
    let with = |k: &str, v: Value| {
        let mut c = claims();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        verify(&ed.sign("EdDSA", json!({}), &c), &keys, NOW)
    };
    assert_eq!(
        with("iss", json!("https://evil.example")),
        Err(JwtRefusal::Issuer { expected: ISS.into(), found: "https://evil.example".into() })
    );
    assert_eq!(with("sub", Value::Null), Err(JwtRefusal::MissingClaim("sub")));
    // A signed subject with a control character is refused, quoted with it escaped.
    for sub in ["repo:acme/\u{0}", "repo:acme/a\nb", "\u{1b}[2Jrepo:acme/x"] {
        let e = with("sub", json!(sub)).unwrap_err().to_string();
        assert!(e.contains("holds a control character"), "{sub:?}: {e}");
        assert!(!e.chars().any(char::is_control), "{sub:?}: {e}");
    }
    assert!(with("sub", json!("repo:acme/ünïcode ok")).is_ok());
    assert_eq!(with("aud", Value::Null), Err(JwtRefusal::MissingClaim("aud")));
    assert!(with("aud", json!(["a", "tessera"])).is_ok());
}

#[test]
fn malformed_tokens_are_refused_by_name() {
    let keys = set(&[Signer::ed().jwk("k")]);
    for (token, why) in [
        ("a.b", "three"),
        ("a.b.c.d", "three"),
        ("!!.e30.", "header is not base64url"),
        (&format!("{}.e30.", b64(b"[]")), "header is not a JSON object"),
        (&format!("{}.e30.", b64(br#"{"kid":"k"}"#)), "no 'alg'"),
    ] {
        let e = verify(token, &keys, NOW).unwrap_err();
        assert!(e.to_string().contains(why), "{token}: {e}");
    }
    assert!(verify(&"a".repeat(20_001), &keys, NOW).unwrap_err().to_string().contains("longer"));
    // What the unsigned header says is quoted with its control characters escaped, shortened.
    let header = |h: Value| format!("{}.e30.", b64(h.to_string().as_bytes()));
    let e = verify(&header(json!({"alg": "EdDSA", "kid": "a\u{0}b\u{202e}c\n"})), &keys, NOW).unwrap_err();
    assert_eq!(e.to_string(), "no key of the issuer has kid 'a\\0b\\u{202e}c\\n'");
    let e = verify(&header(json!({"alg": "X".repeat(500)})), &keys, NOW).unwrap_err().to_string();
    assert!(e.contains(&format!("'{}…'", "X".repeat(100))), "{e}");
}

#[test]
fn keys_are_checked_when_given_and_skipped_when_unusable_in_a_published_set() {
    let good = Signer::ed().jwk("k");
    let e =
        JwkSet::parse_strict(&json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}]})).unwrap_err();
    assert!(e.0.contains("private member 'd'"), "{e}");
    let e = JwkSet::parse_strict(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).unwrap_err();
    assert!(e.0.contains("private member 'k'") || e.0.contains("oct"), "{e}");
    let e = JwkSet::parse_strict(&json!({"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]})).unwrap_err();
    assert!(e.0.contains("P-521"), "{e}");
    let mut wrong_alg = good.clone();
    wrong_alg["alg"] = json!("RS256");
    assert!(JwkSet::parse_strict(&json!({"keys": [wrong_alg]})).unwrap_err().0.contains("keys[0]"));
    let published = json!({"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}, good]});
    let set = JwkSet::parse_published(&published).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.to_json()["keys"][0]["kid"], "k");
}

#[test]
fn issuer_uris_are_https_or_loopback() {
    assert!(IssuerUri::parse("https://token.actions.githubusercontent.com", "uri").is_ok());
    assert!(IssuerUri::parse("http://127.0.0.1:8080/realm", "uri").is_ok());
    assert!(IssuerUri::parse("http://issuer.example", "uri").is_err());
    assert!(IssuerUri::parse("https://a.example/?x=1", "uri").is_err());
    assert!(IssuerUri::parse("ftp://a", "uri").is_err());
    assert!(IssuerUri::parse("http://[::1]:8080/realm", "uri").is_ok());
    for userinfo in ["http://localhost:1@evil.example", "http://127.0.0.1@evil.example", "https://u:p@a.example"] {
        assert!(IssuerUri::parse(userinfo, "uri").is_err(), "{userinfo}");
    }
    for odd in ["http://[::1", "https://[", "https://", "https:///x", "https://:443"] {
        assert!(IssuerUri::parse(odd, "uri").is_err(), "{odd}");
    }
    let u = IssuerUri::parse("https://a.example/", "uri").unwrap();
    assert_eq!(u.discovery_url(), "https://a.example/.well-known/openid-configuration");
}
