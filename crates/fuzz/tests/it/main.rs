//! Replays every committed corpus and regression input through its fuzz target (a plain
//! build, no instrumentation), and checks the harnesses reach what they claim to reach.

use tessera_fuzz::{TARGETS, crate_dir, files_in, smoke, target};

fn replay(name: &str, dir: &str) -> usize {
    let t = target(name).expect("a target");
    smoke::replay_dir(&t, &crate_dir().join(dir).join(name))
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let n = replay(stringify!($name), "corpus");
            assert!(n > 0, "the {} corpus is empty", stringify!($name));
        }
    )*};
}

mod corpus {
    use super::replay;
    corpus_tests!(cookie, filter, policy, bodies, gateway_path, login, ca_cert);
}

#[test]
fn every_target_has_a_corpus_and_a_dictionary() {
    for t in TARGETS {
        assert!(!files_in(&crate_dir().join("corpus").join(t.name)).is_empty(), "{}", t.name);
        assert!(!smoke::dictionary(t).is_empty(), "dict/{}.dict", t.name);
    }
}

#[test]
fn a_forged_cookie_opens_so_the_payload_stages_are_fuzzed() {
    use tessera_session_cookie::{BindValues, CookieKind, Flags, Keys, OpenOptions, Storage, Timeouts, open};
    let keys = Keys::from_secret(b"the fuzzing plugin's secret");
    let bind = BindValues { ip: "203.0.113.9", scheme: "https", user_agent: "fuzz/1.0" };
    for (flags, storage) in [(Flags::NONE, Storage::Cookie), (Flags::STORAGE | Flags::BIND_ALL, Storage::Server)] {
        let (value, ciphertext) = tessera_fuzz::cookie::forge(flags, [3; 32], br#"[[["u","c"],"default","s"]]"#);
        let opts = OpenOptions { storage, kind: CookieKind::Session, timeouts: Timeouts::SESSION_DEFAULT };
        let opened = open(&keys, &opts, &value, Some(&ciphertext), &bind, 1_750_000_000)
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        assert_eq!(opened.data[0].audience, "default");
    }
}

#[test]
fn the_smoke_run_mutates_within_its_budget() {
    let t = target("filter").unwrap();
    let o = smoke::run(&t, 2_000, std::time::Duration::from_secs(20), 1);
    assert!(o.replayed > 0);
    assert_eq!(o.mutated, 2_000);
}

/// Replays one crash input of `regressions/<target>/` with every workaround off.
fn regression(name: &str, file: &str) {
    let t = target(name).expect("a target");
    let input = std::fs::read(crate_dir().join("regressions").join(name).join(file)).expect("the crash input");
    tessera_fuzz::known::strict(|| smoke::run_one(&t, &input));
}

#[test]
fn regression_policy_resource_ends_in_multibyte_char() {
    regression("policy", "resource-ends-in-multibyte-char");
}

#[test]
fn regression_gateway_path_stripped_prefix_leaves_dot_segment() {
    regression("gateway_path", "stripped-prefix-leaves-dot-segment");
}

#[test]
fn regression_gateway_path_encoded_semicolon_after_dots() {
    regression("gateway_path", "encoded-semicolon-after-dots");
}

#[test]
fn regression_filter_orderby_position_counts_bytes() {
    regression("filter", "orderby-position-counts-bytes");
}

/// The properties catch the faults issue 10 reported, had the code stayed as it was.
mod properties_catch_the_reported_faults {
    #[test]
    #[should_panic(expected = "upstream serves")]
    fn routing_on_the_raw_path() {
        // Before the fix the gateway routed on and forwarded the raw path.
        tessera_fuzz::gateway_path::check_route("/public/../app/secret.txt", "gw.test", "GET");
    }

    #[test]
    #[should_panic(expected = "not a clean header value")]
    fn next_with_a_tab() {
        // Before the fix `next=/%09/evil.com` was answered with `Location: /\t/evil.com`.
        tessera_fuzz::login::check_target("/%09/evil.com", Some("/\t/evil.com".into()));
    }

    #[test]
    #[should_panic(expected = "leaves the site")]
    fn next_with_two_slashes() {
        tessera_fuzz::login::check_target("//evil.com", Some("//evil.com".into()));
    }
}

#[test]
#[ignore = "FAILS until fixed: a float in session data (6E88) comes back one ulp away after a re-seal, because \
            serde_json's float_roundtrip feature is off (workspace Cargo.toml); reported, low severity"]
fn regression_cookie_float_drifts_on_reseal() {
    regression("cookie", "float-drifts-on-reseal");
}

#[test]
fn the_ca_cert_target_starts_from_a_ca_certificate_the_api_accepts() {
    let der = tessera_fuzz::ca_cert::base_der();
    let ca = tessera_domain::x509::CaCert::from_pem(&tessera_fuzz::ca_cert::pem_of(&der)).expect("accepted");
    assert_eq!(ca.der, der);
    // Valid until 2126-11-06T19:49:07Z: the target's third mode starts from a certificate
    // that reaches every check, the expiry included, and `check` runs on it.
    assert_eq!(ca.not_after, tessera_domain::Timestamp(4_949_668_147));
    tessera_fuzz::ca_cert::check(&tessera_fuzz::ca_cert::pem_of(&der));
}
