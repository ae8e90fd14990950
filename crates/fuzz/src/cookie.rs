//! The session cookie decoder (`tessera-session-cookie`) under fuzz input, as the gateway
//! reads a cookie: the `Cookie` header split into pairs, chunks joined, the header verified,
//! the payload decrypted, inflated and parsed.
//!
//! Random bytes never pass the MAC, so the decrypt/inflate/JSON stages would stay unreached.
//! The `forged` mode therefore plays an attacker who holds the plugin's secret: it seals
//! fuzzer-chosen plaintext with its own implementation of the key schedule (HKDF, AES-256-GCM,
//! the truncated HMAC with bound values), so every stage behind the MAC sees arbitrary bytes.

use std::collections::HashMap;
use std::sync::OnceLock;

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use tessera_session_cookie::{
    Bind, BindValues, CookieKind, Flags, HEADER_ENCODED_SIZE, Header, Keys, OpenError, OpenOptions, SealOptions,
    SessionEntry, Storage, Timeouts, chunk, decode_storage_record, encode_storage_record, open, seal_with_rng, touch,
    verify,
};

use crate::known::{Bug, avoid};

const SECRET: &[u8] = b"the fuzzing plugin's secret";
/// The gateway's clock in most modes (a Unix time in 2025).
const NOW: u64 = 1_750_000_000;
const COOKIE: &str = "session";
const BIND: BindValues<'static> = BindValues { ip: "203.0.113.9", scheme: "https", user_agent: "fuzz/1.0" };

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::from_secret(SECRET))
}

/// Runs one input. The first byte picks the mode; the rest is the mode's input.
pub fn fuzz_cookie(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => raw(rest),
        1 => forged(rest),
        2 => sealed(rest),
        _ => record(rest),
    }
}

/// The gateway's `Cookie` header parsing: `;`-separated pairs, the first of a name wins.
fn cookie_pairs(header: &str) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for pair in header.split(';') {
        if let Some((k, v)) = pair.trim().split_once('=') {
            map.entry(k.trim()).or_insert(v.trim());
        }
    }
    map
}

/// Timeouts within what the plugin's config accepts (0 to 1e10 seconds each).
fn timeouts(b: &[u8]) -> Timeouts {
    let n = |i: usize| -> f64 {
        let x = u64::from_le_bytes(std::array::from_fn(|k| b.get(i * 8 + k).copied().unwrap_or(0)));
        (x % 10_000_000_001) as f64 / if x & 1 == 1 { 100.0 } else { 1.0 }
    };
    Timeouts { idling: n(0), rolling: n(1), absolute: n(2) }
}

/// An arbitrary `Cookie` header (and clock, and timeouts) against both storages.
fn raw(data: &[u8]) {
    let [config, header] = crate::split_parts(data, 2)[..] else { unreachable!() };
    let t = timeouts(config);
    // Any clock up to 2^41 (the header's creation time holds 2^40).
    let now = u64::from_le_bytes(std::array::from_fn(|k| config.get(24 + k).copied().unwrap_or(0))) % (1 << 41);
    let header = String::from_utf8_lossy(header);
    let jar = cookie_pairs(&header);
    let Ok(value) = chunk::join(COOKIE, |n| jar.get(n).copied()) else { return };

    if let Ok(h) = Header::decode(&value) {
        // Decoding is canonical: the header encodes back to the very characters it came from.
        assert_eq!(h.encode(), value[..HEADER_ENCODED_SIZE], "header round trip");
        let r = h.remaining(&t, now);
        let _ = r.timeout();
        let _ = h.refresh_action(&t, tessera_session_cookie::DEFAULT_TOUCH_THRESHOLD, now);
        let touched = touch(keys(), &h, &value, &BIND, now);
        assert!(touched.value.len() >= HEADER_ENCODED_SIZE);
    }
    for storage in [Storage::Cookie, Storage::Server] {
        let opts = OpenOptions { storage, kind: CookieKind::Session, timeouts: t };
        let stored = jar.get("stored").copied();
        if let Ok(opened) = open(keys(), &opts, &value, stored, &BIND, now) {
            // Only a cookie sealed with the secret opens; the fuzzer cannot forge a MAC.
            panic!("a cookie the fuzzer made up opened: {:?}", opened.header);
        }
        let _ = verify(keys(), &opts, &value, &BindValues::default(), now);
    }
}

/// The key schedule of lua-resty-session 4.x, written out again: an independent check that
/// the crate's and this one agree (or forged cookies would never open, which the replay test
/// checks).
struct Forger {
    hkdf: Hkdf<Sha256>,
}

impl Forger {
    fn new() -> Self {
        let ikm = Sha256::digest(SECRET);
        Self { hkdf: Hkdf::<Sha256>::new(None, &ikm) }
    }

    fn aead(&self, sid: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
        let mut okm = [0u8; 44];
        self.hkdf.expand_multi_info(&[b"encryption:", sid], &mut okm).expect("44 bytes");
        (okm[..32].try_into().expect("32"), okm[32..].try_into().expect("12"))
    }

    fn mac(&self, header: &[u8; 82], bind: &BindValues<'_>) -> [u8; 16] {
        let sid: [u8; 32] = header[3..35].try_into().expect("32");
        let mut key = [0u8; 32];
        self.hkdf.expand_multi_info(&[b"authentication:", &sid], &mut key).expect("32 bytes");
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&key).expect("any key length");
        mac.update(&header[..66]);
        let flags = Flags(u16::from_le_bytes([header[1], header[2]]));
        let bound: Vec<&str> =
            [(Flags::BIND_IP, bind.ip), (Flags::BIND_SCHEME, bind.scheme), (Flags::BIND_USER_AGENT, bind.user_agent)]
                .into_iter()
                .filter(|(f, v)| flags.contains(*f) && !v.is_empty())
                .map(|(_, v)| v)
                .collect();
        if !bound.is_empty() {
            mac.update(b"#");
            mac.update(&Sha256::digest(bound.join("|").as_bytes()));
        }
        mac.finalize().into_bytes()[..16].try_into().expect("16")
    }
}

fn forger() -> &'static Forger {
    static FORGER: OnceLock<Forger> = OnceLock::new();
    FORGER.get_or_init(Forger::new)
}

/// A cookie (value, server-side ciphertext) sealed by the forger around `plaintext`.
pub fn forge(flags: Flags, sid: [u8; 32], plaintext: &[u8]) -> (String, String) {
    let f = forger();
    let mut buf = plaintext.to_vec();
    let data_size = base64::encoded_len(buf.len(), false).expect("small");
    let mut h = Header {
        flags,
        sid,
        creation_time: NOW - 100,
        rolling_offset: 50,
        data_size: data_size as u32,
        tag: [0; 16],
        idling_offset: 10,
        mac: [0; 16],
    };
    let (key, iv) = f.aead(&sid);
    let aad = h.to_bytes();
    let tag = Aes256Gcm::new(GenericArray::from_slice(&key))
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), &aad[..47], &mut buf)
        .expect("small plaintext");
    h.tag.copy_from_slice(&tag);
    h.mac = f.mac(&h.to_bytes(), &BIND);
    let ciphertext = B64.encode(&buf);
    let mut value = h.encode();
    if !flags.contains(Flags::STORAGE) {
        value.push_str(&ciphertext);
    }
    (value, ciphertext)
}

/// Arbitrary plaintext behind a valid header and MAC: decrypt, inflate and JSON see it all.
fn forged(data: &[u8]) {
    let Some((&options, plaintext)) = data.split_first() else { return };
    let server = options & 1 != 0;
    let flags = Flags::NONE
        .with(Flags::STORAGE, server)
        .with(Flags::FORGET, options & 2 != 0)
        .with(Flags::DEFLATE, options & 0x0c != 0)
        .with(Flags::BIND_IP, options & 0x10 != 0)
        .with(Flags::BIND_SCHEME, options & 0x20 != 0)
        .with(Flags::BIND_USER_AGENT, options & 0x40 != 0);
    // Bits 2-3 = 01: the fuzzer's bytes are the deflate stream; 10 or 11: the harness deflates
    // the fuzzer's JSON, so JSON behind DEFLATE is reached as well.
    let plaintext = if options & 0x0c >= 0x08 { deflate(plaintext) } else { plaintext.to_vec() };
    let sid: [u8; 32] = Sha256::digest(&plaintext).into();
    let (value, ciphertext) = forge(flags, sid, &plaintext);
    let storage = if server { Storage::Server } else { Storage::Cookie };
    let opts = OpenOptions { storage, kind: CookieKind::Session, timeouts: Timeouts::SESSION_DEFAULT };
    match open(keys(), &opts, &value, Some(&ciphertext), &BIND, NOW) {
        Ok(opened) => {
            // What opened can be sealed again and opens to the same entries.
            let again = SealOptions { storage, bind: Bind::from_flags(flags), ..SealOptions::default() };
            reseal(&again, &opened.data);
        }
        Err(OpenError::InvalidJson | OpenError::InflateFailed) => {}
        Err(e) => panic!("a correctly sealed cookie was refused before its payload: {e:?}"),
    }
    if !server && let Ok(chunks) = chunk::split(COOKIE, &value) {
        let jar: HashMap<String, &str> = chunks.into_iter().map(|c| (c.name, c.value)).collect();
        let joined = chunk::join(COOKIE, |n| jar.get(n).copied()).expect("chunks we just split join");
        assert_eq!(joined, value, "split then join");
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("in memory");
    enc.finish().expect("in memory")
}

/// A deterministic RNG for sealing (the session id only); runs must repeat exactly.
struct CounterRng(u64);

impl rand::RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 56) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand::CryptoRng for CounterRng {}

/// Seals `entries`, opens the result, and checks the entries survived; then touches it and
/// checks the touched cookie still verifies.
fn reseal(options: &SealOptions, entries: &[SessionEntry]) {
    let Ok(sealed) = seal_with_rng(keys(), options, entries, &BIND, NOW, &mut CounterRng(7)) else { return };
    let opts = OpenOptions { storage: options.storage, kind: options.kind, timeouts: Timeouts::SESSION_DEFAULT };
    let opened = open(keys(), &opts, &sealed.value, Some(&sealed.ciphertext), &BIND, NOW + 30)
        .unwrap_or_else(|e| panic!("a cookie sealed a moment ago does not open: {e:?}"));
    let floats = entries.iter().any(|e| has_float(&e.data));
    if !(floats && avoid(Bug::FloatDriftsOnReseal)) {
        assert_eq!(opened.data, entries, "entries after seal and open");
    }
    let touched = touch(keys(), &opened.header, &sealed.value, &BIND, NOW + 60);
    verify(keys(), &opts, &touched.value, &BIND, NOW + 61).expect("a touched cookie verifies");
    assert_eq!(touched.header.sid, sealed.header.sid);
}

/// Whether a JSON value holds a number that is not an integer.
fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// Entries built from fuzz input (strings only, which survive JSON exactly), sealed with
/// options from the input, then opened: the round trip must be exact.
fn sealed(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else { return };
    let parts = crate::split_parts(rest, 6);
    let text = |i: usize| String::from_utf8_lossy(parts[i]).into_owned();
    let mut entries = vec![SessionEntry {
        data: serde_json::json!([text(0), text(1), text(2).split(',').collect::<Vec<_>>()]),
        audience: text(3),
        subject: (options & 0x80 == 0).then(|| text(4)),
    }];
    if !parts[5].is_empty() {
        entries.push(SessionEntry { data: serde_json::json!({}), audience: text(5), subject: None });
    }
    let seal = SealOptions {
        storage: if options & 1 != 0 { Storage::Server } else { Storage::Cookie },
        kind: CookieKind::Session,
        bind: Bind { ip: options & 2 != 0, scheme: options & 4 != 0, user_agent: options & 8 != 0 },
        forget: options & 0x10 != 0,
        creation_time: None,
        compression_threshold: [0, 1, 64, 1024][usize::from(options >> 5 & 3)],
    };
    reseal(&seal, &entries);
}

/// A server-side storage record as the store holds it.
fn record(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = decode_storage_record(&text)
        && r.ciphertext.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        let again = decode_storage_record(&encode_storage_record(&r.ciphertext)).expect("an encoded record decodes");
        assert_eq!(again.ciphertext, r.ciphertext);
    }
}
