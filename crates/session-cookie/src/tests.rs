//! Crate-level tests: lua-resty-session 4.1.5 test vectors (reference 2.7), seal/open round
//! trips, tampering, timeout boundaries, touch and renewal, and a cross-check of sealed cookies
//! with the independent Python decoder of reference 2.8 (when python3 has `cryptography`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::codec::{B64, decrypt_bytes};
use crate::payload::inflate;
use crate::*;
use base64::Engine as _;

const SECRET: &str = "benchmark-secret-change-me";

const PLAIN: &str = "AQAAlOKs7LgLweQT6IChIWpX2NqCmuyUMdvGQ4cbfIdpA2gL5QJrAAAAAACHAABidaUn0g1iQ75mT5CE4otXAAAAjZ7OHPcGuAcjWZ83EV8pXgnyHBLZw0hFnu3OXnyICEV9ZsXOi01jYckEEQqjYtEa4x3FysRzVTUo341IiuJeVOiI3aGbft1rl08AzN8m84Xo5B-zsz_rUl42IKW86T-2N0-kFXPU1UVJUTBdb4QiNTWrICF6M";
const PLAIN_C: u64 = 1_795_351_819;
const PLAIN_TEXT: &str =
    r#"[[["11111111-2222-3333-4444-555555555555","66666666-7777-8888-9999-000000000000"],"default","alice"]]"#;

const BOUND: &str = "AQAH5TntpmMr3PQZLEfgb8uJz-csI1s6zLYMh3-g43c7uTAu5QJrAAAAAAAgAAAaIja63XODDbTb67nzkzjRAAAAZXkcczoNH4W85c9T1vBiLQbxXRnVylCp6OILoZfVq96cv-kG5HkYpC";
const BOUND_C: u64 = 1_795_351_854;
const BOUND_TEXT: &str = r#"[[{},"default","carol"]]"#;

const REMEMBER: &str = "AQAAD9cSdZTOepthau79rM8vEWLhjUFk2TmxEInwWVivHl895QJrAAAAAAAfAADNG7xCzkXifssJwIT7mt_GAAAAhYrRhFqh4JdHB2acykxFUAmibFt03mnAaBxRD9cLaSDpUUqsp4nIE";
const REMEMBER_C: u64 = 1_795_351_869;
const REMEMBER_TEXT: &str = r#"[[{},"default","dave"]]"#;

const DEFLATED: &str = "ARAAVTgT2aXY9fljL48vVaH0ecgUjUeEACaQWeQ3KrdVT1At5QJrAAAAAABKAACsepX1zund02BCqBo_4V_OAAAAWYa_72w3k5-bS6rfcSlMwAiGhCe4MzMu0WGpDO7vs5csirzIhCy-pCaey5rwsg2kvrncPf7SywLHUHXkULfXFzl_MmCNvFsQ";
const DEFLATED_C: u64 = 1_795_351_853;

/// Timeouts large enough that no vector times out at C + 1.
const LARGE: Timeouts = Timeouts { idling: 1_048_576.0, rolling: 1_048_576.0, absolute: 1_048_576.0 };
const NO_BIND: BindValues<'static> = BindValues { ip: "", scheme: "", user_agent: "" };
const UA1: BindValues<'static> = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: "UA-1" };

fn keys() -> Keys {
    Keys::from_secret(SECRET)
}

fn session_opts(timeouts: Timeouts) -> OpenOptions {
    OpenOptions { storage: Storage::Cookie, kind: CookieKind::Session, timeouts }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// The exact plaintext bytes of an opened vector (inflated if flagged).
fn plaintext(keys: &Keys, kind: CookieKind, header: &Header, cookie: &str) -> String {
    let raw = decrypt_bytes(keys, kind, header, &cookie[HEADER_ENCODED_SIZE..]).unwrap();
    let raw = if header.flags.contains(Flags::DEFLATE) { inflate(&raw).unwrap() } else { raw };
    String::from_utf8(raw).unwrap()
}

fn alice() -> SessionData {
    vec![SessionEntry::new(
        json!(["11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"]),
        "default",
        "alice",
    )]
}

#[test]
fn vector_plain() {
    let keys = keys();
    let opened = open(&keys, &session_opts(LARGE), PLAIN, None, &NO_BIND, PLAIN_C + 1).unwrap();
    let h = opened.header;
    assert_eq!(
        (h.flags, h.creation_time, h.rolling_offset, h.idling_offset, h.data_size),
        (Flags::NONE, PLAIN_C, 0, 0, 135)
    );
    assert_eq!(h.storage_key(), "lOKs7LgLweQT6IChIWpX2NqCmuyUMdvGQ4cbfIdpA2g");
    assert_eq!(plaintext(&keys, CookieKind::Session, &h, PLAIN), PLAIN_TEXT);
    assert_eq!(opened.data, alice());
    assert_eq!(serde_json::to_string(&opened.data).unwrap(), PLAIN_TEXT);
    assert_eq!(opened.entry("default").unwrap().subject.as_deref(), Some("alice"));
    assert!(opened.entry("other").is_none());
    // Kong's defaults at C + 1 accept it too; a wrong secret does not.
    open(&keys, &OpenOptions::default(), PLAIN, None, &NO_BIND, PLAIN_C + 1).unwrap();
    let wrong = Keys::from_secret("another-secret");
    assert_eq!(open(&wrong, &session_opts(LARGE), PLAIN, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidMac));
}

#[test]
fn vector_bound() {
    let keys = keys();
    let opened = open(&keys, &session_opts(LARGE), BOUND, None, &UA1, BOUND_C + 1).unwrap();
    assert_eq!(opened.header.flags, Flags::BIND_ALL);
    assert_eq!(plaintext(&keys, CookieKind::Session, &opened.header, BOUND), BOUND_TEXT);
    let ua2 = BindValues { user_agent: "UA-2", ..UA1 };
    assert_eq!(open(&keys, &session_opts(LARGE), BOUND, None, &ua2, BOUND_C + 1), Err(OpenError::InvalidMac));
    let other_ip = BindValues { ip: "127.0.0.2", ..UA1 };
    assert_eq!(open(&keys, &session_opts(LARGE), BOUND, None, &other_ip, BOUND_C + 1), Err(OpenError::InvalidMac));
    assert_eq!(open(&keys, &session_opts(LARGE), BOUND, None, &NO_BIND, BOUND_C + 1), Err(OpenError::InvalidMac));
}

#[test]
fn vector_remember() {
    let keys = keys();
    let opts =
        OpenOptions { storage: Storage::Cookie, kind: CookieKind::Remember(RememberSafety::Medium), timeouts: LARGE };
    let opened = open(&keys, &opts, REMEMBER, None, &NO_BIND, REMEMBER_C + 1).unwrap();
    assert_eq!(plaintext(&keys, opts.kind, &opened.header, REMEMBER), REMEMBER_TEXT);
    assert_eq!(opened.data, vec![SessionEntry::new(json!({}), "default", "dave")]);
    // Its MAC key is HKDF like any cookie's, but its data key is PBKDF2 of the IKM.
    assert_eq!(
        open(&keys, &session_opts(LARGE), REMEMBER, None, &NO_BIND, REMEMBER_C + 1),
        Err(OpenError::DecryptFailed)
    );
    let low = OpenOptions { kind: CookieKind::Remember(RememberSafety::Low), ..opts };
    assert_eq!(open(&keys, &low, REMEMBER, None, &NO_BIND, REMEMBER_C + 1), Err(OpenError::DecryptFailed));
    // Kong's remember defaults accept it at C + 1.
    let kong = OpenOptions { timeouts: Timeouts::REMEMBER_DEFAULT, ..opts };
    open(&keys, &kong, REMEMBER, None, &NO_BIND, REMEMBER_C + 1).unwrap();
}

#[test]
fn vector_deflated() {
    let keys = keys();
    let opened = open(&keys, &session_opts(LARGE), DEFLATED, None, &NO_BIND, DEFLATED_C + 1).unwrap();
    assert_eq!(opened.header.flags, Flags::DEFLATE);
    let expect = format!(r#"[[{{"blob":"{}"}},"default","bob"]]"#, "a".repeat(6000));
    assert_eq!(plaintext(&keys, CookieKind::Session, &opened.header, DEFLATED), expect);
    assert_eq!(opened.data, vec![SessionEntry::new(json!({"blob": "a".repeat(6000)}), "default", "bob")]);
}

#[test]
fn seal_open_round_trip() {
    let keys = keys();
    let now = 1_800_000_000;
    let sealed = seal_with_rng(&keys, &SealOptions::default(), &alice(), &NO_BIND, now, &mut rng()).unwrap();
    let h = sealed.header;
    assert_eq!((h.flags, h.creation_time, h.rolling_offset, h.idling_offset), (Flags::NONE, now, 0, 0));
    // Same plaintext as the LRS vector, so the same sizes.
    assert_eq!(h.data_size, 135);
    assert_eq!(sealed.value.len(), HEADER_ENCODED_SIZE + 135);
    assert_eq!(&sealed.value[HEADER_ENCODED_SIZE..], sealed.ciphertext);
    assert_eq!(Header::decode(&sealed.value).unwrap(), h);
    let opened = open(&keys, &OpenOptions::default(), &sealed.value, None, &NO_BIND, now).unwrap();
    assert_eq!(opened.header, h);
    assert_eq!(opened.data, alice());
    assert_eq!(plaintext(&keys, CookieKind::Session, &h, &sealed.value), PLAIN_TEXT);
    // The OS RNG path gives a fresh sid each time.
    let a = seal(&keys, &SealOptions::default(), &alice(), &NO_BIND, now).unwrap();
    let b = seal(&keys, &SealOptions::default(), &alice(), &NO_BIND, now).unwrap();
    assert_ne!(a.header.sid, b.header.sid);
    open(&keys, &OpenOptions::default(), &a.value, None, &NO_BIND, now).unwrap();
}

#[test]
fn seal_bound_deflated_multi_audience() {
    let keys = keys();
    let now = 1_800_000_000;
    let data = vec![
        SessionEntry::new(json!({"blob": "a".repeat(6000)}), "default", "bob"),
        SessionEntry { data: json!({}), audience: "second".into(), subject: None },
    ];
    let opts = SealOptions { bind: Bind::from_names(["ip", "user-agent"]).unwrap(), ..Default::default() };
    let sealed = seal_with_rng(&keys, &opts, &data, &UA1, now, &mut rng()).unwrap();
    assert_eq!(sealed.header.flags, Flags::BIND_IP | Flags::BIND_USER_AGENT | Flags::DEFLATE);
    let opened = open(&keys, &OpenOptions::default(), &sealed.value, None, &UA1, now + 5).unwrap();
    assert_eq!(opened.data, data);
    // Only the bound properties count: another scheme is fine, another UA is not.
    let https = BindValues { scheme: "https", ..UA1 };
    open(&keys, &OpenOptions::default(), &sealed.value, None, &https, now).unwrap();
    let ua2 = BindValues { user_agent: "UA-2", ..UA1 };
    assert_eq!(open(&keys, &OpenOptions::default(), &sealed.value, None, &ua2, now), Err(OpenError::InvalidMac));
    assert_eq!(Bind::from_names(["ip", "referer"]), Err("referer"));
    assert_eq!(Bind::from_flags(Flags::BIND_ALL), Bind::ALL);
}

#[test]
fn binding_with_all_values_empty_appends_nothing() {
    let keys = keys();
    let now = 1_800_000_000;
    let bound = SealOptions { bind: Bind::ALL, ..Default::default() };
    let sealed = seal_with_rng(&keys, &bound, &alice(), &NO_BIND, now, &mut rng()).unwrap();
    // Every bound value empty: nothing appended to the MAC input, so empty values verify.
    open(&keys, &OpenOptions::default(), &sealed.value, None, &NO_BIND, now).unwrap();
    // A value present where the sealer had none changes the MAC.
    let ip_only = BindValues { ip: "10.0.0.1", ..NO_BIND };
    assert_eq!(open(&keys, &OpenOptions::default(), &sealed.value, None, &ip_only, now), Err(OpenError::InvalidMac));
}

#[test]
fn server_storage_round_trip_and_flag_mismatch() {
    let keys = keys();
    let now = 1_800_000_000;
    let opts = SealOptions { storage: Storage::Server, ..Default::default() };
    let sealed = seal_with_rng(&keys, &opts, &alice(), &NO_BIND, now, &mut rng()).unwrap();
    assert_eq!(sealed.value.len(), HEADER_ENCODED_SIZE);
    assert_eq!(sealed.header.flags, Flags::STORAGE);
    assert_eq!(sealed.header.data_size as usize, sealed.ciphertext.len());
    assert_eq!(sealed.storage_key(), B64.encode(sealed.header.sid));
    let record = sealed.storage_record();
    assert_eq!(record, format!(r#"["{}"]"#, sealed.ciphertext));

    let server = OpenOptions { storage: Storage::Server, ..Default::default() };
    let stored = decode_storage_record(&record).unwrap();
    assert_eq!(stored.info, None);
    let opened = open(&keys, &server, &sealed.value, Some(&stored.ciphertext), &NO_BIND, now).unwrap();
    assert_eq!(opened.data, alice());
    // Two-phase: verify the header, look up by its key, then decrypt.
    let header = verify(&keys, &server, &sealed.value, &NO_BIND, now).unwrap();
    assert_eq!(header.storage_key(), sealed.storage_key());
    assert_eq!(decrypt(&keys, CookieKind::Session, &header, &stored.ciphertext).unwrap(), alice());
    assert_eq!(open(&keys, &server, &sealed.value, None, &NO_BIND, now), Err(OpenError::MissingStoredData));
    assert_eq!(open(&keys, &server, &sealed.value, Some("AAAA"), &NO_BIND, now), Err(OpenError::InvalidPayload));

    // Storage flag must match the configuration, both ways.
    assert_eq!(open(&keys, &OpenOptions::default(), &sealed.value, None, &NO_BIND, now), Err(OpenError::InvalidFlags));
    assert_eq!(open(&keys, &server, PLAIN, Some("x"), &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidFlags));

    let with_info = decode_storage_record(r#"["abc","ZGVm"]"#).unwrap();
    assert_eq!(with_info, StorageRecord { ciphertext: "abc".into(), info: Some("ZGVm".into()) });
    assert_eq!(decode_storage_record("[]"), Err(OpenError::InvalidStoredData));
    assert_eq!(decode_storage_record("{}"), Err(OpenError::InvalidStoredData));
}

#[test]
fn tampered_header_is_a_mac_error() {
    let keys = keys();
    let opts = session_opts(LARGE);
    let mut bytes = [0u8; HEADER_SIZE];
    B64.decode_slice(&PLAIN.as_bytes()[..HEADER_ENCODED_SIZE], &mut bytes).unwrap();
    // sid, tag, idling offset, MAC: each flip is caught by the MAC.
    for index in [3, 34, 47, 62, 63, 66, 81] {
        let mut b = bytes;
        b[index] ^= 0x01;
        let cookie = format!("{}{}", B64.encode(b), &PLAIN[HEADER_ENCODED_SIZE..]);
        assert_eq!(
            open(&keys, &opts, &cookie, None, &NO_BIND, PLAIN_C + 1),
            Err(OpenError::InvalidMac),
            "byte {index}"
        );
    }
    // Type and flags are checked before the MAC.
    let mut b = bytes;
    b[0] = 2;
    let cookie = format!("{}{}", B64.encode(b), &PLAIN[HEADER_ENCODED_SIZE..]);
    assert_eq!(open(&keys, &opts, &cookie, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidType));
    let mut b = bytes;
    b[1] = 0x10; // DEFLATE
    let cookie = format!("{}{}", B64.encode(b), &PLAIN[HEADER_ENCODED_SIZE..]);
    assert_eq!(open(&keys, &opts, &cookie, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidMac));
    // Encoding errors.
    assert_eq!(open(&keys, &opts, &PLAIN[..100], None, &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidHeader));
    let bad = format!("*{}", &PLAIN[1..]);
    assert_eq!(open(&keys, &opts, &bad, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::HeaderEncoding));
}

#[test]
fn tampered_payload_is_a_decrypt_error() {
    let keys = keys();
    let opts = session_opts(LARGE);
    let mut cookie = PLAIN.to_owned().into_bytes();
    let i = HEADER_ENCODED_SIZE + 20;
    cookie[i] = if cookie[i] == b'A' { b'B' } else { b'A' };
    let cookie = String::from_utf8(cookie).unwrap();
    assert_eq!(open(&keys, &opts, &cookie, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::DecryptFailed));
    // Length must match the data-size field exactly.
    assert_eq!(
        open(&keys, &opts, &PLAIN[..PLAIN.len() - 1], None, &NO_BIND, PLAIN_C + 1),
        Err(OpenError::InvalidPayload)
    );
    let longer = format!("{PLAIN}A");
    assert_eq!(open(&keys, &opts, &longer, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::InvalidPayload));
    let bad_b64 = format!("{}*{}", &PLAIN[..HEADER_ENCODED_SIZE], &PLAIN[HEADER_ENCODED_SIZE + 1..]);
    assert_eq!(open(&keys, &opts, &bad_b64, None, &NO_BIND, PLAIN_C + 1), Err(OpenError::PayloadEncoding));
}

#[test]
fn timeout_boundaries_are_strict() {
    let keys = keys();
    let c = 1_800_000_000;
    let sealed = seal_with_rng(&keys, &SealOptions::default(), &alice(), &NO_BIND, c, &mut rng()).unwrap();
    let v = sealed.value.as_str();
    let at = |timeouts: Timeouts, now: u64| open(&keys, &session_opts(timeouts), v, None, &NO_BIND, now).map(|_| ());

    let absolute = Timeouts { idling: 0.0, rolling: 0.0, absolute: 100.0 };
    assert_eq!(at(absolute, c + 100), Ok(()));
    assert_eq!(at(absolute, c + 101), Err(OpenError::AbsoluteTimeout));
    let rolling = Timeouts { idling: 0.0, rolling: 100.0, absolute: 0.0 };
    assert_eq!(at(rolling, c + 100), Ok(()));
    assert_eq!(at(rolling, c + 101), Err(OpenError::RollingTimeout));
    let idling = Timeouts { idling: 100.0, rolling: 0.0, absolute: 0.0 };
    assert_eq!(at(idling, c + 100), Ok(()));
    assert_eq!(at(idling, c + 101), Err(OpenError::IdlingTimeout));
    // Order of checks: absolute, then rolling, then idling.
    assert_eq!(at(Timeouts { idling: 1.0, rolling: 1.0, absolute: 1.0 }, c + 2), Err(OpenError::AbsoluteTimeout));
    assert_eq!(at(Timeouts { idling: 1.0, rolling: 1.0, absolute: 0.0 }, c + 2), Err(OpenError::RollingTimeout));
    // 0 disables; lifetime is capped at 2^32 - 1 seconds all the same.
    assert_eq!(at(Timeouts::NONE, c + u64::from(u32::MAX)), Ok(()));
    assert_eq!(at(Timeouts::NONE, c + u64::from(u32::MAX) + 1), Err(OpenError::LifetimeExceeded));
    // A clock behind C is not an error.
    assert_eq!(at(Timeouts::SESSION_DEFAULT, c - 10), Ok(()));
    // Kong's numbers with a fraction (seed 003's example): whole elapsed seconds compared
    // with the number as it is. 0.19 is not 0 (disabled): one second later it has idled out.
    let seed = Timeouts { idling: 0.19, rolling: 8.85, absolute: 3.79 };
    assert_eq!(at(seed, c), Ok(()));
    assert_eq!(at(seed, c + 1), Err(OpenError::IdlingTimeout));
    let no_idle = Timeouts { idling: 0.0, ..seed };
    assert_eq!(at(no_idle, c + 3), Ok(()), "3 > 3.79 is false");
    assert_eq!(at(no_idle, c + 4), Err(OpenError::AbsoluteTimeout));
    assert_eq!(at(Timeouts { idling: 0.0, rolling: 7.29, absolute: 0.0 }, c + 7), Ok(()));
    assert_eq!(at(Timeouts { idling: 0.0, rolling: 7.29, absolute: 0.0 }, c + 8), Err(OpenError::RollingTimeout));

    // Rolling counts from the latest renewal, absolute from creation.
    let renewed =
        seal_with_rng(&keys, &SealOptions::default().renewing(&sealed.header), &alice(), &NO_BIND, c + 50, &mut rng())
            .unwrap();
    assert_eq!((renewed.header.creation_time, renewed.header.rolling_offset), (c, 50));
    let at_r = |timeouts: Timeouts, now: u64| {
        open(&keys, &session_opts(timeouts), &renewed.value, None, &NO_BIND, now).map(|_| ())
    };
    assert_eq!(at_r(rolling, c + 150), Ok(()));
    assert_eq!(at_r(rolling, c + 151), Err(OpenError::RollingTimeout));
    assert_eq!(at_r(absolute, c + 101), Err(OpenError::AbsoluteTimeout));
    assert_eq!(at_r(idling, c + 150), Ok(()));
    assert_eq!(at_r(idling, c + 151), Err(OpenError::IdlingTimeout));
}

#[test]
fn remember_cookie_rules() {
    let keys = keys();
    let c = 1_800_000_000;
    let kind = CookieKind::Remember(RememberSafety::Low);
    let sealed =
        seal_with_rng(&keys, &SealOptions { kind, ..Default::default() }, &alice(), &NO_BIND, c, &mut rng()).unwrap();
    let opts = |timeouts| OpenOptions { storage: Storage::Cookie, kind, timeouts };
    // No idling check for remember cookies.
    let t = Timeouts { idling: 1.0, rolling: 100.0, absolute: 200.0 };
    assert_eq!(open(&keys, &opts(t), &sealed.value, None, &NO_BIND, c + 100).unwrap().data, alice());
    assert_eq!(open(&keys, &opts(t), &sealed.value, None, &NO_BIND, c + 101), Err(OpenError::RememberRollingTimeout));
    let t = Timeouts { idling: 0.0, rolling: 0.0, absolute: 200.0 };
    assert_eq!(open(&keys, &opts(t), &sealed.value, None, &NO_BIND, c + 201), Err(OpenError::RememberAbsoluteTimeout));
    // A remember cookie with a non-zero idling offset is invalid.
    let touched = touch(&keys, &sealed.header, &sealed.value, &NO_BIND, c + 5);
    assert_eq!(touched.header.idling_offset, 5);
    assert_eq!(open(&keys, &opts(LARGE), &touched.value, None, &NO_BIND, c + 5), Err(OpenError::InvalidIdlingOffset));
}

#[test]
fn touch_keeps_sid_and_payload() {
    let keys = keys();
    let c = 1_800_000_000;
    let opts = SealOptions { bind: Bind::ALL, ..Default::default() };
    let sealed = seal_with_rng(&keys, &opts, &alice(), &UA1, c, &mut rng()).unwrap();
    let t = Timeouts { idling: 100.0, rolling: 1000.0, absolute: 0.0 };
    let opened = open(&keys, &session_opts(t), &sealed.value, None, &UA1, c + 61).unwrap();
    assert_eq!(opened.header.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 61), RefreshAction::Touch);

    let touched = touch(&keys, &opened.header, &sealed.value, &UA1, c + 61);
    let h = touched.header;
    assert_eq!(h.sid, sealed.header.sid);
    assert_eq!(h.tag, sealed.header.tag);
    assert_eq!(h.idling_offset, 61);
    assert_ne!(h.mac, sealed.header.mac);
    assert_eq!(&touched.value[HEADER_ENCODED_SIZE..], &sealed.value[HEADER_ENCODED_SIZE..]);
    assert_eq!(Header::decode(&touched.value).unwrap(), h);
    // The touched cookie lives on past the original idle limit; the untouched one does not.
    let reopened = open(&keys, &session_opts(t), &touched.value, None, &UA1, c + 161).unwrap();
    assert_eq!(reopened.data, alice());
    assert_eq!(reopened.header.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 121), RefreshAction::None);
    assert_eq!(reopened.header.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 122), RefreshAction::Touch);
    assert_eq!(open(&keys, &session_opts(t), &sealed.value, None, &UA1, c + 161), Err(OpenError::IdlingTimeout));
    assert_eq!(open(&keys, &session_opts(t), &touched.value, None, &UA1, c + 162), Err(OpenError::IdlingTimeout));
    // Remaining times from the touched header.
    let r = reopened.header.remaining(&t, c + 161);
    assert_eq!((r.idling, r.rolling, r.absolute, r.timeout()), (Some(0.0), Some(839.0), None, Some(0.0)));

    // Server storage: the touched value is the header alone.
    let server = seal_with_rng(
        &keys,
        &SealOptions { storage: Storage::Server, ..Default::default() },
        &alice(),
        &NO_BIND,
        c,
        &mut rng(),
    )
    .unwrap();
    let touched = touch(&keys, &server.header, &server.value, &NO_BIND, c + 70);
    assert_eq!(touched.value.len(), HEADER_ENCODED_SIZE);
    let server_opts = OpenOptions { storage: Storage::Server, ..Default::default() };
    open(&keys, &server_opts, &touched.value, Some(&server.ciphertext), &NO_BIND, c + 70).unwrap();
    // The idling offset saturates at 2^24 - 1.
    let far = touch(&keys, &server.header, &server.value, &NO_BIND, c + (1 << 30));
    assert_eq!(far.header.idling_offset, MAX_IDLING_OFFSET);
}

#[test]
fn renewal_threshold_and_renewal() {
    let keys = keys();
    let c = 1_800_000_000;
    let opts = SealOptions { forget: true, ..Default::default() };
    let sealed = seal_with_rng(&keys, &opts, &alice(), &NO_BIND, c, &mut rng()).unwrap();
    assert_eq!(sealed.header.flags, Flags::FORGET);
    let t = Timeouts::SESSION_DEFAULT;
    // ceil(0.75 * 3600) = 2700; idling 900 would expire first without touches, so touch at 2000.
    let touched = touch(&keys, &sealed.header, &sealed.value, &NO_BIND, c + 2000);
    let h = open(&keys, &session_opts(t), &touched.value, None, &NO_BIND, c + 2700).unwrap().header;
    assert_eq!(h.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 2700), RefreshAction::Touch);
    let h = open(&keys, &session_opts(t), &touched.value, None, &NO_BIND, c + 2701).unwrap().header;
    assert_eq!(h.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 2701), RefreshAction::Renew);

    let mut other_rng = StdRng::seed_from_u64(8);
    let renewed =
        seal_with_rng(&keys, &SealOptions::default().renewing(&h), &alice(), &NO_BIND, c + 2701, &mut other_rng)
            .unwrap();
    let r = renewed.header;
    assert_ne!(r.sid, h.sid);
    assert_eq!((r.creation_time, r.rolling_offset, r.idling_offset), (c, 2701, 0));
    assert!(r.flags.contains(Flags::FORGET), "FORGET sticks across renewals");
    let opened = open(&keys, &session_opts(t), &renewed.value, None, &NO_BIND, c + 2701).unwrap();
    assert_eq!(opened.header.refresh_action(&t, DEFAULT_TOUCH_THRESHOLD, c + 2701), RefreshAction::None);
    let rem = opened.header.remaining(&t, c + 2701);
    assert_eq!((rem.idling, rem.rolling, rem.absolute), (Some(900.0), Some(3600.0), Some(86_400.0 - 2701.0)));
}

#[test]
fn seal_limits() {
    let keys = keys();
    let too_old = SealOptions { creation_time: Some(0), ..Default::default() };
    assert_eq!(
        seal_with_rng(&keys, &too_old, &alice(), &NO_BIND, 1 << 33, &mut rng()),
        Err(SealError::RollingOffsetExceeded)
    );
    assert_eq!(
        seal_with_rng(&keys, &SealOptions::default(), &alice(), &NO_BIND, 1 << 40, &mut rng()),
        Err(SealError::CreationTimeExceeded)
    );
    // A clock behind C renews with R = 0.
    let skewed = SealOptions { creation_time: Some(1000), ..Default::default() };
    assert_eq!(seal_with_rng(&keys, &skewed, &alice(), &NO_BIND, 990, &mut rng()).unwrap().header.rolling_offset, 0);
}

#[test]
fn chunked_cookie_seal_split_join_open() {
    let keys = keys();
    let now = 1_800_000_000;
    // Incompressible-ish data, no deflate, so the value needs three cookies.
    let noise: Vec<String> = (0..200u64).map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
    let data = vec![SessionEntry::new(json!(noise), "default", "alice")];
    let opts = SealOptions { compression_threshold: 0, ..Default::default() };
    let sealed = seal_with_rng(&keys, &opts, &data, &NO_BIND, now, &mut rng()).unwrap();
    let chunks = chunk::split("session", &sealed.value).unwrap();
    assert_eq!(chunks.len(), chunk::count(7, sealed.header.data_size as usize).unwrap());
    assert!(chunks.len() > 1);
    let jar: std::collections::HashMap<String, &str> = chunks.into_iter().map(|c| (c.name, c.value)).collect();
    let joined = chunk::join("session", |n| jar.get(n).copied()).unwrap();
    assert_eq!(open(&keys, &OpenOptions::default(), &joined, None, &NO_BIND, now).unwrap().data, data);
    // Too large for nine cookies.
    let huge: Vec<String> = (0..3000u64).map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
    let sealed =
        seal_with_rng(&keys, &opts, &[SessionEntry::new(json!(huge), "a", "b")], &NO_BIND, now, &mut rng()).unwrap();
    assert_eq!(chunk::split("session", &sealed.value), Err(SealError::CookieSizeLimit));
    assert_eq!(
        CookieAttributes::default().render().set_cookies("session", &sealed.value, None),
        Err(SealError::CookieSizeLimit)
    );
}

#[test]
fn error_messages_match_lua_resty_session() {
    assert_eq!(OpenError::AbsoluteTimeout.to_string(), "session absolute timeout exceeded");
    assert_eq!(OpenError::RollingTimeout.to_string(), "session rolling timeout exceeded");
    assert_eq!(OpenError::IdlingTimeout.to_string(), "session idling timeout exceeded");
    assert_eq!(OpenError::InvalidMac.to_string(), "invalid session message authentication code");
    assert_eq!(OpenError::InvalidFlags.to_string(), "invalid session flags");
    assert_eq!(SealError::CookieSizeLimit.to_string(), "cookie size limit exceeded");
}

/// The reference decoder of section 2.8, extended with the PBKDF2 branch of section 2.3.
/// argv: cookie, secret, bind string (`ip|scheme|ua` or empty), PBKDF2 iterations (0 = HKDF).
const PY_DECODER: &str = r##"
import sys, base64, hashlib, hmac, zlib, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
    return out[:n]
cookie, secret, bind, iters = sys.argv[1], sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
h = b64d(cookie[:110]); sid = h[3:35]; tag = h[47:63]
flags = struct.unpack("<H", h[1:3])[0]
ikm = hashlib.sha256(secret).digest(); prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
mac_key = expand(prk, b"authentication:" + sid, 32)
msg = h[:66] + ((b"#" + hashlib.sha256(bind.encode()).digest()) if bind else b"")
assert hmac.new(mac_key, msg, hashlib.sha256).digest()[:16] == h[66:82], "mac"
okm = hashlib.pbkdf2_hmac("sha256", ikm, b"encryption:" + sid, iters, 44) if iters else expand(prk, b"encryption:" + sid, 44)
pt = AESGCM(okm[:32]).decrypt(okm[32:44], b64d(cookie[110:]) + tag, h[:47])
if flags & 0x10: pt = zlib.decompress(pt, -15)
sys.stdout.write(pt.decode())
"##;

/// The Python that can run [`PY_DECODER`] (it needs PyPI's `cryptography`): `TESSERA_PYTHON`,
/// else the venv `cargo xtask ci` makes in `.tools/python` when the system's Python lacks
/// the package, else `python3`. None when none of them can import it.
fn reference_python() -> Option<std::path::PathBuf> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/python/bin/python3");
    let candidates =
        std::env::var_os("TESSERA_PYTHON").map(std::path::PathBuf::from).into_iter().chain([venv, "python3".into()]);
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn python_reference_decoder_reads_tessera_cookies() {
    use std::process::Command;
    let Some(python) = reference_python() else {
        let why = "no Python with `cryptography` (run `cargo xtask ci` once, or set TESSERA_PYTHON)";
        // A test that cannot run must never look like one that passed: under CI it fails.
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
        assert!(!ci, "python_reference_decoder_reads_tessera_cookies cannot run under CI: {why}");
        println!("SKIPPED python_reference_decoder_reads_tessera_cookies: {why}");
        eprintln!("SKIPPED python_reference_decoder_reads_tessera_cookies: {why}");
        return;
    };
    let decode = |cookie: &str, bind: &str, iterations: u32| {
        let out = Command::new(&python)
            .args(["-c", PY_DECODER, cookie, SECRET, bind, &iterations.to_string()])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "decoder failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // The LRS vector itself, as a sanity check of the script.
    assert_eq!(decode(PLAIN, "", 0), PLAIN_TEXT);

    let keys = keys();
    let now = 1_800_000_000;
    let plain = seal_with_rng(&keys, &SealOptions::default(), &alice(), &NO_BIND, now, &mut rng()).unwrap();
    assert_eq!(decode(&plain.value, "", 0), PLAIN_TEXT);

    let bound_opts = SealOptions { bind: Bind::ALL, ..Default::default() };
    let carol = vec![SessionEntry::new(json!({}), "default", "carol")];
    let bound = seal_with_rng(&keys, &bound_opts, &carol, &UA1, now, &mut rng()).unwrap();
    assert_eq!(decode(&bound.value, "127.0.0.1|http|UA-1", 0), BOUND_TEXT);
    let touched = touch(&keys, &bound.header, &bound.value, &UA1, now + 90);
    assert_eq!(decode(&touched.value, "127.0.0.1|http|UA-1", 0), BOUND_TEXT);

    let blob = vec![SessionEntry::new(json!({"blob": "a".repeat(6000)}), "default", "bob")];
    let deflated = seal_with_rng(&keys, &SealOptions::default(), &blob, &NO_BIND, now, &mut rng()).unwrap();
    assert!(deflated.header.flags.contains(Flags::DEFLATE));
    assert_eq!(decode(&deflated.value, "", 0), format!(r#"[[{{"blob":"{}"}},"default","bob"]]"#, "a".repeat(6000)));

    let remember_opts = SealOptions { kind: CookieKind::Remember(RememberSafety::Medium), ..Default::default() };
    let dave = vec![SessionEntry::new(json!({}), "default", "dave")];
    let remember = seal_with_rng(&keys, &remember_opts, &dave, &NO_BIND, now, &mut rng()).unwrap();
    assert_eq!(decode(&remember.value, "", 10_000), REMEMBER_TEXT);
}
